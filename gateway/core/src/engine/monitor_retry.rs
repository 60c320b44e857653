//! A device monitor the PBX refused while sessions depend on it (after a resync, after the
//! switch ended it): asked for again with a backoff when the refusal was for want of resources,
//! its sessions ended otherwise, so that their clients sign in again and hear the PBX's answer
//! to their own MonitorStart instead of waiting for events that will never come.

use std::time::Instant;

use super::Gateway;
use crate::metrics::EndReason;
use crate::pbx::link::Failure;

impl Gateway {
    /// The PBX refused `device`'s monitor (its waiting clients are answered already).
    pub(super) fn monitor_refused(&mut self, device: &str, failure: &Failure) {
        let sessions = self.monitors.sessions_on(device).to_vec();
        if sessions.is_empty() {
            self.monitor_retries.clear(device);
        } else if failure.is_transient() {
            let wait = self.monitor_retries.refused(device, self.now);
            self.metrics.monitor_retries.inc();
            tracing::warn!(
                device,
                sessions = sessions.len(),
                error = %failure.to_csta(),
                wait_ms = wait.as_millis() as u64,
                "the PBX refused a monitor sessions need; asking again later"
            );
        } else if !matches!(failure, Failure::LinkDown) {
            tracing::warn!(
                device,
                sessions = sessions.len(),
                error = %failure.to_csta(),
                "the PBX refused a monitor sessions need; ending them"
            );
            self.monitor_retries.clear(device);
            for sid in sessions {
                self.metrics.ended(EndReason::MonitorRefused);
                self.end_session(sid, true);
            }
        }
        self.metrics
            .monitors_awaiting_retry
            .set(self.monitor_retries.len() as i64);
    }

    /// The device's monitor is up, or was given up: no retry is pending for it.
    pub(super) fn monitor_settled(&mut self, device: &str) {
        self.monitor_retries.clear(device);
        self.metrics
            .monitors_awaiting_retry
            .set(self.monitor_retries.len() as i64);
    }

    /// Asks again for the monitors whose wait is over and that sessions still need.
    pub(super) fn retry_due_monitors(&mut self, now: Instant) {
        while let Some(device) = self.monitor_retries.pop_due(now) {
            let Some(m) = self.monitors.get(&device) else {
                self.monitor_settled(&device);
                continue;
            };
            if m.sessions.is_empty() {
                self.monitor_settled(&device);
            } else if !m.is_up() && !m.is_starting() {
                self.start_monitor(&device);
            }
            // Up: nothing to do. Starting (a client's MonitorStart went out meanwhile): its
            // answer settles the device or schedules the next attempt.
        }
    }
}
