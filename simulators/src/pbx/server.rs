//! The async shell around [`Pbx`]: TCP and TLS listeners, one task per client link, and one
//! driver task that owns the engine and its timers. Everything else talks to the driver through
//! [`PbxSim`], the in-process control API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rcc_net::{Control, Tasks, Wake};
use rcc_protocol::csta::{CstaError, ForwardingType, SystemStatusValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use super::directory::{DeviceConfig, ExternalParty};
use super::engine::{Faults, LinkId, LinkView, LogEntry, Output, Pbx};
use super::profile::PbxConfig;
use super::switch::CallView;

/// Commands queued per link before the link is considered stuck and closed.
const LINK_QUEUE: usize = 65_536;
/// Commands queued to the driver.
const DRIVER_QUEUE: usize = 1024;
/// Time allowed for a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

enum Cmd {
    Accept {
        link: LinkId,
        peer: String,
        out: Link,
    },
    Data {
        link: LinkId,
        bytes: Vec<u8>,
    },
    Gone {
        link: LinkId,
    },
    Control(Control<Pbx>),
}

enum LinkOut {
    Bytes(Vec<u8>),
    Close { abort: bool },
}

/// Where and how the simulator listens.
#[derive(Debug, Clone)]
pub struct Listen {
    /// Plain TCP address (`127.0.0.1:0` picks a port).
    pub tcp: Option<SocketAddr>,
    /// TLS address and server configuration.
    pub tls: Option<(SocketAddr, Arc<ServerConfig>)>,
}

impl Listen {
    /// Plain TCP on a free loopback port.
    pub fn loopback() -> Self {
        Listen {
            tcp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            tls: None,
        }
    }
}

/// A running PBX simulator; cheap to clone. The tasks stop when the last clone is dropped.
#[derive(Clone)]
pub struct PbxSim {
    tx: mpsc::Sender<Cmd>,
    tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    _tasks: Arc<Tasks>,
}

impl std::fmt::Debug for PbxSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PbxSim")
            .field("tcp", &self.tcp)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl PbxSim {
    /// Starts a simulator with `devices` on the listeners of `listen`.
    pub async fn start(
        config: PbxConfig,
        devices: Vec<DeviceConfig>,
        listen: Listen,
    ) -> anyhow::Result<PbxSim> {
        let mut pbx = Pbx::new(config);
        let now = tokio::time::Instant::now().into_std();
        pbx.act(now, |sw, _| {
            for d in devices {
                sw.add_device(d);
            }
        });
        let (tx, rx) = mpsc::channel(DRIVER_QUEUE);
        let mut tasks = vec![tokio::spawn(drive(pbx, rx))];
        let ids = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let mut tcp_addr = None;
        if let Some(addr) = listen.tcp {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow!("PBX simulator cannot listen on TCP {addr}: {e}"))?;
            tcp_addr = Some(listener.local_addr()?);
            tasks.push(tokio::spawn(accept_loop(
                listener,
                None,
                tx.clone(),
                ids.clone(),
            )));
        }
        let mut tls_addr = None;
        if let Some((addr, config)) = listen.tls {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow!("PBX simulator cannot listen on TLS {addr}: {e}"))?;
            tls_addr = Some(listener.local_addr()?);
            let acceptor = TlsAcceptor::from(config);
            tasks.push(tokio::spawn(accept_loop(
                listener,
                Some(acceptor),
                tx.clone(),
                ids.clone(),
            )));
        }
        Ok(PbxSim {
            tx,
            tcp: tcp_addr,
            tls: tls_addr,
            _tasks: Arc::new(Tasks::from(tasks)),
        })
    }

    /// The TCP listener's address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The TLS listener's address.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// Runs `f` on the engine (in the driver task) and returns its result.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Pbx, Instant) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        rcc_net::run_on(&self.tx, Cmd::Control, f)
            .await
            .map_err(|_| anyhow!("PBX simulator has stopped"))
    }

    async fn switch_action(
        &self,
        f: impl FnOnce(&mut super::switch::Switch, Instant) -> Result<String, CstaError>
        + Send
        + 'static,
    ) -> anyhow::Result<String> {
        self.with(move |pbx, now| pbx.act(now, f))
            .await?
            .map_err(|e| anyhow!("the switch refused: {}/{}", e.category, e.value))
    }

    /// Adds an internal device.
    pub async fn add_device(&self, device: DeviceConfig) -> anyhow::Result<()> {
        self.with(move |pbx, now| pbx.act(now, |sw, _| sw.add_device(device)))
            .await
    }

    /// Scripts an external number.
    pub async fn set_external(&self, number: &str, party: ExternalParty) -> anyhow::Result<()> {
        let number = number.to_owned();
        self.with(move |pbx, now| pbx.act(now, |sw, _| sw.set_external(&number, party)))
            .await
    }

    /// An external number (or an internal desk phone) calls `to`; returns the call ID.
    pub async fn incoming(&self, from: &str, to: &str) -> anyhow::Result<String> {
        let (from, to) = (from.to_owned(), to.to_owned());
        self.switch_action(move |sw, now| sw.incoming(&from, &to, now))
            .await
    }

    /// A desk phone dials a number.
    pub async fn dial(&self, device: &str, number: &str) -> anyhow::Result<String> {
        let (device, number) = (device.to_owned(), number.to_owned());
        self.switch_action(move |sw, now| sw.phone_dial(&device, &number, now))
            .await
    }

    /// A desk phone or an external party answers its ringing call.
    pub async fn answer(&self, device: &str) -> anyhow::Result<String> {
        let device = device.to_owned();
        self.switch_action(move |sw, now| sw.phone_answer(&device, now))
            .await
    }

    /// A desk phone or an external party hangs up.
    pub async fn hang_up(&self, device: &str) -> anyhow::Result<String> {
        let device = device.to_owned();
        self.switch_action(move |sw, _| sw.phone_hang_up(&device))
            .await
    }

    /// Changes the switch's settings from now on (see [`super::SwitchConfig`]).
    pub async fn configure_switch(
        &self,
        f: impl FnOnce(&mut super::SwitchConfig) + Send + 'static,
    ) -> anyhow::Result<()> {
        self.with(move |pbx, now| pbx.act(now, |sw, _| sw.configure(f)))
            .await
    }

    /// Turns call waiting on or off for an internal device.
    pub async fn set_call_waiting(&self, device: &str, on: bool) -> anyhow::Result<()> {
        let device = device.to_owned();
        self.switch_action(move |sw, _| sw.set_call_waiting(&device, on))
            .await
            .map(drop)
    }

    /// A desk phone puts its active call on hold.
    pub async fn hold(&self, device: &str) -> anyhow::Result<String> {
        let device = device.to_owned();
        self.switch_action(move |sw, _| sw.phone_hold(&device))
            .await
    }

    /// A desk phone retrieves its held call.
    pub async fn retrieve(&self, device: &str) -> anyhow::Result<String> {
        let device = device.to_owned();
        self.switch_action(move |sw, _| sw.phone_retrieve(&device))
            .await
    }

    /// Forwarding set at the phone by feature code (`None` turns it off).
    pub async fn phone_forwarding(
        &self,
        device: &str,
        kind: ForwardingType,
        to: Option<&str>,
    ) -> anyhow::Result<()> {
        let (device, to) = (device.to_owned(), to.map(str::to_owned));
        self.switch_action(move |sw, _| {
            sw.phone_forwarding(&device, kind, to.as_deref())
                .map(|()| String::new())
        })
        .await
        .map(drop)
    }

    /// Every call with its parties and states.
    pub async fn calls(&self) -> anyhow::Result<Vec<CallView>> {
        self.with(|pbx, _| pbx.switch().calls()).await
    }

    /// The client links.
    pub async fn links(&self) -> anyhow::Result<Vec<LinkView>> {
        self.with(|pbx, _| pbx.links()).await
    }

    /// Frames logged after sequence number `since`.
    pub async fn log_since(&self, since: u64) -> anyhow::Result<Vec<LogEntry>> {
        self.with(move |pbx, _| pbx.log_since(since)).await
    }

    /// Replaces the active faults.
    pub async fn set_faults(&self, faults: Faults) -> anyhow::Result<()> {
        self.with(move |pbx, _| pbx.set_faults(faults)).await
    }

    /// Drops every client link (TCP reset when `abort`).
    pub async fn drop_links(&self, abort: bool) -> anyhow::Result<()> {
        self.with(move |pbx, _| pbx.drop_links(abort)).await
    }

    /// Ends monitor `xref` on the switch's side, telling its link with a MonitorStop request;
    /// false when there is no such monitor.
    pub async fn end_monitor(&self, xref: &str) -> anyhow::Result<bool> {
        let xref = xref.to_owned();
        self.with(move |pbx, _| pbx.end_monitor(&xref)).await
    }

    /// Ends every ECMA-354 session (ApplicationSessionTerminated, then close).
    pub async fn terminate_sessions(&self) -> anyhow::Result<()> {
        self.with(|pbx, _| pbx.terminate_sessions("terminated by the lab"))
            .await
    }

    /// Reports a new system status to every link.
    pub async fn set_system_status(&self, status: SystemStatusValue) -> anyhow::Result<()> {
        self.with(move |pbx, _| pbx.set_system_status(status)).await
    }

    /// Sends a malformed frame on every link.
    pub async fn send_malformed(&self) -> anyhow::Result<()> {
        self.with(|pbx, _| pbx.send_malformed()).await
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    tx: mpsc::Sender<Cmd>,
    ids: Arc<std::sync::atomic::AtomicU64>,
) {
    loop {
        let (stream, peer) = rcc_net::accept(&listener, "PBX simulator").await;
        let link = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tx = tx.clone();
        match &tls {
            None => {
                tokio::spawn(serve_link(stream, link, peer, tx));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => serve_link(s, link, peer, tx).await,
                        Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// A stream that can be reset instead of closed.
trait Resettable {
    fn reset(&self);
}

impl Resettable for TcpStream {
    fn reset(&self) {
        let _ = self.set_zero_linger();
    }
}

impl Resettable for tokio_rustls::server::TlsStream<TcpStream> {
    fn reset(&self) {
        let _ = self.get_ref().0.set_zero_linger();
    }
}

async fn serve_link<S>(stream: S, link: LinkId, peer: SocketAddr, tx: mpsc::Sender<Cmd>)
where
    S: AsyncRead + AsyncWrite + Unpin + Resettable + Send + 'static,
{
    let (out_tx, mut out_rx) = mpsc::channel(LINK_QUEUE);
    let (kill, killed) = oneshot::channel::<()>();
    let accepted = Cmd::Accept {
        link,
        peer: peer.to_string(),
        out: Link {
            queue: out_tx,
            kill,
        },
    };
    if tx.send(accepted).await.is_err() {
        return;
    }
    // Reading and writing are independent, as on a real CSTA server: while a write waits for a
    // client that reads only once its own writes get through, what it sends is still read (a
    // client that never reads fills the link's queue and is closed by the driver).
    let (rd, mut wr) = tokio::io::split(stream);
    let (stop, stopped) = oneshot::channel::<()>();
    let mut reader = tokio::spawn(read_link(rd, link, tx.clone(), stopped));
    // Resolves only when the driver kills the link (dropping the handle is an orderly close).
    let mut killed = std::pin::pin!(async move {
        if killed.await.is_err() {
            std::future::pending::<()>().await;
        }
    });
    // A Close taken from the queue while joining frames into one write, handled after it.
    let mut close_after: Option<LinkOut> = None;
    // How the link ends: `Some(abort)` when the engine or the driver closes it (reset or in
    // order), `None` when the client closed it or a write failed.
    let closing = loop {
        let next = match close_after.take() {
            Some(c) => Some(c),
            None => tokio::select! {
                out = out_rx.recv() => out,
                // The client closed the link, or the driver is gone.
                _ = &mut reader => break None,
                () = &mut killed => break Some(true),
            },
        };
        match next {
            Some(LinkOut::Bytes(first)) => {
                // Frames queued together leave in one write (one system call per burst).
                let batch = rcc_protocol::batch::coalesce(
                    first,
                    || match out_rx.try_recv() {
                        Ok(LinkOut::Bytes(b)) => Some(b),
                        Ok(close) => {
                            close_after = Some(close);
                            None
                        }
                        Err(_) => None,
                    },
                    |_| {},
                );
                // A client that does not read leaves this write waiting: the driver kills the
                // link once its queue is full.
                tokio::select! {
                    written = wr.write_all(&batch) => if written.is_err() {
                        break None;
                    },
                    () = &mut killed => break Some(true),
                }
            }
            Some(LinkOut::Close { abort }) => break Some(abort),
            None => return,
        }
    };
    let Some(abort) = closing else {
        reader.abort();
        let _ = tx.send(Cmd::Gone { link }).await;
        return;
    };
    // Closed by the engine: the stream whole again, to reset it or to close it in order.
    let _ = stop.send(());
    if let Ok(rd) = reader.await {
        let mut stream = rd.unsplit(wr);
        if abort {
            stream.reset();
        } else {
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
        }
    }
}

/// Reads a link and hands what arrives to the driver, until the client closes it, the driver is
/// gone, or `stop`; gives the read half back for closing the stream.
async fn read_link<S: AsyncRead>(
    mut rd: tokio::io::ReadHalf<S>,
    link: LinkId,
    tx: mpsc::Sender<Cmd>,
    mut stop: oneshot::Receiver<()>,
) -> tokio::io::ReadHalf<S> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            _ = &mut stop => break,
            read = rd.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Cmd::Data { link, bytes: buf[..n].to_vec() }).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    rd
}

/// The driver's handle on a link's task.
struct Link {
    /// What is written to the client, in order, ending with an orderly close or a reset.
    queue: mpsc::Sender<LinkOut>,
    /// Resets the link at once, even while a write waits for a client that does not read.
    kill: oneshot::Sender<()>,
}

impl Link {
    /// Closes after what is queued, or resets at once when the queue has no room for the close.
    fn close(self, abort: bool) {
        if self.queue.try_send(LinkOut::Close { abort }).is_err() {
            let _ = self.kill.send(());
        }
    }
}

async fn drive(mut pbx: Pbx, mut rx: mpsc::Receiver<Cmd>) {
    let mut writers: HashMap<LinkId, Link> = HashMap::new();
    loop {
        let Some(wake) = rcc_net::wake(&mut rx, pbx.next_timeout()).await else {
            return;
        };
        let now = tokio::time::Instant::now().into_std();
        match wake {
            Wake::Deadline => pbx.handle_timeout(now),
            Wake::Command(Cmd::Accept { link, peer, out }) => {
                tracing::info!(link, %peer, "CSTA client connected");
                writers.insert(link, out);
                pbx.accept(link, &peer, now);
            }
            Wake::Command(Cmd::Data { link, bytes }) => pbx.receive(link, &bytes, now),
            Wake::Command(Cmd::Gone { link }) => {
                tracing::info!(link, "CSTA client disconnected");
                writers.remove(&link);
                pbx.disconnected(link);
            }
            Wake::Command(Cmd::Control(f)) => f(&mut pbx, now),
        }
        while let Some(output) = pbx.poll_output() {
            match output {
                Output::Send { link, bytes } => {
                    let stuck = writers
                        .get(&link)
                        .is_some_and(|w| w.queue.try_send(LinkOut::Bytes(bytes)).is_err());
                    if stuck {
                        tracing::warn!(link, "CSTA client does not read; resetting the link");
                        if let Some(w) = writers.remove(&link) {
                            let _ = w.kill.send(());
                        }
                        pbx.disconnected(link);
                    }
                }
                Output::Close {
                    link,
                    abort,
                    reason,
                } => {
                    tracing::info!(link, %reason, "closing CSTA link");
                    if let Some(w) = writers.remove(&link) {
                        w.close(abort);
                    }
                }
            }
        }
    }
}
