//! What an operator does to a running gateway: drain it for maintenance, or hand it a reloaded
//! policy.

use std::time::Instant;

use super::Gateway;
use crate::metrics::EndReason;
use crate::setup::Policy;

impl Gateway {
    /// Drains (`true`: new sessions are refused with 503 and Retry-After, existing ones are
    /// served until they end) or takes new sessions again.
    pub fn set_draining(&mut self, draining: bool) {
        if draining != self.draining {
            tracing::info!(draining, "drain mode changed");
        }
        self.draining = draining;
        self.metrics.draining.set(i64::from(draining));
    }

    /// Whether the gateway drains.
    pub fn draining(&self) -> bool {
        self.draining
    }

    /// Why the gateway takes no new session now, if it does not.
    pub(super) fn unavailable(&self) -> Option<&'static str> {
        if self.draining {
            Some("draining")
        } else if !self.link.is_serving() {
            Some("PBX link down")
        } else {
            None
        }
    }

    /// Runs on a new policy (a reloaded authorization table or numbering plan). A session the
    /// new table no longer lets its user open, or whose line now maps to another PBX device, is
    /// ended with a BYE (its client signs in again, onto the right monitor) and counted as
    /// ended for `reload`; the others go on untouched. Returns how many were ended.
    pub fn set_policy(&mut self, policy: Policy, now: Instant) -> usize {
        self.now = now;
        self.policy = policy;
        let mut ended = 0;
        for sid in self.sessions.ids() {
            let Some(s) = self.sessions.get(sid) else {
                continue;
            };
            let p = &self.policy;
            let allowed = p.authorization.may_open(&p.numbering, &s.user, &s.line);
            if allowed && p.numbering.line_to_device(&s.line) == s.device {
                continue;
            }
            tracing::info!(session = %sid, user = %s.user, line = %s.line, allowed, "session ended by a reload");
            self.metrics.ended(EndReason::Reload);
            self.end_session(sid, true);
            ended += 1;
        }
        self.pump_link();
        ended
    }
}
