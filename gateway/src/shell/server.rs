//! The tokio shell around [`Gateway`]: SIP listeners (TLS, TCP) with the trusted-peer check,
//! one task per SIP connection (framing and parsing happen there), outbound connections for
//! requests to the Front End, the metrics endpoint, and one driver task that owns the engine and
//! its timers and the PBX connection (`shell/pbx.rs`); what the tasks tell it is `shell/cmd.rs`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rcc_net::pcap::Side;
use rcc_net::{Tasks, Wake, spawn_writer};
use rcc_protocol::sip::{Limits, StreamFramer, StreamItem};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use rcc_gateway_core::pbx::link::LinkOutput;
use rcc_gateway_core::{FlowId, Gateway, LimitReason, Metrics, Output, Policy, Target};

use super::admission::{Admission, Caps, RefusalLog, Slot, shown};
use super::cmd::Cmd;
use super::pbx::{CONNECT_TIMEOUT, PBX_QUEUE, PbxConn};
use super::tls;
use crate::config::{Config, PbxTransport, TrustedPeer};
use crate::observe::trace;

const DRIVER_QUEUE: usize = 8192;
/// Longest pause in reading a SIP connection that is owed half its queue.
const PAUSE_MAX: Duration = Duration::from_secs(2);
/// How often a paused connection looks whether its queue drained.
const PAUSE_CHECK: Duration = Duration::from_millis(2);
/// How long a closing connection may take to write what is still queued for it.
const LINGER: Duration = Duration::from_secs(5);
/// Open files the gateway keeps for itself beyond its SIP connections: listeners, the PBX
/// link, metrics scrapes, traces, configuration reads.
const OWN_FILES: u64 = 64;

/// Shared by the listener and connection tasks.
struct Shared {
    tx: mpsc::Sender<Cmd>,
    /// What a reload replaces: trusted peers and the TLS identity.
    transport: std::sync::RwLock<Transport>,
    /// End of validity of the SIP certificate (Unix seconds; `i64::MIN`: no TLS), for the
    /// metrics.
    certificate_not_after: Arc<std::sync::atomic::AtomicI64>,
    metrics: Arc<Metrics>,
    admission: Arc<Admission>,
    /// Lines about refused connections, throttled.
    refusals: RefusalLog,
    handshake_timeout: Duration,
    /// A message incomplete for longer closes its connection.
    message_timeout: Duration,
    /// A connection silent for longer is closed.
    idle_timeout: Option<Duration>,
    /// Messages queued per SIP connection before it is considered stuck (`sip.send_queue`).
    send_queue: usize,
    next_flow: AtomicU64,
    limits: Limits,
    tracer: Option<Arc<trace::Tracer>>,
}

/// Who may connect and how the gateway presents itself: built from the configuration at start
/// and again at each reload (renewed certificates are routine with Lync mutual TLS).
struct Transport {
    trusted: Vec<TrustedPeer>,
    /// The TLS listener's acceptor (the certificate presented, the client CA checked).
    acceptor: Option<TlsAcceptor>,
    /// For connections the gateway opens to a Front End: its certificate, the Front End's CA.
    client_tls: Option<Arc<ClientConfig>>,
}

impl Transport {
    fn build(config: &Config) -> anyhow::Result<(Transport, Option<i64>)> {
        let (acceptor, client_tls, not_after) = match &config.sip.tls {
            Some(t) => {
                let server: Arc<ServerConfig> = tls::sip_server(t)?;
                let client = match &t.client_ca {
                    Some(ca) => Some(tls::client(ca, Some((&t.cert, &t.key)))?),
                    None => None,
                };
                (
                    Some(TlsAcceptor::from(server)),
                    client,
                    Some(super::tls::not_after(&t.cert)?),
                )
            }
            None => (None, None, None),
        };
        Ok((
            Transport {
                trusted: config.sip.trusted_peers.clone(),
                acceptor,
                client_tls,
            },
            not_after,
        ))
    }
}

/// A running gateway; cheap to clone. It stops when the last clone is dropped.
#[derive(Clone)]
pub struct GatewayHandle {
    shared: Arc<Shared>,
    /// The TLS listener's address.
    pub sip_tls: Option<SocketAddr>,
    /// The TCP listener's address.
    pub sip_tcp: Option<SocketAddr>,
    /// The metrics endpoint's address.
    pub metrics_addr: Option<SocketAddr>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    _tasks: Arc<Tasks>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("sip_tls", &self.sip_tls)
            .field("sip_tcp", &self.sip_tcp)
            .finish_non_exhaustive()
    }
}

/// The seed of this run's tags and branches (the core has no entropy of its own).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

impl GatewayHandle {
    /// Starts the gateway: listeners, PBX link, metrics endpoint.
    pub async fn start(mut config: Config) -> anyhow::Result<GatewayHandle> {
        // A configuration built in code may not have had its files read yet.
        let problems = crate::config::read_files(&mut config);
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("; "));
        }
        let policy = Policy::build(&config).map_err(|p| anyhow!("{}", p.join("; ")))?;
        // Listeners first: a listener on port 0 (tests, labs) advertises the port it got in
        // its Via and Contact, not 0.
        let tcp_listener = match config.sip.listen_tcp {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow!("SIP TCP listener {addr}: {e}"))?,
            ),
            None => None,
        };
        let tls_listener = match (config.sip.listen_tls, &config.sip.tls) {
            (Some(addr), Some(_)) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow!("SIP TLS listener {addr}: {e}"))?,
            ),
            _ => None,
        };
        let sip_tcp = tcp_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let sip_tls = tls_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        if config.sip.port.is_none() && config.sip.advertised_port() == 0 {
            config.sip.port = sip_tls.or(sip_tcp).map(|a| a.port());
        }
        let config = Arc::new(config);
        let mut metrics = Metrics::new();
        let (transport, not_after) = Transport::build(&config)?;
        let certificate_not_after = Arc::new(std::sync::atomic::AtomicI64::new(
            not_after.unwrap_or(i64::MIN),
        ));
        metrics.register_collector(Box::new(crate::observe::process::ProcessCollector {
            certificate_not_after: certificate_not_after.clone(),
        }));
        let metrics = Arc::new(metrics);
        let now = tokio::time::Instant::now().into_std();
        let gateway = Gateway::new(config.clone(), policy, metrics.clone(), now, random_seed());
        let (tx, rx) = mpsc::channel(DRIVER_QUEUE);
        let tracer = match &config.observe.trace {
            Some(p) => Some(Arc::new(trace::Tracer::create(p)?)),
            None => None,
        };
        let caps = connection_caps(&config.sip);
        metrics
            .connection_limit
            .set(i64::try_from(caps.connections).unwrap_or(i64::MAX));
        let shared = Arc::new(Shared {
            tracer,
            tx: tx.clone(),
            transport: std::sync::RwLock::new(transport),
            certificate_not_after,
            metrics: metrics.clone(),
            admission: Admission::new(caps),
            refusals: RefusalLog::new(Duration::from_secs(10), 20),
            handshake_timeout: Duration::from_millis(config.sip.tls_handshake_timeout_ms),
            message_timeout: Duration::from_millis(config.sip.message_timeout_ms),
            idle_timeout: (config.sip.idle_timeout_s > 0)
                .then(|| Duration::from_secs(config.sip.idle_timeout_s)),
            send_queue: config.sip.send_queue,
            next_flow: AtomicU64::new(1),
            limits: Limits::default(),
        });
        let pbx_tls = match (&config.pbx.transport, &config.pbx.tls_ca) {
            (PbxTransport::Tls, Some(ca)) => Some(tls::client(ca, None)?),
            _ => None,
        };
        let session_traces = match &config.observe.session_traces {
            Some(c) => Some(trace::SessionTraces::new(
                c,
                metrics.session_traces_refused.clone(),
            )?),
            None => None,
        };
        let mut tasks = vec![tokio::spawn(drive(
            gateway,
            rx,
            shared.clone(),
            config.clone(),
            pbx_tls,
            session_traces,
        ))];
        if let Some(l) = tcp_listener {
            tasks.push(tokio::spawn(accept_loop(l, false, shared.clone())));
        }
        if let Some(l) = tls_listener {
            tasks.push(tokio::spawn(accept_loop(l, true, shared.clone())));
        }
        let metrics_addr = match config.observe.http {
            Some(addr) => Some(crate::observe::serve(metrics.clone(), addr).await?),
            None => None,
        };
        Ok(GatewayHandle {
            shared,
            sip_tls,
            sip_tcp,
            metrics_addr,
            metrics,
            _tasks: Arc::new(Tasks::from(tasks)),
        })
    }

    /// Replaces the trusted peers and the TLS identity (certificate, key, client CA) with a
    /// configuration's: new connections use them, open ones keep theirs. On an error nothing
    /// changes. Returns the new certificate's end of validity (Unix seconds), if TLS.
    pub fn reload_transport(&self, config: &Config) -> anyhow::Result<Option<i64>> {
        let (transport, not_after) = Transport::build(config)?;
        *self
            .shared
            .transport
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = transport;
        self.shared.certificate_not_after.store(
            not_after.unwrap_or(i64::MIN),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(not_after)
    }

    /// Runs `f` on the engine and returns its result.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Gateway, Instant) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        rcc_net::run_on(&self.shared.tx, Cmd::Control, f)
            .await
            .map_err(|_| anyhow!("the gateway has stopped"))
    }

    /// Sessions alive.
    pub async fn sessions(&self) -> anyhow::Result<usize> {
        self.with(|g, _| g.session_count()).await
    }

    /// SIP connections the gateway holds at most.
    pub fn connection_limit(&self) -> usize {
        self.shared.admission.caps().connections
    }

    /// SIP connections open.
    pub fn connections(&self) -> usize {
        self.shared.admission.open()
    }

    /// PBX monitors held.
    pub async fn monitors(&self) -> anyhow::Result<usize> {
        self.with(|g, _| g.monitor_count()).await
    }

    /// Whether the PBX link is up and normal.
    pub async fn pbx_serving(&self) -> anyhow::Result<bool> {
        self.with(|g, _| g.pbx_serving()).await
    }

    /// Graceful shutdown: BYE to every session, StopApplicationSession to the PBX; the
    /// outputs are flushed before this returns.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        self.with(|g, now| g.shutdown(now)).await?;
        // Let the writers drain.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }
}

fn trusted_ip(trusted: &[TrustedPeer], ip: IpAddr) -> bool {
    trusted.iter().any(|t| t.admits(ip))
}

/// The connection caps: `sip.max_connections`, or what the open-file limit leaves after the
/// gateway's own files, and never more than that.
fn connection_caps(sip: &crate::config::SipConfig) -> Caps {
    let files = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let room = usize::try_from(files.saturating_sub(OWN_FILES)).unwrap_or(usize::MAX);
    let connections = match sip.max_connections {
        0 => room,
        n if n > room => {
            tracing::warn!(
                configured = n,
                open_file_limit = files,
                "sip.max_connections is above what the open-file limit allows; using {room}"
            );
            room
        }
        n => n,
    };
    Caps {
        connections,
        reserved: sip.reserved_for_trusted.min(connections),
        per_peer: sip.max_connections_per_peer,
        handshakes: sip.max_tls_handshakes,
    }
}

impl Shared {
    /// Counts a connection refused or closed by a limit, and says so in the log unless too
    /// many have been said lately.
    fn limited(&self, reason: LimitReason, peer: SocketAddr) {
        self.metrics.limited(reason);
        let verb = if reason.closes_open_connection() {
            "closed"
        } else {
            "refused"
        };
        self.refused(peer, verb, reason.as_str());
    }

    /// A refusal line, throttled (the count of those not written goes with the next one).
    fn refused(&self, peer: SocketAddr, verb: &str, why: &str) {
        if let Some(unlogged) = self.refusals.allow(Instant::now()) {
            if unlogged > 0 {
                tracing::warn!(%peer, unlogged, "{verb}: {why} ({unlogged} more refused or closed connections not logged)");
            } else {
                tracing::warn!(%peer, "{verb}: {why}");
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, tls: bool, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = rcc_net::accept(&listener, "SIP").await;
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        // The acceptor and peers as of this connection (a reload changes later ones only).
        let (acceptor, trusted) = {
            let t = shared
                .transport
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (t.acceptor.clone().filter(|_| tls), t.trusted.clone())
        };
        let trusted_address = trusted_ip(&trusted, peer.ip());
        // Decided before any task or buffer exists for the connection.
        let slot = match shared.admission.admit(peer.ip(), trusted_address) {
            Ok(slot) => slot,
            Err(reason) => {
                shared.limited(reason, peer);
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            match acceptor {
                None => {
                    if trusted_address {
                        run_flow(stream, local, peer, None, shared.clone()).await;
                    } else {
                        shared.metrics.refused_peers.inc();
                        shared.refused(peer, "refused", "TCP peer is not a trusted IP");
                    }
                }
                Some(acceptor) => {
                    tls_flow(acceptor, stream, local, peer, &trusted, &slot, &shared).await
                }
            }
            drop(slot);
        });
    }
}

/// A TLS connection: the handshake (counted against the handshake caps unless the address is
/// trusted, and timed), the peer's certificate checked against the trusted names, then SIP.
async fn tls_flow(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    trusted: &[TrustedPeer],
    slot: &Slot,
    shared: &Arc<Shared>,
) {
    let trusted_address = trusted_ip(trusted, peer.ip());
    let handshake = if trusted_address {
        None
    } else {
        match slot.handshake() {
            Ok(h) => Some(h),
            Err(reason) => return shared.limited(reason, peer),
        }
    };
    shared.metrics.tls_handshakes.inc();
    let accepted = tokio::time::timeout(shared.handshake_timeout, acceptor.accept(stream)).await;
    shared.metrics.tls_handshakes.dec();
    drop(handshake);
    match accepted {
        Ok(Ok(s)) => {
            let names_ok = s
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .is_some_and(|cert| {
                    trusted.iter().any(|t| {
                        t.name
                            .as_deref()
                            .is_some_and(|n| tls::cert_matches(cert, n))
                    })
                });
            if names_ok || trusted_address {
                run_flow(s, local, peer, None, shared.clone()).await;
            } else {
                shared.metrics.refused_peers.inc();
                shared.refused(
                    peer,
                    "refused",
                    "TLS peer certificate names no trusted peer",
                );
            }
        }
        Ok(Err(e)) => {
            shared.metrics.refused_peers.inc();
            shared.refused(
                peer,
                "refused",
                &format!("TLS handshake failed: {}", shown(&e.to_string())),
            );
        }
        Err(_) => shared.limited(LimitReason::HandshakeTimeout, peer),
    }
}

/// Reads SIP from a connection; a writer task sends what the driver queues for it.
async fn run_flow<S>(
    stream: S,
    local: SocketAddr,
    peer: SocketAddr,
    target: Option<Target>,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    shared.metrics.connection_opened(peer.ip());
    run_connection(stream, local, peer, target, &shared).await;
    shared.metrics.connection_closed(peer.ip());
}

async fn run_connection<S>(
    stream: S,
    local: SocketAddr,
    peer: SocketAddr,
    target: Option<Target>,
    shared: &Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let flow = FlowId(shared.next_flow.fetch_add(1, Ordering::Relaxed));
    // The gateway opened the connections it has a target for.
    let opener = match &target {
        Some(_) => Side::Local,
        None => Side::Peer,
    };
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(shared.send_queue);
    // A weak handle on the queue, so that it still closes when the driver lets the connection
    // go: to see how deep it is, and to queue keep-alive answers in order with the rest.
    let queue = out_tx.downgrade();
    let unread = Arc::new(AtomicUsize::new(0));
    let (open, mut closed) = oneshot::channel::<()>();
    if shared
        .tx
        .send(Cmd::FlowUp {
            flow,
            out: out_tx,
            open,
            unread: unread.clone(),
            target,
            ends: (local, peer),
        })
        .await
        .is_err()
    {
        return;
    }
    // Opened in the trace before the writer can record anything on it.
    let mut in_trace = shared
        .tracer
        .clone()
        .map(|t| trace::FlowTrace::new(t, local, peer, opener));
    let (mut rd, wr) = tokio::io::split(stream);
    let tracer = shared.tracer.clone();
    // Aborted when this task ends, unless it finished first.
    let mut writer = spawn_writer(wr, out_rx, move |b| {
        if let Some(t) = &tracer {
            t.data(local, peer, trace::Way::Out, b);
        }
    });
    let mut framer = StreamFramer::new(shared.limits);
    let mut buf = vec![0u8; 64 * 1024];
    // Answers this connection may already owe: queued for the writer, or requests handed to the
    // driver and not yet taken up (at most one answer each, unless the driver lags behind).
    let owed = || {
        queue
            .upgrade()
            .map_or(0, |q| shared.send_queue - q.capacity())
            + unread.load(Ordering::Relaxed)
    };
    // A peer reading slower than it asks: once half its queue is owed, no further request is
    // taken from it, so that TCP holds the peer back (answers to what it sends would only deepen
    // the queue), but for PAUSE_MAX at most: a peer that reads only once its own writes get
    // through would otherwise wait for the gateway as the gateway waits for it. Read on past
    // that, its new work gets 503 (the engine) while the queue stays deep; full, the connection
    // is closed. The check comes before each request, not each read: one read can hold hundreds.
    let mut paused: Option<Instant> = None;
    // When the bytes of the requests being framed were read.
    let mut at = Instant::now();
    // Since when the message being framed is incomplete (its first bytes' read).
    let mut partial_since: Option<Instant> = None;
    // Whether what is still queued may be written once reading ends.
    let drain = 'conn: loop {
        if owed() < shared.send_queue / 2 {
            paused = None;
        } else if paused.get_or_insert_with(Instant::now).elapsed() < PAUSE_MAX {
            tokio::select! {
                () = tokio::time::sleep(PAUSE_CHECK) => continue,
                _ = writer.handle() => break false,
                _ = &mut closed => break false,
            }
        }
        let item = framer.next_item();
        if let (Ok(Some(_)), Some(t)) = (&item, &mut in_trace) {
            t.framed(framer.buffered());
        }
        if !matches!(item, Ok(None)) {
            partial_since = None;
        }
        match item {
            Ok(Some(StreamItem::Message(msg))) => {
                unread.fetch_add(1, Ordering::Relaxed);
                if shared.tx.send(Cmd::Sip { flow, msg, at }).await.is_err() {
                    break true;
                }
                continue;
            }
            Ok(Some(StreamItem::Ping)) => {
                let queued = queue
                    .upgrade()
                    .is_some_and(|q| q.try_send(b"\r\n".to_vec()).is_ok());
                if !queued {
                    break true;
                }
                continue;
            }
            Ok(Some(StreamItem::Pong)) => continue,
            // A request whose head does not parse gets its 400 or 505 here, as no message
            // reaches the engine; when its length is unknown, the connection then closes.
            Ok(Some(StreamItem::Rejected(r))) => {
                shared.metrics.malformed.inc();
                tracing::warn!(%peer, error = %shown(&r.error.to_string()), "unparsable SIP message");
                if let Some(answer) = r.answer {
                    shared.metrics.sip_response(r.error.status_code());
                    let queued = queue.upgrade().is_some_and(|q| q.try_send(answer).is_ok());
                    if !queued {
                        break true;
                    }
                }
                continue;
            }
            Ok(None) => {
                if framer.buffered() > 0 {
                    partial_since.get_or_insert(at);
                }
            }
            Err(e) => {
                shared.metrics.malformed.inc();
                tracing::warn!(%peer, error = %shown(&e.to_string()), "SIP framing lost; closing the connection");
                break true;
            }
        }
        // The earlier of: the incomplete message's time running out, the connection's idle time.
        let deadline = [
            partial_since.map(|t| (t + shared.message_timeout, LimitReason::MessageTimeout)),
            shared.idle_timeout.map(|d| (at + d, LimitReason::Idle)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(t, _)| *t);
        let expiry = async {
            match deadline {
                Some((t, _)) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = expiry => {
                if let Some((_, reason)) = deadline {
                    shared.limited(reason, peer);
                }
                break 'conn true;
            }
            read = rd.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break 'conn true,
                    Ok(n) => n,
                };
                at = Instant::now();
                if let Some(t) = &mut in_trace {
                    t.read(&buf[..n]);
                }
                framer.push(&buf[..n]);
            }
            // The writer ended: a write failed.
            _ = writer.handle() => break false,
            // The driver gave the connection up (its queue overflowed): its peer is not reading.
            _ = &mut closed => break false,
        }
    };
    // The driver drops its queue handle; the writer then sends what is left and closes, unless
    // the peer no longer reads at all.
    let _ = shared.tx.send(Cmd::FlowDown { flow }).await;
    if drain {
        let _ = tokio::time::timeout(LINGER, writer.handle()).await;
    }
    drop(writer);
    if let Some(t) = in_trace {
        t.closed();
    }
}

async fn connect_outbound(target: Target, shared: Arc<Shared>, first: Vec<u8>) {
    let addr = format!("{}:{}", target.host, target.port);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(%addr, error = %e, "cannot connect to the Front End");
            let _ = shared.tx.send(Cmd::OutboundFailed { target }).await;
            return;
        }
        Err(_) => {
            tracing::warn!(%addr, "connecting to the Front End timed out");
            let _ = shared.tx.send(Cmd::OutboundFailed { target }).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let local = tcp
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let peer = tcp
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    if let Some(t) = &shared.tracer {
        t.data(local, peer, trace::Way::Out, &first);
    }
    if target.tls {
        let (Some(config), Ok(name)) = (
            shared
                .transport
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .client_tls
                .clone(),
            ServerName::try_from(target.host.clone()),
        ) else {
            tracing::warn!(%addr, "no TLS client configuration (sip.tls.client_ca) for the Front End");
            let _ = shared.tx.send(Cmd::OutboundFailed { target }).await;
            return;
        };
        match TlsConnector::from(config).connect(name, tcp).await {
            Ok(mut s) => {
                if s.write_all(&first).await.is_ok() {
                    run_flow(s, local, peer, Some(target), shared).await;
                }
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "TLS to the Front End failed");
                let _ = shared.tx.send(Cmd::OutboundFailed { target }).await;
            }
        }
    } else {
        let mut tcp = tcp;
        if tcp.write_all(&first).await.is_ok() {
            run_flow(tcp, local, peer, Some(target), shared).await;
        }
    }
}

/// A SIP connection as the driver sees it: its send queue, and a handle whose drop closes it.
struct FlowOut {
    queue: mpsc::Sender<Vec<u8>>,
    /// Requests its reader handed over and the driver has not yet taken up: the reader counts
    /// them with the queue, so that a lagging driver cannot hide how much the peer is owed.
    unread: Arc<AtomicUsize>,
    /// Dropped with the entry: the connection's tasks end at once, even while a write waits
    /// for a peer that no longer reads.
    _open: oneshot::Sender<()>,
}

/// A SIP connection whose queue is full: dropping one message would silently lose a transaction,
/// so the connection is closed instead, at once (its peer is not reading), and counted. The
/// Front End opens a new one; the gateway reaches dialogs through their route target meanwhile.
fn stuck_flow(flows: &mut HashMap<FlowId, FlowOut>, flow: FlowId, shared: &Shared) {
    if flows.remove(&flow).is_some() {
        shared.metrics.queue_overflows.inc();
        tracing::error!(
            %flow,
            queued = shared.send_queue,
            "SIP peer does not take what is sent to it; closing the connection"
        );
    }
}

async fn drive(
    mut gw: Gateway,
    mut rx: mpsc::Receiver<Cmd>,
    shared: Arc<Shared>,
    config: Arc<Config>,
    pbx_tls: Option<Arc<ClientConfig>>,
    mut session_traces: Option<trace::SessionTraces>,
) {
    let mut flows: HashMap<FlowId, FlowOut> = HashMap::new();
    let mut outbound: HashMap<Target, FlowId> = HashMap::new();
    let mut connecting: HashMap<Target, Vec<Vec<u8>>> = HashMap::new();
    let mut pbx = PbxConn::new(&config, pbx_tls, shared.tx.clone(), shared.tracer.clone());
    let mut flow_ends: HashMap<FlowId, (SocketAddr, SocketAddr)> = HashMap::new();

    loop {
        let Some(wake) = rcc_net::wake(&mut rx, gw.next_timeout()).await else {
            return;
        };
        let now = tokio::time::Instant::now().into_std();
        // For what was read from a peer: how long until the step's outputs are queued.
        let mut residence: Option<(&'static str, Instant)> = None;
        match wake {
            Wake::Deadline => gw.handle_timeout(now),
            Wake::Command(Cmd::FlowUp {
                flow,
                out,
                open,
                unread,
                target,
                ends,
            }) => {
                flows.insert(
                    flow,
                    FlowOut {
                        queue: out.clone(),
                        unread,
                        _open: open,
                    },
                );
                flow_ends.insert(flow, ends);
                gw.flow_opened(flow, ends.1);
                if let Some(t) = target {
                    for bytes in connecting.remove(&t).unwrap_or_default() {
                        let _ = out.try_send(bytes);
                    }
                    outbound.insert(t, flow);
                }
            }
            Wake::Command(Cmd::Sip { flow, msg, at }) => {
                residence = Some(("sip", at));
                gw.begin_step(at);
                let out = flows.get(&flow);
                if let Some(f) = out {
                    f.unread.fetch_sub(1, Ordering::Relaxed);
                }
                // More than half the queue waiting: the peer reads slower than it asks.
                let backed_up = out.is_some_and(|f| f.queue.capacity() < shared.send_queue / 2);
                gw.set_flow_congested(flow, backed_up);
                gw.sip_message(flow, msg, now);
            }
            Wake::Command(Cmd::FlowDown { flow }) => {
                gw.flow_closed(flow);
                flows.remove(&flow);
                flow_ends.remove(&flow);
                outbound.retain(|_, f| *f != flow);
            }
            Wake::Command(Cmd::OutboundFailed { target }) => {
                connecting.remove(&target);
            }
            Wake::Command(Cmd::PbxUp { conn, out, ends }) => {
                if pbx.up(conn, out, ends) {
                    gw.pbx_connected(now);
                }
            }
            Wake::Command(Cmd::PbxBytes { conn, bytes, at }) => {
                if pbx.is_current(conn) {
                    residence = Some(("pbx", at));
                    gw.begin_step(at);
                    gw.pbx_bytes(&bytes, now);
                }
            }
            Wake::Command(Cmd::PbxDown { conn, reason }) => {
                if pbx.down(conn) {
                    gw.pbx_disconnected(&reason, now);
                }
            }
            Wake::Command(Cmd::Control(f)) => f(&mut gw, now),
        }
        while let Some(output) = gw.poll_output() {
            match output {
                Output::Respond { flow, bytes } => {
                    if let Some(w) = flows.get(&flow)
                        && w.queue.try_send(bytes).is_err()
                    {
                        stuck_flow(&mut flows, flow, &shared);
                    }
                }
                Output::Request {
                    flow,
                    target,
                    bytes,
                } => {
                    // The dialog's own connection, else one we opened to its next hop.
                    let via = std::iter::once(flow)
                        .chain(outbound.get(&target).copied())
                        .find_map(|f| flows.get(&f).map(|w| (f, &w.queue)));
                    match via {
                        Some((f, w)) => {
                            if w.try_send(bytes).is_err() {
                                stuck_flow(&mut flows, f, &shared);
                            }
                        }
                        None => {
                            if target.host.is_empty() {
                                tracing::warn!("in-dialog request without a routable target");
                            } else if let Some(q) = connecting.get_mut(&target) {
                                if q.len() < shared.send_queue {
                                    q.push(bytes);
                                }
                            } else {
                                connecting.insert(target.clone(), Vec::new());
                                tokio::spawn(connect_outbound(target, shared.clone(), bytes));
                            }
                        }
                    }
                }
                Output::Pbx(LinkOutput::Connect { attempt }) => pbx.connect(attempt),
                Output::Pbx(LinkOutput::Send(bytes)) => {
                    if pbx.send(bytes) {
                        // A lost link is recovered (reconnect, monitors re-created, calls
                        // reconciled).
                        shared.metrics.queue_overflows.inc();
                        gw.pbx_disconnected(
                            &format!("the PBX did not take {PBX_QUEUE} queued frames"),
                            now,
                        );
                    }
                }
                Output::Trace(note) => {
                    if let Some(t) = &mut session_traces {
                        t.note(note, |f| flow_ends.get(&f).copied(), pbx.ends());
                    }
                }
                Output::Pbx(LinkOutput::Close) => pbx.close(),
            }
        }
        if let Some((input, at)) = residence {
            let done = Instant::now();
            shared
                .metrics
                .residence(input, done.saturating_duration_since(at).as_secs_f64());
            gw.end_step(done);
        }
    }
}
