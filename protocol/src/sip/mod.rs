//! SIP: a lossless message model, stream and datagram framing, typed header views, URIs, and
//! builders for responses and in-dialog requests.
//!
//! Parsing is tolerant (compact and folded headers, LWS before colons, extension methods) and
//! output canonical (full header names, `Name: value`, a Content-Length that matches the body).

mod builder;
mod error;
mod framer;
mod headers;
mod limits;
mod message;
mod name;
mod reject;
mod uri;
mod validate;

pub use builder::Dialog;
pub use error::SipError;
pub use framer::{Rejected, StreamFramer, StreamItem, parse_datagram};
pub use headers::{
    CSeq, ContentDisposition, ContentType, NameAddr, Refresher, SessionExpires, Via, split_values,
};
pub use limits::Limits;
pub use message::{Header, Message, Method, StartLine};
pub use name::HeaderName;
pub use reject::answer_unparsable;
pub use uri::{Host, Params, SipUri, TelUri, Uri};
pub use validate::Checked;
