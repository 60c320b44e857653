//! Header names: compact forms expanded, known names in their canonical spelling.

use std::borrow::Cow;
use std::fmt;

/// A header field name. Known names (and compact forms) are held in canonical spelling;
/// unknown extension names keep the spelling they arrived with. Comparison ignores ASCII case.
#[derive(Debug, Clone, Eq)]
pub struct HeaderName(Cow<'static, str>);

/// Compact forms (RFC 3261 §7.3.3 and later RFCs) and their full names.
const COMPACT: [(u8, &str); 20] = [
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'n', "Identity-Info"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// Header names with a canonical spelling.
const KNOWN: [&str; 58] = [
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Content-Disposition",
    "Record-Route",
    "Route",
    "Session-Expires",
    "Min-SE",
    "Supported",
    "Require",
    "Allow",
    "User-Agent",
    "Server",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Accept-Contact",
    "Alert-Info",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-Info",
    "Content-Encoding",
    "Content-Language",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Min-Expires",
    "MIME-Version",
    "Organization",
    "P-Asserted-Identity",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Reason",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Retry-After",
    "Subject",
    "Timestamp",
    "Unsupported",
    "Warning",
    "WWW-Authenticate",
    "RSeq",
];

/// The canonical spelling of a known name, looked up by its lower-case form.
fn known(raw: &str) -> Option<&'static str> {
    // Most peers already write the frequent names canonically: match those as they are.
    let exact = match raw {
        "Via" => Some("Via"),
        "From" => Some("From"),
        "To" => Some("To"),
        "Call-ID" => Some("Call-ID"),
        "CSeq" => Some("CSeq"),
        "Contact" => Some("Contact"),
        "Max-Forwards" => Some("Max-Forwards"),
        "Content-Length" => Some("Content-Length"),
        "Content-Type" => Some("Content-Type"),
        "Content-Disposition" => Some("Content-Disposition"),
        "Record-Route" => Some("Record-Route"),
        "Route" => Some("Route"),
        "User-Agent" => Some("User-Agent"),
        _ => None,
    };
    if exact.is_some() {
        return exact;
    }
    let mut buf = [0u8; 24];
    let lower = buf.get_mut(..raw.len())?;
    lower.copy_from_slice(raw.as_bytes());
    lower.make_ascii_lowercase();
    // The most frequent names first; the table scan covers the rest.
    Some(match &*lower {
        b"via" => "Via",
        b"from" => "From",
        b"to" => "To",
        b"call-id" => "Call-ID",
        b"cseq" => "CSeq",
        b"contact" => "Contact",
        b"max-forwards" => "Max-Forwards",
        b"content-length" => "Content-Length",
        b"content-type" => "Content-Type",
        b"content-disposition" => "Content-Disposition",
        b"record-route" => "Record-Route",
        b"route" => "Route",
        _ => return KNOWN.iter().find(|k| k.eq_ignore_ascii_case(raw)).copied(),
    })
}

impl HeaderName {
    /// Canonicalises a received or caller-supplied name.
    pub fn new(raw: &str) -> Self {
        if let [c] = raw.as_bytes() {
            let c = c.to_ascii_lowercase();
            if let Some((_, full)) = COMPACT.iter().find(|(k, _)| *k == c) {
                return HeaderName(Cow::Borrowed(full));
            }
        }
        match known(raw) {
            Some(known) => HeaderName(Cow::Borrowed(known)),
            None => HeaderName(Cow::Owned(raw.to_owned())),
        }
    }

    /// A name known at compile time, used as is.
    pub const fn from_static(name: &'static str) -> Self {
        HeaderName(Cow::Borrowed(name))
    }

    /// The name as it is written on output.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the given name, ignoring ASCII case (compact forms already expanded).
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_expand() {
        assert_eq!(HeaderName::new("l").as_str(), "Content-Length");
        assert_eq!(HeaderName::new("V").as_str(), "Via");
        assert_eq!(HeaderName::new("x").as_str(), "Session-Expires");
    }

    #[test]
    fn known_names_take_canonical_case() {
        assert_eq!(HeaderName::new("MaX-fOrWaRdS").as_str(), "Max-Forwards");
        assert_eq!(HeaderName::new("cseq").as_str(), "CSeq");
        assert_eq!(HeaderName::new("call-id").as_str(), "Call-ID");
    }

    #[test]
    fn unknown_names_keep_their_spelling_and_compare_caselessly() {
        let n = HeaderName::new("NewFangledHeader");
        assert_eq!(n.as_str(), "NewFangledHeader");
        assert!(n.is("newfangledheader"));
        assert_eq!(n, HeaderName::new("NEWFANGLEDHEADER"));
    }
}
