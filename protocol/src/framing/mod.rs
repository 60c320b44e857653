//! CSTA over TCP: the ECMA-323 Annex J frame (`00 00`, u16 big-endian total length including
//! the 8-byte header, 4 ASCII-digit invoke ID, one XML document), and the NUL-terminated variant
//! some hosted PBXs use. Decoders are incremental: push whatever the socket delivered, then
//! drain complete frames.

use thiserror::Error;

/// The invoke ID of events.
pub const EVENT_INVOKE_ID: u16 = 9999;
/// Annex J header length.
pub const HEADER_LEN: usize = 8;
/// Largest Annex J frame (the length field is 16 bits).
pub const MAX_FRAME: usize = 65_535;

/// A framing problem. After one, the stream is out of step and the link should be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The length field is below the header size.
    #[error("Annex J length {0} is shorter than the 8-byte header")]
    TooShort(usize),
    /// A frame to encode, or a NUL-terminated document, is too large.
    #[error("frame of {0} bytes exceeds the limit of {1}")]
    TooLong(usize, usize),
    /// The invoke ID to encode is outside 0..=9999.
    #[error("invoke ID {0} is outside 0..=9999")]
    InvokeId(u32),
}

/// The invoke ID field of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvokeId {
    /// Four ASCII digits.
    Id(u16),
    /// Not four digits: the frame cannot be correlated (logged, not fatal).
    Invalid([u8; 4]),
}

impl InvokeId {
    /// Whether this is the event ID 9999.
    pub fn is_event(self) -> bool {
        self == InvokeId::Id(EVENT_INVOKE_ID)
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Invoke ID (`None` for NUL-terminated framing, which has none).
    pub invoke_id: Option<InvokeId>,
    /// Header bytes 0-1 when they were not `00 00` (tolerated, reported).
    pub odd_version: Option<[u8; 2]>,
    /// The XML document.
    pub xml: Vec<u8>,
}

/// Encodes one Annex J frame; the length is computed on the encoded bytes.
pub fn encode_annex_j(invoke_id: u16, xml: &[u8]) -> Result<Vec<u8>, FrameError> {
    if invoke_id > 9999 {
        return Err(FrameError::InvokeId(invoke_id.into()));
    }
    let total = HEADER_LEN
        .checked_add(xml.len())
        .filter(|t| *t <= MAX_FRAME)
        .ok_or(FrameError::TooLong(
            xml.len().saturating_add(HEADER_LEN),
            MAX_FRAME,
        ))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(total as u16).to_be_bytes());
    out.extend_from_slice(format!("{invoke_id:04}").as_bytes());
    out.extend_from_slice(xml);
    Ok(out)
}

/// Encodes one NUL-terminated document.
pub fn encode_nul(xml: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(xml.len() + 1);
    out.extend_from_slice(xml);
    out.push(0);
    out
}

/// A growable receive buffer with a read position.
#[derive(Default)]
struct Buffer {
    buf: Vec<u8>,
    pos: usize,
}

impl Buffer {
    fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.pos..]
    }
}

/// Incremental Annex J decoder.
#[derive(Default)]
pub struct AnnexJDecoder {
    buf: Buffer,
}

impl AnnexJDecoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.push(data);
    }

    /// Bytes buffered but not yet returned in a frame.
    pub fn buffered(&self) -> usize {
        self.buf.data().len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let data = self.buf.data();
        if data.len() < 4 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if len < HEADER_LEN {
            return Err(FrameError::TooShort(len));
        }
        if data.len() < len {
            return Ok(None);
        }
        let version = [data[0], data[1]];
        let id = [data[4], data[5], data[6], data[7]];
        let invoke_id = if id.iter().all(u8::is_ascii_digit) {
            InvokeId::Id(id.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
        } else {
            InvokeId::Invalid(id)
        };
        let frame = Frame {
            invoke_id: Some(invoke_id),
            odd_version: (version != [0, 0]).then_some(version),
            xml: data[HEADER_LEN..len].to_vec(),
        };
        self.buf.pos += len;
        Ok(Some(frame))
    }
}

/// Incremental decoder for NUL-terminated XML documents.
pub struct NulDecoder {
    buf: Buffer,
    scanned: usize,
    max_len: usize,
}

impl NulDecoder {
    /// A decoder refusing documents longer than `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        NulDecoder {
            buf: Buffer::default(),
            scanned: 0,
            max_len,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        let before = self.buf.pos;
        self.buf.push(data);
        if self.buf.pos != before {
            self.scanned = 0; // the buffer was compacted
        }
    }

    /// The next complete document, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let data = self.buf.data();
        match memchr::memchr(0, &data[self.scanned..]) {
            Some(i) => {
                let end = self.scanned + i;
                let frame = Frame {
                    invoke_id: None,
                    odd_version: None,
                    xml: data[..end].to_vec(),
                };
                self.buf.pos += end + 1;
                self.scanned = 0;
                Ok(Some(frame))
            }
            None if data.len() > self.max_len => Err(FrameError::TooLong(data.len(), self.max_len)),
            None => {
                self.scanned = data.len();
                Ok(None)
            }
        }
    }
}

/// Which CSTA framing a link uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Framing {
    /// ECMA-323 Annex J: 8-byte header with length and invoke ID.
    #[default]
    AnnexJ,
    /// One XML document per NUL byte, no invoke IDs.
    Nul,
}

/// One incremental decoder for either framing, and the encoder to match: what a CSTA link
/// reads and writes, whichever framing it was configured with.
pub struct CstaFrameDecoder(Decoder);

enum Decoder {
    AnnexJ(AnnexJDecoder),
    Nul(NulDecoder),
}

impl CstaFrameDecoder {
    /// A decoder for `framing`; NUL-terminated documents longer than `max_len` bytes are
    /// refused (Annex J frames are bounded by their 16-bit length field).
    pub fn new(framing: Framing, max_len: usize) -> Self {
        match framing {
            Framing::AnnexJ => CstaFrameDecoder(Decoder::AnnexJ(AnnexJDecoder::new())),
            Framing::Nul => CstaFrameDecoder(Decoder::Nul(NulDecoder::new(max_len))),
        }
    }

    /// The framing this decoder reads.
    pub fn framing(&self) -> Framing {
        match &self.0 {
            Decoder::AnnexJ(_) => Framing::AnnexJ,
            Decoder::Nul(_) => Framing::Nul,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        match &mut self.0 {
            Decoder::AnnexJ(d) => d.push(data),
            Decoder::Nul(d) => d.push(data),
        }
    }

    /// Bytes buffered but not yet returned in a frame: a frame begun and not finished.
    pub fn buffered(&self) -> usize {
        match &self.0 {
            Decoder::AnnexJ(d) => d.buffered(),
            Decoder::Nul(d) => d.buf.data().len(),
        }
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        match &mut self.0 {
            Decoder::AnnexJ(d) => d.next_frame(),
            Decoder::Nul(d) => d.next_frame(),
        }
    }

    /// Encodes one document in this decoder's framing (see [`encode`]).
    pub fn encode(&self, invoke_id: u16, xml: &[u8]) -> Result<Vec<u8>, FrameError> {
        encode(self.framing(), invoke_id, xml)
    }
}

/// Encodes one document in `framing`: an Annex J frame with `invoke_id`, or the document and its
/// NUL (which carries no invoke ID and so never fails).
pub fn encode(framing: Framing, invoke_id: u16, xml: &[u8]) -> Result<Vec<u8>, FrameError> {
    match framing {
        Framing::AnnexJ => encode_annex_j(invoke_id, xml),
        Framing::Nul => Ok(encode_nul(xml)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pbx-csta.md` §3.4 (b): ResetApplicationSessionTimer with invoke ID 42.
    const RESET_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><ResetApplicationSessionTimer xmlns="http://www.ecma-international.org/standards/ecma-354/appl_session"><sessionID>5A3F9C2E</sessionID><requestedSessionDuration>180</requestedSessionDuration></ResetApplicationSessionTimer>"#;

    #[test]
    fn doc_example_b_reset_timer_frame() {
        assert_eq!(RESET_XML.len(), 260);
        let frame = encode_annex_j(42, RESET_XML.as_bytes()).expect("encodes");
        assert_eq!(frame.len(), 268);
        assert_eq!(
            &frame[..16],
            &[
                0x00, 0x00, 0x01, 0x0c, 0x30, 0x30, 0x34, 0x32, 0x3c, 0x3f, 0x78, 0x6d, 0x6c, 0x20,
                0x76, 0x65
            ]
        );
        let mut d = AnnexJDecoder::new();
        d.push(&frame);
        let f = d.next_frame().expect("decodes").expect("complete");
        assert_eq!(f.invoke_id, Some(InvokeId::Id(42)));
        assert_eq!(f.xml, RESET_XML.as_bytes());
    }

    #[test]
    fn doc_example_b_response_header() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><ResetApplicationSessionTimerPosResponse xmlns="http://www.ecma-international.org/standards/ecma-354/appl_session"><actualSessionDuration>180</actualSessionDuration></ResetApplicationSessionTimerPosResponse>"#;
        assert_eq!(xml.len(), 245);
        let frame = encode_annex_j(42, xml.as_bytes()).expect("encodes");
        assert_eq!(
            &frame[..8],
            &[0x00, 0x00, 0x00, 0xfd, 0x30, 0x30, 0x34, 0x32]
        );
    }

    #[test]
    fn doc_example_c_keepalive_bytes() {
        let bytes = [
            0x00, 0x00, 0x00, 0x15, 0x30, 0x30, 0x30, 0x30, 0x3c, 0x6b, 0x65, 0x65, 0x70, 0x61,
            0x6c, 0x69, 0x76, 0x65, 0x20, 0x2f, 0x3e,
        ];
        assert_eq!(encode_annex_j(0, b"<keepalive />").expect("encodes"), bytes);
        let mut d = AnnexJDecoder::new();
        d.push(&bytes);
        let f = d.next_frame().expect("decodes").expect("complete");
        assert_eq!(
            (f.invoke_id, f.xml.as_slice()),
            (Some(InvokeId::Id(0)), &b"<keepalive />"[..])
        );
    }

    #[test]
    fn doc_example_a_event_header() {
        // 995 bytes of XML give 0x03EB; the event invoke ID is 9999.
        let xml = vec![b'x'; 995];
        let frame = encode_annex_j(EVENT_INVOKE_ID, &xml).expect("encodes");
        assert_eq!(&frame[..8], b"\x00\x00\x03\xeb9999");
        let mut d = AnnexJDecoder::new();
        d.push(&frame);
        assert!(
            d.next_frame()
                .expect("decodes")
                .expect("complete")
                .invoke_id
                .is_some_and(InvokeId::is_event)
        );
    }

    #[test]
    fn length_is_counted_in_bytes() {
        let xml = "<a>é€</a>";
        assert_eq!(
            encode_annex_j(1, xml.as_bytes()).expect("encodes")[3] as usize,
            8 + xml.len()
        );
    }

    #[test]
    fn split_anywhere_and_pipelined() {
        let mut stream = encode_annex_j(1, b"<a/>").expect("encodes");
        stream.extend(encode_annex_j(9999, b"<b/>").expect("encodes"));
        for cut in 0..=stream.len() {
            let mut d = AnnexJDecoder::new();
            let mut frames = Vec::new();
            d.push(&stream[..cut]);
            while let Some(f) = d.next_frame().expect("decodes") {
                frames.push(f);
            }
            d.push(&stream[cut..]);
            while let Some(f) = d.next_frame().expect("decodes") {
                frames.push(f);
            }
            assert_eq!(frames.len(), 2, "cut at {cut}");
            assert_eq!(frames[1].xml, b"<b/>");
        }
    }

    #[test]
    fn odd_header_bytes_and_ids_are_tolerated_and_reported() {
        let mut d = AnnexJDecoder::new();
        d.push(b"00\x00\x0cab12<a/>");
        let f = d.next_frame().expect("decodes").expect("complete");
        assert_eq!(f.odd_version, Some(*b"00"));
        assert_eq!(f.invoke_id, Some(InvokeId::Invalid(*b"ab12")));
    }

    #[test]
    fn bad_lengths_are_rejected() {
        let mut d = AnnexJDecoder::new();
        d.push(b"\x00\x00\x00\x07xxxx");
        assert_eq!(d.next_frame(), Err(FrameError::TooShort(7)));
        assert!(matches!(
            encode_annex_j(1, &vec![b'x'; 65_528]),
            Err(FrameError::TooLong(..))
        ));
        assert!(encode_annex_j(1, &vec![b'x'; 65_527]).is_ok());
        assert!(matches!(
            encode_annex_j(10_000, b"<a/>"),
            Err(FrameError::InvokeId(10_000))
        ));
    }

    #[test]
    fn nul_terminated_documents() {
        let mut d = NulDecoder::new(100);
        d.push(b"<a/>\0<b");
        assert_eq!(
            d.next_frame().expect("decodes").expect("complete").xml,
            b"<a/>"
        );
        assert_eq!(d.next_frame().expect("decodes"), None);
        d.push(b"/>\0");
        assert_eq!(
            d.next_frame().expect("decodes").expect("complete").xml,
            b"<b/>"
        );
        let mut d = NulDecoder::new(4);
        d.push(b"<abcdef");
        assert!(d.next_frame().is_err());
        assert_eq!(encode_nul(b"<a/>"), b"<a/>\0");
    }

    #[test]
    fn one_decoder_for_either_framing_round_trips_pipelined_documents() {
        for framing in [Framing::AnnexJ, Framing::Nul] {
            let d = CstaFrameDecoder::new(framing, 100);
            assert_eq!(d.framing(), framing);
            let mut stream = d.encode(7, b"<a/>").expect("encodes");
            stream.extend(encode(framing, EVENT_INVOKE_ID, b"<b/>").expect("encodes"));
            for cut in 0..=stream.len() {
                let mut d = CstaFrameDecoder::new(framing, 100);
                let mut frames = Vec::new();
                for part in [&stream[..cut], &stream[cut..]] {
                    d.push(part);
                    while let Some(f) = d.next_frame().expect("decodes") {
                        frames.push(f);
                    }
                }
                let got: Vec<_> = frames.iter().map(|f| (f.invoke_id, &f.xml[..])).collect();
                let want = match framing {
                    Framing::AnnexJ => vec![
                        (Some(InvokeId::Id(7)), &b"<a/>"[..]),
                        (Some(InvokeId::Id(EVENT_INVOKE_ID)), b"<b/>"),
                    ],
                    Framing::Nul => vec![(None, &b"<a/>"[..]), (None, b"<b/>")],
                };
                assert_eq!(got, want, "{framing:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn each_framing_keeps_its_own_limits() {
        // Annex J refuses what its length field cannot hold and invoke IDs past 9999; NUL has
        // neither, but its decoder refuses documents past the given maximum.
        let big = vec![b'x'; MAX_FRAME];
        assert!(encode(Framing::AnnexJ, 1, &big).is_err());
        assert_eq!(
            encode(Framing::Nul, 1, &big).map(|b| b.len()),
            Ok(MAX_FRAME + 1)
        );
        assert!(encode(Framing::AnnexJ, 10_000, b"<a/>").is_err());
        assert_eq!(
            encode(Framing::Nul, 10_000, b"<a/>"),
            Ok(b"<a/>\0".to_vec())
        );
        let mut d = CstaFrameDecoder::new(Framing::Nul, 4);
        d.push(b"<abcdef");
        assert_eq!(d.next_frame(), Err(FrameError::TooLong(7, 4)));
        let mut d = CstaFrameDecoder::new(Framing::AnnexJ, 4);
        d.push(&encode_annex_j(1, b"<abcdef/>").expect("encodes"));
        assert!(
            d.next_frame().expect("decodes").is_some(),
            "max_len is for NUL only"
        );
    }
}
