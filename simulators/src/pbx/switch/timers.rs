//! Scripted delays: external parties that answer or hang up after a while, and no-answer
//! forwarding after the rings run out.

use std::collections::BTreeMap;
use std::time::Instant;

/// A scripted action on one party of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Timer {
    /// The external party answers if it still rings.
    ExternalAnswer { call: String, device: String },
    /// The external party hangs up if still in the call.
    ExternalClear { call: String, device: String },
    /// The internal device forwards on no answer if it still rings.
    NoAnswer { call: String, device: String },
}

impl Timer {
    fn call_mut(&mut self) -> &mut String {
        let (Timer::ExternalAnswer { call, .. }
        | Timer::ExternalClear { call, .. }
        | Timer::NoAnswer { call, .. }) = self;
        call
    }
}

/// Pending timers in due order (ties in scheduling order).
#[derive(Debug, Default)]
pub(super) struct Timers {
    due: BTreeMap<(Instant, u64), Timer>,
    scheduled: u64,
}

impl Timers {
    pub(super) fn schedule(&mut self, at: Instant, timer: Timer) {
        self.scheduled += 1;
        self.due.insert((at, self.scheduled), timer);
    }

    /// When the next timer is due.
    pub(super) fn next(&self) -> Option<Instant> {
        self.due.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let entry = self.due.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        Some(entry.remove())
    }

    /// Timers of the calls `olds` now act on `new` (the calls were merged into it).
    pub(super) fn move_calls(&mut self, olds: &[String], new: &str) {
        for t in self.due.values_mut() {
            let call = t.call_mut();
            if olds.contains(call) {
                new.clone_into(call);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn clear(call: &str) -> Timer {
        Timer::ExternalClear {
            call: call.into(),
            device: "555".into(),
        }
    }

    #[test]
    fn timers_come_due_in_order_and_follow_merged_calls() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.schedule(t0 + Duration::from_secs(2), clear("1"));
        t.schedule(t0 + Duration::from_secs(1), clear("2"));
        t.schedule(t0 + Duration::from_secs(1), clear("3"));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None);
        t.move_calls(&["1".to_owned(), "3".to_owned()], "4");
        let s = t0 + Duration::from_secs(1);
        assert_eq!(t.pop_due(s), Some(clear("2")));
        assert_eq!(t.pop_due(s), Some(clear("4")));
        assert_eq!(t.pop_due(s), None);
        assert_eq!(t.pop_due(t0 + Duration::from_secs(2)), Some(clear("4")));
        assert_eq!(t.next(), None);
    }
}
