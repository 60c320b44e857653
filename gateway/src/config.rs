//! `gateway.toml` for the shell: the core's configuration types, read from a file, with the
//! files it names checked and the authorization CSV read (once, here: the core does no I/O).
//! [`parse`] reports every problem at once (`rcc-gateway check-config`).

use std::path::Path;

pub use rcc_gateway_core::config::*;
use rcc_gateway_core::parse_csv;
use rcc_gateway_core::setup;

/// A commented example, shipped as `gateway/gateway.example.toml`.
pub const EXAMPLE: &str = include_str!("../gateway.example.toml");

/// Reads and checks a file.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    read(path).map_err(|problems| {
        anyhow::anyhow!(
            "{}: {} problem(s):\n  - {}",
            path.display(),
            problems.len(),
            problems.join("\n  - ")
        )
    })
}

/// Reads and checks a file: the configuration, or every problem in it.
pub fn read(path: &Path) -> Result<Config, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
    let mut config = parse_unchecked(&text).map_err(|e| vec![e.to_string()])?;
    let problems = check(&mut config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// Every problem in a configuration, its files read (the authorization CSV into it).
/// Reads a configuration for printing what others must configure (`lync-config`): the
/// checks that do not read files must pass; the problems with the files it names (certificates
/// not issued yet) are returned to show as warnings.
pub fn load_for_printing(path: &Path) -> anyhow::Result<(Config, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut config =
        parse_unchecked(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let problems = setup::check(&config);
    anyhow::ensure!(
        problems.is_empty(),
        "{}: {} problem(s):\n  - {}",
        path.display(),
        problems.len(),
        problems.join("\n  - ")
    );
    let files = read_files(&mut config);
    Ok((config, files))
}

pub fn check(config: &mut Config) -> Vec<String> {
    let mut problems = read_files(config);
    problems.extend(setup::check(config));
    problems
}

/// Parses and checks configuration text, reading the files it names; every problem is listed.
pub fn parse(text: &str) -> anyhow::Result<Config> {
    let mut config = parse_unchecked(text)?;
    let problems = check(&mut config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(anyhow::anyhow!(
            "{} problem(s):\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        ))
    }
}

/// What a configuration that runs should still have someone look at (a certificate that
/// expires within 30 days); `check-config` prints them and the gateway logs them at start.
pub fn warnings(c: &Config) -> Vec<String> {
    match &c.sip.tls {
        Some(t) => crate::certs::check_identity(&t.cert, &t.key, &c.sip.host).warnings,
        None => Vec::new(),
    }
}

/// Reads the authorization CSV into the configuration (unless already read) and checks that
/// every file the configuration names is there and holds what it should (certificates and
/// keys: see [`crate::certs`]).
pub fn read_files(c: &mut Config) -> Vec<String> {
    let mut p = Vec::new();
    if let Some(t) = &c.sip.tls {
        for (what, f) in [
            ("cert", Some(&t.cert)),
            ("key", Some(&t.key)),
            ("client_ca", t.client_ca.as_ref()),
        ] {
            if let Some(f) = f
                && !f.exists()
            {
                p.push(format!("sip.tls.{what}: {} does not exist", f.display()));
            }
        }
        if t.cert.exists() && t.key.exists() {
            p.extend(crate::certs::check_identity(&t.cert, &t.key, &c.sip.host).problems);
        }
        if let Some(ca) = t.client_ca.as_ref().filter(|f| f.exists()) {
            p.extend(crate::certs::check_ca("sip.tls.client_ca", ca));
        }
    }
    if c.sip.listen_tls.is_none() {
        for name in c.sip.trusted_peers.iter().filter_map(|t| t.name.as_deref()) {
            p.push(format!(
                "sip.trusted_peer {name:?}: a peer by certificate name needs listen_tls (over TCP only an IP can be checked)"
            ));
        }
    }
    if let Some(t) = &c.observe.session_traces
        && t.dir.exists()
        && !t.dir.is_dir()
    {
        p.push(format!(
            "observe.session_traces.dir: {} is not a directory",
            t.dir.display()
        ));
    }
    if let Some(f) = &c.pbx.tls_ca {
        if f.exists() {
            p.extend(crate::certs::check_ca("pbx.tls_ca", f));
        } else {
            p.push(format!("pbx.tls_ca: {} does not exist", f.display()));
        }
    }
    let auth = &mut c.authorization;
    if let (Some(f), None) = (&auth.file, &auth.file_rows) {
        match std::fs::read_to_string(f)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_csv(&t))
        {
            Ok(rows) => auth.file_rows = Some(rows),
            Err(e) => {
                p.push(format!("authorization.file {}: {e}", f.display()));
                // Reported here, with the reason; a configuration with a problem never runs,
                // and an empty table would refuse everyone if it did.
                auth.file_rows = Some(Vec::new());
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `example-config` documents every option: each field of the configuration (under its
    /// TOML name) appears in the example, set or commented out.
    #[test]
    fn the_example_names_every_option() {
        const SOURCE: &str = include_str!("../core/src/config/mod.rs");
        let mut fields = Vec::new();
        let mut attrs = String::new();
        for line in SOURCE.lines() {
            let t = line.trim();
            if t.starts_with("#[serde(") {
                attrs.push_str(t);
                continue;
            }
            if let Some(rest) = t.strip_prefix("pub ")
                && let Some((name, _)) = rest.split_once(':')
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && !attrs.contains("skip")
            {
                let renamed = attrs
                    .split("rename = \"")
                    .nth(1)
                    .and_then(|r| r.split('"').next());
                fields.push(renamed.unwrap_or(name).to_owned());
            }
            if !t.starts_with("///") {
                attrs.clear();
            }
        }
        assert!(fields.len() > 40, "{} fields found", fields.len());
        for f in fields {
            let named = EXAMPLE.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{f} "))
                    || l.starts_with(&format!("{f}="))
                    || l.contains(&format!(".{f}]"))
                    || l.contains(&format!("[{f}]"))
                    || l.contains(&format!("[[{f}]]"))
                    || l.contains(&format!(".{f}]]"))
            });
            assert!(named, "example-config does not document {f}");
        }
    }

    #[test]
    fn every_problem_at_once() {
        let text = r#"
            [sip]
            listen_tls = "0.0.0.0:5065"
            host = ""
            min_se_s = 30
            [pbx]
            address = "pbx"
            profile = "aes"
            [[numbering.to_pbx]]
            pattern = "("
            replace = ""
            [observe.session_traces]
            dir = "/tmp"
            max_open = 0
        "#;
        let err = parse(text).err().map(|e| e.to_string()).unwrap_or_default();
        for needle in [
            "listen_tls needs [sip.tls]",
            "sip.host is empty",
            "no trusted_peer",
            "below RFC 4028's 90",
            "\"pbx\" is not host:port",
            "needs username and password",
            "numbering.to_pbx #1",
            "session_traces.max_open must be at least 1",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in {err}");
        }
        assert!(err.starts_with("8 problem(s)"), "{err}");
    }

    #[test]
    fn the_authorization_file_is_read_once_into_the_config() {
        let dir = std::env::temp_dir().join(format!("rcc-gw-authz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let csv = dir.join("users.csv");
        std::fs::write(&csv, "sip_uri,line\nsip:alice@contoso.com,tel:+1;ext=100\n").expect("csv");
        let text = format!(
            "[sip]\nlisten_tcp = \"127.0.0.1:5066\"\nhost = \"gw\"\n\
             trusted_peer = [{{ ip = \"127.0.0.1\" }}]\n[pbx]\naddress = \"127.0.0.1:1040\"\n\
             [authorization]\nfile = {:?}\n",
            csv.display().to_string()
        );
        let c = parse(&text).expect("valid");
        assert_eq!(
            c.authorization.file_rows,
            Some(vec![(
                "sip:alice@contoso.com".to_owned(),
                "tel:+1;ext=100".to_owned()
            )])
        );
        std::fs::write(&csv, "broken").expect("csv");
        let err = parse(&text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("line 1: expected `sip_uri,line`"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
