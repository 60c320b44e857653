//! Framing: SIP over a byte stream (TCP, TLS) and over datagrams (UDP).

use memchr::memmem;

use super::error::SipError;
use super::headers::parse_content_length;
use super::limits::Limits;
use super::message::{Header, Message, StartLine, parse_head};
use super::reject::{answer_unparsable, raw_content_length};

/// What a stream yields: a message, or an RFC 5626 keep-alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A complete message.
    Message(Message),
    /// A double CRLF keep-alive ping; answer it with a single CRLF.
    Ping,
    /// A single CRLF: a pong, or a stray line ending between messages. Nothing to do.
    Pong,
    /// A message whose head does not parse; see [`Rejected`].
    Rejected(Rejected),
}

/// A message whose head does not parse (start line, SIP version, a header line, its
/// Content-Length), with the stateless answer RFC 3261 asks for when it was a request (400, or
/// 505 for the version). When its Content-Length could still be read the stream goes on after
/// its body; otherwise framing is lost, and the next item is the error: send the answer, then
/// close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// What is wrong.
    pub error: SipError,
    /// The answer to send, for a request that carries the headers a response copies.
    pub answer: Option<Vec<u8>>,
    /// Nothing after it can be framed.
    pub framing_lost: bool,
}

struct PendingHead {
    start: StartLine,
    headers: Vec<Header>,
    /// Offset of the body from the read position.
    body_at: usize,
    body_len: usize,
}

/// Incremental framer for a SIP byte stream. Feed it whatever the socket delivered with
/// [`push`](Self::push) and drain complete items with [`next_item`](Self::next_item). Messages
/// split at any byte and several messages in one read are handled. Every message must carry
/// exactly one valid Content-Length (RFC 3261 §18.3). After an error framing is lost: the
/// framer keeps returning that error and the connection should be closed.
pub struct StreamFramer {
    buf: Vec<u8>,
    pos: usize,
    /// Where the search for the end of the head resumes.
    scanned: usize,
    limits: Limits,
    pending: Option<PendingHead>,
    /// Body bytes of a rejected message still to be dropped.
    discard: usize,
    failed: Option<SipError>,
}

impl StreamFramer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            buf: Vec::with_capacity(4096),
            pos: 0,
            scanned: 0,
            limits,
            pending: None,
            discard: 0,
            failed: None,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        let skip = self.discard.min(data.len());
        self.discard -= skip;
        let data = &data[skip..];
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.scanned -= self.pos;
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet returned as items.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next complete item, `Ok(None)` if more data is needed.
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, SipError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.advance();
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// A head of `end` bytes that does not parse: its answer, and the stream skipped past its
    /// body when its Content-Length can still be read.
    #[cold]
    #[inline(never)]
    fn reject(&mut self, end: usize, error: SipError) -> StreamItem {
        let head = &self.buf[self.pos..self.pos + end];
        let answer = answer_unparsable(head, &error);
        let body = match error {
            SipError::ContentLength(_) => None,
            _ => raw_content_length(head).filter(|n| *n <= self.limits.max_body),
        };
        self.consume(end + 4);
        match body {
            Some(n) => {
                // What of the body is here goes now, the rest as it arrives (`push`).
                let here = n.min(self.buffered());
                self.consume(here);
                self.discard = n - here;
            }
            None => self.failed = Some(error.clone()),
        }
        StreamItem::Rejected(Rejected {
            error,
            answer,
            framing_lost: body.is_none(),
        })
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.scanned = self.pos;
    }

    fn advance(&mut self) -> Result<Option<StreamItem>, SipError> {
        if self.pending.is_none() {
            let data = &self.buf[self.pos..];
            if data.starts_with(b"\r\n\r\n") {
                self.consume(4);
                return Ok(Some(StreamItem::Ping));
            }
            if data.starts_with(b"\r\n") {
                if data.len() == 3 && data[2] == b'\r' {
                    return Ok(None); // could be the rest of a ping
                }
                self.consume(2);
                return Ok(Some(StreamItem::Pong));
            }
            let from = self.scanned.max(self.pos).saturating_sub(3).max(self.pos);
            let Some(end) =
                memmem::find(&self.buf[from..], b"\r\n\r\n").map(|i| from + i - self.pos)
            else {
                self.scanned = self.buf.len();
                let got = self.buffered();
                if got > self.limits.max_head {
                    return Err(SipError::Limit {
                        what: "message head",
                        limit: self.limits.max_head,
                        got,
                    });
                }
                return Ok(None);
            };
            let (start, headers) =
                match parse_head(&self.buf[self.pos..self.pos + end], &self.limits) {
                    Ok(p) => p,
                    Err(e @ SipError::Limit { .. }) => return Err(e),
                    Err(error) => return Ok(Some(self.reject(end, error))),
                };
            let body_len = match stream_content_length(&headers, &self.limits) {
                Ok(n) => n,
                Err(e @ SipError::Limit { .. }) => return Err(e),
                Err(error) => return Ok(Some(self.reject(end, error))),
            };
            self.pending = Some(PendingHead {
                start,
                headers,
                body_at: end + 4,
                body_len,
            });
        }
        let Some(p) = &self.pending else {
            return Ok(None);
        };
        let total = p.body_at + p.body_len; // both bounded by limits: cannot overflow
        if self.buffered() < total {
            return Ok(None);
        }
        let Some(p) = self.pending.take() else {
            return Ok(None);
        };
        let body_start = self.pos + p.body_at;
        let body = self.buf[body_start..body_start + p.body_len].to_vec();
        self.consume(total);
        Ok(Some(StreamItem::Message(Message {
            start: p.start,
            headers: p.headers,
            body,
        })))
    }
}

fn content_lengths(headers: &[Header]) -> impl Iterator<Item = &str> {
    headers
        .iter()
        .filter(|h| h.name.is("Content-Length"))
        .map(|h| h.value.as_str())
}

fn stream_content_length(headers: &[Header], limits: &Limits) -> Result<usize, SipError> {
    let mut values = content_lengths(headers);
    let value = values
        .next()
        .ok_or_else(|| SipError::ContentLength("missing (required on stream transports)".into()))?;
    let extra = values.count();
    if extra > 0 {
        return Err(SipError::ContentLength(format!(
            "appears {} times",
            extra + 1
        )));
    }
    let len = parse_content_length(value).map_err(SipError::ContentLength)?;
    if len > limits.max_body {
        return Err(SipError::Limit {
            what: "body",
            limit: limits.max_body,
            got: len,
        });
    }
    Ok(len)
}

/// Parses one UDP datagram. Without Content-Length the body is the rest of the datagram; with
/// one, octets after the declared body are ignored (RFC 3261 §18.3) and a body shorter than
/// declared is an error. A datagram without the blank line is read as a head without body.
pub fn parse_datagram(data: &[u8], limits: &Limits) -> Result<Message, SipError> {
    let (head, rest) = match memmem::find(data, b"\r\n\r\n") {
        Some(end) => (&data[..end], &data[end + 4..]),
        None => (
            data.strip_suffix(b"\r\n").unwrap_or(data),
            &data[data.len()..],
        ),
    };
    if head.is_empty() {
        return Err(SipError::Incomplete);
    }
    let (start, headers) = parse_head(head, limits)?;
    let declared: Vec<&str> = content_lengths(&headers).collect();
    let body_len = match declared.as_slice() {
        [] => rest.len(),
        [one] => {
            let len = parse_content_length(one).map_err(SipError::ContentLength)?;
            if len > rest.len() {
                return Err(SipError::ContentLength(format!(
                    "declares {len} bytes but the datagram holds {}",
                    rest.len()
                )));
            }
            len
        }
        many => {
            return Err(SipError::ContentLength(format!(
                "appears {} times",
                many.len()
            )));
        }
    };
    if body_len > limits.max_body {
        return Err(SipError::Limit {
            what: "body",
            limit: limits.max_body,
            got: body_len,
        });
    }
    Ok(Message {
        start,
        headers,
        body: rest[..body_len].to_vec(),
    })
}

impl Message {
    /// Parses one complete message with datagram rules and default limits.
    pub fn parse(data: &[u8]) -> Result<Message, SipError> {
        parse_datagram(data, &Limits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &[u8] = b"INFO sip:gw@rcc.example.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\nl: 5\r\n\r\nhello";

    fn drain(f: &mut StreamFramer) -> Vec<StreamItem> {
        let mut out = Vec::new();
        while let Some(item) = f.next_item().expect("frames") {
            out.push(item);
        }
        out
    }

    #[test]
    fn keepalives_and_pipelined_messages() {
        let mut f = StreamFramer::new(Limits::default());
        let mut data = b"\r\n\r\n".to_vec();
        data.extend_from_slice(INFO);
        data.extend_from_slice(b"\r\n");
        data.extend_from_slice(INFO);
        f.push(&data);
        let items = drain(&mut f);
        assert_eq!(items.len(), 4);
        assert_eq!(items[0], StreamItem::Ping);
        assert!(matches!(&items[1], StreamItem::Message(m) if m.body == b"hello"));
        assert_eq!(items[2], StreamItem::Pong);
        assert!(matches!(&items[3], StreamItem::Message(_)));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn every_split_point_yields_the_same_message() {
        for cut in 0..=INFO.len() {
            let mut f = StreamFramer::new(Limits::default());
            f.push(&INFO[..cut]);
            let mut items = drain(&mut f);
            f.push(&INFO[cut..]);
            items.extend(drain(&mut f));
            assert_eq!(items.len(), 1, "cut at {cut}");
        }
    }

    #[test]
    fn missing_or_double_content_length_is_a_framing_error() {
        let lost = |f: &mut StreamFramer| {
            matches!(
                f.next_item(),
                Ok(Some(StreamItem::Rejected(Rejected {
                    error: SipError::ContentLength(_),
                    framing_lost: true,
                    ..
                })))
            )
        };
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"INFO sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert!(lost(&mut f));
        assert!(matches!(f.next_item(), Err(SipError::ContentLength(_))));
        assert!(f.next_item().is_err(), "stays failed");
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"INFO sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 1\r\n\r\nx");
        assert!(lost(&mut f));
    }

    #[test]
    fn a_broken_start_line_is_answered_and_the_stream_goes_on_past_its_body() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"OPTIONS  sip:a@b  SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody");
        f.push(INFO);
        let Ok(Some(StreamItem::Rejected(r))) = f.next_item() else {
            panic!("not rejected");
        };
        assert!(!r.framing_lost);
        let answer = String::from_utf8(r.answer.expect("an answer")).expect("text");
        assert!(
            answer.starts_with("SIP/2.0 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(matches!(f.next_item(), Ok(Some(StreamItem::Message(_)))));
        // The body arriving in later reads is skipped as it comes.
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"OPTIONS  sip:a@b  SIP/2.0\r\nContent-Length: 4\r\n\r\nbo");
        assert!(matches!(
            f.next_item(),
            Ok(Some(StreamItem::Rejected(Rejected {
                framing_lost: false,
                ..
            })))
        ));
        f.push(b"dy");
        f.push(INFO);
        assert!(matches!(f.next_item(), Ok(Some(StreamItem::Message(_)))));
    }

    #[test]
    fn huge_content_length_is_refused_before_buffering() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"INFO sip:a@b SIP/2.0\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        assert!(matches!(
            f.next_item(),
            Ok(Some(StreamItem::Rejected(Rejected {
                error: SipError::ContentLength(_),
                framing_lost: true,
                ..
            })))
        ));
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"INFO sip:a@b SIP/2.0\r\nContent-Length: 999999999\r\n\r\n");
        assert!(matches!(
            f.next_item(),
            Err(SipError::Limit { what: "body", .. })
        ));
    }

    #[test]
    fn endless_head_hits_the_limit() {
        let limits = Limits {
            max_head: 100,
            ..Limits::default()
        };
        let mut f = StreamFramer::new(limits);
        f.push(b"INFO sip:a@b SIP/2.0\r\n");
        for _ in 0..20 {
            f.push(b"X-Filler: 0123456789\r\n");
        }
        assert!(matches!(
            f.next_item(),
            Err(SipError::Limit {
                what: "message head",
                ..
            })
        ));
    }
}
