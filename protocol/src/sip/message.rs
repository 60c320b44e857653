//! The lossless SIP message model: start line, ordered headers, body bytes.

use std::fmt;

use super::error::SipError;
use super::limits::Limits;
use super::name::HeaderName;

/// A request method. Methods are case-sensitive tokens; anything not listed is an extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE
    Subscribe,
    /// NOTIFY
    Notify,
    /// REFER
    Refer,
    /// MESSAGE
    Message,
    /// PUBLISH
    Publish,
    /// Any other token.
    Extension(String),
}

impl Method {
    /// Parses a method token; fails on characters outside the RFC 3261 token set.
    pub fn parse(s: &str) -> Result<Method, SipError> {
        if s.is_empty() || !s.bytes().all(is_token_char) {
            return Err(SipError::StartLine(format!("method {s:?} is not a token")));
        }
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_owned()),
        })
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Extension(s) => s,
            known => known.as_static().unwrap_or_default(),
        }
    }

    /// The name of a standard method as a `&'static str` (`None` for an extension method).
    pub fn as_static(&self) -> Option<&'static str> {
        Some(match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(_) => return None,
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP/2.0`
    Request {
        /// The method.
        method: Method,
        /// The Request-URI, exactly as received.
        uri: String,
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`
    Response {
        /// Status code, 100..=699.
        code: u16,
        /// Reason phrase (may be empty).
        reason: String,
    },
}

/// One header field as received: canonical name, value unfolded and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical name.
    pub name: HeaderName,
    /// Raw value (all comma-separated values of the line, unchanged but for unfolding).
    pub value: String,
}

/// A SIP request or response. Headers keep their order; the body is never re-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request line or status line.
    pub start: StartLine,
    /// Header fields in received order.
    pub headers: Vec<Header>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// RFC 3261 `token` characters, as a lookup table.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// Whether `b` is an RFC 3261 `token` character.
pub(crate) fn is_token_char(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !is_ws(*b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ws(*b)).map_or(start, |p| p + 1);
    &s[start..end]
}

fn utf8(bytes: &[u8], line: usize) -> Result<&str, SipError> {
    std::str::from_utf8(bytes).map_err(|e| SipError::HeaderLine {
        line,
        reason: format!("not UTF-8 at byte {}", e.valid_up_to()),
    })
}

/// `part` (a slice of `head`) as text: cut from `whole`, the head already checked as UTF-8,
/// when there is one; otherwise checked on its own.
fn cut<'a>(
    head: &'a [u8],
    whole: Option<&'a str>,
    part: &'a [u8],
    line: usize,
) -> Result<&'a str, SipError> {
    let off = (part.as_ptr() as usize).wrapping_sub(head.as_ptr() as usize);
    match whole.and_then(|t| t.get(off..off.checked_add(part.len())?)) {
        Some(s) => Ok(s),
        None => utf8(part, line),
    }
}

fn parse_start_line(line: &[u8]) -> Result<StartLine, SipError> {
    let text = std::str::from_utf8(line)
        .map_err(|e| SipError::StartLine(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    if text
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        // Status-Line: SIP-Version SP 3DIGIT SP Reason-Phrase (the reason may be empty).
        let (version, rest) = text.split_once(' ').unwrap_or((text, ""));
        check_version(version)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SipError::StartLine(format!(
                "status code {code:?} is not three digits"
            )));
        }
        let code: u16 = code
            .parse()
            .map_err(|_| SipError::StartLine(format!("status code {code:?}")))?;
        if !(100..=699).contains(&code) {
            return Err(SipError::StartLine(format!(
                "status code {code} out of range 100..699"
            )));
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_owned(),
        });
    }
    // Request-Line: Method SP Request-URI SP SIP-Version, single spaces only.
    let mut parts = text.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SipError::StartLine(
            "expected 'Method SP Request-URI SP SIP/2.0' with single spaces".into(),
        ));
    };
    let method = Method::parse(method)?;
    if uri.is_empty() || uri.starts_with('<') || uri.bytes().any(|b| b.is_ascii_control()) {
        return Err(SipError::StartLine(format!(
            "malformed Request-URI {uri:?}"
        )));
    }
    check_version(version)?;
    Ok(StartLine::Request {
        method,
        uri: uri.to_owned(),
    })
}

fn check_version(version: &str) -> Result<(), SipError> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        Ok(())
    } else if version.len() > 4
        && version
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        Err(SipError::Version(version.to_owned()))
    } else {
        Err(SipError::StartLine(format!("bad SIP-Version {version:?}")))
    }
}

/// Parses a message head (start line and header lines, without the blank line).
pub(crate) fn parse_head(
    head: &[u8],
    limits: &Limits,
) -> Result<(StartLine, Vec<Header>), SipError> {
    if head.len() > limits.max_head {
        return Err(SipError::Limit {
            what: "message head",
            limit: limits.max_head,
            got: head.len(),
        });
    }
    let mut lines = LineIter {
        rest: head,
        line: 0,
    };
    let first = lines.next_line()?.ok_or(SipError::Incomplete)?;
    if first.len() > limits.max_line {
        return Err(SipError::Limit {
            what: "start line",
            limit: limits.max_line,
            got: first.len(),
        });
    }
    let start = parse_start_line(first)?;
    // One UTF-8 check of the whole head; the pieces are then cut out of it (at ASCII
    // delimiters). A head that fails it is checked piece by piece, for the error's line.
    let whole = std::str::from_utf8(head).ok();
    let utf8 = |part, line| cut(head, whole, part, line);
    let mut headers: Vec<Header> = Vec::with_capacity(16);
    while let Some(raw) = lines.next_line()? {
        let line_no = lines.line;
        if raw.first().is_some_and(|b| is_ws(*b)) {
            // Folded continuation of the previous header (RFC 3261 §7.3.1).
            let Some(last) = headers.last_mut() else {
                return Err(SipError::HeaderLine {
                    line: line_no,
                    reason: "continuation line before any header".into(),
                });
            };
            let more = utf8(trim_ws(raw), line_no)?;
            if !more.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(more);
            }
            if last.value.len() > limits.max_line {
                return Err(SipError::Limit {
                    what: "header line",
                    limit: limits.max_line,
                    got: last.value.len(),
                });
            }
            continue;
        }
        if raw.len() > limits.max_line {
            return Err(SipError::Limit {
                what: "header line",
                limit: limits.max_line,
                got: raw.len(),
            });
        }
        let colon = memchr::memchr(b':', raw).ok_or_else(|| SipError::HeaderLine {
            line: line_no,
            reason: "header line without ':'".into(),
        })?;
        let name = trim_ws(&raw[..colon]);
        if name.is_empty() || !name.iter().all(|b| is_token_char(*b)) {
            return Err(SipError::HeaderLine {
                line: line_no,
                reason: format!("invalid header name {:?}", String::from_utf8_lossy(name)),
            });
        }
        if raw[..colon].first().is_some_and(|b| is_ws(*b)) {
            return Err(SipError::HeaderLine {
                line: line_no,
                reason: "header name starts with whitespace".into(),
            });
        }
        if headers.len() >= limits.max_headers {
            return Err(SipError::Limit {
                what: "header count",
                limit: limits.max_headers,
                got: headers.len() + 1,
            });
        }
        let name = utf8(name, line_no)?;
        let value = utf8(trim_ws(&raw[colon + 1..]), line_no)?;
        headers.push(Header {
            name: HeaderName::new(name),
            value: value.to_owned(),
        });
    }
    Ok((start, headers))
}

/// Splits a head into CRLF-terminated lines; a bare CR or LF is an error.
struct LineIter<'a> {
    rest: &'a [u8],
    line: usize,
}

impl<'a> LineIter<'a> {
    fn next_line(&mut self) -> Result<Option<&'a [u8]>, SipError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        self.line += 1;
        let (line, rest) = match memchr::memchr(b'\n', self.rest) {
            Some(i) => {
                if i == 0 || self.rest[i - 1] != b'\r' {
                    return Err(SipError::HeaderLine {
                        line: self.line,
                        reason: "line ends in a bare LF".into(),
                    });
                }
                (&self.rest[..i - 1], &self.rest[i + 1..])
            }
            None => (self.rest, &self.rest[self.rest.len()..]),
        };
        if memchr::memchr(b'\r', line).is_some() {
            return Err(SipError::HeaderLine {
                line: self.line,
                reason: "bare CR inside a line".into(),
            });
        }
        self.rest = rest;
        Ok(Some(line))
    }
}

impl Message {
    /// A request with no headers and an empty body.
    pub fn request(method: Method, uri: impl Into<String>) -> Self {
        Message {
            start: StartLine::Request {
                method,
                uri: uri.into(),
            },
            // Room for a typical request or response without regrowing.
            headers: Vec::with_capacity(12),
            body: Vec::new(),
        }
    }

    /// A response with no headers and an empty body.
    pub fn response(code: u16, reason: impl Into<String>) -> Self {
        Message {
            start: StartLine::Response {
                code,
                reason: reason.into(),
            },
            // Room for a typical request or response without regrowing.
            headers: Vec::with_capacity(12),
            body: Vec::new(),
        }
    }

    /// The method of a request, or `None` for a response.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The first value of the named header (compact forms and case are accepted in `name`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// Every header line with the given name, in order.
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = HeaderName::new(name);
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Appends a header line.
    pub fn push_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push(Header {
            name: HeaderName::new(name),
            value: value.into(),
        });
    }

    /// Inserts a header before every other (a proxy's Via or Record-Route).
    pub fn prepend_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.insert(
            0,
            Header {
                name: HeaderName::new(name),
                value: value.into(),
            },
        );
    }

    /// Replaces every line of the header with one value (appended if absent).
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let name = HeaderName::new(name);
        let value = value.into();
        match self.headers.iter().position(|h| h.name == name) {
            Some(i) => {
                self.headers[i].value = value;
                let mut j = i + 1;
                while j < self.headers.len() {
                    if self.headers[j].name == name {
                        self.headers.remove(j);
                    } else {
                        j += 1;
                    }
                }
            }
            None => self.headers.push(Header { name, value }),
        }
    }

    /// Removes every line of the header.
    pub fn remove_header(&mut self, name: &str) {
        let name = HeaderName::new(name);
        self.headers.retain(|h| h.name != name);
    }

    /// Serialises the message in canonical form: full header names, `Name: value`, and a
    /// Content-Length that matches the body (rewritten in place, or appended if absent).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                out.extend_from_slice(code.to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        let mut wrote_length = false;
        for h in &self.headers {
            if h.name.is("Content-Length") {
                if wrote_length {
                    continue;
                }
                wrote_length = true;
                write_header(out, "Content-Length", &self.body.len().to_string());
            } else {
                write_header(out, h.name.as_str(), &h.value);
            }
        }
        if !wrote_length {
            write_header(out, "Content-Length", &self.body.len().to_string());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// The canonical wire form as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        self.write_to(&mut out);
        out
    }
}

fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl fmt::Display for Message {
    /// The wire form, with the body shown lossily as UTF-8.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<(StartLine, Vec<Header>), SipError> {
        parse_head(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn extension_method_is_kept() {
        let (start, _) = head("FOO-BAR sip:a@b SIP/2.0\r\nVia: x").expect("parses");
        assert_eq!(
            start,
            StartLine::Request {
                method: Method::Extension("FOO-BAR".into()),
                uri: "sip:a@b".into()
            }
        );
    }

    #[test]
    fn folded_lines_are_unfolded_and_space_before_colon_accepted() {
        let (_, h) =
            head("INFO sip:a@b SIP/2.0\r\nSubject  : one\r\n  two\r\n\tthree").expect("parses");
        assert_eq!(h[0].name.as_str(), "Subject");
        assert_eq!(h[0].value, "one two three");
    }

    #[test]
    fn empty_reason_phrase_is_accepted() {
        let (start, _) = head("SIP/2.0 100 \r\nVia: x").expect("parses");
        assert_eq!(
            start,
            StartLine::Response {
                code: 100,
                reason: String::new()
            }
        );
    }

    #[test]
    fn other_versions_are_reported_as_such() {
        assert!(matches!(
            head("OPTIONS sip:a@b SIP/7.0"),
            Err(SipError::Version(_))
        ));
        assert!(matches!(head("SIP/3.0 200 OK"), Err(SipError::Version(_))));
    }

    #[test]
    fn errors_name_the_line() {
        let err = head("INFO sip:a@b SIP/2.0\r\nVia: x\r\nno colon here").expect_err("fails");
        assert_eq!(err.to_string(), "line 3: header line without ':'");
    }

    #[test]
    fn header_count_limit_is_enforced() {
        let limits = Limits {
            max_headers: 2,
            ..Limits::default()
        };
        let err = parse_head(b"INFO sip:a@b SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3", &limits)
            .expect_err("fails");
        assert!(matches!(
            err,
            SipError::Limit {
                what: "header count",
                ..
            }
        ));
    }
}
