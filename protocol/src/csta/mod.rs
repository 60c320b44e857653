//! CSTA (ECMA-323 XML): one typed model for the RCC services, their responses, the events, the
//! error code and the ECMA-354 session messages, with a tolerant decoder and a canonical encoder.
//!
//! Decoding matches local names in any namespace (or none), in any element order, falls back to
//! ASCII-case-insensitive names, accepts both spellings of the schema quirks, and skips unknown
//! elements. Encoding writes the schema's spellings and order in the namespace the caller picks.

mod error;
mod event;
mod request;
mod response;
mod session;
mod values;
mod xml;

use std::borrow::Cow;

use thiserror::Error;

pub use error::CstaError;
pub use event::{CallEvent, CallEventKind, DoNotDisturbEvent, Event, ForwardingEvent};
pub use request::{LCS_NAMESPACE, MonitorObject, Request, Service};
pub use response::{Feature, ForwardItem, Response, SnapshotCall};
pub use session::{Reason, SESSION_NAMESPACE, Session};
pub use values::{
    AutoOriginate, Cause, ConnectionId, ConnectionListItem, DeviceRef, ErrorCategory,
    ForwardingType, KNOWN_CAUSES, LocalConnectionState, SystemStatusValue,
};
pub use xml::{XmlLimits, escape};

/// ECMA-323 3rd edition namespace (Lync RCC, most PBXs).
pub const ED3: &str = "http://www.ecma-international.org/standards/ecma-323/csta/ed3";
/// ECMA-323 4th edition namespace (OpenScape Voice).
pub const ED4: &str = "http://www.ecma-international.org/standards/ecma-323/csta/ed4";
/// ECMA-323 5th edition namespace.
pub const ED5: &str = "http://www.ecma-international.org/standards/ecma-323/csta/ed5";
/// ECMA-323 6th edition namespace.
pub const ED6: &str = "http://www.ecma-international.org/standards/ecma-323/csta/ed6";

/// Why a CSTA document could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Not well-formed XML (or not UTF-8 / ISO-8859-1).
    #[error("malformed XML: {0}")]
    Xml(String),
    /// A size, depth or count limit was exceeded.
    #[error("{what} exceeds the limit of {limit}")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: usize,
    },
    /// The root element is not a message this model knows.
    #[error("unknown CSTA message <{0}>")]
    UnknownRoot(String),
    /// A mandatory child is missing.
    #[error("<{parent}> lacks <{element}>")]
    Missing {
        /// The parent element.
        parent: String,
        /// The missing child.
        element: &'static str,
    },
    /// A child has a value of the wrong type.
    #[error("<{element}>: {reason}")]
    Value {
        /// The element.
        element: String,
        /// What is wrong.
        reason: String,
    },
}

/// A CSTA message.
// Short-lived: decoded, handled and dropped (see `Event`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A service request.
    Request(Request),
    /// A positive response.
    Response(Response),
    /// An event.
    Event(Event),
    /// A negative response (`CSTAErrorCode`, or Avaya `CSTAException`).
    Error(CstaError),
    /// An ECMA-354 session message.
    Session(Session),
}

/// A decoded message with the namespace its root was in (`None`: no namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The message.
    pub message: Message,
    /// The root's namespace URI, for answering in kind.
    pub namespace: Option<String>,
}

impl Message {
    /// The root element name this message is encoded with.
    pub fn root_name(&self) -> Cow<'static, str> {
        match self {
            Message::Request(r) => Cow::Borrowed(r.service().request_name()),
            Message::Response(r) => Cow::Owned(r.service().response_name()),
            Message::Event(e) => Cow::Borrowed(e.root_name()),
            Message::Error(_) => Cow::Borrowed("CSTAErrorCode"),
            Message::Session(s) => Cow::Borrowed(s.root_name()),
        }
    }
}

fn to_text(bytes: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Cow::Borrowed(s)),
        Err(e) => {
            let decl_end = memchr::memmem::find(bytes, b"?>").unwrap_or(0).min(200);
            let decl = String::from_utf8_lossy(&bytes[..decl_end]).to_ascii_lowercase();
            if decl.contains("iso-8859-1") || decl.contains("latin1") {
                Ok(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()))
            } else {
                Err(DecodeError::Xml(format!(
                    "not UTF-8 at byte {}",
                    e.valid_up_to()
                )))
            }
        }
    }
}

/// Decodes one CSTA document with default limits.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode_with_limits(bytes, &XmlLimits::default())
}

/// Decodes one CSTA document.
pub fn decode_with_limits(bytes: &[u8], limits: &XmlLimits) -> Result<Decoded, DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::Limit {
            what: "document size",
            limit: limits.max_bytes,
        });
    }
    let text = to_text(bytes)?;
    if let Some(at) = xml::forbidden_char(&text) {
        return Err(DecodeError::Xml(format!(
            "character XML 1.0 forbids at byte {at}"
        )));
    }
    let doc = xml::parse(text.trim_start(), limits)?;
    let root = doc.root();
    let name = root.name();
    let message = if name.ends_with("Event") {
        Event::decode(name, root)?
            .map(Message::Event)
            .ok_or_else(|| DecodeError::UnknownRoot(name.to_owned()))?
    } else if name == "CSTAErrorCode" || name == "CSTAException" {
        Message::Error(CstaError::decode(root))
    } else if let Some(s) = Session::decode(name, root)? {
        Message::Session(s)
    } else if let Some(service) = name
        .strip_suffix("Response")
        .and_then(Service::from_request_name)
    {
        Message::Response(Response::decode(service, root)?)
    } else if let Some(service) = Service::from_request_name(name) {
        Message::Request(Request::decode(service, root)?)
    } else {
        return Err(DecodeError::UnknownRoot(name.to_owned()));
    };
    Ok(Decoded {
        message,
        namespace: root.namespace().map(str::to_owned),
    })
}

/// Encodes a message in canonical form. CSTA messages are written in `namespace` (none when
/// empty); ECMA-354 session messages always in [`SESSION_NAMESPACE`].
pub fn encode(message: &Message, namespace: &str) -> String {
    encode_with(
        message,
        &Encoding {
            namespace,
            device_id_first: false,
        },
    )
}

/// How to write a CSTA document: the namespace and the peer's ordering habits.
#[derive(Debug, Clone, Copy)]
pub struct Encoding<'a> {
    /// Namespace of CSTA messages (none when empty).
    pub namespace: &'a str,
    /// Write `deviceID` before `callID` inside ConnectionIDs (Avaya AES does).
    pub device_id_first: bool,
}

/// Encodes a message in canonical form with the peer's [`Encoding`].
pub fn encode_with(message: &Message, encoding: &Encoding<'_>) -> String {
    let namespace = encoding.namespace;
    let root = message.root_name();
    let ns = match message {
        Message::Session(_) => SESSION_NAMESPACE,
        _ => namespace,
    };
    let mut w = xml::XmlWriter::new(&root, ns);
    w.device_id_first = encoding.device_id_first;
    match message {
        Message::Request(r) => r.encode(&mut w),
        Message::Response(r) => r.encode(&mut w),
        Message::Event(e) => e.encode(&mut w),
        Message::Error(e) => e.encode(&mut w),
        Message::Session(s) => s.encode(&mut w),
    }
    w.finish(&root)
}
