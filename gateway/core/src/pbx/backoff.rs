//! Retries of device monitors the PBX refused for want of resources (`overallMonitorLimitExceeded`,
//! `resourceBusy`, a timeout, a full pacing queue) while sessions still depend on them: after a
//! resync, after the switch ended a monitor. Each device waits twice as long as after its
//! previous refusal, from `first` up to `cap`, with a spread of up to a quarter taken from the
//! device's name so that the devices refused in one storm do not all come back in the same
//! instant. The schedule is deterministic: time is an input, as everywhere in the core.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use crate::timers::{TimerId, Timers};

/// The delays of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffDelays {
    /// After the first refusal.
    pub first: Duration,
    /// The longest wait between two attempts.
    pub cap: Duration,
}

impl Default for BackoffDelays {
    fn default() -> Self {
        BackoffDelays {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

/// One device waiting for its next attempt.
#[derive(Debug)]
struct Waiting {
    refusals: u32,
    timer: Option<TimerId>,
}

/// The devices whose monitor is to be asked for again, and when.
#[derive(Debug, Default)]
pub struct MonitorBackoff {
    delays: BackoffDelays,
    devices: HashMap<String, Waiting>,
    timers: Timers<String>,
}

impl MonitorBackoff {
    pub fn new(delays: BackoffDelays) -> MonitorBackoff {
        MonitorBackoff {
            delays,
            ..MonitorBackoff::default()
        }
    }

    /// The PBX refused `device`'s monitor: schedules the next attempt and says how far off it is.
    pub fn refused(&mut self, device: &str, now: Instant) -> Duration {
        let w = self.devices.entry(device.to_owned()).or_insert(Waiting {
            refusals: 0,
            timer: None,
        });
        if let Some(t) = w.timer.take() {
            self.timers.cancel(t);
        }
        let doubled = self
            .delays
            .first
            .saturating_mul(1u32.checked_shl(w.refusals).unwrap_or(u32::MAX));
        let base = doubled.min(self.delays.cap);
        let delay = base + spread(device, base);
        w.refusals = w.refusals.saturating_add(1);
        w.timer = Some(self.timers.set(now + delay, device.to_owned()));
        delay
    }

    /// The monitor is up, or nobody needs it any more: its schedule is forgotten.
    pub fn clear(&mut self, device: &str) {
        if let Some(w) = self.devices.remove(device)
            && let Some(t) = w.timer
        {
            self.timers.cancel(t);
        }
    }

    /// Every schedule is forgotten (the link is down: its resync asks for every monitor).
    pub fn clear_all(&mut self) {
        self.devices.clear();
        self.timers = Timers::default();
    }

    /// Devices waiting for an attempt.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.timers.next_due()
    }

    /// A device whose next attempt is due at `now` (its refusal count is kept for the next
    /// refusal, until [`MonitorBackoff::clear`]).
    pub fn pop_due(&mut self, now: Instant) -> Option<String> {
        let device = self.timers.pop_due(now)?;
        if let Some(w) = self.devices.get_mut(&device) {
            w.timer = None;
        }
        Some(device)
    }
}

/// Up to a quarter of `base`, the same for the same device.
fn spread(device: &str, base: Duration) -> Duration {
    let mut h = DefaultHasher::new();
    device.hash(&mut h);
    base.mul_f64((h.finish() % 1000) as f64 / 4000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn waits_double_up_to_the_cap_and_end_when_cleared() {
        let t0 = Instant::now();
        let mut b = MonitorBackoff::new(BackoffDelays {
            first: secs(1),
            cap: secs(8),
        });
        let waits: Vec<Duration> = (0..6).map(|_| b.refused("100", t0)).collect();
        for (w, base) in waits.iter().zip([1, 2, 4, 8, 8, 8]) {
            assert!(
                *w >= secs(base) && *w <= secs(base).mul_f64(1.25),
                "{waits:?}"
            );
        }
        assert_eq!(b.len(), 1, "one device, one schedule");
        assert_eq!(b.pop_due(t0), None, "nothing is due before its time");
        assert_eq!(b.pop_due(t0 + secs(11)).as_deref(), Some("100"));
        assert_eq!(b.pop_due(t0 + secs(11)), None, "one attempt per refusal");
        b.clear("100");
        assert!(b.is_empty());
        let again = b.refused("100", t0);
        assert!(
            again <= secs(1).mul_f64(1.25),
            "cleared: the schedule starts over"
        );
    }

    #[test]
    fn a_cleared_device_is_not_retried() {
        let t0 = Instant::now();
        let mut b = MonitorBackoff::default();
        b.refused("100", t0);
        b.refused("101", t0);
        b.clear("100");
        let due: Vec<String> = std::iter::from_fn(|| b.pop_due(t0 + secs(5))).collect();
        assert_eq!(due, ["101"]);
    }

    #[test]
    fn the_spread_differs_between_devices_but_not_between_runs() {
        let base = secs(10);
        let spreads: Vec<Duration> = (100..110).map(|d| spread(&d.to_string(), base)).collect();
        assert!(spreads.iter().any(|s| *s != spreads[0]), "{spreads:?}");
        assert_eq!(spread("100", base), spreads[0]);
    }
}
