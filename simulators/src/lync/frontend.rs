//! The Front End pool, sans-IO, with the client endpoints it serves: static routes chosen by the
//! Request-URI domain (MatchUri), applied only to trusted applications; Via and Record-Route
//! added on the way out; in-dialog traffic proxied both ways over few connections to the
//! gateway; requests from the gateway accepted only from a trusted application.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use rcc_lync_topology::match_uri;
use rcc_protocol::sip::{Message, Method, Uri};
use serde::{Deserialize, Serialize};

use super::endpoint::{ActionId, Endpoint, EndpointConfig};
use super::registrar::Registrar;

mod real_clients;

/// Identifies a connection between the pool and a gateway.
pub type ConnId = u64;

/// Identifies an endpoint.
pub type EndpointId = usize;

/// Who sent or received a traced message.
#[derive(Debug, Clone, Copy)]
enum Party {
    Pool,
    Gateway,
    Client(EndpointId),
    /// A real client's connection (pidgin-sipe).
    Remote(ConnId),
}

/// Whose dialog a Call-ID is: a simulated endpoint's, or a real client's on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Endpoint(EndpointId),
    Remote(ConnId),
}

/// Transport of a static route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteTransport {
    /// Mutual TLS.
    #[default]
    Tls,
    /// TCP (the gateway's IP must be pinned on its trusted application).
    Tcp,
}

/// `New-CsStaticRoute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRoute {
    /// `-MatchUri`: a domain (`rcc.contoso.com`) or `*.suffix`.
    pub match_uri: String,
    /// `-TLSRoute` or `-TCPRoute`.
    #[serde(default)]
    pub transport: RouteTransport,
    /// `-Destination`: the gateway's FQDN (TLS) or IP (TCP).
    pub destination: String,
    /// `-Port`.
    pub port: u16,
    /// `-UseDefaultCertificate`.
    #[serde(default = "yes")]
    pub use_default_certificate: bool,
}

/// `New-CsTrustedApplicationPool` with its `New-CsTrustedApplication`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedApplication {
    /// Pool identity: the gateway's FQDN (TLS certificate name) or IP.
    pub pool_fqdn: String,
    /// Pinned IP ("Limit service usage to selected IP addresses"), needed for TCP.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// `-Port`.
    pub port: u16,
    /// `-EnableTcp`.
    #[serde(default)]
    pub tcp_enabled: bool,
    /// `-TreatAsAuthenticated` (false: the gateway's requests are challenged).
    #[serde(default = "yes")]
    pub treat_as_authenticated: bool,
    /// `New-CsTrustedApplicationComputer`: the pool's computers (none: the pool is its own
    /// single computer). A static route to the pool FQDN reaches any of them (DNS load
    /// balancing: the pool tries them in turn), and each is trusted by its certificate name or,
    /// over TCP, its address.
    #[serde(default, rename = "computer")]
    pub computers: Vec<TrustedComputer>,
}

/// One computer of a trusted application pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedComputer {
    /// Its FQDN (on its certificate, beside the pool FQDN).
    pub fqdn: String,
    /// Its address, for TCP trust and when the lab's DNS (`hosts`) does not name it.
    #[serde(default)]
    pub ip: Option<IpAddr>,
}

impl TrustedApplication {
    /// Whether `name` (a certificate name) is the pool's or one of its computers'.
    fn names(&self, name: &str) -> bool {
        self.pool_fqdn.eq_ignore_ascii_case(name)
            || self
                .computers
                .iter()
                .any(|c| c.fqdn.eq_ignore_ascii_case(name))
    }

    /// Whether `ip` is the pool's pinned address or one of its computers'.
    fn has_ip(&self, ip: IpAddr) -> bool {
        self.ip == Some(ip) || self.computers.iter().any(|c| c.ip == Some(ip))
    }
}

fn yes() -> bool {
    true
}

/// The pool's topology.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// The pool (and Record-Route) FQDN.
    pub fqdn: String,
    /// The port the pool listens on for servers (5061).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Static routes.
    #[serde(default, rename = "static_route")]
    pub static_routes: Vec<StaticRoute>,
    /// Trusted applications.
    #[serde(default, rename = "trusted_application")]
    pub trusted_applications: Vec<TrustedApplication>,
}

fn default_port() -> u16 {
    5061
}

/// How the shell identified a connection's peer.
#[derive(Debug, Clone, Default)]
pub struct PeerIdentity {
    /// Peer IP address.
    pub ip: Option<IpAddr>,
    /// Trusted application pool FQDNs the peer's (verified) certificate is valid for.
    pub cert_names: Vec<String>,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolOutput {
    /// Open a connection for static route number `route`.
    Connect {
        /// Index into the static routes.
        route: usize,
    },
    /// Write on a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// A SIP message.
        bytes: Vec<u8>,
    },
}

#[derive(Debug)]
struct Conn {
    trusted: bool,
    peer: String,
}

/// Counters a lab reads to prove the pool's decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// INVITEs answered 404 because no static route (or no trusted application) matched.
    pub no_route: u64,
    /// Requests from peers that are not trusted applications, refused.
    pub untrusted_refused: u64,
    /// Requests from the gateway for dialogs the pool does not know (481).
    pub unknown_dialog: u64,
    /// Messages proxied to gateways.
    pub to_gateway: u64,
    /// Messages proxied from gateways.
    pub from_gateway: u64,
}

/// One message as the pool saw it pass, for ladder diagrams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceEntry {
    /// Wall-clock time, microseconds since the Unix epoch.
    pub at_us: u64,
    /// Sender (`alice/desk`, `Front End`, `gateway`).
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Start line.
    pub label: String,
    /// The whole message.
    pub text: String,
}

/// Messages kept in the trace (oldest dropped first).
const TRACE_LIMIT: usize = 50_000;

/// The pool and its endpoints.
#[derive(Debug)]
pub struct Frontend {
    /// Endpoints touched through [`Frontend::endpoint_mut`] since the last flush.
    dirty: std::collections::BTreeSet<EndpointId>,
    /// Endpoints with results to collect (those with `report_done`), each listed once.
    done: Vec<EndpointId>,
    listed: Vec<bool>,
    /// Endpoint timers, soonest first, and each endpoint's entry.
    timers: std::collections::BTreeSet<(Instant, EndpointId)>,
    timer_of: Vec<Option<Instant>>,
    trace: VecDeque<TraceEntry>,
    /// Whether to keep a trace (off for load runs).
    pub tracing: bool,
    config: PoolConfig,
    endpoints: Vec<Endpoint>,
    by_call: HashMap<String, Client>,
    call_route: HashMap<String, usize>,
    conns: HashMap<ConnId, Conn>,
    route_conn: HashMap<usize, ConnId>,
    waiting: HashMap<usize, Vec<Vec<u8>>>,
    gw_requests: HashMap<String, ConnId>,
    outputs: VecDeque<PoolOutput>,
    stats: PoolStats,
    counter: u64,
    nonce: u64,
    /// `sip:fqdn:port`, our own address in Route and Via, formatted once.
    own_uri: String,
    /// The registrar for real clients, when the pool serves them.
    registrar: Option<Registrar>,
    /// Real clients' dialogs whose INVITE was accepted (a failed re-INVITE leaves them be).
    remote_accepted: std::collections::HashSet<String>,
}

impl Frontend {
    /// A pool with no endpoints.
    pub fn new(config: PoolConfig) -> Self {
        Frontend {
            dirty: std::collections::BTreeSet::new(),
            done: Vec::new(),
            listed: Vec::new(),
            timers: std::collections::BTreeSet::new(),
            timer_of: Vec::new(),
            trace: VecDeque::new(),
            tracing: true,
            endpoints: Vec::new(),
            by_call: HashMap::new(),
            call_route: HashMap::new(),
            conns: HashMap::new(),
            route_conn: HashMap::new(),
            waiting: HashMap::new(),
            gw_requests: HashMap::new(),
            outputs: VecDeque::new(),
            stats: PoolStats::default(),
            counter: 0,
            nonce: crate::nonce(),
            own_uri: format!("sip:{}:{}", config.fqdn, config.port),
            registrar: None,
            remote_accepted: std::collections::HashSet::new(),
            config,
        }
    }

    /// The topology.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The messages seen so far.
    pub fn trace(&self) -> Vec<TraceEntry> {
        self.trace.iter().cloned().collect()
    }

    /// Traces `m`; names are resolved here, so nothing is spent while tracing is off.
    fn record(&mut self, from: Party, to: Party, m: &Message) {
        if !self.tracing {
            return;
        }
        let (from, to) = (self.name_of(from), self.name_of(to));
        if self.trace.len() == TRACE_LIMIT {
            self.trace.pop_front();
        }
        let text = String::from_utf8_lossy(&m.to_bytes()).into_owned();
        let start = text.lines().next().unwrap_or_default().to_owned();
        let body = if m.body.is_empty() {
            String::new()
        } else {
            rcc_protocol::csta::decode(&m.body)
                .map(|d| format!(" ({})", d.message.root_name()))
                .unwrap_or_default()
        };
        let label = match m.method() {
            Some(_) => format!("{}{body}", start.split(' ').next().unwrap_or_default()),
            None => format!("{}{body}", start.trim_start_matches("SIP/2.0 ")),
        };
        self.trace.push_back(TraceEntry {
            at_us: crate::now_us(),
            from,
            to,
            label,
            text,
        });
    }

    fn name_of(&self, party: Party) -> String {
        let id = match party {
            Party::Pool => return "Front End".to_owned(),
            Party::Gateway => return "gateway".to_owned(),
            Party::Client(id) => id,
            Party::Remote(conn) => return self.remote_name(conn),
        };
        self.endpoints.get(id).map_or_else(
            || format!("endpoint {id}"),
            |e| {
                let user = e.config.user.trim_start_matches("sip:");
                let user = user.split('@').next().unwrap_or(user);
                format!("{user}/{}", e.config.epid)
            },
        )
    }

    /// The counters.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// Adds an endpoint (not signed in yet).
    pub fn add_endpoint(&mut self, config: EndpointConfig) -> EndpointId {
        self.endpoints.push(Endpoint::new(config));
        self.endpoints.len() - 1
    }

    /// An endpoint.
    pub fn endpoint(&self, id: EndpointId) -> Option<&Endpoint> {
        self.endpoints.get(id)
    }

    /// An endpoint, to act on it; call [`Frontend::flush`] afterwards.
    pub fn endpoint_mut(&mut self, id: EndpointId) -> Option<&mut Endpoint> {
        if id < self.endpoints.len() {
            self.dirty.insert(id);
        }
        self.endpoints.get_mut(id)
    }

    /// Number of endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// The next output for the shell.
    pub fn poll_output(&mut self) -> Option<PoolOutput> {
        self.outputs.pop_front()
    }

    /// Whether the route's destination is a trusted application (Lync applies no other).
    fn route_trusted(&self, r: &StaticRoute) -> bool {
        self.config.trusted_applications.iter().any(|t| {
            let same_port = t.port == r.port;
            let by_name = t.pool_fqdn.eq_ignore_ascii_case(&r.destination);
            let by_ip = r.destination.parse::<IpAddr>().is_ok_and(|ip| t.has_ip(ip));
            let transport_ok = r.transport == RouteTransport::Tls || t.tcp_enabled;
            same_port && (by_name || by_ip) && transport_ok
        })
    }

    /// The static route for a Request-URI domain.
    pub fn route_for(&self, domain: &str) -> Option<usize> {
        self.config
            .static_routes
            .iter()
            .position(|r| match_uri(&r.match_uri, domain) && self.route_trusted(r))
    }

    /// Whether a peer is a trusted application.
    pub fn peer_trusted(&self, peer: &PeerIdentity) -> bool {
        self.config.trusted_applications.iter().any(|t| {
            t.treat_as_authenticated
                && (peer.cert_names.iter().any(|n| t.names(n))
                    || (t.tcp_enabled && peer.ip.is_some_and(|ip| t.has_ip(ip))))
        })
    }

    /// A connection opened (by the pool for `route`, or by a gateway).
    pub fn connected(&mut self, conn: ConnId, route: Option<usize>, peer: &PeerIdentity) {
        let trusted = match route {
            // The pool dialled the route's trusted application itself.
            Some(r) => self
                .config
                .static_routes
                .get(r)
                .is_some_and(|r| self.route_trusted(r)),
            None => self.peer_trusted(peer),
        };
        self.conns.insert(
            conn,
            Conn {
                trusted,
                peer: format!("{:?}", peer.ip),
            },
        );
        if let Some(r) = route {
            self.route_conn.insert(r, conn);
            for bytes in self.waiting.remove(&r).unwrap_or_default() {
                self.outputs.push_back(PoolOutput::Send { conn, bytes });
            }
        }
    }

    /// A connection failed to open or closed.
    pub fn disconnected(&mut self, conn: Option<ConnId>, route: Option<usize>) {
        if let Some(c) = conn {
            self.conns.remove(&c);
            self.route_conn.retain(|_, v| *v != c);
        }
        if let Some(r) = route {
            self.waiting.remove(&r);
        }
    }

    fn unique(&mut self) -> String {
        self.counter += 1;
        format!("z9hG4bKfe{:x}{:x}", self.nonce & 0xffff_ffff, self.counter)
    }

    fn our_via(&mut self) -> (String, String) {
        let branch = self.unique();
        let host_port = &self.own_uri["sip:".len()..];
        let mut via = String::with_capacity(32 + host_port.len() + branch.len());
        via.push_str("SIP/2.0/TLS ");
        via.push_str(host_port);
        via.push_str(";branch=");
        via.push_str(&branch);
        (via, branch)
    }

    /// The pool's Record-Route for a dialog on `route`: its FQDN and port, with the transport
    /// the route uses, which is how the next hop (a gateway, or a proxy tier in front of
    /// gateways) reaches the pool again for requests in the dialog.
    fn record_route(&self, route: usize) -> String {
        let transport = match self.config.static_routes.get(route).map(|r| r.transport) {
            Some(RouteTransport::Tcp) => "tcp",
            _ => "tls",
        };
        format!(
            "<sip:{}:{};transport={transport};lr>",
            self.config.fqdn, self.config.port
        )
    }

    fn is_ours(&self, route: &str) -> bool {
        route.contains(&self.own_uri)
    }

    fn send_on_route(&mut self, route: usize, m: &Message) {
        self.record(Party::Pool, Party::Gateway, m);
        self.stats.to_gateway += 1;
        let bytes = m.to_bytes();
        match self.route_conn.get(&route) {
            Some(&conn) => self.outputs.push_back(PoolOutput::Send { conn, bytes }),
            None => {
                let first = !self.waiting.contains_key(&route);
                self.waiting.entry(route).or_default().push(bytes);
                if first {
                    self.outputs.push_back(PoolOutput::Connect { route });
                }
            }
        }
    }

    /// Moves what the endpoints touched since the last flush want to send into the pool.
    pub fn flush(&mut self, now: Instant) {
        for id in std::mem::take(&mut self.dirty) {
            self.flush_one(id, now);
        }
    }

    /// Flushes one endpoint and re-arms its timer.
    pub fn flush_one(&mut self, id: EndpointId, now: Instant) {
        while let Some(m) = self.endpoints.get_mut(id).and_then(Endpoint::poll_output) {
            self.client_message(id, m, now);
        }
        self.reschedule(id);
    }

    /// Actions completed since the last call, for endpoints with `report_done` set: a load
    /// generator collects exactly these instead of polling every action in flight.
    pub fn take_done(&mut self) -> Vec<(EndpointId, ActionId)> {
        let mut out = Vec::new();
        for id in std::mem::take(&mut self.done) {
            if let Some(flag) = self.listed.get_mut(id) {
                *flag = false;
            }
            if let Some(e) = self.endpoints.get_mut(id) {
                out.extend(e.take_done().into_iter().map(|a| (id, a)));
            }
        }
        out
    }

    fn reschedule(&mut self, id: EndpointId) {
        let Some(e) = self.endpoints.get(id) else {
            return;
        };
        if e.has_done() {
            if self.listed.len() <= id {
                self.listed.resize(id + 1, false);
            }
            if !self.listed[id] {
                self.listed[id] = true;
                self.done.push(id);
            }
        }
        let next = e.next_timeout();
        if self.timer_of.len() < self.endpoints.len() {
            self.timer_of.resize(self.endpoints.len(), None);
        }
        if self.timer_of[id] == next {
            return;
        }
        if let Some(old) = self.timer_of[id] {
            self.timers.remove(&(old, id));
        }
        if let Some(t) = next {
            self.timers.insert((t, id));
        }
        self.timer_of[id] = next;
    }

    fn client_message(&mut self, id: EndpointId, m: Message, now: Instant) {
        self.record(Party::Client(id), Party::Pool, &m);
        if m.is_request() {
            self.client_request(Client::Endpoint(id), m, now);
        } else {
            self.client_response(m);
        }
    }

    /// A client's answer to a gateway request: our Via goes, and it goes back to the gateway.
    fn client_response(&mut self, mut m: Message) {
        let branch = m.top_via_branch().unwrap_or_default();
        if let Some(conn) = self.gw_requests.remove(branch) {
            pop_via(&mut m);
            self.record(Party::Pool, Party::Gateway, &m);
            self.stats.to_gateway += 1;
            self.outputs.push_back(PoolOutput::Send {
                conn,
                bytes: m.to_bytes(),
            });
        }
    }

    /// Whether a client's request starts an RCC dialog (an INVITE without To tag).
    fn is_initial_invite(m: &Message) -> bool {
        m.method() == Some(&Method::Invite)
            && m.to_header()
                .ok()
                .and_then(|t| t.tag().map(str::to_owned))
                .is_none()
    }

    /// A client's request: an initial INVITE goes by the static routes (404 without one),
    /// an in-dialog request along its dialog's route.
    fn client_request(&mut self, client: Client, mut m: Message, now: Instant) {
        let call_id = m.call_id().unwrap_or_default().to_owned();
        let route = if Self::is_initial_invite(&m) {
            let domain = match m.request_uri().map(Uri::parse) {
                Some(Ok(Uri::Sip(u))) => u.host.to_string(),
                _ => String::new(),
            };
            match self.route_for(&domain) {
                Some(r) => {
                    self.by_call.insert(call_id.clone(), client);
                    self.call_route.insert(call_id.clone(), r);
                    m.prepend_header("Record-Route", self.record_route(r));
                    r
                }
                None => {
                    self.stats.no_route += 1;
                    let mut resp = Message::response_to(&m, 404, "Not Found", "fe404");
                    resp.push_header(
                        "ms-diagnostics",
                        format!("1003;reason=\"User does not exist\";TargetUri=\"{domain}\""),
                    );
                    self.deliver(client, resp, now);
                    return;
                }
            }
        } else {
            match self.call_route.get(&call_id) {
                Some(&r) => r,
                None => return,
            }
        };
        // In-dialog: our own Route entry goes.
        if let Some(pos) = m.headers.iter().position(|h| h.name.is("Route"))
            && self.is_ours(&m.headers[pos].value)
        {
            m.headers.remove(pos);
        }
        let (via, _) = self.our_via();
        m.prepend_header("Via", via);
        if let Ok(Some(mf)) = m.max_forwards() {
            m.set_header("Max-Forwards", mf.saturating_sub(1).to_string());
        }
        if m.method() == Some(&Method::Bye) {
            self.forget_call(&call_id);
        }
        self.send_on_route(route, &m);
    }

    /// Hands a message to the client of a dialog.
    fn deliver(&mut self, client: Client, m: Message, now: Instant) {
        match client {
            Client::Endpoint(id) => {
                self.record(Party::Pool, Party::Client(id), &m);
                if let Some(e) = self.endpoints.get_mut(id) {
                    e.receive(m, now);
                }
                self.flush_one(id, now);
            }
            Client::Remote(conn) => {
                self.record(Party::Pool, Party::Remote(conn), &m);
                self.outputs.push_back(PoolOutput::Send {
                    conn,
                    bytes: m.to_bytes(),
                });
            }
        }
    }

    /// A message from a gateway connection.
    pub fn gateway_message(&mut self, conn: ConnId, mut m: Message, now: Instant) {
        self.stats.from_gateway += 1;
        self.record(Party::Gateway, Party::Pool, &m);
        let call_id = m.call_id().unwrap_or_default().to_owned();
        if !m.is_request() {
            let ours = m
                .top_via_branch()
                .is_some_and(|b| b.starts_with("z9hG4bKfe"));
            if !ours {
                return;
            }
            pop_via(&mut m);
            let client = match self.by_call.get(&call_id) {
                Some(&client) => client,
                None => return,
            };
            if m.status().is_some_and(|c| c >= 300)
                && m.cseq().is_ok_and(|c| c.method == Method::Invite)
                && m.to_header()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_owned))
                    .is_some()
            {
                // A failed initial INVITE ends the routing state for that call (a real
                // client's failed re-INVITE ends its dialog too).
                let initial = match client {
                    Client::Endpoint(id) => self.endpoints.get(id).is_some_and(|e| {
                        e.call_id() == call_id && e.phase() == &super::endpoint::Phase::Inviting
                    }),
                    Client::Remote(_) => !self.remote_accepted.contains(&call_id),
                };
                if initial {
                    match client {
                        Client::Endpoint(_) => {
                            self.call_route.remove(&call_id);
                        }
                        // Delivered below; nothing of the dialog is kept afterwards.
                        Client::Remote(_) => self.forget_call(&call_id),
                    }
                }
            } else if matches!(client, Client::Remote(_))
                && m.status().is_some_and(|c| (200..300).contains(&c))
                && m.cseq().is_ok_and(|c| c.method == Method::Invite)
            {
                self.remote_accepted.insert(call_id.clone());
            }
            self.deliver(client, m, now);
            return;
        }
        let trusted = self.conns.get(&conn).is_some_and(|c| c.trusted);
        if !trusted {
            self.stats.untrusted_refused += 1;
            let peer = self
                .conns
                .get(&conn)
                .map(|c| c.peer.clone())
                .unwrap_or_default();
            tracing::warn!(conn, %peer, "request from a peer that is not a trusted application refused");
            if m.method() != Some(&Method::Ack) {
                let mut resp = Message::response_to(&m, 403, "Forbidden", "fe403");
                resp.push_header(
                    "ms-diagnostics",
                    "1000;reason=\"Peer is not a trusted application\"",
                );
                self.outputs.push_back(PoolOutput::Send {
                    conn,
                    bytes: resp.to_bytes(),
                });
            }
            return;
        }
        let Some(&client) = self.by_call.get(&call_id) else {
            self.stats.unknown_dialog += 1;
            if m.method() != Some(&Method::Ack) {
                let resp =
                    Message::response_to(&m, 481, "Call/Transaction Does Not Exist", "fe481");
                self.outputs.push_back(PoolOutput::Send {
                    conn,
                    bytes: resp.to_bytes(),
                });
            }
            return;
        };
        if let Some(pos) = m.headers.iter().position(|h| h.name.is("Route"))
            && self.is_ours(&m.headers[pos].value)
        {
            m.headers.remove(pos);
        }
        let (via, branch) = self.our_via();
        m.prepend_header("Via", via);
        if m.method() != Some(&Method::Ack) {
            self.gw_requests.insert(branch, conn);
        }
        if m.method() == Some(&Method::Bye) {
            self.forget_call(&call_id);
        }
        self.deliver(client, m, now);
        if self.gw_requests.len() > 100_000 {
            // Clients that never answer (pidgin-sipe) must not grow this without bound.
            self.gw_requests.clear();
        }
    }

    /// When [`Frontend::handle_timeout`] must run next.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Runs due endpoint timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            if let Some(slot) = self.timer_of.get_mut(id) {
                *slot = None;
            }
            if let Some(e) = self.endpoints.get_mut(id) {
                e.handle_timeout(now);
            }
            self.flush_one(id, now);
        }
    }

    /// A dialog ended (BYE either way): its routing state goes with it, so sign-in and
    /// sign-out cycles leave nothing behind.
    fn forget_call(&mut self, call_id: &str) {
        self.by_call.remove(call_id);
        self.call_route.remove(call_id);
        self.remote_accepted.remove(call_id);
    }
}

fn pop_via(m: &mut Message) {
    if let Some(pos) = m.headers.iter().position(|h| h.name.is("Via")) {
        // A Via header line may carry several values.
        let rest = match rcc_protocol::sip::split_values(&m.headers[pos].value) {
            Ok(values) if values.len() > 1 => Some(values[1..].join(", ")),
            _ => None,
        };
        match rest {
            Some(rest) => m.headers[pos].value = rest,
            None => {
                m.headers.remove(pos);
            }
        }
    }
}
