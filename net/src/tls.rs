//! TLS material from PEM files and the rustls configurations built from it: certificate chains,
//! private keys and trusted roots (read with the PEM reader of `rustls-pki-types`), server
//! configurations with a client-certificate mode, client configurations, and the check that a
//! verified peer certificate names a trusted host.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

/// Why TLS material could not be loaded or a configuration not built. Each names the file, or
/// the PEM text's source, and the reason.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("reading {what} {}: {source}", path.display())]
    Read {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM section is broken.
    #[error("bad PEM in {origin}: {reason}")]
    Pem {
        /// The file or text.
        origin: String,
        /// The PEM reader's reason.
        reason: pem::Error,
    },
    /// The PEM holds no certificate.
    #[error("no certificate in {0}")]
    NoCertificate(String),
    /// The PEM holds no private key.
    #[error("no private key in {0}")]
    NoPrivateKey(String),
    /// A CA certificate could not be used as a trust anchor.
    #[error("CA certificate in {origin}: {reason}")]
    BadRoot {
        /// The file.
        origin: String,
        /// Why rustls refused it.
        reason: rustls::Error,
    },
    /// The client-certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] VerifierBuilderError),
    /// rustls refused the certificate chain or key.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// How a TLS server treats client certificates.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// None asked for.
    None,
    /// Verified against these roots when offered.
    Optional(RootCertStore),
    /// Required and verified against these roots.
    Required(RootCertStore),
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn origin(path: &Path) -> String {
    path.display().to_string()
}

/// Parses a PEM certificate chain (leaf first); `origin` names the text in errors.
pub fn certs_from_pem(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| TlsError::Pem {
            origin: origin.to_owned(),
            reason,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(origin.to_owned()));
    }
    Ok(chain)
}

/// Parses the first PEM private key (PKCS#8, PKCS#1 or SEC1); `origin` names the text in errors.
pub fn key_from_pem(pem: &[u8], origin: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|reason| match reason {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey(origin.to_owned()),
        reason => TlsError::Pem {
            origin: origin.to_owned(),
            reason,
        },
    })
}

/// Loads a PEM certificate chain.
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_from_pem(&read(path, "certificate")?, &origin(path))
}

/// Loads a PEM private key.
pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    key_from_pem(&read(path, "private key")?, &origin(path))
}

/// Loads trusted CA certificates.
pub fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let origin = origin(path);
    let mut store = RootCertStore::empty();
    for cert in certs_from_pem(&read(path, "CA certificates")?, &origin)? {
        store.add(cert).map_err(|reason| TlsError::BadRoot {
            origin: origin.clone(),
            reason,
        })?;
    }
    Ok(store)
}

/// A server configuration presenting `chain` with `key`, treating client certificates per `auth`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder();
    let builder = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional(roots) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()?,
        ),
        ClientAuth::Required(roots) => builder
            .with_client_cert_verifier(WebPkiClientVerifier::builder(Arc::new(roots)).build()?),
    };
    Ok(Arc::new(builder.with_single_cert(chain, key)?))
}

/// A client configuration trusting `roots`, presenting `identity` (chain and key) when given.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Whether a (verified) peer certificate is valid for the DNS name `name`.
pub fn cert_matches(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(server_name) = ServerName::try_from(name) else {
        return false;
    };
    webpki::EndEntityCert::try_from(cert)
        .is_ok_and(|c| c.verify_is_valid_for_subject_name(&server_name).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key for `name`, in PEM.
    fn minted(name: &str) -> Result<(String, String), rcgen::Error> {
        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])?.self_signed(&key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A file in a directory of its own, removed with it.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &str) -> std::io::Result<TempFile> {
            let dir = std::env::temp_dir().join(format!(
                "rcc-net-tls-{}-{name}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(name);
            std::fs::write(&path, contents)?;
            Ok(TempFile(path))
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[test]
    fn loads_a_minted_identity_and_builds_both_configurations()
    -> Result<(), Box<dyn std::error::Error>> {
        let (cert_pem, key_pem) = minted("gw.lab.example")?;
        let cert = TempFile::new("cert.pem", &cert_pem)?;
        let key = TempFile::new("key.pem", &key_pem)?;
        let chain = certs(&cert.0)?;
        assert_eq!(chain.len(), 1);
        let roots = roots(&cert.0)?;
        assert_eq!(roots.len(), 1);
        server_config(
            chain.clone(),
            super::key(&key.0)?,
            ClientAuth::Required(roots.clone()),
        )?;
        client_config(roots, Some((chain.clone(), super::key(&key.0)?)))?;
        assert!(cert_matches(&chain[0], "gw.lab.example"));
        assert!(!cert_matches(&chain[0], "other.lab.example"));
        Ok(())
    }

    #[test]
    fn a_file_without_a_certificate_is_refused_by_name() -> Result<(), Box<dyn std::error::Error>> {
        let (_, key_pem) = minted("gw.lab.example")?;
        let file = TempFile::new("only-key.pem", &key_pem)?;
        let err = certs(&file.0).err().map(|e| e.to_string());
        assert_eq!(err, Some(format!("no certificate in {}", file.0.display())));
        let err = roots(&file.0).err().map(|e| e.to_string());
        assert_eq!(err, Some(format!("no certificate in {}", file.0.display())));
        Ok(())
    }

    #[test]
    fn a_key_path_holding_a_certificate_is_refused_by_name()
    -> Result<(), Box<dyn std::error::Error>> {
        let (cert_pem, _) = minted("gw.lab.example")?;
        let file = TempFile::new("cert-as-key.pem", &cert_pem)?;
        let err = key(&file.0).err().map(|e| e.to_string());
        assert_eq!(err, Some(format!("no private key in {}", file.0.display())));
        Ok(())
    }

    #[test]
    fn garbage_is_refused_with_a_reason() -> Result<(), Box<dyn std::error::Error>> {
        let file = TempFile::new("garbage.pem", "not PEM at all\n\u{1}\u{2}\n")?;
        let err = certs(&file.0).err().map(|e| e.to_string());
        assert_eq!(err, Some(format!("no certificate in {}", file.0.display())));
        let err = key(&file.0).err().map(|e| e.to_string());
        assert_eq!(err, Some(format!("no private key in {}", file.0.display())));
        // A section that starts and never ends, or whose body is not base64.
        let broken = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        assert!(matches!(
            certs_from_pem(broken.as_bytes(), "broken"),
            Err(TlsError::Pem { .. })
        ));
        let bad_body = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = certs_from_pem(bad_body.as_bytes(), "bad body").err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().starts_with("bad PEM in bad body: ")),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn a_missing_file_is_named() {
        let path = Path::new("/nonexistent/rcc-net/cert.pem");
        let err = certs(path).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(
                |e| e.starts_with("reading certificate /nonexistent/rcc-net/cert.pem: ")
            ),
            "{err:?}"
        );
    }
}
