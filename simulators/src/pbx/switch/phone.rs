//! Desk-phone actions (what a user does at the phone) and calls from external parties over a
//! trunk. They report the same events as the matching CSTA services.

use std::time::{Duration, Instant};

use rcc_protocol::csta::{CstaError, ForwardingType, LocalConnectionState as State};

use super::Switch;
use super::calls::Call;
use super::refusal::{op, state_err};
use super::routing::Offer;
use super::timers::Timer;
use crate::pbx::directory::{Resolved, strip_decoration};

impl Switch {
    /// The desk phone of `device` dials `number` (off-hook, then dialling).
    pub fn phone_dial(
        &mut self,
        device: &str,
        number: &str,
        now: Instant,
    ) -> Result<String, CstaError> {
        let a = self.devices.internal(device)?;
        self.make_call(&a, number, false, "newCall", now)
    }

    /// The desk phone (or an external party) answers its ringing call; a prompted MakeCall
    /// proceeds.
    pub fn phone_answer(&mut self, device: &str, now: Instant) -> Result<String, CstaError> {
        let d = self.devices.party(device)?;
        let call = self
            .calls
            .in_state(&d, &[State::Alerting])
            .ok_or_else(|| state_err("noCallToAnswer"))?;
        self.may_answer(&d, &call)?;
        self.answer(&call, &d, now);
        Ok(call)
    }

    /// The desk phone (or an external party) hangs up its active call.
    pub fn phone_hang_up(&mut self, device: &str) -> Result<String, CstaError> {
        let d = self.devices.party(device)?;
        let external = !matches!(self.resolve(device), Resolved::Internal(_));
        let mut states = vec![State::Connected, State::Initiated, State::Fail];
        if external {
            // An external caller that gives up while it still rings the other side.
            states.push(State::Alerting);
        }
        let call = self
            .calls
            .in_state(&d, &states)
            .ok_or_else(|| state_err("noCallToClear"))?;
        self.clear_connection(&call, &d, "normalClearing");
        Ok(call)
    }

    /// The desk phone puts its active call on hold.
    pub fn phone_hold(&mut self, device: &str) -> Result<String, CstaError> {
        let d = self.devices.internal(device)?;
        let call = self
            .calls
            .in_state(&d, &[State::Connected])
            .ok_or_else(|| state_err("noActiveCall"))?;
        self.hold(&call, &d, "normal");
        Ok(call)
    }

    /// The desk phone retrieves its held call.
    pub fn phone_retrieve(&mut self, device: &str) -> Result<String, CstaError> {
        let d = self.devices.internal(device)?;
        let call = self
            .calls
            .in_state(&d, &[State::Hold])
            .ok_or_else(|| state_err("noHeldCall"))?;
        if self.calls.is_busy(&d) {
            return Err(state_err("connectedCallExists"));
        }
        self.retrieve(&call, &d, "normal");
        Ok(call)
    }

    /// Forwarding changed at the phone (feature code): same event as SetForwarding.
    pub fn phone_forwarding(
        &mut self,
        device: &str,
        kind: ForwardingType,
        forward_to: Option<&str>,
    ) -> Result<(), CstaError> {
        let d = self.devices.internal(device)?;
        let activate = forward_to.is_some();
        self.set_forwarding(&d, kind, activate, forward_to.map(str::to_owned), None);
        Ok(())
    }

    /// Do-not-disturb changed at the phone.
    pub fn phone_dnd(&mut self, device: &str, on: bool) -> Result<(), CstaError> {
        let d = self.devices.internal(device)?;
        self.set_dnd(&d, on);
        Ok(())
    }

    /// Turns call waiting on or off for an internal device (a line setting: no event).
    pub fn set_call_waiting(&mut self, device: &str, on: bool) -> Result<String, CstaError> {
        let d = self.devices.internal(device)?;
        if let Some(dev) = self.devices.get_mut(&d) {
            dev.config.call_waiting = on;
        }
        Ok(d)
    }

    /// An external number calls `to` through a trunk. Returns the call ID.
    pub fn incoming(&mut self, from: &str, to: &str, now: Instant) -> Result<String, CstaError> {
        let x = match self.resolve(from) {
            Resolved::Invalid => return Err(op("invalidCallingDeviceID")),
            Resolved::Internal(d) => return self.phone_dial(&d, to, now),
            Resolved::External(x) => x,
        };
        let target = self.devices.destination(to, "invalidCalledDeviceID")?;
        let called = strip_decoration(to).to_owned();
        let call = self.calls.new_id(self.config.call_ids);
        let mut c = Call::new(&call, &x, &called);
        c.parties[0].internal = false;
        c.parties[0].state = State::Connected;
        self.calls.insert(c);
        let script = self.devices.script(&x, &self.config.default_external);
        if let Some(ms) = script.clear_after_ms {
            let at = now + Duration::from_millis(ms);
            let timer = Timer::ExternalClear {
                call: call.clone(),
                device: x,
            };
            self.timers.schedule(at, timer);
        }
        self.offer(&call, target, Offer::fresh("newCall"), now);
        Ok(call)
    }
}
