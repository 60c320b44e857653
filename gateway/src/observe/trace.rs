//! Wireshark-readable traces of both legs. Every byte the gateway reads or writes on a SIP
//! connection (TLS as its decrypted SIP) or on the PBX link is written as a TCP segment between
//! the real addresses and ports, in a pcapng file with raw-IP link type, so that Wireshark and
//! tshark follow each stream and dissect SIP (and, with `tools/wireshark/csta.lua`, CSTA).
//!
//! [`PcapngWriter`] only builds bytes; [`Tracer`] adds a file and a lock for the shell.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

pub use rcc_gateway_core::notes::{Leg, SessionNote, Way};
use rcc_gateway_core::{FlowId, SessionId};

/// LINKTYPE_RAW: packets start with the IPv4 or IPv6 header.
const LINKTYPE_RAW: u16 = 101;
/// Largest TCP payload per synthesized segment.
const MSS: usize = 32_000;

#[derive(Debug, Clone, Copy)]
struct FlowState {
    /// Next sequence number of the gateway's side and of the peer's side.
    local_seq: u32,
    peer_seq: u32,
}

/// Builds a pcapng stream.
#[derive(Debug, Default)]
pub struct PcapngWriter {
    flows: HashMap<(SocketAddr, SocketAddr), FlowState>,
    started: bool,
}

fn push_u16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn push_u32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn checksum(data: &[u8], mut sum: u32) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_sum(src: IpAddr, dst: IpAddr, len: usize) -> u32 {
    let mut sum = 0u32;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
            add(&[0, 6]);
            add(&(len as u16).to_be_bytes());
        }
        (s, d) => {
            add(&v6(s).octets());
            add(&v6(d).octets());
            add(&(len as u32).to_be_bytes());
            add(&[0, 0, 0, 6]);
        }
    }
    sum
}

fn v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// One TCP segment with its IP header.
fn segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.push(5 << 4); // header length 20
    tcp.push(flags);
    tcp.extend_from_slice(&65535u16.to_be_bytes()); // window
    tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    tcp.extend_from_slice(payload);
    let (s, d) = match (src.ip(), dst.ip()) {
        (a @ IpAddr::V4(_), b @ IpAddr::V4(_)) => (a, b),
        (a, b) => (IpAddr::V6(v6(a)), IpAddr::V6(v6(b))),
    };
    let c = checksum(&tcp, pseudo_sum(s, d, tcp.len()));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut ip = Vec::with_capacity(40 + tcp.len());
    match (s, d) {
        (IpAddr::V4(s4), IpAddr::V4(d4)) => {
            let total = (20 + tcp.len()) as u16;
            ip.extend_from_slice(&[0x45, 0]);
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            ip.extend_from_slice(&s4.octets());
            ip.extend_from_slice(&d4.octets());
            let c = checksum(&ip, 0);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
        }
        (s6, d6) => {
            ip.extend_from_slice(&[0x60, 0, 0, 0]);
            ip.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
            ip.extend_from_slice(&[6, 64]);
            ip.extend_from_slice(&v6(s6).octets());
            ip.extend_from_slice(&v6(d6).octets());
        }
    }
    ip.extend_from_slice(&tcp);
    ip
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut b = Vec::with_capacity(total as usize);
    push_u32(&mut b, kind);
    push_u32(&mut b, total);
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    push_u32(&mut b, total);
    b
}

impl PcapngWriter {
    /// The section header and interface description, once.
    fn header(&mut self) -> Vec<u8> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        let mut shb = Vec::new();
        push_u32(&mut shb, 0x1A2B_3C4D);
        push_u16(&mut shb, 1);
        push_u16(&mut shb, 0);
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        let mut idb = Vec::new();
        push_u16(&mut idb, LINKTYPE_RAW);
        push_u16(&mut idb, 0);
        push_u32(&mut idb, 0); // snaplen: unlimited
        let mut out = block(0x0A0D_0D0A, &shb);
        out.extend(block(1, &idb));
        out
    }

    fn packet(ts_us: u64, data: &[u8]) -> Vec<u8> {
        let mut epb = Vec::with_capacity(20 + data.len());
        push_u32(&mut epb, 0);
        push_u32(&mut epb, (ts_us >> 32) as u32);
        push_u32(&mut epb, ts_us as u32);
        push_u32(&mut epb, data.len() as u32);
        push_u32(&mut epb, data.len() as u32);
        epb.extend_from_slice(data);
        block(6, &epb)
    }

    /// Bytes for a new connection: a synthetic three-way handshake (so the stream opens cleanly).
    pub fn opened(&mut self, local: SocketAddr, peer: SocketAddr, ts_us: u64) -> Vec<u8> {
        let mut out = self.header();
        let state = FlowState {
            local_seq: 1000,
            peer_seq: 5000,
        };
        out.extend(Self::packet(
            ts_us,
            &segment(peer, local, state.peer_seq - 1, 0, 0x02, &[]),
        ));
        out.extend(Self::packet(
            ts_us,
            &segment(local, peer, state.local_seq - 1, state.peer_seq, 0x12, &[]),
        ));
        out.extend(Self::packet(
            ts_us,
            &segment(peer, local, state.peer_seq, state.local_seq, 0x10, &[]),
        ));
        self.flows.insert((local, peer), state);
        out
    }

    /// Bytes for data read from or written to a connection.
    pub fn data(
        &mut self,
        local: SocketAddr,
        peer: SocketAddr,
        way: Way,
        payload: &[u8],
        ts_us: u64,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.flows.contains_key(&(local, peer)) {
            out.extend(self.opened(local, peer, ts_us));
        }
        let Some(state) = self.flows.get_mut(&(local, peer)) else {
            return out;
        };
        for chunk in payload.chunks(MSS) {
            let n = chunk.len() as u32;
            let seg = match way {
                Way::In => {
                    let s = segment(peer, local, state.peer_seq, state.local_seq, 0x18, chunk);
                    state.peer_seq = state.peer_seq.wrapping_add(n);
                    s
                }
                Way::Out => {
                    let s = segment(local, peer, state.local_seq, state.peer_seq, 0x18, chunk);
                    state.local_seq = state.local_seq.wrapping_add(n);
                    s
                }
            };
            out.extend(Self::packet(ts_us, &seg));
        }
        out
    }

    /// Bytes for a closed connection (FIN from the gateway's side).
    pub fn closed(&mut self, local: SocketAddr, peer: SocketAddr, ts_us: u64) -> Vec<u8> {
        match self.flows.remove(&(local, peer)) {
            Some(s) => Self::packet(
                ts_us,
                &segment(local, peer, s.local_seq, s.peer_seq, 0x11, &[]),
            ),
            None => Vec::new(),
        }
    }
}

/// A trace file shared by the connection tasks.
pub struct Tracer {
    inner: Mutex<(PcapngWriter, std::io::BufWriter<std::fs::File>)>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").finish_non_exhaustive()
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Tracer {
    /// Creates (truncates) the file.
    pub fn create(path: &std::path::Path) -> anyhow::Result<Tracer> {
        let f = std::fs::File::create(path)
            .map_err(|e| anyhow::anyhow!("cannot write the trace {}: {e}", path.display()))?;
        Ok(Tracer {
            inner: Mutex::new((PcapngWriter::default(), std::io::BufWriter::new(f))),
        })
    }

    fn with(&self, f: impl FnOnce(&mut PcapngWriter) -> Vec<u8>) {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bytes = f(&mut g.0);
        if !bytes.is_empty() {
            let _ = g.1.write_all(&bytes);
            let _ = g.1.flush();
        }
    }

    /// Records data on a connection.
    pub fn data(&self, local: SocketAddr, peer: SocketAddr, way: Way, payload: &[u8]) {
        let ts = now_us();
        self.with(|w| w.data(local, peer, way, payload, ts));
    }

    /// Records the end of a connection.
    pub fn closed(&self, local: SocketAddr, peer: SocketAddr) {
        let ts = now_us();
        self.with(|w| w.closed(local, peer, ts));
    }
}

/// A placeholder for a connection whose addresses are unknown (closed before the record).
const UNKNOWN: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

struct SessionFile {
    writer: PcapngWriter,
    out: std::io::BufWriter<std::fs::File>,
    path: std::path::PathBuf,
    /// The SIP connection last used (a later record on a closed flow stays in the same stream).
    sip: Option<(SocketAddr, SocketAddr)>,
    /// The PBX connection last used.
    pbx: Option<(SocketAddr, SocketAddr)>,
}

/// The shell's side of per-session traces: one pcapng file per traced session, holding its SIP
/// dialog and the PBX frames that belong to it, between the real addresses.
pub struct SessionTraces {
    config: rcc_gateway_core::config::SessionTraceConfig,
    files: HashMap<SessionId, SessionFile>,
    /// Counts the sessions not traced (`max_open` files open, or the file failed).
    refused: prometheus_client::metrics::counter::Counter,
}

impl std::fmt::Debug for SessionTraces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTraces")
            .field("dir", &self.config.dir)
            .field("open", &self.files.len())
            .finish_non_exhaustive()
    }
}

/// A file name part from a user URI: `sip:Alice@contoso.com` → `alice@contoso.com`.
fn file_part(user: &str) -> String {
    let u = user.trim_start_matches("sips:").trim_start_matches("sip:");
    let clean: String = u
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | '+') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if clean.is_empty() {
        "session".to_owned()
    } else {
        clean
    }
}

impl SessionTraces {
    /// Creates the directory.
    pub fn new(
        config: &rcc_gateway_core::config::SessionTraceConfig,
        refused: prometheus_client::metrics::counter::Counter,
    ) -> anyhow::Result<SessionTraces> {
        std::fs::create_dir_all(&config.dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the session trace directory {}: {e}",
                config.dir.display()
            )
        })?;
        Ok(SessionTraces {
            config: config.clone(),
            files: HashMap::new(),
            refused,
        })
    }

    /// Files open now.
    pub fn open_count(&self) -> usize {
        self.files.len()
    }

    /// Writes one note. `sip_ends` gives a SIP flow's (local, peer) addresses; `pbx_ends` the
    /// PBX connection's.
    pub fn note(
        &mut self,
        note: SessionNote,
        sip_ends: impl Fn(FlowId) -> Option<(SocketAddr, SocketAddr)>,
        pbx_ends: Option<(SocketAddr, SocketAddr)>,
    ) {
        match note {
            SessionNote::Start { session, user } => self.start(session, &user),
            SessionNote::Data {
                session,
                leg,
                way,
                bytes,
            } => {
                let Some(f) = self.files.get_mut(&session) else {
                    return;
                };
                let (local, peer) = match leg {
                    Leg::Sip(flow) => {
                        if let Some(e) = sip_ends(flow) {
                            f.sip = Some(e);
                        }
                        f.sip.unwrap_or((UNKNOWN, UNKNOWN))
                    }
                    Leg::Pbx => {
                        if pbx_ends.is_some() {
                            f.pbx = pbx_ends;
                        }
                        f.pbx.unwrap_or((UNKNOWN, UNKNOWN))
                    }
                };
                let b = f.writer.data(local, peer, way, &bytes, now_us());
                Self::write(f, &b);
            }
            SessionNote::End { session } => {
                if let Some(mut f) = self.files.remove(&session) {
                    let ts = now_us();
                    let ends: Vec<_> = f.writer.flows.keys().copied().collect();
                    let mut b = Vec::new();
                    for (l, p) in ends {
                        b.extend(f.writer.closed(l, p, ts));
                    }
                    Self::write(&mut f, &b);
                    tracing::debug!(%session, file = %f.path.display(), "session trace closed");
                }
            }
        }
    }

    fn start(&mut self, session: SessionId, user: &str) {
        if self.files.len() >= self.config.max_open {
            self.refused.inc();
            tracing::warn!(
                %session,
                %user,
                max_open = self.config.max_open,
                "session not traced: observe.session_traces.max_open files are open"
            );
            return;
        }
        let secs = now_us() / 1_000_000;
        let path = self
            .config
            .dir
            .join(format!("{}-{secs}-{session}.pcapng", file_part(user)));
        match std::fs::File::create(&path) {
            Ok(file) => {
                tracing::info!(%session, %user, file = %path.display(), "session trace opened");
                self.files.insert(
                    session,
                    SessionFile {
                        writer: PcapngWriter::default(),
                        out: std::io::BufWriter::new(file),
                        path,
                        sip: None,
                        pbx: None,
                    },
                );
            }
            Err(e) => {
                self.refused.inc();
                tracing::warn!(%session, file = %path.display(), error = %e, "cannot write the session trace");
            }
        }
    }

    fn write(f: &mut SessionFile, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // Flushed per record: a trace is read while the session still runs, or after a crash.
        if let Err(e) = f.out.write_all(bytes).and_then(|()| f.out.flush()) {
            tracing::warn!(file = %f.path.display(), error = %e, "session trace write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (kind, offset) of every block.
    fn blocks(a: &[u8]) -> Vec<(u32, usize)> {
        let word = |o: usize| u32::from_le_bytes([a[o], a[o + 1], a[o + 2], a[o + 3]]);
        let mut off = 0;
        let mut out = Vec::new();
        while off < a.len() {
            let len = word(off + 4) as usize;
            assert_eq!(len, word(off + len - 4) as usize, "trailing length");
            assert_eq!(len % 4, 0);
            out.push((word(off), off));
            off += len;
        }
        out
    }

    /// TCP sequence number of the packet in the EPB at `off` (IPv4, 20-byte header).
    fn seq(a: &[u8], off: usize) -> u32 {
        let t = off + 28 + 20;
        u32::from_be_bytes([a[t + 4], a[t + 5], a[t + 6], a[t + 7]])
    }

    #[test]
    fn blocks_are_well_formed_and_sequence_numbers_advance() {
        let mut w = PcapngWriter::default();
        let l: SocketAddr = "10.0.0.2:5065".parse().expect("address");
        let p: SocketAddr = "10.0.0.1:40000".parse().expect("address");
        let a = w.data(l, p, Way::In, b"INVITE", 1);
        let kinds: Vec<u32> = blocks(&a).iter().map(|b| b.0).collect();
        // SHB, IDB, the synthetic handshake, then the data.
        assert_eq!(kinds, vec![0x0A0D_0D0A, 1, 6, 6, 6, 6]);
        let last = blocks(&a).last().map(|b| b.1).expect("data block");
        let b = w.data(l, p, Way::In, b"ACK", 2);
        assert_eq!(seq(&b, 0).wrapping_sub(seq(&a, last)), 6);
    }

    #[test]
    fn ipv4_header_checksum_verifies() {
        let s = segment(
            "1.2.3.4:1".parse().expect("a"),
            "5.6.7.8:2".parse().expect("b"),
            1,
            1,
            0x18,
            b"x",
        );
        assert_eq!(checksum(&s[..20], 0), 0);
    }
}
