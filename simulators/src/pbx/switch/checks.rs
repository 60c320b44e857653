//! Checking what a request names: a connection CTI may control, the state it must be in, and
//! the held and active connections of one device.

use rcc_protocol::csta::{ConnectionId, CstaError, LocalConnectionState as State};

use super::Switch;
use super::refusal::{op, state_err};

impl Switch {
    /// The call and device of a connection a request names, which CTI may control.
    pub(super) fn connection(&self, c: &ConnectionId) -> Result<(String, String), CstaError> {
        let call = c
            .call_id
            .as_deref()
            .ok_or_else(|| op("invalidConnectionID"))?;
        let raw = c
            .device_id
            .as_deref()
            .ok_or_else(|| op("invalidConnectionID"))?;
        let call_rec = self.calls.get(call).ok_or_else(|| op("invalidCallID"))?;
        let device = self
            .devices
            .party(raw)
            .map_err(|_| op("invalidConnectionID"))?;
        if call_rec.party(&device).is_none() {
            return Err(op("invalidConnectionID"));
        }
        if self.devices.get(&device).is_some_and(|d| !d.config.cti) {
            return Err(op("privilegeViolationSpecifiedDevice"));
        }
        Ok((call.to_owned(), device))
    }

    /// Refuses with `error` unless `device` is in state `wanted` in `call`.
    pub(super) fn expect_state(
        &self,
        call: &str,
        device: &str,
        wanted: State,
        error: &str,
    ) -> Result<(), CstaError> {
        if self.calls.state_in(call, device) == wanted {
            Ok(())
        } else {
            Err(state_err(error))
        }
    }

    /// The held and active connections of one device, each checked as a connection.
    pub(super) fn held_and_active(
        &self,
        held: &ConnectionId,
        active: &ConnectionId,
    ) -> Result<(String, String, String), CstaError> {
        let (c1, a) = self.connection(held)?;
        let (c2, a2) = self.connection(active)?;
        if a != a2 {
            return Err(op("notSameDevice"));
        }
        Ok((c1, c2, a))
    }
}
