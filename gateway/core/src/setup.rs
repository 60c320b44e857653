//! From a parsed configuration to what the engine runs on: every problem found at once, and
//! the domain objects (numbering plan, authorization table) built by the same code that checks
//! them, so a check and the engine can never disagree on a rule.

use crate::config::{ClientCertMode, Config, PbxProfile, PbxTransport, split_host_port};
use crate::rcc::authz::Authorization;
use crate::rcc::numbering::Numbering;

/// The domain objects the engine runs on, built from a checked configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// LineURIs and dialled numbers to PBX numbers, and back.
    pub(crate) numbering: Numbering,
    /// Who may control which line.
    pub(crate) authorization: Authorization,
}

impl Policy {
    /// Builds the policy; the error lists every numbering rule that does not compile.
    pub fn build(config: &Config) -> Result<Policy, Vec<String>> {
        let numbering = Numbering::new(&config.numbering, config.pbx.profile)?;
        Ok(Policy {
            numbering,
            authorization: Authorization::from_config(&config.authorization),
        })
    }
}

/// Every problem in a parsed configuration that needs no file to see; the shell adds what it
/// finds in the files the configuration names.
pub fn check(c: &Config) -> Vec<String> {
    let mut p = Vec::new();
    let s = &c.sip;
    if s.listen_tls.is_none() && s.listen_tcp.is_none() {
        p.push("sip: give listen_tls or listen_tcp".to_owned());
    }
    if s.listen_tls.is_some() && s.tls.is_none() {
        p.push("sip.listen_tls needs [sip.tls] with cert and key".to_owned());
    }
    if let Some(t) = &s.tls
        && t.client_cert != ClientCertMode::None
        && t.client_ca.is_none()
    {
        p.push("sip.tls.client_cert needs client_ca (or client_cert = \"none\")".to_owned());
    }
    if s.host.trim().is_empty() {
        p.push("sip.host is empty (use the trusted application pool FQDN or IP)".to_owned());
    }
    if s.trusted_peers.is_empty() {
        p.push("sip: no trusted_peer; every Front End would be refused".to_owned());
    }
    for (i, t) in s.trusted_peers.iter().enumerate() {
        let given = [t.name.is_some(), t.ip.is_some(), t.net.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            p.push(format!(
                "sip.trusted_peer #{}: give exactly one of name, ip or net",
                i + 1
            ));
        }
    }
    if s.min_se_s < 90 {
        p.push(format!(
            "sip.min_se_s = {} is below RFC 4028's 90",
            s.min_se_s
        ));
    }
    if s.session_expires_s < s.min_se_s {
        p.push(format!(
            "sip.session_expires_s = {} is below min_se_s = {}",
            s.session_expires_s, s.min_se_s
        ));
    }
    if s.event_window == 0 || s.event_queue == 0 {
        p.push("sip.event_window and sip.event_queue must be at least 1".to_owned());
    }
    if s.max_transactions < 1024 {
        p.push(format!(
            "sip.max_transactions must be at least 1024, not {}",
            s.max_transactions
        ));
    }
    if s.max_connections != 0 && s.reserved_for_trusted >= s.max_connections {
        p.push(format!(
            "sip.reserved_for_trusted = {} leaves no connection of sip.max_connections = {} for the rest",
            s.reserved_for_trusted, s.max_connections
        ));
    }
    if s.max_connections_per_peer == 0 || s.max_tls_handshakes == 0 {
        p.push(
            "sip.max_connections_per_peer and sip.max_tls_handshakes must be at least 1".to_owned(),
        );
    }
    if s.tls_handshake_timeout_ms < 100 || s.message_timeout_ms < 100 {
        p.push(
            "sip.tls_handshake_timeout_ms and sip.message_timeout_ms must be at least 100"
                .to_owned(),
        );
    }
    if s.send_queue < 16 {
        p.push(format!(
            "sip.send_queue must be at least 16, not {}",
            s.send_queue
        ));
    }
    if let Some(t) = &c.observe.session_traces
        && t.max_open == 0
    {
        p.push("observe.session_traces.max_open must be at least 1".to_owned());
    }
    let x = &c.pbx;
    for (what, a) in [
        ("address", Some(&x.address)),
        ("secondary", x.secondary.as_ref()),
    ] {
        if let Some(a) = a
            && split_host_port(a).is_none()
        {
            p.push(format!("pbx.{what} {a:?} is not host:port"));
        }
    }
    if x.transport == PbxTransport::Tls && x.tls_ca.is_none() {
        p.push("pbx.transport = \"tls\" needs pbx.tls_ca".to_owned());
    }
    if x.username.is_some() != x.password.is_some() {
        p.push("pbx.username and pbx.password go together".to_owned());
    }
    if x.profile == PbxProfile::Aes && x.username.is_none() {
        p.push("pbx.profile = \"aes\" needs username and password".to_owned());
    }
    if x.session_duration_s < 10 {
        p.push("pbx.session_duration_s must be at least 10".to_owned());
    }
    if x.reconnect_min_ms == 0 || x.reconnect_max_ms < x.reconnect_min_ms {
        p.push("pbx: reconnect_min_ms must be > 0 and <= reconnect_max_ms".to_owned());
    }
    if x.monitor_retry_min_ms == 0 || x.monitor_retry_max_ms < x.monitor_retry_min_ms {
        p.push("pbx: monitor_retry_min_ms must be > 0 and <= monitor_retry_max_ms".to_owned());
    }
    if let Err(rules) = Policy::build(c) {
        p.extend(rules);
    }
    if let Some(f) = &c.authorization.file
        && c.authorization.file_rows.is_none()
    {
        p.push(format!("authorization.file {}: not read", f.display()));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_unchecked;

    const BASE: &str = r#"
        [sip]
        listen_tcp = "127.0.0.1:5066"
        host = "gw"
        trusted_peer = [{ ip = "127.0.0.1" }]
        [pbx]
        address = "127.0.0.1:1040"
    "#;

    fn with_rule(pattern: &str) -> Config {
        let text =
            format!("{BASE}\n[[numbering.to_pbx]]\npattern = {pattern:?}\nreplace = \"x\"\n");
        parse_unchecked(&text).expect("toml")
    }

    #[test]
    fn the_check_and_the_engine_read_a_rule_alike() {
        // Anchored, `a)(?:b` would compile as `^(?:a)(?:b)$`; alone it does not. The check used
        // to compile it alone and the engine anchored, so they disagreed; now both refuse it.
        let c = with_rule("a)(?:b");
        let problems = check(&c);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("numbering.to_pbx #1")),
            "{problems:?}"
        );
        assert!(Policy::build(&c).is_err());
        let c = with_rule("(1)(\\d+)");
        assert_eq!(check(&c), Vec::<String>::new());
        assert!(Policy::build(&c).is_ok());
    }

    #[test]
    fn a_named_file_must_have_been_read() {
        let mut c = parse_unchecked(&format!("{BASE}\n[authorization]\nfile = \"users.csv\"\n"))
            .expect("toml");
        assert_eq!(check(&c), vec!["authorization.file users.csv: not read"]);
        c.authorization.file_rows = Some(Vec::new());
        assert!(check(&c).is_empty());
    }
}
