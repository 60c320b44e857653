//! Write coalescing for the socket shells: a burst of queued messages becomes one write.

/// Largest write assembled from queued messages.
pub const WRITE_BATCH: usize = 64 * 1024;

/// Joins `first` with the messages `more` yields at once (until it yields `None` or the batch
/// reaches [`WRITE_BATCH`] bytes), so a burst costs one write system call instead of one per
/// message. `each` sees every message on its own, for traces that keep message boundaries.
pub fn coalesce(
    first: Vec<u8>,
    mut more: impl FnMut() -> Option<Vec<u8>>,
    mut each: impl FnMut(&[u8]),
) -> Vec<u8> {
    each(&first);
    let mut batch = first;
    while batch.len() < WRITE_BATCH {
        let Some(next) = more() else { break };
        each(&next);
        batch.extend_from_slice(&next);
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_in_order_and_stops_at_the_limit() {
        let mut queue: std::collections::VecDeque<Vec<u8>> =
            [vec![b'b'; 10], vec![b'c'; WRITE_BATCH], vec![b'd'; 3]].into();
        let mut seen = Vec::new();
        let batch = coalesce(vec![b'a'; 2], || queue.pop_front(), |m| seen.push(m.len()));
        assert_eq!(
            seen,
            [2, 10, WRITE_BATCH],
            "each message seen once, in order"
        );
        assert_eq!(batch.len(), 12 + WRITE_BATCH);
        assert!(batch.starts_with(b"aab"));
        assert_eq!(queue.len(), 1, "the message past the limit stays queued");
    }
}
