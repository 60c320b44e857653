//! Errors of the SIP codec. Each says what is wrong and where (line number, header name).

use thiserror::Error;

/// A SIP message or stream that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SipError {
    /// The start line is not a request line or a status line.
    #[error("line 1: malformed start line: {0}")]
    StartLine(String),
    /// The SIP version is not 2.0 (answer 505).
    #[error("line 1: unsupported SIP version {0:?}")]
    Version(String),
    /// A header line is malformed.
    #[error("line {line}: {reason}")]
    HeaderLine {
        /// 1-based line number within the message head.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A header value cannot be parsed by its typed view.
    #[error("header {name}: {reason}")]
    Header {
        /// Canonical header name.
        name: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// A required header is missing.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header that may appear once appears several times.
    #[error("{0} header appears {1} times")]
    Duplicate(&'static str, usize),
    /// Content-Length absent, repeated, malformed or not matching the data (framing is lost).
    #[error("Content-Length: {0}")]
    ContentLength(String),
    /// A configured size limit was exceeded.
    #[error("{what} exceeds the limit of {limit} (got {got})")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// The configured limit.
        limit: usize,
        /// The size seen (a lower bound when the input was cut off).
        got: usize,
    },
    /// The request is syntactically valid but inconsistent (e.g. CSeq method differs from the method).
    #[error("{0}")]
    Semantic(String),
    /// The input ended before the end of the head.
    #[error("message head is incomplete")]
    Incomplete,
}

impl SipError {
    /// The SIP status code a server should answer a request with when it fails this way.
    pub fn status_code(&self) -> u16 {
        match self {
            SipError::Version(_) => 505,
            SipError::Limit { .. } => 513,
            _ => 400,
        }
    }

    pub(crate) fn header(name: &'static str, reason: impl Into<String>) -> Self {
        SipError::Header {
            name,
            reason: reason.into(),
        }
    }
}
