//! `rcc-gateway lync-check`: the Lync side of a rollout checked against this gateway before
//! go-live, from what an admin exports in the Lync Server Management Shell (one folder; the
//! commands and the reader are `rcc_lync_topology::exports`, shared with `lync-sim`). Each
//! mismatch that breaks RCC is a finding naming the object it was found in and the fix.

use std::net::IpAddr;

use rcc_lync_topology::exports::{ExportedApp, ExportedRoute, Exports, GLOBAL};
use rcc_lync_topology::match_uri;

use crate::config::Config;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// RCC will not work (for these users).
    Error,
    /// It works, but something else breaks or will.
    Warning,
}

/// One mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The Lync object (or file) it was found in.
    pub object: String,
    /// What is wrong.
    pub problem: String,
    /// What to do.
    pub fix: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{s}: {}: {}\n  fix: {}",
            self.object, self.problem, self.fix
        )
    }
}

fn domain_of(uri: &str) -> String {
    rcc_lync_topology::uri_domain(uri).unwrap_or_default()
}

/// How a name resolves where the check runs (the system resolver in the binary): its addresses,
/// or why not.
pub type Resolve<'a> = &'a dyn Fn(&str) -> Result<Vec<IpAddr>, String>;

/// The system resolver.
pub fn system_resolver(name: &str) -> Result<Vec<IpAddr>, String> {
    use std::net::ToSocketAddrs as _;
    (name, 0)
        .to_socket_addrs()
        .map(|a| a.map(|a| a.ip()).collect())
        .map_err(|e| e.to_string())
}

/// Every mismatch between the exports, the gateway's configuration and the names its
/// certificate carries (`cert_names`: the SIP TLS certificate's DNS names, when it listens on
/// TLS and the file could be read). A TCP trusted application is known to the Front End only by
/// the address its computers' FQDNs resolve to, so those are resolved with `resolve`.
pub fn check(
    e: &Exports,
    config: &Config,
    cert_names: Option<&[String]>,
    resolve: Resolve<'_>,
) -> Vec<Finding> {
    let mut f = Vec::new();
    let mut push = |severity, object: &str, problem: String, fix: String| {
        f.push(Finding {
            severity,
            object: object.to_owned(),
            problem,
            fix,
        });
    };
    let sip = &config.sip;
    let gw_port = sip.advertised_port();
    let gw_tls = sip.listen_tls.is_some();

    // Routes that point at this gateway.
    let ours: Vec<&ExportedRoute> = e
        .routes
        .iter()
        .filter(|r| r.destination.eq_ignore_ascii_case(&sip.host) && r.port == gw_port)
        .collect();
    if ours.is_empty() {
        push(
            Severity::Error,
            "static routes",
            format!("no static route goes to this gateway ({}:{gw_port})", sip.host),
            "New-CsStaticRoute to sip.host and its port, then Set-CsStaticRoutingConfiguration (rcc-gateway lync-config prints both)".into(),
        );
    }
    // A pool with its own routing collection ignores the global one.
    if ours
        .iter()
        .any(|r| r.collection.eq_ignore_ascii_case(GLOBAL))
    {
        for (collection, pool) in e.pool_collections() {
            if !ours.iter().any(|r| r.collection == collection) {
                push(
                    Severity::Error,
                    &format!("routing collection {collection}"),
                    format!(
                        "pool {pool} has its own routing collection without a route to this gateway: Lync ignores the global route for its users, whose RCC sign-in gets 404"
                    ),
                    format!(
                        "add the route to it: Set-CsStaticRoutingConfiguration -Identity '{collection}' -Route @{{Add=$route}} (rcc-gateway lync-config --pool-routing prints it)"
                    ),
                );
            }
        }
    }
    for r in &ours {
        let object = format!("static route {} in {}", r.match_uri, r.collection);
        if r.tls != gw_tls {
            push(
                Severity::Error,
                &object,
                format!(
                    "a {} route, but the gateway listens on {}",
                    if r.tls { "TLS" } else { "TCP" },
                    if gw_tls { "TLS" } else { "TCP only" }
                ),
                "make the route's transport the gateway's (-TLSRoute with sip.listen_tls)".into(),
            );
        }
        if r.match_uri.starts_with("*.") {
            push(
                Severity::Error,
                &object,
                format!(
                    "MatchUri {} takes every URI under the domain, conference URIs too: IM conferences break",
                    r.match_uri
                ),
                "match the LineServerURI's own subdomain (rcc.contoso.com), nothing wider".into(),
            );
        }
        let trusted = e
            .apps
            .iter()
            .find(|a| a.pool_fqdn.eq_ignore_ascii_case(&r.destination) && a.port == r.port);
        match trusted {
            None if r.tls => push(
                Severity::Error,
                &object,
                format!(
                    "no trusted application on {}:{}: Lync does not apply the route",
                    r.destination, r.port
                ),
                "New-CsTrustedApplicationPool and New-CsTrustedApplication for the route's destination and port".into(),
            ),
            None => {
                let tcp_apps: Vec<_> = e.apps.iter().filter(|a| a.tcp && a.port == r.port).collect();
                if tcp_apps.is_empty() {
                    push(
                        Severity::Error,
                        &object,
                        format!("no TCP trusted application on port {}: Lync does not apply the route", r.port),
                        "New-CsTrustedApplication -EnableTcp on that port, with the gateway's IP pinned in Topology Builder".into(),
                    );
                } else {
                    for a in &tcp_apps {
                        pool_settings(e, &a.pool_fqdn, &mut push);
                    }
                    if let Some(problem) = tcp_ip_problem(e, &tcp_apps, &r.destination, resolve) {
                        push(
                            Severity::Error,
                            &format!("TCP trusted application on port {}", r.port),
                            problem,
                            format!(
                                "give the gateway's computer FQDN a DNS A record for {} and pin that IP in Topology Builder (\"Limit service usage to selected IP addresses\"), then Enable-CsTopology",
                                r.destination
                            ),
                        );
                    }
                }
            }
            Some(a) => {
                pool_settings(e, &a.pool_fqdn, &mut push);
                if let Some(computers) = &e.computers
                    && !computers
                        .iter()
                        .any(|c| c.pool_fqdn.eq_ignore_ascii_case(&a.pool_fqdn))
                {
                    push(
                        Severity::Error,
                        &format!("trusted application pool {}", a.pool_fqdn),
                        "Get-CsTrustedApplicationComputer lists no computer in it: Lync has no server to send the route to".into(),
                        format!(
                            "New-CsTrustedApplicationComputer -Identity <gateway FQDN> -Pool '{}', then Enable-CsTopology",
                            a.pool_fqdn
                        ),
                    );
                }
                if a.tcp == gw_tls {
                    push(
                        Severity::Error,
                        &format!("trusted application {}", a.identity),
                        format!(
                            "its protocol is {}, the gateway listens on {}",
                            if a.tcp { "TCP" } else { "MTLS" },
                            if gw_tls { "TLS" } else { "TCP" }
                        ),
                        "recreate it with (or without) -EnableTcp to match".into(),
                    );
                }
                if let Some(names) = cert_names
                    && !names.iter().any(|n| n.eq_ignore_ascii_case(&a.pool_fqdn))
                {
                    push(
                        Severity::Error,
                        "the gateway's certificate (sip.tls.cert)",
                        format!(
                            "it names {} but not the trusted application pool {}: the Front End refuses the gateway",
                            names.join(", "),
                            a.pool_fqdn
                        ),
                        "issue the gateway a certificate whose subject alternative names include the pool FQDN".into(),
                    );
                }
            }
        }
    }

    // Users: their LineServerURI must be routed to the gateway (one finding per domain, however
    // many users share it), their line mappable.
    let mut unrouted: Vec<(String, Vec<&str>)> = Vec::new();
    for u in &e.users {
        let domain = domain_of(&u.line_server_uri);
        if !ours.iter().any(|r| match_uri(&r.match_uri, &domain)) {
            match unrouted.iter_mut().find(|(d, _)| *d == domain) {
                Some((_, users)) => users.push(&u.sip_address),
                None => unrouted.push((domain, vec![&u.sip_address])),
            }
        }
    }
    for (domain, users) in &unrouted {
        let shown: Vec<&str> = users.iter().take(3).copied().collect();
        push(
            Severity::Error,
            &format!(
                "{} user(s) with LineServerURI domain {domain} ({}{})",
                users.len(),
                shown.join(", "),
                if users.len() > 3 { ", …" } else { "" }
            ),
            format!("{domain:?} matches no static route to this gateway"),
            format!(
                "set the route's MatchUri to {domain}, or the users' LineServerURI to the routed domain"
            ),
        );
    }
    for u in &e.users {
        let object = format!("user {}", u.sip_address);
        if u.enterprise_voice {
            push(
                Severity::Error,
                &object,
                "Enterprise Voice is enabled: the client places calls itself instead of through the PBX".into(),
                "Set-CsUser -EnterpriseVoiceEnabled $false".into(),
            );
        }
        let line = u.line_uri.to_ascii_lowercase();
        if line.starts_with("tel:+") && line.contains("phone-context=dialstring") {
            push(
                Severity::Error,
                &object,
                format!("LineURI {} is E.164 with phone-context=dialstring", u.line_uri),
                "drop ;phone-context=dialstring from E.164 LineURIs (it is for numbers that are not E.164)".into(),
            );
        }
        if !line.starts_with("tel:") {
            push(
                Severity::Error,
                &object,
                format!("LineURI {:?} is not a tel: URI", u.line_uri),
                "Set-CsUser -LineUri 'tel:+…;ext=…'".into(),
            );
        } else if let Ok(false) = rcc_gateway_core::maps_line(config, &u.line_uri) {
            push(
                Severity::Warning,
                &object,
                format!("no numbering.to_pbx rule maps LineURI {}", u.line_uri),
                "add a rule (rcc-gateway numbering shows what each rule does)".into(),
            );
        }
    }
    f.sort_by_key(|x| x.severity);
    f
}

/// What the exported settings of the trusted application pool the route reaches break.
fn pool_settings(
    e: &Exports,
    pool_fqdn: &str,
    push: &mut impl FnMut(Severity, &str, String, String),
) {
    let object = format!("trusted application pool {pool_fqdn}");
    if e.pools.is_none() {
        return;
    }
    let Some(p) = e.pool(pool_fqdn) else {
        push(
            Severity::Error,
            &object,
            "Get-CsTrustedApplicationPool does not list it: the trusted application has no pool"
                .into(),
            format!(
                "New-CsTrustedApplicationPool -Identity '{pool_fqdn}' … (rcc-gateway lync-config prints it)"
            ),
        );
        return;
    };
    if !p.treat_as_authenticated {
        push(
            Severity::Error,
            &object,
            "TreatAsAuthenticated is False: the Front End challenges the gateway's requests, and event INFOs and BYEs never reach the clients".into(),
            format!("Set-CsTrustedApplicationPool -Identity '{pool_fqdn}' -TreatAsAuthenticated $true"),
        );
    }
    if !p.throttle_as_server {
        push(
            Severity::Warning,
            &object,
            "ThrottleAsServer is False: the Front End throttles all of the gateway's dialogs as if they were one client's".into(),
            format!("Set-CsTrustedApplicationPool -Identity '{pool_fqdn}' -ThrottleAsServer $true"),
        );
    }
}

/// Why none of the computers of these TCP trusted applications is at `ip` (the TCP route's
/// destination): the Front End would not recognise the gateway's connections. A pool without
/// an exported computer list is its own single computer.
fn tcp_ip_problem(
    e: &Exports,
    apps: &[&ExportedApp],
    ip: &str,
    resolve: Resolve<'_>,
) -> Option<String> {
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return Some(format!(
            "the TCP route's destination {ip:?} is not an IP address"
        ));
    };
    let mut seen = Vec::new();
    for a in apps {
        for name in e.computers_of(&a.pool_fqdn) {
            if name.parse::<IpAddr>() == Ok(ip) {
                return None;
            }
            match resolve(name) {
                Ok(addrs) if addrs.contains(&ip) => return None,
                Ok(addrs) => seen.push(format!(
                    "{name} resolves to {}",
                    addrs
                        .iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(why) => seen.push(format!("{name} does not resolve ({why})")),
            }
        }
    }
    Some(format!(
        "none of its computers is at the route's {ip} ({}): the Front End cannot tell the gateway's connections",
        if seen.is_empty() {
            "it has no computer".to_owned()
        } else {
            seen.join("; ")
        }
    ))
}

/// The DNS names of the gateway's SIP certificate (`None` without TLS or when it cannot be
/// read: check-config reports that).
pub fn certificate_names(config: &Config) -> Option<Vec<String>> {
    let t = config.sip.tls.as_ref()?;
    let certs = rcc_net::tls::certs(&t.cert).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(certs.first()?.as_ref()).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    Some(
        san.value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                _ => None,
            })
            .collect(),
    )
}
