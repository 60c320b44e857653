//! The SIP user-agent server: the gateway's own headers (Via, Contact, Allow), every answer it
//! builds, session-timer negotiation (RFC 4028), reading a CSTA body, and the server
//! transactions that absorb retransmissions.

use std::time::Instant;

use rcc_protocol::csta;
use rcc_protocol::sip::Message;

use crate::config::SipConfig;
use crate::sip::transaction::{Seen, ServerTransactions, TxKey};

pub(crate) const CSTA: &str = "application/csta+xml";
pub(crate) const DISPOSITION: &str = "signal;handling=required";
const SERVER: &str = concat!("rcc-gateway/", env!("CARGO_PKG_VERSION"));

/// The status line reason for a code.
fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        481 => "Call/Transaction Does Not Exist",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A request refused with a status code and the reason phrase to show (empty: the code's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: u16,
    pub(crate) why: String,
}

impl Refusal {
    pub(crate) fn new(code: u16, why: impl Into<String>) -> Refusal {
        Refusal {
            code,
            why: why.into(),
        }
    }
}

/// The gateway's UAS side.
#[derive(Debug)]
pub(crate) struct Uas {
    /// Our Via up to the branch value, formatted once.
    via_prefix: String,
    contact: String,
    allow: &'static str,
    allow_update: bool,
    /// A next hop whose URI names no transport is reached over TLS (the gateway listens on
    /// TLS) or TCP (it listens on TCP only).
    dial_tls: bool,
    retry_after: String,
    min_se: u32,
    session_expires: u32,
    transactions: ServerTransactions,
}

impl Uas {
    pub(crate) fn new(sip: &SipConfig) -> Uas {
        Uas {
            via_prefix: format!(
                "SIP/2.0/{} {}:{};branch=",
                sip.advertised_transport().to_ascii_uppercase(),
                sip.host,
                sip.advertised_port()
            ),
            contact: format!(
                "<sip:{}@{}:{};transport={}>",
                sip.user,
                sip.host,
                sip.advertised_port(),
                sip.advertised_transport()
            ),
            allow: if sip.allow_update {
                "INVITE, ACK, BYE, CANCEL, INFO, OPTIONS, UPDATE"
            } else {
                "INVITE, ACK, BYE, CANCEL, INFO, OPTIONS"
            },
            allow_update: sip.allow_update,
            dial_tls: sip.listen_tls.is_some(),
            retry_after: sip.retry_after_s.to_string(),
            min_se: sip.min_se_s,
            session_expires: sip.session_expires_s,
            transactions: ServerTransactions::with_cap(sip.max_transactions),
        }
    }

    /// Our Via header for a request with `branch`.
    pub(crate) fn via(&self, branch: &str) -> String {
        let mut via = String::with_capacity(self.via_prefix.len() + branch.len());
        via.push_str(&self.via_prefix);
        via.push_str(branch);
        via
    }

    pub(crate) fn contact(&self) -> &str {
        &self.contact
    }

    /// The transport a next hop without `;transport=` is reached over (TLS when true).
    pub(crate) fn dials_tls(&self) -> bool {
        self.dial_tls
    }

    pub(crate) fn allows_update(&self) -> bool {
        self.allow_update
    }

    /// A final answer with the headers its code calls for (Accept, Allow, Retry-After, Min-SE).
    pub(crate) fn reply(&self, req: &Message, refusal: &Refusal, tag: &str) -> Message {
        let code = refusal.code;
        let why = if refusal.why.is_empty() {
            reason(code)
        } else {
            &refusal.why
        };
        let mut resp = Message::response_to(req, code, why, tag);
        match code {
            415 => resp.push_header("Accept", CSTA),
            405 | 501 => resp.push_header("Allow", self.allow),
            503 => resp.push_header("Retry-After", self.retry_after.as_str()),
            422 => resp.push_header("Min-SE", self.min_se.to_string()),
            _ => {}
        }
        resp
    }

    /// The answer to OPTIONS: what the gateway accepts.
    pub(crate) fn options(&self, req: &Message, tag: &str) -> Message {
        let mut resp = Message::response_to(req, 200, "OK", tag);
        resp.push_header("Allow", self.allow);
        resp.push_header("Accept", CSTA);
        resp.push_header("Supported", "timer");
        resp
    }

    /// The 2xx to an INVITE (initial or re-INVITE) carrying `body` (a CSTA response).
    pub(crate) fn invite_ok(
        &self,
        req: &Message,
        tag: &str,
        session_expires: u32,
        body: Vec<u8>,
    ) -> Message {
        let mut resp = Message::response_to(req, 200, "OK", tag);
        for rr in req.headers_named("Record-Route") {
            resp.push_header("Record-Route", rr);
        }
        resp.push_header("Contact", self.contact.as_str());
        resp.push_header("Allow", self.allow);
        if session_expires > 0 {
            resp.push_header("Supported", "timer");
            resp.push_header("Require", "timer");
            resp.push_header(
                "Session-Expires",
                format!("{session_expires};refresher=uac"),
            );
        }
        resp.push_header("Server", SERVER);
        resp.with_body(CSTA, Some(DISPOSITION), body)
    }

    /// The 2xx to an UPDATE refresh.
    pub(crate) fn refresh_ok(&self, req: &Message, tag: &str, session_expires: u32) -> Message {
        let mut resp = Message::response_to(req, 200, "OK", tag);
        if session_expires > 0 {
            resp.push_header("Require", "timer");
            resp.push_header(
                "Session-Expires",
                format!("{session_expires};refresher=uac"),
            );
        }
        resp.push_header("Contact", self.contact.as_str());
        resp
    }

    /// The granted Session-Expires (`None`: no session timer), or the 422 refusal.
    pub(crate) fn session_timer(&self, req: &Message) -> Result<Option<u32>, Refusal> {
        let supported = req
            .supported()
            .map(|s| s.iter().any(|t| t.eq_ignore_ascii_case("timer")))
            .unwrap_or(false);
        let asked = req.session_expires().ok().flatten().map(|s| s.delta);
        if let Some(a) = asked
            && a < self.min_se
        {
            return Err(Refusal::new(422, ""));
        }
        if !supported && asked.is_none() {
            return Ok(None);
        }
        Ok(Some(asked.map_or(self.session_expires, |a| {
            a.min(self.session_expires)
        })))
    }

    // ----- server transactions -----

    pub(crate) fn seen(&mut self, tx: &TxKey, now: Instant) -> Seen {
        self.transactions.seen(tx, now)
    }

    pub(crate) fn completed(&mut self, tx: &TxKey, bytes: &[u8], now: Instant) {
        self.transactions.completed(tx, bytes, now);
    }

    pub(crate) fn accepted(&mut self, tx: &TxKey, now: Instant) {
        self.transactions.accepted(tx, now);
    }

    pub(crate) fn expire(&mut self, now: Instant) {
        self.transactions.expire(now);
    }

    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.transactions.next_expiry()
    }
}

/// The CSTA body of a request: none, decoded, or the refusal (415 for another type, 400 for a
/// body that does not decode).
pub(crate) fn csta_body(req: &Message) -> Result<Option<csta::Decoded>, Refusal> {
    match req.content_type() {
        Ok(Some(ct)) if ct.is(CSTA) => {}
        Ok(Some(_)) => return Err(Refusal::new(415, "")),
        Ok(None) if req.body.is_empty() => return Ok(None),
        _ => return Err(Refusal::new(415, "")),
    }
    csta::decode(&req.body)
        .map(Some)
        .map_err(|e| Refusal::new(400, format!("Bad Request (CSTA body: {e})")))
}

/// A 200 OK whose body is a CSTA message, from a head built by `Message::response_to`.
pub(crate) fn with_csta(head: Message, body: Vec<u8>) -> Message {
    head.with_body(CSTA, Some(DISPOSITION), body)
}
