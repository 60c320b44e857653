//! A timer table for one owner: timers are set and cancelled by handle, so a cancelled timer is
//! gone at once instead of lingering until it falls due.

use std::collections::BTreeMap;
use std::time::Instant;

/// A set timer, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerId(Instant, u64);

/// Timers by deadline, each carrying what it is for.
#[derive(Debug)]
pub(crate) struct Timers<K> {
    queue: BTreeMap<TimerId, K>,
    seq: u64,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            queue: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<K> Timers<K> {
    /// Sets a timer for `at`.
    pub(crate) fn set(&mut self, at: Instant, what: K) -> TimerId {
        self.seq += 1;
        let id = TimerId(at, self.seq);
        self.queue.insert(id, what);
        id
    }

    /// Cancels a timer; nothing when it has fired or was cancelled.
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<K> {
        self.queue.remove(&id)
    }

    /// The earliest deadline.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.keys().next().map(|k| k.0)
    }

    /// The earliest timer due at `now`, taken out.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let entry = self.queue.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        Some(entry.remove())
    }

    /// Timers set and not yet fired or cancelled.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn due_in_deadline_order_and_cancelled_ones_gone() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        let late = t.set(t0 + Duration::from_secs(3), "late");
        let early = t.set(t0 + Duration::from_secs(1), "early");
        t.set(t0 + Duration::from_secs(1), "early too");
        assert_eq!(t.cancel(late), Some("late"));
        assert_eq!(t.len(), 2, "a cancelled timer leaves the table at once");
        assert_eq!(t.next_due(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None);
        let now = t0 + Duration::from_secs(5);
        assert_eq!(t.pop_due(now), Some("early"));
        assert_eq!(t.pop_due(now), Some("early too"));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.cancel(early), None, "fired");
    }
}
