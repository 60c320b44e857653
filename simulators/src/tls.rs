//! TLS material for the lab: a throw-away certificate authority that mints server and client
//! certificates (rcgen), identities loaded from PEM files, and rustls configurations (the PEM
//! loading and the configurations themselves are `rcc_net::tls`).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rcc_net::tls;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

pub use rcc_net::tls::{ClientAuth, roots as roots_from_pem_file};

/// A certificate chain with its private key.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
    /// The leaf certificate in PEM, for writing to disk.
    pub cert_pem: String,
    /// The key in PEM.
    pub key_pem: String,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }
}

impl Identity {
    /// Loads a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> anyhow::Result<Identity> {
        let cert_pem = std::fs::read_to_string(cert)
            .with_context(|| format!("reading certificate {}", cert.display()))?;
        let key_pem = std::fs::read_to_string(key)
            .with_context(|| format!("reading private key {}", key.display()))?;
        Ok(Identity {
            chain: tls::certs_from_pem(cert_pem.as_bytes(), &cert.display().to_string())?,
            key: tls::key_from_pem(key_pem.as_bytes(), &key.display().to_string())?,
            cert_pem,
            key_pem,
        })
    }

    /// Parses a PEM certificate chain and a PEM private key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Identity> {
        Ok(Identity {
            chain: tls::certs_from_pem(cert_pem.as_bytes(), "the PEM input")?,
            key: tls::key_from_pem(key_pem.as_bytes(), "the PEM input")?,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }
}

/// A certificate authority for one lab run.
pub struct LabCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    /// The CA certificate in PEM.
    pub cert_pem: String,
}

impl std::fmt::Debug for LabCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabCa").finish_non_exhaustive()
    }
}

impl LabCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> anyhow::Result<LabCa> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(LabCa {
            cert_pem: cert.pem(),
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA's private key in PEM (to keep the CA across runs; see [`LabCa::from_pem`]).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A CA kept from an earlier run: its certificate and key as [`LabCa::new`] and
    /// [`LabCa::key_pem`] made them, under the same `name`.
    pub fn from_pem(name: &str, cert_pem: &str, key_pem: &str) -> anyhow::Result<LabCa> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::from_pem(key_pem)?;
        let cert = tls::certs_from_pem(cert_pem.as_bytes(), "the lab CA")?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("the lab CA file holds no certificate"))?;
        Ok(LabCa {
            cert_pem: cert_pem.to_owned(),
            cert,
            issuer: Issuer::new(params, key),
        })
    }

    /// A leaf certificate for `names` (DNS names or IP addresses), usable by servers and
    /// clients; the first name is also the common name.
    pub fn issue(&self, names: &[&str]) -> anyhow::Result<Identity> {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone())?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok(Identity {
            chain: vec![cert.der().clone(), self.cert.clone()],
            key: key_der,
            cert_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }

    /// A root store trusting this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        // Our own freshly made CA certificate always parses.
        let _ = roots.add(self.cert.clone());
        roots
    }
}

/// A rustls server configuration presenting `identity`.
pub fn server_config(identity: &Identity, auth: ClientAuth) -> anyhow::Result<Arc<ServerConfig>> {
    Ok(tls::server_config(
        identity.chain.clone(),
        identity.key.clone_key(),
        auth,
    )?)
}

/// A rustls client configuration trusting `roots`, presenting `identity` when given.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<&Identity>,
) -> anyhow::Result<Arc<ClientConfig>> {
    let identity = identity.map(|id| (id.chain.clone(), id.key.clone_key()));
    Ok(tls::client_config(roots, identity)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_issues_loadable_identities() -> anyhow::Result<()> {
        let ca = LabCa::new("rcc-lab test CA")?;
        let id = ca.issue(&["gw.lab.example", "127.0.0.1"])?;
        let again = Identity::from_pem(&id.cert_pem, &id.key_pem)?;
        assert_eq!(again.chain.len(), 2);
        server_config(&again, ClientAuth::Required(ca.roots()))?;
        client_config(ca.roots(), Some(&again))?;
        Ok(())
    }

    #[test]
    fn empty_pem_is_refused_with_a_reason() {
        let err = Identity::from_pem("", "").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("no certificate in the PEM input"));
    }
}
