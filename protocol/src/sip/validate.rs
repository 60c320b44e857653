//! Message-level checks a SIP element applies before acting on a parsed message.

use super::error::SipError;
use super::headers::{CSeq, NameAddr, Via};
use super::message::{Message, StartLine};
use super::uri::Uri;

/// The views [`Message::check`] parsed on its way, for the caller to use instead of parsing
/// them again.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Every Via value, top first (at least one).
    pub vias: Vec<Via>,
    /// From.
    pub from: NameAddr,
    /// To.
    pub to: NameAddr,
    /// CSeq.
    pub cseq: CSeq,
}

impl Checked {
    /// The top Via.
    pub fn top_via(&self) -> &Via {
        // `check` refuses a message without Via.
        &self.vias[0]
    }
}

impl Message {
    /// Checks what RFC 3261 requires of every message before a transaction layer sees it:
    /// Via, From, To, Call-ID and CSeq present once (Via at least once) and well formed;
    /// CSeq method equal to the request method; Request-URI valid and without `?headers`;
    /// Contact, Route, Record-Route, Max-Forwards, Content-Type, Session-Expires and Date
    /// well formed where present. Returns the first problem found.
    pub fn validate(&self) -> Result<(), SipError> {
        self.check().map(drop)
    }

    /// [`Message::validate`], keeping the Via, From, To and CSeq views it parsed.
    pub fn check(&self) -> Result<Checked, SipError> {
        if let StartLine::Request { uri, .. } = &self.start {
            match Uri::parse(uri).map_err(|e| SipError::StartLine(format!("Request-URI: {e}")))? {
                Uri::Sip(sip) if sip.headers.is_some() => {
                    return Err(SipError::StartLine(format!(
                        "Request-URI {uri:?} carries a headers component"
                    )));
                }
                _ => {}
            }
        }
        let vias = self.vias()?;
        if vias.is_empty() {
            return Err(SipError::Missing("Via"));
        }
        let from = self.from_header()?;
        let to = self.to_header()?;
        self.call_id()?;
        let cseq = self.cseq()?;
        if let Some(method) = self.method()
            && cseq.method != *method
        {
            return Err(SipError::Semantic(format!(
                "CSeq method {} differs from request method {method}",
                cseq.method
            )));
        }
        if self.headers_named("Contact").any(|v| v.trim() != "*") {
            self.contacts()?;
        }
        self.record_route()?;
        self.route()?;
        self.max_forwards()?;
        self.content_type()?;
        self.content_length()?;
        self.content_disposition()?;
        self.session_expires()?;
        self.min_se()?;
        for date in self.headers_named("Date") {
            if !date.ends_with(" GMT") {
                return Err(SipError::header("Date", format!("{date:?} is not in GMT")));
            }
        }
        Ok(Checked {
            vias,
            from,
            to,
            cseq,
        })
    }
}
