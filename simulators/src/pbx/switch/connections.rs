//! The state changes of one connection and the event each reports: initiated, originated,
//! established, held, retrieved, cleared; the end of a call; and the merge of calls into one.

use rcc_protocol::csta::{
    CallEvent, CallEventKind, Cause, ConnectionId, LocalConnectionState as State,
};

use super::Switch;
use super::calls::{Call, Party};
use super::events::{call_event, conn};

impl Switch {
    /// Sets the state of `device` in `call` (when it is a party).
    fn set_state(&mut self, call: &str, device: &str, state: State) {
        if let Some(p) = self.calls.get_mut(call).and_then(|c| c.party_mut(device)) {
            p.state = state;
        }
    }

    /// `device` went off-hook for `call`: ServiceInitiated.
    pub(super) fn initiate(&mut self, call: &str, device: &str, cause: &str) {
        self.set_state(call, device, State::Initiated);
        let mut e = call_event(CallEventKind::ServiceInitiated, conn(call, device));
        e.subject = Some(self.dref(device));
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[]);
    }

    /// `device` dialled `called`: Originated.
    pub(super) fn originate(&mut self, call: &str, device: &str, called: &str, cause: &str) {
        self.set_state(call, device, State::Connected);
        let mut e = call_event(CallEventKind::Originated, conn(call, device));
        e.calling = Some(self.dref(device));
        e.called = Some(self.dref(called));
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[]);
    }

    /// `device` answered `call`: Established.
    pub(super) fn establish(&mut self, call: &str, device: &str) {
        self.set_state(call, device, State::Connected);
        let (calling, called) = self.calls.refs(call);
        let mut e = call_event(CallEventKind::Established, conn(call, device));
        e.subject = Some(self.dref(device));
        e.calling = Some(self.dref(&calling));
        e.called = Some(self.dref(&called));
        e.cause = Some(Cause::new("normal"));
        self.notify(call, e, &[]);
    }

    /// `device` put `call` on hold: Held.
    pub(super) fn hold(&mut self, call: &str, device: &str, cause: &str) {
        self.set_state(call, device, State::Hold);
        let mut e = call_event(CallEventKind::Held, conn(call, device));
        e.subject = Some(self.dref(device));
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[]);
    }

    /// `device` took `call` off hold: Retrieved.
    pub(super) fn retrieve(&mut self, call: &str, device: &str, cause: &str) {
        self.set_state(call, device, State::Connected);
        let mut e = call_event(CallEventKind::Retrieved, conn(call, device));
        e.subject = Some(self.dref(device));
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[]);
    }

    /// `device` left `call`: ConnectionCleared. When at most one party remains the call ends
    /// (after a ConnectionCleared of its own for that party if the profile wants one).
    pub(super) fn clear_connection(&mut self, call: &str, device: &str, cause: &str) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        c.parties.retain(|p| p.device != device);
        let remaining: Vec<String> = c.parties.iter().map(|p| p.device.clone()).collect();
        let teardown = remaining.len() <= 1;
        let second = self.config.second_connection_cleared;
        if teardown && !second {
            c.parties.clear();
        }
        let mut e = call_event(CallEventKind::ConnectionCleared, conn(call, device));
        e.subject = Some(self.dref(device));
        e.cause = Some(Cause::new(cause));
        let mut also: Vec<&str> = vec![device];
        also.extend(remaining.iter().map(String::as_str));
        self.notify(call, e, &also);
        if teardown {
            if second {
                for r in &remaining {
                    if let Some(c) = self.calls.get_mut(call) {
                        c.parties.retain(|p| &p.device != r);
                    }
                    let mut e = call_event(CallEventKind::ConnectionCleared, conn(call, r));
                    e.subject = Some(self.dref(r));
                    e.cause = Some(Cause::new(cause));
                    self.notify(call, e, &[r.as_str()]);
                }
            }
            self.end_call(call, cause);
        }
    }

    /// `call` is over: CallCleared to its call monitors, which go with it.
    fn end_call(&mut self, call: &str, cause: &str) {
        let mut e = CallEvent::new(CallEventKind::CallCleared, "");
        e.connection = Some(ConnectionId {
            call_id: Some(call.to_owned()),
            device_id: None,
        });
        e.cause = Some(Cause::new(cause));
        if let Some(c) = self.calls.get_mut(call) {
            c.parties.clear();
        }
        // Only call monitors care (device monitors already saw their connections cleared).
        self.notify(call, e, &[]);
        self.calls.remove(call);
        self.monitors.forget_call(call);
    }

    /// Moves parties of old calls into a new call, re-keying timers and call monitors.
    pub(super) fn merge(
        &mut self,
        new_id: &str,
        moved: &[(String, Party)],
        calling: String,
        called: String,
    ) {
        let olds: Vec<String> = moved.iter().map(|(c, _)| c.clone()).collect();
        let mut call = Call::new(new_id, &calling, &called);
        call.parties = moved.iter().map(|(_, p)| p.clone()).collect();
        self.calls.insert(call);
        self.timers.move_calls(&olds, new_id);
        self.monitors.move_calls(&olds, new_id);
    }
}
