//! Offering a call to a destination: forwarding, do-not-disturb, busy, call waiting and
//! external scripts decide between ringing, diverting and failing.

use std::time::{Duration, Instant};

use rcc_protocol::csta::{
    CallEventKind, Cause, DeviceRef, ForwardingType, LocalConnectionState as State,
};

use super::Switch;
use super::calls::Party;
use super::events::{call_event, conn};
use super::timers::Timer;
use crate::pbx::directory::{Reach, Resolved, strip_decoration};

/// Diversions allowed before forwarding stops being followed (a forwarding loop rings or fails).
const MAX_HOPS: u8 = 5;

/// Context of a call offered to a device.
#[derive(Debug, Clone)]
pub(super) struct Offer {
    /// The cause of the Delivered (or Failed) event.
    pub(super) cause: &'static str,
    /// The device the call was diverted from, if any.
    pub(super) last_redirection: Option<String>,
    /// Forwarding hops so far.
    pub(super) hops: u8,
}

impl Offer {
    /// A call offered for the first time.
    pub(super) fn fresh(cause: &'static str) -> Self {
        Offer {
            cause,
            last_redirection: None,
            hops: 0,
        }
    }

    /// A call diverted away from `device`.
    pub(super) fn redirected(cause: &'static str, device: String, hops: u8) -> Self {
        Offer {
            cause,
            last_redirection: Some(device),
            hops,
        }
    }
}

impl Switch {
    /// Offers `call` to `target` (already resolved as dialable).
    pub(super) fn offer(&mut self, call: &str, target: Resolved, offer: Offer, now: Instant) {
        match target {
            Resolved::Internal(b) => self.offer_internal(call, b, offer, now),
            Resolved::External(x) => self.offer_external(call, x, offer, now),
            Resolved::Invalid => self.fail(call, "", "invalidNumberFormat", &offer),
        }
    }

    fn offer_internal(&mut self, call: &str, b: String, offer: Offer, now: Instant) {
        let Some(dev) = self.devices.get(&b) else {
            return;
        };
        let cfu = dev.forward_to(&ForwardingType::Immediate);
        let cfb = dev.forward_to(&ForwardingType::Busy);
        let cfna = dev
            .forward(&ForwardingType::NoAnswer)
            .map(|f| f.ring_count.unwrap_or(self.config.default_ring_count));
        let dnd = dev.dnd;
        let call_waiting = dev.config.call_waiting;
        if offer.hops < MAX_HOPS
            && let Some(to) = cfu
        {
            let hops = offer.hops + 1;
            return self.divert(call, &b, &to, "callForwardImmediate", hops, now);
        }
        if dnd {
            return self.fail(call, &b, "doNotDisturb", &offer);
        }
        // Call waiting: a second call rings (one waiting call at most).
        let waits = call_waiting && self.calls.in_state(&b, &[State::Alerting]).is_none();
        if self.calls.is_busy(&b) && !waits {
            if let (Some(to), true) = (cfb, offer.hops < MAX_HOPS) {
                let hops = offer.hops + 1;
                return self.divert(call, &b, &to, "callForwardBusy", hops, now);
            }
            return self.fail(call, &b, "busy", &offer);
        }
        self.ring(call, &b, true, &offer);
        if let Some(rings) = cfna {
            let at = now + self.config.ring * rings;
            let device = b;
            let call = call.to_owned();
            self.timers.schedule(at, Timer::NoAnswer { call, device });
        }
    }

    fn offer_external(&mut self, call: &str, x: String, offer: Offer, now: Instant) {
        let script = self.devices.script(&x, &self.config.default_external);
        match script.reach {
            Reach::Busy => return self.fail(call, &x, "busy", &offer),
            Reach::Reject => return self.fail(call, &x, "blocked", &offer),
            Reach::Unallocated => return self.fail(call, &x, "numberUnallocated", &offer),
            Reach::Ring => {}
        }
        self.ring(call, &x, false, &offer);
        if let Some(ms) = script.answer_after_ms {
            let (call, device) = (call.to_owned(), x.clone());
            let at = now + Duration::from_millis(ms);
            self.timers
                .schedule(at, Timer::ExternalAnswer { call, device });
        }
        if let Some(ms) = script.clear_after_ms {
            let (call, device) = (call.to_owned(), x);
            let at = now + Duration::from_millis(ms);
            self.timers
                .schedule(at, Timer::ExternalClear { call, device });
        }
    }

    /// `device` joins `call` ringing: Delivered.
    fn ring(&mut self, call: &str, device: &str, internal: bool, offer: &Offer) {
        if let Some(c) = self.calls.get_mut(call) {
            c.parties.push(Party {
                device: device.to_owned(),
                internal,
                state: State::Alerting,
            });
        }
        self.calls.index(call);
        let (calling, called) = self.calls.refs(call);
        let mut e = call_event(CallEventKind::Delivered, conn(call, device));
        e.subject = Some(self.dref(device));
        e.calling = Some(self.dref(&calling));
        e.called = Some(self.dref(&called));
        e.last_redirection = Some(match &offer.last_redirection {
            Some(d) => self.dref(d),
            None => DeviceRef::NotRequired,
        });
        e.cause = Some(Cause::new(offer.cause));
        self.notify(call, e, &[]);
    }

    /// The call cannot reach `target`: the parties still connected go to `fail`.
    fn fail(&mut self, call: &str, target: &str, cause: &str, offer: &Offer) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        for p in c.parties.iter_mut().filter(|p| p.state == State::Connected) {
            p.state = State::Fail;
        }
        let (calling, called) = self.calls.refs(call);
        let mut e = call_event(CallEventKind::Failed, conn(call, target));
        e.subject = Some(self.dref(target));
        e.calling = Some(self.dref(&calling));
        e.called = Some(self.dref(&called));
        if let Some(d) = &offer.last_redirection {
            e.last_redirection = Some(self.dref(d));
        }
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[]);
        // A call whose caller is an external party has nobody to hear the busy tone.
        let externals: Option<Vec<String>> = self
            .calls
            .get(call)
            .filter(|c| c.parties.iter().all(|p| !p.internal))
            .map(|c| c.parties.iter().map(|p| p.device.clone()).collect());
        for x in externals.unwrap_or_default() {
            self.clear_connection(call, &x, "normalClearing");
        }
    }

    /// Takes `call` away from `device`, which rings (deflected, or no answer), to `to`.
    pub(super) fn divert_away(
        &mut self,
        call: &str,
        device: &str,
        to: &str,
        cause: &'static str,
        hops: u8,
        now: Instant,
    ) {
        if let Some(c) = self.calls.get_mut(call) {
            c.parties.retain(|p| p.device != device);
        }
        self.divert(call, device, to, cause, hops, now);
    }

    /// Diverts a call from `device` to `to`: Diverted, then the offer to `to` after `hops`
    /// diversions.
    fn divert(
        &mut self,
        call: &str,
        device: &str,
        to: &str,
        cause: &'static str,
        hops: u8,
        now: Instant,
    ) {
        self.diverted_event(call, device, to, cause);
        let target = self.devices.resolve(to);
        let offer = Offer::redirected(cause, device.to_owned(), hops);
        self.offer(call, target, offer, now);
    }

    /// Diverted, also to the monitors of `device` (which is no longer a party).
    fn diverted_event(&mut self, call: &str, device: &str, to: &str, cause: &str) {
        let (calling, called) = self.calls.refs(call);
        let mut e = call_event(CallEventKind::Diverted, conn(call, device));
        e.subject = Some(self.dref(device));
        e.target = Some(self.dref(strip_decoration(to)));
        e.calling = Some(self.dref(&calling));
        e.called = Some(self.dref(&called));
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[device]);
    }
}
