//! `lync.toml`: the Lync simulator's topology (pool, static routes, trusted applications), its TLS
//! material and its users; and the Lync Server PowerShell that builds the same topology.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcc_lync_topology::exports::Exports;
use serde::Deserialize;

use super::endpoint::EndpointConfig;
use super::frontend::{PoolConfig, RouteTransport};
use super::frontend::{StaticRoute, TrustedApplication, TrustedComputer};
use super::profile::ClientProfile;
use super::registrar::ClientUser;
use super::server::{ClientListener, LabAddress, LyncSimConfig, PoolTls};

/// The file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LyncFile {
    /// Pool topology.
    pub pool: PoolConfig,
    /// Where the pool accepts connections gateways open.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// HTTP control endpoint.
    #[serde(default)]
    pub control: Option<SocketAddr>,
    /// Where real clients (pidgin-sipe) sign in over TCP as one of the `[[user]]`s: the
    /// pool's registrar, which also routes their RCC dialog.
    #[serde(default)]
    pub clients_listen: Option<SocketAddr>,
    /// TLS material.
    #[serde(default)]
    pub tls: Option<TlsFile>,
    /// Lab DNS: route destinations and where the lab reaches them (an address, or an address
    /// and port).
    #[serde(default)]
    pub hosts: HashMap<String, LabAddress>,
    /// Users.
    #[serde(default, rename = "user")]
    pub users: Vec<UserFile>,
}

/// `[tls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// The pool's certificate chain (PEM).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Its key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// CAs trusted for gateway certificates (PEM).
    pub ca: PathBuf,
}

/// `[[user]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    /// SIP URI.
    pub uri: String,
    /// LineURI.
    pub line: String,
    /// LineServerURI.
    pub line_server: String,
    /// Client profile.
    #[serde(default)]
    pub profile: ClientProfile,
    /// Simulated endpoints (MPOP); 0 with `clients_listen`: only real clients sign in as it.
    #[serde(default = "one")]
    pub endpoints: usize,
    /// Refresh interval in seconds (default: the profile's).
    #[serde(default)]
    pub refresh_s: Option<u64>,
}

fn one() -> usize {
    1
}

/// Parses and checks the file; every problem is listed.
pub fn parse(text: &str) -> anyhow::Result<LyncFile> {
    let f: LyncFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    validated(f)
}

/// Reads and checks a file, with the topology and users of Management Shell exports in
/// `exports` when given (see [`LyncFile::with_exports`]).
pub fn load(path: &Path, exports: Option<&Path>) -> anyhow::Result<LyncFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let f: LyncFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    match exports {
        None => validated(f).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Some(dir) => {
            let e = Exports::read(dir)?;
            f.with_exports(&e).map_err(|e| {
                anyhow::anyhow!(
                    "{} with the exports in {}: {e}",
                    path.display(),
                    dir.display()
                )
            })
        }
    }
}

/// The file if it holds together; every problem is listed.
fn validated(f: LyncFile) -> anyhow::Result<LyncFile> {
    let mut p = Vec::new();
    if f.pool.fqdn.trim().is_empty() {
        p.push("pool.fqdn is empty".to_owned());
    }
    if f.pool.static_routes.is_empty() {
        p.push("pool: no static_route; no INVITE would reach a gateway".to_owned());
    }
    for (i, r) in f.pool.static_routes.iter().enumerate() {
        if r.transport == RouteTransport::Tls && f.tls.is_none() {
            p.push(format!(
                "static_route #{} is TLS but there is no [tls]",
                i + 1
            ));
        }
    }
    for u in &f.users {
        if !u.uri.starts_with("sip:") {
            p.push(format!("user {:?}: uri must be a sip: URI", u.uri));
        }
        if !u.line_server.starts_with("sip:") {
            p.push(format!("user {}: line_server must be a sip: URI", u.uri));
        }
        if u.endpoints == 0 && f.clients_listen.is_none() {
            p.push(format!(
                "user {}: endpoints must be at least 1 (0 only with clients_listen, for a user only real clients sign in as)",
                u.uri
            ));
        }
    }
    if let Some(t) = &f.tls
        && t.cert.is_some() != t.key.is_some()
    {
        p.push("tls: cert and key go together".to_owned());
    }
    if p.is_empty() {
        Ok(f)
    } else {
        Err(anyhow::anyhow!(
            "{} problem(s):\n  - {}",
            p.len(),
            p.join("\n  - ")
        ))
    }
}

impl LyncFile {
    /// The pool as a real one is configured (see [`PoolConfig::take_exports`]), and its users
    /// the exported RCC users, each taking the profile and endpoint count of a `[[user]]` with
    /// the same SIP URI (default: one Lync 2013 endpoint).
    pub fn with_exports(mut self, e: &Exports) -> anyhow::Result<LyncFile> {
        let registrar = self.pool.fqdn.clone();
        self.pool.take_exports(e, &registrar, &self.hosts);
        let file_users = std::mem::take(&mut self.users);
        self.users = e
            .users
            .iter()
            .map(|u| {
                let same = file_users
                    .iter()
                    .find(|f| f.uri.eq_ignore_ascii_case(&u.sip_address));
                UserFile {
                    uri: u.sip_address.clone(),
                    line: u.line_uri.clone(),
                    line_server: u.line_server_uri.clone(),
                    profile: same.map(|f| f.profile).unwrap_or_default(),
                    endpoints: same.map_or(1, |f| f.endpoints),
                    refresh_s: same.and_then(|f| f.refresh_s),
                }
            })
            .collect();
        validated(self)
    }

    /// The simulator configuration (loading or generating the pool certificate).
    pub fn sim_config(&self) -> anyhow::Result<LyncSimConfig> {
        let tls = match &self.tls {
            Some(t) => {
                let roots = crate::tls::roots_from_pem_file(&t.ca)?;
                let identity = match (&t.cert, &t.key) {
                    (Some(c), Some(k)) => crate::tls::Identity::from_pem_files(c, k)?,
                    _ => crate::tls::LabCa::new("rcc-lab pool CA")?.issue(&[&self.pool.fqdn])?,
                };
                Some(PoolTls { identity, roots })
            }
            None => None,
        };
        let clients = self.clients_listen.map(|listen| ClientListener {
            listen,
            users: self
                .users
                .iter()
                .map(|u| ClientUser {
                    uri: u.uri.clone(),
                    line: u.line.clone(),
                    line_server: u.line_server.clone(),
                })
                .collect(),
        });
        Ok(LyncSimConfig {
            pool: self.pool.clone(),
            listen: self.listen,
            tls,
            hosts: self.hosts.clone(),
            clients,
        })
    }

    /// One endpoint configuration per user endpoint.
    pub fn endpoints(&self) -> Vec<EndpointConfig> {
        let mut out = Vec::new();
        for (ui, u) in self.users.iter().enumerate() {
            for e in 0..u.endpoints {
                out.push(EndpointConfig {
                    user: u.uri.clone(),
                    epid: format!("{:04x}{e:02x}", ui),
                    line: u.line.clone(),
                    line_server: u.line_server.clone(),
                    profile: u.profile,
                    refresh: u.refresh_s.map(Duration::from_secs),
                    reestablish: true,
                    reestablish_delay: Duration::from_secs(2),
                    address: format!("192.0.2.{}:{}", 10 + (ui % 200), 50000 + e),
                });
            }
        }
        out
    }
}

impl PoolConfig {
    /// The routing of a real pool from its Management Shell exports: the static routes Lync
    /// applies to the users of the pool `registrar` (its own routing collection when it has
    /// one, else the global one) and the exported trusted applications, treated as authenticated unless the
    /// exported pool says otherwise; a TCP one is pinned to its first computer (the pool
    /// itself when no computers were exported) whose name is an IP address or is in `hosts`,
    /// the lab's DNS.
    pub fn take_exports(
        &mut self,
        e: &Exports,
        registrar: &str,
        hosts: &HashMap<String, LabAddress>,
    ) {
        self.static_routes = e
            .routes_for_pool(registrar)
            .into_iter()
            .map(|r| StaticRoute {
                match_uri: r.match_uri.clone(),
                transport: if r.tls {
                    RouteTransport::Tls
                } else {
                    RouteTransport::Tcp
                },
                destination: r.destination.clone(),
                port: r.port,
                use_default_certificate: true,
            })
            .collect();
        self.trusted_applications = e
            .apps
            .iter()
            .map(|a| TrustedApplication {
                pool_fqdn: a.pool_fqdn.clone(),
                ip: a.tcp.then(|| pinned_ip(e, hosts, &a.pool_fqdn)).flatten(),
                port: a.port,
                tcp_enabled: a.tcp,
                treat_as_authenticated: e
                    .pool(&a.pool_fqdn)
                    .is_none_or(|p| p.treat_as_authenticated),
                computers: e
                    .computers_of(&a.pool_fqdn)
                    .into_iter()
                    .map(|n| TrustedComputer {
                        fqdn: n.to_owned(),
                        ip: address_of(hosts, n),
                    })
                    .collect(),
            })
            .collect();
    }
}

/// The address the pool knows a TCP trusted application pool by.
fn pinned_ip(e: &Exports, hosts: &HashMap<String, LabAddress>, pool_fqdn: &str) -> Option<IpAddr> {
    e.computers_of(pool_fqdn)
        .into_iter()
        .find_map(|n| address_of(hosts, n))
}

/// A computer's address: its name when that is an IP address, else the lab's DNS.
fn address_of(hosts: &HashMap<String, LabAddress>, name: &str) -> Option<IpAddr> {
    name.parse()
        .ok()
        .or_else(|| hosts.get(name).map(|h| h.ip()))
}

/// The Lync Server Management Shell commands for this topology (the printer is
/// `rcc_lync_topology::shell`, shared with `rcc-gateway lync-config`); `site` is the SiteId.
pub fn powershell(f: &LyncFile, registrar: &str, site: &str) -> anyhow::Result<String> {
    use rcc_lync_topology::shell::{Route, RouteScope, Topology, TrustedApp, UserLine};
    let topology = Topology {
        registrar: registrar.to_owned(),
        site_id: site.to_owned(),
        route_scope: RouteScope::Global,
        routes: f
            .pool
            .static_routes
            .iter()
            .map(|r| Route {
                match_uri: r.match_uri.clone(),
                destination: r.destination.clone(),
                port: r.port,
                tls: r.transport == RouteTransport::Tls,
                use_default_certificate: r.use_default_certificate,
            })
            .collect(),
        apps: f
            .pool
            .trusted_applications
            .iter()
            .map(|t| TrustedApp {
                pool_fqdn: t.pool_fqdn.clone(),
                computers: match t.computers.is_empty() {
                    true => vec![t.pool_fqdn.clone()],
                    false => t.computers.iter().map(|c| c.fqdn.clone()).collect(),
                },
                port: t.port,
                tcp: if t.tcp_enabled { t.ip } else { None },
                application_id: "rcc-gateway".to_owned(),
                treat_as_authenticated: t.treat_as_authenticated,
            })
            .collect(),
        users: f
            .users
            .iter()
            .map(|u| UserLine {
                identity: u.uri.clone(),
                line_uri: u.line.clone(),
                line_server_uri: u.line_server.clone(),
            })
            .collect(),
        bulk: None,
    };
    topology
        .print()
        .map_err(|p| anyhow::anyhow!("{} problem(s):\n  - {}", p.len(), p.join("\n  - ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_prints_its_topology() {
        let f = parse(include_str!("../../lync.example.toml")).expect("example");
        assert_eq!(f.endpoints().len(), 3);
        let ps = powershell(&f, "pool01.contoso.com", "1").expect("script");
        assert!(ps.contains("New-CsStaticRoute -TLSRoute -Destination 'rccgw01.contoso.com' -Port 5065 -UseDefaultCertificate $true -MatchUri 'rcc.contoso.com'"), "{ps}");
        assert!(ps.contains("New-CsTrustedApplication -ApplicationId 'rcc-gateway' -TrustedApplicationPoolFqdn 'rccgw01.contoso.com' -Port 5065\n"), "{ps}");
        assert!(
            ps.contains("Set-CsUser -Identity 'sip:alice@contoso.com'"),
            "{ps}"
        );
    }

    #[test]
    fn a_tcp_trusted_application_is_pinned_to_its_computers_address() {
        use rcc_lync_topology::exports::{ExportedApp, ExportedComputer, ExportedRoute};
        let file = parse(
            "[pool]\nfqdn = \"pool01.contoso.com\"\n[[pool.static_route]]\nmatch_uri = \"x\"\ntransport = \"tcp\"\ndestination = \"10.0.0.30\"\nport = 5065\n[hosts]\n\"rccgw01.contoso.com\" = \"10.0.0.30\"\n",
        )
        .expect("file");
        let mut e = Exports {
            collections: vec!["Global".into()],
            routes: vec![ExportedRoute {
                collection: "Global".into(),
                match_uri: "rcc.contoso.com".into(),
                destination: "10.0.0.30".into(),
                port: 5065,
                tls: false,
            }],
            apps: vec![ExportedApp {
                identity: "rccgw.contoso.com/urn:application:rcc-gateway".into(),
                pool_fqdn: "rccgw.contoso.com".into(),
                port: 5065,
                tcp: true,
            }],
            computers: Some(vec![ExportedComputer {
                fqdn: "rccgw01.contoso.com".into(),
                pool_fqdn: "rccgw.contoso.com".into(),
            }]),
            pools: None,
            users: vec![],
        };
        let pinned = |e: &Exports| {
            file.clone()
                .with_exports(e)
                .expect("exports")
                .pool
                .trusted_applications[0]
                .ip
        };
        assert_eq!(pinned(&e), "10.0.0.30".parse().ok());
        // Without the computers export the pool is its own computer, and has no address here.
        e.computers = None;
        assert_eq!(pinned(&e), None);
    }

    #[test]
    fn problems_are_listed() {
        let err = parse("[pool]\nfqdn = \"\"\n[[user]]\nuri = \"alice\"\nline = \"tel:1\"\nline_server = \"x\"\nendpoints = 0\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("5 problem(s)"), "{err}");
    }
}
