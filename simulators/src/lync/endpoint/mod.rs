//! One Lync client endpoint's RCC dialog, sans-IO: sign-in (INVITE with RequestSystemStatus and
//! `lcs:line`, ACK, GetCSTAFeatures, MonitorStart), user actions as CSTA requests in INFO,
//! validation of every event, refresh per client profile, sign-out, and re-establishment after
//! 481, 408 or a gateway BYE. Messages go to and come from the Front End.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rcc_protocol::csta::{
    self, CallEventKind, ConnectionId, Event, LocalConnectionState, Request, Response,
};
use rcc_protocol::sip::{Dialog, Message, Method};
use serde::Serialize;

use super::profile::{ClientProfile, Refresh};

const CSTA: &str = "application/csta+xml";
const DISPOSITION: &str = "signal;handling=required";
/// Timer F: a request without an answer for this long counts as 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(32);

/// Identifies a user action, for collecting its outcome.
pub type ActionId = u64;

/// How an action ended: the CSTA answer (a response or CSTAErrorCode), or a SIP failure.
pub type ActionResult = Result<csta::Message, String>;

/// An endpoint's configuration.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// SIP URI of the user (`sip:alice@contoso.com`).
    pub user: String,
    /// Endpoint ID (`epid`), distinct per endpoint of a user.
    pub epid: String,
    /// The LineURI, sent verbatim.
    pub line: String,
    /// The LineServerURI (the gateway's SIP URI).
    pub line_server: String,
    /// Client profile.
    pub profile: ClientProfile,
    /// Refresh interval instead of the profile's.
    pub refresh: Option<Duration>,
    /// Sign in again after 481, 408 or a gateway BYE.
    pub reestablish: bool,
    /// Delay before re-establishing.
    pub reestablish_delay: Duration,
    /// The client's own transport address as it appears in Via.
    pub address: String,
}

/// Where the endpoint is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "phase", content = "detail")]
pub enum Phase {
    /// Not signed in.
    Idle,
    /// INVITE sent.
    Inviting,
    /// Dialog up, GetCSTAFeatures / MonitorStart in progress.
    Bootstrapping,
    /// Monitoring the line.
    Ready,
    /// The gateway answered with a non-normal systemStatus: the client waits.
    Degraded(String),
    /// Signed out.
    SignedOut,
    /// Sign-in failed (the final status).
    Failed(String),
}

/// An event as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// Arrival order (per endpoint).
    pub seq: u64,
    /// The event.
    pub event: Event,
}

#[derive(Debug, Clone)]
enum What {
    Invite { refresh: bool },
    Update,
    Features,
    MonitorStart,
    MonitorStop,
    Action(ActionId),
    Bye,
}

#[derive(Debug)]
struct Pending {
    what: What,
    deadline: Instant,
    request: Message,
    /// A MakeCall (its answer, even an error, settles `makecall_pending`).
    makecall: bool,
}

/// What the endpoint knows of a call at its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallInfo {
    /// The line's connection state as the latest event reported.
    pub state: String,
    /// Kinds of events received for the call, in order.
    pub events: Vec<String>,
}

/// The endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// Configuration.
    pub config: EndpointConfig,
    phase: Phase,
    dialog: Option<Dialog>,
    call_id: String,
    tag: String,
    pending: HashMap<(u32, String), Pending>,
    xref: Option<String>,
    features: Vec<String>,
    update_allowed: bool,
    session_expires: Option<u32>,
    refresh_at: Option<Instant>,
    reestablish_at: Option<Instant>,
    bootstrapped: bool,
    events: Vec<Seen>,
    event_seq: u64,
    calls: BTreeMap<String, CallInfo>,
    known_calls: std::collections::HashSet<String>,
    /// Each live connection's latest event (kind, local state, cause), to catch repeats.
    last_events: HashMap<(String, String), (CallEventKind, String, String)>,
    makecall_pending: usize,
    violations: Vec<String>,
    results: HashMap<ActionId, ActionResult>,
    /// The gateway's last CSeq in a dialog (Call-ID, number): its requests must not go back.
    gateway_cseq: Option<(String, u32)>,
    /// Actions whose result arrived since [`Endpoint::take_done`], when `report_done` is set.
    done: Vec<ActionId>,
    /// Keep `done` (a load generator collects results as they come instead of polling).
    pub report_done: bool,
    outputs: VecDeque<Message>,
    counter: u64,
    sign_ins: u32,
    refreshes: u32,
    /// The hash of user, epid and a per-process random key: it makes tags and branches unique
    /// across endpoints and runs.
    unique_key: u64,
    signin_started: Option<Instant>,
    /// Measurements for load runs, drained by [`Endpoint::drain_timings`].
    timings: Timings,
    /// Keep every event (tests); load runs only count them.
    pub keep_events: bool,
    events_received: u64,
}

/// Response times an endpoint measured (microseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    /// Client CSTA requests: INFO sent → 200 OK received.
    pub requests: Vec<u32>,
    /// Sign-ins: INVITE sent → MonitorStartResponse received.
    pub sign_ins: Vec<u32>,
    /// Requests that ended without a CSTA answer (SIP error or timeout).
    pub failures: u32,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Endpoint {
    /// An idle endpoint.
    pub fn new(config: EndpointConfig) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let nonce = crate::nonce();
        let mut h = random_state().build_hasher();
        h.write(config.user.as_bytes());
        h.write(config.epid.as_bytes());
        h.write_u64(nonce);
        let unique_key = h.finish();
        Endpoint {
            config,
            phase: Phase::Idle,
            dialog: None,
            call_id: String::new(),
            tag: String::new(),
            pending: HashMap::new(),
            xref: None,
            features: Vec::new(),
            update_allowed: false,
            session_expires: None,
            refresh_at: None,
            reestablish_at: None,
            bootstrapped: false,
            events: Vec::new(),
            event_seq: 0,
            calls: BTreeMap::new(),
            known_calls: std::collections::HashSet::new(),
            last_events: HashMap::new(),
            makecall_pending: 0,
            violations: Vec::new(),
            results: HashMap::new(),
            gateway_cseq: None,
            done: Vec::new(),
            report_done: false,
            outputs: VecDeque::new(),
            counter: 0,
            sign_ins: 0,
            refreshes: 0,
            unique_key,
            signin_started: None,
            timings: Timings::default(),
            keep_events: true,
            events_received: 0,
        }
    }

    fn unique(&mut self, prefix: &str) -> String {
        use std::fmt::Write;
        self.counter += 1;
        let mut out = String::with_capacity(prefix.len() + 24);
        out.push_str(prefix);
        let _ = write!(out, "{:016x}{:x}", self.unique_key, self.counter);
        out
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The monitorCrossRefID from MonitorStartResponse.
    pub fn xref(&self) -> Option<&str> {
        self.xref.as_deref()
    }

    /// Capabilities the gateway advertised.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// Events received so far.
    pub fn events(&self) -> &[Seen] {
        &self.events
    }

    /// Calls at the line, by callID.
    pub fn calls(&self) -> &BTreeMap<String, CallInfo> {
        &self.calls
    }

    fn violation(&mut self, what: String) {
        // Bounded: a gateway that breaks a rule on every event must not exhaust memory.
        if self.violations.len() < 1000 {
            self.violations.push(what);
        }
    }

    /// Events received in all (kept or not).
    pub fn events_received(&self) -> u64 {
        self.events_received
    }

    /// Rules the gateway broke, in order.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Times the endpoint signed in (re-establishments included).
    pub fn sign_ins(&self) -> u32 {
        self.sign_ins
    }

    /// Refreshes answered with 2xx.
    pub fn refreshes(&self) -> u32 {
        self.refreshes
    }

    /// The dialog's Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Takes the outcome of an action, once it is known.
    pub fn take_result(&mut self, id: ActionId) -> Option<ActionResult> {
        self.results.remove(&id)
    }

    /// Actions whose result arrived since the last call (with `report_done` set).
    pub fn take_done(&mut self) -> Vec<ActionId> {
        std::mem::take(&mut self.done)
    }

    /// Whether results arrived since [`Endpoint::take_done`].
    pub fn has_done(&self) -> bool {
        !self.done.is_empty()
    }

    fn finish(&mut self, id: ActionId, result: ActionResult) {
        self.results.insert(id, result);
        if self.report_done {
            self.done.push(id);
        }
    }

    /// The next message for the Front End.
    pub fn poll_output(&mut self) -> Option<Message> {
        self.outputs.pop_front()
    }

    fn via(&mut self) -> String {
        if self.config.profile.via_branch() {
            let b = self.unique("z9hG4bK");
            format!("SIP/2.0/TLS {};branch={b}", self.config.address)
        } else {
            format!("SIP/2.0/TLS {}", self.config.address)
        }
    }

    fn contact(&self) -> String {
        let user = self.config.user.trim_start_matches("sip:");
        if self.config.profile == ClientProfile::Sipe {
            format!(
                "<sip:{user}:5061;maddr={};transport=tls>;proxy=replace",
                self.config.address.split(':').next().unwrap_or("127.0.0.1")
            )
        } else {
            format!("<sip:{user};opaque=user:epid:{};gruu>", self.config.epid)
        }
    }

    fn rss_body(&self) -> Vec<u8> {
        csta::encode(
            &csta::Message::Request(Request::RequestSystemStatus {
                line: Some(self.config.line.clone()),
            }),
            csta::ED3,
        )
        .into_bytes()
    }

    /// Takes the measurements gathered since the last call.
    pub fn drain_timings(&mut self) -> Timings {
        std::mem::take(&mut self.timings)
    }

    /// Sends the initial INVITE.
    pub fn sign_in(&mut self, now: Instant) {
        self.signin_started = Some(now);
        self.call_id = self.unique("");
        self.tag = self.unique("");
        self.dialog = None;
        self.xref = None;
        self.bootstrapped = false;
        self.phase = Phase::Inviting;
        let via = self.via();
        let mut m = Message::request(Method::Invite, self.config.line_server.clone());
        m.push_header("Via", via);
        m.push_header("Max-Forwards", "70");
        m.push_header(
            "From",
            format!(
                "<{}>;tag={};epid={}",
                self.config.user, self.tag, self.config.epid
            ),
        );
        m.push_header("To", format!("<{}>", self.config.line_server));
        m.push_header("Call-ID", self.call_id.clone());
        m.push_header("CSeq", "1 INVITE");
        m.push_header("Contact", self.contact());
        m.push_header("User-Agent", self.config.profile.user_agent());
        if self.config.profile.supports_timer() {
            m.push_header("Supported", "timer");
        }
        let m = m.with_body(CSTA, Some(DISPOSITION), self.rss_body());
        self.send(m, What::Invite { refresh: false }, now);
    }

    fn send(&mut self, m: Message, what: What, now: Instant) {
        self.send_marked(m, what, false, now);
    }

    fn send_marked(&mut self, m: Message, what: What, makecall: bool, now: Instant) {
        if let (Ok(cseq), Some(method)) = (m.cseq(), m.method())
            && method != &Method::Ack
        {
            self.pending.insert(
                (cseq.seq, method.as_str().to_owned()),
                Pending {
                    what,
                    deadline: now + REQUEST_TIMEOUT,
                    request: m.clone(),
                    makecall,
                },
            );
        }
        self.outputs.push_back(m);
    }

    fn in_dialog(&mut self, method: Method) -> Option<Message> {
        let via = self.via();
        let d = self.dialog.as_mut()?;
        let mut m = d.request(method, &via);
        m.push_header("User-Agent", self.config.profile.user_agent());
        Some(m)
    }

    /// Sends a CSTA request in an INFO; its outcome is collected with [`Endpoint::take_result`].
    pub fn request(&mut self, request: Request, now: Instant) -> Option<ActionId> {
        self.counter += 1;
        let id = self.counter;
        // Lync and Communicator show (and send) only what the gateway advertised.
        if let Some(name) = feature_name(&request) {
            let gated = self.config.profile != ClientProfile::Sipe && self.bootstrapped;
            if gated && !self.features.iter().any(|f| f == name) {
                self.finish(id, Err(format!("not offered by the gateway: {name}")));
                return Some(id);
            }
        }
        let is_makecall = matches!(request, Request::MakeCall { .. });
        let body = csta::encode(&csta::Message::Request(request), csta::ED3).into_bytes();
        let Some(m) = self.in_dialog(Method::Info) else {
            self.finish(id, Err("not signed in (no dialog)".to_owned()));
            return Some(id);
        };
        let m = m.with_body(CSTA, Some(DISPOSITION), body);
        if is_makecall {
            self.makecall_pending += 1;
        }
        self.send_marked(m, What::Action(id), is_makecall, now);
        Some(id)
    }

    /// Sends an INFO with any body (to exercise a gateway's input checks); the outcome is a
    /// SIP status for anything but 200.
    pub fn raw_info(&mut self, content_type: &str, body: Vec<u8>, now: Instant) -> ActionId {
        self.counter += 1;
        let id = self.counter;
        match self.in_dialog(Method::Info) {
            Some(m) => {
                let m = m.with_body(content_type, Some(DISPOSITION), body);
                self.send(m, What::Action(id), now);
            }
            None => {
                self.finish(id, Err("not signed in (no dialog)".to_owned()));
            }
        }
        id
    }

    fn info(&mut self, request: Request, what: What, now: Instant) {
        let body = csta::encode(&csta::Message::Request(request), csta::ED3).into_bytes();
        if let Some(m) = self.in_dialog(Method::Info) {
            let m = m.with_body(CSTA, Some(DISPOSITION), body);
            self.send(m, what, now);
        }
    }

    /// Signs out: MonitorStop (without waiting for its answer, as clients do), then BYE.
    pub fn sign_out(&mut self, now: Instant) {
        self.config.reestablish = false;
        if let Some(x) = self.xref.take() {
            self.info(
                Request::MonitorStop { cross_ref: x },
                What::MonitorStop,
                now,
            );
        }
        if let Some(m) = self.in_dialog(Method::Bye) {
            self.send(m, What::Bye, now);
        }
        self.phase = Phase::SignedOut;
        self.refresh_at = None;
    }

    /// Sends the profile's refresh now.
    pub fn refresh(&mut self, now: Instant) {
        let how = self.config.profile.refresh(self.update_allowed);
        match how {
            Refresh::Update => {
                if let Some(mut m) = self.in_dialog(Method::Update) {
                    if let Some(se) = self.session_expires {
                        m.push_header("Session-Expires", format!("{se};refresher=uac"));
                        m.push_header("Supported", "timer");
                    }
                    self.send(m, What::Update, now);
                }
            }
            Refresh::ReInvite => {
                let body = self.rss_body();
                let contact = self.contact();
                if let Some(mut m) = self.in_dialog(Method::Invite) {
                    m.set_header("Contact", contact);
                    m.push_header("Supported", "timer");
                    if let Some(se) = self.session_expires {
                        m.push_header("Session-Expires", format!("{se};refresher=uac"));
                    }
                    let m = m.with_body(CSTA, Some(DISPOSITION), body);
                    self.send(m, What::Invite { refresh: true }, now);
                }
            }
        }
    }

    /// When [`Endpoint::handle_timeout`] must run next.
    pub fn next_timeout(&self) -> Option<Instant> {
        let pending = self.pending.values().map(|p| p.deadline).min();
        [self.refresh_at, self.reestablish_at, pending]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            self.refresh(now);
        }
        if self.reestablish_at.is_some_and(|t| t <= now) {
            self.reestablish_at = None;
            self.sign_in(now);
        }
        let expired: Vec<(u32, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            if let Some(p) = self.pending.remove(&k) {
                if matches!(p.what, What::Action(_)) {
                    self.timings.failures += 1;
                }
                self.failed(p.what, 408, now);
            }
        }
    }

    fn schedule_refresh(&mut self, now: Instant) {
        let interval = self
            .config
            .refresh
            .or_else(|| self.config.profile.refresh_interval(self.session_expires));
        self.refresh_at = interval.map(|i| now + i);
    }

    fn lost(&mut self, why: &str, now: Instant) {
        self.dialog = None;
        self.xref = None;
        self.refresh_at = None;
        let pending: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        for p in pending {
            if let What::Action(id) = p.what {
                self.finish(id, Err(format!("dialog lost: {why}")));
            }
        }
        self.makecall_pending = 0;
        if self.config.reestablish {
            self.phase = Phase::Idle;
            self.reestablish_at = Some(now + self.config.reestablish_delay);
        } else {
            self.phase = Phase::Failed(why.to_owned());
        }
    }

    fn failed(&mut self, what: What, code: u16, now: Instant) {
        match what {
            What::Action(id) => {
                if self.makecall_pending > 0 {
                    self.makecall_pending -= 1;
                }
                self.finish(id, Err(format!("SIP {code}")));
                if code == 481 || code == 408 {
                    self.lost(&format!("INFO answered {code}"), now);
                }
            }
            What::Invite { refresh: false } => {
                self.dialog = None;
                if self.config.reestablish && matches!(code, 408 | 480 | 481 | 500 | 503) {
                    self.phase = Phase::Idle;
                    self.reestablish_at = Some(now + self.config.reestablish_delay);
                } else {
                    self.phase = Phase::Failed(format!("INVITE answered {code}"));
                }
            }
            What::Invite { refresh: true } | What::Update | What::Features | What::MonitorStart => {
                if matches!(code, 481 | 408) {
                    self.lost(&format!("in-dialog request answered {code}"), now);
                } else if !matches!(what, What::Invite { .. } | What::Update) {
                    self.violation(format!("bootstrap request answered {code}"));
                }
            }
            What::MonitorStop | What::Bye => {}
        }
    }

    /// A message from the Front End.
    pub fn receive(&mut self, m: Message, now: Instant) {
        if m.is_request() {
            self.incoming_request(m, now);
        } else {
            self.response(m, now);
        }
    }

    fn response(&mut self, m: Message, now: Instant) {
        let (Some(code), Ok(cseq)) = (m.status(), m.cseq()) else {
            return;
        };
        if code < 200 {
            return;
        }
        let key = (cseq.seq, cseq.method.as_str().to_owned());
        let Some(p) = self.pending.remove(&key) else {
            return;
        };
        if cseq.method == Method::Invite {
            self.ack(&p.request, &m);
        }
        if let What::Action(_) = p.what {
            if code >= 300 {
                self.timings.failures += 1;
            } else {
                let sent = p.deadline.checked_sub(REQUEST_TIMEOUT).unwrap_or(now);
                self.timings
                    .requests
                    .push(micros(now.saturating_duration_since(sent)));
            }
        }
        if code >= 300 {
            self.failed(p.what, code, now);
            return;
        }
        match p.what {
            What::Invite { refresh } => self.invite_ok(&m, refresh, now),
            What::Update => {
                self.refreshes += 1;
                self.note_timer(&m);
                self.schedule_refresh(now);
            }
            What::Features => {
                if let Some(csta::Message::Response(Response::GetCstaFeatures {
                    services, ..
                })) = decode_body(&m)
                {
                    self.features = services.into_iter().map(|f| f.name).collect();
                } else {
                    self.violation(
                        "GetCSTAFeatures answered without GetCSTAFeaturesResponse".into(),
                    );
                }
                let line = self.config.line.clone();
                self.info(
                    Request::MonitorStart {
                        object: csta::MonitorObject::Device(line),
                        monitor_type: None,
                    },
                    What::MonitorStart,
                    now,
                );
            }
            What::MonitorStart => match decode_body(&m) {
                Some(csta::Message::Response(Response::MonitorStart { cross_ref, .. })) => {
                    self.xref = Some(cross_ref);
                    self.phase = Phase::Ready;
                    if let Some(t) = self.signin_started.take() {
                        self.timings
                            .sign_ins
                            .push(micros(now.saturating_duration_since(t)));
                    }
                }
                other => {
                    self.phase = Phase::Failed(format!("MonitorStart refused: {other:?}"));
                }
            },
            What::Action(id) => {
                let body = decode_body(&m);
                if let Some(csta::Message::Response(Response::MakeCall { calling })) = &body {
                    self.makecall_pending = self.makecall_pending.saturating_sub(1);
                    self.check_own(calling, "MakeCallResponse");
                    if let Some(c) = &calling.call_id {
                        self.known_calls.insert(c.clone());
                    }
                } else if self.makecall_pending > 0 && p.makecall {
                    self.makecall_pending -= 1;
                }
                let result = body.ok_or_else(|| "200 OK without a CSTA body".to_owned());
                self.finish(id, result);
            }
            What::MonitorStop | What::Bye => {}
        }
    }

    fn check_own(&mut self, c: &ConnectionId, what: &str) {
        if let Some(d) = c.device_id.as_deref()
            && d != self.config.line
            && same_number(d, &self.config.line)
        {
            self.violation(format!(
                "{what}: the line came back as {d:?}, not verbatim {:?}",
                self.config.line
            ));
        }
    }

    fn note_timer(&mut self, m: &Message) {
        if let Ok(Some(se)) = m.session_expires() {
            self.session_expires = Some(se.delta);
        }
    }

    fn ack(&mut self, invite: &Message, resp: &Message) {
        let Ok(cseq) = invite.cseq() else {
            return;
        };
        let via = self.via();
        let ack = if let (Some(d), true) = (&self.dialog, resp.status().is_some_and(|c| c < 300)) {
            let seq = if self.config.profile.resets_cseq() {
                1
            } else {
                cseq.seq
            };
            d.request_with_cseq(Method::Ack, &via, seq)
        } else if resp.status().is_some_and(|c| c < 300) {
            match Dialog::as_uac(invite, resp, &self.contact()) {
                Ok(d) => {
                    let seq = if self.config.profile.resets_cseq() {
                        1
                    } else {
                        cseq.seq
                    };
                    let a = d.request_with_cseq(Method::Ack, &via, seq);
                    self.dialog = Some(d);
                    a
                }
                Err(e) => {
                    self.violation(format!("2xx to INVITE unusable: {e}"));
                    return;
                }
            }
        } else {
            // A non-2xx ACK is part of the INVITE transaction (same branch, same To).
            let mut a = Message::request(Method::Ack, invite.request_uri().unwrap_or_default());
            if let Some(v) = invite.header("Via") {
                a.push_header("Via", v);
            }
            a.push_header("Max-Forwards", "70");
            for h in ["From", "Call-ID"] {
                if let Some(v) = invite.header(h) {
                    a.push_header(h, v);
                }
            }
            if let Some(v) = resp.header("To") {
                a.push_header("To", v);
            }
            a.push_header("CSeq", format!("{} ACK", cseq.seq));
            a
        };
        if self.config.profile.resets_cseq()
            && let Some(d) = self.dialog.as_mut()
        {
            d.local_cseq = 1;
        }
        self.outputs.push_back(ack);
    }

    fn invite_ok(&mut self, resp: &Message, refresh: bool, now: Instant) {
        if let Ok(allow) = resp.allow() {
            self.update_allowed = allow.iter().any(|a| a.eq_ignore_ascii_case("UPDATE"));
        }
        self.note_timer(resp);
        if let Ok(contacts) = resp.contacts()
            && let (Some(c), Some(d)) = (contacts.into_iter().next(), self.dialog.as_mut())
        {
            d.remote_target = c.uri_raw;
        }
        let status = match decode_body(resp) {
            Some(csta::Message::Response(Response::RequestSystemStatus { status })) => status,
            other => {
                self.violation(format!(
                    "2xx to INVITE without RequestSystemStatusResponse: {other:?}"
                ));
                csta::SystemStatusValue::Other("missing".into())
            }
        };
        if refresh {
            self.refreshes += 1;
            self.schedule_refresh(now);
            return;
        }
        self.sign_ins += 1;
        self.schedule_refresh(now);
        if status != csta::SystemStatusValue::Normal {
            self.phase = Phase::Degraded(status.as_str().to_owned());
            return;
        }
        self.phase = Phase::Bootstrapping;
        if !self.bootstrapped {
            self.bootstrapped = true;
            let line = self.config.line.clone();
            self.info(
                Request::GetCstaFeatures { line: Some(line) },
                What::Features,
                now,
            );
        }
    }

    fn incoming_request(&mut self, m: Message, now: Instant) {
        let Some(method) = m.method().cloned() else {
            return;
        };
        let tag = self.tag.clone();
        self.check_order(&m);
        match method {
            Method::Info => {
                let body = decode_body(&m);
                match body {
                    Some(csta::Message::Event(e)) => self.event(e),
                    other => {
                        self.violation(format!("INFO from the gateway without an event: {other:?}"))
                    }
                }
                if self.config.profile.answers_events() {
                    self.outputs
                        .push_back(Message::response_to(&m, 200, "OK", &tag));
                }
            }
            Method::Bye => {
                self.outputs
                    .push_back(Message::response_to(&m, 200, "OK", &tag));
                self.lost("the gateway sent BYE", now);
            }
            Method::Options => {
                self.outputs
                    .push_back(Message::response_to(&m, 200, "OK", &tag));
            }
            Method::Ack => {}
            _ => {
                self.outputs
                    .push_back(Message::response_to(&m, 501, "Not Implemented", &tag));
            }
        }
    }

    /// The gateway's requests in a dialog come with increasing CSeq (RFC 3261 §12.2.1.1): one
    /// that goes back arrived out of order (an equal one is a retransmission).
    fn check_order(&mut self, m: &Message) {
        let (Ok(call_id), Ok(cseq)) = (m.call_id(), m.cseq()) else {
            return;
        };
        if let Some((last_call, last)) = &self.gateway_cseq
            && last_call == call_id
            && cseq.seq < *last
        {
            let why = format!(
                "{} with CSeq {} after CSeq {last}: out of order",
                cseq.method, cseq.seq
            );
            self.violation(why);
            return;
        }
        self.gateway_cseq = Some((call_id.to_owned(), cseq.seq));
    }

    /// The same event twice in a row for one connection tells the user nothing new, and Lync
    /// would show a second pop-up for it (rcc-sip.md §6.2, event storms).
    fn check_repeat(&mut self, c: &rcc_protocol::csta::CallEvent, call: &str, state: &str) {
        let Some(device) = c.connection.as_ref().and_then(|x| x.device_id.clone()) else {
            return;
        };
        let cause = c
            .cause
            .as_ref()
            .map(|x| x.as_str().to_owned())
            .unwrap_or_default();
        let key = (call.to_owned(), device);
        let now = (c.kind, state.to_owned(), cause);
        if self.last_events.get(&key) == Some(&now) {
            let why = format!(
                "{} for call {call} repeats connection {:?}'s previous event",
                c.kind.root_name(),
                key.1
            );
            self.violation(why);
        }
        if c.kind == CallEventKind::ConnectionCleared {
            self.last_events.remove(&key);
        } else {
            self.last_events.insert(key, now);
        }
    }

    /// Connections whose latest event is remembered (for tests of the memory bound).
    pub fn remembered_connections(&self) -> usize {
        self.last_events.len()
    }

    fn event(&mut self, e: Event) {
        self.event_seq += 1;
        match &self.xref {
            None => self.violation(format!("{} before MonitorStartResponse", e.root_name())),
            Some(x) if x != e.cross_ref() => self.violation(format!(
                "{} with monitorCrossRefID {:?}, expected {x:?}",
                e.root_name(),
                e.cross_ref()
            )),
            Some(_) => {}
        }
        if let Event::Call(c) = &e {
            let call = c
                .connection
                .as_ref()
                .and_then(|x| x.call_id.clone())
                .unwrap_or_default();
            let mine = c
                .connection
                .as_ref()
                .and_then(|x| x.device_id.as_deref())
                .is_some_and(|d| d == self.config.line);
            if self.makecall_pending > 0
                && mine
                && matches!(
                    c.kind,
                    CallEventKind::ServiceInitiated | CallEventKind::Originated
                )
                && !self.known_calls.contains(&call)
            {
                self.violation(format!(
                    "{} for call {call} before MakeCallResponse",
                    c.kind.root_name()
                ));
            }
            for d in c.connection.iter().filter_map(|x| x.device_id.as_deref()) {
                if d != self.config.line && same_number(d, &self.config.line) {
                    self.violation(format!(
                        "{}: the line came back as {d:?}, not verbatim {:?}",
                        c.kind.root_name(),
                        self.config.line
                    ));
                }
            }
            let state = c
                .local_state
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            self.check_repeat(c, &call, &state);
            let entry = self.calls.entry(call.clone()).or_insert_with(|| CallInfo {
                state: String::new(),
                events: Vec::new(),
            });
            entry.events.push(c.kind.root_name().to_owned());
            if !state.is_empty() {
                entry.state = state;
            }
            self.known_calls.insert(call.clone());
            // Transfers and conferences move the line into a new call.
            for item in &c.connections {
                if let Some(new) = &item.new_connection
                    && new.device_id.as_deref() == Some(self.config.line.as_str())
                    && let Some(id) = &new.call_id
                {
                    let st = c
                        .local_state
                        .clone()
                        .unwrap_or(LocalConnectionState::Connected);
                    if st != LocalConnectionState::Null {
                        self.calls.insert(
                            id.clone(),
                            CallInfo {
                                state: st.as_str().to_owned(),
                                events: vec![c.kind.root_name().to_owned()],
                            },
                        );
                        self.known_calls.insert(id.clone());
                    }
                }
            }
            if c.local_state == Some(LocalConnectionState::Null)
                || (c.kind == CallEventKind::CallCleared)
            {
                // Forgotten with the call, so a long load run's memory stays flat (the far
                // end's connection, too, which is not always reported cleared).
                self.calls.remove(&call);
                self.known_calls.remove(&call);
                self.last_events.retain(|(k, _), _| *k != call);
            }
        }
        self.events_received += 1;
        if self.keep_events {
            self.events.push(Seen {
                seq: self.event_seq,
                event: e,
            });
        }
    }
}

/// The GetCSTAFeaturesResponse capability a request needs.
fn feature_name(r: &Request) -> Option<&'static str> {
    Some(match r {
        Request::MakeCall { .. } => "makeCall",
        Request::AnswerCall { .. } => "answerCall",
        Request::ClearConnection { .. } => "clearConnection",
        Request::ClearCall { .. } => "clearCall",
        Request::HoldCall { .. } => "holdCall",
        Request::RetrieveCall { .. } => "retrieveCall",
        Request::AlternateCall { .. } => "alternateCall",
        Request::ReconnectCall { .. } => "reconnectCall",
        Request::ConsultationCall { .. } => "consultationCall",
        Request::TransferCall { .. } => "transferCall",
        Request::SingleStepTransferCall { .. } => "singleStepTransfer",
        Request::DeflectCall { .. } => "deflectCall",
        Request::ConferenceCall { .. } => "conferenceCall",
        Request::GenerateDigits { .. } => "generateDigits",
        Request::SetForwarding { .. } => "setForwarding",
        Request::GetForwarding { .. } => "getForwarding",
        Request::SetDoNotDisturb { .. } => "setDoNotDisturb",
        Request::SnapshotDevice { .. } => "snapshotDevice",
        _ => return None,
    })
}

fn random_state() -> &'static std::collections::hash_map::RandomState {
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    STATE.get_or_init(std::collections::hash_map::RandomState::new)
}

/// The distinctive part of a LineURI (its number), for spotting a rewritten echo.
fn line_key(line: &str) -> &str {
    let s = line.strip_prefix("tel:").unwrap_or(line);
    s.split(';').next().unwrap_or(s)
}

fn same_number(a: &str, b: &str) -> bool {
    line_key(a) == line_key(b)
}

fn decode_body(m: &Message) -> Option<csta::Message> {
    if m.body.is_empty() {
        return None;
    }
    csta::decode(&m.body).ok().map(|d| d.message)
}
