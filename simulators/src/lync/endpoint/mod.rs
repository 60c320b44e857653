//! One Lync client endpoint's RCC dialog, sans-IO: sign-in (INVITE with RequestSystemStatus and
//! `lcs:line`, ACK, GetCSTAFeatures, MonitorStart), user actions as CSTA requests in INFO,
//! validation of every event, refresh per client profile, sign-out, and re-establishment after
//! 481, 408 or a gateway BYE. Messages go to and come from the Front End.
//!
//! [`Endpoint`] wires three parts that do not know each other: the SIP client (`sip.rs`, with
//! its open transactions in `transactions.rs`: dialog, requests, timers), the RCC bootstrap
//! (`bootstrap.rs`: the sign-in sequence and its phase) and the conformance checker
//! (`conformance.rs`: the rules every message from the gateway must keep, and the violations).

mod bootstrap;
mod config;
mod conformance;
mod sip;
mod transactions;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rcc_protocol::csta::{self, Event, Request, SystemStatusValue};
use rcc_protocol::sip::{Message, Method};

use bootstrap::Bootstrap;
use conformance::ConformanceChecker;
use sip::SipClient;
use transactions::Purpose;

pub use bootstrap::Phase;
pub use config::EndpointConfig;
pub use conformance::CallInfo;
pub use sip::Timings;
pub use transactions::ActionId;

/// How an action ended: the CSTA answer (a response or CSTAErrorCode), or a SIP failure.
pub type ActionResult = Result<csta::Message, String>;

/// An event as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// Arrival order (per endpoint).
    pub seq: u64,
    /// The event.
    pub event: Event,
}

/// The endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// Configuration.
    pub config: EndpointConfig,
    sip: SipClient,
    bootstrap: Bootstrap,
    checker: ConformanceChecker,
    results: HashMap<ActionId, ActionResult>,
    /// Actions whose result arrived since [`Endpoint::take_done`], when `report_done` is set.
    done: Vec<ActionId>,
    /// Keep `done` (a load generator collects results as they come instead of polling).
    pub report_done: bool,
    events: Vec<Seen>,
    event_seq: u64,
    /// Keep every event (tests); load runs only count them.
    pub keep_events: bool,
    events_received: u64,
}

impl Endpoint {
    /// An idle endpoint.
    pub fn new(config: EndpointConfig) -> Self {
        Endpoint {
            sip: SipClient::new(&config),
            bootstrap: Bootstrap::new(),
            checker: ConformanceChecker::new(config.line.clone()),
            config,
            results: HashMap::new(),
            done: Vec::new(),
            report_done: false,
            events: Vec::new(),
            event_seq: 0,
            keep_events: true,
            events_received: 0,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        self.bootstrap.phase()
    }

    /// The monitorCrossRefID from MonitorStartResponse.
    pub fn xref(&self) -> Option<&str> {
        self.bootstrap.xref()
    }

    /// Capabilities the gateway advertised.
    pub fn features(&self) -> &[String] {
        self.bootstrap.features()
    }

    /// Events received so far.
    pub fn events(&self) -> &[Seen] {
        &self.events
    }

    /// Calls at the line, by callID.
    pub fn calls(&self) -> &BTreeMap<String, CallInfo> {
        self.checker.calls()
    }

    /// Events received in all (kept or not).
    pub fn events_received(&self) -> u64 {
        self.events_received
    }

    /// Rules the gateway broke, in order.
    pub fn violations(&self) -> &[String] {
        self.checker.violations()
    }

    /// Connections whose latest event is remembered (for tests of the memory bound).
    pub fn remembered_connections(&self) -> usize {
        self.checker.remembered_connections()
    }

    /// Times the endpoint signed in (re-establishments included).
    pub fn sign_ins(&self) -> u32 {
        self.bootstrap.sign_ins()
    }

    /// Refreshes answered with 2xx.
    pub fn refreshes(&self) -> u32 {
        self.sip.refreshes()
    }

    /// The dialog's Call-ID.
    pub fn call_id(&self) -> &str {
        self.sip.call_id()
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
        self.sip.poll_output()
    }

    /// Takes the measurements gathered since the last call.
    pub fn drain_timings(&mut self) -> Timings {
        self.sip.drain_timings()
    }

    /// Sends the initial INVITE.
    pub fn sign_in(&mut self, now: Instant) {
        self.bootstrap.inviting(now);
        self.sip.invite(&self.config, now);
    }

    /// Sends a CSTA request in an INFO; its outcome is collected with [`Endpoint::take_result`].
    pub fn request(&mut self, request: Request, now: Instant) -> Option<ActionId> {
        let id = self.sip.next_number();
        if let Err(why) = self.bootstrap.offers(&request, self.config.profile) {
            self.finish(id, Err(why));
            return Some(id);
        }
        let makecall = matches!(request, Request::MakeCall { .. });
        let purpose = Purpose::Action(id);
        if !self
            .sip
            .csta_info(&self.config, request, purpose, makecall, now)
        {
            self.finish(id, Err("not signed in (no dialog)".to_owned()));
            return Some(id);
        }
        if makecall {
            self.checker.makecall_sent();
        }
        Some(id)
    }

    /// Sends an INFO with any body (to exercise a gateway's input checks); the outcome is a
    /// SIP status for anything but 200.
    pub fn raw_info(&mut self, content_type: &str, body: Vec<u8>, now: Instant) -> ActionId {
        let id = self.sip.next_number();
        let purpose = Purpose::Action(id);
        if !self
            .sip
            .info(&self.config, content_type, body, purpose, false, now)
        {
            self.finish(id, Err("not signed in (no dialog)".to_owned()));
        }
        id
    }

    /// Signs out: MonitorStop (without waiting for its answer, as clients do), then BYE.
    pub fn sign_out(&mut self, now: Instant) {
        self.config.reestablish = false;
        if let Some(cross_ref) = self.bootstrap.sign_out() {
            let stop = Request::MonitorStop { cross_ref };
            self.sip
                .csta_info(&self.config, stop, Purpose::MonitorStop, false, now);
        }
        self.sip.bye(&self.config, now);
    }

    /// Sends the profile's refresh now.
    pub fn refresh(&mut self, now: Instant) {
        self.sip.refresh(&self.config, now);
    }

    /// When [`Endpoint::handle_timeout`] must run next.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.sip.next_timeout()
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.sip.take_due_refresh(now) {
            self.refresh(now);
        }
        if self.sip.take_due_reestablish(now) {
            self.sign_in(now);
        }
        for key in self.sip.expired(now) {
            // An earlier expiry may have dropped the dialog and every transaction with it.
            if let Some(purpose) = self.sip.time_out(&key) {
                self.failed(purpose, 408, now);
            }
        }
    }

    /// The dialog is gone: open actions fail, and the endpoint signs in again or stops.
    fn lost(&mut self, why: &str, now: Instant) {
        let actions = self.sip.drop_dialog();
        self.bootstrap.lost();
        for id in actions {
            self.finish(id, Err(format!("dialog lost: {why}")));
        }
        self.checker.dialog_lost();
        self.down(why.to_owned(), now);
    }

    /// Not signed in: with `reestablish`, waits to sign in again; otherwise failed for `why`.
    fn down(&mut self, why: String, now: Instant) {
        if self.config.reestablish {
            self.bootstrap.down(None);
            self.sip
                .reestablish_after(self.config.reestablish_delay, now);
        } else {
            self.bootstrap.down(Some(why));
        }
    }

    /// A request ended with a failure status (or 408 when Timer F fired).
    fn failed(&mut self, purpose: Purpose, code: u16, now: Instant) {
        match purpose {
            Purpose::Action(id) => {
                self.checker.action_failed();
                self.finish(id, Err(format!("SIP {code}")));
                if code == 481 || code == 408 {
                    self.lost(&format!("INFO answered {code}"), now);
                }
            }
            Purpose::Invite { refresh: false } => {
                self.sip.forget_dialog();
                let why = format!("INVITE answered {code}");
                if matches!(code, 408 | 480 | 481 | 500 | 503) {
                    self.down(why, now);
                } else {
                    self.bootstrap.down(Some(why));
                }
            }
            Purpose::Invite { refresh: true }
            | Purpose::Update
            | Purpose::Features
            | Purpose::MonitorStart => {
                if matches!(code, 481 | 408) {
                    self.lost(&format!("in-dialog request answered {code}"), now);
                } else if matches!(purpose, Purpose::Features | Purpose::MonitorStart) {
                    self.checker
                        .record(format!("bootstrap request answered {code}"));
                }
            }
            Purpose::MonitorStop | Purpose::Bye => {}
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
        let Some(settled) = self.sip.settle(&self.config, &m, now) else {
            return;
        };
        if let Some(why) = settled.unusable {
            self.checker.record(why);
        }
        if settled.code >= 300 {
            self.failed(settled.purpose, settled.code, now);
            return;
        }
        match settled.purpose {
            Purpose::Invite { refresh } => self.invite_ok(&m, refresh, now),
            Purpose::Update => self.sip.refreshed(&self.config, Some(&m), now),
            Purpose::Features => {
                let answer = sip::csta_body(&m);
                let (next, checked) = self.bootstrap.features_answered(answer, &self.config.line);
                if let Err(why) = checked {
                    self.checker.record(why);
                }
                // A pipelining client sent its MonitorStart with the GetCSTAFeatures.
                if !self.config.profile.pipelines_bootstrap() {
                    self.sip
                        .csta_info(&self.config, next, Purpose::MonitorStart, false, now);
                }
            }
            Purpose::MonitorStart => {
                if let Some(took) = self.bootstrap.monitor_answered(sip::csta_body(&m), now) {
                    self.sip.record_sign_in(took);
                }
            }
            Purpose::Action(id) => {
                let answer = sip::csta_body(&m);
                self.checker
                    .action_answered(answer.as_ref(), settled.makecall);
                let result = answer.ok_or_else(|| "200 OK without a CSTA body".to_owned());
                self.finish(id, result);
            }
            Purpose::MonitorStop | Purpose::Bye => {}
        }
    }

    /// A 2xx to INVITE: the sign-in (then GetCSTAFeatures) or a refresh.
    fn invite_ok(&mut self, resp: &Message, refresh: bool, now: Instant) {
        self.sip.invite_accepted(resp);
        let status = bootstrap::system_status(sip::csta_body(resp)).unwrap_or_else(|why| {
            self.checker.record(why);
            SystemStatusValue::Other("missing".into())
        });
        if refresh {
            self.sip.refreshed(&self.config, None, now);
            return;
        }
        self.sip.schedule_refresh(&self.config, now);
        if let Some(next) = self.bootstrap.signed_in(&status, &self.config.line) {
            self.sip
                .csta_info(&self.config, next, Purpose::Features, false, now);
            if self.config.profile.pipelines_bootstrap() {
                let monitor = Request::MonitorStart {
                    object: csta::MonitorObject::Device(self.config.line.clone()),
                    monitor_type: None,
                };
                self.sip
                    .csta_info(&self.config, monitor, Purpose::MonitorStart, false, now);
            }
        }
    }

    fn incoming_request(&mut self, m: Message, now: Instant) {
        let Some(method) = m.method().cloned() else {
            return;
        };
        self.checker.check_order(&m);
        match method {
            Method::Info => {
                match sip::csta_body(&m) {
                    Some(csta::Message::Event(e)) => self.event(e),
                    other => self
                        .checker
                        .record(format!("INFO from the gateway without an event: {other:?}")),
                }
                if self.config.profile.answers_events() {
                    self.sip.answer(&m, 200, "OK");
                }
            }
            Method::Bye => {
                self.sip.answer(&m, 200, "OK");
                self.lost("the gateway sent BYE", now);
            }
            Method::Options => self.sip.answer(&m, 200, "OK"),
            Method::Ack => {}
            _ => self.sip.answer(&m, 501, "Not Implemented"),
        }
    }

    fn event(&mut self, e: Event) {
        self.event_seq += 1;
        self.checker.event(&e, self.bootstrap.xref());
        self.events_received += 1;
        if self.keep_events {
            self.events.push(Seen {
                seq: self.event_seq,
                event: e,
            });
        }
    }
}
