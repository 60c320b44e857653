//! The Lync Server Management Shell commands of an RCC topology, printed once for
//! `rcc-gateway lync-config` and `lync-sim powershell`: the trusted application pool (with
//! one or more computers) and application, publishing, the static route in the global or a
//! pool's routing collection, each user (or all of them from a CSV, as a rollout of thousands
//! needs), and the commands that show it took. Every value is a single-quoted PowerShell
//! string (an embedded `'` doubled), so `;`, `$` or `"` in a LineURI or a name cannot end a
//! statement or expand.

use std::fmt::Write as _;
use std::net::IpAddr;

/// A static route to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// MatchUri: the LineServerURI's domain.
    pub match_uri: String,
    /// Destination: the trusted application pool FQDN (TLS) or the gateway's IP (TCP).
    pub destination: String,
    /// Port.
    pub port: u16,
    /// `-TLSRoute` (else `-TCPRoute`).
    pub tls: bool,
    /// `-UseDefaultCertificate` (TLS).
    pub use_default_certificate: bool,
}

/// A trusted application pool and its RCC application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedApp {
    /// The pool's FQDN (its certificate name over TLS; its identity over TCP too).
    pub pool_fqdn: String,
    /// Its computers (one per gateway node); the first is given to the pool itself.
    pub computers: Vec<String>,
    /// The application's port.
    pub port: u16,
    /// TCP (`-EnableTcp`, the IP pinned in Topology Builder).
    pub tcp: Option<IpAddr>,
    /// `-ApplicationId`.
    pub application_id: String,
    /// `-TreatAsAuthenticated`.
    pub treat_as_authenticated: bool,
}

/// One RCC user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLine {
    /// `-Identity` (SIP address or display name).
    pub identity: String,
    /// LineURI (`tel:+14255550100;ext=100`).
    pub line_uri: String,
    /// LineServerURI (`sip:rccgateway@rcc.contoso.com`).
    pub line_server_uri: String,
}

/// Where the routes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteScope {
    /// The global collection (`-Identity global`).
    Global,
    /// The collection of one pool (`service:Registrar:<pool>`), which, where it exists, is
    /// used instead of the global one.
    Pool(String),
}

/// Everything printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The Front End pool (registrar) FQDN.
    pub registrar: String,
    /// The SiteId (`Get-CsSite`), numeric.
    pub site_id: String,
    /// Which routing collection.
    pub route_scope: RouteScope,
    /// Static routes.
    pub routes: Vec<Route>,
    /// Trusted applications.
    pub apps: Vec<TrustedApp>,
    /// Users set one by one.
    pub users: Vec<UserLine>,
    /// A CSV of users (`SipAddress,LineUri`) to enable in a loop, with this LineServerURI.
    pub bulk: Option<(String, String)>,
}

/// A PowerShell single-quoted string.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn bool_arg(b: bool) -> &'static str {
    if b { "$true" } else { "$false" }
}

impl Topology {
    /// What is wrong with the inputs; empty when the script can be printed.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let empty = |what: &str, v: &str, p: &mut Vec<String>| {
            if v.trim().is_empty() {
                p.push(format!("{what} is empty"));
            }
        };
        empty(
            "the registrar (Front End pool FQDN)",
            &self.registrar,
            &mut p,
        );
        if self.site_id.is_empty() || !self.site_id.bytes().all(|b| b.is_ascii_digit()) {
            p.push(format!(
                "the site {:?} is not a SiteId: use the number Get-CsSite shows (not site:NAME)",
                self.site_id
            ));
        }
        for r in &self.routes {
            empty("a static route's MatchUri", &r.match_uri, &mut p);
            empty("a static route's destination", &r.destination, &mut p);
        }
        for a in &self.apps {
            empty("a trusted application pool FQDN", &a.pool_fqdn, &mut p);
            empty("the application id", &a.application_id, &mut p);
            if a.computers.is_empty() {
                p.push(format!(
                    "the trusted application pool {} has no computer",
                    a.pool_fqdn
                ));
            }
            if a.pool_fqdn.parse::<IpAddr>().is_ok() {
                p.push(format!(
                    "the trusted application pool {} is an IP: Lync identifies it by FQDN (pin the IP in Topology Builder)",
                    a.pool_fqdn
                ));
            }
        }
        for u in &self.users {
            empty("a user identity", &u.identity, &mut p);
            if !u.line_uri.starts_with("tel:") {
                p.push(format!(
                    "{}: LineURI {:?} is not a tel: URI",
                    u.identity, u.line_uri
                ));
            }
            if !u.line_server_uri.starts_with("sip:") {
                p.push(format!(
                    "{}: LineServerURI {:?} is not a sip: URI",
                    u.identity, u.line_server_uri
                ));
            }
        }
        p
    }

    /// The script; an error lists every problem with the inputs.
    pub fn print(&self) -> Result<String, Vec<String>> {
        let problems = self.problems();
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut o = String::new();
        o.push_str("# Lync Server 2013 Management Shell: remote call control through a SIP/CSTA gateway.\n");
        o.push_str("# Every value is quoted; run the sections in order.\n\n");
        o.push_str("# 0. Migrating from OCS 2007 R2: first remove the gateway's Host Authorization entry in\n#    the OCS admin console (a Lync trusted application replaces it).\n\n");
        o.push_str("# 1. Trusted application pool and application: Lync applies the route and accepts the\n#    gateway's requests unchallenged.\n");
        for a in &self.apps {
            self.trusted_app(&mut o, a);
        }
        o.push_str("\n# 2. Publish the topology.\nEnable-CsTopology\n\n");
        o.push_str("# 3. Static route: requests for the LineServerURI domain go to the gateway.\n");
        let identity = match &self.route_scope {
            RouteScope::Global => "global".to_owned(),
            RouteScope::Pool(pool) => {
                let id = format!("service:Registrar:{pool}");
                let _ = writeln!(
                    o,
                    "# This pool has its own routing collection, which Lync uses instead of the global one\n# (create it only if Get-CsStaticRoutingConfiguration does not list it):\n# New-CsStaticRoutingConfiguration -Identity {}",
                    quote(&id)
                );
                id
            }
        };
        for (i, r) in self.routes.iter().enumerate() {
            let kind = if r.tls { "-TLSRoute" } else { "-TCPRoute" };
            let cert = if r.tls {
                format!(
                    " -UseDefaultCertificate {}",
                    bool_arg(r.use_default_certificate)
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "$route{i} = New-CsStaticRoute {kind} -Destination {} -Port {}{cert} -MatchUri {}",
                quote(&r.destination),
                r.port,
                quote(&r.match_uri)
            );
            let _ = writeln!(
                o,
                "Set-CsStaticRoutingConfiguration -Identity {} -Route @{{Add=$route{i}}}",
                quote(&identity)
            );
        }
        o.push_str("\n# 4. RCC users: Enterprise Voice off, LineURI = the PBX line, LineServerURI = the gateway.\n#    RCC normalizes numbers with the Address Book Service's rules, not the dial plan's.\n");
        for u in &self.users {
            let _ = writeln!(
                o,
                "Set-CsUser -Identity {} -EnterpriseVoiceEnabled $false -LineServerUri {} -LineUri {} -RemoteCallControlTelephonyEnabled $true",
                quote(&u.identity),
                quote(&u.line_server_uri),
                quote(&u.line_uri)
            );
        }
        if let Some((csv, line_server)) = &self.bulk {
            let _ = writeln!(
                o,
                "# Every user of a CSV with the columns SipAddress,LineUri:\nImport-Csv -Path {} | ForEach-Object {{ Set-CsUser -Identity $_.SipAddress -EnterpriseVoiceEnabled $false -LineServerUri {} -LineUri $_.LineUri -RemoteCallControlTelephonyEnabled $true }}",
                quote(csv),
                quote(line_server)
            );
        }
        o.push_str("\n# 5. Check what took.\n");
        let _ = writeln!(
            o,
            "Get-CsStaticRoutingConfiguration -Identity {} | Select-Object -ExpandProperty Route",
            quote(&identity)
        );
        for a in &self.apps {
            let _ = writeln!(
                o,
                "Get-CsTrustedApplication -Identity {}",
                quote(&format!(
                    "{}/urn:application:{}",
                    a.pool_fqdn, a.application_id
                ))
            );
        }
        for u in &self.users {
            let _ = writeln!(
                o,
                "Get-CsUser -Identity {} | Format-List LineURI,LineServerURI,RemoteCallControlTelephonyEnabled,EnterpriseVoiceEnabled",
                quote(&u.identity)
            );
        }
        Ok(o)
    }

    fn trusted_app(&self, o: &mut String, a: &TrustedApp) {
        let first = a
            .computers
            .first()
            .map_or(a.pool_fqdn.as_str(), String::as_str);
        let _ = writeln!(
            o,
            "New-CsTrustedApplicationPool -Identity {} -Registrar {} -Site {} -ComputerFqdn {} -TreatAsAuthenticated {} -ThrottleAsServer $true -RequiresReplication $false",
            quote(&a.pool_fqdn),
            quote(&self.registrar),
            quote(&self.site_id),
            quote(first),
            bool_arg(a.treat_as_authenticated)
        );
        for c in a.computers.iter().skip(1) {
            let _ = writeln!(
                o,
                "New-CsTrustedApplicationComputer -Identity {} -Pool {}",
                quote(c),
                quote(&a.pool_fqdn)
            );
        }
        let tcp = if a.tcp.is_some() { " -EnableTcp" } else { "" };
        let _ = writeln!(
            o,
            "New-CsTrustedApplication -ApplicationId {} -TrustedApplicationPoolFqdn {} -Port {}{tcp}",
            quote(&a.application_id),
            quote(&a.pool_fqdn),
            a.port
        );
        if let Some(ip) = a.tcp {
            let _ = writeln!(
                o,
                "# TCP: in Topology Builder, edit {}: clear \"Enable replication\", select \"Limit service\n#    usage to selected IP addresses\" with {ip}, and do the same for every other trusted\n#    application listening on port {} so that none answers for another's IP; then publish.",
                a.pool_fqdn, a.port
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        Topology {
            registrar: "pool01.contoso.com".into(),
            site_id: "1".into(),
            route_scope: RouteScope::Global,
            routes: vec![Route {
                match_uri: "rcc.contoso.com".into(),
                destination: "rccgw.contoso.com".into(),
                port: 5065,
                tls: true,
                use_default_certificate: true,
            }],
            apps: vec![TrustedApp {
                pool_fqdn: "rccgw.contoso.com".into(),
                computers: vec!["rccgw01.contoso.com".into(), "rccgw02.contoso.com".into()],
                port: 5065,
                tcp: None,
                application_id: "rcc-gateway".into(),
                treat_as_authenticated: true,
            }],
            users: vec![UserLine {
                identity: "Katie O'Jordan".into(),
                line_uri: "tel:+14255550100;ext=100".into(),
                line_server_uri: "sip:rccgateway@rcc.contoso.com".into(),
            }],
            bulk: Some(("users.csv".into(), "sip:rccgateway@rcc.contoso.com".into())),
        }
    }

    #[test]
    fn values_are_quoted_so_a_semicolon_cannot_end_the_statement() {
        let ps = topology().print().expect("script");
        assert!(
            ps.contains(
                "-LineUri 'tel:+14255550100;ext=100' -RemoteCallControlTelephonyEnabled $true"
            ),
            "{ps}"
        );
        assert!(ps.contains("-Identity 'Katie O''Jordan'"), "{ps}");
        assert!(ps.contains("New-CsTrustedApplicationComputer -Identity 'rccgw02.contoso.com' -Pool 'rccgw.contoso.com'"));
        assert!(ps.contains("-ComputerFqdn 'rccgw01.contoso.com'"));
        assert!(ps.contains("Import-Csv -Path 'users.csv' | ForEach-Object {"));
    }

    #[test]
    fn bad_inputs_are_refused_with_every_reason() {
        let mut t = topology();
        t.site_id = "site:Redmond".into();
        t.users[0].line_uri = "+14255550100".into();
        t.apps[0].pool_fqdn = "10.0.0.30".into();
        t.registrar = String::new();
        let p = t.print().expect_err("refused");
        assert!(p.iter().any(|x| x.contains("not a SiteId")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("not a tel: URI")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("is an IP")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("registrar")), "{p:?}");
    }
}
