//! What a stream element answers a request whose head does not parse (a broken start line, a
//! SIP version other than 2.0, a header line without a colon): RFC 3261 wants 400 (505 for the
//! version, §21.5.6) rather than silence, and such a response is built from the raw head, since
//! there is no parsed message to answer. Its Via, From, To, Call-ID and CSeq lines are copied as
//! they came, so the sender can match the answer to its transaction.

use super::error::SipError;

/// A head that could not be parsed, read line by line as text.
struct RawHead<'a> {
    lines: Vec<&'a str>,
}

impl<'a> RawHead<'a> {
    fn new(head: &'a [u8]) -> Option<RawHead<'a>> {
        let text = std::str::from_utf8(head).ok()?;
        Some(RawHead {
            lines: text.split("\r\n").collect(),
        })
    }

    /// Header lines named `full` or its compact form, as `Name: value` with the value as sent.
    fn named(&self, full: &str, compact: Option<&str>) -> Vec<(&'a str, &'a str)> {
        self.lines
            .iter()
            .skip(1)
            .filter_map(|l| {
                let (name, value) = l.split_once(':')?;
                let name = name.trim();
                let hit = name.eq_ignore_ascii_case(full)
                    || compact.is_some_and(|c| name.eq_ignore_ascii_case(c));
                hit.then_some((name, value.trim()))
            })
            .collect()
    }
}

/// The Content-Length a head declares, read without parsing the rest of it: `None` when it has
/// none, several, or one that is not a number (then the stream cannot be framed past it).
pub(crate) fn raw_content_length(head: &[u8]) -> Option<usize> {
    let raw = RawHead::new(head)?;
    match raw.named("Content-Length", Some("l")).as_slice() {
        [(_, value)] => value.parse().ok(),
        _ => None,
    }
}

/// The stateless answer to a request whose `head` fails to parse with `error`; `None` when
/// the head is a response's (never answered), is not text, or lacks one of the headers a
/// response must copy.
pub fn answer_unparsable(head: &[u8], error: &SipError) -> Option<Vec<u8>> {
    let raw = RawHead::new(head)?;
    let first = raw.lines.first()?;
    if first.starts_with("SIP/") || first.split_whitespace().count() < 2 {
        return None;
    }
    let (code, reason) = match error {
        SipError::Version(_) => (505, "Version Not Supported"),
        _ => (400, "Bad Request"),
    };
    let vias = raw.named("Via", Some("v"));
    let one = |full, compact| match raw.named(full, compact).as_slice() {
        [(_, value)] => Some(*value),
        _ => None,
    };
    let (from, to, call_id, cseq) = (
        one("From", Some("f"))?,
        one("To", Some("t"))?,
        one("Call-ID", Some("i"))?,
        one("CSeq", None)?,
    );
    if vias.is_empty() {
        return None;
    }
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for (_, v) in vias {
        out.push_str("Via: ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("From: ");
    out.push_str(from);
    out.push_str("\r\nTo: ");
    out.push_str(to);
    // The answering element's tag (RFC 3261 §8.2.6.2), unless the request had one.
    if !to.to_ascii_lowercase().contains(";tag=") {
        out.push_str(";tag=unparsable");
    }
    out.push_str("\r\nCall-ID: ");
    out.push_str(call_id);
    out.push_str("\r\nCSeq: ");
    out.push_str(cseq);
    // What was wrong, printable ASCII only, without the sender's quotes.
    let why: String = error
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| *c != '"' && *c != '\\')
        .take(100)
        .collect();
    out.push_str(&format!(
        "\r\nWarning: 399 rcc \"{why}\"\r\nContent-Length: 0\r\n\r\n"
    ));
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "OPTIONS sip:t.watson@example.org SIP/7.0\r\nVia:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\nf:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\r\nTo:      T. Watson <sip:t.watson@example.org>\r\ni: badvers.31417@c.example.com\r\nCSeq:    1 OPTIONS\r\nl: 0";

    #[test]
    fn a_bad_version_gets_505_with_the_transaction_headers_copied() {
        let answer = answer_unparsable(HEAD.as_bytes(), &SipError::Version("SIP/7.0".into()))
            .expect("an answer");
        let text = String::from_utf8(answer).expect("text");
        assert!(
            text.starts_with("SIP/2.0 505 Version Not Supported\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nVia: SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\n"));
        assert!(text.contains("\r\nFrom: A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\r\n"));
        assert!(text.contains("\r\nTo: T. Watson <sip:t.watson@example.org>;tag=unparsable\r\n"));
        assert!(text.contains("\r\nCall-ID: badvers.31417@c.example.com\r\nCSeq: 1 OPTIONS\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        assert_eq!(raw_content_length(HEAD.as_bytes()), Some(0));
    }

    #[test]
    fn responses_and_heads_without_the_transaction_headers_get_nothing() {
        let e = SipError::StartLine("x".into());
        assert_eq!(answer_unparsable(b"SIP/2.0 2000 OK\r\nVia: x", &e), None);
        assert_eq!(
            answer_unparsable(b"OPTIONS sip:x SIP/2.0\r\nFrom: a\r\nTo: b", &e),
            None
        );
        assert_eq!(raw_content_length(b"X\r\nContent-Length: 1\r\nl: 2"), None);
        assert_eq!(raw_content_length(b"X\r\nContent-Length: ten"), None);
    }
}
