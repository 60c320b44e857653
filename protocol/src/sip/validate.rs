//! Message-level checks a SIP element applies before acting on a parsed message.

use super::error::SipError;
use super::message::{Message, StartLine};
use super::uri::Uri;

impl Message {
    /// Checks what RFC 3261 requires of every message before a transaction layer sees it:
    /// Via, From, To, Call-ID and CSeq present once (Via at least once) and well formed;
    /// CSeq method equal to the request method; Request-URI valid and without `?headers`;
    /// Contact, Route, Record-Route, Max-Forwards, Content-Type, Session-Expires and Date
    /// well formed where present. Returns the first problem found.
    pub fn validate(&self) -> Result<(), SipError> {
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
        self.from_header()?;
        self.to_header()?;
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
        Ok(())
    }
}
