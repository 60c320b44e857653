//! pcapng traces of TCP connections, as Wireshark reads them: the bytes a component read or
//! wrote on a connection (TLS as its decrypted payload) become TCP segments between the real
//! addresses and ports, after a synthetic three-way handshake from the side that opened the
//! connection, so that tshark follows each stream. The link type is raw IP; the IP and TCP
//! headers and their checksums are etherparse's. [`PcapngWriter`] only builds bytes: the caller
//! owns the file.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use etherparse::PacketBuilder;

/// LINKTYPE_RAW: packets start with the IPv4 or IPv6 header.
const LINKTYPE_RAW: u16 = 101;
/// Largest TCP payload per synthesized segment.
const MSS: usize = 32_000;
/// The advertised receive window.
const WINDOW: u16 = u16::MAX;
/// Initial sequence numbers of the local and the peer side.
const LOCAL_ISN: u32 = 999;
const PEER_ISN: u32 = 4999;

/// One end of a traced connection: the component writing the trace, or its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The component writing the trace.
    Local,
    /// The other end.
    Peer,
}

/// The next sequence number each side sends.
#[derive(Debug, Clone, Copy)]
struct Flow {
    local_seq: u32,
    peer_seq: u32,
}

/// The TCP flags of a synthesized segment.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    syn: bool,
    ack: bool,
    psh: bool,
    fin: bool,
}

/// Builds a pcapng stream: the section header and interface once, then one enhanced packet
/// block per segment. Connections are keyed by their (local, peer) addresses.
#[derive(Debug, Default)]
pub struct PcapngWriter {
    flows: HashMap<(SocketAddr, SocketAddr), Flow>,
    started: bool,
}

impl PcapngWriter {
    /// Bytes for a new connection that `opener` opened: the file's header if not yet written,
    /// and a three-way handshake from `opener`. Nothing for a connection already open.
    pub fn opened(
        &mut self,
        local: SocketAddr,
        peer: SocketAddr,
        opener: Side,
        ts_us: u64,
    ) -> Vec<u8> {
        let mut out = self.header();
        if self.flows.contains_key(&(local, peer)) {
            return out;
        }
        let flow = Flow {
            local_seq: LOCAL_ISN.wrapping_add(1),
            peer_seq: PEER_ISN.wrapping_add(1),
        };
        let ((a, a_isn), (b, b_isn)) = match opener {
            Side::Local => ((local, LOCAL_ISN), (peer, PEER_ISN)),
            Side::Peer => ((peer, PEER_ISN), (local, LOCAL_ISN)),
        };
        let syn = Flags {
            syn: true,
            ..Flags::default()
        };
        let syn_ack = Flags {
            syn: true,
            ack: true,
            ..Flags::default()
        };
        let ack = Flags {
            ack: true,
            ..Flags::default()
        };
        let (a_next, b_next) = (a_isn.wrapping_add(1), b_isn.wrapping_add(1));
        out.extend(packet(ts_us, &segment(a, b, a_isn, 0, syn, &[])));
        out.extend(packet(ts_us, &segment(b, a, b_isn, a_next, syn_ack, &[])));
        out.extend(packet(ts_us, &segment(a, b, a_next, b_next, ack, &[])));
        self.flows.insert((local, peer), flow);
        out
    }

    /// Bytes for `payload` sent by `from` on a connection, in segments of at most 32,000 bytes.
    /// A connection not yet seen is taken as opened by the side that sends first.
    pub fn data(
        &mut self,
        local: SocketAddr,
        peer: SocketAddr,
        from: Side,
        payload: &[u8],
        ts_us: u64,
    ) -> Vec<u8> {
        let mut out = self.opened(local, peer, from, ts_us);
        let Some(flow) = self.flows.get_mut(&(local, peer)) else {
            return out;
        };
        let flags = Flags {
            ack: true,
            psh: true,
            ..Flags::default()
        };
        for chunk in payload.chunks(MSS) {
            let n = chunk.len() as u32;
            let seg = match from {
                Side::Peer => {
                    let s = segment(peer, local, flow.peer_seq, flow.local_seq, flags, chunk);
                    flow.peer_seq = flow.peer_seq.wrapping_add(n);
                    s
                }
                Side::Local => {
                    let s = segment(local, peer, flow.local_seq, flow.peer_seq, flags, chunk);
                    flow.local_seq = flow.local_seq.wrapping_add(n);
                    s
                }
            };
            out.extend(packet(ts_us, &seg));
        }
        out
    }

    /// Bytes for a closed connection (FIN from the local side); nothing for one not open.
    pub fn closed(&mut self, local: SocketAddr, peer: SocketAddr, ts_us: u64) -> Vec<u8> {
        let fin = Flags {
            ack: true,
            fin: true,
            ..Flags::default()
        };
        match self.flows.remove(&(local, peer)) {
            Some(f) => packet(
                ts_us,
                &segment(local, peer, f.local_seq, f.peer_seq, fin, &[]),
            ),
            None => Vec::new(),
        }
    }

    /// Bytes closing every open connection.
    pub fn close_all(&mut self, ts_us: u64) -> Vec<u8> {
        let open: Vec<_> = self.flows.keys().copied().collect();
        open.into_iter()
            .flat_map(|(local, peer)| self.closed(local, peer, ts_us))
            .collect()
    }

    /// The section header and interface description, once.
    fn header(&mut self) -> Vec<u8> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B_3C4D_u32.to_le_bytes()); // byte-order magic
        shb.extend_from_slice(&1u16.to_le_bytes()); // version 1.0
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length: not given
        let mut idb = Vec::new();
        idb.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes()); // snaplen: unlimited
        let mut out = block(0x0A0D_0D0A, &shb);
        out.extend(block(1, &idb));
        out
    }
}

/// What a connection read and its framer has not yet consumed, so that a trace can record each
/// framed message as a segment of its own rather than each read.
#[derive(Debug, Default)]
pub struct Unframed(Vec<u8>);

impl Unframed {
    /// Holds what a read delivered (and the framer was given).
    pub fn push(&mut self, read: &[u8]) {
        self.0.extend_from_slice(read);
    }

    /// The bytes the framer consumed since the last call, given how many it still buffers.
    pub fn consumed(&mut self, still_buffered: usize) -> Vec<u8> {
        let n = self.0.len().saturating_sub(still_buffered);
        self.0.drain(..n).collect()
    }

    /// Everything still held (a message cut short when the connection ended).
    pub fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// A pcapng block: type, total length, body padded to 32 bits, total length again.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

/// An enhanced packet block on interface 0, timestamped in microseconds.
fn packet(ts_us: u64, data: &[u8]) -> Vec<u8> {
    let mut epb = Vec::with_capacity(20 + data.len());
    epb.extend_from_slice(&0u32.to_le_bytes());
    epb.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
    epb.extend_from_slice(&(ts_us as u32).to_le_bytes());
    epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
    epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
    epb.extend_from_slice(data);
    block(6, &epb)
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// One TCP segment with its IP header (IPv6, v4-mapped, when the two ends differ in family);
/// empty if etherparse refuses it, which a payload of at most [`MSS`] bytes never makes it do.
fn segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (s, d) => PacketBuilder::ipv6(v6(s).octets(), v6(d).octets(), 64),
    };
    let mut tcp = ip.tcp(src.port(), dst.port(), seq, WINDOW);
    if flags.syn {
        tcp = tcp.syn();
    }
    if flags.ack {
        tcp = tcp.ack(ack);
    }
    if flags.psh {
        tcp = tcp.psh();
    }
    if flags.fin {
        tcp = tcp.fin();
    }
    let mut out = Vec::with_capacity(tcp.size(payload.len()));
    match tcp.write_to_vec(&mut out, payload) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetHeaders, PacketHeaders, TransportHeader};

    /// One parsed segment.
    #[derive(Debug)]
    struct Seg {
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: Option<u32>,
        syn: bool,
        fin: bool,
        payload: Vec<u8>,
    }

    fn word(a: &[u8], o: usize) -> u32 {
        u32::from_le_bytes([a[o], a[o + 1], a[o + 2], a[o + 3]])
    }

    /// Every block's type, and the packets of the enhanced packet blocks parsed with
    /// etherparse, their IP and TCP checksums checked.
    fn parse(a: &[u8]) -> (Vec<u32>, Vec<Seg>) {
        let (mut kinds, mut segs, mut off) = (Vec::new(), Vec::new(), 0);
        while off < a.len() {
            let len = word(a, off + 4) as usize;
            assert_eq!(len, word(a, off + len - 4) as usize, "trailing length");
            assert_eq!(len % 4, 0, "blocks are padded");
            let kind = word(a, off);
            kinds.push(kind);
            if kind == 6 {
                let captured = word(a, off + 20) as usize;
                segs.push(parse_packet(&a[off + 28..off + 28 + captured]));
            }
            off += len;
        }
        (kinds, segs)
    }

    fn parse_packet(data: &[u8]) -> Seg {
        let h = PacketHeaders::from_ip_slice(data).expect("an IP packet");
        let Some(TransportHeader::Tcp(tcp)) = h.transport else {
            panic!("a TCP segment");
        };
        let payload = h.payload.slice().to_vec();
        let (src, dst) = match h.net {
            Some(NetHeaders::Ipv4(ip, _)) => {
                assert_eq!(
                    ip.header_checksum,
                    ip.calc_header_checksum(),
                    "IPv4 checksum"
                );
                let want = tcp.calc_checksum_ipv4(&ip, &payload).expect("sums");
                assert_eq!(tcp.checksum, want, "TCP checksum");
                (IpAddr::from(ip.source), IpAddr::from(ip.destination))
            }
            Some(NetHeaders::Ipv6(ip, _)) => {
                let want = tcp.calc_checksum_ipv6(&ip, &payload).expect("sums");
                assert_eq!(tcp.checksum, want, "TCP checksum");
                (IpAddr::from(ip.source), IpAddr::from(ip.destination))
            }
            other => panic!("not IP: {other:?}"),
        };
        Seg {
            src: SocketAddr::new(src, tcp.source_port),
            dst: SocketAddr::new(dst, tcp.destination_port),
            seq: tcp.sequence_number,
            ack: tcp.ack.then_some(tcp.acknowledgment_number),
            syn: tcp.syn,
            fin: tcp.fin,
            payload,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn a_connection_the_peer_opened_parses_back_with_its_handshake_data_and_fin() {
        let (gw, fe) = (addr("10.0.0.2:5061"), addr("10.0.0.1:40000"));
        let mut w = PcapngWriter::default();
        let mut bytes = w.data(gw, fe, Side::Peer, b"INVITE", 1);
        bytes.extend(w.data(gw, fe, Side::Local, b"SIP/2.0 200 OK", 2));
        bytes.extend(w.data(gw, fe, Side::Peer, b"ACK", 3));
        bytes.extend(w.closed(gw, fe, 4));
        let (kinds, s) = parse(&bytes);
        assert_eq!(kinds, [0x0A0D_0D0A, 1, 6, 6, 6, 6, 6, 6, 6]);
        // The handshake: SYN from the Front End, SYN-ACK, ACK.
        assert!(s[0].syn && s[0].ack.is_none() && (s[0].src, s[0].dst) == (fe, gw));
        assert!(s[1].syn && s[1].ack == Some(s[0].seq + 1) && (s[1].src, s[1].dst) == (gw, fe));
        assert!(!s[2].syn && (s[2].seq, s[2].ack) == (s[0].seq + 1, Some(s[1].seq + 1)));
        // Each side's data follows on from its own bytes and acknowledges the other's.
        let (invite, ok, ack) = (&s[3], &s[4], &s[5]);
        assert_eq!(
            (invite.src, invite.payload.as_slice()),
            (fe, &b"INVITE"[..])
        );
        assert_eq!((invite.seq, invite.ack), (s[0].seq + 1, Some(s[1].seq + 1)));
        assert_eq!(
            (ok.src, ok.seq, ok.ack),
            (gw, s[1].seq + 1, Some(invite.seq + 6))
        );
        assert_eq!(
            (ack.src, ack.seq, ack.ack),
            (fe, invite.seq + 6, Some(ok.seq + 14))
        );
        let fin = &s[6];
        assert!(fin.fin && (fin.src, fin.seq, fin.ack) == (gw, ok.seq + 14, Some(ack.seq + 3)));
        assert!(w.closed(gw, fe, 5).is_empty(), "closed once");
    }

    #[test]
    fn a_connection_we_dialled_opens_with_our_syn() {
        let (gw, pbx) = (addr("127.0.0.1:50000"), addr("127.0.0.1:4000"));
        let mut w = PcapngWriter::default();
        let mut bytes = w.opened(gw, pbx, Side::Local, 1);
        // A PBX that speaks first changes nothing about who opened.
        bytes.extend(w.data(gw, pbx, Side::Peer, b"<SystemStatus/>", 2));
        bytes.extend(w.opened(gw, pbx, Side::Local, 3));
        let (_, s) = parse(&bytes);
        assert_eq!(s.len(), 4, "one handshake and the data");
        assert!(s[0].syn && s[0].ack.is_none() && (s[0].src, s[0].dst) == (gw, pbx));
        assert!(s[1].syn && (s[1].src, s[1].ack) == (pbx, Some(s[0].seq + 1)));
        assert_eq!((s[3].src, s[3].seq), (pbx, s[1].seq + 1));
    }

    #[test]
    fn large_payloads_are_cut_into_segments_and_mixed_families_use_ipv6() {
        let (gw, peer) = (addr("127.0.0.1:5061"), addr("[::1]:40000"));
        let mut w = PcapngWriter::default();
        let big = vec![b'x'; MSS + 10];
        let (_, s) = parse(&w.data(gw, peer, Side::Local, &big, 1));
        let data: Vec<_> = s.iter().filter(|s| !s.payload.is_empty()).collect();
        assert_eq!(data.len(), 2);
        assert_eq!(data[1].seq, data[0].seq.wrapping_add(MSS as u32));
        assert_eq!(
            data[0].src.ip(),
            IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped())
        );
        assert_eq!(data[0].dst, peer);
    }

    #[test]
    fn unframed_bytes_come_out_one_framed_message_at_a_time() {
        let mut u = Unframed::default();
        // Two messages and the start of a third arrive in one read, the rest in the next.
        u.push(b"AAAABBBCC");
        assert_eq!(u.consumed(5), b"AAAA", "the framer took the first message");
        assert_eq!(u.consumed(2), b"BBB");
        assert!(u.consumed(2).is_empty(), "nothing framed since");
        u.push(b"C");
        assert_eq!(u.consumed(0), b"CCC");
        u.push(b"DD");
        assert_eq!(u.rest(), b"DD");
        assert!(u.rest().is_empty());
    }

    use std::net::Ipv4Addr;
}
