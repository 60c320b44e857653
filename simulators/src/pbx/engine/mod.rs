//! The CSTA server engine, sans-IO: client links (framing, ECMA-354 session, SystemStatus
//! heartbeat, invoke IDs), the switch behind them, the frame log and runtime faults. Bytes and
//! time go in; frames to write and links to close come out of [`Pbx::poll_output`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rcc_protocol::csta::{
    self, CstaError, DecodeError, Decoded, Encoding, ErrorCategory, Feature, Message, Reason,
    Request, Response, Service, Session, SystemStatusValue,
};
use rcc_protocol::framing::{self, CstaFrameDecoder, EVENT_INVOKE_ID, Frame, InvokeId};

use super::profile::{Framing, PbxConfig};
use super::switch::{Owner, Switch};

mod session;
mod view;

pub use view::{Direction, Faults, LinkView, LogEntry, Output};

/// Identifies one client link.
pub type LinkId = Owner;

#[derive(Debug, Clone)]
struct SessionState {
    id: String,
    duration: Duration,
    expires: Instant,
    started: Instant,
    last_reset: Instant,
}

struct Link {
    peer: String,
    decoder: CstaFrameDecoder,
    namespace: String,
    session: Option<SessionState>,
    next_invoke: u16,
    pending_status: Option<u16>,
    misses: u32,
    next_heartbeat: Option<Instant>,
    register_id: Option<String>,
    late_resets: u32,
    resets: u32,
    frames_in: u64,
    frames_out: u64,
}

const LOG_CAPACITY: usize = 20_000;

/// The simulated PBX, sans-IO.
pub struct Pbx {
    config: PbxConfig,
    switch: Switch,
    links: BTreeMap<LinkId, Link>,
    outputs: VecDeque<Output>,
    delayed: BTreeMap<(Instant, u64), (LinkId, Vec<u8>)>,
    log: VecDeque<LogEntry>,
    log_seq: u64,
    delay_seq: u64,
    next_session: u64,
    next_register: u64,
    status: SystemStatusValue,
    faults: Faults,
    /// The time of the latest input.
    now: Instant,
    /// Requests refused because no session was active, malformed frames, and the like.
    errors: HashMap<&'static str, u64>,
    /// The current one-second window of `requests_per_s` and the requests taken in it.
    window: (Instant, u32),
}

impl Pbx {
    /// A PBX with an empty switch.
    pub fn new(config: PbxConfig) -> Self {
        let switch = Switch::new(config.switch.clone());
        Pbx {
            config,
            switch,
            links: BTreeMap::new(),
            outputs: VecDeque::new(),
            delayed: BTreeMap::new(),
            log: VecDeque::new(),
            log_seq: 0,
            delay_seq: 0,
            next_session: 1,
            next_register: 1,
            status: SystemStatusValue::Normal,
            faults: Faults::default(),
            now: Instant::now(),
            errors: HashMap::new(),
            window: (Instant::now(), 0),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PbxConfig {
        &self.config
    }

    /// The switch, for inspection.
    pub fn switch(&self) -> &Switch {
        &self.switch
    }

    /// Runs an action on the switch (a desk-phone action, an incoming call, ...) and sends the
    /// events it causes.
    pub fn act<T>(&mut self, now: Instant, action: impl FnOnce(&mut Switch, Instant) -> T) -> T {
        self.now = now;
        let out = action(&mut self.switch, now);
        self.flush_events();
        out
    }

    /// The current faults.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Replaces the faults.
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// Counters of refused or malformed input, by kind.
    pub fn errors(&self) -> &HashMap<&'static str, u64> {
        &self.errors
    }

    fn count(&mut self, what: &'static str) {
        *self.errors.entry(what).or_default() += 1;
    }

    /// The frames logged after `since` (exclusive).
    pub fn log_since(&self, since: u64) -> Vec<LogEntry> {
        self.log.iter().filter(|e| e.seq > since).cloned().collect()
    }

    /// The links and their state.
    pub fn links(&self) -> Vec<LinkView> {
        self.links
            .iter()
            .map(|(id, l)| LinkView {
                link: *id,
                peer: l.peer.clone(),
                session_id: l.session.as_ref().map(|s| s.id.clone()),
                session_duration_s: l.session.as_ref().map(|s| s.duration.as_secs()),
                late_resets: l.late_resets,
                resets: l.resets,
                heartbeat_misses: l.misses,
                monitors: self.switch.monitors_of(*id),
                frames_in: l.frames_in,
                frames_out: l.frames_out,
            })
            .collect()
    }

    /// The next output for the shell.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// A client connected.
    pub fn accept(&mut self, link: LinkId, peer: &str, now: Instant) {
        self.now = now;
        let decoder = CstaFrameDecoder::new(self.config.framing.into(), self.config.max_frame);
        self.links.insert(
            link,
            Link {
                peer: peer.to_owned(),
                decoder,
                namespace: self.config.namespace.clone(),
                session: None,
                next_invoke: 1,
                pending_status: None,
                misses: 0,
                next_heartbeat: self.config.heartbeat.map(|h| now + h.interval),
                register_id: None,
                late_resets: 0,
                resets: 0,
                frames_in: 0,
                frames_out: 0,
            },
        );
        if self.config.status_on_connect {
            self.send_status(link);
        }
    }

    /// The shell lost the link: its monitors and session go.
    pub fn disconnected(&mut self, link: LinkId) {
        if self.links.remove(&link).is_some() {
            self.switch.remove_owner(link);
        }
    }

    fn close(&mut self, link: LinkId, abort: bool, reason: String) {
        if self.links.remove(&link).is_some() {
            self.switch.remove_owner(link);
            self.outputs.push_back(Output::Close {
                link,
                abort,
                reason,
            });
        }
    }

    /// Bytes arrived on a link.
    pub fn receive(&mut self, link: LinkId, data: &[u8], now: Instant) {
        self.now = now;
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        l.decoder.push(data);
        loop {
            let Some(l) = self.links.get_mut(&link) else {
                return;
            };
            match l.decoder.next_frame() {
                Ok(Some(frame)) => {
                    l.frames_in += 1;
                    self.frame(link, frame, now);
                }
                Ok(None) => return,
                Err(e) => {
                    self.count("framing");
                    self.close(link, false, format!("framing error from {link}: {e}"));
                    return;
                }
            }
        }
    }

    fn frame(&mut self, link: LinkId, frame: Frame, now: Instant) {
        let invoke = match frame.invoke_id {
            Some(InvokeId::Id(n)) => Some(n),
            Some(InvokeId::Invalid(_)) => {
                self.count("invalid invoke ID");
                None
            }
            None => None,
        };
        let decoded = csta::decode(&frame.xml);
        let root = match &decoded {
            Ok(d) => d.message.root_name().into_owned(),
            Err(_) => "?".to_owned(),
        };
        self.record(link, Direction::In, invoke, root, &frame.xml);
        match decoded {
            Ok(d) => self.message(link, invoke, d, now),
            Err(e) => self.malformed(link, invoke, &e),
        }
    }

    fn malformed(&mut self, link: LinkId, invoke: Option<u16>, error: &DecodeError) {
        self.count("malformed");
        let framed = self.config.framing == Framing::AnnexJ;
        match (invoke, framed) {
            (Some(id), true) if id != EVENT_INVOKE_ID => {
                let value = match error {
                    DecodeError::UnknownRoot(_) => "serviceNotSupported",
                    _ => "invalidParameterValue",
                };
                self.respond(link, Some(id), &Message::Error(CstaError::operation(value)));
            }
            (_, false) => {
                let value = match error {
                    DecodeError::UnknownRoot(_) => "serviceNotSupported",
                    _ => "invalidParameterValue",
                };
                self.respond(link, None, &Message::Error(CstaError::operation(value)));
            }
            _ => self.close(
                link,
                false,
                format!("undecodable frame from {link}: {error}"),
            ),
        }
    }

    fn message(&mut self, link: LinkId, invoke: Option<u16>, d: Decoded, now: Instant) {
        match d.message {
            Message::Session(s) => self.session(link, invoke, s, now),
            Message::Response(Response::Empty(Service::SystemStatus)) => {
                if self.faults.ignore_status_responses {
                    return;
                }
                if let Some(l) = self.links.get_mut(&link)
                    && (invoke.is_none() || l.pending_status == invoke)
                {
                    l.pending_status = None;
                    l.misses = 0;
                }
            }
            Message::Request(r) => self.request(link, invoke, r, now),
            Message::Response(_) | Message::Event(_) | Message::Error(_) => {
                self.count("unexpected message");
            }
        }
    }

    fn request(&mut self, link: LinkId, invoke: Option<u16>, request: Request, now: Instant) {
        let has_session = self.links.get(&link).is_some_and(|l| l.session.is_some());
        let link_level = matches!(
            request,
            Request::SystemStatus { .. } | Request::RequestSystemStatus { .. }
        );
        if self.config.session.required && !has_session && !link_level {
            self.count("request without session");
            let err = CstaError::new(ErrorCategory::Security, "generic");
            self.respond(link, invoke, &Message::Error(err));
            return;
        }
        if !link_level && self.over_rate(now) {
            self.count("request over the rate limit");
            let err = CstaError::resource("resourceBusy");
            self.respond(link, invoke, &Message::Error(err));
            return;
        }
        let outcome = match &request {
            Request::SystemStatus { .. } => Ok(Response::Empty(Service::SystemStatus)),
            Request::RequestSystemStatus { .. } => Ok(Response::RequestSystemStatus {
                status: self.status.clone(),
            }),
            Request::SystemRegister { .. } => {
                let id = format!("{}", 500_000 + self.next_register);
                self.next_register += 1;
                if let Some(l) = self.links.get_mut(&link) {
                    l.register_id = Some(id.clone());
                }
                Ok(Response::SystemRegister { register_id: id })
            }
            Request::SystemRegisterCancel { register_id } => {
                let ok = self
                    .links
                    .get(&link)
                    .is_some_and(|l| l.register_id.as_deref() == Some(register_id));
                if ok {
                    if let Some(l) = self.links.get_mut(&link) {
                        l.register_id = None;
                    }
                    Ok(Response::Empty(Service::SystemRegisterCancel))
                } else {
                    Err(CstaError::operation("sysStatRegIDNotSupported"))
                }
            }
            Request::GetCstaFeatures { .. } => Ok(self.features()),
            other => self.switch.request(link, other, now),
        };
        let message = match outcome {
            Ok(r) => Message::Response(r),
            Err(e) => Message::Error(e),
        };
        if self.faults.events_before_response {
            self.flush_events();
            self.respond(link, invoke, &message);
        } else {
            self.respond(link, invoke, &message);
            self.flush_events();
        }
    }

    /// Whether one more request would exceed `requests_per_s` in the current second.
    fn over_rate(&mut self, now: Instant) -> bool {
        let Some(limit) = self.config.requests_per_s else {
            return false;
        };
        let (start, taken) = &mut self.window;
        if now.saturating_duration_since(*start) >= std::time::Duration::from_secs(1) {
            *start = now;
            *taken = 0;
        }
        if *taken >= limit {
            return true;
        }
        *taken += 1;
        false
    }

    fn features(&self) -> Response {
        let services = [
            "makeCall",
            "answerCall",
            "clearConnection",
            "clearCall",
            "holdCall",
            "retrieveCall",
            "alternateCall",
            "reconnectCall",
            "consultationCall",
            "transferCall",
            "singleStepTransferCall",
            "deflectCall",
            "conferenceCall",
            "generateDigits",
            "setForwarding",
            "getForwarding",
            "setDoNotDisturb",
            "snapshotDevice",
            "monitorStart",
            "monitorStop",
        ];
        let events = [
            "serviceInitiated",
            "originated",
            "delivered",
            "established",
            "connectionCleared",
            "callCleared",
            "held",
            "retrieved",
            "diverted",
            "transferred",
            "conferenced",
            "failed",
            "digitsGenerated",
            "forwarding",
            "doNotDisturb",
        ];
        Response::GetCstaFeatures {
            services: services
                .iter()
                .map(|s| Feature::new("callControlServList", s))
                .collect(),
            events: events
                .iter()
                .map(|s| Feature::new("callControlEvtsList", s))
                .collect(),
        }
    }

    fn respond(&mut self, link: LinkId, invoke: Option<u16>, message: &Message) {
        if self.faults.drop_responses {
            let root = format!("{} (dropped)", message.root_name());
            let xml = self.encode(link, message);
            self.record(link, Direction::Out, invoke, root, xml.as_bytes());
            return;
        }
        let Some(bytes) = self.frame_bytes(link, invoke.unwrap_or(0), message) else {
            return;
        };
        match self.faults.response_delay_ms {
            Some(ms) if ms > 0 => {
                self.delay_seq += 1;
                let at = self.now + Duration::from_millis(ms);
                self.delayed.insert((at, self.delay_seq), (link, bytes));
            }
            _ => self.push_send(link, bytes),
        }
    }

    fn encode(&self, link: LinkId, message: &Message) -> String {
        let ns = self
            .links
            .get(&link)
            .map_or(self.config.namespace.as_str(), |l| l.namespace.as_str());
        csta::encode_with(
            message,
            &Encoding {
                namespace: ns,
                device_id_first: self.config.device_id_first,
            },
        )
    }

    /// Encodes, logs and frames a message for a link.
    fn frame_bytes(&mut self, link: LinkId, invoke: u16, message: &Message) -> Option<Vec<u8>> {
        if !self.links.contains_key(&link) {
            return None;
        }
        let xml = self.encode(link, message);
        let framing = self.config.framing.into();
        let framed = match framing::encode(framing, invoke, xml.as_bytes()) {
            Ok(b) => b,
            Err(_) => {
                // Too large for one Annex J frame: the client gets a resource error instead.
                self.count("frame too large");
                let err = Message::Error(CstaError::resource("resourceLimitExceeded"));
                let small = self.encode(link, &err);
                framing::encode(framing, invoke, small.as_bytes()).ok()?
            }
        };
        let id = (self.config.framing == Framing::AnnexJ).then_some(invoke);
        self.record(
            link,
            Direction::Out,
            id,
            message.root_name().into_owned(),
            xml.as_bytes(),
        );
        if let Some(l) = self.links.get_mut(&link) {
            l.frames_out += 1;
        }
        Some(framed)
    }

    fn push_send(&mut self, link: LinkId, bytes: Vec<u8>) {
        match self.faults.split_writes {
            Some(n) if n > 0 => {
                for chunk in bytes.chunks(n) {
                    self.outputs.push_back(Output::Send {
                        link,
                        bytes: chunk.to_vec(),
                    });
                }
            }
            _ => self.outputs.push_back(Output::Send { link, bytes }),
        }
    }

    fn record(
        &mut self,
        link: LinkId,
        direction: Direction,
        invoke_id: Option<u16>,
        root: String,
        xml: &[u8],
    ) {
        self.log_seq += 1;
        if !self.config.log_frames {
            return;
        }
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        let xml = String::from_utf8_lossy(xml).into_owned();
        let arrow = match direction {
            Direction::In => "<-",
            Direction::Out => "->",
        };
        let invoke = invoke_id.map_or_else(|| "----".to_owned(), |i| format!("{i:04}"));
        tracing::debug!(target: "csta", "link {link} {arrow} [{invoke}] {root} {xml}");
        self.log.push_back(LogEntry {
            seq: self.log_seq,
            at_us: crate::now_us(),
            link,
            direction,
            invoke_id,
            root,
            xml,
        });
    }

    /// Sends the switch's queued events to the links that own the monitors.
    fn flush_events(&mut self) {
        let notices: Vec<_> = self.switch.take_notices().collect();
        for n in notices {
            let twice =
                self.faults.repeat_events && matches!(n.event, rcc_protocol::csta::Event::Call(_));
            if let Some(bytes) =
                self.frame_bytes(n.owner, EVENT_INVOKE_ID, &Message::Event(n.event))
            {
                if twice {
                    self.push_send(n.owner, bytes.clone());
                }
                self.push_send(n.owner, bytes);
            }
        }
    }

    fn allocate_invoke(&mut self, link: LinkId) -> u16 {
        let Some(l) = self.links.get_mut(&link) else {
            return 1;
        };
        let id = l.next_invoke;
        l.next_invoke = if id >= 9998 { 1 } else { id + 1 };
        id
    }

    fn send_status(&mut self, link: LinkId) {
        let invoke = self.allocate_invoke(link);
        let register_id = self.links.get(&link).and_then(|l| l.register_id.clone());
        let message = Message::Request(Request::SystemStatus {
            register_id,
            status: self.status.clone(),
        });
        if let Some(bytes) = self.frame_bytes(link, invoke, &message) {
            if let Some(l) = self.links.get_mut(&link) {
                l.pending_status = Some(invoke);
            }
            self.push_send(link, bytes);
        }
    }

    /// Ends monitor `xref` on the switch's side and sends its link a MonitorStop request (the
    /// switch-initiated MonitorStop of ECMA-269); false when no such monitor exists.
    pub fn end_monitor(&mut self, xref: &str) -> bool {
        let Some(link) = self.switch.end_monitor(xref) else {
            return false;
        };
        let invoke = self.allocate_invoke(link);
        let message = Message::Request(Request::MonitorStop {
            cross_ref: xref.to_owned(),
        });
        if let Some(bytes) = self.frame_bytes(link, invoke, &message) {
            self.push_send(link, bytes);
        }
        self.count("monitors ended by the switch");
        true
    }

    /// Changes the reported system status and tells every link.
    pub fn set_system_status(&mut self, status: SystemStatusValue) {
        self.status = status;
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            self.send_status(link);
        }
    }

    /// Ends every link's session with ApplicationSessionTerminated, then closes the links.
    pub fn terminate_sessions(&mut self, reason: &str) {
        let links: Vec<(LinkId, String)> = self
            .links
            .iter()
            .filter_map(|(id, l)| l.session.as_ref().map(|s| (*id, s.id.clone())))
            .collect();
        for (link, session_id) in links {
            self.terminate(link, session_id, Reason::Text(reason.to_owned()));
        }
    }

    fn terminate(&mut self, link: LinkId, session_id: String, reason: Reason) {
        let message = Message::Session(Session::Terminated { session_id, reason });
        if let Some(bytes) = self.frame_bytes(link, 0, &message) {
            self.push_send(link, bytes);
        }
        self.close(link, false, format!("session of link {link} terminated"));
    }

    /// Drops every link (reset when `abort`).
    pub fn drop_links(&mut self, abort: bool) {
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            self.close(link, abort, "dropped by fault injection".to_owned());
        }
    }

    /// Writes a malformed frame on every link: a valid header followed by broken XML.
    pub fn send_malformed(&mut self) {
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            let xml = b"<?xml version=\"1.0\"?><DeliveredEvent><monitorCrossRefID>";
            let bytes = framing::encode(self.config.framing.into(), EVENT_INVOKE_ID, xml)
                .unwrap_or_default();
            self.record(
                link,
                Direction::Out,
                Some(EVENT_INVOKE_ID),
                "malformed".to_owned(),
                xml,
            );
            self.push_send(link, bytes);
        }
    }

    /// When [`Pbx::handle_timeout`] must next run.
    pub fn next_timeout(&self) -> Option<Instant> {
        let links = self.links.values().flat_map(|l| {
            [l.next_heartbeat, l.session.as_ref().map(|s| s.expires)]
                .into_iter()
                .flatten()
        });
        links
            .chain(self.switch.next_timeout())
            .chain(self.delayed.keys().next().map(|(at, _)| *at))
            .min()
    }

    /// Runs timers due at `now`: delayed responses, session expiry, heartbeats, scripted
    /// parties.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (link, bytes) = entry.remove();
            if self.links.contains_key(&link) {
                self.push_send(link, bytes);
            }
        }
        let expired: Vec<(LinkId, String)> = self
            .links
            .iter()
            .filter_map(|(id, l)| {
                l.session
                    .as_ref()
                    .filter(|s| s.expires <= now)
                    .map(|s| (*id, s.id.clone()))
            })
            .collect();
        for (link, session_id) in expired {
            self.count("session expired");
            self.terminate(
                link,
                session_id,
                Reason::Defined("sessionTimerExpired".to_owned()),
            );
        }
        if let Some(hb) = self.config.heartbeat {
            let due: Vec<LinkId> = self
                .links
                .iter()
                .filter(|(_, l)| l.next_heartbeat.is_some_and(|t| t <= now))
                .map(|(id, _)| *id)
                .collect();
            for link in due {
                let Some(l) = self.links.get_mut(&link) else {
                    continue;
                };
                l.next_heartbeat = Some(now + hb.interval);
                if l.pending_status.is_some() {
                    l.misses += 1;
                }
                if l.misses >= hb.max_misses {
                    let misses = l.misses;
                    self.count("heartbeat lost");
                    self.close(
                        link,
                        false,
                        format!("link {link} left {misses} SystemStatus requests unanswered"),
                    );
                    continue;
                }
                self.send_status(link);
            }
        }
        self.switch.handle_timeout(now);
        self.flush_events();
    }
}
