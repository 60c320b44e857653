//! TLS for both legs: the SIP listener's server configuration (mutual TLS with the Front End),
//! the PBX link's client configuration, and the peer-name check for trusted peers.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::{ClientCertMode, SipTlsConfig};

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))
}

/// Loads a PEM certificate chain.
pub fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read(path, "certificate")?;
    let chain = rustls_pemfile::certs(&mut BufReader::new(pem.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("certificate PEM in {}", path.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("no certificate in {}", path.display()));
    }
    Ok(chain)
}

/// Loads a PEM private key.
pub fn key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = read(path, "private key")?;
    rustls_pemfile::private_key(&mut BufReader::new(pem.as_bytes()))
        .with_context(|| format!("private key PEM in {}", path.display()))?
        .ok_or_else(|| anyhow!("no private key in {}", path.display()))
}

/// Loads trusted CA certificates.
pub fn roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for c in certs(path)? {
        store
            .add(c)
            .with_context(|| format!("CA certificate in {}", path.display()))?;
    }
    Ok(store)
}

/// The SIP listener's TLS configuration.
pub fn sip_server(t: &SipTlsConfig) -> anyhow::Result<Arc<ServerConfig>> {
    let builder = ServerConfig::builder();
    let builder = match (t.client_cert, &t.client_ca) {
        (ClientCertMode::None, _) | (_, None) => builder.with_no_client_auth(),
        (ClientCertMode::Optional, Some(ca)) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder(Arc::new(roots(ca)?))
                .allow_unauthenticated()
                .build()?,
        ),
        (ClientCertMode::Required, Some(ca)) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder(Arc::new(roots(ca)?)).build()?,
        ),
    };
    Ok(Arc::new(
        builder.with_single_cert(certs(&t.cert)?, key(&t.key)?)?,
    ))
}

/// A TLS client configuration trusting `ca`, presenting `identity` when given.
pub fn client(ca: &Path, identity: Option<(&Path, &Path)>) -> anyhow::Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder().with_root_certificates(roots(ca)?);
    let config = match identity {
        Some((cert, k)) => builder.with_client_auth_cert(certs(cert)?, key(k)?)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Whether a (verified) peer certificate is valid for the DNS name `name`.
pub fn cert_matches(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(server_name) = ServerName::try_from(name.to_owned()) else {
        return false;
    };
    webpki::EndEntityCert::try_from(cert)
        .is_ok_and(|c| c.verify_is_valid_for_subject_name(&server_name).is_ok())
}
