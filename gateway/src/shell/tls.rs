//! TLS for both legs, from the configuration's files (the loading is `rcc_net::tls`): the SIP
//! listener's server configuration (mutual TLS with the Front End) and the client
//! configurations for the Front End and the PBX link.

use std::path::Path;
use std::sync::Arc;

use rcc_net::tls::{self, ClientAuth, TlsError};
use tokio_rustls::rustls::{ClientConfig, ServerConfig};

use crate::config::{ClientCertMode, SipTlsConfig};

pub use rcc_net::tls::cert_matches;

/// The SIP listener's TLS configuration.
pub fn sip_server(t: &SipTlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let auth = match (t.client_cert, &t.client_ca) {
        (ClientCertMode::None, _) | (_, None) => ClientAuth::None,
        (ClientCertMode::Optional, Some(ca)) => ClientAuth::Optional(tls::roots(ca)?),
        (ClientCertMode::Required, Some(ca)) => ClientAuth::Required(tls::roots(ca)?),
    };
    tls::server_config(tls::certs(&t.cert)?, tls::key(&t.key)?, auth)
}

/// A TLS client configuration trusting `ca`, presenting `identity` (certificate and key files)
/// when given.
pub fn client(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Arc<ClientConfig>, TlsError> {
    let identity = match identity {
        Some((cert, key)) => Some((tls::certs(cert)?, tls::key(key)?)),
        None => None,
    };
    tls::client_config(tls::roots(ca)?, identity)
}

/// When the first certificate in a PEM file stops being valid (Unix seconds).
pub fn not_after(path: &Path) -> anyhow::Result<i64> {
    let certs = tls::certs(path)?;
    let first = certs
        .first()
        .ok_or_else(|| anyhow::anyhow!("{}: no certificate", path.display()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(first.as_ref())
        .map_err(|e| anyhow::anyhow!("{}: certificate does not parse: {e}", path.display()))?;
    Ok(cert.validity().not_after.timestamp())
}
