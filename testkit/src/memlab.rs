//! The in-memory lab: messages move between the pool, the gateway and the PBX in the order
//! they are produced, and time moves only when [`MemLab::advance`] (or a wait) moves it, to
//! the next timer that any of the three has set.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rcc_gateway_core::config::parse_unchecked;
use rcc_gateway_core::pbx::link::LinkOutput;
use rcc_gateway_core::{FlowId, Gateway, Metrics, Output, Policy};
use rcc_protocol::csta::{self, Request};
use rcc_protocol::sip::Message;
use rcc_simulators::lync::endpoint::ActionId;
use rcc_simulators::lync::frontend::{PeerIdentity, PoolOutput};
use rcc_simulators::lync::{
    ActionResult, ClientProfile, Endpoint, EndpointConfig, Frontend, LAB_NUMBERING,
    LabUser as User, Phase, PoolConfig, RouteTransport, StaticRoute, TrustedApplication,
};
use rcc_simulators::pbx::{self, DeviceConfig, Pbx, PbxConfig, Profile, Switch};

/// The Request-URI domain of the LineServerURI, the static route's MatchUri.
const RCC_DOMAIN: &str = "rcc.lab.example";
/// The gateway's SIP address as the pool's static route names it.
const GATEWAY_IP: &str = "127.0.0.1";
const GATEWAY_PORT: u16 = 5066;
/// The PBX link's number on the simulator.
const PBX_LINK: pbx::LinkId = 1;
/// How many hops a wait runs at most before it calls the flow stuck.
const MAX_STEPS: usize = 100_000;

/// The gateway as the lab configures it (TCP, quick reconnects), before the lab's numbering.
const GATEWAY_TOML_BASE: &str = r#"
[sip]
listen_tcp = "127.0.0.1:5066"
host = "127.0.0.1"
trusted_peer = [{ ip = "127.0.0.1" }]
[pbx]
address = "127.0.0.1:1040"
reconnect_min_ms = 100
reconnect_max_ms = 1000
request_timeout_ms = 3000
"#;

/// The three parts in one process, in virtual time.
pub struct MemLab {
    now: Instant,
    gateway: Gateway,
    metrics: Arc<Metrics>,
    pool: Frontend,
    pbx: Pbx,
    /// Connections between the pool and the gateway (the pool numbers them).
    conns: HashSet<u64>,
    next_conn: u64,
    /// The gateway's PBX link is connected.
    pbx_link_up: bool,
    /// The PBX accepts the gateway's connections.
    pbx_reachable: bool,
    users: Vec<User>,
}

impl std::fmt::Debug for MemLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemLab")
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

impl MemLab {
    /// alice (1001), bob (1002) and carol (1003) on a generic PBX, with the PBX link up.
    pub fn new() -> anyhow::Result<MemLab> {
        MemLab::with(
            &[("alice", "1001"), ("bob", "1002"), ("carol", "1003")],
            |_| {},
        )
    }

    /// A lab with these users; `tweak` adjusts the gateway's configuration first.
    pub fn with(
        users: &[(&str, &str)],
        tweak: impl FnOnce(&mut rcc_gateway_core::config::Config),
    ) -> anyhow::Result<MemLab> {
        let now = Instant::now();
        let mut config = parse_unchecked(&format!("{GATEWAY_TOML_BASE}{LAB_NUMBERING}"))?;
        tweak(&mut config);
        let problems = rcc_gateway_core::setup::check(&config);
        if !problems.is_empty() {
            bail!("lab gateway configuration: {problems:?}");
        }
        let policy = Policy::build(&config).map_err(|p| anyhow!("{p:?}"))?;
        let metrics = Arc::new(Metrics::new());
        let gateway = Gateway::new(Arc::new(config), policy, metrics.clone(), now, 0x1ab);
        let mut pbx = Pbx::new(PbxConfig::for_profile(Profile::Generic));
        let users: Vec<User> = users
            .iter()
            .map(|(name, extension)| User::new(name, extension))
            .collect();
        for u in &users {
            let mut d = DeviceConfig::new(&u.extension, Some(&u.e164()));
            d.name = Some(u.name.clone());
            pbx.act(now, |sw, _| sw.add_device(d));
        }
        let gateway_ip = GATEWAY_IP.parse::<IpAddr>().ok();
        let pool = Frontend::new(PoolConfig {
            fqdn: "pool.lab.example".to_owned(),
            port: 5061,
            static_routes: vec![StaticRoute {
                match_uri: RCC_DOMAIN.to_owned(),
                transport: RouteTransport::Tcp,
                destination: GATEWAY_IP.to_owned(),
                port: GATEWAY_PORT,
                use_default_certificate: true,
            }],
            trusted_applications: vec![TrustedApplication {
                pool_fqdn: GATEWAY_IP.to_owned(),
                ip: gateway_ip.or(Some(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                port: GATEWAY_PORT,
                tcp_enabled: true,
                treat_as_authenticated: true,
                computers: Vec::new(),
            }],
        });
        let mut lab = MemLab {
            now,
            gateway,
            metrics,
            pool,
            pbx,
            conns: HashSet::new(),
            next_conn: 1,
            pbx_link_up: false,
            pbx_reachable: true,
            users,
        };
        lab.settle();
        lab.wait_until("the PBX link is up", Duration::from_secs(5), |l| {
            l.gateway.pbx_serving()
        })?;
        Ok(lab)
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The gateway core.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The gateway's metrics in Prometheus text.
    pub fn gateway_metrics(&self) -> String {
        self.metrics.encode()
    }

    /// The PBX switch, to read its calls.
    pub fn switch(&self) -> &Switch {
        self.pbx.switch()
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> anyhow::Result<User> {
        self.users
            .iter()
            .find(|u| u.name == name)
            .cloned()
            .ok_or_else(|| anyhow!("no lab user {name}"))
    }

    /// An endpoint, to read what it saw.
    pub fn endpoint(&self, id: usize) -> anyhow::Result<&Endpoint> {
        self.pool
            .endpoint(id)
            .ok_or_else(|| anyhow!("no endpoint {id}"))
    }

    /// Adds an endpoint of user `name` (`epid` tells MPOP endpoints apart), not signed in;
    /// `refresh` replaces the profile's refresh interval.
    pub fn endpoint_of(
        &mut self,
        name: &str,
        epid: &str,
        profile: ClientProfile,
        refresh: Option<Duration>,
    ) -> anyhow::Result<usize> {
        let mut config = self.endpoint_config(name, epid, profile)?;
        config.refresh = refresh;
        Ok(self.add_endpoint(config))
    }

    /// The configuration of an endpoint of user `name` on its own line (no re-sign-in after
    /// the dialog ends; the profile's refresh interval).
    pub fn endpoint_config(
        &self,
        name: &str,
        epid: &str,
        profile: ClientProfile,
    ) -> anyhow::Result<EndpointConfig> {
        let u = self.user(name)?;
        Ok(EndpointConfig {
            user: u.uri(),
            epid: epid.to_owned(),
            line: u.line(),
            line_server: format!("sip:rccgateway@{RCC_DOMAIN}"),
            profile,
            refresh: None,
            reestablish: false,
            reestablish_delay: Duration::from_millis(200),
            address: "192.0.2.10:51063".to_owned(),
        })
    }

    /// Adds an endpoint, not signed in.
    pub fn add_endpoint(&mut self, config: EndpointConfig) -> usize {
        self.pool.add_endpoint(config)
    }

    /// Adds and signs in a Lync 2013 endpoint of `name`, and waits until it monitors its line.
    pub fn signed_in(&mut self, name: &str, epid: &str) -> anyhow::Result<usize> {
        let id = self.endpoint_of(name, epid, ClientProfile::Lync2013, None)?;
        self.sign_in(id)?;
        Ok(id)
    }

    /// Signs an endpoint in and waits until it monitors its line.
    pub fn sign_in(&mut self, id: usize) -> anyhow::Result<()> {
        let now = self.now;
        self.on_endpoint(id, |e| e.sign_in(now))?;
        self.wait_for(id, "signed in", Duration::from_secs(10), |e| {
            (*e.phase() == Phase::Ready).then_some(())
        })
    }

    /// Signs an endpoint out (BYE) and lets it go through.
    pub fn sign_out(&mut self, id: usize) -> anyhow::Result<()> {
        let now = self.now;
        self.on_endpoint(id, |e| e.sign_out(now))
    }

    /// Waits for the endpoint's next call event of `kind` after index `after`: its index + 1
    /// (where to look for the one after) and the event.
    pub fn call_event(
        &mut self,
        id: usize,
        after: usize,
        kind: csta::CallEventKind,
    ) -> anyhow::Result<(usize, csta::CallEvent)> {
        let what = format!("a {kind:?} event after #{after}");
        self.wait_for(id, &what, Duration::from_secs(40), |e| {
            e.events()
                .iter()
                .enumerate()
                .skip(after)
                .find_map(|(i, s)| match &s.event {
                    csta::Event::Call(c) if c.kind == kind => Some((i + 1, c.clone())),
                    _ => None,
                })
        })
    }

    /// `name`'s endpoint `id` dials `number` (MakeCall); the call ID of its answer.
    pub fn dial(&mut self, id: usize, name: &str, number: &str) -> anyhow::Result<String> {
        let line = self.user(name)?.line();
        let r = self.response(
            id,
            Request::MakeCall {
                calling: line.clone(),
                called: number.to_owned(),
                auto_originate: Some(csta::AutoOriginate::DoNotPrompt),
            },
        )?;
        let csta::Response::MakeCall { calling } = r else {
            bail!("expected MakeCallResponse, got {r:?}");
        };
        if calling.device_id.as_deref() != Some(line.as_str()) {
            bail!("MakeCallResponse must echo {line} verbatim: {calling:?}");
        }
        calling
            .call_id
            .ok_or_else(|| anyhow!("MakeCallResponse without a callID"))
    }

    /// `name`'s connection in `call`, as the client names it.
    pub fn me(&self, name: &str, call: &str) -> anyhow::Result<csta::ConnectionId> {
        Ok(csta::ConnectionId::new(call, self.user(name)?.line()))
    }

    /// Fails with the rules an endpoint saw the gateway break.
    pub fn no_violations(&self, ids: &[usize]) -> anyhow::Result<()> {
        for &id in ids {
            let v = self.endpoint(id)?.violations();
            if !v.is_empty() {
                bail!("endpoint {id} saw the gateway break rules: {v:?}");
            }
        }
        Ok(())
    }

    /// Sends a CSTA request from an endpoint and waits for its answer.
    pub fn csta(&mut self, id: usize, request: Request) -> anyhow::Result<ActionResult> {
        let now = self.now;
        let action = self
            .on_endpoint(id, |e| e.request(request, now))?
            .ok_or_else(|| anyhow!("endpoint {id} is not signed in"))?;
        self.answer_of(id, action)
    }

    /// Sends several CSTA requests from an endpoint at once (the gateway decides on all of them
    /// before the PBX answers the first) and waits for every answer, in order.
    pub fn csta_at_once(
        &mut self,
        id: usize,
        requests: Vec<Request>,
    ) -> anyhow::Result<Vec<ActionResult>> {
        let now = self.now;
        let actions = self.on_endpoint(id, |e| {
            requests
                .into_iter()
                .map(|r| e.request(r, now))
                .collect::<Option<Vec<ActionId>>>()
        })?;
        let actions = actions.ok_or_else(|| anyhow!("endpoint {id} is not signed in"))?;
        actions.into_iter().map(|a| self.answer_of(id, a)).collect()
    }

    /// Sends a CSTA request and expects a response (not an error).
    pub fn response(&mut self, id: usize, request: Request) -> anyhow::Result<csta::Response> {
        match self.csta(id, request)? {
            Ok(csta::Message::Response(r)) => Ok(r),
            other => bail!("expected a CSTA response, got {other:?}"),
        }
    }

    fn answer_of(&mut self, id: usize, action: ActionId) -> anyhow::Result<ActionResult> {
        let mut result = None;
        self.wait_until("the answer", Duration::from_secs(40), |l| {
            result = l.pool.endpoint_mut(id).and_then(|e| e.take_result(action));
            result.is_some()
        })?;
        result.ok_or_else(|| anyhow!("endpoint {id}: no answer"))
    }

    /// A desk-phone action at the PBX (answer, hang up, dial…).
    pub fn desk_phone<T>(&mut self, action: impl FnOnce(&mut Switch, Instant) -> T) -> T {
        let now = self.now;
        let out = self.pbx.act(now, action);
        self.settle();
        out
    }

    /// Acts on an endpoint and lets what it sends go through.
    fn on_endpoint<T>(
        &mut self,
        id: usize,
        f: impl FnOnce(&mut Endpoint) -> T,
    ) -> anyhow::Result<T> {
        let e = self
            .pool
            .endpoint_mut(id)
            .ok_or_else(|| anyhow!("no endpoint {id}"))?;
        let out = f(e);
        self.pool.flush(self.now);
        self.settle();
        Ok(out)
    }

    /// Waits until `f` of the endpoint gives a value, moving virtual time along at most
    /// `within`.
    pub fn wait_for<T>(
        &mut self,
        id: usize,
        what: &str,
        within: Duration,
        mut f: impl FnMut(&Endpoint) -> Option<T>,
    ) -> anyhow::Result<T> {
        let mut found = None;
        self.wait_until(what, within, |l| {
            found = l.pool.endpoint(id).and_then(&mut f);
            found.is_some()
        })?;
        found.with_context(|| format!("endpoint {id}: {what}"))
    }

    /// Waits until `done` holds, running timers in virtual time for at most `within`.
    pub fn wait_until(
        &mut self,
        what: &str,
        within: Duration,
        mut done: impl FnMut(&mut MemLab) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = self.now + within;
        for _ in 0..MAX_STEPS {
            self.settle();
            if done(self) {
                return Ok(());
            }
            match self.next_timer() {
                Some(t) if t <= deadline => self.run_timers(t.max(self.now)),
                _ => bail!("{what}: not within {within:?} of virtual time"),
            }
        }
        bail!("{what}: still busy after {MAX_STEPS} steps")
    }

    /// Moves virtual time on by `d`, running every timer that falls due on the way.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        self.settle();
        while let Some(t) = self.next_timer().filter(|t| *t <= until) {
            self.run_timers(t.max(self.now));
        }
        self.now = until;
        self.run_timers(until);
    }

    /// The PBX ends the gateway's monitor of device `extension` on its own (a switch-initiated
    /// MonitorStop, as when a licence is withdrawn).
    pub fn pbx_ends_monitor(&mut self, extension: &str) -> anyhow::Result<()> {
        let xref = self
            .pbx
            .switch()
            .monitors_of(PBX_LINK)
            .into_iter()
            .find_map(|(xref, watched)| (watched == extension).then_some(xref))
            .ok_or_else(|| anyhow!("the PBX holds no monitor of {extension} for the gateway"))?;
        self.pbx.end_monitor(&xref);
        self.settle();
        Ok(())
    }

    /// Monitors the PBX holds for the gateway on device `extension`.
    pub fn pbx_monitors_on(&self, extension: &str) -> usize {
        self.pbx
            .switch()
            .monitors_of(PBX_LINK)
            .iter()
            .filter(|(_, watched)| watched == extension)
            .count()
    }

    /// The PBX drops the gateway's link; with `reachable` false it refuses reconnects too.
    pub fn break_pbx_link(&mut self, reachable: bool) {
        self.pbx_reachable = reachable;
        if self.pbx_link_up {
            self.pbx.disconnected(PBX_LINK);
            self.pbx_link_up = false;
            self.gateway.pbx_disconnected("reset by the lab", self.now);
        }
        self.settle();
    }

    /// The PBX accepts the gateway's connections again.
    pub fn restore_pbx(&mut self) {
        self.pbx_reachable = true;
    }

    fn next_timer(&self) -> Option<Instant> {
        [
            self.gateway.next_timeout(),
            self.pool.next_timeout(),
            self.pbx.next_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn run_timers(&mut self, at: Instant) {
        self.now = at;
        self.gateway.handle_timeout(at);
        self.pool.handle_timeout(at);
        self.pbx.handle_timeout(at);
        self.settle();
    }

    /// Moves every message until none of the three has anything more to say.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            while let Some(o) = self.pool.poll_output() {
                moved = true;
                self.deliver_pool_output(o);
            }
            while let Some(o) = self.gateway.poll_output() {
                moved = true;
                self.deliver_gateway_output(o);
            }
            while let Some(o) = self.pbx.poll_output() {
                moved = true;
                self.deliver_pbx_output(o);
            }
            if !moved {
                return;
            }
        }
    }

    fn deliver_pool_output(&mut self, o: PoolOutput) {
        match o {
            PoolOutput::Connect { route } => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.conns.insert(conn);
                let peer = PeerIdentity {
                    ip: GATEWAY_IP.parse().ok(),
                    cert_names: Vec::new(),
                };
                self.pool.connected(conn, Some(route), &peer);
            }
            PoolOutput::Send { conn, bytes } => {
                if let Ok(m) = Message::parse(&bytes) {
                    self.gateway.sip_message(FlowId(conn), m, self.now);
                }
            }
        }
    }

    fn deliver_gateway_output(&mut self, o: Output) {
        match o {
            Output::Respond { flow, bytes } | Output::Request { flow, bytes, .. } => {
                if self.conns.contains(&flow.0)
                    && let Ok(m) = Message::parse(&bytes)
                {
                    self.pool.gateway_message(flow.0, m, self.now);
                }
            }
            Output::Pbx(LinkOutput::Connect { .. }) => {
                if self.pbx_reachable {
                    self.pbx.accept(PBX_LINK, "gateway", self.now);
                    self.pbx_link_up = true;
                    self.gateway.pbx_connected(self.now);
                } else {
                    self.gateway
                        .pbx_disconnected("connection refused", self.now);
                }
            }
            Output::Pbx(LinkOutput::Send(bytes)) => {
                if self.pbx_link_up {
                    self.pbx.receive(PBX_LINK, &bytes, self.now);
                }
            }
            Output::Pbx(LinkOutput::Close) => {
                if self.pbx_link_up {
                    self.pbx_link_up = false;
                    self.pbx.disconnected(PBX_LINK);
                }
            }
            Output::Trace(_) => {}
        }
    }

    fn deliver_pbx_output(&mut self, o: pbx::Output) {
        match o {
            pbx::Output::Send { bytes, .. } => {
                if self.pbx_link_up {
                    self.gateway.pbx_bytes(&bytes, self.now);
                }
            }
            pbx::Output::Close { reason, .. } => {
                if self.pbx_link_up {
                    self.pbx_link_up = false;
                    self.gateway.pbx_disconnected(&reason, self.now);
                }
            }
        }
    }
}
