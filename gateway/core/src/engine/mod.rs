//! The gateway, sans-IO: SIP requests and responses from the Lync side, bytes from the PBX link,
//! and time go in; bytes to write come out of [`Gateway::poll_output`].
//!
//! [`Gateway`] only orchestrates, in four files: this one (the API and the SIP dialogs),
//! `csta_side.rs` (a client's CSTA requests), `pbx_side.rs` (the PBX link, monitors and event
//! fan-out) and `operations.rs` (drain and reload). Each job is an owned sub-state that never sees the
//! orchestrator and returns what happened for it to apply: [`uas`] (answers, session timers,
//! server transactions), [`sessions`] (admission, the session table and its timers),
//! [`services`] (what a CSTA request comes to), [`monitors`] (one PBX monitor per device),
//! [`session`] (event INFO flow control), [`client_txs`] (requests to clients), [`latency`]
//! (gateway-added time), [`traces`] (per-session trace notes) and the PBX link
//! ([`crate::pbx::link`]).

mod client_txs;
mod csta_side;
mod latency;
mod monitor_retry;
mod monitors;
mod operations;
mod output;
mod pbx_side;
mod pending;
mod services;
mod session;
mod sessions;
mod traces;
mod uas;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcc_protocol::csta;
use rcc_protocol::sip::{Message, Method, NameAddr};

use self::client_txs::{ClientTxs, Sent};
use self::latency::AddedTime;
use self::monitors::Monitors;
pub use self::output::{Output, Target, target_of};
use self::pending::Purpose;
use self::sessions::{SessionClock, Sessions};
use self::traces::TraceFilter;
use self::uas::{Refusal, Uas};
use crate::config::{Config, OptionsAnswer};
use crate::ids::{FlowId, Ids, SessionId};
use crate::metrics::{EndReason, Metrics, RefusalReason};
use crate::notes::{SessionNote, Way};
use crate::pbx::backoff::{BackoffDelays, MonitorBackoff};
use crate::pbx::link::{LinkSettings, PbxLink};
use crate::setup::Policy;
use crate::sip::transaction::{Seen, TxKey};

/// Timer F: a BYE without an answer is forgotten after this long.
const BYE_TIMEOUT: Duration = Duration::from_secs(32);

/// The gateway core.
pub struct Gateway {
    config: Arc<Config>,
    policy: Policy,
    metrics: Arc<Metrics>,
    link: PbxLink<Purpose>,
    pbx_features: Option<Vec<csta::Feature>>,
    ids: Ids,
    uas: Uas,
    sessions: Sessions,
    monitors: Monitors,
    /// Monitors refused for want of resources that sessions still need.
    monitor_retries: MonitorBackoff,
    client_txs: ClientTxs,
    added: AddedTime,
    traces: TraceFilter,
    /// Connections whose peer is slow to take what is sent to it (see
    /// [`Gateway::set_flow_congested`]).
    congested: HashSet<FlowId>,
    /// Each open connection's peer address, for the log lines (session start and end, CSTA
    /// errors): told by the shell.
    peers: HashMap<FlowId, std::net::SocketAddr>,
    /// New sessions are refused (see [`Gateway::set_draining`]).
    draining: bool,
    outputs: VecDeque<Output>,
    now: Instant,
}

impl Gateway {
    /// A gateway from a checked configuration and the policy built from it; `seed` makes its
    /// tags and branches unique to this run.
    pub fn new(
        config: Arc<Config>,
        policy: Policy,
        metrics: Arc<Metrics>,
        now: Instant,
        seed: u64,
    ) -> Self {
        let traces = TraceFilter::new(
            config
                .observe
                .session_traces
                .as_ref()
                .map(|t| t.users.as_slice()),
        );
        let mut settings = LinkSettings::from_config(&config.pbx);
        settings.keep_frames = traces.on();
        Gateway {
            link: PbxLink::new(settings, now),
            uas: Uas::new(&config.sip),
            traces,
            policy,
            metrics,
            pbx_features: None,
            ids: Ids::new(seed),
            sessions: Sessions::default(),
            monitors: Monitors::default(),
            monitor_retries: MonitorBackoff::new(BackoffDelays {
                first: Duration::from_millis(config.pbx.monitor_retry_min_ms),
                cap: Duration::from_millis(config.pbx.monitor_retry_max_ms),
            }),
            client_txs: ClientTxs::default(),
            added: AddedTime::default(),
            congested: HashSet::new(),
            peers: HashMap::new(),
            draining: false,
            outputs: VecDeque::new(),
            now,
            config,
        }
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

    /// The shell opened or accepted a connection with `peer`.
    pub fn flow_opened(&mut self, flow: FlowId, peer: std::net::SocketAddr) {
        self.peers.insert(flow, peer);
    }

    /// A connection closed.
    pub fn flow_closed(&mut self, flow: FlowId) {
        self.peers.remove(&flow);
        self.set_flow_congested(flow, false);
    }

    /// A connection's peer for a log line.
    pub(crate) fn peer(
        &self,
        flow: FlowId,
    ) -> Option<tracing::field::DisplayValue<std::net::SocketAddr>> {
        self.peers.get(&flow).map(|a| tracing::field::display(*a))
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
        self.monitors.count()
    }

    /// Whether the PBX link is up and normal.
    pub fn pbx_serving(&self) -> bool {
        self.link.is_serving()
    }

    /// The shell is about to hand the engine an input read at `read_at` (a SIP message or PBX
    /// bytes); [`Gateway::end_step`] follows once the outputs are queued. A client request's
    /// gateway-added time is its inbound step plus its outbound step, observed as
    /// `rcc_gateway_added_seconds`. Without these calls nothing is measured.
    pub fn begin_step(&mut self, read_at: Instant) {
        self.added.begin(read_at);
    }

    /// The outputs of the step begun by [`Gateway::begin_step`] are queued, at `done`.
    pub fn end_step(&mut self, done: Instant) {
        let metrics = &self.metrics;
        self.added.end(done, |d| metrics.added(d.as_secs_f64()));
    }

    /// When [`Gateway::handle_timeout`] must run next.
    pub fn next_timeout(&self) -> Option<Instant> {
        [
            self.sessions.next_due(),
            self.client_txs.next_due(),
            self.link.next_timeout(),
            self.uas.next_expiry(),
            self.monitor_retries.next_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.link.handle_timeout(now);
        self.uas.expire(now);
        while let Some(due) = self.sessions.pop_due(now) {
            match due {
                SessionClock::Expired(sid) => {
                    tracing::info!(session = %sid, "session timer expired");
                    self.metrics.ended(EndReason::Expired);
                    self.end_session(sid, true);
                }
                SessionClock::Retransmit(sid) => match self.sessions.retransmission(sid, now) {
                    Some(Ok((flow, bytes))) => {
                        self.trace_sip(sid, flow, Way::Out, || bytes.clone());
                        self.outputs.push_back(Output::Respond { flow, bytes });
                    }
                    Some(Err(())) => {
                        tracing::warn!(session = %sid, "no ACK for the 2xx to INVITE");
                        self.metrics.ended(EndReason::NoAck);
                        self.end_session(sid, true);
                    }
                    None => {}
                },
            }
        }
        while let Some(tx) = self.client_txs.pop_due(now) {
            match tx.sent {
                Sent::Event => {
                    self.metrics.event_timeouts.inc();
                    // Not fatal: pidgin-sipe never answers events. Its later events go
                    // without waiting for answers.
                    if let Some(s) = self.sessions.get_mut(tx.session) {
                        s.delivery.settled();
                        if s.answers_events {
                            tracing::info!(session = %tx.session, "client does not answer event INFOs; sending them without a window");
                            s.answers_events = false;
                        }
                    }
                    self.pump_events(tx.session);
                }
                Sent::Bye if tx.traced => traces::end_note(&mut self.outputs, tx.session),
                Sent::Bye => {}
            }
        }
        self.retry_due_monitors(now);
        self.pump_link();
    }

    /// Stops accepting work: every session gets a BYE and the PBX session is stopped.
    pub fn shutdown(&mut self, now: Instant) {
        self.now = now;
        for sid in self.sessions.ids() {
            self.metrics.ended(EndReason::Shutdown);
            self.end_session(sid, true);
        }
        self.link.stop(now);
        self.pump_link();
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

    /// Sends a response; with `tx`, it answers that transaction (and absorbs its repeats).
    fn respond(&mut self, flow: FlowId, tx: Option<&TxKey>, resp: &Message) {
        let bytes = resp.to_bytes();
        if let Some(tx) = tx {
            self.uas.completed(tx, &bytes, self.now);
        }
        if self.traces.on()
            && let Some(sid) = self.session_of(resp)
        {
            self.trace_sip(sid, flow, Way::Out, || bytes.clone());
        }
        self.outputs.push_back(Output::Respond { flow, bytes });
    }

    /// The session of a message whose To tag is ours (a request to us or our response).
    fn session_of(&self, m: &Message) -> Option<SessionId> {
        let to = m.to_header().ok()?;
        self.sessions.of_dialog(m.call_id().ok()?, to.tag()?)
    }

    /// Refuses (or answers without a body) with `refusal`'s code, counted.
    fn reply(&mut self, flow: FlowId, tx: Option<&TxKey>, req: &Message, refusal: &Refusal) {
        let tag = self.ids.unique("gw");
        let resp = self.uas.reply(req, refusal, &tag);
        self.metrics.sip_response(refusal.code);
        self.respond(flow, tx, &resp);
    }

    fn reply_code(&mut self, flow: FlowId, tx: &TxKey, req: &Message, code: u16) {
        self.reply(flow, Some(tx), req, &Refusal::new(code, ""));
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
                    let refusal = Refusal::new(e.status_code(), format!("Bad Request ({e})"));
                    self.reply(flow, None, &req, &refusal);
                }
                return;
            }
        };
        let Some(tx) = TxKey::of(&req, &checked) else {
            return;
        };
        let to_tag = checked.to.tag().map(str::to_owned);
        if method == Method::Ack {
            self.ack(&req, to_tag.as_deref());
            return;
        }
        match self.uas.seen(&tx, self.now) {
            Seen::New => {}
            Seen::Pending => return,
            Seen::Answered(bytes) => {
                self.outputs.push_back(Output::Respond { flow, bytes });
                return;
            }
        }
        self.metrics.sip_request(&method);
        if method != Method::Cancel
            && let Some(unsupported) = unsupported_extensions(&req)
        {
            // RFC 3261 §8.2.2.3: a Require the gateway does not support.
            let refusal = Refusal::new(420, "");
            let tag = self.ids.unique("gw");
            let mut resp = self.uas.reply(&req, &refusal, &tag);
            resp.push_header("Unsupported", unsupported);
            self.metrics.sip_response(420);
            self.respond(flow, Some(&tx), &resp);
            return;
        }
        let new_work = matches!(
            (&method, &to_tag),
            (Method::Invite, None) | (Method::Info, Some(_))
        );
        if new_work && !self.congested.is_empty() && self.congested.contains(&flow) {
            self.metrics.refused(RefusalReason::Congested);
            let refusal = Refusal::new(503, "Service Unavailable (connection congested)");
            self.reply(flow, Some(&tx), &req, &refusal);
            return;
        }
        let Some(tag) = to_tag else {
            match method {
                Method::Invite => self.new_session(flow, &tx, &req, &checked.from),
                Method::Options => match self.unavailable() {
                    Some(why)
                        if self.config.sip.options_when_unavailable
                            == OptionsAnswer::ServiceUnavailable =>
                    {
                        let refusal = Refusal::new(503, format!("Service Unavailable ({why})"));
                        self.reply(flow, Some(&tx), &req, &refusal);
                    }
                    _ => self.options(flow, &tx, &req),
                },
                // Methods that only make sense in a dialog (INVITEs are answered at once, so
                // there is never anything left to cancel).
                Method::Bye | Method::Info | Method::Update | Method::Prack | Method::Cancel => {
                    self.reply_code(flow, &tx, &req, 481)
                }
                // Standard methods the gateway does not serve: 405 with Allow (RFC 3261
                // §8.2.1); unknown ones: 501 (§8.2.1 too).
                Method::Extension(_) => self.reply_code(flow, &tx, &req, 501),
                _ => self.reply_code(flow, &tx, &req, 405),
            }
            return;
        };
        if method == Method::Cancel {
            self.reply_code(flow, &tx, &req, 481);
            return;
        }
        let Some(sid) = self
            .sessions
            .of_dialog(req.call_id().unwrap_or_default(), &tag)
        else {
            self.reply_code(flow, &tx, &req, 481);
            return;
        };
        if let Some(s) = self.sessions.get_mut(sid) {
            // Requests may come on a new connection; follow the peer.
            s.flow = flow;
        }
        self.trace_sip(sid, flow, Way::In, || req.to_bytes());
        match method {
            Method::Invite => self.reinvite(sid, flow, &tx, &req),
            Method::Info => self.info(sid, flow, &tx, &req),
            Method::Update if self.uas.allows_update() => self.refresh(sid, flow, &tx, &req),
            Method::Update => self.reply_code(flow, &tx, &req, 405),
            Method::Bye => {
                self.reply_code(flow, &tx, &req, 200);
                self.metrics.ended(EndReason::Bye);
                self.end_session(sid, false);
            }
            Method::Options => self.options(flow, &tx, &req),
            _ => self.reply_code(flow, &tx, &req, 501),
        }
    }

    fn options(&mut self, flow: FlowId, tx: &TxKey, req: &Message) {
        let tag = self.ids.unique("gw");
        let resp = self.uas.options(req, &tag);
        self.respond(flow, Some(tx), &resp);
    }

    fn ack(&mut self, req: &Message, to_tag: Option<&str>) {
        let Some(sid) = to_tag.and_then(|t| {
            self.sessions
                .of_dialog(req.call_id().unwrap_or_default(), t)
        }) else {
            return;
        };
        let flow = self.sessions.get(sid).map_or(FlowId::NONE, |s| s.flow);
        self.trace_sip(sid, flow, Way::In, || req.to_bytes());
        self.sessions.acked(sid);
        self.pump_events(sid);
    }

    fn new_session(&mut self, flow: FlowId, tx: &TxKey, req: &Message, from: &NameAddr) {
        let ids = &mut self.ids;
        let admitted = self.sessions.admit(
            req,
            from,
            &self.uas,
            &self.config.sip,
            &self.policy,
            self.link.is_serving(),
            self.draining,
            || ids.unique("gw"),
        );
        let admitted = match admitted {
            Ok(a) => a,
            Err(no) => {
                if no.malformed {
                    self.metrics.malformed.inc();
                }
                if let Some(reason) = no.refused {
                    self.metrics.refused(reason);
                    let (user, line) = no.who.clone().unwrap_or_default();
                    tracing::info!(
                        %user,
                        %line,
                        reason = reason.as_str(),
                        code = no.refusal.code,
                        peer = self.peer(flow),
                        "RCC session refused"
                    );
                }
                self.reply(flow, Some(tx), req, &no.refusal);
                return;
            }
        };
        let sid = self.sessions.open(
            &mut self.ids,
            admitted,
            flow,
            from,
            &self.policy,
            self.uas.dials_tls(),
        );
        let peer = self.peer(flow);
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        if self.traces.wants(&s.user) {
            s.traced = true;
            self.outputs.push_back(Output::Trace(SessionNote::Start {
                session: sid,
                user: s.user.clone(),
            }));
            traces::sip_note(&mut self.outputs, sid, flow, Way::In, req.to_bytes());
        }
        tracing::info!(
            session = %sid,
            call_id = %s.dialog.call_id,
            user = %s.user,
            epid = s.epid.as_deref().unwrap_or(""),
            line = %s.line,
            device = %s.device,
            peer,
            "RCC session started"
        );
        self.metrics.sessions.set(self.sessions.len() as i64);
        self.metrics.sessions_started.inc();
        self.answer_invite(sid, flow, tx, req);
    }

    /// Answers an INVITE of session `sid` with its 2xx and the PBX's status, then waits for
    /// the ACK.
    fn answer_invite(&mut self, sid: SessionId, flow: FlowId, tx: &TxKey, req: &Message) {
        let status = if self.link.is_serving() {
            csta::SystemStatusValue::Normal
        } else {
            csta::SystemStatusValue::Disabled
        };
        let Some(s) = self.sessions.get(sid) else {
            return;
        };
        let body = csta::encode(
            &csta::Message::Response(csta::Response::RequestSystemStatus { status }),
            &s.namespace,
        );
        let resp = self.uas.invite_ok(
            req,
            &s.dialog.local_tag,
            s.session_expires,
            body.into_bytes(),
        );
        let bytes = resp.to_bytes();
        self.uas.accepted(tx, self.now);
        self.trace_sip(sid, flow, Way::Out, || bytes.clone());
        self.outputs.push_back(Output::Respond {
            flow,
            bytes: bytes.clone(),
        });
        self.metrics.sip_response(200);
        self.sessions.arm_expiry(sid, self.now);
        self.sessions.await_ack(sid, bytes, self.now);
    }

    fn reinvite(&mut self, sid: SessionId, flow: FlowId, tx: &TxKey, req: &Message) {
        if let Err(refusal) = uas::csta_body(req) {
            self.reply(flow, Some(tx), req, &refusal);
            return;
        }
        let se = match self.uas.session_timer(req) {
            Ok(se) => se,
            Err(refusal) => return self.reply(flow, Some(tx), req, &refusal),
        };
        let dial_tls = self.uas.dials_tls();
        if let Some(s) = self.sessions.get_mut(sid) {
            if let Some(se) = se {
                s.session_expires = se;
            }
            if let Ok(contacts) = req.contacts()
                && let Some(c) = contacts.into_iter().next()
            {
                s.dialog.remote_target = c.uri_raw;
                s.next_hop = target_of(&s.dialog, dial_tls);
            }
        }
        self.metrics.refreshes.inc();
        self.answer_invite(sid, flow, tx, req);
    }

    fn refresh(&mut self, sid: SessionId, flow: FlowId, tx: &TxKey, req: &Message) {
        let se = match self.uas.session_timer(req) {
            Ok(se) => se,
            Err(refusal) => return self.reply(flow, Some(tx), req, &refusal),
        };
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        if let Some(se) = se {
            s.session_expires = se;
        }
        let resp = self
            .uas
            .refresh_ok(req, &s.dialog.local_tag, s.session_expires);
        self.metrics.refreshes.inc();
        self.metrics.sip_response(200);
        self.respond(flow, Some(tx), &resp);
        self.sessions.arm_expiry(sid, self.now);
    }

    /// Ends a session (with a BYE to the client when `bye`); its call monitors are stopped.
    fn end_session(&mut self, sid: SessionId, bye: bool) {
        self.detach(sid);
        let Some(mut s) = self.sessions.remove(sid) else {
            return;
        };
        for cross_ref in std::mem::take(&mut s.call_monitors) {
            let _ = self.pbx_request(
                Purpose::Release { session: sid },
                csta::Request::MonitorStop { cross_ref },
            );
        }
        self.metrics.sessions.set(self.sessions.len() as i64);
        if bye {
            let branch = self.ids.unique("z9hG4bK");
            let via = self.uas.via(&branch);
            let bytes = s.dialog.request(Method::Bye, &via).to_bytes();
            let deadline = self.now + BYE_TIMEOUT;
            self.client_txs
                .sent(branch, sid, Sent::Bye, s.traced, deadline);
            if s.traced {
                traces::sip_note(&mut self.outputs, sid, s.flow, Way::Out, bytes.clone());
            }
            self.outputs.push_back(Output::Request {
                flow: s.flow,
                target: s.next_hop.clone(),
                bytes,
            });
        } else if s.traced {
            traces::end_note(&mut self.outputs, sid);
        }
        tracing::info!(
            session = %sid,
            call_id = %s.dialog.call_id,
            user = %s.user,
            line = %s.line,
            peer = self.peer(s.flow),
            bye,
            "RCC session ended"
        );
    }

    fn sip_response(&mut self, resp: Message) {
        let Some(code) = resp.status() else {
            return;
        };
        if code < 200 {
            return;
        }
        let Some(tx) = resp
            .top_via()
            .ok()
            .and_then(|v| v.branch().and_then(|b| self.client_txs.answered(b)))
        else {
            return;
        };
        if tx.traced {
            let flow = self
                .sessions
                .get(tx.session)
                .map_or(FlowId::NONE, |s| s.flow);
            traces::sip_note(
                &mut self.outputs,
                tx.session,
                flow,
                Way::In,
                resp.to_bytes(),
            );
            if tx.sent == Sent::Bye {
                traces::end_note(&mut self.outputs, tx.session);
            }
        }
        if tx.sent == Sent::Bye {
            return;
        }
        self.metrics.event_answers(code);
        if let Some(s) = self.sessions.get_mut(tx.session) {
            s.delivery.settled();
            s.answers_events = true;
        }
        if code == 481 {
            tracing::info!(session = %tx.session, "client no longer knows the dialog");
            self.metrics.ended(EndReason::Gone);
            self.end_session(tx.session, false);
            return;
        }
        self.pump_events(tx.session);
    }

    /// Sends the session's queued event INFOs its window allows.
    fn pump_events(&mut self, sid: SessionId) {
        let window = self.config.sip.event_window;
        let timeout = Duration::from_millis(self.config.sip.event_timeout_ms);
        loop {
            let Some(s) = self.sessions.get_mut(sid) else {
                return;
            };
            let blocked = s.ack_wait.is_some();
            let Some(body) = s.delivery.next(window, blocked, s.answers_events) else {
                return;
            };
            let branch = self.ids.unique("z9hG4bK");
            let via = self.uas.via(&branch);
            let bytes = s.dialog.request_bytes(
                &Method::Info,
                &via,
                uas::CSTA,
                Some(uas::DISPOSITION),
                &body,
            );
            let (flow, target, traced) = (s.flow, s.next_hop.clone(), s.traced);
            self.client_txs
                .sent(branch, sid, Sent::Event, traced, self.now + timeout);
            self.metrics.events_sent.inc();
            self.trace_sip(sid, flow, Way::Out, || bytes.clone());
            self.outputs.push_back(Output::Request {
                flow,
                target,
                bytes,
            });
        }
    }

    /// Records a SIP message of `sid` when that session is traced.
    fn trace_sip(
        &mut self,
        sid: SessionId,
        flow: FlowId,
        way: Way,
        bytes: impl FnOnce() -> Vec<u8>,
    ) {
        if self.traces.traced(&self.sessions, sid) {
            traces::sip_note(&mut self.outputs, sid, flow, way, bytes());
        }
    }
}

/// The option tags of a request's Require the gateway does not support (it supports `timer`).
fn unsupported_extensions(req: &Message) -> Option<String> {
    let tags = req.require().ok()?;
    let unknown: Vec<&str> = tags
        .into_iter()
        .filter(|t| !t.eq_ignore_ascii_case("timer"))
        .collect();
    (!unknown.is_empty()).then(|| unknown.join(", "))
}
