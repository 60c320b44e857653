//! The state changes CSTA services and desk-phone actions share: placing a call, answering
//! one, changing forwarding and do-not-disturb; and the scripted timers that fire later.

use std::time::Instant;

use rcc_protocol::csta::{
    CallEventKind, Cause, CstaError, DoNotDisturbEvent, Event, ForwardItem, ForwardingEvent,
    ForwardingType, LocalConnectionState as State,
};

use super::Switch;
use super::calls::Call;
use super::events::{call_event, conn};
use super::refusal::state_err;
use super::routing::Offer;
use super::timers::Timer;
use crate::pbx::directory::strip_decoration;

impl Switch {
    /// `calling` (internal) calls `called`; with `prompt` its own phone rings first and the call
    /// is placed once it answers. Returns the call ID.
    pub(super) fn make_call(
        &mut self,
        calling: &str,
        called: &str,
        prompt: bool,
        cause: &str,
        now: Instant,
    ) -> Result<String, CstaError> {
        let a = self
            .devices
            .controllable(calling, "invalidCallingDeviceID")?;
        let target = self.devices.destination(called, "invalidCalledDeviceID")?;
        if self.calls.is_busy(&a) {
            return Err(state_err("invalidCallingDeviceState"));
        }
        let number = strip_decoration(called).to_owned();
        let call = self.calls.new_id(self.config.call_ids);
        self.calls.insert(Call::new(&call, &a, &number));
        if prompt {
            if let Some(c) = self.calls.get_mut(&call) {
                c.pending_dial = Some(number.clone());
                if let Some(p) = c.party_mut(&a) {
                    p.state = State::Alerting;
                }
            }
            let mut e = call_event(CallEventKind::Delivered, conn(&call, &a));
            e.subject = Some(self.dref(&a));
            e.calling = Some(self.dref(&a));
            e.called = Some(self.dref(&number));
            e.cause = Some(Cause::new("newCall"));
            self.notify(&call, e, &[]);
            return Ok(call);
        }
        self.initiate(&call, &a, cause);
        self.originate(&call, &a, &number, "newCall");
        self.offer(&call, target, Offer::fresh("newCall"), now);
        Ok(call)
    }

    /// `device` answers `call`, where it rings. The caller of a prompted MakeCall went
    /// off-hook: the call is placed. Otherwise a call `device` is connected in goes on hold.
    pub(super) fn answer(&mut self, call: &str, device: &str, now: Instant) {
        let pending = self.calls.get_mut(call).and_then(|c| {
            if c.parties.first().is_some_and(|p| p.device == device) {
                c.pending_dial.take()
            } else {
                None
            }
        });
        if let Some(number) = pending {
            self.initiate(call, device, "makeCall");
            self.originate(call, device, strip_decoration(&number), "newCall");
            let target = self.devices.resolve(&number);
            self.offer(call, target, Offer::fresh("newCall"), now);
            return;
        }
        // Answering a waiting call: the call in progress goes on hold first.
        if let Some(active) = self.connected_besides(device, call) {
            self.hold(&active, device, "normal");
        }
        self.establish(call, device);
    }

    /// The call other than `call` in which the desk phone `device` is connected. Desk phones
    /// only: an external number is a party of every call it is in, and scanning them all on
    /// each answer made the simulator quadratic under load.
    fn connected_besides(&self, device: &str, call: &str) -> Option<String> {
        if !self.devices.contains(device) {
            return None;
        }
        self.calls.connected_besides(device, call)
    }

    /// Refuses answering `call` at `device` while it is connected in another call, when the
    /// switch does not hold that call itself.
    pub(super) fn may_answer(&self, device: &str, call: &str) -> Result<(), CstaError> {
        if !self.config.hold_on_answer && self.connected_besides(device, call).is_some() {
            return Err(state_err("connectedCallExists"));
        }
        Ok(())
    }

    /// Sets forwarding of `kind` at `device` (replacing the previous setting of that kind):
    /// Forwarding event.
    pub(super) fn set_forwarding(
        &mut self,
        device: &str,
        kind: ForwardingType,
        activate: bool,
        dn: Option<String>,
        ring_count: Option<u32>,
    ) {
        let Some(dev) = self.devices.get_mut(device) else {
            return;
        };
        dev.forwarding.retain(|f| f.forwarding_type != kind);
        dev.forwarding.push(ForwardItem {
            forwarding_type: kind.clone(),
            status: activate,
            forward_dn: dn.clone(),
            ring_count,
        });
        let event = ForwardingEvent {
            cross_ref: String::new(),
            device: self.dref(device),
            forwarding_type: kind,
            status: activate,
            forward_to: dn,
            ring_count,
        };
        self.notify_device(device, Event::Forwarding(event));
    }

    /// Turns do-not-disturb on or off at `device`: DoNotDisturb event.
    pub(super) fn set_dnd(&mut self, device: &str, on: bool) {
        if let Some(dev) = self.devices.get_mut(device) {
            dev.dnd = on;
        }
        let event = DoNotDisturbEvent {
            cross_ref: String::new(),
            device: self.dref(device),
            on,
        };
        self.notify_device(device, Event::DoNotDisturb(event));
    }

    /// When the next scripted action is due.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Runs every scripted action due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::ExternalAnswer { call, device } => {
                    if self.calls.state_in(&call, &device) == State::Alerting {
                        self.answer(&call, &device, now);
                    }
                }
                Timer::ExternalClear { call, device } => {
                    if self.calls.state_in(&call, &device) != State::Null {
                        self.clear_connection(&call, &device, "normalClearing");
                    }
                }
                Timer::NoAnswer { call, device } => {
                    if self.calls.state_in(&call, &device) == State::Alerting {
                        let target = self
                            .devices
                            .get(&device)
                            .and_then(|d| d.forward_to(&ForwardingType::NoAnswer));
                        if let Some(target) = target {
                            let cause = "callForwardNoAnswer";
                            self.divert_away(&call, &device, &target, cause, 1, now);
                        }
                    }
                }
            }
        }
    }
}
