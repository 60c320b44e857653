//! `rcc-gateway lync-config`: the Lync Server Management Shell commands that route RCC to this
//! gateway, from its configuration (host, port, transport) and the deployment's facts (the
//! LineServerURI, the Front End pool, the site, the gateway computers, the users). The printer
//! itself is `rcc_lync_topology::shell`, shared with `lync-sim powershell`.

use rcc_lync_topology::shell::{Route, RouteScope, Topology, TrustedApp, UserLine};
use rcc_lync_topology::uri_domain;

use crate::config::Config;

/// What the printout needs beyond the gateway's own configuration (`lync-config`'s options).
#[derive(Debug, Clone, clap::Args)]
pub struct Deployment {
    /// The LineServerURI users get; its domain becomes the static route's MatchUri.
    #[arg(long, default_value = "sip:rccgateway@rcc.contoso.com")]
    pub line_server_uri: String,
    /// Front End pool (registrar) FQDN.
    #[arg(long, default_value = "pool01.contoso.com")]
    pub registrar: String,
    /// The Lync SiteId (the number Get-CsSite shows).
    #[arg(long, default_value = "1")]
    pub site: String,
    /// A computer of the trusted application pool, one per gateway node (repeatable;
    /// default: sip.host; required over TCP, where sip.host is an IP).
    #[arg(long = "computer")]
    pub computers: Vec<String>,
    /// Put the route in the pool's own routing collection (service:Registrar:POOL), for a
    /// pool that has one, instead of the global one.
    #[arg(long)]
    pub pool_routing: bool,
    /// The trusted application's id.
    #[arg(long, default_value = "rcc-gateway")]
    pub application_id: String,
    /// Example user for Set-CsUser.
    #[arg(long, default_value = "Katie Jordan")]
    pub user: String,
    /// That user's LineURI.
    #[arg(long, default_value = "tel:+14255550100;ext=100")]
    pub line: String,
    /// A CSV of users (columns SipAddress,LineUri) to enable in one loop.
    #[arg(long)]
    pub users_csv: Option<String>,
}

/// The topology this gateway and deployment make.
pub fn topology(config: &Config, d: &Deployment) -> anyhow::Result<Topology> {
    let domain = uri_domain(&d.line_server_uri).ok_or_else(|| {
        anyhow::anyhow!(
            "LineServerURI {:?} is not a sip: URI with a domain",
            d.line_server_uri
        )
    })?;
    let sip = &config.sip;
    let tls = sip.listen_tls.is_some();
    let port = sip.advertised_port();
    let tcp_ip = if tls {
        None
    } else {
        Some(sip.host.parse().map_err(|_| {
            anyhow::anyhow!(
                "sip.host {:?}: over TCP the static route's destination is the gateway's IP",
                sip.host
            )
        })?)
    };
    // Over TCP the pool still has an FQDN identity (the first computer's); the route goes to
    // the pinned IP.
    let pool_fqdn = if tls {
        sip.host.clone()
    } else {
        d.computers.first().cloned().ok_or_else(|| {
            anyhow::anyhow!(
                "over TCP the trusted application pool needs an FQDN: give --computer (the gateway's FQDN)"
            )
        })?
    };
    let computers = if d.computers.is_empty() {
        vec![pool_fqdn.clone()]
    } else {
        d.computers.clone()
    };
    Ok(Topology {
        registrar: d.registrar.clone(),
        site_id: d.site.clone(),
        route_scope: if d.pool_routing {
            RouteScope::Pool(d.registrar.clone())
        } else {
            RouteScope::Global
        },
        routes: vec![Route {
            match_uri: domain,
            destination: sip.host.clone(),
            port,
            tls,
            use_default_certificate: true,
        }],
        apps: vec![TrustedApp {
            pool_fqdn,
            computers,
            port,
            tcp: tcp_ip,
            application_id: d.application_id.clone(),
            treat_as_authenticated: true,
        }],
        users: vec![UserLine {
            identity: d.user.clone(),
            line_uri: d.line.clone(),
            line_server_uri: d.line_server_uri.clone(),
        }],
        bulk: d
            .users_csv
            .clone()
            .map(|csv| (csv, d.line_server_uri.clone())),
    })
}

/// The PowerShell, commented; an error lists every problem with the inputs, the LineURIs the
/// numbering plan cannot map among them.
pub fn powershell(config: &Config, d: &Deployment) -> anyhow::Result<String> {
    let mut problems = unmapped_lines(config, d);
    let printed = topology(config, d)?.print();
    let mut out = match printed {
        Ok(out) if problems.is_empty() => out,
        Ok(_) => String::new(),
        Err(p) => {
            problems.extend(p);
            String::new()
        }
    };
    anyhow::ensure!(
        problems.is_empty(),
        "{} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
    if config.sip.listen_tls.is_some() {
        out.push_str(&format!(
            "\n# TLS: the gateway's certificate must name {}; the Front End's certificate must come from a CA in sip.tls.client_ca.\n",
            config.sip.host
        ));
    }
    Ok(out)
}

/// The example user's LineURI and, when the `--users-csv` file is readable here, every row's,
/// that no `numbering.to_pbx` rule maps to a PBX device (such a user's sign-in would be
/// refused). Rows that are not tel: URIs are left to the printer's own check.
fn unmapped_lines(config: &Config, d: &Deployment) -> Vec<String> {
    let mut lines = vec![("--line".to_owned(), d.line.clone())];
    if let Some(path) = &d.users_csv
        && let Ok(mut reader) = csv::Reader::from_path(path)
    {
        let column = reader.headers().ok().and_then(|h| {
            h.iter().position(|c| {
                c.trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case("LineUri")
            })
        });
        if let Some(column) = column {
            for (i, row) in reader.records().enumerate() {
                if let Some(line) = row.ok().as_ref().and_then(|r| r.get(column)) {
                    lines.push((format!("{path} row {}", i + 2), line.to_owned()));
                }
            }
        }
    }
    lines
        .into_iter()
        .filter(|(_, line)| line.starts_with("tel:"))
        .filter_map(|(place, line)| match rcc_gateway_core::maps_line(config, &line) {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "{place}: no numbering.to_pbx rule maps LineURI {line} to a PBX device (rcc-gateway numbering shows each rule)"
            )),
            Err(rules) => Some(format!("numbering: {}", rules.join("; "))),
        })
        .collect()
}
