//! A Lync Server RCC topology as Lync holds it: [`shell`] prints the Management Shell commands
//! that build one (for `rcc-gateway lync-config` and `lync-sim powershell`), [`exports`] reads
//! what an admin exports from a real one (for `rcc-gateway lync-check` and for `lync-sim`, which
//! then routes as the customer's pool does). Both sides judge a MatchUri the same way here.

pub mod exports;
pub mod shell;

/// Whether a static route's MatchUri (`rcc.contoso.com`, or `*.contoso.com`, which also takes
/// the suffix itself and every child domain) matches a Request-URI domain, case-insensitively.
pub fn match_uri(pattern: &str, domain: &str) -> bool {
    let (p, d) = (pattern.to_ascii_lowercase(), domain.to_ascii_lowercase());
    match p.strip_prefix("*.") {
        Some(suffix) => d == suffix || d.ends_with(&format!(".{suffix}")),
        None => p == d,
    }
}

/// The host of a `sip:`/`sips:` URI, lower-cased (`sip:rcc@RCC.contoso.com:5065;transport=tls`
/// gives `rcc.contoso.com`).
pub fn uri_domain(uri: &str) -> Option<String> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let host = rest.rsplit('@').next()?;
    let host = host.split([';', '?', '>']).next()?;
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_uri_rules() {
        assert!(match_uri("rcc.contoso.com", "RCC.contoso.com"));
        assert!(!match_uri("rcc.contoso.com", "x.rcc.contoso.com"));
        assert!(match_uri("*.contoso.com", "rcc.contoso.com"));
        assert!(match_uri("*.contoso.com", "a.b.contoso.com"));
        assert!(match_uri("*.contoso.com", "contoso.com"));
        assert!(!match_uri("*.contoso.com", "contoso.net"));
    }

    #[test]
    fn uri_domains() {
        assert_eq!(
            uri_domain("sip:rcc@RCC.contoso.com").as_deref(),
            Some("rcc.contoso.com")
        );
        assert_eq!(
            uri_domain("sip:rcc@rcc.contoso.com:5065;transport=tls").as_deref(),
            Some("rcc.contoso.com")
        );
        assert_eq!(uri_domain("tel:+1"), None);
    }
}
