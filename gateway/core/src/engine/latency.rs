//! The gateway-added time of client requests: the shell stamps when each input was read and
//! when its outputs were queued; a request's added time is its inbound step (INFO read → CSTA
//! request queued) plus its outbound step (CSTA answer read → 200 OK queued), not its time at
//! the PBX.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Identifies a client request at the PBX for this measure.
pub(crate) type RequestKey = u64;

/// Steps in progress and requests waiting for their outbound step.
#[derive(Debug, Default)]
pub(crate) struct AddedTime {
    /// When the input of the step being run was read.
    step_read: Option<Instant>,
    /// Client requests sent to the PBX in this step, and answered in this step.
    sent: Vec<RequestKey>,
    answered: Vec<RequestKey>,
    /// For each client request at the PBX: the gateway's time on its way in.
    inbound: HashMap<RequestKey, Duration>,
}

impl AddedTime {
    /// A step begins with an input read at `read_at`.
    pub(crate) fn begin(&mut self, read_at: Instant) {
        self.step_read = Some(read_at);
    }

    /// A client request went to the PBX.
    pub(crate) fn sent(&mut self, key: RequestKey) {
        if self.step_read.is_some() {
            self.sent.push(key);
        }
    }

    /// A client request's answer came back (`ok`: a CSTA answer, not a failure).
    pub(crate) fn answered(&mut self, key: RequestKey, ok: bool) {
        if self.step_read.is_some() && ok {
            self.answered.push(key);
        } else {
            self.inbound.remove(&key);
        }
    }

    /// The step's outputs are queued at `done`: the added time of each request answered in it.
    pub(crate) fn end(&mut self, done: Instant, mut observe: impl FnMut(Duration)) {
        let Some(read) = self.step_read.take() else {
            return;
        };
        let step = done.saturating_duration_since(read);
        for key in self.sent.drain(..) {
            self.inbound.insert(key, step);
        }
        for key in self.answered.drain(..) {
            if let Some(inbound) = self.inbound.remove(&key) {
                observe(inbound + step);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_and_outbound_steps_add_up_without_the_pbx_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut a = AddedTime::default();
        let mut seen = Vec::new();
        a.begin(t0);
        a.sent(7);
        a.end(t0 + ms(2), |d| seen.push(d));
        assert!(seen.is_empty());
        // 100 ms at the PBX, then 3 ms to answer.
        a.begin(t0 + ms(102));
        a.answered(7, true);
        a.end(t0 + ms(105), |d| seen.push(d));
        assert_eq!(seen, vec![ms(5)]);
    }

    #[test]
    fn failures_and_unstamped_inputs_are_not_measured() {
        let t0 = Instant::now();
        let mut a = AddedTime::default();
        let mut seen = Vec::new();
        a.sent(1);
        a.begin(t0);
        a.sent(2);
        a.end(t0, |d| seen.push(d));
        a.begin(t0);
        a.answered(1, true);
        a.answered(2, false);
        a.end(t0, |d| seen.push(d));
        assert!(seen.is_empty());
        assert!(a.inbound.is_empty(), "nothing left behind");
    }
}
