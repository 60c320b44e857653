//! Wireshark-readable traces of both legs. Every byte the gateway reads or writes on a SIP
//! connection (TLS as its decrypted SIP) or on the PBX link is written as a TCP segment between
//! the real addresses and ports, in a pcapng file with raw-IP link type, so that Wireshark and
//! tshark follow each stream and dissect SIP (and, with `tools/wireshark/csta.lua`, CSTA).
//!
//! `rcc_net::pcap::PcapngWriter` builds the bytes; [`Tracer`] adds a file and a lock for the
//! shell, [`SessionTraces`] one file per traced session.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

pub use rcc_gateway_core::notes::{Leg, SessionNote, Way};
use rcc_gateway_core::{FlowId, SessionId};
use rcc_net::pcap::{PcapngWriter, Side, Unframed};

/// The side that sent bytes going `way`.
fn sender(way: Way) -> Side {
    match way {
        Way::In => Side::Peer,
        Way::Out => Side::Local,
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

    /// Records a connection that the gateway (`Side::Local`) or its peer opened; a connection
    /// first recorded with data is taken as opened by the side that sent first.
    pub fn opened(&self, local: SocketAddr, peer: SocketAddr, opener: Side) {
        let ts = now_us();
        self.with(|w| w.opened(local, peer, opener, ts));
    }

    /// Records data on a connection.
    pub fn data(&self, local: SocketAddr, peer: SocketAddr, way: Way, payload: &[u8]) {
        let ts = now_us();
        self.with(|w| w.data(local, peer, sender(way), payload, ts));
    }

    /// Records the end of a connection.
    pub fn closed(&self, local: SocketAddr, peer: SocketAddr) {
        let ts = now_us();
        self.with(|w| w.closed(local, peer, ts));
    }
}

/// One SIP connection in the gateway trace: what the gateway writes is recorded per message by
/// its writer, what it reads one framed message at a time through this (not one read at a time,
/// which could hold many messages or part of one).
pub struct FlowTrace {
    tracer: Arc<Tracer>,
    local: SocketAddr,
    peer: SocketAddr,
    unframed: Unframed,
}

impl FlowTrace {
    /// The trace of the connection between `local` and `peer`, which `opener` opened.
    pub fn new(
        tracer: Arc<Tracer>,
        local: SocketAddr,
        peer: SocketAddr,
        opener: Side,
    ) -> FlowTrace {
        tracer.opened(local, peer, opener);
        FlowTrace {
            tracer,
            local,
            peer,
            unframed: Unframed::default(),
        }
    }

    /// Bytes read and given to the framer.
    pub fn read(&mut self, bytes: &[u8]) {
        self.unframed.push(bytes);
    }

    /// The framer returned an item and still buffers `still_buffered` bytes.
    pub fn framed(&mut self, still_buffered: usize) {
        let item = self.unframed.consumed(still_buffered);
        if !item.is_empty() {
            self.tracer.data(self.local, self.peer, Way::In, &item);
        }
    }

    /// The connection ended: what was read and never framed, then the FIN.
    pub fn closed(mut self) {
        let rest = self.unframed.rest();
        if !rest.is_empty() {
            self.tracer.data(self.local, self.peer, Way::In, &rest);
        }
        self.tracer.closed(self.local, self.peer);
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
                let ts = now_us();
                let mut b = Vec::new();
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
                        let (local, peer) = f.pbx.unwrap_or((UNKNOWN, UNKNOWN));
                        // The gateway dialled the PBX.
                        b.extend(f.writer.opened(local, peer, Side::Local, ts));
                        (local, peer)
                    }
                };
                b.extend(f.writer.data(local, peer, sender(way), &bytes, ts));
                Self::write(f, &b);
            }
            SessionNote::End { session } => {
                if let Some(mut f) = self.files.remove(&session) {
                    let b = f.writer.close_all(now_us());
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
