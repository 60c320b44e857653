//! The gateway, sans-IO: SIP requests and responses from the Lync side, bytes from the PBX link,
//! and time go in; bytes to write come out of [`Gateway::poll_output`]. It keeps the server
//! transactions, the dialogs and their RCC sessions, one PBX monitor per device shared by every
//! session on it, and the PBX link state machine.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcc_protocol::csta::{
    self, CstaError, Event, MonitorObject, Request, Response, Service, SystemStatusValue,
};
use rcc_protocol::sip::{Dialog, Message, Method, NameAddr, SipUri, Uri};

use crate::config::{Config, PbxDownAnswer};
use crate::observe::Metrics;
use crate::pbx::link::{Failure, LinkEvent, LinkOutput, LinkSettings, PbxLink};
use crate::pbx::repeats::Repeats;
use crate::rcc::authz::{Authorization, normalise_user};
use crate::rcc::features::features;
use crate::rcc::numbering::Numbering;
use crate::rcc::session::{AckWait, FlowId, RccSession, SessionId};
use crate::rcc::translate::LineView;
use crate::sip::transaction::{Seen, ServerTransactions, TxKey};
use crate::trace::{Leg, SessionNote, Way};

const CSTA: &str = "application/csta+xml";
const DISPOSITION: &str = "signal;handling=required";
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// Where an in-dialog request goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Host of the next hop (first Route, else the remote target).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `tls` or `tcp`.
    pub tls: bool,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write a response on the connection its request came on.
    Respond {
        /// The connection.
        flow: FlowId,
        /// The response.
        bytes: Vec<u8>,
    },
    /// Send a request: on `flow` while it is open, otherwise on a connection to `target`.
    Request {
        /// The dialog's connection.
        flow: FlowId,
        /// The next hop.
        target: Target,
        /// The request.
        bytes: Vec<u8>,
    },
    /// Act on the PBX link.
    Pbx(LinkOutput),
    /// A record for the per-session traces (`[observe.session_traces]`).
    Trace(SessionNote),
}

/// What a PBX request was for.
#[derive(Debug)]
enum PbxTag {
    Client {
        session: SessionId,
        tx: TxKey,
        flow: FlowId,
        request: Box<Message>,
        started: Instant,
        service: &'static str,
        /// Identifies the request for the gateway-added time ([`Gateway::begin_step`]).
        key: u64,
    },
    Monitor {
        device: String,
    },
    Snapshot {
        device: String,
    },
    Features,
    Quiet,
    /// The MonitorStop after the last session on a device left (answer not needed).
    Release {
        session: SessionId,
    },
}

/// A request parked until the PBX monitor of its device exists.
#[derive(Debug)]
struct Waiting {
    session: SessionId,
    tx: TxKey,
    flow: FlowId,
    request: Box<Message>,
}

/// One PBX device monitor and the sessions that share it.
#[derive(Debug, Default)]
struct DeviceWatch {
    pbx_xref: Option<String>,
    starting: bool,
    sessions: Vec<SessionId>,
    waiting: Vec<Waiting>,
    /// Calls the device is in, as the events told (for resynchronisation).
    calls: std::collections::HashSet<String>,
    /// The last event of each connection the monitor reported (see [`Repeats`]).
    repeats: Repeats,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Expiry(SessionId, u64),
    Retransmit(SessionId, u64),
    ClientTx(String),
}

#[derive(Debug)]
struct ClientTx {
    session: SessionId,
    bye: bool,
    /// The session is traced (a BYE's answer comes after the session is gone).
    traced: bool,
}

/// The gateway core.
pub struct Gateway {
    config: Arc<Config>,
    numbering: Numbering,
    authz: Authorization,
    metrics: Arc<Metrics>,
    link: PbxLink<PbxTag>,
    pbx_features: Option<Vec<csta::Feature>>,
    /// Boxed: a session is ~540 bytes, and a table of boxes wastes 16 bytes per free slot
    /// instead of a whole session.
    sessions: HashMap<SessionId, Box<RccSession>>,
    dialogs: HashMap<(String, String), SessionId>,
    server_txs: ServerTransactions,
    client_txs: HashMap<String, ClientTx>,
    devices: HashMap<String, DeviceWatch>,
    pbx_xrefs: HashMap<String, String>,
    timers: BTreeMap<(Instant, u64), Timer>,
    outputs: VecDeque<Output>,
    /// Our Via up to the branch value, formatted once.
    via_prefix: String,
    /// Whose sessions are traced (normalised URIs; empty: everyone), when session traces are on.
    trace_users: Option<Vec<String>>,
    /// The step being run: when its input was read (see [`Gateway::begin_step`]).
    step_read: Option<Instant>,
    /// Client requests sent to the PBX in this step, and answered in this step.
    step_sent: Vec<u64>,
    step_answered: Vec<u64>,
    /// For each client request at the PBX: the gateway's time on its way in.
    inbound_time: HashMap<u64, Duration>,
    /// Connections whose peer is slow to take what is sent to it (see
    /// [`Gateway::set_flow_congested`]).
    congested: HashSet<FlowId>,
    seed: u64,
    counter: u64,
    now: Instant,
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Appends `v` in lower-case hex, at least `width` digits.
fn push_hex(s: &mut String, v: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (16 - v.leading_zeros() as usize / 4).max(width);
    for i in (0..digits).rev() {
        s.push(char::from(DIGITS[((v >> (i * 4)) & 0xf) as usize]));
    }
}

/// The status line reason for a code.
fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        415 => "Unsupported Media Type",
        422 => "Session Interval Too Small",
        481 => "Call/Transaction Does Not Exist",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

impl Gateway {
    /// A gateway from a checked configuration.
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>, now: Instant) -> anyhow::Result<Self> {
        let numbering = Numbering::new(&config.numbering, config.pbx.profile)?;
        let authz = Authorization::from_config(&config.authorization)?;
        let trace_users = config
            .observe
            .session_traces
            .as_ref()
            .map(|t| t.users.iter().map(|u| normalise_user(u)).collect());
        let mut settings = LinkSettings::from_config(&config.pbx);
        settings.keep_frames = trace_users.is_some();
        let link = PbxLink::new(settings, now);
        let sip = &config.sip;
        let via_prefix = format!(
            "SIP/2.0/{} {}:{};branch=",
            sip.advertised_transport().to_ascii_uppercase(),
            sip.host,
            sip.advertised_port()
        );
        Ok(Gateway {
            via_prefix,
            trace_users,
            step_read: None,
            step_sent: Vec::new(),
            step_answered: Vec::new(),
            inbound_time: HashMap::new(),
            congested: HashSet::new(),
            numbering,
            authz,
            metrics,
            link,
            pbx_features: None,
            sessions: HashMap::new(),
            dialogs: HashMap::new(),
            server_txs: ServerTransactions::default(),
            client_txs: HashMap::new(),
            devices: HashMap::new(),
            pbx_xrefs: HashMap::new(),
            timers: BTreeMap::new(),
            outputs: VecDeque::new(),
            seed: random_seed(),
            counter: 0,
            now,
            config,
        })
    }

    /// The shell tells whether a connection's send queue is backed up (its peer takes what is
    /// sent more slowly than it asks for more). While it is, new work from that connection (new
    /// sessions, CSTA requests) is answered 503 with Retry-After and counted as refused
    /// ("congested"); what ends or keeps work (BYE, ACK, CANCEL, refreshes, OPTIONS, responses)
    /// is still served.
    pub fn set_flow_congested(&mut self, flow: FlowId, congested: bool) {
        if congested {
            self.congested.insert(flow);
        } else if !self.congested.is_empty() {
            self.congested.remove(&flow);
        }
    }

    /// The next output for the shell.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            self.pump_link();
        }
        self.outputs.pop_front()
    }

    /// Sessions alive.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// PBX monitors held (one per device).
    pub fn monitor_count(&self) -> usize {
        // One entry per device whose PBX monitor is up (kept with `DeviceWatch::pbx_xref`).
        self.pbx_xrefs.len()
    }

    /// Whether the PBX link is up and normal.
    pub fn pbx_serving(&self) -> bool {
        self.link.is_serving()
    }

    /// `prefix`, eight hex digits of the seed, the counter in hex (no formatter: this names every
    /// branch and tag the gateway sends).
    fn unique(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let mut s = String::with_capacity(prefix.len() + 24);
        s.push_str(prefix);
        push_hex(&mut s, self.seed & 0xffff_ffff, 8);
        push_hex(&mut s, self.counter, 1);
        s
    }

    fn schedule(&mut self, at: Instant, timer: Timer) {
        self.counter += 1;
        self.timers.insert((at, self.counter), timer);
    }

    // ----- gateway-added time -----

    /// The shell is about to hand the engine an input read at `read_at` (a SIP message or PBX
    /// bytes); [`Gateway::end_step`] follows once the outputs are queued. A client request's
    /// gateway-added time is its inbound step (INFO read → CSTA request queued) plus its
    /// outbound step (CSTA answer read → 200 OK queued), observed as
    /// `rcc_gateway_added_seconds`. Without these calls nothing is measured.
    pub fn begin_step(&mut self, read_at: Instant) {
        self.step_read = Some(read_at);
    }

    /// The outputs of the step begun by [`Gateway::begin_step`] are queued, at `done`.
    pub fn end_step(&mut self, done: Instant) {
        let Some(read) = self.step_read.take() else {
            return;
        };
        let step = done.saturating_duration_since(read);
        for key in self.step_sent.drain(..) {
            self.inbound_time.insert(key, step);
        }
        for key in self.step_answered.drain(..) {
            if let Some(inbound) = self.inbound_time.remove(&key) {
                self.metrics.added((inbound + step).as_secs_f64());
            }
        }
    }

    // ----- per-session traces -----

    fn wants_trace(&self, user: &str) -> bool {
        self.trace_users
            .as_ref()
            .is_some_and(|u| u.is_empty() || u.iter().any(|x| x == user))
    }

    fn traced(&self, sid: SessionId) -> bool {
        self.trace_users.is_some() && self.sessions.get(&sid).is_some_and(|s| s.traced)
    }

    /// Records a SIP message of `sid` when that session is traced.
    fn trace_sip(
        &mut self,
        sid: SessionId,
        flow: FlowId,
        way: Way,
        bytes: impl FnOnce() -> Vec<u8>,
    ) {
        if self.traced(sid) {
            self.outputs.push_back(Output::Trace(SessionNote::Data {
                session: sid,
                leg: Leg::Sip(flow),
                way,
                bytes: bytes(),
            }));
        }
    }

    /// The traced sessions on a device, those waiting for its monitor included.
    fn traced_on(&self, device: &str) -> Vec<SessionId> {
        if self.trace_users.is_none() {
            return Vec::new();
        }
        self.devices
            .get(device)
            .map(|w| {
                let mut v: Vec<SessionId> = w
                    .sessions
                    .iter()
                    .copied()
                    .chain(w.waiting.iter().map(|x| x.session))
                    .filter(|s| self.traced(*s))
                    .collect();
                // A session may have several requests waiting, not necessarily side by side.
                v.sort_unstable();
                v.dedup();
                v
            })
            .unwrap_or_default()
    }

    /// The traced sessions a PBX request (and so its answer) belongs to.
    fn traced_for(&self, tag: &PbxTag) -> Vec<SessionId> {
        match tag {
            PbxTag::Client { session, .. } | PbxTag::Release { session }
                if self.traced(*session) =>
            {
                vec![*session]
            }
            PbxTag::Monitor { device } | PbxTag::Snapshot { device } => self.traced_on(device),
            _ => Vec::new(),
        }
    }

    fn trace_pbx(&mut self, sids: &[SessionId], way: Way, frame: Option<&[u8]>) {
        let Some(frame) = frame else {
            return;
        };
        for &session in sids {
            self.outputs.push_back(Output::Trace(SessionNote::Data {
                session,
                leg: Leg::Pbx,
                way,
                bytes: frame.to_vec(),
            }));
        }
    }

    /// Sends a PBX request; the traced sessions it belongs to record its frame.
    fn pbx_request(&mut self, tag: PbxTag, req: Request) -> Result<u16, Failure> {
        let sids = self.traced_for(&tag);
        let sent = self.link.request(tag, req, self.now);
        if sent.is_ok() && !sids.is_empty() {
            let frame = self.link.last_sent().map(<[u8]>::to_vec);
            self.trace_pbx(&sids, Way::Out, frame.as_deref());
        }
        sent
    }

    // ----- time -----

    /// When [`Gateway::handle_timeout`] must run next.
    pub fn next_timeout(&self) -> Option<Instant> {
        [
            self.timers.keys().next().map(|k| k.0),
            self.link.next_timeout(),
            self.server_txs.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.link.handle_timeout(now);
        self.server_txs.expire(now);
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Timer::Expiry(sid, generation) => {
                    if self
                        .sessions
                        .get(&sid)
                        .is_some_and(|s| s.expiry_gen == generation)
                    {
                        tracing::info!(session = sid, "session timer expired");
                        self.metrics.ended("expired");
                        self.end_session(sid, true);
                    }
                }
                Timer::Retransmit(sid, generation) => self.retransmit(sid, generation),
                Timer::ClientTx(branch) => {
                    if let Some(tx) = self.client_txs.remove(&branch) {
                        self.metrics.event_timeouts.inc();
                        if tx.bye && tx.traced {
                            self.outputs.push_back(Output::Trace(SessionNote::End {
                                session: tx.session,
                            }));
                        }
                        if !tx.bye {
                            // Not fatal: pidgin-sipe never answers events.
                            if let Some(s) = self.sessions.get_mut(&tx.session) {
                                s.inflight = s.inflight.saturating_sub(1);
                            }
                            self.pump_events(tx.session);
                        }
                    }
                }
            }
        }
        self.pump_link();
    }

    fn retransmit(&mut self, sid: SessionId, generation: u64) {
        let now = self.now;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.ack_gen != generation {
            return;
        }
        let Some(wait) = s.ack_wait.as_mut() else {
            return;
        };
        if now >= wait.give_up {
            tracing::warn!(session = sid, "no ACK for the 2xx to INVITE");
            self.metrics.ended("no ACK");
            self.end_session(sid, true);
            return;
        }
        let bytes = wait.bytes.clone();
        wait.interval = (wait.interval * 2).min(T2);
        let next = now + wait.interval;
        let flow = s.flow;
        self.trace_sip(sid, flow, Way::Out, || bytes.clone());
        self.outputs.push_back(Output::Respond { flow, bytes });
        self.schedule(next, Timer::Retransmit(sid, generation));
    }

    // ----- PBX link -----

    /// The PBX connection is open.
    pub fn pbx_connected(&mut self, now: Instant) {
        self.now = now;
        self.link.connected(now);
        self.pump_link();
    }

    /// The PBX connection failed or closed.
    pub fn pbx_disconnected(&mut self, reason: &str, now: Instant) {
        self.now = now;
        self.link.disconnected(reason, now);
        self.pump_link();
    }

    /// Bytes from the PBX.
    pub fn pbx_bytes(&mut self, data: &[u8], now: Instant) {
        self.now = now;
        self.link.receive(data, now);
        self.pump_link();
    }

    fn pump_link(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.link.poll_output() {
                self.outputs.push_back(Output::Pbx(o));
                progressed = true;
            }
            while let Some((e, frame)) = self.link.poll_event_with_frame() {
                self.link_event(e, frame);
                progressed = true;
            }
            if !progressed {
                return;
            }
        }
    }

    fn link_event(&mut self, e: LinkEvent<PbxTag>, frame: Option<Vec<u8>>) {
        match e {
            LinkEvent::Up => {
                tracing::info!("PBX link up");
                self.metrics.pbx_up.set(1);
                let _ = self.pbx_request(PbxTag::Features, Request::GetCstaFeatures { line: None });
                self.resync();
            }
            LinkEvent::Down { reason } => {
                tracing::warn!(%reason, "PBX link down");
                self.metrics.pbx_up.set(0);
                self.metrics.pbx_link_losses.inc();
                self.pbx_xrefs.clear();
                for w in self.devices.values_mut() {
                    w.pbx_xref = None;
                    w.starting = false;
                }
                // Requests parked for a monitor get their answer now.
                let parked: Vec<Waiting> = self
                    .devices
                    .values_mut()
                    .flat_map(|w| w.waiting.drain(..))
                    .collect();
                for w in parked {
                    self.answer_csta_error(
                        w.session,
                        &w.tx,
                        w.flow,
                        &w.request,
                        &Failure::LinkDown.to_csta(),
                    );
                }
            }
            LinkEvent::Status { normal } => {
                tracing::warn!(normal, "PBX system status changed");
                self.metrics.pbx_up.set(i64::from(normal));
                if normal {
                    self.resync();
                }
            }
            LinkEvent::Completed { purpose, result } => {
                if frame.is_some() {
                    let sids = self.traced_for(&purpose);
                    self.trace_pbx(&sids, Way::In, frame.as_deref());
                }
                self.completed(purpose, result);
            }
            LinkEvent::Event(e) => self.pbx_event(e, frame.as_deref()),
        }
    }

    /// Re-creates every monitor and asks for each device's calls.
    fn resync(&mut self) {
        let devices: Vec<String> = self
            .devices
            .iter()
            .filter(|(_, w)| !w.sessions.is_empty())
            .map(|(d, _)| d.clone())
            .collect();
        for device in devices {
            if let Some(old) = self
                .devices
                .get_mut(&device)
                .and_then(|w| w.pbx_xref.take())
            {
                self.pbx_xrefs.remove(&old);
                let _ = self.pbx_request(PbxTag::Quiet, Request::MonitorStop { cross_ref: old });
            }
            self.start_monitor(&device);
        }
    }

    fn start_monitor(&mut self, device: &str) {
        let Some(w) = self.devices.get_mut(device) else {
            return;
        };
        if w.starting || w.pbx_xref.is_some() {
            return;
        }
        w.starting = true;
        let req = Request::MonitorStart {
            object: MonitorObject::Device(device.to_owned()),
            monitor_type: None,
        };
        if self
            .pbx_request(
                PbxTag::Monitor {
                    device: device.to_owned(),
                },
                req,
            )
            .is_err()
            && let Some(w) = self.devices.get_mut(device)
        {
            w.starting = false;
        }
    }

    fn completed(&mut self, tag: PbxTag, result: Result<Response, Failure>) {
        match tag {
            PbxTag::Client {
                session,
                tx,
                flow,
                request,
                started,
                service,
                key,
            } => {
                if self.step_read.is_some() && result.is_ok() {
                    self.step_answered.push(key);
                } else {
                    self.inbound_time.remove(&key);
                }
                self.metrics.request_done(
                    service,
                    match &result {
                        Ok(_) => "ok",
                        Err(Failure::Csta(_)) => "csta error",
                        Err(Failure::Timeout) => "timeout",
                        Err(Failure::LinkDown) => "pbx down",
                        Err(Failure::Busy) => "busy",
                    },
                );
                self.metrics.response_time(
                    service,
                    self.now.saturating_duration_since(started).as_secs_f64(),
                );
                let Some(s) = self.sessions.get_mut(&session) else {
                    return;
                };
                s.pending_pbx = s.pending_pbx.saturating_sub(1);
                let message = match result {
                    Ok(mut r) => {
                        let mut view = line_view(&self.numbering, &self.authz, s);
                        view.response_to_lync(&mut r);
                        csta::Message::Response(r)
                    }
                    Err(f) => csta::Message::Error(f.to_csta()),
                };
                let ns = s.namespace.clone();
                self.answer_csta(&tx, flow, &request, &message, &ns);
                self.pump_events(session);
            }
            PbxTag::Monitor { device } => {
                let waiting = match self.devices.get_mut(&device) {
                    Some(w) => {
                        w.starting = false;
                        std::mem::take(&mut w.waiting)
                    }
                    None => Vec::new(),
                };
                match result {
                    Ok(Response::MonitorStart { cross_ref, .. }) => {
                        let resync = self
                            .devices
                            .get(&device)
                            .is_some_and(|w| !w.sessions.is_empty());
                        if let Some(w) = self.devices.get_mut(&device) {
                            w.pbx_xref = Some(cross_ref.clone());
                            // A new monitor: what the PBX reports now is news.
                            w.repeats = Repeats::default();
                            self.pbx_xrefs.insert(cross_ref, device.clone());
                        }
                        for wait in waiting {
                            self.attach(&device, wait);
                        }
                        if resync {
                            let _ = self.pbx_request(
                                PbxTag::Snapshot {
                                    device: device.clone(),
                                },
                                Request::SnapshotDevice { device },
                            );
                        }
                    }
                    other => {
                        let err = match other {
                            Err(f) => f.to_csta(),
                            Ok(_) => CstaError::operation("generic"),
                        };
                        for wait in waiting {
                            self.answer_csta_error(
                                wait.session,
                                &wait.tx,
                                wait.flow,
                                &wait.request,
                                &err,
                            );
                        }
                        self.drop_device_if_unused(&device, PbxTag::Quiet);
                    }
                }
            }
            PbxTag::Snapshot { device } => {
                if let Ok(Response::SnapshotDevice { calls }) = result {
                    self.reconcile(&device, &calls);
                }
            }
            PbxTag::Features => {
                if let Ok(Response::GetCstaFeatures { services, .. }) = result
                    && !services.is_empty()
                {
                    self.pbx_features = Some(services);
                }
            }
            PbxTag::Quiet | PbxTag::Release { .. } => {}
        }
    }

    /// After a resync: calls the sessions know that the PBX no longer has are cleared for them.
    fn reconcile(&mut self, device: &str, calls: &[csta::SnapshotCall]) {
        let live: std::collections::HashSet<&str> = calls
            .iter()
            .filter_map(|c| c.connection.call_id.as_deref())
            .collect();
        let gone: Vec<String> = self
            .devices
            .get(device)
            .map(|w| {
                w.calls
                    .iter()
                    .filter(|c| !live.contains(c.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for call in gone {
            let mut e = csta::CallEvent::new(csta::CallEventKind::ConnectionCleared, "");
            e.connection = Some(csta::ConnectionId::new(call.clone(), device));
            e.subject = Some(csta::DeviceRef::id(device));
            e.local_state = Some(csta::LocalConnectionState::Null);
            e.cause = Some(csta::Cause::new("normalClearing"));
            self.fan_out(device, &Event::Call(e));
            if let Some(w) = self.devices.get_mut(device) {
                w.calls.remove(&call);
            }
        }
        if let Some(w) = self.devices.get_mut(device) {
            w.calls.extend(live.iter().map(|c| (*c).to_owned()));
        }
    }

    fn pbx_event(&mut self, e: Event, frame: Option<&[u8]>) {
        self.metrics.pbx_events.inc();
        let Some(device) = self.pbx_xrefs.get(e.cross_ref()).cloned() else {
            tracing::debug!(xref = e.cross_ref(), "event for an unknown monitor");
            return;
        };
        if frame.is_some() {
            let sids = self.traced_on(&device);
            self.trace_pbx(&sids, Way::In, frame);
        }
        if let (Event::Call(c), Some(w)) = (&e, self.devices.get_mut(&device)) {
            if w.repeats.is_repeat(c) {
                self.metrics.repeated_events.inc();
                tracing::debug!(%device, event = c.kind.root_name(), "repeated event dropped");
                return;
            }
            if let Some(call) = c.connection.as_ref().and_then(|c| c.call_id.clone()) {
                if c.local_state == Some(csta::LocalConnectionState::Null) {
                    w.calls.remove(&call);
                } else if c.kind != csta::CallEventKind::CallCleared {
                    w.calls.insert(call);
                }
            }
            for item in &c.connections {
                if let Some(new) = item.new_connection.as_ref().and_then(|n| n.call_id.clone())
                    && c.local_state != Some(csta::LocalConnectionState::Null)
                {
                    w.calls.insert(new);
                }
            }
        }
        self.fan_out(&device, &e);
    }

    fn fan_out(&mut self, device: &str, e: &Event) {
        let sessions = match self.devices.get(device) {
            Some(w) => w.sessions.clone(),
            None => return,
        };
        for sid in sessions {
            let limit = self.config.sip.event_queue;
            let Some(s) = self.sessions.get_mut(&sid) else {
                continue;
            };
            let Some(xref) = s.xref.clone() else {
                continue;
            };
            let mut event = e.clone();
            let mut view = line_view(&self.numbering, &self.authz, s);
            view.event_to_lync(&mut event, &xref);
            let body = csta::encode(&csta::Message::Event(event), &s.namespace).into_bytes();
            if s.queue.len() >= limit {
                tracing::warn!(
                    session = sid,
                    "event queue full; ending the session so the client re-syncs"
                );
                self.metrics.ended("event overflow");
                self.end_session(sid, true);
                continue;
            }
            s.queue.push_back(body);
            self.pump_events(sid);
        }
    }

    fn pump_events(&mut self, sid: SessionId) {
        let window = self.config.sip.event_window;
        let timeout = Duration::from_millis(self.config.sip.event_timeout_ms);
        loop {
            let Some(s) = self.sessions.get(&sid) else {
                return;
            };
            if s.pending_pbx > 0 || s.inflight >= window || s.ack_wait.is_some() {
                return;
            }
            let branch = self.unique("z9hG4bK");
            let via = self.via(&branch);
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            let Some(body) = s.queue.pop_front() else {
                return;
            };
            let bytes = s
                .dialog
                .request_bytes(&Method::Info, &via, CSTA, Some(DISPOSITION), &body);
            s.inflight += 1;
            s.events_sent += 1;
            let flow = s.flow;
            let target = s.next_hop.clone();
            let traced = s.traced;
            self.client_txs.insert(
                branch.clone(),
                ClientTx {
                    session: sid,
                    bye: false,
                    traced,
                },
            );
            self.metrics.events_sent.inc();
            self.trace_sip(sid, flow, Way::Out, || bytes.clone());
            self.outputs.push_back(Output::Request {
                flow,
                target,
                bytes,
            });
            let at = self.now + timeout;
            self.schedule(at, Timer::ClientTx(branch));
        }
    }

    fn via(&self, branch: &str) -> String {
        let mut via = String::with_capacity(self.via_prefix.len() + branch.len());
        via.push_str(&self.via_prefix);
        via.push_str(branch);
        via
    }

    fn contact(&self) -> String {
        let sip = &self.config.sip;
        format!(
            "<sip:{}@{}:{};transport={}>",
            sip.user,
            sip.host,
            sip.advertised_port(),
            sip.advertised_transport()
        )
    }

    // ----- SIP -----

    /// A SIP message from a trusted peer on connection `flow`.
    pub fn sip_message(&mut self, flow: FlowId, msg: Message, now: Instant) {
        self.now = now;
        if msg.is_request() {
            self.sip_request(flow, msg);
        } else {
            self.sip_response(msg);
        }
        self.pump_link();
    }

    fn respond(&mut self, flow: FlowId, tx: Option<&TxKey>, resp: &Message) {
        let bytes = resp.to_bytes();
        if let Some(tx) = tx {
            self.server_txs.completed(tx, &bytes, self.now);
        }
        if self.trace_users.is_some()
            && let Some(sid) = self.session_of(resp)
        {
            self.trace_sip(sid, flow, Way::Out, || bytes.clone());
        }
        self.outputs.push_back(Output::Respond { flow, bytes });
    }

    /// The session of a message whose To tag is ours (a request to us or our response).
    fn session_of(&self, m: &Message) -> Option<SessionId> {
        let tag = m.to_header().ok()?.tag()?.to_owned();
        let call_id = m.call_id().ok()?.to_owned();
        self.dialogs.get(&(call_id, tag)).copied()
    }

    fn reply(&mut self, flow: FlowId, tx: Option<&TxKey>, req: &Message, code: u16, why: &str) {
        let tag = self.unique("gw");
        let mut resp = Message::response_to(
            req,
            code,
            if why.is_empty() { reason(code) } else { why },
            &tag,
        );
        match code {
            415 => resp.push_header("Accept", CSTA),
            405 | 501 => resp.push_header("Allow", self.allow()),
            503 => resp.push_header("Retry-After", self.config.sip.retry_after_s.to_string()),
            422 => resp.push_header("Min-SE", self.config.sip.min_se_s.to_string()),
            _ => {}
        }
        self.metrics.sip_response(code);
        self.respond(flow, tx, &resp);
    }

    fn allow(&self) -> &'static str {
        if self.config.sip.allow_update {
            "INVITE, ACK, BYE, CANCEL, INFO, OPTIONS, UPDATE"
        } else {
            "INVITE, ACK, BYE, CANCEL, INFO, OPTIONS"
        }
    }

    fn sip_request(&mut self, flow: FlowId, req: Message) {
        let Some(method) = req.method().cloned() else {
            return;
        };
        let checked = match req.check() {
            Ok(c) => c,
            Err(e) => {
                if method != Method::Ack {
                    self.metrics.malformed.inc();
                    let why = format!("Bad Request ({e})");
                    self.reply(flow, None, &req, e.status_code(), &why);
                }
                return;
            }
        };
        let Some(tx) = TxKey::of(&req, &checked) else {
            return;
        };
        let to_tag = checked.to.tag().map(str::to_owned);
        if method == Method::Ack {
            self.ack(&req, to_tag);
            return;
        }
        match self.server_txs.seen(&tx, self.now) {
            Seen::New => {}
            Seen::Pending => return,
            Seen::Answered(bytes) => {
                self.outputs.push_back(Output::Respond { flow, bytes });
                return;
            }
        }
        self.metrics.sip_request(&method);
        let new_work = matches!(
            (&method, &to_tag),
            (Method::Invite, None) | (Method::Info, Some(_))
        );
        if new_work && !self.congested.is_empty() && self.congested.contains(&flow) {
            self.metrics.refused("congested");
            self.reply(
                flow,
                Some(&tx),
                &req,
                503,
                "Service Unavailable (connection congested)",
            );
            return;
        }
        match (&method, to_tag) {
            (Method::Invite, None) => self.new_session(flow, &tx, &req, &checked.from),
            (Method::Options, None) => self.options(flow, &tx, &req),
            (Method::Cancel, _) => {
                // INVITEs are answered at once, so there is never anything left to cancel.
                self.reply(flow, Some(&tx), &req, 481, "");
            }
            (_, None) => self.reply(flow, Some(&tx), &req, 481, ""),
            (_, Some(tag)) => {
                let key = (req.call_id().unwrap_or_default().to_owned(), tag);
                let Some(&sid) = self.dialogs.get(&key) else {
                    self.reply(flow, Some(&tx), &req, 481, "");
                    return;
                };
                if let Some(s) = self.sessions.get_mut(&sid) {
                    // Requests may come on a new connection; follow the peer.
                    s.flow = flow;
                }
                self.trace_sip(sid, flow, Way::In, || req.to_bytes());
                match method {
                    Method::Invite => self.reinvite(sid, flow, &tx, &req),
                    Method::Info => self.info(sid, flow, &tx, &req),
                    Method::Update if self.config.sip.allow_update => {
                        self.refresh(sid, flow, &tx, &req)
                    }
                    Method::Update => self.reply(flow, Some(&tx), &req, 405, ""),
                    Method::Bye => {
                        self.reply(flow, Some(&tx), &req, 200, "");
                        self.metrics.ended("bye");
                        self.end_session(sid, false);
                    }
                    Method::Options => self.options(flow, &tx, &req),
                    _ => self.reply(flow, Some(&tx), &req, 501, ""),
                }
            }
        }
    }

    fn options(&mut self, flow: FlowId, tx: &TxKey, req: &Message) {
        let tag = self.unique("gw");
        let mut resp = Message::response_to(req, 200, "OK", &tag);
        resp.push_header("Allow", self.allow());
        resp.push_header("Accept", CSTA);
        resp.push_header("Supported", "timer");
        self.respond(flow, Some(tx), &resp);
    }

    fn ack(&mut self, req: &Message, to_tag: Option<String>) {
        let Some(tag) = to_tag else {
            return;
        };
        let key = (req.call_id().unwrap_or_default().to_owned(), tag);
        if let Some(&sid) = self.dialogs.get(&key) {
            let flow = self.sessions.get(&sid).map_or(0, |s| s.flow);
            self.trace_sip(sid, flow, Way::In, || req.to_bytes());
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.ack_wait = None;
                s.ack_gen += 1;
            }
            self.pump_events(sid);
        }
    }

    /// The granted Session-Expires, or the 422 answer.
    fn session_timer(&self, req: &Message) -> Result<Option<u32>, ()> {
        let supported = req
            .supported()
            .map(|s| s.iter().any(|t| t.eq_ignore_ascii_case("timer")))
            .unwrap_or(false);
        let asked = req.session_expires().ok().flatten().map(|s| s.delta);
        let sip = &self.config.sip;
        if let Some(a) = asked
            && a < sip.min_se_s
        {
            return Err(());
        }
        if !supported && asked.is_none() {
            return Ok(None);
        }
        Ok(Some(asked.map_or(sip.session_expires_s, |a| {
            a.min(sip.session_expires_s)
        })))
    }

    fn csta_body(req: &Message) -> Result<Option<csta::Decoded>, (u16, String)> {
        match req.content_type() {
            Ok(Some(ct)) if ct.is(CSTA) => {}
            Ok(Some(_)) => return Err((415, String::new())),
            Ok(None) if req.body.is_empty() => return Ok(None),
            _ => return Err((415, String::new())),
        }
        csta::decode(&req.body)
            .map(Some)
            .map_err(|e| (400, format!("Bad Request (CSTA body: {e})")))
    }

    fn new_session(&mut self, flow: FlowId, tx: &TxKey, req: &Message, from: &NameAddr) {
        if req
            .content_type()
            .ok()
            .flatten()
            .is_some_and(|c| c.is("application/sdp"))
        {
            self.reply(
                flow,
                Some(tx),
                req,
                488,
                "Not Acceptable Here (RCC carries no media)",
            );
            return;
        }
        let decoded = match Self::csta_body(req) {
            Ok(Some(d)) => d,
            Ok(None) => {
                self.reply(
                    flow,
                    Some(tx),
                    req,
                    400,
                    "Bad Request (no RequestSystemStatus body)",
                );
                return;
            }
            Err((code, why)) => {
                self.metrics.malformed.inc();
                self.reply(flow, Some(tx), req, code, &why);
                return;
            }
        };
        let line = match decoded.message {
            csta::Message::Request(Request::RequestSystemStatus { line: Some(l) }) => l,
            _ => {
                self.reply(
                    flow,
                    Some(tx),
                    req,
                    400,
                    "Bad Request (expected RequestSystemStatus with lcs:line)",
                );
                return;
            }
        };
        let user = from.uri_raw.clone();
        if !self.authz.may_open(&self.numbering, &user, &line) {
            tracing::warn!(%user, %line, "user may not control this line");
            self.metrics.refused("authorization");
            self.reply(
                flow,
                Some(tx),
                req,
                403,
                "Forbidden (line not assigned to this user)",
            );
            return;
        }
        if self.sessions.len() >= self.config.sip.max_sessions {
            self.metrics.refused("capacity");
            self.reply(
                flow,
                Some(tx),
                req,
                503,
                "Service Unavailable (session limit)",
            );
            return;
        }
        let se = match self.session_timer(req) {
            Ok(se) => se,
            Err(()) => {
                self.reply(flow, Some(tx), req, 422, "");
                return;
            }
        };
        let serving = self.link.is_serving();
        if !serving && self.config.sip.pbx_down == PbxDownAnswer::ServiceUnavailable {
            self.metrics.refused("pbx down");
            self.reply(
                flow,
                Some(tx),
                req,
                503,
                "Service Unavailable (PBX link down)",
            );
            return;
        }
        let local_tag = self.unique("gw");
        let contact = self.contact();
        let dialog = match Dialog::as_uas(req, &local_tag, &contact) {
            Ok(d) => d,
            Err(e) => {
                let why = format!("Bad Request ({e})");
                self.reply(flow, Some(tx), req, 400, &why);
                return;
            }
        };
        self.counter += 1;
        let sid = self.counter;
        let device = self.numbering.line_to_device(&line);
        let namespace = decoded.namespace.unwrap_or_else(|| csta::ED3.to_owned());
        self.dialogs
            .insert((dialog.call_id.clone(), dialog.local_tag.clone()), sid);
        self.sessions.insert(
            sid,
            Box::new(RccSession {
                id: sid,
                next_hop: target_of(&dialog),
                dialog,
                flow,
                user: normalise_user(&user),
                epid: from.epid().map(str::to_owned),
                line,
                device,
                namespace,
                xref: None,
                shown: HashMap::new(),
                queue: VecDeque::new(),
                inflight: 0,
                pending_pbx: 0,
                session_expires: se.unwrap_or(0),
                expiry_gen: 0,
                ack_wait: None,
                ack_gen: 0,
                events_sent: 0,
                traced: false,
            }),
        );
        if self.wants_trace(&normalise_user(&user))
            && let Some(s) = self.sessions.get_mut(&sid)
        {
            s.traced = true;
            self.outputs.push_back(Output::Trace(SessionNote::Start {
                session: sid,
                user: s.user.clone(),
            }));
            self.trace_sip(sid, flow, Way::In, || req.to_bytes());
        }
        self.metrics.sessions.set(self.sessions.len() as i64);
        self.metrics.sessions_started.inc();
        if let Some(sess) = self.sessions.get(&sid) {
            tracing::info!(
                session = sid,
                call_id = %sess.dialog.call_id,
                user = %sess.user,
                epid = sess.epid.as_deref().unwrap_or(""),
                line = %sess.line,
                device = %sess.device,
                "RCC session started"
            );
        }
        self.answer_invite(sid, flow, tx, req, &local_tag);
    }

    fn answer_invite(
        &mut self,
        sid: SessionId,
        flow: FlowId,
        tx: &TxKey,
        req: &Message,
        tag: &str,
    ) {
        let serving = self.link.is_serving();
        let allow = self.allow();
        let contact = self.contact();
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let status = if serving {
            SystemStatusValue::Normal
        } else {
            SystemStatusValue::Disabled
        };
        let body = csta::encode(
            &csta::Message::Response(Response::RequestSystemStatus { status }),
            &s.namespace,
        );
        let mut resp = Message::response_to(req, 200, "OK", tag);
        for rr in req.headers_named("Record-Route") {
            resp.push_header("Record-Route", rr);
        }
        resp.push_header("Contact", contact);
        resp.push_header("Allow", allow);
        if s.session_expires > 0 {
            resp.push_header("Supported", "timer");
            resp.push_header("Require", "timer");
            resp.push_header(
                "Session-Expires",
                format!("{};refresher=uac", s.session_expires),
            );
        }
        resp.push_header("Server", concat!("rcc-gateway/", env!("CARGO_PKG_VERSION")));
        let resp = resp.with_body(CSTA, Some(DISPOSITION), body.into_bytes());
        let bytes = resp.to_bytes();
        self.server_txs.accepted(tx, self.now);
        self.trace_sip(sid, flow, Way::Out, || bytes.clone());
        self.outputs.push_back(Output::Respond {
            flow,
            bytes: bytes.clone(),
        });
        self.metrics.sip_response(200);
        self.arm_expiry(sid);
        let now = self.now;
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.ack_gen += 1;
            let generation = s.ack_gen;
            s.ack_wait = Some(AckWait {
                bytes,
                interval: T1,
                give_up: now + T1 * 64,
            });
            self.schedule(now + T1, Timer::Retransmit(sid, generation));
        }
    }

    fn arm_expiry(&mut self, sid: SessionId) {
        let now = self.now;
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        s.expiry_gen += 1;
        if s.session_expires == 0 {
            return;
        }
        let generation = s.expiry_gen;
        let at = now + Duration::from_secs(s.session_expires.into());
        self.schedule(at, Timer::Expiry(sid, generation));
    }

    fn reinvite(&mut self, sid: SessionId, flow: FlowId, tx: &TxKey, req: &Message) {
        if let Err((code, why)) = Self::csta_body(req) {
            self.reply(flow, Some(tx), req, code, &why);
            return;
        }
        let se = match self.session_timer(req) {
            Ok(se) => se,
            Err(()) => {
                self.reply(flow, Some(tx), req, 422, "");
                return;
            }
        };
        if let Some(s) = self.sessions.get_mut(&sid) {
            if let Some(se) = se {
                s.session_expires = se;
            }
            if let Ok(contacts) = req.contacts()
                && let Some(c) = contacts.into_iter().next()
            {
                s.dialog.remote_target = c.uri_raw;
                s.next_hop = target_of(&s.dialog);
            }
        }
        let tag = self
            .sessions
            .get(&sid)
            .map(|s| s.dialog.local_tag.clone())
            .unwrap_or_default();
        self.metrics.refreshes.inc();
        self.answer_invite(sid, flow, tx, req, &tag);
    }

    fn refresh(&mut self, sid: SessionId, flow: FlowId, tx: &TxKey, req: &Message) {
        let se = match self.session_timer(req) {
            Ok(se) => se,
            Err(()) => {
                self.reply(flow, Some(tx), req, 422, "");
                return;
            }
        };
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if let Some(se) = se {
            s.session_expires = se;
        }
        let se = s.session_expires;
        let tag = s.dialog.local_tag.clone();
        let mut resp = Message::response_to(req, 200, "OK", &tag);
        if se > 0 {
            resp.push_header("Require", "timer");
            resp.push_header("Session-Expires", format!("{se};refresher=uac"));
        }
        resp.push_header("Contact", self.contact());
        self.metrics.refreshes.inc();
        self.metrics.sip_response(200);
        self.respond(flow, Some(tx), &resp);
        self.arm_expiry(sid);
    }

    fn answer_csta(
        &mut self,
        tx: &TxKey,
        flow: FlowId,
        req: &Message,
        msg: &csta::Message,
        ns: &str,
    ) {
        let body = csta::encode(msg, ns).into_bytes();
        let tag = self.unique("gw");
        let resp =
            Message::response_to(req, 200, "OK", &tag).with_body(CSTA, Some(DISPOSITION), body);
        self.metrics.sip_response(200);
        self.respond(flow, Some(tx), &resp);
    }

    fn answer_csta_error(
        &mut self,
        sid: SessionId,
        tx: &TxKey,
        flow: FlowId,
        req: &Message,
        err: &CstaError,
    ) {
        let ns = self
            .sessions
            .get(&sid)
            .map_or_else(|| csta::ED3.to_owned(), |s| s.namespace.clone());
        self.answer_csta(tx, flow, req, &csta::Message::Error(err.clone()), &ns);
    }

    fn info(&mut self, sid: SessionId, flow: FlowId, tx: &TxKey, req: &Message) {
        let decoded = match Self::csta_body(req) {
            Ok(Some(d)) => d,
            Ok(None) => {
                // An INFO without a body is a keep-alive.
                self.reply(flow, Some(tx), req, 200, "");
                return;
            }
            Err((code, why)) => {
                self.metrics.malformed.inc();
                self.reply(flow, Some(tx), req, code, &why);
                return;
            }
        };
        let request = match decoded.message {
            csta::Message::Request(r) => r,
            _ => {
                self.reply(
                    flow,
                    Some(tx),
                    req,
                    400,
                    "Bad Request (CSTA body is not a request)",
                );
                return;
            }
        };
        if let (Some(ns), Some(s)) = (decoded.namespace, self.sessions.get_mut(&sid)) {
            s.namespace = ns;
        }
        let now = self.now;
        let req_box = Box::new(req.clone());
        match request {
            Request::GetCstaFeatures { .. } => {
                let resp = features(self.pbx_features.as_deref());
                self.answer_session(sid, tx, flow, req, &csta::Message::Response(resp));
                self.metrics.request_done("GetCSTAFeatures", "ok");
            }
            Request::RequestSystemStatus { .. } => {
                let status = if self.link.is_serving() {
                    SystemStatusValue::Normal
                } else {
                    SystemStatusValue::Disabled
                };
                let r = Response::RequestSystemStatus { status };
                self.answer_session(sid, tx, flow, req, &csta::Message::Response(r));
            }
            Request::SystemStatus { .. } => {
                let r = Response::Empty(Service::SystemStatus);
                self.answer_session(sid, tx, flow, req, &csta::Message::Response(r));
            }
            Request::MonitorStart {
                object: MonitorObject::Device(d),
                monitor_type,
            } => {
                let Some(s) = self.sessions.get_mut(&sid) else {
                    return;
                };
                let view = line_view(&self.numbering, &self.authz, s);
                let device = match view.request_to_pbx(&Request::MonitorStart {
                    object: MonitorObject::Device(d),
                    monitor_type,
                }) {
                    Ok(Request::MonitorStart {
                        object: MonitorObject::Device(dev),
                        ..
                    }) => dev,
                    Ok(_) => return,
                    Err(e) => {
                        self.metrics.refused("authorization");
                        self.answer_csta_error(sid, tx, flow, req, &e);
                        return;
                    }
                };
                if let Some(x) = s.xref.clone() {
                    // Already monitoring (a client repeating itself): same answer.
                    let r = Response::MonitorStart {
                        cross_ref: x,
                        existing_calls: None,
                    };
                    self.answer_session(sid, tx, flow, req, &csta::Message::Response(r));
                    return;
                }
                let wait = Waiting {
                    session: sid,
                    tx: tx.clone(),
                    flow,
                    request: req_box,
                };
                let w = self.devices.entry(device.clone()).or_default();
                if w.pbx_xref.is_some() {
                    self.attach(&device, wait);
                } else if !self.link.is_up() {
                    self.answer_csta_error(sid, tx, flow, req, &Failure::LinkDown.to_csta());
                    self.drop_device_if_unused(&device, PbxTag::Quiet);
                } else {
                    w.waiting.push(wait);
                    self.start_monitor(&device);
                }
            }
            Request::MonitorStop { cross_ref } => {
                let ok = self
                    .sessions
                    .get(&sid)
                    .is_some_and(|s| s.xref.as_deref() == Some(cross_ref.as_str()));
                let msg = if ok {
                    self.detach(sid);
                    csta::Message::Response(Response::Empty(Service::MonitorStop))
                } else {
                    csta::Message::Error(CstaError::operation("invalidMonitorCrossRefID"))
                };
                self.answer_session(sid, tx, flow, req, &msg);
            }
            other => {
                let Some(s) = self.sessions.get_mut(&sid) else {
                    return;
                };
                let view = line_view(&self.numbering, &self.authz, s);
                let pbx_request = match view.request_to_pbx(&other) {
                    Ok(r) => r,
                    Err(e) => {
                        self.metrics.refused("authorization");
                        self.metrics
                            .request_done(other.service().request_name(), "refused");
                        self.answer_csta_error(sid, tx, flow, req, &e);
                        return;
                    }
                };
                if !self.link.is_serving() {
                    self.metrics
                        .request_done(other.service().request_name(), "pbx down");
                    self.answer_csta_error(sid, tx, flow, req, &Failure::LinkDown.to_csta());
                    return;
                }
                self.counter += 1;
                let key = self.counter;
                let tag = PbxTag::Client {
                    session: sid,
                    tx: tx.clone(),
                    flow,
                    request: req_box,
                    started: now,
                    service: other.service().request_name(),
                    key,
                };
                let service = other.service().request_name();
                match self.pbx_request(tag, pbx_request) {
                    Ok(invoke) => {
                        tracing::debug!(
                            session = sid,
                            call_id = req.call_id().unwrap_or_default(),
                            invoke,
                            service,
                            "request sent to the PBX"
                        );
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            s.pending_pbx += 1;
                        }
                        if self.step_read.is_some() {
                            self.step_sent.push(key);
                        }
                    }
                    Err(f) => {
                        self.metrics
                            .request_done(other.service().request_name(), "busy");
                        self.answer_csta_error(sid, tx, flow, req, &f.to_csta());
                    }
                }
            }
        }
    }

    fn answer_session(
        &mut self,
        sid: SessionId,
        tx: &TxKey,
        flow: FlowId,
        req: &Message,
        msg: &csta::Message,
    ) {
        let ns = self
            .sessions
            .get(&sid)
            .map_or_else(|| csta::ED3.to_owned(), |s| s.namespace.clone());
        self.answer_csta(tx, flow, req, msg, &ns);
    }

    /// Gives a session its cross-reference ID on a device whose PBX monitor exists.
    fn attach(&mut self, device: &str, wait: Waiting) {
        let xref = self.unique("");
        let Some(s) = self.sessions.get_mut(&wait.session) else {
            return;
        };
        s.xref = Some(xref.clone());
        if let Some(w) = self.devices.get_mut(device)
            && !w.sessions.contains(&wait.session)
        {
            w.sessions.push(wait.session);
        }
        self.metrics.monitors.set(self.monitor_count() as i64);
        let r = Response::MonitorStart {
            cross_ref: xref,
            existing_calls: None,
        };
        self.answer_session(
            wait.session,
            &wait.tx,
            wait.flow,
            &wait.request,
            &csta::Message::Response(r),
        );
        self.pump_events(wait.session);
    }

    /// Takes a session off its device; the PBX monitor goes with the last session.
    fn detach(&mut self, sid: SessionId) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        s.xref = None;
        let device = s.device.clone();
        if let Some(w) = self.devices.get_mut(&device) {
            w.sessions.retain(|x| *x != sid);
        }
        self.drop_device_if_unused(&device, PbxTag::Release { session: sid });
    }

    /// Stops the device's PBX monitor when no session uses it; `tag` says on whose behalf.
    fn drop_device_if_unused(&mut self, device: &str, tag: PbxTag) {
        let unused = self
            .devices
            .get(device)
            .is_some_and(|w| w.sessions.is_empty() && w.waiting.is_empty() && !w.starting);
        if !unused {
            return;
        }
        if let Some(w) = self.devices.remove(device)
            && let Some(x) = w.pbx_xref
        {
            self.pbx_xrefs.remove(&x);
            let _ = self.pbx_request(tag, Request::MonitorStop { cross_ref: x });
        }
        self.metrics.monitors.set(self.monitor_count() as i64);
    }

    /// Ends a session (with a BYE to the client when `bye`).
    fn end_session(&mut self, sid: SessionId, bye: bool) {
        self.detach(sid);
        let Some(mut s) = self.sessions.remove(&sid) else {
            return;
        };
        self.dialogs
            .remove(&(s.dialog.call_id.clone(), s.dialog.local_tag.clone()));
        self.metrics.sessions.set(self.sessions.len() as i64);
        if bye {
            let branch = self.unique("z9hG4bK");
            let via = self.via(&branch);
            let bytes = s.dialog.request(Method::Bye, &via).to_bytes();
            self.client_txs.insert(
                branch,
                ClientTx {
                    session: sid,
                    bye: true,
                    traced: s.traced,
                },
            );
            if s.traced {
                self.outputs.push_back(Output::Trace(SessionNote::Data {
                    session: sid,
                    leg: Leg::Sip(s.flow),
                    way: Way::Out,
                    bytes: bytes.clone(),
                }));
            }
            self.outputs.push_back(Output::Request {
                flow: s.flow,
                target: s.next_hop.clone(),
                bytes,
            });
        } else if s.traced {
            self.outputs
                .push_back(Output::Trace(SessionNote::End { session: sid }));
        }
        tracing::info!(session = sid, call_id = %s.dialog.call_id, user = %s.user, bye, "RCC session ended");
    }

    fn sip_response(&mut self, resp: Message) {
        let Some(code) = resp.status() else {
            return;
        };
        if code < 200 {
            return;
        }
        let Some(branch) = resp
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
        else {
            return;
        };
        let Some(tx) = self.client_txs.remove(&branch) else {
            return;
        };
        if tx.traced {
            let flow = self
                .sessions
                .get(&tx.session)
                .map_or(FlowId::MAX, |s| s.flow);
            self.outputs.push_back(Output::Trace(SessionNote::Data {
                session: tx.session,
                leg: Leg::Sip(flow),
                way: Way::In,
                bytes: resp.to_bytes(),
            }));
            if tx.bye {
                self.outputs.push_back(Output::Trace(SessionNote::End {
                    session: tx.session,
                }));
            }
        }
        if tx.bye {
            return;
        }
        self.metrics.event_answers(code);
        if let Some(s) = self.sessions.get_mut(&tx.session) {
            s.inflight = s.inflight.saturating_sub(1);
        }
        if code == 481 {
            tracing::info!(session = tx.session, "client no longer knows the dialog");
            self.metrics.ended("481");
            self.end_session(tx.session, false);
            return;
        }
        self.pump_events(tx.session);
    }

    /// Stops accepting work: every session gets a BYE and the PBX session is stopped.
    pub fn shutdown(&mut self, now: Instant) {
        self.now = now;
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for sid in ids {
            self.metrics.ended("shutdown");
            self.end_session(sid, true);
        }
        self.link.stop(now);
        self.pump_link();
    }
}

/// `s`'s view of device IDs (a free function: the engine's maps are borrowed apart).
fn line_view<'a>(
    numbering: &'a Numbering,
    authz: &'a Authorization,
    s: &'a mut RccSession,
) -> LineView<'a> {
    LineView {
        numbering,
        authz,
        user: &s.user,
        line: &s.line,
        device: &s.device,
        shown: &mut s.shown,
    }
}

/// The next hop of a dialog's requests: the first route (loose routing) or the remote target.
pub fn target_of(dialog: &Dialog) -> Target {
    let uri_text = dialog
        .route_set
        .first()
        .map(|r| {
            r.trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or(r)
                .to_owned()
        })
        .unwrap_or_else(|| dialog.remote_target.clone());
    match Uri::parse(&uri_text) {
        Ok(Uri::Sip(u)) => target_of_uri(&u),
        _ => Target {
            host: String::new(),
            port: 0,
            tls: true,
        },
    }
}

fn target_of_uri(u: &SipUri) -> Target {
    let transport = u.params.value("transport").map(str::to_ascii_lowercase);
    let tls = u.secure || transport.as_deref().is_none_or(|t| t == "tls");
    Target {
        host: u
            .params
            .value("maddr")
            .map_or_else(|| u.host.to_string(), str::to_owned),
        port: u.port.unwrap_or(if tls { 5061 } else { 5060 }),
        tls,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_digits_match_the_formatter() {
        for (v, w) in [
            (0u64, 1),
            (0, 8),
            (0xabc, 8),
            (u64::MAX, 1),
            (0x1_0000_0000, 8),
            (15, 1),
        ] {
            let mut s = String::new();
            super::push_hex(&mut s, v, w);
            assert_eq!(s, format!("{v:0w$x}"));
        }
    }
}
