//! The async shell around [`Frontend`]: connections to gateways (dialled per static route, or
//! accepted on the pool's server port), one driver task owning the pool and its endpoints, and
//! [`LyncSim`], the in-process API tests and scenarios drive.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rcc_net::{Control, Tasks, Wake};
use rcc_protocol::csta::{self, Event, Request};
use rcc_protocol::sip::{Limits, Message, StreamFramer, StreamItem};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::endpoint::{ActionResult, EndpointConfig, Phase, Seen};
use super::frontend::{
    ConnId, EndpointId, Frontend, PeerIdentity, PoolConfig, PoolOutput, RouteTransport, StaticRoute,
};
use super::registrar::ClientUser;
use crate::tls::{ClientAuth, Identity};

const QUEUE: usize = 8192;
/// Messages queued per connection to the gateway: deep, because a pool of 120,000 endpoints
/// signs in through one connection, and a message dropped here would be a failure the gateway
/// did not cause.
const CONN_QUEUE: usize = 1 << 18;
const POLL: Duration = Duration::from_millis(5);

/// Who is at the other end of a connection.
enum Role {
    /// A gateway: dialled for a static route, or accepted on the pool's server port.
    Gateway {
        route: Option<usize>,
        peer: PeerIdentity,
    },
    /// A real client, accepted on the clients' port.
    Client,
}

enum Cmd {
    Up {
        conn: ConnId,
        role: Role,
        out: mpsc::Sender<Vec<u8>>,
    },
    Msg {
        conn: ConnId,
        msg: Message,
    },
    Down {
        conn: Option<ConnId>,
        route: Option<usize>,
    },
    Control(Control<Frontend>),
}

/// The pool's TLS material.
#[derive(Debug, Clone)]
pub struct PoolTls {
    /// The pool's certificate (server and client: Lync uses mutual TLS).
    pub identity: Identity,
    /// CAs trusted for gateway certificates.
    pub roots: RootCertStore,
}

/// How to run the simulated Lync side.
#[derive(Debug, Clone)]
pub struct LyncSimConfig {
    /// The pool topology.
    pub pool: PoolConfig,
    /// Where the pool listens for connections gateways open (None: only dialled connections).
    pub listen: Option<SocketAddr>,
    /// TLS material (needed for TLS routes and a TLS listener).
    pub tls: Option<PoolTls>,
    /// Host names of route destinations and where the lab reaches them (lab DNS).
    pub hosts: HashMap<String, LabAddress>,
    /// Where real clients (pidgin-sipe) sign in over TCP, and as whom.
    pub clients: Option<ClientListener>,
}

/// The pool's registrar port for real clients.
#[derive(Debug, Clone)]
pub struct ClientListener {
    /// TCP address clients connect to.
    pub listen: SocketAddr,
    /// Users they may sign in as.
    pub users: Vec<ClientUser>,
}

/// Where the lab reaches a route destination: an address (on the route's port), or an address
/// and port, for a lab gateway that listens elsewhere than the (exported) route says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum LabAddress {
    /// `10.0.0.30`
    Ip(IpAddr),
    /// `127.0.0.1:40123`
    Socket(SocketAddr),
}

impl LabAddress {
    /// The socket address for a route on `port`.
    pub fn on_port(self, port: u16) -> SocketAddr {
        match self {
            LabAddress::Ip(ip) => SocketAddr::new(ip, port),
            LabAddress::Socket(s) => s,
        }
    }

    /// The IP address.
    pub fn ip(self) -> IpAddr {
        match self {
            LabAddress::Ip(ip) => ip,
            LabAddress::Socket(s) => s.ip(),
        }
    }
}

impl From<IpAddr> for LabAddress {
    fn from(ip: IpAddr) -> Self {
        LabAddress::Ip(ip)
    }
}

impl TryFrom<String> for LabAddress {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if let Ok(ip) = s.parse() {
            return Ok(LabAddress::Ip(ip));
        }
        s.parse().map(LabAddress::Socket).map_err(|_| {
            format!("{s:?} is neither an IP address nor an address with a port (127.0.0.1:5065)")
        })
    }
}

/// A running Lync simulator (pool and endpoints); cheap to clone.
#[derive(Clone)]
pub struct LyncSim {
    tx: mpsc::Sender<Cmd>,
    /// Address of the pool's listener, when it has one.
    pub listen_addr: Option<SocketAddr>,
    /// Address real clients sign in at, when the pool serves them.
    pub clients_addr: Option<SocketAddr>,
    _tasks: Arc<Tasks>,
}

impl std::fmt::Debug for LyncSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LyncSim")
            .field("listen_addr", &self.listen_addr)
            .finish_non_exhaustive()
    }
}

struct Dialer {
    pool: PoolConfig,
    hosts: HashMap<String, LabAddress>,
    client_tls: Option<Arc<ClientConfig>>,
    tx: mpsc::Sender<Cmd>,
    next_conn: std::sync::atomic::AtomicU64,
    trusted_names: Vec<String>,
}

impl LyncSim {
    /// Starts the pool.
    pub async fn start(config: LyncSimConfig) -> anyhow::Result<LyncSim> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let client_tls = match &config.tls {
            Some(t) => Some(crate::tls::client_config(
                t.roots.clone(),
                Some(&t.identity),
            )?),
            None => None,
        };
        let trusted_names = config
            .pool
            .trusted_applications
            .iter()
            .flat_map(|t| {
                std::iter::once(t.pool_fqdn.clone())
                    .chain(t.computers.iter().map(|c| c.fqdn.clone()))
            })
            .collect();
        let dialer = Arc::new(Dialer {
            pool: config.pool.clone(),
            hosts: config.hosts.clone(),
            client_tls,
            tx: tx.clone(),
            next_conn: std::sync::atomic::AtomicU64::new(1),
            trusted_names,
        });
        let mut fe = Frontend::new(config.pool.clone());
        let mut clients_addr = None;
        let mut client_listener = None;
        if let Some(c) = &config.clients {
            fe.serve_clients(c.users.clone());
            let l = TcpListener::bind(c.listen)
                .await
                .map_err(|e| anyhow!("Front End listener for clients {}: {e}", c.listen))?;
            clients_addr = Some(l.local_addr()?);
            client_listener = Some(l);
        }
        let mut tasks = vec![tokio::spawn(drive(fe, rx, dialer.clone()))];
        if let Some(l) = client_listener {
            tasks.push(tokio::spawn(accept_clients(l, dialer.clone())));
        }
        let mut listen_addr = None;
        if let Some(addr) = config.listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow!("Front End listener {addr}: {e}"))?;
            listen_addr = Some(l.local_addr()?);
            let acceptor = match &config.tls {
                Some(t) => Some(TlsAcceptor::from(server_config(t)?)),
                None => None,
            };
            tasks.push(tokio::spawn(accept_loop(l, acceptor, dialer)));
        }
        Ok(LyncSim {
            tx,
            listen_addr,
            clients_addr,
            _tasks: Arc::new(Tasks::from(tasks)),
        })
    }

    /// Runs `f` on the pool (in the driver task); endpoint output is flushed afterwards.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Frontend, Instant) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let flushed = move |fe: &mut Frontend, now| {
            let out = f(fe, now);
            fe.flush(now);
            out
        };
        rcc_net::run_on(&self.tx, Cmd::Control, flushed)
            .await
            .map_err(|_| anyhow!("the Lync simulator has stopped"))
    }

    /// Adds an endpoint.
    pub async fn add_endpoint(&self, config: EndpointConfig) -> anyhow::Result<EndpointId> {
        self.with(move |fe, _| fe.add_endpoint(config)).await
    }

    /// Starts signing an endpoint in.
    pub async fn sign_in(&self, id: EndpointId) -> anyhow::Result<()> {
        self.with(move |fe, now| {
            if let Some(e) = fe.endpoint_mut(id) {
                e.sign_in(now);
            }
        })
        .await
    }

    /// Signs an endpoint out (MonitorStop, BYE).
    pub async fn sign_out(&self, id: EndpointId) -> anyhow::Result<()> {
        self.with(move |fe, now| {
            if let Some(e) = fe.endpoint_mut(id) {
                e.sign_out(now);
            }
        })
        .await
    }

    /// Sends the endpoint's refresh now (re-INVITE or UPDATE per profile).
    pub async fn refresh(&self, id: EndpointId) -> anyhow::Result<()> {
        self.with(move |fe, now| {
            if let Some(e) = fe.endpoint_mut(id) {
                e.refresh(now);
            }
        })
        .await
    }

    /// The endpoint's phase.
    pub async fn phase(&self, id: EndpointId) -> anyhow::Result<Phase> {
        self.with(move |fe, _| fe.endpoint(id).map(|e| e.phase().clone()))
            .await?
            .ok_or_else(|| anyhow!("no endpoint {id}"))
    }

    /// Waits until `check` holds for the endpoint, polling; fails after `wait`.
    pub async fn wait_for<T: Send + 'static>(
        &self,
        id: EndpointId,
        wait: Duration,
        what: &str,
        check: impl Fn(&super::endpoint::Endpoint) -> Option<T> + Send + Sync + 'static,
    ) -> anyhow::Result<T> {
        let check = Arc::new(check);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let c = check.clone();
            let found = self
                .with(move |fe, _| fe.endpoint(id).and_then(|e| c(e)))
                .await?;
            if let Some(v) = found {
                return Ok(v);
            }
            if tokio::time::Instant::now() >= deadline {
                let state = self
                    .with(move |fe, _| {
                        fe.endpoint(id).map(|e| {
                            format!(
                                "phase {:?}, {} events, violations {:?}",
                                e.phase(),
                                e.events().len(),
                                e.violations()
                            )
                        })
                    })
                    .await?
                    .unwrap_or_default();
                return Err(anyhow!(
                    "endpoint {id}: {what} did not happen within {wait:?} ({state})"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the endpoint monitors its line (or fails to).
    pub async fn wait_ready(&self, id: EndpointId, wait: Duration) -> anyhow::Result<String> {
        let phase = self
            .wait_for(id, wait, "sign-in", |e| match e.phase() {
                Phase::Ready => e.xref().map(|x| Ok(x.to_owned())),
                Phase::Failed(why) => Some(Err(why.clone())),
                Phase::Degraded(s) => Some(Err(format!("systemStatus {s}"))),
                _ => None,
            })
            .await?;
        phase.map_err(|why| anyhow!("endpoint {id} did not sign in: {why}"))
    }

    /// Sends a CSTA request and waits for its answer.
    pub async fn request(
        &self,
        id: EndpointId,
        request: Request,
        wait: Duration,
    ) -> anyhow::Result<ActionResult> {
        let action = self
            .with(move |fe, now| fe.endpoint_mut(id).and_then(|e| e.request(request, now)))
            .await?
            .ok_or_else(|| anyhow!("no endpoint {id}"))?;
        self.outcome(id, action, wait).await
    }

    /// Waits for the outcome of an endpoint's action.
    async fn outcome(
        &self,
        id: EndpointId,
        action: super::endpoint::ActionId,
        wait: Duration,
    ) -> anyhow::Result<ActionResult> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let r = self
                .with(move |fe, _| fe.endpoint_mut(id).and_then(|e| e.take_result(action)))
                .await?;
            if let Some(r) = r {
                return Ok(r);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(anyhow!("endpoint {id}: no answer within {wait:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sends an INFO with any body and waits for its outcome.
    pub async fn raw_info(
        &self,
        id: EndpointId,
        content_type: &str,
        body: Vec<u8>,
        wait: Duration,
    ) -> anyhow::Result<ActionResult> {
        let ct = content_type.to_owned();
        let action = self
            .with(move |fe, now| fe.endpoint_mut(id).map(|e| e.raw_info(&ct, body, now)))
            .await?
            .ok_or_else(|| anyhow!("no endpoint {id}"))?;
        self.outcome(id, action, wait).await
    }

    /// Waits for an event after position `after` (an index into the endpoint's event list)
    /// that satisfies `matches`; returns it with its index.
    pub async fn wait_event(
        &self,
        id: EndpointId,
        after: usize,
        wait: Duration,
        what: &str,
        matches: impl Fn(&Event) -> bool + Send + Sync + 'static,
    ) -> anyhow::Result<(usize, Event)> {
        self.wait_for(id, wait, what, move |e| {
            e.events()
                .iter()
                .enumerate()
                .skip(after)
                .find(|(_, s)| matches(&s.event))
                .map(|(i, s)| (i, s.event.clone()))
        })
        .await
    }

    /// Waits for the first call event of `kind` at index `after` or later; returns its index
    /// and the event.
    pub async fn wait_call_event(
        &self,
        id: EndpointId,
        after: usize,
        wait: Duration,
        kind: csta::CallEventKind,
    ) -> anyhow::Result<(usize, csta::CallEvent)> {
        let (i, e) = self
            .wait_event(
                id,
                after,
                wait,
                kind.root_name(),
                move |e| matches!(e, Event::Call(c) if c.kind == kind),
            )
            .await?;
        match e {
            Event::Call(c) => Ok((i, c)),
            _ => Err(anyhow!("endpoint {id}: event {i} is not a call event")),
        }
    }

    /// The endpoint's events so far.
    pub async fn events(&self, id: EndpointId) -> anyhow::Result<Vec<Seen>> {
        self.with(move |fe, _| {
            fe.endpoint(id)
                .map(|e| e.events().to_vec())
                .unwrap_or_default()
        })
        .await
    }

    /// Rules the gateway broke, as the endpoint saw them.
    pub async fn violations(&self, id: EndpointId) -> anyhow::Result<Vec<String>> {
        self.with(move |fe, _| {
            fe.endpoint(id)
                .map(|e| e.violations().to_vec())
                .unwrap_or_default()
        })
        .await
    }

    /// Every message the pool saw, in order.
    pub async fn trace(&self) -> anyhow::Result<Vec<super::frontend::TraceEntry>> {
        self.with(|fe, _| fe.trace()).await
    }

    /// The pool's counters.
    pub async fn stats(&self) -> anyhow::Result<super::frontend::PoolStats> {
        self.with(|fe, _| fe.stats().clone()).await
    }
}

/// Shorthand for a CSTA answer that must be a positive response.
pub fn expect_response(r: ActionResult) -> anyhow::Result<csta::Response> {
    match r {
        Ok(csta::Message::Response(resp)) => Ok(resp),
        Ok(csta::Message::Error(e)) => {
            Err(anyhow!("CSTAErrorCode {}/{}", e.category.as_str(), e.value))
        }
        Ok(other) => Err(anyhow!("unexpected answer {other:?}")),
        Err(e) => Err(anyhow!("{e}")),
    }
}

fn server_config(t: &PoolTls) -> anyhow::Result<Arc<ServerConfig>> {
    crate::tls::server_config(&t.identity, ClientAuth::Optional(t.roots.clone()))
}

fn cert_names(cert: Option<&CertificateDer<'_>>, candidates: &[String]) -> Vec<String> {
    let Some(cert) = cert else {
        return Vec::new();
    };
    candidates
        .iter()
        .filter(|n| rcc_net::tls::cert_matches(cert, n))
        .cloned()
        .collect()
}

async fn accept_loop(l: TcpListener, tls: Option<TlsAcceptor>, dialer: Arc<Dialer>) {
    loop {
        let (stream, peer) = rcc_net::accept(&l, "Front End").await;
        let dialer = dialer.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let conn = dialer
                .next_conn
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match tls {
                None => {
                    let id = PeerIdentity {
                        ip: Some(peer.ip()),
                        cert_names: Vec::new(),
                    };
                    let role = Role::Gateway {
                        route: None,
                        peer: id,
                    };
                    run_conn(stream, conn, role, dialer.tx.clone()).await;
                }
                Some(a) => {
                    match tokio::time::timeout(Duration::from_secs(10), a.accept(stream)).await {
                        Ok(Ok(s)) => {
                            let names = cert_names(
                                s.get_ref().1.peer_certificates().and_then(|c| c.first()),
                                &dialer.trusted_names,
                            );
                            let id = PeerIdentity {
                                ip: Some(peer.ip()),
                                cert_names: names,
                            };
                            let role = Role::Gateway {
                                route: None,
                                peer: id,
                            };
                            run_conn(s, conn, role, dialer.tx.clone()).await;
                        }
                        _ => tracing::warn!(%peer, "TLS handshake with the Front End failed"),
                    }
                }
            }
        });
    }
}

async fn dial(route: usize, dialer: Arc<Dialer>) {
    let Some(r) = dialer.pool.static_routes.get(route).cloned() else {
        return;
    };
    let conn = dialer
        .next_conn
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let fail = |why: String| {
        let tx = dialer.tx.clone();
        async move {
            tracing::warn!("Front End cannot reach the gateway: {why}");
            let _ = tx
                .send(Cmd::Down {
                    conn: None,
                    route: Some(route),
                })
                .await;
        }
    };
    let mut addrs = route_addresses(&dialer.pool, &dialer.hosts, &r);
    if addrs.is_empty() {
        match tokio::net::lookup_host((r.destination.as_str(), r.port)).await {
            Ok(found) => addrs.extend(found),
            Err(e) => return fail(format!("{}: {e}", r.destination)).await,
        }
    }
    if addrs.is_empty() {
        return fail(format!("{} does not resolve", r.destination)).await;
    }
    // DNS load balancing over the pool's computers: each connection starts at the next one,
    // and one that cannot be reached is skipped.
    let start = conn as usize % addrs.len();
    addrs.rotate_left(start);
    let tls = match r.transport {
        RouteTransport::Tcp => None,
        RouteTransport::Tls => {
            let (Some(config), Ok(name)) = (
                dialer.client_tls.clone(),
                ServerName::try_from(r.destination.clone()),
            ) else {
                return fail("TLS route without pool TLS material".into()).await;
            };
            Some((TlsConnector::from(config), name))
        }
    };
    // A computer is skipped when it cannot be connected to or fails the TLS handshake.
    let mut refused = Vec::new();
    for addr in addrs {
        let tcp = match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                refused.push(format!("{addr}: {e}"));
                continue;
            }
            Err(_) => {
                refused.push(format!("{addr}: connect timed out"));
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let role = Role::Gateway {
            route: Some(route),
            peer: PeerIdentity {
                ip: Some(addr.ip()),
                cert_names: Vec::new(),
            },
        };
        match &tls {
            None => return run_conn(tcp, conn, role, dialer.tx.clone()).await,
            Some((connector, name)) => match connector.connect(name.clone(), tcp).await {
                Ok(s) => return run_conn(s, conn, role, dialer.tx.clone()).await,
                Err(e) => refused.push(format!("TLS to {} at {addr}: {e}", r.destination)),
            },
        }
    }
    fail(refused.join("; ")).await
}

/// Where a static route leads, without DNS: the computers of the trusted application pool
/// it names (by the lab's DNS, else their addresses), or its destination as the lab's DNS or an
/// IP address gives it. Empty: the destination is for the system's resolver.
fn route_addresses(
    pool: &PoolConfig,
    hosts: &HashMap<String, LabAddress>,
    r: &StaticRoute,
) -> Vec<SocketAddr> {
    let computers: Vec<SocketAddr> = pool
        .trusted_applications
        .iter()
        .filter(|t| t.pool_fqdn.eq_ignore_ascii_case(&r.destination))
        .flat_map(|t| &t.computers)
        .filter_map(|c| match hosts.get(&c.fqdn) {
            Some(a) => Some(a.on_port(r.port)),
            None => c.ip.map(|ip| SocketAddr::new(ip, r.port)),
        })
        .collect();
    if !computers.is_empty() {
        return computers;
    }
    match hosts.get(&r.destination) {
        Some(a) => vec![a.on_port(r.port)],
        None => r
            .destination
            .parse::<IpAddr>()
            .map(|ip| vec![SocketAddr::new(ip, r.port)])
            .unwrap_or_default(),
    }
}

/// Real clients' connections, on the clients' port.
async fn accept_clients(l: TcpListener, dialer: Arc<Dialer>) {
    loop {
        let (stream, peer) = rcc_net::accept(&l, "Front End (clients)").await;
        let conn = dialer
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(conn, %peer, "a real client connected");
        tokio::spawn(run_conn(stream, conn, Role::Client, dialer.tx.clone()));
    }
}

async fn run_conn<S>(stream: S, conn: ConnId, role: Role, tx: mpsc::Sender<Cmd>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(CONN_QUEUE);
    // Weak, so the queue closes when the pool lets the connection go.
    let pongs = out_tx.downgrade();
    let route = match &role {
        Role::Gateway { route, .. } => *route,
        Role::Client => None,
    };
    if tx
        .send(Cmd::Up {
            conn,
            role,
            out: out_tx,
        })
        .await
        .is_err()
    {
        return;
    }
    // Reading and writing are independent, as in a real Front End: while a write waits for the
    // gateway to read, what the gateway sends is still read.
    let (mut rd, wr) = tokio::io::split(stream);
    let mut writer = rcc_net::spawn_writer(wr, out_rx, |_| {});
    let mut framer = StreamFramer::new(Limits::default());
    let mut buf = vec![0u8; 64 * 1024];
    // Whether the writer may still send what is queued once reading ends.
    let drain = 'conn: loop {
        tokio::select! {
            read = rd.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break true,
                    Ok(n) => n,
                };
                framer.push(&buf[..n]);
                loop {
                    match framer.next_item() {
                        Ok(Some(StreamItem::Message(msg))) => {
                            if tx.send(Cmd::Msg { conn, msg }).await.is_err() {
                                break 'conn true;
                            }
                        }
                        Ok(Some(StreamItem::Ping)) => {
                            let queued = pongs
                                .upgrade()
                                .is_some_and(|q| q.try_send(b"\r\n".to_vec()).is_ok());
                            if !queued {
                                break 'conn true;
                            }
                        }
                        Ok(Some(StreamItem::Pong)) => {}
                        // Answered as a Front End does (400 or 505); framing may then be lost.
                        Ok(Some(StreamItem::Rejected(r))) => {
                            tracing::warn!(conn, error = %r.error, "Front End: unparsable message");
                            if let Some(answer) = r.answer {
                                let _ = pongs.upgrade().map(|q| q.try_send(answer));
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(conn, error = %e, "Front End: SIP framing lost");
                            break 'conn true;
                        }
                    }
                }
            }
            _ = writer.handle() => break false,
        }
    };
    let _ = tx
        .send(Cmd::Down {
            conn: Some(conn),
            route,
        })
        .await;
    if drain {
        // The writer ends once the pool lets the connection go (its queue closes).
        let _ = tokio::time::timeout(Duration::from_secs(5), writer.handle()).await;
    }
}

async fn drive(mut fe: Frontend, mut rx: mpsc::Receiver<Cmd>, dialer: Arc<Dialer>) {
    let mut writers: HashMap<ConnId, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut clients: std::collections::HashSet<ConnId> = std::collections::HashSet::new();
    loop {
        let Some(wake) = rcc_net::wake(&mut rx, fe.next_timeout()).await else {
            return;
        };
        let now = tokio::time::Instant::now().into_std();
        match wake {
            Wake::Deadline => fe.handle_timeout(now),
            Wake::Command(Cmd::Up { conn, role, out }) => {
                writers.insert(conn, out);
                match role {
                    Role::Gateway { route, peer } => fe.connected(conn, route, &peer),
                    Role::Client => {
                        clients.insert(conn);
                    }
                }
            }
            Wake::Command(Cmd::Msg { conn, msg }) if clients.contains(&conn) => {
                fe.client_conn_message(conn, msg, now)
            }
            Wake::Command(Cmd::Msg { conn, msg }) => fe.gateway_message(conn, msg, now),
            Wake::Command(Cmd::Down { conn, route }) => {
                if let Some(c) = conn {
                    writers.remove(&c);
                }
                match conn {
                    Some(c) if clients.remove(&c) => fe.client_conn_closed(c),
                    _ => fe.disconnected(conn, route),
                }
            }
            Wake::Command(Cmd::Control(f)) => f(&mut fe, now),
        }
        while let Some(o) = fe.poll_output() {
            match o {
                PoolOutput::Send { conn, bytes } => {
                    if let Some(w) = writers.get(&conn)
                        && w.try_send(bytes).is_err()
                    {
                        tracing::error!(
                            conn,
                            queued = CONN_QUEUE,
                            "Front End connection does not keep up: message dropped"
                        );
                    }
                }
                PoolOutput::Connect { route } => {
                    tokio::spawn(dial(route, dialer.clone()));
                }
            }
        }
    }
}
