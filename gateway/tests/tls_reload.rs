//! SIGHUP renews the TLS identity without a restart: after the certificate and key files are
//! replaced, new TLS connections get the new certificate and the expiry metric follows; a
//! replacement whose key is not the certificate's is refused and the running one stays.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

mod support;
use support::{Killed, free_port};

const HOST: &str = "gw.lab.example";

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("CA");
    Ca {
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf for HOST valid for `days`: its PEM, its key's PEM, its DER.
fn leaf(ca: &Ca, days: i64) -> (String, String, CertificateDer<'static>) {
    let mut params = CertificateParams::new(vec![HOST.to_owned()]).expect("params");
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("leaf");
    (cert.pem(), key.serialize_pem(), cert.der().clone())
}

/// The certificate a fresh TLS connection is shown (nothing after 2 s).
async fn presented(port: u16, ca: &Ca) -> Option<CertificateDer<'static>> {
    tokio::time::timeout(Duration::from_secs(2), handshake(port, ca))
        .await
        .ok()
        .flatten()
}

async fn handshake(port: u16, ca: &Ca) -> Option<CertificateDer<'static>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der.clone()).ok()?;
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let name = ServerName::try_from(HOST).ok()?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .ok()?;
    tls.get_ref().1.peer_certificates()?.first().cloned()
}

async fn until_presented(port: u16, ca: &Ca, want: &CertificateDer<'static>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if presented(port, ca).await.as_ref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: the gateway did not present the expected certificate within 10 s");
}

fn expiry(http: u16) -> Option<f64> {
    let text = ureq::get(&format!("http://127.0.0.1:{http}/metrics"))
        .call()
        .ok()?
        .body_mut()
        .read_to_string()
        .ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("rcc_gateway_tls_certificate_expiry_seconds ")?
            .parse()
            .ok()
    })
}

fn hup(child: &Child) {
    let ok = Command::new("kill")
        .arg("-HUP")
        .arg(child.id().to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -HUP");
}

#[tokio::test]
async fn sighup_presents_a_renewed_certificate_and_refuses_a_broken_one() {
    let dir = std::env::temp_dir().join(format!("rcc-gw-tls-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert_path, key_path) = (dir.join("gw.crt"), dir.join("gw.key"));
    let ca = ca();
    let (a_pem, a_key, a_der) = leaf(&ca, 200);
    std::fs::write(&cert_path, &a_pem).expect("cert");
    std::fs::write(&key_path, &a_key).expect("key");
    let (tls_port, http) = (free_port(), free_port());
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_tls = \"127.0.0.1:{tls_port}\"\nhost = \"{HOST}\"\ntrusted_peer = [{{ ip = \"127.0.0.1\" }}]\n[sip.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_cert = \"none\"\n[pbx]\naddress = \"127.0.0.1:{}\"\n[observe]\nhttp = \"127.0.0.1:{http}\"\n",
            cert_path.display(),
            key_path.display(),
            free_port()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rcc-gateway"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the gateway starts");
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    let child = Killed(child);
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });

    until_presented(tls_port, &ca, &a_der, "at start").await;
    let before = expiry(http).expect("expiry metric");
    assert!(
        (before - 200.0 * 86_400.0).abs() < 3.0 * 86_400.0,
        "expiry {before}"
    );

    // Renewed: a certificate valid for 400 days.
    let (b_pem, b_key, b_der) = leaf(&ca, 400);
    std::fs::write(&key_path, &b_key).expect("key");
    std::fs::write(&cert_path, &b_pem).expect("cert");
    hup(&child.0);
    until_presented(tls_port, &ca, &b_der, "after SIGHUP").await;
    let after = expiry(http).expect("expiry metric");
    assert!(
        after > before + 150.0 * 86_400.0,
        "expiry {before} -> {after}"
    );

    // A key that is not the certificate's: refused, the running identity stays.
    let (_, other_key, _) = leaf(&ca, 30);
    std::fs::write(&key_path, &other_key).expect("key");
    hup(&child.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused = false;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(l) if l.contains("reload refused") && l.contains("sip.tls.key") => {
                refused = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(refused, "the broken reload was not refused with the reason");
    assert_eq!(
        presented(tls_port, &ca).await.as_ref(),
        Some(&b_der),
        "the running certificate stays"
    );

    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
