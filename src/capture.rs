//! Reading captures: pcap and pcapng (pcap-parser), Ethernet, Linux cooked (SLL, SLL2), BSD
//! loopback and raw IP link types, IPv4 and IPv6 (etherparse); TCP streams reassembled in order
//! with retransmissions dropped and missing data reported, never guessed; SIP over UDP. Streams
//! are classified by content (SIP, CSTA with Annex J framing, CSTA NUL-terminated), the gateway is
//! found (it receives the initial INVITEs and sends the CSTA requests), and the exchange comes
//! out as a normalized ladder.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{Context, anyhow};
use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError};
use rcc_protocol::framing::{AnnexJDecoder, InvokeId, NulDecoder};
use rcc_protocol::sip::{Limits, Message, StreamFramer, StreamItem};

/// A TCP segment or UDP datagram, as captured.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Microseconds since the epoch.
    pub ts_us: u64,
    /// Source.
    pub src: SocketAddr,
    /// Destination.
    pub dst: SocketAddr,
    /// TCP sequence number (None for UDP).
    pub seq: Option<u32>,
    /// SYN flag.
    pub syn: bool,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Everything read from a capture file.
#[derive(Debug, Default)]
pub struct Capture {
    /// Packets in file order.
    pub packets: Vec<Packet>,
    /// Problems met while reading (truncation, unknown link types, undecodable frames).
    pub problems: Vec<String>,
}

fn linux_sll2_to_ip(data: &[u8]) -> Option<&[u8]> {
    // SLL2: protocol type (2), reserved (2), interface index (4), ARPHRD (2), packet type (1),
    // address length (1), address (8): 20 bytes, then the network layer.
    data.get(20..)
}

fn null_to_ip(data: &[u8]) -> Option<&[u8]> {
    // BSD loopback: a 4-byte address family, then IP.
    data.get(4..)
}

fn packet_of(link: i32, data: &[u8], ts_us: u64) -> Result<Option<Packet>, String> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let sliced = match link {
        1 => SlicedPacket::from_ethernet(data),
        113 => SlicedPacket::from_linux_sll(data),
        276 => match linux_sll2_to_ip(data) {
            Some(ip) => SlicedPacket::from_ip(ip),
            None => return Err("truncated SLL2 header".into()),
        },
        0 | 108 => match null_to_ip(data) {
            Some(ip) => SlicedPacket::from_ip(ip),
            None => return Err("truncated loopback header".into()),
        },
        101 | 228 | 229 | 12 | 14 => SlicedPacket::from_ip(data),
        other => return Err(format!("link type {other} is not supported")),
    }
    .map_err(|e| format!("undecodable frame: {e}"))?;
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        ),
        Some(NetSlice::Ipv6(v6)) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        ),
        _ => return Ok(None),
    };
    Ok(match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => Some(Packet {
            ts_us,
            src: SocketAddr::new(src_ip, t.source_port()),
            dst: SocketAddr::new(dst_ip, t.destination_port()),
            seq: Some(t.sequence_number()),
            syn: t.syn(),
            payload: t.payload().to_vec(),
        }),
        Some(TransportSlice::Udp(u)) => Some(Packet {
            ts_us,
            src: SocketAddr::new(src_ip, u.source_port()),
            dst: SocketAddr::new(dst_ip, u.destination_port()),
            seq: None,
            syn: false,
            payload: u.payload().to_vec(),
        }),
        _ => None,
    })
}

/// Reads a pcap or pcapng file.
pub fn read(path: &Path) -> anyhow::Result<Capture> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = pcap_parser::create_reader(1 << 16, file)
        .map_err(|e| anyhow!("{}: not a pcap or pcapng file ({e:?})", path.display()))?;
    let mut cap = Capture::default();
    let mut links: Vec<i32> = Vec::new();
    let mut legacy_link = 1;
    let mut size = 1 << 16;
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => legacy_link = h.network.0,
                    PcapBlockOwned::Legacy(b) => {
                        let ts = u64::from(b.ts_sec) * 1_000_000 + u64::from(b.ts_usec);
                        match packet_of(legacy_link, b.data, ts) {
                            Ok(Some(p)) => cap.packets.push(p),
                            Ok(None) => {}
                            Err(e) => cap.problems.push(e),
                        }
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => links.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        links.push(idb.linktype.0)
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(e)) => {
                        let link = links.get(e.if_id as usize).copied().unwrap_or(1);
                        let ts = (u64::from(e.ts_high) << 32) | u64::from(e.ts_low);
                        let data = &e.data[..(e.caplen as usize).min(e.data.len())];
                        match packet_of(link, data, ts) {
                            Ok(Some(p)) => cap.packets.push(p),
                            Ok(None) => {}
                            Err(e) => cap.problems.push(e),
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(s)) => {
                        let link = links.first().copied().unwrap_or(1);
                        match packet_of(link, s.data, 0) {
                            Ok(Some(p)) => cap.packets.push(p),
                            Ok(None) => {}
                            Err(e) => cap.problems.push(e),
                        }
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                reader
                    .refill()
                    .map_err(|e| anyhow!("{}: read error {e:?}", path.display()))?;
            }
            Err(PcapError::BufferTooSmall) => {
                size *= 2;
                if size > 1 << 26 || !reader.grow(size) {
                    return Err(anyhow!("{}: a block is larger than 64 MiB", path.display()));
                }
            }
            Err(PcapError::UnexpectedEof) => {
                cap.problems.push("the capture is truncated".into());
                break;
            }
            Err(e) => return Err(anyhow!("{}: {e:?}", path.display())),
        }
    }
    Ok(cap)
}

/// One direction of a TCP connection, reassembled.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// Contiguous runs of bytes, each as the pieces the segments contributed with their
    /// timestamps. A new run starts after missing data.
    pub runs: Vec<Vec<(u64, Vec<u8>)>>,
    /// Missing byte ranges (relative sequence numbers), reported, not guessed.
    pub gaps: Vec<(u32, u32)>,
    /// Segments dropped as retransmissions.
    pub retransmissions: usize,
}

/// Reassembles one direction from its segments (any order).
pub fn reassemble(segments: &[&Packet]) -> Stream {
    let mut out = Stream::default();
    let anchor = segments
        .iter()
        .find(|p| p.syn)
        .and_then(|p| p.seq.map(|s| s.wrapping_add(1)))
        .or_else(|| {
            // Mid-stream capture: the lowest sequence number, wrap-aware, relative to the first.
            let first = segments.first()?.seq?;
            segments
                .iter()
                .filter_map(|p| p.seq)
                .min_by_key(|s| s.wrapping_sub(first).wrapping_add(1 << 31))
        });
    let Some(anchor) = anchor else {
        return out;
    };
    let mut by_rel: Vec<(u32, u64, &[u8])> = segments
        .iter()
        .filter(|p| !p.payload.is_empty())
        .filter_map(|p| {
            let rel = p.seq?.wrapping_sub(anchor);
            (rel < 1 << 31).then_some((rel, p.ts_us, p.payload.as_slice()))
        })
        .collect();
    by_rel.sort_by_key(|(rel, ts, _)| (*rel, *ts));
    let mut next = 0u32;
    for (rel, ts, data) in by_rel {
        let end = rel.wrapping_add(data.len() as u32);
        if end <= next {
            out.retransmissions += 1;
            continue;
        }
        if rel > next {
            out.gaps.push((next, rel));
            out.runs.push(Vec::new());
            next = rel;
        }
        let skip = (next - rel) as usize;
        if out.runs.is_empty() {
            out.runs.push(Vec::new());
        }
        if let Some(run) = out.runs.last_mut() {
            run.push((ts, data[skip..].to_vec()));
        }
        next = end;
    }
    out
}

/// What a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SIP.
    Sip,
    /// CSTA with Annex J headers.
    AnnexJ,
    /// CSTA, NUL-terminated.
    Nul,
    /// Something else.
    Other,
}

/// Classifies a stream by its first bytes.
pub fn classify(bytes: &[u8]) -> Kind {
    let head = &bytes[..bytes.len().min(64)];
    if head.len() >= 9
        && head[0] == 0
        && head[1] == 0
        && head[4..8].iter().all(u8::is_ascii_digit)
        && head[8] == b'<'
    {
        return Kind::AnnexJ;
    }
    let text = String::from_utf8_lossy(head);
    let first = text.lines().next().unwrap_or_default();
    if first.starts_with("SIP/2.0 ") || first.contains(" sip:") || first.ends_with(" SIP/2.0") {
        return Kind::Sip;
    }
    if text.trim_start().starts_with('<') && bytes.contains(&0) {
        return Kind::Nul;
    }
    Kind::Other
}

/// One step of a ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// When its first byte was captured.
    pub ts_us: u64,
    /// Sender (`FE`, `GW`, `PBX`).
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Normalized description.
    pub label: String,
    /// The SIP message, for SIP steps.
    pub sip: Option<Message>,
    /// The CSTA frame (invoke ID, XML), for CSTA steps.
    pub frame: Option<(Option<InvokeId>, Vec<u8>)>,
    /// The connection it travelled on (sender, receiver addresses).
    pub conn: (SocketAddr, SocketAddr),
}

fn sip_label(m: &Message) -> String {
    let body = if m.body.is_empty() {
        String::new()
    } else {
        match rcc_protocol::csta::decode(&m.body) {
            Ok(d) => format!(" ({})", d.message.root_name()),
            Err(_) => " (malformed body)".to_owned(),
        }
    };
    match (m.method(), m.status()) {
        (Some(method), _) => format!("{method}{body}"),
        (None, Some(code)) => {
            let cseq = m.cseq().map(|c| c.method.to_string()).unwrap_or_default();
            format!("{code} {cseq}{body}")
        }
        _ => "?".to_owned(),
    }
}

fn csta_label(xml: &[u8], invoke: Option<InvokeId>) -> String {
    let root = rcc_protocol::csta::decode(xml)
        .map(|d| d.message.root_name().into_owned())
        .unwrap_or_else(|_| "malformed CSTA".to_owned());
    match invoke {
        Some(InvokeId::Id(9999)) => format!("[event] {root}"),
        Some(InvokeId::Id(_)) => format!("[#] {root}"),
        _ => root,
    }
}

type Conn = (SocketAddr, SocketAddr);

/// The normalized ladder of a capture: who is who, then every SIP message and CSTA frame in
/// time order.
pub fn ladder(cap: &Capture) -> (Vec<Step>, Vec<String>) {
    let mut notes = cap.problems.clone();
    // Group TCP segments per direction; a connection is the unordered pair.
    let mut dirs: BTreeMap<Conn, Vec<&Packet>> = BTreeMap::new();
    let mut udp: Vec<&Packet> = Vec::new();
    for p in &cap.packets {
        if p.seq.is_some() {
            dirs.entry((p.src, p.dst)).or_default().push(p);
        } else if !p.payload.is_empty() {
            udp.push(p);
        }
    }
    let streams: BTreeMap<Conn, Stream> = dirs.iter().map(|(k, v)| (*k, reassemble(v))).collect();
    for (k, s) in &streams {
        for (a, b) in &s.gaps {
            notes.push(format!(
                "{} → {}: {} bytes missing (capture loss)",
                k.0,
                k.1,
                b - a
            ));
        }
    }
    // Messages per direction, with their kind.
    type Frame = Option<(Option<InvokeId>, Vec<u8>)>;
    type Found = (
        u64,
        SocketAddr,
        SocketAddr,
        Kind,
        String,
        Option<Message>,
        Frame,
    );
    let mut msgs: Vec<Found> = Vec::new();
    let mut kinds: HashMap<(SocketAddr, SocketAddr), Kind> = HashMap::new();
    for ((src, dst), s) in &streams {
        let head = |s: &Stream| -> Vec<u8> {
            s.runs
                .first()
                .map(|r| {
                    r.iter()
                        .flat_map(|p| p.1.iter().copied())
                        .take(64)
                        .collect()
                })
                .unwrap_or_default()
        };
        let first = head(s);
        let reverse = streams.get(&(*dst, *src)).map(head).unwrap_or_default();
        let kind = match classify(&first) {
            Kind::Other => classify(&reverse),
            k => k,
        };
        kinds.insert((*src, *dst), kind);
        for run in &s.runs {
            // One decoder per run (after missing data, framing starts afresh); a message gets
            // the timestamp of the segment that completed it.
            let mut sip = StreamFramer::new(Limits::default());
            let mut annex = AnnexJDecoder::new();
            let mut nul = NulDecoder::new(1 << 20);
            let mut lost = false;
            for (ts, bytes) in run {
                match kind {
                    Kind::Sip if !lost => {
                        sip.push(bytes);
                        loop {
                            match sip.next_item() {
                                Ok(Some(StreamItem::Message(m))) => {
                                    msgs.push((*ts, *src, *dst, kind, sip_label(&m), Some(m), None))
                                }
                                Ok(Some(_)) => {}
                                Ok(None) => break,
                                Err(e) => {
                                    notes.push(format!("{src} → {dst}: SIP framing lost ({e})"));
                                    lost = true;
                                    break;
                                }
                            }
                        }
                    }
                    Kind::AnnexJ | Kind::Nul => {
                        let mut frames = Vec::new();
                        if kind == Kind::AnnexJ {
                            annex.push(bytes);
                            while let Ok(Some(fr)) = annex.next_frame() {
                                frames.push(fr);
                            }
                        } else {
                            nul.push(bytes);
                            while let Ok(Some(fr)) = nul.next_frame() {
                                frames.push(fr);
                            }
                        }
                        for fr in frames {
                            let label = csta_label(&fr.xml, fr.invoke_id);
                            msgs.push((
                                *ts,
                                *src,
                                *dst,
                                kind,
                                label,
                                None,
                                Some((fr.invoke_id, fr.xml)),
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for p in udp {
        if let Ok(m) = Message::parse(&p.payload) {
            msgs.push((
                p.ts_us,
                p.src,
                p.dst,
                Kind::Sip,
                sip_label(&m),
                Some(m),
                None,
            ));
        }
    }
    msgs.sort_by_key(|m| m.0);
    // The gateway: receiver of initial INVITEs; sender of CSTA requests.
    let gateway_sip: Vec<SocketAddr> = msgs
        .iter()
        .filter(|m| {
            m.5.as_ref().is_some_and(|x| {
                x.method().is_some_and(|me| me.as_str() == "INVITE")
                    && x.to_header().ok().is_some_and(|t| t.tag().is_none())
            })
        })
        .map(|m| m.2)
        .collect();
    let gateway_csta: Vec<SocketAddr> = msgs
        .iter()
        .filter(|m| {
            m.3 != Kind::Sip
                && m.4.starts_with("[#]")
                && !m.4.contains("Response")
                && !m.4.contains("CSTAErrorCode")
        })
        .map(|m| m.1)
        .collect();
    let is_gw = |a: &SocketAddr| gateway_sip.contains(a) || gateway_csta.contains(a);
    let mut peers: Vec<SocketAddr> = Vec::new();
    let steps = msgs
        .into_iter()
        .map(|(ts, src, dst, kind, label, sip, frame)| {
            let mut name = |a: &SocketAddr, kind: Kind| -> String {
                if is_gw(a) {
                    return "GW".into();
                }
                if kind != Kind::Sip {
                    return "PBX".into();
                }
                if !peers.contains(a) {
                    peers.push(*a);
                }
                let n = peers.iter().position(|p| p == a).unwrap_or(0) + 1;
                if n == 1 {
                    "FE".into()
                } else {
                    format!("FE{n}")
                }
            };
            Step {
                ts_us: ts,
                from: name(&src, kind),
                to: name(&dst, kind),
                label,
                sip,
                frame,
                conn: (src, dst),
            }
        })
        .collect();
    (steps, notes)
}

/// The ladder as text, one step a line (no timestamps: stable across runs).
pub fn ladder_text(steps: &[Step], notes: &[String]) -> String {
    let mut out = String::new();
    for s in steps {
        out.push_str(&format!("{:>3} -> {:<3} {}\n", s.from, s.to, s.label));
    }
    for n in notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u32, data: &[u8], ts: u64) -> Packet {
        Packet {
            ts_us: ts,
            src: "10.0.0.1:5061".parse().expect("address"),
            dst: "10.0.0.2:5065".parse().expect("address"),
            seq: Some(seq),
            syn: false,
            payload: data.to_vec(),
        }
    }

    #[test]
    fn out_of_order_retransmitted_and_missing_data() {
        let syn = Packet {
            syn: true,
            ..seg(999, b"", 0)
        };
        let a = seg(1000, b"INFO ", 1);
        let b = seg(1005, b"sip:x", 2);
        let dup = seg(1000, b"INFO ", 3);
        let after_gap = seg(1020, b"tail", 4);
        let segs = [&syn, &b, &a, &dup, &after_gap];
        let s = reassemble(&segs);
        let joined =
            |r: &Vec<(u64, Vec<u8>)>| r.iter().flat_map(|p| p.1.clone()).collect::<Vec<u8>>();
        assert_eq!(s.runs.len(), 2);
        assert_eq!(joined(&s.runs[0]), b"INFO sip:x");
        assert_eq!(joined(&s.runs[1]), b"tail");
        assert_eq!(s.gaps, vec![(10, 20)]);
        assert_eq!(s.retransmissions, 1);
    }

    #[test]
    fn mid_stream_capture_anchors_on_the_lowest_sequence_number() {
        let a = seg(u32::MAX - 2, b"abc", 1);
        let b = seg(0, b"def", 2);
        let s = reassemble(&[&b, &a]);
        let joined: Vec<u8> = s.runs[0].iter().flat_map(|p| p.1.clone()).collect();
        assert_eq!(joined, b"abcdef", "across the wrap");
    }

    #[test]
    fn classification_by_content() {
        assert_eq!(classify(b"INVITE sip:a@b SIP/2.0\r\n"), Kind::Sip);
        assert_eq!(classify(b"SIP/2.0 200 OK\r\n"), Kind::Sip);
        assert_eq!(classify(b"\0\0\0\x100001<X/>"), Kind::AnnexJ);
        assert_eq!(classify(b"<X/>\0<Y/>\0"), Kind::Nul);
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Kind::Other);
    }
}
