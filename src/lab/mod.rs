//! The in-process lab: the PBX simulator, the gateway and the Lync simulator wired together over
//! loopback sockets (TLS with a throw-away CA, or TCP), with users whose lines exist on the PBX.
//! Tests, scenarios and `rcc-lab run` all start it the same way.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use rcc_gateway::config::{self as gwconfig, Config as GatewayConfig};
use rcc_gateway::server::GatewayHandle;
use rcc_lync_topology::exports::Exports;
use rcc_simulators::lync::{
    ClientListener, ClientProfile, ClientUser, EndpointConfig, LabAddress, LyncSim, LyncSimConfig,
    PoolConfig, PoolTls, RouteTransport, StaticRoute, TrustedApplication,
};
use rcc_simulators::pbx::{DeviceConfig, Listen, PbxConfig, PbxSim, Profile};
use rcc_simulators::tls::LabCa;

use crate::tier::{KAMAILIO_POOL, PbxAccess, Tier, TierOptions};

mod wait;
pub use wait::WAIT;

/// The gateway's lab FQDN (its certificate name and trusted application pool).
pub const GATEWAY_FQDN: &str = "gw.lab.example";
/// The Front End pool's lab FQDN.
pub const POOL_FQDN: &str = "fe.lab.example";
/// The LineServerURI domain the static route matches.
pub const RCC_DOMAIN: &str = "rcc.lab.example";

pub use rcc_simulators::lync::LabUser as User;

/// How the lab is built.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Front End ↔ gateway over TLS (mutual) or TCP.
    pub tls: bool,
    /// The PBX simulator's profile (the gateway's matches).
    pub pbx_profile: Profile,
    /// Users (and their PBX lines).
    pub users: Vec<User>,
    /// Extra PBX devices without a Lync user (desk phones only).
    pub extra_devices: Vec<String>,
    /// Changes to the gateway's configuration before it starts.
    pub gateway_tweak: Option<fn(&mut GatewayConfig)>,
    /// Changes to the PBX simulator's configuration before it starts.
    pub pbx_tweak: Option<fn(&mut PbxConfig)>,
    /// Trust the gateway as an application in the pool (false: the pool refuses it).
    pub gateway_trusted: bool,
    /// The static route's MatchUri.
    pub match_uri: String,
    /// Where the gateway under test runs.
    pub gateway_at: GatewayAt,
    /// Where the PBX runs.
    pub pbx_at: PbxAt,
    /// The gateway's authorization table (empty: each user controls only its own line).
    pub authorization: Vec<rcc_gateway::config::UserLines>,
    /// Where our gateway writes a pcapng trace of both legs.
    pub trace: Option<PathBuf>,
    /// Our gateway's per-session traces.
    pub session_traces: Option<rcc_gateway::config::SessionTraceConfig>,
    /// The Lync side of a real deployment (lab.toml `[lync]`): the pool routes as the
    /// customer's does, instead of by `match_uri` and `gateway_trusted`.
    pub real_topology: Option<RealTopology>,
    /// Session-Expires our gateway grants (RFC 4028), seconds.
    pub session_expires: Option<u32>,
}

impl LabOptions {
    /// Whether the lab owns every component (our gateway in process, our PBX simulator): then
    /// scenarios may run side by side and configure the gateway and the PBX as they need.
    pub fn owns_everything(&self) -> bool {
        !matches!(self.gateway_at, GatewayAt::External(_))
            && matches!(self.pbx_at, PbxAt::Simulator)
    }
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            tls: true,
            pbx_profile: Profile::Generic,
            users: vec![
                User::new("alice", "1001"),
                User::new("bob", "1002"),
                User::new("carol", "1003"),
            ],
            extra_devices: vec!["1009".to_owned()],
            gateway_tweak: None,
            pbx_tweak: None,
            gateway_trusted: true,
            match_uri: RCC_DOMAIN.to_owned(),
            gateway_at: GatewayAt::InProcess,
            pbx_at: PbxAt::Simulator,
            authorization: Vec::new(),
            trace: None,
            session_traces: None,
            session_expires: None,
            real_topology: None,
        }
    }
}

/// A real Lync deployment's routing, from its Management Shell exports.
#[derive(Debug, Clone)]
pub struct RealTopology {
    /// What was exported.
    pub exports: Exports,
    /// The Front End pool whose routing the lab plays (its own routing collection applies
    /// when it has one, else the global one).
    pub registrar: String,
}

impl RealTopology {
    /// The exported users' LineServerURI (the most common one), which the lab's users take.
    pub fn line_server_uri(&self) -> anyhow::Result<String> {
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for u in &self.exports.users {
            match counts.iter_mut().find(|(l, _)| *l == u.line_server_uri) {
                Some((_, n)) => *n += 1,
                None => counts.push((&u.line_server_uri, 1)),
            }
        }
        counts
            .iter()
            .max_by_key(|(_, n)| *n)
            .map(|(l, _)| (*l).to_owned())
            .ok_or_else(|| {
                anyhow::anyhow!("the exported users.csv lists no RCC user, so no LineServerURI")
            })
    }

    /// Whether the routes Lync applies go over TLS (the first one's transport).
    pub fn tls(&self) -> bool {
        self.exports
            .routes_for_pool(&self.registrar)
            .first()
            .is_none_or(|r| r.tls)
    }

    /// The names the gateway under test is reached and trusted by: TLS route destinations
    /// and trusted application pool and computer FQDNs.
    pub fn gateway_names(&self) -> Vec<String> {
        let e = &self.exports;
        let mut names: Vec<String> = e
            .routes
            .iter()
            .map(|r| r.destination.clone())
            .chain(e.apps.iter().map(|a| a.pool_fqdn.clone()))
            .chain(e.computers.iter().flatten().map(|c| c.fqdn.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

impl LabOptions {
    /// The LineServerURI the lab's users get.
    pub fn line_server_uri(&self) -> anyhow::Result<String> {
        match &self.real_topology {
            Some(t) => t.line_server_uri(),
            None => Ok(format!("sip:rccgateway@{RCC_DOMAIN}")),
        }
    }
}

/// A running lab.
pub struct Lab {
    pbx: Option<PbxSim>,
    gateway: Option<GatewayHandle>,
    tier: Option<Tier>,
    /// The Lync side.
    pub lync: LyncSim,
    /// The options it was built with.
    pub options: LabOptions,
    /// The lab's certificate authority (it issued the gateway's and the pool's certificates).
    pub ca: LabCa,
    /// Our gateway's configuration (none for an external gateway).
    pub gateway_config: Option<GatewayConfig>,
    /// The LineServerURI the lab's users sign in with.
    line_server: String,
    dir: PathBuf,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lab_dir() -> anyhow::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rcc-lab-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The tier of gateway processes behind Kamailio, linked to the lab's PBX simulator.
async fn start_tier(
    options: &LabOptions,
    o: &TierOptions,
    pbx: Option<&PbxSim>,
    ca: &LabCa,
    dir: &std::path::Path,
) -> anyhow::Result<Tier> {
    let address = pbx.and_then(PbxSim::tcp_addr).ok_or_else(|| {
        anyhow::anyhow!("not applicable: the Kamailio tier runs against the PBX simulator")
    })?;
    let access = PbxAccess {
        address,
        profile: crate::labfile::profile_name(options.pbx_profile),
        login: (options.pbx_profile == Profile::Aes).then(|| ("cti".into(), "lab".into())),
    };
    // Over TLS the Front End is let through by its certificate's name alone; over TCP, by
    // its address.
    let front_end = if o.tls { POOL_FQDN } else { "127.0.0.1" };
    Tier::start(dir, o, &access, ca, &[front_end]).await
}

fn gateway_profile(p: Profile) -> gwconfig::PbxProfile {
    match p {
        Profile::Generic => gwconfig::PbxProfile::Generic,
        Profile::Osv => gwconfig::PbxProfile::Osv,
        Profile::Aes => gwconfig::PbxProfile::Aes,
    }
}

/// Where the gateway under test runs.
#[derive(Debug, Clone, Default)]
pub enum GatewayAt {
    /// Ours, in this process.
    #[default]
    InProcess,
    /// Someone else's (a vendor gateway, or ours in another process).
    External(ExternalGateway),
    /// Ours, as several processes behind Kamailio (the high-availability tier).
    Tier(TierOptions),
}

/// An external gateway: where the Front End reaches it, and where our PBX simulator listens
/// for its CSTA link.
#[derive(Debug, Clone)]
pub struct ExternalGateway {
    /// SIP address (IP and port).
    pub address: SocketAddr,
    /// Mutual TLS (else TCP with the IP pinned).
    pub tls: bool,
    /// Its FQDN (certificate name, static route destination); TLS only.
    pub fqdn: String,
    /// CA of its certificate (PEM); TLS only.
    pub ca: Option<PathBuf>,
    /// The pool's certificate and key (PEM), issued by a CA the gateway trusts; TLS only.
    pub pool_identity: Option<(PathBuf, PathBuf)>,
    /// Where our PBX simulator listens for the gateway's CSTA link.
    pub pbx_listen: SocketAddr,
}

/// Where the PBX runs.
#[derive(Debug, Clone, Default)]
pub enum PbxAt {
    /// Our simulator, in this process.
    #[default]
    Simulator,
    /// A real PBX, reached by our in-process gateway.
    External(ExternalPbx),
}

/// A real PBX's CSTA server.
#[derive(Debug, Clone)]
pub struct ExternalPbx {
    /// `host:port`.
    pub address: String,
    /// Its profile.
    pub profile: gwconfig::PbxProfile,
    /// ECMA-354 login.
    pub credentials: Option<(String, String)>,
}

type Writer<'a> = dyn Fn(&str, &str) -> anyhow::Result<PathBuf> + 'a;

/// Our gateway, configured for the lab.
async fn start_gateway(
    options: &LabOptions,
    pbx: Option<&PbxSim>,
    ca: &LabCa,
    ca_path: &std::path::Path,
    write: &Writer<'_>,
) -> anyhow::Result<(GatewayHandle, GatewayConfig)> {
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let mut names = vec![GATEWAY_FQDN.to_owned()];
    if let Some(t) = &options.real_topology {
        names.extend(
            t.gateway_names()
                .into_iter()
                .filter(|n| n.parse::<IpAddr>().is_err()),
        );
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let gw_id = ca.issue(&names)?;
    let gw_cert = write("gw.crt", &gw_id.cert_pem)?;
    let gw_key = write("gw.key", &gw_id.key_pem)?;
    let (pbx_addr, profile, credentials) = match (&options.pbx_at, pbx) {
        (PbxAt::External(e), _) => (e.address.clone(), e.profile, e.credentials.clone()),
        (PbxAt::Simulator, Some(p)) => (
            p.tcp_addr()
                .ok_or_else(|| anyhow::anyhow!("PBX simulator has no TCP listener"))?
                .to_string(),
            gateway_profile(options.pbx_profile),
            (options.pbx_profile == Profile::Aes).then(|| ("cti".to_owned(), "lab".to_owned())),
        ),
        (PbxAt::Simulator, None) => anyhow::bail!("the PBX simulator did not start"),
    };
    let toml = format!(
        r#"
[sip]
host = "{host}"
trusted_peer = [{peer}]
[pbx]
address = "{pbx_addr}"
reconnect_min_ms = 100
reconnect_max_ms = 1000
request_timeout_ms = 3000
{numbering}"#,
        host = if options.tls {
            GATEWAY_FQDN
        } else {
            "127.0.0.1"
        },
        peer = if options.tls {
            format!("{{ name = \"{POOL_FQDN}\" }}")
        } else {
            "{ ip = \"127.0.0.1\" }".to_owned()
        },
        numbering = rcc_simulators::lync::LAB_NUMBERING,
    );
    let mut config = gwconfig::parse_unchecked(&toml)?;
    config.pbx.profile = profile;
    if let Some((u, p)) = credentials {
        config.pbx.username = Some(u);
        config.pbx.password = Some(p);
    }
    if options.tls {
        config.sip.listen_tls = Some(loopback);
        config.sip.tls = Some(gwconfig::SipTlsConfig {
            cert: gw_cert,
            key: gw_key,
            client_ca: Some(ca_path.to_owned()),
            client_cert: gwconfig::ClientCertMode::Required,
        });
    } else {
        config.sip.listen_tcp = Some(loopback);
    }
    config.authorization.users = options.authorization.clone();
    config.observe.trace.clone_from(&options.trace);
    config
        .observe
        .session_traces
        .clone_from(&options.session_traces);
    if let Some(se) = options.session_expires {
        config.sip.session_expires_s = se;
    }
    if let Some(t) = options.gateway_tweak {
        t(&mut config);
    }
    let problems = gwconfig::check(&mut config);
    anyhow::ensure!(problems.is_empty(), "lab gateway config: {problems:?}");
    let gw = GatewayHandle::start(config.clone()).await?;
    Ok((gw, config))
}

/// The lab's own pool: one static route on `options.match_uri` to the gateway, and the gateway
/// as a trusted application unless `options.gateway_trusted` is off.
fn lab_pool(
    options: &LabOptions,
    tls: bool,
    destination: &str,
    host_ip: IpAddr,
    port: u16,
) -> PoolConfig {
    let mut trusted = Vec::new();
    if options.gateway_trusted {
        trusted.push(TrustedApplication {
            pool_fqdn: destination.to_owned(),
            ip: (!tls).then_some(host_ip),
            port,
            tcp_enabled: !tls,
            treat_as_authenticated: true,
            computers: Vec::new(),
        });
    }
    PoolConfig {
        fqdn: POOL_FQDN.to_owned(),
        port: 5061,
        static_routes: vec![StaticRoute {
            match_uri: options.match_uri.clone(),
            transport: if tls {
                RouteTransport::Tls
            } else {
                RouteTransport::Tcp
            },
            destination: destination.to_owned(),
            port,
            use_default_certificate: true,
        }],
        trusted_applications: trusted,
    }
}

impl Lab {
    /// Starts the parts the options place in this process.
    pub async fn start(mut options: LabOptions) -> anyhow::Result<Lab> {
        // Our gateway listens on the transport of the real topology's routes.
        if let (Some(t), GatewayAt::InProcess) = (&options.real_topology, &options.gateway_at) {
            options.tls = t.tls();
        }
        let dir = lab_dir()?;
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let external_gw = match &options.gateway_at {
            GatewayAt::External(e) => Some(e.clone()),
            GatewayAt::InProcess | GatewayAt::Tier(_) => None,
        };

        // The PBX simulator, with every user's line and the extra desk phones.
        let pbx = match &options.pbx_at {
            PbxAt::External(_) => None,
            PbxAt::Simulator => {
                let mut pbx_config = PbxConfig::for_profile(options.pbx_profile);
                if options.pbx_profile == Profile::Aes {
                    pbx_config.session.credentials = Some(("cti".into(), "lab".into()));
                }
                if let Some(t) = options.pbx_tweak {
                    t(&mut pbx_config);
                }
                let mut devices: Vec<DeviceConfig> = options
                    .users
                    .iter()
                    .map(|u| {
                        let mut d = DeviceConfig::new(&u.extension, Some(&u.e164()));
                        d.name = Some(u.name.clone());
                        d
                    })
                    .collect();
                devices.extend(
                    options
                        .extra_devices
                        .iter()
                        .map(|e| DeviceConfig::new(e, Some(&format!("+1425555{e}")))),
                );
                let listen = Listen {
                    tcp: Some(external_gw.as_ref().map_or(loopback, |e| e.pbx_listen)),
                    tls: None,
                };
                Some(PbxSim::start(pbx_config, devices, listen).await?)
            }
        };

        // Certificates for both SIP ends.
        let ca = LabCa::new("rcc-lab CA")?;
        let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
            let p = dir.join(name);
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            Ok(p)
        };
        let ca_path = write("ca.pem", &ca.cert_pem)?;

        // The gateway, when it is ours: in process, or the tier of processes behind Kamailio.
        let tier = match &options.gateway_at {
            GatewayAt::Tier(o) => Some(start_tier(&options, o, pbx.as_ref(), &ca, &dir).await?),
            _ => None,
        };
        let (gateway, gateway_config, gw_addr) = match (&external_gw, &tier) {
            (Some(e), _) => (None, None, e.address),
            (None, Some(t)) => (None, None, t.front),
            (None, None) => {
                let (gw, config) =
                    start_gateway(&options, pbx.as_ref(), &ca, &ca_path, &write).await?;
                let addr = gw
                    .sip_tls
                    .or(gw.sip_tcp)
                    .ok_or_else(|| anyhow::anyhow!("gateway has no SIP listener"))?;
                (Some(gw), Some(config), addr)
            }
        };

        // The Lync side: a static route on the LineServerURI domain to the gateway.
        let tls = match (&external_gw, &tier) {
            (Some(e), _) => e.tls,
            (None, Some(t)) => t.tls,
            (None, None) => options.tls,
        };
        let (destination, host_ip) = match &external_gw {
            Some(e) if e.tls => (e.fqdn.clone(), e.address.ip()),
            Some(e) => (e.address.ip().to_string(), e.address.ip()),
            None if tls && tier.is_some() => {
                (KAMAILIO_POOL.to_owned(), IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
            None if tls => (GATEWAY_FQDN.to_owned(), IpAddr::V4(Ipv4Addr::LOCALHOST)),
            None => ("127.0.0.1".to_owned(), IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        let mut hosts = HashMap::from([(destination.clone(), host_ip.into())]);
        let pool = match &options.real_topology {
            // Every exported destination and trusted computer is the gateway under test.
            Some(t) => {
                for name in t.gateway_names() {
                    hosts.insert(name, LabAddress::Socket(gw_addr));
                }
                let mut pool = PoolConfig {
                    fqdn: POOL_FQDN.to_owned(),
                    port: 5061,
                    static_routes: Vec::new(),
                    trusted_applications: Vec::new(),
                };
                pool.take_exports(&t.exports, &t.registrar, &hosts);
                pool
            }
            None => lab_pool(&options, tls, &destination, host_ip, gw_addr.port()),
        };
        // Kamailio reaches the pool by its Record-Route (event INFOs, the keep-alive's BYE): the
        // pool names an address it listens on.
        let mut pool = pool;
        let listen = match &tier {
            Some(_) => {
                let port = crate::load::free_port()?;
                pool.fqdn = "127.0.0.1".to_owned();
                pool.port = port;
                Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            }
            None => None,
        };
        let (identity, roots) = match &external_gw {
            Some(e) if e.tls => {
                let identity = match &e.pool_identity {
                    Some((c, k)) => rcc_simulators::tls::Identity::from_pem_files(c, k)?,
                    None => ca.issue(&[POOL_FQDN])?,
                };
                let roots = match &e.ca {
                    Some(p) => rcc_simulators::tls::roots_from_pem_file(p)?,
                    None => anyhow::bail!(
                        "an external TLS gateway needs gateway.ca (the CA of its certificate)"
                    ),
                };
                (identity, roots)
            }
            _ => (ca.issue(&[POOL_FQDN])?, ca.roots()),
        };
        let line_server = options.line_server_uri()?;
        let lync = LyncSim::start(LyncSimConfig {
            pool,
            listen,
            // A TCP tier reaches the pool's listener over TCP; it takes TLS otherwise.
            tls: (tier.is_none() || tls).then_some(PoolTls { identity, roots }),
            hosts,
            // Real clients (pidgin-sipe) may sign in as any lab user.
            clients: Some(ClientListener {
                listen: std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
                users: options
                    .users
                    .iter()
                    .map(|u| ClientUser {
                        uri: u.uri(),
                        line: u.line(),
                        line_server: line_server.clone(),
                    })
                    .collect(),
            }),
        })
        .await?;
        let lab = Lab {
            line_server,
            pbx,
            gateway,
            tier,
            lync,
            options,
            gateway_config,
            ca,
            dir,
        };
        if lab.gateway.is_some() || lab.tier.is_some() {
            lab.wait_pbx_link().await?;
        } else if let Some(p) = &lab.pbx {
            // An external gateway connects on its own schedule; give it a moment.
            for _ in 0..500 {
                if !p.links().await?.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(lab)
    }

    /// Stops everything this lab started and waits until its sockets are released (so the next
    /// lab can listen on the same ports).
    pub async fn shutdown(mut self) {
        if let Some(p) = &self.pbx {
            let _ = p.drop_links(false).await;
        }
        self.gateway.take();
        self.tier.take();
        self.pbx.take();
        drop(self);
        // Aborted listener tasks release their sockets on the runtime's next turns.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// The PBX simulator (absent when the lab uses a real PBX).
    pub fn pbx(&self) -> anyhow::Result<&PbxSim> {
        self.pbx.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "not applicable: this needs the PBX simulator and the lab uses an external PBX"
            )
        })
    }

    /// The gateway (ours, in process): not applicable to an external one, an error when ours
    /// is not running.
    pub fn gateway(&self) -> anyhow::Result<&GatewayHandle> {
        self.gateway.as_ref().ok_or_else(|| match self.options.gateway_at {
            GatewayAt::External(_) => anyhow::anyhow!(
                "not applicable: this needs our gateway in process and the gateway under test is external"
            ),
            GatewayAt::Tier(_) => anyhow::anyhow!(
                "not applicable: this needs our gateway in process and the gateways stand behind Kamailio"
            ),
            GatewayAt::InProcess => anyhow::anyhow!("our gateway is not running"),
        })
    }

    /// The high-availability tier, when the gateways stand behind Kamailio.
    pub fn tier(&self) -> anyhow::Result<&Tier> {
        self.tier
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("not applicable: the lab has no Kamailio tier"))
    }

    /// The tier, to kill, restart or drain its gateways.
    pub fn tier_mut(&mut self) -> anyhow::Result<&mut Tier> {
        self.tier
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("not applicable: the lab has no Kamailio tier"))
    }

    /// Waits until the gateway's PBX link is up (every running gateway's, in the tier).
    pub async fn wait_pbx_link(&self) -> anyhow::Result<()> {
        self.eventually(
            "the gateway's PBX link up",
            Duration::from_secs(5),
            async |lab| match &lab.tier {
                Some(t) => {
                    for g in t.gateways().iter().filter(|g| g.running()) {
                        if g.metric("rcc_gateway_pbx_link_up").await? != 1.0 {
                            return Ok(None);
                        }
                    }
                    Ok(Some(()))
                }
                None => Ok(lab.gateway()?.pbx_serving().await?.then_some(())),
            },
        )
        .await
    }

    /// Stops the gateway (its sessions are lost, as in a crash) and starts a fresh one on the
    /// same address and configuration.
    pub async fn restart_gateway(&mut self) -> anyhow::Result<()> {
        let mut config = self
            .gateway_config
            .clone()
            .ok_or_else(|| anyhow::anyhow!("not applicable: the gateway under test is external"))?;
        if let Some(a) = self.gateway()?.sip_tls {
            config.sip.listen_tls = Some(a);
        }
        if let Some(a) = self.gateway()?.sip_tcp {
            config.sip.listen_tcp = Some(a);
        }
        let gw = self.gateway.take();
        if let Some(g) = &gw {
            // Give the old driver a moment to release its sockets once dropped.
            let _ = g.sessions().await;
        }
        drop(gw);
        // The listener's port is free once the old tasks are gone.
        let mut last = None;
        for _ in 0..100 {
            match GatewayHandle::start(config.clone()).await {
                Ok(g) => {
                    self.gateway = Some(g);
                    return self.wait_pbx_link().await;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("gateway restart failed")))
    }

    /// Every SIP and CSTA message between the clients, the Front End, the gateway and the PBX,
    /// in time order.
    pub async fn ladder(&self) -> anyhow::Result<Vec<crate::report::Arrow>> {
        let mut arrows: Vec<crate::report::Arrow> = self
            .lync
            .trace()
            .await?
            .into_iter()
            .map(|t| crate::report::Arrow {
                at_us: t.at_us,
                from: t.from,
                to: t.to,
                label: t.label,
                text: t.text,
            })
            .collect();
        let pbx_log = match &self.pbx {
            Some(p) => p.log_since(0).await?,
            None => Vec::new(),
        };
        for e in pbx_log {
            let (from, to) = match e.direction {
                rcc_simulators::pbx::Direction::In => ("gateway", "PBX"),
                rcc_simulators::pbx::Direction::Out => ("PBX", "gateway"),
            };
            arrows.push(crate::report::Arrow {
                at_us: e.at_us,
                from: from.to_owned(),
                to: to.to_owned(),
                label: match e.invoke_id {
                    Some(i) => format!("[{i:04}] {}", e.root),
                    None => e.root.clone(),
                },
                text: e.xml,
            });
        }
        arrows.sort_by_key(|a| a.at_us);
        Ok(arrows)
    }

    /// A user of the lab by name.
    pub fn user(&self, name: &str) -> anyhow::Result<User> {
        self.options
            .users
            .iter()
            .find(|u| u.name == name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no lab user {name:?}"))
    }

    /// Adds an endpoint for a user (`epid` distinguishes MPOP endpoints).
    pub async fn endpoint(
        &self,
        name: &str,
        epid: &str,
        profile: ClientProfile,
    ) -> anyhow::Result<usize> {
        let u = self.user(name)?;
        self.endpoint_on_line(&u.uri(), &u.line(), epid, profile)
            .await
    }

    /// Adds an endpoint for any SIP user on any line.
    pub async fn endpoint_on_line(
        &self,
        uri: &str,
        line: &str,
        epid: &str,
        profile: ClientProfile,
    ) -> anyhow::Result<usize> {
        self.lync
            .add_endpoint(self.endpoint_config(uri, line, epid, profile))
            .await
    }

    /// An endpoint of any SIP user on any line: the profile's refresh, signing in again 200 ms
    /// after its dialog ends.
    fn endpoint_config(
        &self,
        uri: &str,
        line: &str,
        epid: &str,
        profile: ClientProfile,
    ) -> EndpointConfig {
        EndpointConfig {
            user: uri.to_owned(),
            epid: epid.to_owned(),
            line: line.to_owned(),
            line_server: self.line_server.clone(),
            profile,
            refresh: None,
            reestablish: true,
            reestablish_delay: Duration::from_millis(200),
            address: "192.0.2.10:51063".to_owned(),
        }
    }

    /// Adds and signs in an endpoint; waits until it monitors its line.
    pub async fn signed_in(
        &self,
        name: &str,
        epid: &str,
        profile: ClientProfile,
    ) -> anyhow::Result<usize> {
        self.signed_in_with(name, epid, profile, None).await
    }

    /// [`Lab::signed_in`] with the endpoint's refresh interval replaced (`None`: the
    /// profile's).
    pub async fn signed_in_with(
        &self,
        name: &str,
        epid: &str,
        profile: ClientProfile,
        refresh: Option<Duration>,
    ) -> anyhow::Result<usize> {
        let u = self.user(name)?;
        let mut config = self.endpoint_config(&u.uri(), &u.line(), epid, profile);
        config.refresh = refresh;
        let id = self.lync.add_endpoint(config).await?;
        self.lync.sign_in(id).await?;
        self.lync.wait_ready(id, Duration::from_secs(10)).await?;
        Ok(id)
    }
}
