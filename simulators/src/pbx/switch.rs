//! The simulated switch: devices, calls and their connections in ECMA-269 local connection
//! states, device and call monitors, and the event sequences of every service (pbx-csta.md §12
//! and §17). Sans-IO: requests and desk-phone actions go in with the current time; a response
//! comes back and events queue up as [`Notice`]s; scripted delays are timers the caller drives
//! with [`Switch::next_timeout`] and [`Switch::handle_timeout`].
//!
//! CTI requests and desk-phone actions use the same generators, so a call answered at the desk
//! phone produces exactly the events of an AnswerCall.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rcc_protocol::csta::{
    CallEvent, CallEventKind, Cause, ConnectionId, ConnectionListItem, CstaError,
    DoNotDisturbEvent, ErrorCategory, Event, ForwardItem, ForwardingEvent, ForwardingType,
    LocalConnectionState as State, MonitorObject, Request, Response, SnapshotCall,
};
use serde::Serialize;

use super::directory::{
    DeviceConfig, ExternalParty, Reach, Resolved, is_dialable, strip_decoration,
};

/// Who owns a monitor (the link it was started on).
pub type Owner = u64;

/// An event for one monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The link that owns the monitor.
    pub owner: Owner,
    /// The event, carrying that monitor's cross-reference ID.
    pub event: Event,
}

/// How the switch formats call IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallIdFormat {
    /// Small decimal numbers (Avaya, generic).
    Decimal,
    /// 32 hexadecimal digits (OpenScape Voice).
    Hex32,
}

/// Behaviour of the switch that varies by vendor profile or lab.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    /// Call ID format.
    pub call_ids: CallIdFormat,
    /// Report devices in events as OpenScape Voice does (`N<number>;noa=nk`).
    pub decorate_devices: bool,
    /// After the last-but-one party leaves, send the remaining party a second
    /// ConnectionCleared for its own connection (otherwise one event tears the call down).
    pub second_connection_cleared: bool,
    /// Duration of one ring, for no-answer forwarding (`ringCount` rings).
    pub ring: Duration,
    /// Rings before no-answer forwarding when SetForwarding gives no `ringCount`.
    pub default_ring_count: u32,
    /// Monitors allowed on one device.
    pub monitors_per_device: usize,
    /// Behaviour of external numbers without their own script.
    pub default_external: ExternalParty,
    /// Answering a call (a waiting one) while the device is in another call holds that call;
    /// false: AnswerCall is refused with `connectedCallExists` and the client holds first.
    pub hold_on_answer: bool,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            call_ids: CallIdFormat::Decimal,
            decorate_devices: false,
            second_connection_cleared: false,
            ring: Duration::from_secs(5),
            default_ring_count: 3,
            monitors_per_device: 16,
            default_external: ExternalParty::default(),
            hold_on_answer: true,
        }
    }
}

/// A party of a call as the control API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartyView {
    /// The device: an internal number or an external number.
    pub device: String,
    /// Whether the device is internal.
    pub internal: bool,
    /// Its local connection state.
    pub state: String,
}

/// A call as the control API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallView {
    /// The call ID.
    pub call_id: String,
    /// Its parties in joining order.
    pub parties: Vec<PartyView>,
    /// Digits generated in the call (GenerateDigits).
    pub digits: String,
}

#[derive(Debug, Clone)]
struct Device {
    config: DeviceConfig,
    forwarding: Vec<ForwardItem>,
    dnd: bool,
}

impl Device {
    fn forward(&self, kind: &ForwardingType) -> Option<&ForwardItem> {
        self.forwarding
            .iter()
            .find(|f| &f.forwarding_type == kind && f.status && f.forward_dn.is_some())
    }
}

#[derive(Debug, Clone)]
struct Party {
    device: String,
    internal: bool,
    state: State,
}

#[derive(Debug, Clone)]
struct Call {
    id: String,
    parties: Vec<Party>,
    /// The calling device as events report it.
    calling: String,
    /// The called number as dialled.
    called: String,
    digits: String,
    /// A MakeCall with autoOriginate=prompt waiting for the caller to go off-hook.
    pending_dial: Option<String>,
}

impl Call {
    fn party(&self, device: &str) -> Option<&Party> {
        self.parties.iter().find(|p| p.device == device)
    }

    fn party_mut(&mut self, device: &str) -> Option<&mut Party> {
        self.parties.iter_mut().find(|p| p.device == device)
    }

    fn state_of(&self, device: &str) -> State {
        self.party(device)
            .map(|p| p.state.clone())
            .unwrap_or(State::Null)
    }
}

/// One device's entry in the call index.
#[derive(Debug, Clone, Default)]
struct PartyCalls {
    ids: std::collections::HashSet<String>,
    /// Entries left after the last pruning.
    live: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Watch {
    Device(String),
    Call(String),
}

#[derive(Debug, Clone)]
struct Monitor {
    owner: Owner,
    watch: Watch,
}

#[derive(Debug, Clone)]
enum Timer {
    ExternalAnswer { call: String, device: String },
    ExternalClear { call: String, device: String },
    NoAnswer { call: String, device: String },
}

/// Context of a call offered to a device.
#[derive(Debug, Clone)]
struct Offer {
    cause: &'static str,
    last_redirection: Option<String>,
    hops: u8,
}

type Outcome = Result<Response, CstaError>;

fn op(value: &str) -> CstaError {
    CstaError::operation(value)
}

fn state_err(value: &str) -> CstaError {
    CstaError::state(value)
}

/// The simulated switch.
#[derive(Debug)]
pub struct Switch {
    config: SwitchConfig,
    devices: BTreeMap<String, Device>,
    /// E.164 number (with and without `+`) → device number.
    by_e164: HashMap<String, String>,
    externals: HashMap<String, ExternalParty>,
    calls: BTreeMap<String, Call>,
    /// The calls each device has joined (may still list calls it left or that ended: checked on
    /// use, pruned once the set doubles), so a device's calls are found without walking every
    /// call.
    party_calls: HashMap<String, PartyCalls>,
    monitors: HashMap<String, Monitor>,
    /// Device monitors per device, in the order they were started.
    by_device: HashMap<String, Vec<String>>,
    has_call_monitors: bool,
    timers: BTreeMap<(Instant, u64), Timer>,
    notices: VecDeque<Notice>,
    next_call: u64,
    next_xref: u64,
    next_timer: u64,
}

impl Switch {
    /// A switch with no devices.
    pub fn new(config: SwitchConfig) -> Self {
        Switch {
            config,
            devices: BTreeMap::new(),
            by_e164: HashMap::new(),
            externals: HashMap::new(),
            calls: BTreeMap::new(),
            party_calls: HashMap::new(),
            monitors: HashMap::new(),
            by_device: HashMap::new(),
            has_call_monitors: false,
            timers: BTreeMap::new(),
            notices: VecDeque::new(),
            next_call: 1,
            next_xref: 1,
            next_timer: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SwitchConfig {
        &self.config
    }

    /// Adds (or replaces) an internal device.
    pub fn add_device(&mut self, config: DeviceConfig) {
        let number = config.number.clone();
        if let Some(e) = &config.e164 {
            self.by_e164.insert(e.clone(), number.clone());
            self.by_e164
                .insert(e.trim_start_matches('+').to_owned(), number.clone());
        }
        self.devices.insert(
            number,
            Device {
                config,
                forwarding: Vec::new(),
                dnd: false,
            },
        );
    }

    /// Scripts an external number.
    pub fn set_external(&mut self, number: &str, party: ExternalParty) {
        self.externals
            .insert(strip_decoration(number).to_owned(), party);
    }

    /// Takes the queued events.
    pub fn take_notices(&mut self) -> impl Iterator<Item = Notice> + '_ {
        self.notices.drain(..)
    }

    /// Whether events are queued.
    pub fn has_notices(&self) -> bool {
        !self.notices.is_empty()
    }

    /// Resolves a device identifier as a request or the control API gives it.
    pub fn resolve(&self, raw: &str) -> Resolved {
        let s = strip_decoration(raw);
        if self.devices.contains_key(s) {
            return Resolved::Internal(s.to_owned());
        }
        let plain = s.strip_prefix('+').unwrap_or(s);
        if let Some(d) = self.by_e164.get(s).or_else(|| self.by_e164.get(plain)) {
            return Resolved::Internal(d.clone());
        }
        if is_dialable(s) {
            Resolved::External(s.to_owned())
        } else {
            Resolved::Invalid
        }
    }

    fn internal(&self, raw: &str, error: &str) -> Result<String, CstaError> {
        match self.resolve(raw) {
            Resolved::Internal(d) => {
                if self.devices.get(&d).is_some_and(|d| d.config.cti) {
                    Ok(d)
                } else {
                    Err(op("privilegeViolationSpecifiedDevice"))
                }
            }
            _ => Err(op(error)),
        }
    }

    /// The device as events report it.
    fn present(&self, device: &str) -> String {
        if self.config.decorate_devices {
            format!("N<{device}>;noa=nk")
        } else {
            device.to_owned()
        }
    }

    fn dref(&self, device: &str) -> rcc_protocol::csta::DeviceRef {
        rcc_protocol::csta::DeviceRef::id(self.present(device))
    }

    fn new_call_id(&mut self) -> String {
        let n = self.next_call;
        self.next_call += 1;
        match self.config.call_ids {
            CallIdFormat::Decimal => n.to_string(),
            CallIdFormat::Hex32 => format!("FF000100{n:012X}C85C1C750000"),
        }
    }

    fn new_xref(&mut self) -> String {
        let n = self.next_xref;
        self.next_xref += 1;
        match self.config.call_ids {
            CallIdFormat::Decimal => n.to_string(),
            CallIdFormat::Hex32 => format!("{n:08X}"),
        }
    }

    fn schedule(&mut self, at: Instant, timer: Timer) {
        self.next_timer += 1;
        self.timers.insert((at, self.next_timer), timer);
    }

    /// When the next scripted action is due.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// Runs every scripted action due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            match timer {
                Timer::ExternalAnswer { call, device } => {
                    if self.state_in(&call, &device) == State::Alerting {
                        self.answer(&call, &device, now);
                    }
                }
                Timer::ExternalClear { call, device } => {
                    if self.state_in(&call, &device) != State::Null {
                        self.clear_connection(&call, &device, "normalClearing");
                    }
                }
                Timer::NoAnswer { call, device } => {
                    if self.state_in(&call, &device) == State::Alerting {
                        let target = self
                            .devices
                            .get(&device)
                            .and_then(|d| d.forward(&ForwardingType::NoAnswer))
                            .and_then(|f| f.forward_dn.clone());
                        if let Some(target) = target {
                            self.divert(&call, &device, &target, "callForwardNoAnswer", now);
                        }
                    }
                }
            }
        }
    }

    fn state_in(&self, call: &str, device: &str) -> State {
        self.calls
            .get(call)
            .map(|c| c.state_of(device))
            .unwrap_or(State::Null)
    }

    /// Sends `event` to every monitor interested in `call`: device monitors of its parties and
    /// of `also` (devices that just left), each with its own device's state after the event, in
    /// the order of the parties; then call monitors, without a state.
    fn notify(&mut self, call: &str, event: CallEvent, also: &[&str]) {
        let mut targets: Vec<(String, State)> = self
            .calls
            .get(call)
            .map(|c| {
                c.parties
                    .iter()
                    .filter(|p| p.internal)
                    .map(|p| (p.device.clone(), p.state.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for d in also {
            if self.devices.contains_key(*d) && !targets.iter().any(|(t, _)| t == d) {
                targets.push(((*d).to_owned(), State::Null));
            }
        }
        for (device, state) in targets {
            let Some(xrefs) = self.by_device.get(&device) else {
                continue;
            };
            for xref in xrefs {
                let Some(m) = self.monitors.get(xref) else {
                    continue;
                };
                let mut e = event.clone();
                e.cross_ref.clone_from(xref);
                e.local_state = Some(state.clone());
                self.notices.push_back(Notice {
                    owner: m.owner,
                    event: Event::Call(e),
                });
            }
        }
        for (xref, m) in &self.call_monitors(call) {
            let mut e = event.clone();
            e.cross_ref.clone_from(xref);
            e.local_state = None;
            self.notices.push_back(Notice {
                owner: *m,
                event: Event::Call(e),
            });
        }
    }

    fn call_monitors(&self, call: &str) -> Vec<(String, Owner)> {
        if !self.has_call_monitors {
            return Vec::new();
        }
        self.monitors
            .iter()
            .filter(|(_, m)| m.watch == Watch::Call(call.to_owned()))
            .map(|(x, m)| (x.clone(), m.owner))
            .collect()
    }

    fn event(&self, kind: CallEventKind, connection: ConnectionId) -> CallEvent {
        let mut e = CallEvent::new(kind, "");
        e.connection = Some(connection);
        e
    }

    fn conn(call: &str, device: &str) -> ConnectionId {
        ConnectionId::new(call, device)
    }

    fn call_refs(&self, call: &str) -> (String, String) {
        self.calls
            .get(call)
            .map(|c| (c.calling.clone(), c.called.clone()))
            .unwrap_or_default()
    }

    fn is_busy(&self, device: &str) -> bool {
        self.calls_of(device).any(|c| {
            c.party(device)
                .is_some_and(|p| !matches!(p.state, State::Hold | State::Null))
        })
    }

    /// The calls `device` is a party of.
    fn calls_of<'a>(&'a self, device: &'a str) -> impl Iterator<Item = &'a Call> + 'a {
        self.party_calls
            .get(device)
            .into_iter()
            .flat_map(|e| e.ids.iter())
            .filter_map(|id| self.calls.get(id))
            .filter(move |c| c.party(device).is_some())
    }

    /// The calls `device` is a party of, in call ID order (as the call table lists them).
    fn calls_of_sorted<'a>(&'a self, device: &'a str) -> Vec<&'a Call> {
        let mut v: Vec<&Call> = self.calls_of(device).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Records the parties of `call` in the per-device index (after a party joined it). Stale
    /// entries are dropped when a device's set has doubled since it was last pruned, so the
    /// work per call stays constant on average (an external number is in every call).
    fn index_call(&mut self, call: &str) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        for p in &c.parties {
            let entry = self.party_calls.entry(p.device.clone()).or_default();
            entry.ids.insert(call.to_owned());
            if entry.ids.len() > 2 * entry.live + 16 {
                let calls = &self.calls;
                entry
                    .ids
                    .retain(|id| calls.get(id).is_some_and(|c| c.party(&p.device).is_some()));
                entry.live = entry.ids.len();
            }
        }
    }

    fn behaviour(&self, number: &str) -> ExternalParty {
        self.externals
            .get(number)
            .cloned()
            .unwrap_or_else(|| self.config.default_external.clone())
    }

    // ----- generators -----

    fn initiate(&mut self, call: &str, device: &str, cause: &str) {
        if let Some(p) = self.calls.get_mut(call).and_then(|c| c.party_mut(device)) {
            p.state = State::Initiated;
        }
        let mut e = self.event(CallEventKind::ServiceInitiated, Self::conn(call, device));
        e.subject = Some(self.dref(device));
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[]);
    }

    fn originate(&mut self, call: &str, device: &str, called: &str, cause: &str) {
        if let Some(p) = self.calls.get_mut(call).and_then(|c| c.party_mut(device)) {
            p.state = State::Connected;
        }
        let mut e = self.event(CallEventKind::Originated, Self::conn(call, device));
        e.calling = Some(self.dref(device));
        e.called = Some(self.dref(called));
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[]);
    }

    /// Offers `call` to `target` (already resolved as dialable): forwarding, do-not-disturb,
    /// busy and external scripts decide between ringing, diverting and failing.
    fn offer(&mut self, call: &str, target: Resolved, offer: Offer, now: Instant) {
        match target {
            Resolved::Internal(b) => {
                let Some(dev) = self.devices.get(&b) else {
                    return;
                };
                let cfu = dev
                    .forward(&ForwardingType::Immediate)
                    .and_then(|f| f.forward_dn.clone());
                let cfb = dev
                    .forward(&ForwardingType::Busy)
                    .and_then(|f| f.forward_dn.clone());
                let cfna = dev
                    .forward(&ForwardingType::NoAnswer)
                    .map(|f| f.ring_count.unwrap_or(self.config.default_ring_count));
                let dnd = dev.dnd;
                let call_waiting = dev.config.call_waiting;
                if offer.hops < 5
                    && let Some(to) = cfu
                {
                    return self.divert_before(call, &b, &to, "callForwardImmediate", offer, now);
                }
                if dnd {
                    return self.fail(call, &b, "doNotDisturb", &offer);
                }
                // Call waiting: a second call rings (one waiting call at most).
                let waits = call_waiting && self.call_of(&b, &[State::Alerting]).is_none();
                if self.is_busy(&b) && !waits {
                    if let (Some(to), true) = (cfb, offer.hops < 5) {
                        return self.divert_before(call, &b, &to, "callForwardBusy", offer, now);
                    }
                    return self.fail(call, &b, "busy", &offer);
                }
                self.ring(call, &b, true, &offer);
                if let Some(rings) = cfna {
                    let at = now + self.config.ring * rings;
                    self.schedule(
                        at,
                        Timer::NoAnswer {
                            call: call.to_owned(),
                            device: b,
                        },
                    );
                }
            }
            Resolved::External(x) => {
                let script = self.behaviour(&x);
                match script.reach {
                    Reach::Busy => return self.fail(call, &x, "busy", &offer),
                    Reach::Reject => return self.fail(call, &x, "blocked", &offer),
                    Reach::Unallocated => return self.fail(call, &x, "numberUnallocated", &offer),
                    Reach::Ring => {}
                }
                self.ring(call, &x, false, &offer);
                if let Some(ms) = script.answer_after_ms {
                    self.schedule(
                        now + Duration::from_millis(ms),
                        Timer::ExternalAnswer {
                            call: call.to_owned(),
                            device: x.clone(),
                        },
                    );
                }
                if let Some(ms) = script.clear_after_ms {
                    self.schedule(
                        now + Duration::from_millis(ms),
                        Timer::ExternalClear {
                            call: call.to_owned(),
                            device: x,
                        },
                    );
                }
            }
            Resolved::Invalid => self.fail(call, "", "invalidNumberFormat", &offer),
        }
    }

    fn ring(&mut self, call: &str, device: &str, internal: bool, offer: &Offer) {
        if let Some(c) = self.calls.get_mut(call) {
            c.parties.push(Party {
                device: device.to_owned(),
                internal,
                state: State::Alerting,
            });
        }
        self.index_call(call);
        let (calling, called) = self.call_refs(call);
        let mut e = self.event(CallEventKind::Delivered, Self::conn(call, device));
        e.subject = Some(self.dref(device));
        e.calling = Some(self.dref(&calling));
        e.called = Some(self.dref(&called));
        e.last_redirection = Some(match &offer.last_redirection {
            Some(d) => self.dref(d),
            None => rcc_protocol::csta::DeviceRef::NotRequired,
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
        let (calling, called) = self.call_refs(call);
        let mut e = self.event(CallEventKind::Failed, Self::conn(call, target));
        e.subject = Some(self.dref(target));
        e.calling = Some(self.dref(&calling));
        e.called = Some(self.dref(&called));
        if let Some(d) = &offer.last_redirection {
            e.last_redirection = Some(self.dref(d));
        }
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[]);
        // A call whose caller is an external party has nobody to hear the busy tone.
        if self
            .calls
            .get(call)
            .is_some_and(|c| c.parties.iter().all(|p| !p.internal))
        {
            let externals: Vec<String> = self
                .calls
                .get(call)
                .map(|c| c.parties.iter().map(|p| p.device.clone()).collect())
                .unwrap_or_default();
            for x in externals {
                self.clear_connection(call, &x, "normalClearing");
            }
        }
    }

    /// Diverts a call away from `device` (ringing or about to ring) to `to`.
    fn divert(&mut self, call: &str, device: &str, to: &str, cause: &'static str, now: Instant) {
        let hops = 1;
        if let Some(c) = self.calls.get_mut(call) {
            c.parties.retain(|p| p.device != device);
        }
        self.diverted_event(call, device, to, cause);
        let target = self.resolve(to);
        self.offer(
            call,
            target,
            Offer {
                cause,
                last_redirection: Some(device.to_owned()),
                hops,
            },
            now,
        );
    }

    fn divert_before(
        &mut self,
        call: &str,
        device: &str,
        to: &str,
        cause: &'static str,
        offer: Offer,
        now: Instant,
    ) {
        self.diverted_event(call, device, to, cause);
        let target = self.resolve(to);
        self.offer(
            call,
            target,
            Offer {
                cause,
                last_redirection: Some(device.to_owned()),
                hops: offer.hops + 1,
            },
            now,
        );
    }

    fn diverted_event(&mut self, call: &str, device: &str, to: &str, cause: &str) {
        let (calling, called) = self.call_refs(call);
        let mut e = self.event(CallEventKind::Diverted, Self::conn(call, device));
        e.subject = Some(self.dref(device));
        e.target = Some(self.dref(strip_decoration(to)));
        e.calling = Some(self.dref(&calling));
        e.called = Some(self.dref(&called));
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[device]);
    }

    fn answer(&mut self, call: &str, device: &str, now: Instant) {
        let pending = self.calls.get_mut(call).and_then(|c| {
            if c.parties.first().is_some_and(|p| p.device == device) {
                c.pending_dial.take()
            } else {
                None
            }
        });
        if let Some(number) = pending {
            // autoOriginate=prompt: the caller went off-hook; now the call is placed.
            self.initiate(call, device, "makeCall");
            self.originate(call, device, strip_decoration(&number), "newCall");
            let target = self.resolve(&number);
            self.offer(call, target, Offer::fresh("newCall"), now);
            return;
        }
        // Answering a waiting call: the call in progress goes on hold first.
        if let Some(active) = self.connected_besides(device, call) {
            self.hold(&active, device, "normal");
        }
        if let Some(p) = self.calls.get_mut(call).and_then(|c| c.party_mut(device)) {
            p.state = State::Connected;
        }
        let (calling, called) = self.call_refs(call);
        let mut e = self.event(CallEventKind::Established, Self::conn(call, device));
        e.subject = Some(self.dref(device));
        e.calling = Some(self.dref(&calling));
        e.called = Some(self.dref(&called));
        e.cause = Some(Cause::new("normal"));
        self.notify(call, e, &[]);
    }

    fn clear_connection(&mut self, call: &str, device: &str, cause: &str) {
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
        let mut e = self.event(CallEventKind::ConnectionCleared, Self::conn(call, device));
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
                    let mut e = self.event(CallEventKind::ConnectionCleared, Self::conn(call, r));
                    e.subject = Some(self.dref(r));
                    e.cause = Some(Cause::new(cause));
                    self.notify(call, e, &[r.as_str()]);
                }
            }
            self.end_call(call, cause);
        }
    }

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
        // Device monitors outnumber call monitors by far: skip the walk when there are none.
        if self.has_call_monitors {
            self.monitors
                .retain(|_, m| !matches!(&m.watch, Watch::Call(c) if c == call));
        }
    }

    fn hold(&mut self, call: &str, device: &str, cause: &str) {
        if let Some(p) = self.calls.get_mut(call).and_then(|c| c.party_mut(device)) {
            p.state = State::Hold;
        }
        let mut e = self.event(CallEventKind::Held, Self::conn(call, device));
        e.subject = Some(self.dref(device));
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[]);
    }

    fn retrieve(&mut self, call: &str, device: &str, cause: &str) {
        if let Some(p) = self.calls.get_mut(call).and_then(|c| c.party_mut(device)) {
            p.state = State::Connected;
        }
        let mut e = self.event(CallEventKind::Retrieved, Self::conn(call, device));
        e.subject = Some(self.dref(device));
        e.cause = Some(Cause::new(cause));
        self.notify(call, e, &[]);
    }

    /// Moves parties of old calls into a new call, re-keying timers and call monitors.
    fn merge(&mut self, new_id: &str, moved: &[(String, Party)], calling: String, called: String) {
        let olds: Vec<String> = moved.iter().map(|(c, _)| c.clone()).collect();
        self.calls.insert(
            new_id.to_owned(),
            Call {
                id: new_id.to_owned(),
                parties: moved.iter().map(|(_, p)| p.clone()).collect(),
                calling,
                called,
                digits: String::new(),
                pending_dial: None,
            },
        );
        self.index_call(new_id);
        for t in self.timers.values_mut() {
            let (Timer::ExternalAnswer { call, .. }
            | Timer::ExternalClear { call, .. }
            | Timer::NoAnswer { call, .. }) = t;
            if olds.contains(call) {
                new_id.clone_into(call);
            }
        }
        for m in self.monitors.values_mut() {
            if let Watch::Call(c) = &m.watch
                && olds.contains(c)
            {
                m.watch = Watch::Call(new_id.to_owned());
            }
        }
    }

    // ----- connection checks -----

    fn connection(&self, c: &ConnectionId) -> Result<(String, String), CstaError> {
        let call = c
            .call_id
            .as_deref()
            .ok_or_else(|| op("invalidConnectionID"))?;
        let raw = c
            .device_id
            .as_deref()
            .ok_or_else(|| op("invalidConnectionID"))?;
        let call_rec = self.calls.get(call).ok_or_else(|| op("invalidCallID"))?;
        let device = match self.resolve(raw) {
            Resolved::Internal(d) | Resolved::External(d) => d,
            Resolved::Invalid => return Err(op("invalidConnectionID")),
        };
        if call_rec.party(&device).is_none() {
            return Err(op("invalidConnectionID"));
        }
        if self.devices.get(&device).is_some_and(|d| !d.config.cti) {
            return Err(op("privilegeViolationSpecifiedDevice"));
        }
        Ok((call.to_owned(), device))
    }

    fn expect_state(
        &self,
        call: &str,
        device: &str,
        wanted: State,
        error: &str,
    ) -> Result<(), CstaError> {
        if self.state_in(call, device) == wanted {
            Ok(())
        } else {
            Err(state_err(error))
        }
    }

    fn destination(&self, raw: &str, error: &str) -> Result<Resolved, CstaError> {
        match self.resolve(raw) {
            Resolved::Invalid => Err(op(error)),
            r => Ok(r),
        }
    }

    fn others(&self, call: &str, device: &str) -> Vec<Party> {
        self.calls
            .get(call)
            .map(|c| {
                c.parties
                    .iter()
                    .filter(|p| p.device != device)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    // ----- services -----

    /// Handles a call-control or monitoring request from the link `owner`.
    pub fn request(&mut self, owner: Owner, request: &Request, now: Instant) -> Outcome {
        match request {
            Request::MonitorStart {
                object,
                monitor_type,
            } => self.monitor_start(owner, object, monitor_type.as_deref()),
            Request::MonitorStop { cross_ref } => match self.monitors.get(cross_ref) {
                Some(m) if m.owner == owner => {
                    self.remove_monitor(cross_ref);
                    Ok(Response::Empty(rcc_protocol::csta::Service::MonitorStop))
                }
                _ => Err(op("invalidMonitorCrossRefID")),
            },
            Request::SnapshotDevice { device } => {
                let d = self.internal(device, "invalidDeviceID")?;
                let calls = self
                    .calls_of_sorted(&d)
                    .into_iter()
                    .filter_map(|c| {
                        let own = c.party(&d)?;
                        let mut states = vec![own.state.clone()];
                        states.extend(
                            c.parties
                                .iter()
                                .filter(|p| p.device != d)
                                .map(|p| p.state.clone()),
                        );
                        Some(SnapshotCall {
                            connection: Self::conn(&c.id, &d),
                            states,
                        })
                    })
                    .collect();
                Ok(Response::SnapshotDevice { calls })
            }
            Request::MakeCall {
                calling,
                called,
                auto_originate,
            } => {
                let prompt = matches!(
                    auto_originate,
                    Some(rcc_protocol::csta::AutoOriginate::Prompt)
                );
                let call = self.make_call(calling, called, prompt, "makeCall", now)?;
                let device = self.internal(calling, "invalidCallingDeviceID")?;
                Ok(Response::MakeCall {
                    calling: Self::conn(&call, &device),
                })
            }
            Request::AnswerCall { call } => {
                let (call, device) = self.connection(call)?;
                self.expect_state(&call, &device, State::Alerting, "invalidConnectionState")?;
                self.may_answer(&device, &call)?;
                self.answer(&call, &device, now);
                Ok(Response::Empty(rcc_protocol::csta::Service::AnswerCall))
            }
            Request::ClearConnection { connection, reason } => {
                let (call, device) = self.connection(connection)?;
                let cause = reason
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_else(|| "normalClearing".to_owned());
                self.clear_connection(&call, &device, &cause);
                Ok(Response::Empty(
                    rcc_protocol::csta::Service::ClearConnection,
                ))
            }
            Request::ClearCall { call } => {
                let id = call.call_id.as_deref().ok_or_else(|| op("invalidCallID"))?;
                let parties: Vec<String> = self
                    .calls
                    .get(id)
                    .ok_or_else(|| op("invalidCallID"))?
                    .parties
                    .iter()
                    .map(|p| p.device.clone())
                    .collect();
                let id = id.to_owned();
                for p in parties {
                    if self.calls.contains_key(&id) {
                        self.clear_connection(&id, &p, "normalClearing");
                    }
                }
                Ok(Response::Empty(rcc_protocol::csta::Service::ClearCall))
            }
            Request::HoldCall { call, .. } => {
                let (call, device) = self.connection(call)?;
                self.expect_state(&call, &device, State::Connected, "invalidConnectionState")?;
                self.hold(&call, &device, "normal");
                Ok(Response::Empty(rcc_protocol::csta::Service::HoldCall))
            }
            Request::RetrieveCall { call } => {
                let (call, device) = self.connection(call)?;
                self.expect_state(&call, &device, State::Hold, "noHeldCall")?;
                if self.is_busy(&device) {
                    return Err(state_err("connectedCallExists"));
                }
                self.retrieve(&call, &device, "normal");
                Ok(Response::Empty(rcc_protocol::csta::Service::RetrieveCall))
            }
            Request::AlternateCall { held, active } => {
                let (c1, a) = self.connection(held)?;
                let (c2, a2) = self.connection(active)?;
                self.same_device(&a, &a2)?;
                self.expect_state(&c1, &a, State::Hold, "noHeldCall")?;
                self.expect_state(&c2, &a, State::Connected, "invalidActiveConnectionState")?;
                self.hold(&c2, &a, "alternate");
                self.retrieve(&c1, &a, "alternate");
                Ok(Response::Empty(rcc_protocol::csta::Service::AlternateCall))
            }
            Request::ReconnectCall { active, held } => {
                let (c1, a) = self.connection(held)?;
                let (c2, a2) = self.connection(active)?;
                self.same_device(&a, &a2)?;
                self.expect_state(&c1, &a, State::Hold, "noHeldCall")?;
                self.clear_connection(&c2, &a, "normalClearing");
                self.retrieve(&c1, &a, "normal");
                Ok(Response::Empty(rcc_protocol::csta::Service::ReconnectCall))
            }
            Request::ConsultationCall {
                existing,
                consulted,
            } => {
                let (c1, a) = self.connection(existing)?;
                self.expect_state(&c1, &a, State::Connected, "invalidConnectionState")?;
                let target = self.destination(consulted, "invalidDestinationDeviceID")?;
                self.hold(&c1, &a, "consultation");
                let c2 = self.new_call_id();
                self.calls
                    .insert(c2.clone(), Call::new(&c2, &a, strip_decoration(consulted)));
                self.index_call(&c2);
                self.initiate(&c2, &a, "consultation");
                self.originate(&c2, &a, strip_decoration(consulted), "consultation");
                self.offer(&c2, target, Offer::fresh("newCall"), now);
                Ok(Response::ConsultationCall {
                    initiated: Self::conn(&c2, &a),
                })
            }
            Request::TransferCall { held, active } => self.transfer(held, active, false),
            Request::ConferenceCall { held, active } => self.transfer(held, active, true),
            Request::SingleStepTransferCall {
                active,
                transferred_to,
            } => {
                let (c1, a) = self.connection(active)?;
                self.expect_state(&c1, &a, State::Connected, "invalidConnectionState")?;
                let target = self.destination(transferred_to, "invalidDestinationDeviceID")?;
                let to = strip_decoration(transferred_to).to_owned();
                let others = self.others(&c1, &a);
                let Some(first) = others.first().map(|p| p.device.clone()) else {
                    return Err(state_err("invalidConnectionState"));
                };
                let cn = self.new_call_id();
                let moved: Vec<(String, Party)> =
                    others.into_iter().map(|p| (c1.clone(), p)).collect();
                let mut connections: Vec<ConnectionListItem> = moved
                    .iter()
                    .map(|(old, p)| item(&cn, old, &p.device))
                    .collect();
                connections.push(ConnectionListItem {
                    new_connection: Some(Self::conn(&cn, &to)),
                    old_connection: None,
                    endpoint: Some(to.clone()),
                });
                self.calls.remove(&c1);
                self.merge(&cn, &moved, first.clone(), to.clone());
                let mut e = self.event(CallEventKind::Transferred, Self::conn(&c1, &a));
                e.subject = Some(self.dref(&a));
                e.target = Some(self.dref(&to));
                e.connections = connections.clone();
                e.cause = Some(Cause::new("singleStepTransfer"));
                self.notify(&cn, e, &[&a]);
                self.offer(
                    &cn,
                    target,
                    Offer {
                        cause: "singleStepTransfer",
                        last_redirection: Some(a),
                        hops: 0,
                    },
                    now,
                );
                Ok(Response::SingleStepTransferCall {
                    transferred: Some(Self::conn(&cn, &to)),
                    connections,
                })
            }
            Request::DeflectCall {
                call,
                new_destination,
            } => {
                let (c1, b) = self.connection(call)?;
                self.expect_state(&c1, &b, State::Alerting, "invalidConnectionState")?;
                let target = self.destination(new_destination, "invalidDestinationDeviceID")?;
                if let Some(c) = self.calls.get_mut(&c1) {
                    c.parties.retain(|p| p.device != b);
                }
                self.diverted_event(&c1, &b, new_destination, "redirected");
                self.offer(
                    &c1,
                    target,
                    Offer {
                        cause: "redirected",
                        last_redirection: Some(b),
                        hops: 0,
                    },
                    now,
                );
                Ok(Response::Empty(rcc_protocol::csta::Service::DeflectCall))
            }
            Request::GenerateDigits {
                connection, digits, ..
            } => {
                let (call, device) = self.connection(connection)?;
                self.expect_state(&call, &device, State::Connected, "invalidConnectionState")?;
                if digits.is_empty()
                    || !digits
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b"*#ABCDabcd".contains(&b))
                {
                    return Err(op("invalidParameterValue"));
                }
                if let Some(c) = self.calls.get_mut(&call) {
                    c.digits.push_str(digits);
                }
                let mut e = self.event(CallEventKind::DigitsGenerated, Self::conn(&call, &device));
                e.digits = Some(digits.clone());
                self.notify(&call, e, &[]);
                Ok(Response::Empty(rcc_protocol::csta::Service::GenerateDigits))
            }
            Request::SetForwarding {
                device,
                forwarding_type,
                activate,
                forward_dn,
                ring_count,
            } => {
                let d = self.internal(device, "invalidDeviceID")?;
                if *activate {
                    match forward_dn.as_deref().map(|n| self.resolve(n)) {
                        Some(Resolved::Internal(t)) if t == d => {
                            return Err(op("invalidForwardingDestination"));
                        }
                        Some(Resolved::Internal(_) | Resolved::External(_)) => {}
                        _ => return Err(op("invalidForwardingDestination")),
                    }
                }
                let dn = forward_dn
                    .as_deref()
                    .map(|n| strip_decoration(n).to_owned());
                self.set_forwarding(&d, forwarding_type.clone(), *activate, dn, *ring_count);
                Ok(Response::Empty(rcc_protocol::csta::Service::SetForwarding))
            }
            Request::GetForwarding { device } => {
                let d = self.internal(device, "invalidDeviceID")?;
                let dev = self.devices.get(&d).ok_or_else(|| op("invalidDeviceID"))?;
                let mut items = Vec::new();
                for kind in [
                    ForwardingType::Immediate,
                    ForwardingType::Busy,
                    ForwardingType::NoAnswer,
                ] {
                    items.push(
                        dev.forwarding
                            .iter()
                            .find(|f| f.forwarding_type == kind)
                            .cloned()
                            .unwrap_or(ForwardItem {
                                forwarding_type: kind,
                                status: false,
                                forward_dn: None,
                                ring_count: None,
                            }),
                    );
                }
                Ok(Response::GetForwarding { items })
            }
            Request::SetDoNotDisturb { device, on } => {
                let d = self.internal(device, "invalidDeviceID")?;
                self.set_dnd(&d, *on);
                Ok(Response::Empty(
                    rcc_protocol::csta::Service::SetDoNotDisturb,
                ))
            }
            _ => Err(op("serviceNotSupported")),
        }
    }

    fn same_device(&self, a: &str, b: &str) -> Result<(), CstaError> {
        if a == b {
            Ok(())
        } else {
            Err(op("notSameDevice"))
        }
    }

    fn monitor_start(
        &mut self,
        owner: Owner,
        object: &MonitorObject,
        monitor_type: Option<&str>,
    ) -> Outcome {
        let watch = match object {
            MonitorObject::Device(d) => {
                let d = self.internal(d, "invalidDeviceID")?;
                if monitor_type == Some("call") {
                    return Err(op("monitorTypeNotSupported"));
                }
                let count = self.by_device.get(&d).map_or(0, Vec::len);
                if count >= self.config.monitors_per_device {
                    return Err(CstaError::new(
                        ErrorCategory::SubscribedResourceAvailability,
                        "objectMonitorLimitExceeded",
                    ));
                }
                Watch::Device(d)
            }
            MonitorObject::Call(c) => {
                let id = c.call_id.as_deref().ok_or_else(|| op("invalidCallID"))?;
                if !self.calls.contains_key(id) {
                    return Err(op("invalidCallID"));
                }
                Watch::Call(id.to_owned())
            }
        };
        let existing = match &watch {
            Watch::Device(d) => self.calls_of(d).next().is_some(),
            Watch::Call(_) => true,
        };
        let xref = self.new_xref();
        match &watch {
            Watch::Device(d) => self
                .by_device
                .entry(d.clone())
                .or_default()
                .push(xref.clone()),
            Watch::Call(_) => self.has_call_monitors = true,
        }
        self.monitors.insert(xref.clone(), Monitor { owner, watch });
        Ok(Response::MonitorStart {
            cross_ref: xref,
            existing_calls: Some(existing),
        })
    }

    fn make_call(
        &mut self,
        calling: &str,
        called: &str,
        prompt: bool,
        cause: &str,
        now: Instant,
    ) -> Result<String, CstaError> {
        let a = self.internal(calling, "invalidCallingDeviceID")?;
        let target = self.destination(called, "invalidCalledDeviceID")?;
        if self.is_busy(&a) {
            return Err(state_err("invalidCallingDeviceState"));
        }
        let number = strip_decoration(called).to_owned();
        let call = self.new_call_id();
        self.calls
            .insert(call.clone(), Call::new(&call, &a, &number));
        self.index_call(&call);
        if prompt {
            if let Some(c) = self.calls.get_mut(&call) {
                c.pending_dial = Some(number.clone());
                if let Some(p) = c.party_mut(&a) {
                    p.state = State::Alerting;
                }
            }
            let mut e = self.event(CallEventKind::Delivered, Self::conn(&call, &a));
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

    fn transfer(
        &mut self,
        held: &ConnectionId,
        active: &ConnectionId,
        conference: bool,
    ) -> Outcome {
        let (c1, a) = self.connection(held)?;
        let (c2, a2) = self.connection(active)?;
        self.same_device(&a, &a2)?;
        if c1 == c2 {
            return Err(op("invalidActiveConnectionID"));
        }
        self.expect_state(&c1, &a, State::Hold, "noHeldCall")?;
        self.expect_state(&c2, &a, State::Connected, "invalidActiveConnectionState")?;
        let o1 = self.others(&c1, &a);
        let o2 = self.others(&c2, &a);
        let Some(added) = o2.first().map(|p| p.device.clone()) else {
            return Err(state_err("invalidActiveConnectionState"));
        };
        if o1.is_empty() {
            return Err(state_err("noHeldCall"));
        }
        let cn = self.new_call_id();
        let mut moved: Vec<(String, Party)> = Vec::new();
        if conference {
            moved.push((
                c1.clone(),
                Party {
                    device: a.clone(),
                    internal: true,
                    state: State::Connected,
                },
            ));
        }
        moved.extend(o1.into_iter().map(|p| (c1.clone(), p)));
        moved.extend(o2.into_iter().map(|p| (c2.clone(), p)));
        let connections: Vec<ConnectionListItem> = moved
            .iter()
            .map(|(old, p)| item(&cn, old, &p.device))
            .collect();
        let (calling, _) = self.call_refs(&c1);
        let (_, called) = self.call_refs(&c2);
        self.calls.remove(&c1);
        self.calls.remove(&c2);
        self.merge(&cn, &moved, calling, called);
        let kind = if conference {
            CallEventKind::Conferenced
        } else {
            CallEventKind::Transferred
        };
        let mut e = self.event(kind, Self::conn(&c1, &a));
        e.secondary_old_call = Some(Self::conn(&c2, &a));
        e.subject = Some(self.dref(&a));
        e.target = Some(self.dref(&added));
        e.connections = connections.clone();
        e.cause = Some(Cause::new(if conference {
            "conference"
        } else {
            "transfer"
        }));
        self.notify(&cn, e, &[&a]);
        Ok(if conference {
            Response::ConferenceCall {
                conference: Some(Self::conn(&cn, &a)),
                connections,
            }
        } else {
            Response::TransferCall {
                transferred: Some(ConnectionId {
                    call_id: Some(cn),
                    device_id: None,
                }),
                connections,
            }
        })
    }

    fn set_forwarding(
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

    /// Changes the switch's settings from now on (ring length, answering while in a call…).
    pub fn configure(&mut self, f: impl FnOnce(&mut SwitchConfig)) {
        f(&mut self.config);
    }

    /// The call other than `call` in which the desk phone `device` is connected. Desk phones
    /// only: an external number is a party of every call it is in, and scanning them all on
    /// each answer made the simulator quadratic under load.
    fn connected_besides(&self, device: &str, call: &str) -> Option<String> {
        if !self.devices.contains_key(device) {
            return None;
        }
        self.calls_of(device)
            .find(|c| c.id != call && c.party(device).is_some_and(|p| p.state == State::Connected))
            .map(|c| c.id.clone())
    }

    /// Refuses answering `call` at `device` while it is connected in another call, when the
    /// switch does not hold that call itself.
    fn may_answer(&self, device: &str, call: &str) -> Result<(), CstaError> {
        if !self.config.hold_on_answer && self.connected_besides(device, call).is_some() {
            return Err(state_err("connectedCallExists"));
        }
        Ok(())
    }

    /// Turns call waiting on or off for an internal device (a line setting: no event).
    pub fn set_call_waiting(&mut self, device: &str, on: bool) -> Result<String, CstaError> {
        let d = self.internal_any(device)?;
        if let Some(dev) = self.devices.get_mut(&d) {
            dev.config.call_waiting = on;
        }
        Ok(d)
    }

    fn set_dnd(&mut self, device: &str, on: bool) {
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

    fn notify_device(&mut self, device: &str, event: Event) {
        let Some(xrefs) = self.by_device.get(device) else {
            return;
        };
        for xref in xrefs {
            if let Some(m) = self.monitors.get(xref) {
                let mut e = event.clone();
                e.set_cross_ref(xref);
                self.notices.push_back(Notice {
                    owner: m.owner,
                    event: e,
                });
            }
        }
    }

    /// Drops every monitor of a link that went away.
    pub fn remove_owner(&mut self, owner: Owner) {
        let gone: Vec<String> = self
            .monitors
            .iter()
            .filter(|(_, m)| m.owner == owner)
            .map(|(x, _)| x.clone())
            .collect();
        for xref in gone {
            self.remove_monitor(&xref);
        }
    }

    fn remove_monitor(&mut self, xref: &str) {
        if let Some(Monitor {
            watch: Watch::Device(d),
            ..
        }) = self.monitors.remove(xref)
            && let Some(list) = self.by_device.get_mut(&d)
        {
            list.retain(|x| x != xref);
            if list.is_empty() {
                self.by_device.remove(&d);
            }
        }
    }

    /// Monitors held by `owner`: cross-reference ID and watched device or call.
    pub fn monitors_of(&self, owner: Owner) -> Vec<(String, String)> {
        self.monitors
            .iter()
            .filter(|(_, m)| m.owner == owner)
            .map(|(x, m)| {
                let w = match &m.watch {
                    Watch::Device(d) | Watch::Call(d) => d.clone(),
                };
                (x.clone(), w)
            })
            .collect()
    }

    /// Number of monitors on the switch.
    pub fn monitor_count(&self) -> usize {
        self.monitors.len()
    }

    // ----- desk phones and external parties -----

    /// The desk phone of `device` dials `number` (off-hook, then dialling).
    pub fn phone_dial(
        &mut self,
        device: &str,
        number: &str,
        now: Instant,
    ) -> Result<String, CstaError> {
        let a = self.internal_any(device)?;
        self.make_call(&a, number, false, "newCall", now)
    }

    fn internal_any(&self, raw: &str) -> Result<String, CstaError> {
        match self.resolve(raw) {
            Resolved::Internal(d) => Ok(d),
            _ => Err(op("invalidDeviceID")),
        }
    }

    fn call_of(&self, device: &str, states: &[State]) -> Option<String> {
        let calls = self.calls_of_sorted(device);
        states.iter().find_map(|s| {
            calls
                .iter()
                .find(|c| c.party(device).is_some_and(|p| &p.state == s))
                .map(|c| c.id.clone())
        })
    }

    /// The desk phone (or an external party) answers its ringing call; a prompted MakeCall
    /// proceeds.
    pub fn phone_answer(&mut self, device: &str, now: Instant) -> Result<String, CstaError> {
        let d = self.any_party(device)?;
        let call = self
            .call_of(&d, &[State::Alerting])
            .ok_or_else(|| state_err("noCallToAnswer"))?;
        self.may_answer(&d, &call)?;
        self.answer(&call, &d, now);
        Ok(call)
    }

    /// The desk phone (or an external party) hangs up its active call.
    pub fn phone_hang_up(&mut self, device: &str) -> Result<String, CstaError> {
        let d = self.any_party(device)?;
        let external = !matches!(self.resolve(device), Resolved::Internal(_));
        let mut states = vec![State::Connected, State::Initiated, State::Fail];
        if external {
            // An external caller that gives up while it still rings the other side.
            states.push(State::Alerting);
        }
        let call = self
            .call_of(&d, &states)
            .ok_or_else(|| state_err("noCallToClear"))?;
        self.clear_connection(&call, &d, "normalClearing");
        Ok(call)
    }

    /// The desk phone puts its active call on hold.
    pub fn phone_hold(&mut self, device: &str) -> Result<String, CstaError> {
        let d = self.internal_any(device)?;
        let call = self
            .call_of(&d, &[State::Connected])
            .ok_or_else(|| state_err("noActiveCall"))?;
        self.hold(&call, &d, "normal");
        Ok(call)
    }

    /// The desk phone retrieves its held call.
    pub fn phone_retrieve(&mut self, device: &str) -> Result<String, CstaError> {
        let d = self.internal_any(device)?;
        let call = self
            .call_of(&d, &[State::Hold])
            .ok_or_else(|| state_err("noHeldCall"))?;
        if self.is_busy(&d) {
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
        let d = self.internal_any(device)?;
        let activate = forward_to.is_some();
        self.set_forwarding(&d, kind, activate, forward_to.map(str::to_owned), None);
        Ok(())
    }

    /// Do-not-disturb changed at the phone.
    pub fn phone_dnd(&mut self, device: &str, on: bool) -> Result<(), CstaError> {
        let d = self.internal_any(device)?;
        self.set_dnd(&d, on);
        Ok(())
    }

    fn any_party(&self, raw: &str) -> Result<String, CstaError> {
        match self.resolve(raw) {
            Resolved::Internal(d) | Resolved::External(d) => Ok(d),
            Resolved::Invalid => Err(op("invalidDeviceID")),
        }
    }

    /// An external number calls `to` through a trunk. Returns the call ID.
    pub fn incoming(&mut self, from: &str, to: &str, now: Instant) -> Result<String, CstaError> {
        let x = match self.resolve(from) {
            Resolved::Invalid => return Err(op("invalidCallingDeviceID")),
            Resolved::Internal(d) => return self.phone_dial(&d, to, now),
            Resolved::External(x) => x,
        };
        let target = self.destination(to, "invalidCalledDeviceID")?;
        let called = strip_decoration(to).to_owned();
        let call = self.new_call_id();
        let mut c = Call::new(&call, &x, &called);
        c.parties[0].internal = false;
        c.parties[0].state = State::Connected;
        self.calls.insert(call.clone(), c);
        self.index_call(&call);
        if let Some(ms) = self.behaviour(&x).clear_after_ms {
            self.schedule(
                now + Duration::from_millis(ms),
                Timer::ExternalClear {
                    call: call.clone(),
                    device: x,
                },
            );
        }
        self.offer(&call, target, Offer::fresh("newCall"), now);
        Ok(call)
    }

    /// Every call with its parties.
    pub fn calls(&self) -> Vec<CallView> {
        self.calls
            .values()
            .map(|c| CallView {
                call_id: c.id.clone(),
                parties: c
                    .parties
                    .iter()
                    .map(|p| PartyView {
                        device: p.device.clone(),
                        internal: p.internal,
                        state: p.state.as_str().to_owned(),
                    })
                    .collect(),
                digits: c.digits.clone(),
            })
            .collect()
    }

    /// The state of `device`'s connection in `call` (`null` when it has none).
    pub fn connection_state(&self, call: &str, device: &str) -> State {
        match self.resolve(device) {
            Resolved::Internal(d) | Resolved::External(d) => self.state_in(call, &d),
            Resolved::Invalid => State::Null,
        }
    }

    /// The forwarding settings and do-not-disturb flag of an internal device.
    pub fn device_features(&self, device: &str) -> Option<(Vec<ForwardItem>, bool)> {
        let d = self.internal_any(device).ok()?;
        self.devices.get(&d).map(|d| (d.forwarding.clone(), d.dnd))
    }

    /// The configured devices.
    pub fn devices(&self) -> Vec<DeviceConfig> {
        self.devices.values().map(|d| d.config.clone()).collect()
    }
}

fn item(new_call: &str, old_call: &str, device: &str) -> ConnectionListItem {
    ConnectionListItem {
        new_connection: Some(ConnectionId::new(new_call, device)),
        old_connection: Some(ConnectionId::new(old_call, device)),
        endpoint: Some(device.to_owned()),
    }
}

impl Call {
    fn new(id: &str, caller: &str, called: &str) -> Self {
        Call {
            id: id.to_owned(),
            parties: vec![Party {
                device: caller.to_owned(),
                internal: true,
                state: State::Null,
            }],
            calling: caller.to_owned(),
            called: called.to_owned(),
            digits: String::new(),
            pending_dial: None,
        }
    }
}

impl Offer {
    fn fresh(cause: &'static str) -> Self {
        Offer {
            cause,
            last_redirection: None,
            hops: 0,
        }
    }
}
