//! The Lync Server Management Shell commands that make a pool route RCC to this gateway: a
//! static route on the LineServerURI domain, the trusted application pool and application on the
//! gateway's FQDN (or pinned IP) and port, publishing the topology, and a user example.

use crate::config::Config;

/// What the printout needs beyond the gateway's own configuration.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The LineServerURI users get (`sip:rccgateway@rcc.contoso.com`).
    pub line_server_uri: String,
    /// The Front End pool (registrar) FQDN.
    pub registrar: String,
    /// The Lync site.
    pub site: String,
    /// An example user identity for Set-CsUser.
    pub user: String,
    /// That user's LineURI.
    pub line: String,
}

/// The domain of a SIP URI (`sip:rcc@rcc.contoso.com;transport=tls` → `rcc.contoso.com`).
pub fn uri_domain(uri: &str) -> Option<String> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let host = rest.rsplit('@').next()?;
    let host = host.split([';', '?', '>']).next()?;
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The PowerShell, commented.
pub fn powershell(config: &Config, d: &Deployment) -> anyhow::Result<String> {
    let domain = uri_domain(&d.line_server_uri).ok_or_else(|| {
        anyhow::anyhow!(
            "LineServerURI {:?} is not a sip: URI with a domain",
            d.line_server_uri
        )
    })?;
    let sip = &config.sip;
    let host = &sip.host;
    let port = sip.advertised_port();
    let tls = sip.listen_tls.is_some();
    let mut out = String::new();
    out.push_str("# Lync Server 2013 Management Shell: remote call control through rcc-gateway\n");
    out.push_str(&format!(
        "# Gateway {host}:{port} over {}; LineServerURI {} (MatchUri {domain}).\n\n",
        if tls { "TLS" } else { "TCP" },
        d.line_server_uri
    ));
    out.push_str("# 1. Static route: the Front End sends requests for the LineServerURI domain to the gateway.\n");
    if tls {
        out.push_str(&format!(
            "$route = New-CsStaticRoute -TLSRoute -Destination {host} -Port {port} -UseDefaultCertificate $true -MatchUri {domain}\n"
        ));
    } else {
        out.push_str(&format!(
            "$route = New-CsStaticRoute -TCPRoute -Destination {host} -Port {port} -MatchUri {domain}\n"
        ));
    }
    out.push_str("Set-CsStaticRoutingConfiguration -Identity global -Route @{Add=$route}\n\n");
    out.push_str("# 2. Trusted application: Lync applies the route and accepts the gateway's requests unchallenged.\n");
    out.push_str(&format!(
        "New-CsTrustedApplicationPool -Identity {host} -Registrar {} -Site {} -TreatAsAuthenticated $true -ThrottleAsServer $true -RequiresReplication $false\n",
        d.registrar, d.site
    ));
    let tcp = if tls { "" } else { " -EnableTcp" };
    out.push_str(&format!(
        "New-CsTrustedApplication -ApplicationId rcc-gateway -TrustedApplicationPoolFqdn {host} -Port {port}{tcp}\n"
    ));
    if !tls {
        out.push_str(
            "# TCP: in Topology Builder, edit the trusted application server, clear \"Enable replication\",\n\
             # and select \"Limit service usage to selected IP addresses\" with the gateway's IP.\n",
        );
    } else {
        out.push_str(&format!(
            "# TLS: the gateway's certificate must name {host}; the Front End's certificate must be issued by a CA in sip.tls.client_ca.\n"
        ));
    }
    out.push_str("\n# 3. Publish.\nEnable-CsTopology\n\n");
    out.push_str("# 4. Each RCC user (Enterprise Voice off, LineURI = the PBX line, LineServerURI = the gateway).\n");
    out.push_str(&format!(
        "Set-CsUser -Identity \"{}\" -EnterpriseVoiceEnabled $false -LineServerUri {} -LineUri {} -RemoteCallControlTelephonyEnabled $true\n",
        d.user, d.line_server_uri, d.line
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(
            uri_domain("sip:rcc@RCC.contoso.com"),
            Some("rcc.contoso.com".into())
        );
        assert_eq!(
            uri_domain("sip:rcc@rcc.contoso.com:5065;transport=tls"),
            Some("rcc.contoso.com".into())
        );
        assert_eq!(uri_domain("tel:+1"), None);
    }
}
