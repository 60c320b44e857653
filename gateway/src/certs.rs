//! What `check-config` (and every start and reload) checks in the TLS files before the gateway
//! relies on them: the certificate file holds a certificate, the key file a key, the key is the
//! certificate's, the certificate names the gateway's host and is valid now (a warning under
//! 30 days left), and the CA files parse. Each problem names the option, the file and the
//! reason.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rcc_net::tls;

/// Days of validity left under which a certificate is warned about.
pub const WARN_DAYS: i64 = 30;

/// Problems (the configuration must not run) and warnings (it may, but someone should act).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Findings {
    /// Refuse the configuration.
    pub problems: Vec<String>,
    /// Log and go on.
    pub warnings: Vec<String>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Checks the SIP listener's certificate `cert` and key `key` for `host`.
pub fn check_identity(cert: &Path, key: &Path, host: &str) -> Findings {
    let mut f = Findings::default();
    let chain = match tls::certs(cert) {
        Ok(c) => c,
        Err(e) => {
            f.problems.push(format!("sip.tls.cert: {e}"));
            Vec::new()
        }
    };
    let private = match tls::key(key) {
        Ok(k) => Some(k),
        Err(e) => {
            f.problems.push(format!("sip.tls.key: {e}"));
            None
        }
    };
    let Some(leaf) = chain.first() else {
        return f;
    };
    // The same server configuration the listener builds: it refuses a key that is not the
    // certificate's.
    if let Some(k) = private
        && let Err(e) = tls::server_config(chain.clone(), k, tls::ClientAuth::None)
    {
        f.problems.push(format!(
            "sip.tls.key: {} is not the key of the certificate in {}: {e}",
            key.display(),
            cert.display()
        ));
    }
    if !tls::cert_matches(leaf, host) {
        f.problems.push(format!(
            "sip.tls.cert: {} does not name sip.host {host:?} (subject alternative names): the Front End checks it against the trusted application pool FQDN",
            cert.display()
        ));
    }
    match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok((_, c)) => {
            let (from, until) = (
                c.validity().not_before.timestamp(),
                c.validity().not_after.timestamp(),
            );
            let now = now();
            if until <= now {
                f.problems.push(format!(
                    "sip.tls.cert: {} expired on {}",
                    cert.display(),
                    c.validity().not_after
                ));
            } else if from > now {
                f.problems.push(format!(
                    "sip.tls.cert: {} is not valid before {}",
                    cert.display(),
                    c.validity().not_before
                ));
            } else if until - now < WARN_DAYS * 86_400 {
                f.warnings.push(format!(
                    "sip.tls.cert: {} expires in {} days ({})",
                    cert.display(),
                    (until - now) / 86_400,
                    c.validity().not_after
                ));
            }
        }
        Err(e) => f.problems.push(format!(
            "sip.tls.cert: {}: the certificate does not parse: {e}",
            cert.display()
        )),
    }
    f
}

/// Checks that a CA file (`what` is the option's name) holds at least one usable certificate.
pub fn check_ca(what: &str, path: &Path) -> Option<String> {
    tls::roots(path).err().map(|e| format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn each_bad_case_is_a_problem_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("rcc-certs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let good =
            rcgen::generate_simple_self_signed(vec!["gw.lab.example".to_owned()]).expect("cert");
        let other =
            rcgen::generate_simple_self_signed(vec!["other.example".to_owned()]).expect("cert");
        let cert = write(&dir, "gw.crt", &good.cert.pem());
        let key = write(&dir, "gw.key", &good.signing_key.serialize_pem());
        let other_key = write(&dir, "other.key", &other.signing_key.serialize_pem());
        let other_cert = write(&dir, "other.crt", &other.cert.pem());
        let empty = write(&dir, "empty.pem", "no PEM here\n");

        assert_eq!(
            check_identity(&cert, &key, "gw.lab.example"),
            Findings::default()
        );

        let f = check_identity(&empty, &key, "gw.lab.example");
        assert!(
            f.problems
                .iter()
                .any(|p| p.contains("sip.tls.cert") && p.contains("empty.pem")),
            "{f:?}"
        );
        let f = check_identity(&cert, &cert, "gw.lab.example");
        assert!(
            f.problems
                .iter()
                .any(|p| p.contains("sip.tls.key") && p.contains("gw.crt")),
            "{f:?}"
        );
        let f = check_identity(&cert, &other_key, "gw.lab.example");
        assert!(
            f.problems
                .iter()
                .any(|p| p.contains("is not the key of the certificate")),
            "{f:?}"
        );
        let f = check_identity(&other_cert, &other_key, "gw.lab.example");
        assert!(
            f.problems
                .iter()
                .any(|p| p.contains("does not name sip.host")),
            "{f:?}"
        );

        let mut params =
            rcgen::CertificateParams::new(vec!["gw.lab.example".to_owned()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let k = rcgen::KeyPair::generate().expect("key");
        let expired = params.self_signed(&k).expect("cert");
        let old_cert = write(&dir, "old.crt", &expired.pem());
        let old_key = write(&dir, "old.key", &k.serialize_pem());
        let f = check_identity(&old_cert, &old_key, "gw.lab.example");
        assert!(f.problems.iter().any(|p| p.contains("expired")), "{f:?}");

        let mut params =
            rcgen::CertificateParams::new(vec!["gw.lab.example".to_owned()]).expect("params");
        let soon = time::OffsetDateTime::now_utc() + time::Duration::days(10);
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = soon;
        let k = rcgen::KeyPair::generate().expect("key");
        let c = params.self_signed(&k).expect("cert");
        let soon_cert = write(&dir, "soon.crt", &c.pem());
        let soon_key = write(&dir, "soon.key", &k.serialize_pem());
        let f = check_identity(&soon_cert, &soon_key, "gw.lab.example");
        assert!(f.problems.is_empty(), "{f:?}");
        assert!(
            f.warnings
                .iter()
                .any(|w| w.contains("expires in 9 days") || w.contains("expires in 10 days")),
            "{f:?}"
        );

        assert!(
            check_ca("sip.tls.client_ca", &empty).is_some_and(|p| p.contains("sip.tls.client_ca"))
        );
        assert_eq!(check_ca("sip.tls.client_ca", &cert), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
