//! The SIP side of an endpoint's RCC dialog: the INVITE that creates it, requests in it (each
//! with a transaction, see [`Transactions`]), ACKs, answers to the gateway's requests, the
//! refresh the client profile calls for, and the timer for signing in again. It knows which
//! request is waiting for what ([`Purpose`]) but leaves what an answer means to the caller.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rcc_protocol::csta::{self, Request};
use rcc_protocol::sip::{Dialog, Message, Method};

use super::config::EndpointConfig;
use super::transactions::{ActionId, Purpose, TransactionKey, Transactions};
use crate::lync::profile::{ClientProfile, Refresh};

/// Content type of CSTA bodies.
const CSTA: &str = "application/csta+xml";
/// Content-Disposition of CSTA bodies.
const DISPOSITION: &str = "signal;handling=required";

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

/// A duration in whole microseconds, saturated.
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// A final answer matched to the request it settles.
#[derive(Debug)]
pub(super) struct Settled {
    /// Why the request was sent.
    pub purpose: Purpose,
    /// The final status code.
    pub code: u16,
    /// The request was a MakeCall.
    pub makecall: bool,
    /// A 2xx to INVITE that could not set up the dialog (so no ACK went out).
    pub unusable: Option<String>,
}

/// The SIP client.
#[derive(Debug)]
pub(super) struct SipClient {
    call_id: String,
    tag: String,
    dialog: Option<Dialog>,
    transactions: Transactions,
    /// The gateway's Allow lists UPDATE.
    update_allowed: bool,
    /// The Session-Expires the gateway chose.
    session_expires: Option<u32>,
    refresh_at: Option<Instant>,
    reestablish_at: Option<Instant>,
    outputs: VecDeque<Message>,
    /// Numbers tags, branches, Call-IDs and action IDs.
    counter: u64,
    /// The hash of user, epid and a per-process random key: it makes tags and branches unique
    /// across endpoints and runs.
    unique_key: u64,
    /// Refreshes answered with 2xx.
    refreshes: u32,
    timings: Timings,
}

impl SipClient {
    /// A client without a dialog.
    pub fn new(config: &EndpointConfig) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let nonce = crate::nonce();
        let mut h = random_state().build_hasher();
        h.write(config.user.as_bytes());
        h.write(config.epid.as_bytes());
        h.write_u64(nonce);
        SipClient {
            call_id: String::new(),
            tag: String::new(),
            dialog: None,
            transactions: Transactions::default(),
            update_allowed: false,
            session_expires: None,
            refresh_at: None,
            reestablish_at: None,
            outputs: VecDeque::new(),
            counter: 0,
            unique_key: h.finish(),
            refreshes: 0,
            timings: Timings::default(),
        }
    }

    /// The next number of the endpoint's counter (action IDs share it with tags and branches).
    pub fn next_number(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn unique(&mut self, prefix: &str) -> String {
        use std::fmt::Write;
        let n = self.next_number();
        let mut out = String::with_capacity(prefix.len() + 24);
        out.push_str(prefix);
        let _ = write!(out, "{:016x}{n:x}", self.unique_key);
        out
    }

    /// The dialog's Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Refreshes answered with 2xx.
    pub fn refreshes(&self) -> u32 {
        self.refreshes
    }

    /// Adds a sign-in's duration (INVITE sent → MonitorStartResponse) to the measurements.
    pub fn record_sign_in(&mut self, took: Duration) {
        self.timings.sign_ins.push(micros(took));
    }

    /// Takes the measurements gathered since the last call.
    pub fn drain_timings(&mut self) -> Timings {
        std::mem::take(&mut self.timings)
    }

    /// The next message for the Front End.
    pub fn poll_output(&mut self) -> Option<Message> {
        self.outputs.pop_front()
    }

    fn via(&mut self, config: &EndpointConfig) -> String {
        if config.profile.via_branch() {
            let b = self.unique("z9hG4bK");
            format!("SIP/2.0/TLS {};branch={b}", config.address)
        } else {
            format!("SIP/2.0/TLS {}", config.address)
        }
    }

    fn contact(config: &EndpointConfig) -> String {
        let user = config.user.trim_start_matches("sip:");
        if config.profile == ClientProfile::Sipe {
            format!(
                "<sip:{user}:5061;maddr={};transport=tls>;proxy=replace",
                config.address.split(':').next().unwrap_or("127.0.0.1")
            )
        } else {
            format!("<sip:{user};opaque=user:epid:{};gruu>", config.epid)
        }
    }

    /// Sends the INVITE that creates a new dialog (new Call-ID and tag), carrying
    /// RequestSystemStatus for the line.
    pub fn invite(&mut self, config: &EndpointConfig, now: Instant) {
        self.call_id = self.unique("");
        self.tag = self.unique("");
        self.dialog = None;
        let via = self.via(config);
        let mut m = Message::request(Method::Invite, config.line_server.clone());
        m.push_header("Via", via);
        m.push_header("Max-Forwards", "70");
        m.push_header(
            "From",
            format!("<{}>;tag={};epid={}", config.user, self.tag, config.epid),
        );
        m.push_header("To", format!("<{}>", config.line_server));
        m.push_header("Call-ID", self.call_id.clone());
        m.push_header("CSeq", "1 INVITE");
        m.push_header("Contact", Self::contact(config));
        m.push_header("User-Agent", config.profile.user_agent());
        if config.profile.supports_timer() {
            m.push_header("Supported", "timer");
        }
        let m = m.with_body(CSTA, Some(DISPOSITION), system_status_request(&config.line));
        self.send(m, Purpose::Invite { refresh: false }, false, now);
    }

    /// Queues a request, with a transaction for its answer.
    fn send(&mut self, m: Message, purpose: Purpose, makecall: bool, now: Instant) {
        self.transactions.open(&m, purpose, makecall, now);
        self.outputs.push_back(m);
    }

    /// A request in the dialog, or `None` without one.
    fn in_dialog(&mut self, config: &EndpointConfig, method: Method) -> Option<Message> {
        let via = self.via(config);
        let d = self.dialog.as_mut()?;
        let keep_contact = config.profile.contact_in_dialog() || method == Method::Invite;
        let mut m = d.request(method, &via);
        if !keep_contact {
            m.remove_header("Contact");
        }
        m.push_header("User-Agent", config.profile.user_agent());
        Some(m)
    }

    /// Sends an INFO with `body` in the dialog; false without a dialog.
    pub fn info(
        &mut self,
        config: &EndpointConfig,
        content_type: &str,
        body: Vec<u8>,
        purpose: Purpose,
        makecall: bool,
        now: Instant,
    ) -> bool {
        let Some(m) = self.in_dialog(config, Method::Info) else {
            return false;
        };
        let m = m.with_body(content_type, Some(DISPOSITION), body);
        self.send(m, purpose, makecall, now);
        true
    }

    /// Sends a CSTA request in an INFO; false without a dialog.
    pub fn csta_info(
        &mut self,
        config: &EndpointConfig,
        request: Request,
        purpose: Purpose,
        makecall: bool,
        now: Instant,
    ) -> bool {
        let body = csta::encode(&csta::Message::Request(request), csta::ED3).into_bytes();
        self.info(config, CSTA, body, purpose, makecall, now)
    }

    /// Sends BYE (when there is a dialog) and stops refreshing.
    pub fn bye(&mut self, config: &EndpointConfig, now: Instant) {
        if let Some(m) = self.in_dialog(config, Method::Bye) {
            self.send(m, Purpose::Bye, false, now);
        }
        self.refresh_at = None;
    }

    /// Sends the profile's refresh: UPDATE, or a re-INVITE with RequestSystemStatus.
    pub fn refresh(&mut self, config: &EndpointConfig, now: Instant) {
        match config.profile.refresh(self.update_allowed) {
            Refresh::Update => {
                if let Some(mut m) = self.in_dialog(config, Method::Update) {
                    if let Some(se) = self.session_expires {
                        m.push_header("Session-Expires", format!("{se};refresher=uac"));
                        m.push_header("Supported", "timer");
                    }
                    self.send(m, Purpose::Update, false, now);
                }
            }
            Refresh::ReInvite => {
                let body = system_status_request(&config.line);
                let contact = Self::contact(config);
                if let Some(mut m) = self.in_dialog(config, Method::Invite) {
                    m.set_header("Contact", contact);
                    m.push_header("Supported", "timer");
                    if let Some(se) = self.session_expires {
                        m.push_header("Session-Expires", format!("{se};refresher=uac"));
                    }
                    let m = m.with_body(CSTA, Some(DISPOSITION), body);
                    self.send(m, Purpose::Invite { refresh: true }, false, now);
                }
            }
        }
    }

    /// The soonest of the refresh, re-establishment and Timer F deadlines.
    pub fn next_timeout(&self) -> Option<Instant> {
        let pending = self.transactions.next_deadline();
        [self.refresh_at, self.reestablish_at, pending]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the refresh is due (then it is no longer scheduled).
    pub fn take_due_refresh(&mut self, now: Instant) -> bool {
        let due = self.refresh_at.is_some_and(|t| t <= now);
        if due {
            self.refresh_at = None;
        }
        due
    }

    /// Whether signing in again is due (then it is no longer scheduled).
    pub fn take_due_reestablish(&mut self, now: Instant) -> bool {
        let due = self.reestablish_at.is_some_and(|t| t <= now);
        if due {
            self.reestablish_at = None;
        }
        due
    }

    /// Transactions whose Timer F has fired.
    pub fn expired(&self, now: Instant) -> Vec<TransactionKey> {
        self.transactions.expired(now)
    }

    /// Ends a transaction whose Timer F fired, if it is still open; an action's counts as a
    /// failure.
    pub fn time_out(&mut self, key: &TransactionKey) -> Option<Purpose> {
        let p = self.transactions.close(key)?;
        if matches!(p.purpose, Purpose::Action(_)) {
            self.timings.failures += 1;
        }
        Some(p.purpose)
    }

    /// Schedules the next refresh: the configured interval, else the profile's for the
    /// negotiated Session-Expires.
    pub fn schedule_refresh(&mut self, config: &EndpointConfig, now: Instant) {
        let interval = config
            .refresh
            .or_else(|| config.profile.refresh_interval(self.session_expires));
        self.refresh_at = interval.map(|i| now + i);
    }

    /// Schedules signing in again after `delay`.
    pub fn reestablish_after(&mut self, delay: Duration, now: Instant) {
        self.reestablish_at = Some(now + delay);
    }

    /// Matches a final response to its request: ends the transaction, ACKs an INVITE, and
    /// times an action. `None` for provisional responses and ones that match nothing.
    pub fn settle(
        &mut self,
        config: &EndpointConfig,
        m: &Message,
        now: Instant,
    ) -> Option<Settled> {
        let (Some(code), Ok(cseq)) = (m.status(), m.cseq()) else {
            return None;
        };
        if code < 200 {
            return None;
        }
        let key = (cseq.seq, cseq.method.as_str().to_owned());
        let p = self.transactions.close(&key)?;
        let unusable = if cseq.method == Method::Invite {
            self.ack(config, &p.request, m).err()
        } else {
            None
        };
        if let Purpose::Action(_) = p.purpose {
            if code >= 300 {
                self.timings.failures += 1;
            } else {
                self.timings
                    .requests
                    .push(micros(now.saturating_duration_since(p.sent)));
            }
        }
        Some(Settled {
            purpose: p.purpose,
            code,
            makecall: p.makecall,
            unusable,
        })
    }

    /// ACKs a final response to INVITE; a first 2xx sets up the dialog. An error when a 2xx
    /// cannot (then nothing is sent).
    fn ack(
        &mut self,
        config: &EndpointConfig,
        invite: &Message,
        resp: &Message,
    ) -> Result<(), String> {
        let Ok(cseq) = invite.cseq() else {
            return Ok(());
        };
        let via = self.via(config);
        let seq = if config.profile.resets_cseq() {
            1
        } else {
            cseq.seq
        };
        let ok = resp.status().is_some_and(|c| c < 300);
        let mut ack = if let (Some(d), true) = (&self.dialog, ok) {
            d.request_with_cseq(Method::Ack, &via, seq)
        } else if ok {
            let d = Dialog::as_uac(invite, resp, &Self::contact(config))
                .map_err(|e| format!("2xx to INVITE unusable: {e}"))?;
            let a = d.request_with_cseq(Method::Ack, &via, seq);
            self.dialog = Some(d);
            a
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
        if config.profile.resets_cseq()
            && let Some(d) = self.dialog.as_mut()
        {
            d.local_cseq = 1;
        }
        if !config.profile.contact_in_dialog() {
            ack.remove_header("Contact");
        }
        self.outputs.push_back(ack);
        Ok(())
    }

    fn note_timer(&mut self, m: &Message) {
        if let Ok(Some(se)) = m.session_expires() {
            self.session_expires = Some(se.delta);
        }
    }

    /// Takes from a 2xx to INVITE what the dialog keeps: Allow, Session-Expires and the
    /// gateway's Contact as the remote target.
    pub fn invite_accepted(&mut self, resp: &Message) {
        if let Ok(allow) = resp.allow() {
            self.update_allowed = allow.iter().any(|a| a.eq_ignore_ascii_case("UPDATE"));
        }
        self.note_timer(resp);
        if let Ok(contacts) = resp.contacts()
            && let (Some(c), Some(d)) = (contacts.into_iter().next(), self.dialog.as_mut())
        {
            d.remote_target = c.uri_raw;
        }
    }

    /// A refresh was answered with 2xx: schedules the next. `update` is the answer to an
    /// UPDATE, whose Session-Expires counts (a re-INVITE's went through
    /// [`SipClient::invite_accepted`]).
    pub fn refreshed(&mut self, config: &EndpointConfig, update: Option<&Message>, now: Instant) {
        self.refreshes += 1;
        if let Some(resp) = update {
            self.note_timer(resp);
        }
        self.schedule_refresh(config, now);
    }

    /// Forgets the dialog after the sign-in INVITE failed.
    pub fn forget_dialog(&mut self) {
        self.dialog = None;
    }

    /// Drops the dialog, its refresh and every open transaction; returns the actions that
    /// were waiting.
    pub fn drop_dialog(&mut self) -> Vec<ActionId> {
        self.dialog = None;
        self.refresh_at = None;
        self.transactions
            .close_all()
            .filter_map(|p| match p.purpose {
                Purpose::Action(id) => Some(id),
                _ => None,
            })
            .collect()
    }

    /// Answers a request from the gateway.
    pub fn answer(&mut self, request: &Message, code: u16, reason: &str) {
        self.outputs
            .push_back(Message::response_to(request, code, reason, &self.tag));
    }
}

/// The RequestSystemStatus body every INVITE of the dialog carries.
fn system_status_request(line: &str) -> Vec<u8> {
    csta::encode(
        &csta::Message::Request(Request::RequestSystemStatus {
            line: Some(line.to_owned()),
        }),
        csta::ED3,
    )
    .into_bytes()
}

fn random_state() -> &'static std::collections::hash_map::RandomState {
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    STATE.get_or_init(std::collections::hash_map::RandomState::new)
}

/// A message's CSTA body, decoded; `None` when it has none or it does not decode.
pub(super) fn csta_body(m: &Message) -> Option<csta::Message> {
    if m.body.is_empty() {
        return None;
    }
    csta::decode(&m.body).ok().map(|d| d.message)
}
