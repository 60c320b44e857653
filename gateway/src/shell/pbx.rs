//! The PBX link's connection: dialling (TCP, then TLS when configured), the task that reads it
//! and writes what the driver queues, and [`PbxConn`], the driver's handle on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcc_net::spawn_writer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use super::cmd::Cmd;
use crate::config::Config;
use crate::observe::trace;

/// Frames queued to the PBX before the link is considered stuck (a monitor resync after a link
/// loss sends one MonitorStart per device at once).
pub(super) const PBX_QUEUE: usize = 262_144;
/// How long a TCP connect may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how the PBX is dialled.
struct Dial {
    /// The primary address, then the secondary: attempts alternate between them.
    addresses: Vec<String>,
    tls: Option<Arc<ClientConfig>>,
    /// The name the PBX's certificate must hold (default: the address's host).
    tls_name: Option<String>,
    tx: mpsc::Sender<Cmd>,
    tracer: Option<Arc<trace::Tracer>>,
}

/// The driver's handle on the PBX connection: which attempt is current (commands from an
/// earlier one are ignored), its send queue once up, and its task.
pub(super) struct PbxConn {
    id: u64,
    out: Option<mpsc::Sender<Vec<u8>>>,
    task: Option<JoinHandle<()>>,
    /// (local, peer) addresses of the current connection.
    ends: Option<(SocketAddr, SocketAddr)>,
    dial: Dial,
}

impl PbxConn {
    /// No connection yet; `tls` when `[pbx]` asks for TLS.
    pub(super) fn new(
        config: &Config,
        tls: Option<Arc<ClientConfig>>,
        tx: mpsc::Sender<Cmd>,
        tracer: Option<Arc<trace::Tracer>>,
    ) -> PbxConn {
        let addresses = std::iter::once(config.pbx.address.clone())
            .chain(config.pbx.secondary.clone())
            .collect();
        PbxConn {
            id: 0,
            out: None,
            task: None,
            ends: None,
            dial: Dial {
                addresses,
                tls,
                tls_name: config.pbx.tls_name.clone(),
                tx,
                tracer,
            },
        }
    }

    /// (local, peer) addresses of the current connection.
    pub(super) fn ends(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.ends
    }

    /// Whether `conn` is the current connection.
    pub(super) fn is_current(&self, conn: u64) -> bool {
        conn == self.id
    }

    /// Drops the current connection and dials the address of attempt `attempt`.
    pub(super) fn connect(&mut self, attempt: u32) {
        self.id += 1;
        self.out = None;
        if let Some(t) = self.task.take() {
            t.abort();
        }
        let d = &self.dial;
        let address = d.addresses[attempt as usize % d.addresses.len()].clone();
        let tls = d.tls.clone().map(|c| {
            let name = d.tls_name.clone().unwrap_or_else(|| {
                crate::config::split_host_port(&address)
                    .map(|(h, _)| h)
                    .unwrap_or_default()
            });
            (c, name)
        });
        tracing::info!(%address, attempt, "connecting to the PBX");
        self.task = Some(tokio::spawn(pbx_connect(
            self.id,
            address,
            tls,
            d.tx.clone(),
            d.tracer.clone(),
        )));
    }

    /// Connection `conn` is up; whether it is the current one.
    pub(super) fn up(
        &mut self,
        conn: u64,
        out: mpsc::Sender<Vec<u8>>,
        ends: Option<(SocketAddr, SocketAddr)>,
    ) -> bool {
        if !self.is_current(conn) {
            return false;
        }
        self.out = Some(out);
        self.ends = ends;
        true
    }

    /// Connection `conn` is down; whether it was the current one.
    pub(super) fn down(&mut self, conn: u64) -> bool {
        if !self.is_current(conn) {
            return false;
        }
        self.out = None;
        true
    }

    /// Queues a frame (none is queued while the link is down). Returns whether the queue was
    /// full: a lost frame would desynchronise the link, so the connection is dropped then.
    pub(super) fn send(&mut self, bytes: Vec<u8>) -> bool {
        let full = self
            .out
            .as_ref()
            .is_some_and(|w| w.try_send(bytes).is_err());
        if full {
            self.out = None;
            if let Some(t) = self.task.take() {
                t.abort();
            }
        }
        full
    }

    /// Closes the connection, after a moment for the writer to flush what was queued.
    pub(super) fn close(&mut self) {
        self.out = None;
        self.id += 1;
        if let Some(t) = self.task.take() {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                t.abort();
            });
        }
    }
}

/// Dials the PBX and runs the link; tells the driver when it is up and why it went down.
async fn pbx_connect(
    conn: u64,
    address: String,
    tls: Option<(Arc<ClientConfig>, String)>,
    tx: mpsc::Sender<Cmd>,
    tracer: Option<Arc<trace::Tracer>>,
) {
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let reason = format!("cannot connect to the PBX at {address}: {e}");
            let _ = tx.send(Cmd::PbxDown { conn, reason }).await;
            return;
        }
        Err(_) => {
            let reason = format!("connecting to the PBX at {address} timed out");
            let _ = tx.send(Cmd::PbxDown { conn, reason }).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    // A PBX host that vanishes (power, network) without closing is found by the kernel too,
    // within about a minute, whatever the CSTA keep-alive says.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "TCP keep-alive not set on the PBX link");
    }
    let ends = tcp.local_addr().ok().zip(tcp.peer_addr().ok());
    let trace = PbxTrace { tracer, ends };
    match tls {
        None => pbx_run(tcp, conn, address, tx, trace).await,
        Some((config, name)) => {
            let server_name = match ServerName::try_from(name.clone()) {
                Ok(n) => n,
                Err(e) => {
                    let reason = format!("PBX TLS name {name:?}: {e}");
                    let _ = tx.send(Cmd::PbxDown { conn, reason }).await;
                    return;
                }
            };
            match TlsConnector::from(config).connect(server_name, tcp).await {
                Ok(s) => pbx_run(s, conn, address, tx, trace).await,
                Err(e) => {
                    let reason = format!("TLS to the PBX at {address} failed: {e}");
                    let _ = tx.send(Cmd::PbxDown { conn, reason }).await;
                }
            }
        }
    }
}

/// The PBX connection's addresses, and the gateway trace if one is written.
struct PbxTrace {
    tracer: Option<Arc<trace::Tracer>>,
    ends: Option<(SocketAddr, SocketAddr)>,
}

impl PbxTrace {
    /// The gateway dialled: the trace's handshake starts from it.
    fn opened(&self) {
        if let (Some(t), Some((l, p))) = (&self.tracer, self.ends) {
            t.opened(l, p, rcc_net::pcap::Side::Local);
        }
    }

    fn data(&self, way: trace::Way, bytes: &[u8]) {
        if let (Some(t), Some((l, p))) = (&self.tracer, self.ends) {
            t.data(l, p, way, bytes);
        }
    }
}

/// Runs a connected PBX link: hands what it reads to the driver, writes what the driver queues.
async fn pbx_run<S>(stream: S, conn: u64, address: String, tx: mpsc::Sender<Cmd>, trace: PbxTrace)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(PBX_QUEUE);
    let up = Cmd::PbxUp {
        conn,
        out: out_tx,
        ends: trace.ends,
    };
    if tx.send(up).await.is_err() {
        return;
    }
    trace.opened();
    let (mut rd, wr) = tokio::io::split(stream);
    let trace = Arc::new(trace);
    let out_trace = trace.clone();
    // Aborted with this task too (the driver aborts it to drop the link), even mid-write.
    let mut writer = spawn_writer(wr, out_rx, move |b| out_trace.data(trace::Way::Out, b));
    let mut buf = vec![0u8; 64 * 1024];
    let reason = loop {
        tokio::select! {
            read = rd.read(&mut buf) => match read {
                Ok(0) => break format!("the PBX at {address} closed the connection"),
                Err(e) => break format!("reading from the PBX at {address}: {e}"),
                Ok(n) => {
                    trace.data(trace::Way::In, &buf[..n]);
                    let at = Instant::now();
                    if tx.send(Cmd::PbxBytes { conn, bytes: buf[..n].to_vec(), at }).await.is_err() {
                        return;
                    }
                }
            },
            written = writer.handle() => match written {
                Ok(Ok(())) => return,
                Ok(Err(e)) => break format!("writing to the PBX at {address}: {e}"),
                Err(e) => break format!("the writer to the PBX at {address} failed: {e}"),
            },
        }
    };
    drop(writer);
    let _ = tx.send(Cmd::PbxDown { conn, reason }).await;
}
