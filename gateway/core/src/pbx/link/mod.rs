//! The CSTA client link to the PBX, sans-IO: framing, the ECMA-354 session and its timer reset,
//! SystemRegister, answers to the PBX's SystemStatus, invoke-ID allocation and correlation,
//! per-request timeouts, and reconnection with backoff. The shell connects and moves bytes; the
//! gateway engine sends requests tagged with its own `P` and gets [`LinkEvent`]s back.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rcc_protocol::csta::{
    self, CstaError, Decoded, ED3, ED4, Encoding, Event, Message, Reason, Request, Response,
    Service, Session, SystemStatusValue,
};
use rcc_protocol::framing::{self, CstaFrameDecoder, EVENT_INVOKE_ID, Frame, InvokeId};

use super::pacer::{Full, Pace, Pacer, Priority};
use crate::config::{PbxConfig, PbxFraming, PbxProfile};

/// The Avaya private namespace asked for by the `aes` profile.
pub const AES_VERSION: &str = "http://www.ecma-international.org/standards/ecma-323/csta/ed3/priv2";

/// Why a request did not get a CSTA answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The PBX answered CSTAErrorCode (or an ECMA-354 negative response).
    Csta(CstaError),
    /// No answer within the request timeout.
    Timeout,
    /// The link is down (or went down while the request was pending).
    LinkDown,
    /// Too many requests in flight.
    Busy,
}

impl Failure {
    /// Whether asking again later may succeed: the PBX was short of resources (monitor
    /// licences, `resourceBusy`, its own performance limits), did not answer in time, or too
    /// many requests were waiting. A lost link is not: its resync asks again when it is back.
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Csta(e) => matches!(
                e.category,
                csta::ErrorCategory::SystemResourceAvailability
                    | csta::ErrorCategory::SubscribedResourceAvailability
                    | csta::ErrorCategory::PerformanceManagement
            ),
            Failure::Timeout | Failure::Busy => true,
            Failure::LinkDown => false,
        }
    }

    /// The CSTAErrorCode a Lync client gets for this failure.
    pub fn to_csta(&self) -> CstaError {
        match self {
            Failure::Csta(e) => e.clone(),
            Failure::Timeout => CstaError::resource("resourceBusy"),
            Failure::LinkDown => CstaError::resource("resourceOutOfService"),
            Failure::Busy => CstaError::new(
                csta::ErrorCategory::PerformanceManagement,
                "performanceLimitExceeded",
            ),
        }
    }
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutput {
    /// Open a connection to address number `attempt % addresses`.
    Connect {
        /// Connection attempt counter (the shell alternates primary and secondary).
        attempt: u32,
    },
    /// Write these bytes.
    Send(Vec<u8>),
    /// Close the connection.
    Close,
}

/// What the engine learns from the link.
// Short-lived: produced and consumed in one engine step.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent<P> {
    /// The link is ready for requests (after session and registration).
    Up,
    /// The link went down.
    Down {
        /// Why.
        reason: String,
        /// The link had been up (a loss), rather than an attempt to connect failing.
        was_up: bool,
    },
    /// The PBX reported its status (normal or not).
    Status {
        /// `normal` or `enabled`.
        normal: bool,
    },
    /// A request completed.
    Completed {
        /// The engine's tag.
        purpose: P,
        /// The answer.
        result: Result<Response, Failure>,
    },
    /// An event (invoke 9999).
    Event(Event),
    /// The PBX ended a monitor itself (a switch-initiated MonitorStop, already answered).
    MonitorEnded {
        /// The monitor's cross-reference ID.
        cross_ref: String,
    },
    /// A paced request left its queue for the PBX (only with `keep_frames`, so the engine
    /// can trace it): its frame comes with the event; [`PbxLink::purpose_of`] tells its
    /// purpose.
    PacedSent {
        /// Its invoke ID.
        invoke: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Down,
    Connecting,
    StartingSession,
    Registering,
    Up,
}

#[derive(Debug)]
enum Purpose<P> {
    Start,
    /// StopApplicationSession at shutdown: its answer (or silence) changes nothing.
    Stop,
    Reset,
    Register,
    /// RequestSystemStatus after a quiet spell: any answer shows the PBX is there.
    KeepAlive,
    Engine(P),
}

#[derive(Debug)]
struct Pending<P> {
    purpose: Purpose<P>,
    deadline: Instant,
}

/// Settings the link needs, from `[pbx]`.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// Vendor profile.
    pub profile: PbxProfile,
    /// Namespace to write.
    pub namespace: String,
    /// Framing.
    pub framing: PbxFraming,
    /// ECMA-354 login.
    pub credentials: Option<(String, String)>,
    /// `applicationID`.
    pub application_id: String,
    /// Session duration asked for.
    pub session_duration: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// First reconnect delay.
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// Requests in flight at most.
    pub max_in_flight: usize,
    /// Keep each answer's and event's frame bytes for the engine (per-session traces).
    pub keep_frames: bool,
    /// Requests unanswered in a row that drop the link (0: never).
    pub timeouts_before_drop: u32,
    /// Time a frame may stay incomplete before the link is dropped.
    pub frame_timeout: Duration,
    /// Quiet time after which a RequestSystemStatus checks the PBX is there (None: never).
    pub keepalive: Option<Duration>,
    /// Pacing of MonitorStart and SnapshotDevice (None: they go at once).
    pub pace: Option<Pace>,
    /// Paced requests queued at most.
    pub pace_queue: usize,
    /// Time a client's paced request may wait for its turn.
    pub pace_wait: Duration,
}

impl LinkSettings {
    /// From the configuration.
    pub fn from_config(c: &PbxConfig) -> LinkSettings {
        let namespace = c.namespace.clone().unwrap_or_else(|| {
            match c.profile {
                PbxProfile::Generic => ED3,
                PbxProfile::Osv => ED4,
                PbxProfile::Aes => AES_VERSION,
            }
            .to_owned()
        });
        LinkSettings {
            profile: c.profile,
            namespace,
            framing: c.framing,
            credentials: c.username.clone().zip(c.password.clone()),
            application_id: c.application_id.clone(),
            session_duration: Duration::from_secs(c.session_duration_s.into()),
            request_timeout: c.request_timeout(),
            reconnect_min: Duration::from_millis(c.reconnect_min_ms),
            reconnect_max: Duration::from_millis(c.reconnect_max_ms),
            max_in_flight: c.max_in_flight,
            keep_frames: false,
            timeouts_before_drop: c.timeouts_before_drop,
            frame_timeout: Duration::from_millis(c.frame_timeout_ms),
            keepalive: (c.keepalive_s > 0).then(|| Duration::from_secs(c.keepalive_s)),
            pace: (c.pace_per_s > 0.0).then_some(Pace {
                per_second: c.pace_per_s,
                burst: c.pace_burst,
            }),
            pace_queue: c.pace_queue,
            pace_wait: Duration::from_millis(c.pace_wait_ms),
        }
    }

    fn wants_session(&self) -> bool {
        self.profile == PbxProfile::Aes || self.credentials.is_some()
    }
}

/// The link state machine.
pub struct PbxLink<P> {
    settings: LinkSettings,
    state: State,
    decoder: CstaFrameDecoder,
    namespace: String,
    next_invoke: u16,
    pending: HashMap<u16, Pending<P>>,
    /// Pending requests by deadline, so finding the next timeout does not scan them all.
    deadlines: std::collections::BTreeSet<(Instant, u16)>,
    session: Option<(String, Duration)>,
    reset_at: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Duration,
    attempts: u32,
    normal: bool,
    outputs: VecDeque<LinkOutput>,
    /// Events, with the frame that caused them when `keep_frames` is set.
    events: VecDeque<(LinkEvent<P>, Option<Vec<u8>>)>,
    /// The frame being handled, as framed on the wire (only with `keep_frames`).
    current_frame: Option<Vec<u8>>,
    /// Frames that could not be used (logged and counted by the engine).
    pub dropped_frames: u64,
    /// Whether the PBX is still there.
    liveness: Liveness,
    /// MonitorStart and SnapshotDevice waiting for their turn.
    pacer: Option<Pacer<(P, Request)>>,
}

/// What shows the PBX is still there: answers, complete frames, traffic.
#[derive(Debug)]
struct Liveness {
    /// Requests that timed out since the last answer.
    timeouts_in_a_row: u32,
    /// Since when a frame has been incomplete.
    partial_since: Option<Instant>,
    /// When the PBX last sent anything.
    last_heard: Instant,
    /// A keep-alive is in flight.
    probing: bool,
}

impl Liveness {
    /// Nothing known against the PBX, as of `now`.
    fn new(now: Instant) -> Liveness {
        Liveness {
            timeouts_in_a_row: 0,
            partial_since: None,
            last_heard: now,
            probing: false,
        }
    }
}

impl<P> PbxLink<P> {
    /// A link that connects as soon as the shell starts.
    pub fn new(settings: LinkSettings, now: Instant) -> Self {
        let decoder = new_decoder(settings.framing);
        let pacer = settings
            .pace
            .map(|pace| Pacer::new(pace, settings.pace_queue, settings.pace_wait, now));
        PbxLink {
            namespace: settings.namespace.clone(),
            backoff: settings.reconnect_min,
            settings,
            state: State::Down,
            decoder,
            next_invoke: 1,
            pending: HashMap::new(),
            deadlines: std::collections::BTreeSet::new(),
            session: None,
            reset_at: None,
            retry_at: Some(now),
            attempts: 0,
            normal: true,
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            current_frame: None,
            dropped_frames: 0,
            liveness: Liveness::new(now),
            pacer,
        }
    }

    /// Whether requests can be sent.
    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }

    /// Whether the link is up and the PBX reports a normal status.
    pub fn is_serving(&self) -> bool {
        self.state == State::Up && self.normal
    }

    /// The current ECMA-354 session ID.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.0.as_str())
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The next output for the shell.
    pub fn poll_output(&mut self) -> Option<LinkOutput> {
        self.outputs.pop_front()
    }

    /// The next event for the engine.
    pub fn poll_event(&mut self) -> Option<LinkEvent<P>> {
        self.events.pop_front().map(|(e, _)| e)
    }

    /// The next event with the PBX frame that caused it, when `keep_frames` is set and it came
    /// from a frame (answers and events; not link state changes or timeouts).
    pub fn poll_event_with_frame(&mut self) -> Option<(LinkEvent<P>, Option<Vec<u8>>)> {
        self.events.pop_front()
    }

    /// The bytes of the frame just queued for sending, if the last output is one.
    pub fn last_sent(&self) -> Option<&[u8]> {
        match self.outputs.back() {
            Some(LinkOutput::Send(b)) => Some(b),
            _ => None,
        }
    }

    fn push_event(&mut self, e: LinkEvent<P>) {
        let frame = self.current_frame.clone();
        self.events.push_back((e, frame));
    }

    /// When [`PbxLink::handle_timeout`] must run next.
    pub fn next_timeout(&self) -> Option<Instant> {
        let pending = self.deadlines.first().map(|(t, _)| *t);
        [
            self.retry_at,
            self.reset_at,
            pending,
            self.stall_deadline(),
            self.keepalive_due(),
            self.pacer.as_ref().and_then(Pacer::next_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When an incomplete frame will have stalled too long.
    fn stall_deadline(&self) -> Option<Instant> {
        let since = self.liveness.partial_since?;
        (self.state != State::Down).then(|| since + self.settings.frame_timeout)
    }

    /// When the next keep-alive is due: a quiet spell on a link that is up.
    fn keepalive_due(&self) -> Option<Instant> {
        let quiet = self.settings.keepalive?;
        (self.state == State::Up && !self.liveness.probing)
            .then(|| self.liveness.last_heard + quiet)
    }

    /// Runs due timers: reconnect, session reset, request timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.stall_deadline().is_some_and(|t| t <= now) {
            self.lose(
                &format!(
                    "a frame from the PBX stayed incomplete for {} ms",
                    self.settings.frame_timeout.as_millis()
                ),
                now,
            );
        }
        if self.keepalive_due().is_some_and(|t| t <= now) {
            self.liveness.probing = true;
            let probe = Message::Request(Request::RequestSystemStatus { line: None });
            self.send_request(Purpose::KeepAlive, &probe, now);
        }
        if self.retry_at.is_some_and(|t| t <= now) && self.state == State::Down {
            self.retry_at = None;
            self.state = State::Connecting;
            self.outputs.push_back(LinkOutput::Connect {
                attempt: self.attempts,
            });
            self.attempts = self.attempts.wrapping_add(1);
        }
        if self.reset_at.is_some_and(|t| t <= now) {
            self.reset_at = None;
            if let Some((id, d)) = self.session.clone() {
                let req = Message::Session(Session::Reset {
                    session_id: id,
                    duration: Some(d.as_secs() as u32),
                });
                self.send_request(Purpose::Reset, &req, now);
            }
        }
        self.pace(now);
        let mut expired = Vec::new();
        while let Some(&(t, id)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.pop_first();
            expired.push(id);
        }
        for id in expired {
            if let Some(p) = self.take_pending(id) {
                match p.purpose {
                    Purpose::Engine(purpose) => {
                        self.push_event(LinkEvent::Completed {
                            purpose,
                            result: Err(Failure::Timeout),
                        });
                        self.timed_out(now);
                    }
                    Purpose::KeepAlive => {
                        self.liveness.probing = false;
                        self.timed_out(now);
                    }
                    Purpose::Start | Purpose::Reset => {
                        self.lose("the PBX did not answer the session request", now)
                    }
                    Purpose::Register => self.become_up(now),
                    Purpose::Stop => {}
                }
            }
        }
    }

    /// Sends the paced requests whose turn it is (within `max_in_flight`), and fails the
    /// clients' ones that waited too long.
    fn pace(&mut self, now: Instant) {
        let Some(pacer) = self.pacer.as_mut() else {
            return;
        };
        for (purpose, _) in pacer.expired(now) {
            self.events.push_back((
                LinkEvent::Completed {
                    purpose,
                    result: Err(Failure::Busy),
                },
                None,
            ));
        }
        while self.state == State::Up && self.pending.len() < self.settings.max_in_flight {
            let Some((purpose, request)) = self.pacer.as_mut().and_then(|p| p.next_due(now)) else {
                break;
            };
            let invoke =
                self.send_request(Purpose::Engine(purpose), &Message::Request(request), now);
            if self.settings.keep_frames {
                let frame = self.last_sent().map(<[u8]>::to_vec);
                self.events
                    .push_back((LinkEvent::PacedSent { invoke }, frame));
            }
        }
    }

    /// The engine's purpose of a pending request.
    pub fn purpose_of(&self, invoke: u16) -> Option<&P> {
        match &self.pending.get(&invoke)?.purpose {
            Purpose::Engine(p) => Some(p),
            _ => None,
        }
    }

    /// A request went unanswered: enough of them in a row and the PBX is taken to be gone.
    fn timed_out(&mut self, now: Instant) {
        self.liveness.timeouts_in_a_row += 1;
        let limit = self.settings.timeouts_before_drop;
        if limit > 0 && self.liveness.timeouts_in_a_row >= limit && self.state != State::Down {
            self.lose(
                &format!("the PBX left {limit} request(s) in a row unanswered"),
                now,
            );
        }
    }

    /// The shell connected.
    pub fn connected(&mut self, now: Instant) {
        self.decoder = new_decoder(self.settings.framing);
        self.liveness = Liveness::new(now);
        self.namespace.clone_from(&self.settings.namespace);
        if self.settings.wants_session() {
            self.state = State::StartingSession;
            let (user, password) = self
                .settings
                .credentials
                .clone()
                .map_or((None, None), |(u, p)| (Some(u), Some(p)));
            let start = Message::Session(Session::Start {
                application_id: self.settings.application_id.clone(),
                user,
                password,
                protocol_versions: vec![self.settings.namespace.clone()],
                duration: Some(self.settings.session_duration.as_secs() as u32),
            });
            self.send_request(Purpose::Start, &start, now);
        } else {
            self.register(now);
        }
    }

    /// The shell could not connect, or the connection ended.
    pub fn disconnected(&mut self, reason: &str, now: Instant) {
        if self.state != State::Down {
            self.lose(reason, now);
        } else if self.retry_at.is_none() {
            self.schedule_retry(now);
        }
    }

    fn register(&mut self, now: Instant) {
        if self.settings.profile == PbxProfile::Osv {
            self.state = State::Registering;
            let req = Message::Request(Request::SystemRegister {
                system_status: true,
                request_system_status: false,
            });
            self.send_request(Purpose::Register, &req, now);
        } else {
            self.become_up(now);
        }
    }

    fn become_up(&mut self, _now: Instant) {
        if self.state == State::Up {
            return;
        }
        self.state = State::Up;
        self.backoff = self.settings.reconnect_min;
        self.attempts = 0;
        self.normal = true;
        self.push_event(LinkEvent::Up);
    }

    fn schedule_retry(&mut self, now: Instant) {
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(self.settings.reconnect_max);
    }

    fn lose(&mut self, reason: &str, now: Instant) {
        let was_up = self.state == State::Up;
        self.state = State::Down;
        self.session = None;
        self.reset_at = None;
        self.outputs.push_back(LinkOutput::Close);
        self.deadlines.clear();
        let queued = self.pacer.as_mut().map(Pacer::drain).unwrap_or_default();
        let pending = self.pending.drain().filter_map(|(_, p)| match p.purpose {
            Purpose::Engine(purpose) => Some(purpose),
            _ => None,
        });
        let failed: Vec<P> = pending.chain(queued.into_iter().map(|(p, _)| p)).collect();
        for purpose in failed {
            let failed = LinkEvent::Completed {
                purpose,
                result: Err(Failure::LinkDown),
            };
            self.events.push_back((failed, None));
        }
        self.schedule_retry(now);
        tracing::debug!(was_up, "PBX link lost");
        self.push_event(LinkEvent::Down {
            reason: reason.to_owned(),
            was_up,
        });
    }

    /// Sends a request for the engine; the answer comes back as [`LinkEvent::Completed`]. A
    /// request the link cannot take gives its purpose back with the reason.
    pub fn request(
        &mut self,
        purpose: P,
        request: Request,
        now: Instant,
    ) -> Result<u16, (Failure, P)> {
        if self.state != State::Up {
            return Err((Failure::LinkDown, purpose));
        }
        if self.pending.len() >= self.settings.max_in_flight {
            return Err((Failure::Busy, purpose));
        }
        Ok(self.send_request(Purpose::Engine(purpose), &Message::Request(request), now))
    }

    /// Like [`PbxLink::request`], for the requests a PBX must be spared storms of (MonitorStart,
    /// SnapshotDevice): with pacing configured they go in turn, `Ok(None)` meaning queued (the
    /// answer still comes as [`LinkEvent::Completed`]; a client's that waits too long completes
    /// with [`Failure::Busy`]).
    pub fn request_paced(
        &mut self,
        purpose: P,
        request: Request,
        priority: Priority,
        now: Instant,
    ) -> Result<Option<u16>, (Failure, P)> {
        if self.state != State::Up {
            return Err((Failure::LinkDown, purpose));
        }
        let Some(pacer) = self.pacer.as_mut() else {
            return self.request(purpose, request, now).map(Some);
        };
        match pacer.offer((purpose, request), priority, now) {
            Ok(Some((purpose, request))) => self.request(purpose, request, now).map(Some),
            Ok(None) => Ok(None),
            Err(Full((purpose, _))) => Err((Failure::Busy, purpose)),
        }
    }

    /// Paced requests waiting for their turn.
    pub fn paced_waiting(&self) -> usize {
        self.pacer.as_ref().map_or(0, Pacer::len)
    }

    fn take_pending(&mut self, id: u16) -> Option<Pending<P>> {
        let p = self.pending.remove(&id)?;
        self.deadlines.remove(&(p.deadline, id));
        Some(p)
    }

    fn allocate(&mut self) -> u16 {
        loop {
            let id = self.next_invoke;
            self.next_invoke = if id >= 9998 { 1 } else { id + 1 };
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    fn send_request(&mut self, purpose: Purpose<P>, message: &Message, now: Instant) -> u16 {
        let id = self.allocate();
        let deadline = now + self.settings.request_timeout;
        self.pending.insert(id, Pending { purpose, deadline });
        self.deadlines.insert((deadline, id));
        self.write(id, message);
        id
    }

    fn write(&mut self, invoke: u16, message: &Message) {
        let xml = csta::encode_with(
            message,
            &Encoding {
                namespace: &self.namespace,
                device_id_first: false,
            },
        );
        tracing::debug!(target: "csta", "pbx -> [{invoke:04}] {xml}");
        let bytes = match self.decoder.encode(invoke, xml.as_bytes()) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "CSTA request too large for one frame");
                return;
            }
        };
        self.outputs.push_back(LinkOutput::Send(bytes));
    }

    /// Bytes arrived from the PBX.
    pub fn receive(&mut self, data: &[u8], now: Instant) {
        self.decoder.push(data);
        self.liveness.last_heard = now;
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => {
                    if let Some(why) = self.out_of_step(&frame) {
                        // Every later frame would be read at the wrong place: start afresh.
                        self.lose(&format!("framing error from the PBX: {why}"), now);
                        return;
                    }
                    if self.settings.keep_frames {
                        self.current_frame = Some(self.reframe(&frame));
                    }
                    self.frame(frame, now);
                    self.current_frame = None;
                }
                Ok(None) => break,
                Err(e) => {
                    self.lose(&format!("framing error from the PBX: {e}"), now);
                    return;
                }
            }
        }
        // A frame begun and not finished starts (or keeps) the stall clock.
        if self.decoder.buffered() == 0 {
            self.liveness.partial_since = None;
        } else {
            self.liveness.partial_since.get_or_insert(now);
        }
    }

    /// Why an Annex J frame shows the stream is out of step, if it does: a header whose first
    /// two bytes are not zero, or an invoke ID that is not four digits, is what a wrong length
    /// field earlier leaves. (NUL framing has neither.) Matching such a frame to the oldest
    /// request would hand one client another's answer.
    fn out_of_step(&self, frame: &Frame) -> Option<String> {
        if self.settings.framing != PbxFraming::AnnexJ {
            return None;
        }
        if let Some(v) = frame.odd_version {
            return Some(format!("header bytes {:02x} {:02x}, not 00 00", v[0], v[1]));
        }
        match &frame.invoke_id {
            Some(InvokeId::Invalid(raw)) => Some(format!(
                "invoke ID {:?} is not four digits",
                String::from_utf8_lossy(raw)
            )),
            _ => None,
        }
    }

    /// A received frame as it was on the wire (the Annex J header rebuilt from its fields).
    fn reframe(&self, frame: &Frame) -> Vec<u8> {
        let invoke = match frame.invoke_id {
            Some(InvokeId::Id(n)) => n,
            _ => 0,
        };
        self.decoder.encode(invoke, &frame.xml).unwrap_or_default()
    }

    fn frame(&mut self, frame: Frame, now: Instant) {
        let invoke = match frame.invoke_id {
            Some(InvokeId::Id(n)) => Some(n),
            _ => None,
        };
        tracing::debug!(target: "csta", "pbx <- [{}] {}", invoke.map_or("----".into(), |i| format!("{i:04}")), String::from_utf8_lossy(&frame.xml));
        let decoded = match csta::decode(&frame.xml) {
            Ok(d) => d,
            Err(e) => {
                self.dropped_frames += 1;
                tracing::warn!(error = %e, invoke = ?invoke, "undecodable frame from the PBX");
                // A reply we cannot read still completes its request, as an error.
                if let Some(id) = invoke.filter(|i| *i != EVENT_INVOKE_ID) {
                    self.complete(id, Err(Failure::Csta(CstaError::operation("generic"))), now);
                }
                return;
            }
        };
        let Decoded { message, namespace } = decoded;
        match message {
            Message::Event(e) => self.push_event(LinkEvent::Event(e)),
            Message::Request(Request::SystemStatus { status, .. }) => {
                let answer = Message::Response(Response::Empty(Service::SystemStatus));
                self.answer_pbx(invoke, &answer, namespace.as_deref());
                self.set_status(&status);
            }
            // The switch ended a monitor: acknowledged, and the engine restarts or forgets it.
            Message::Request(Request::MonitorStop { cross_ref }) => {
                let answer = Message::Response(Response::Empty(Service::MonitorStop));
                self.answer_pbx(invoke, &answer, namespace.as_deref());
                self.push_event(LinkEvent::MonitorEnded { cross_ref });
            }
            // Anything else the PBX asks of the gateway gets a negative answer, never silence.
            Message::Request(other) => {
                self.dropped_frames += 1;
                tracing::warn!(service = ?other.service(), "request from the PBX refused");
                let answer = Message::Error(CstaError::operation("generic"));
                self.answer_pbx(invoke, &answer, namespace.as_deref());
            }
            Message::Response(r) => match invoke {
                Some(id) => self.complete(id, Ok(r), now),
                None => self.complete_oldest(Ok(r), now),
            },
            Message::Error(e) => match invoke {
                Some(id) => self.complete(id, Err(Failure::Csta(e)), now),
                None => self.complete_oldest(Err(Failure::Csta(e)), now),
            },
            Message::Session(s) => self.session_message(invoke, s, now),
        }
    }

    /// Answers a request of the PBX in its own namespace, under its invoke ID.
    fn answer_pbx(&mut self, invoke: Option<u16>, answer: &Message, namespace: Option<&str>) {
        let xml = csta::encode(answer, namespace.unwrap_or_default());
        if let Ok(b) = self.decoder.encode(invoke.unwrap_or(0), xml.as_bytes()) {
            self.outputs.push_back(LinkOutput::Send(b));
        }
    }

    fn set_status(&mut self, status: &SystemStatusValue) {
        let normal = matches!(
            status,
            SystemStatusValue::Normal
                | SystemStatusValue::Enabled
                | SystemStatusValue::OverloadRelieved
                | SystemStatusValue::OverloadImminent
        );
        if normal != self.normal {
            self.normal = normal;
            self.push_event(LinkEvent::Status { normal });
        }
    }

    fn session_message(&mut self, invoke: Option<u16>, s: Session, now: Instant) {
        match s {
            Session::Terminated { reason, .. } => {
                self.lose(
                    &format!("the PBX terminated the session ({})", reason.as_str()),
                    now,
                );
            }
            Session::StartPos {
                session_id,
                protocol_version,
                duration,
            } => {
                if let Some(id) = invoke {
                    self.take_pending(id);
                }
                let d = duration
                    .map(|d| Duration::from_secs(d.into()))
                    .unwrap_or(self.settings.session_duration);
                if let Some(v) = protocol_version.filter(|v| v.contains("ecma-323")) {
                    self.namespace = v;
                }
                self.session = Some((session_id, d));
                self.reset_at = Some(now + reset_after(d));
                self.register(now);
            }
            Session::StartNeg { error } => {
                if let Some(id) = invoke {
                    self.take_pending(id);
                }
                self.lose(
                    &format!("the PBX refused the session: {}", error.as_str()),
                    now,
                );
            }
            Session::ResetPos { duration } => {
                if let Some(id) = invoke {
                    self.take_pending(id);
                }
                if let (Some(d), Some(s)) = (duration, self.session.as_mut()) {
                    s.1 = Duration::from_secs(d.into());
                }
                if let Some((_, d)) = &self.session {
                    self.reset_at = Some(now + reset_after(*d));
                }
            }
            Session::ResetNeg { error } => {
                self.lose(
                    &format!("the PBX refused the session reset: {}", error.as_str()),
                    now,
                );
            }
            Session::StopPos | Session::StopNeg { .. } => {
                if let Some(id) = invoke {
                    self.take_pending(id);
                }
            }
            _ => self.dropped_frames += 1,
        }
    }

    fn complete(&mut self, id: u16, result: Result<Response, Failure>, now: Instant) {
        let Some(p) = self.take_pending(id) else {
            self.dropped_frames += 1;
            tracing::debug!(invoke = id, "answer for no pending request");
            return;
        };
        self.liveness.timeouts_in_a_row = 0;
        match p.purpose {
            Purpose::Engine(purpose) => self.push_event(LinkEvent::Completed { purpose, result }),
            Purpose::KeepAlive => {
                self.liveness.probing = false;
                if let Ok(Response::RequestSystemStatus { status }) = &result {
                    self.set_status(status);
                }
            }
            Purpose::Register => self.become_up(now),
            Purpose::Start | Purpose::Reset => {
                if let Err(f) = result {
                    self.lose(&format!("session request failed: {f:?}"), now);
                }
            }
            Purpose::Stop => {}
        }
    }

    /// NUL framing has no invoke IDs: answers come in request order.
    fn complete_oldest(&mut self, result: Result<Response, Failure>, now: Instant) {
        if let Some(id) = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.deadline)
            .map(|(id, _)| *id)
        {
            self.complete(id, result, now);
        }
    }

    /// Ends the session politely (graceful shutdown).
    pub fn stop(&mut self, now: Instant) {
        if let Some((id, _)) = self.session.clone() {
            let stop = Message::Session(Session::Stop {
                session_id: id,
                reason: Reason::Defined("normal".to_owned()),
            });
            self.send_request(Purpose::Stop, &stop, now);
        }
    }
}

fn new_decoder(framing: PbxFraming) -> CstaFrameDecoder {
    CstaFrameDecoder::new(framing.into(), framing::MAX_FRAME)
}

/// When to reset a session timer: comfortably before half its duration (pbx-csta.md §6.3 asks
/// for at most half; arriving exactly at half would be late after any delay).
fn reset_after(duration: Duration) -> Duration {
    duration * 2 / 5
}

#[cfg(test)]
mod tests;
