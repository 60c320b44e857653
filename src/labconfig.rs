//! `rcc-lab lab-config`: what a gateway in the external position must be configured with for
//! `rcc-lab run --lab lab.toml`, stated exactly: the static route and trusted application as
//! the simulated pool sees them, the certificates (the lab's CA, the pool's certificate and a
//! gateway certificate, generated once beside lab.toml when the file names none), where the
//! CSTA link goes and with which profile, the users' lines and the numbers the scenarios dial
//! and expect back; and a ready `gateway.toml` for rcc-gateway.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::lab::{GATEWAY_FQDN, POOL_FQDN, RCC_DOMAIN, User};
use crate::labfile::{LabFile, Mode};

/// The lab's generated certificates, kept in `rcc-lab-pki/` beside lab.toml so that the
/// gateway configured once keeps trusting the pool run after run.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The folder.
    pub dir: PathBuf,
    /// The lab CA (it issued the two certificates below).
    pub ca: PathBuf,
    /// The simulated pool's certificate (subject `fe.lab.example`) and key.
    pub pool_cert: PathBuf,
    /// See `pool_cert`.
    pub pool_key: PathBuf,
    /// A certificate for the gateway's FQDN and its key, for a gateway that takes the lab's.
    pub gateway_cert: PathBuf,
    /// See `gateway_cert`.
    pub gateway_key: PathBuf,
}

impl Pki {
    /// The folder used for a lab file (absolute, so that a gateway started elsewhere finds the
    /// files the printed gateway.toml names).
    pub fn dir_for(lab_file: &Path) -> PathBuf {
        let parent = lab_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        std::path::absolute(parent)
            .unwrap_or_else(|_| parent.to_path_buf())
            .join("rcc-lab-pki")
    }

    /// The certificates in `dir`: the CA is made once and kept (its key too, readable by the
    /// owner only), the pool's certificate once, the gateway's again when its name changes.
    pub fn ensure(dir: &Path, gateway_fqdn: &str) -> anyhow::Result<Pki> {
        let pki = Pki {
            dir: dir.to_owned(),
            ca: dir.join("ca.pem"),
            pool_cert: dir.join("pool.crt"),
            pool_key: dir.join("pool.key"),
            gateway_cert: dir.join("gateway.crt"),
            gateway_key: dir.join("gateway.key"),
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca_key = dir.join("ca.key");
        let ca = match (
            std::fs::read_to_string(&pki.ca),
            std::fs::read_to_string(&ca_key),
        ) {
            (Ok(cert), Ok(key)) => rcc_simulators::tls::LabCa::from_pem(CA_NAME, &cert, &key)
                .with_context(|| format!("the lab CA in {}", dir.display()))?,
            _ => {
                let ca = rcc_simulators::tls::LabCa::new(CA_NAME)?;
                write(&pki.ca, &ca.cert_pem, false)?;
                write(&ca_key, &ca.key_pem(), true)?;
                // Certificates of an earlier CA are of no use now.
                let _ = std::fs::remove_file(&pki.pool_cert);
                let _ = std::fs::remove_file(&pki.gateway_cert);
                ca
            }
        };
        if !pki.pool_cert.is_file() || !pki.pool_key.is_file() {
            let pool = ca.issue(&[POOL_FQDN])?;
            write(&pki.pool_cert, &pool.cert_pem, false)?;
            write(&pki.pool_key, &pool.key_pem, true)?;
        }
        let name_file = dir.join("gateway.name");
        let made_for = std::fs::read_to_string(&name_file).unwrap_or_default();
        if made_for.trim() != gateway_fqdn
            || !pki.gateway_cert.is_file()
            || !pki.gateway_key.is_file()
        {
            let gateway = ca.issue(&[gateway_fqdn])?;
            write(&pki.gateway_cert, &gateway.cert_pem, false)?;
            write(&pki.gateway_key, &gateway.key_pem, true)?;
            write(&name_file, gateway_fqdn, false)?;
        }
        Ok(pki)
    }
}

const CA_NAME: &str = "rcc-lab CA";

/// Writes a file; a private key readable by its owner only.
fn write(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The address this host uses toward `peer`: where the gateway sees the pool's connections
/// come from and can reach the PBX simulator (loopback for a gateway on this host).
/// None when this host has no route to it.
fn address_toward(peer: SocketAddr) -> Option<std::net::IpAddr> {
    if peer.ip().is_loopback() {
        return Some(peer.ip());
    }
    std::net::UdpSocket::bind(if peer.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .and_then(|s| s.connect(peer).and_then(|()| s.local_addr()))
    .ok()
    .map(|a| a.ip())
}

/// This host's address for the texts: the one found, or what to put there.
fn host_text(host: Option<std::net::IpAddr>) -> String {
    host.map_or_else(
        || {
            "THIS-HOST (no route from here to the gateway: its address as the gateway sees it)"
                .to_owned()
        },
        |ip| ip.to_string(),
    )
}

/// A path as a TOML string (quoted and escaped).
pub fn quoted(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

/// What the external gateway must be set up with.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Its SIP address.
    pub address: SocketAddr,
    /// Mutual TLS (else TCP).
    pub tls: bool,
    /// Its FQDN (TLS) or IP (TCP): the static route's destination.
    pub destination: String,
    /// Where it must open its CSTA link: this host's address (or what to put there) and port.
    pub pbx_connect: String,
    /// The PBX profile it must be configured for.
    pub profile: &'static str,
    /// The ECMA-354 login the simulated PBX demands (aes).
    pub pbx_login: Option<(&'static str, &'static str)>,
    /// The lab's users.
    pub users: Vec<User>,
    /// PBX devices without a Lync user (desk phones only).
    pub desk_phones: Vec<String>,
    /// The certificates (TLS).
    pub pki: Option<Pki>,
    /// The gateway's CA as the lab trusts it (lab.toml `gateway.ca`, or the lab CA).
    pub gateway_ca: Option<PathBuf>,
    /// The pool's certificate as the gateway must accept it.
    pub pool_cert: Option<PathBuf>,
    /// The gateway takes the lab's certificate (lab.toml names no `ca` of its own).
    pub lab_gateway_cert: bool,
    /// The pool presents the lab's certificate (lab.toml names no `pool_cert`).
    pub lab_pool_cert: bool,
    /// This host's address as the gateway sees it (None: no route to the gateway from here).
    pub lab_host: Option<std::net::IpAddr>,
    /// The LineServerURI every lab user has.
    pub line_server_uri: String,
    /// The customer's routing the pool plays (lab.toml `[lync]`), if any.
    pub real_topology: Option<crate::lab::RealTopology>,
}

/// The lab's desk phones without a Lync user, and the outside numbers the scenarios use.
/// (A test keeps this list in step with the numbers the feature files use.)
pub const OUTSIDE_NUMBERS: &[&str] = &["+14255550200", "+15550001", "+15550002", "+15550003"];

impl LabConfig {
    /// Reads what `file` (loaded from `path`) says about the external gateway; generates the
    /// certificates it needs.
    pub fn prepare(file: &LabFile, path: &Path) -> anyhow::Result<LabConfig> {
        let g = file
            .gateway
            .as_ref()
            .filter(|g| g.mode == Mode::External)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: lab-config describes an external gateway; [gateway] mode = \"external\" is missing",
                    path.display()
                )
            })?;
        let (Some(address), Some(pbx_listen)) = (g.address, g.pbx_listen) else {
            anyhow::bail!(
                "{}: gateway.address and gateway.pbx_listen are needed",
                path.display()
            );
        };
        let options = file.options()?;
        let tls = g.tls();
        let fqdn = g.fqdn.clone().unwrap_or_else(|| GATEWAY_FQDN.to_owned());
        let pki = if tls {
            Some(Pki::ensure(&Pki::dir_for(path), &fqdn)?)
        } else {
            None
        };
        let lab_host = address_toward(address);
        let pbx_connect = if pbx_listen.ip().is_unspecified() {
            match lab_host {
                Some(ip) => SocketAddr::from((ip, pbx_listen.port())).to_string(),
                None => format!("THIS-HOST:{}", pbx_listen.port()),
            }
        } else {
            pbx_listen.to_string()
        };
        let profile = crate::labfile::profile_name(options.pbx_profile);
        Ok(LabConfig {
            address,
            tls,
            destination: if tls { fqdn } else { address.ip().to_string() },
            pbx_connect,
            profile,
            pbx_login: (profile == "aes").then_some(("cti", "lab")),
            users: options.users.clone(),
            line_server_uri: options.line_server_uri()?,
            real_topology: options.real_topology.clone(),
            desk_phones: options.extra_devices.clone(),
            gateway_ca: g.ca.clone().or_else(|| pki.as_ref().map(|p| p.ca.clone())),
            lab_gateway_cert: g.ca.is_none(),
            lab_pool_cert: g.pool_cert.is_none(),
            lab_host,
            pool_cert: g
                .pool_cert
                .clone()
                .or_else(|| pki.as_ref().map(|p| p.pool_cert.clone())),
            pki,
        })
    }

    /// The statement for the lab admin, then the ready gateway.toml.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let transport = if self.tls { "TLS" } else { "TCP" };
        let _ = writeln!(
            t,
            "# What the gateway under test must be configured with for `rcc-lab run --lab`.\n"
        );
        let _ = writeln!(t, "## Lync side (the simulated Front End pool {POOL_FQDN})");
        match &self.real_topology {
            Some(real) => {
                for r in real.exports.routes_for_pool(&real.registrar) {
                    let _ = writeln!(
                        t,
                        "static route (exported, {}): MatchUri {} -> {}:{} over {}, which the lab sends to {}",
                        r.collection,
                        r.match_uri,
                        r.destination,
                        r.port,
                        if r.tls { "TLS" } else { "TCP" },
                        self.address
                    );
                }
                for a in &real.exports.apps {
                    let _ = writeln!(
                        t,
                        "trusted application (exported): {} port {}{}",
                        a.pool_fqdn,
                        a.port,
                        if a.tcp { ", TCP" } else { "" }
                    );
                }
            }
            None => {
                let _ = writeln!(
                    t,
                    "static route: MatchUri {RCC_DOMAIN} -> {}:{} over {transport}{}",
                    self.destination,
                    self.address.port(),
                    if self.tls {
                        " (UseDefaultCertificate)"
                    } else {
                        ""
                    }
                );
                let _ = writeln!(
                    t,
                    "trusted application pool: {} port {}{}, TreatAsAuthenticated",
                    self.destination,
                    self.address.port(),
                    if self.tls {
                        String::new()
                    } else {
                        format!(", TCP with IP {} pinned", self.address.ip())
                    }
                );
            }
        }
        let _ = writeln!(
            t,
            "the pool connects from {} (this host), one long-lived {transport} connection per scenario",
            host_text(self.lab_host)
        );
        if self.tls {
            let _ = writeln!(
                t,
                "the pool presents certificate {} (subject {POOL_FQDN}); trust its CA {} for client certificates and {POOL_FQDN} as a peer",
                show(self.pool_cert.as_deref()),
                show(self.pki.as_ref().map(|p| p.ca.as_path()))
            );
            let issued = match (&self.pki, self.lab_gateway_cert) {
                (Some(p), true) => format!(
                    " (the lab issued one: {} with key {})",
                    p.gateway_cert.display(),
                    p.gateway_key.display()
                ),
                _ => String::new(),
            };
            // A real topology's pool checks the names its own routes and trusted applications
            // give the gateway.
            let names = match &self.real_topology {
                Some(real) => real
                    .gateway_names()
                    .into_iter()
                    .filter(|n| n.parse::<std::net::IpAddr>().is_err())
                    .collect::<Vec<_>>()
                    .join(", "),
                None => self.destination.clone(),
            };
            let issued = match (&self.real_topology, issued.is_empty()) {
                (Some(_), false) => format!(
                    "{issued}; that one names only {}, so issue one that names these",
                    self.destination
                ),
                _ => issued,
            };
            let _ = writeln!(
                t,
                "the gateway's certificate must name {names} and come from {}{issued}",
                show(self.gateway_ca.as_deref()),
            );
        }
        let _ = writeln!(t, "\n## PBX side (the simulated PBX)");
        let _ = writeln!(
            t,
            "CSTA link: TCP to {} (the PBX simulator on this host), ECMA-323 XML with Annex J framing, profile {}{}",
            self.pbx_connect,
            self.profile,
            match self.pbx_login {
                Some((u, p)) => format!(", ECMA-354 login {u} / {p}"),
                None => String::new(),
            }
        );
        let _ = writeln!(
            t,
            "\n## Users (LineServerURI {} for all)",
            self.line_server_uri
        );
        let _ = writeln!(
            t,
            "{:<8} {:<24} {:<28} {:<10} E.164",
            "user", "SIP URI", "LineURI", "extension"
        );
        for u in &self.users {
            let _ = writeln!(
                t,
                "{:<8} {:<24} {:<28} {:<10} {}",
                u.name,
                u.uri(),
                u.line(),
                u.extension,
                u.e164()
            );
        }
        for d in &self.desk_phones {
            let _ = writeln!(
                t,
                "{:<8} {:<24} {:<28} {:<10} +1425555{d}",
                "(desk)", "-", "-", d
            );
        }
        let _ = writeln!(t, "\n## Numbering the scenarios expect");
        let _ = writeln!(
            t,
            "clients dial tel:+1425555NNNN for extension NNNN; the gateway hands the PBX NNNN and shows PBX numbers NNNN to clients as +1425555NNNN"
        );
        let _ = writeln!(
            t,
            "outside numbers the PBX simulator knows (dialled and calling in): {}",
            OUTSIDE_NUMBERS.join(", ")
        );
        let _ = writeln!(
            t,
            "LineURIs are echoed verbatim in every response and event (deviceID as the client wrote it)"
        );
        let _ = writeln!(t, "\n## gateway.toml for rcc-gateway in this position\n");
        t.push_str(&self.gateway_toml());
        t
    }

    /// A ready configuration for rcc-gateway in the external position. Where lab.toml names a
    /// certificate of its own, the gateway.toml says what to put there instead of a path.
    pub fn gateway_toml(&self) -> String {
        let mut t = String::from("[sip]\n");
        if self.tls {
            let _ = writeln!(t, "listen_tls = \"{}\"", self.address);
        } else {
            let _ = writeln!(t, "listen_tcp = \"{}\"", self.address);
        }
        let _ = writeln!(t, "host = \"{}\"", self.destination);
        t.push_str("session_expires_s = 90   # RFC 4028's minimum: the real-time expiry scenario ends in a minute\n");
        if self.tls {
            let _ = writeln!(t, "trusted_peer = [{{ name = \"{POOL_FQDN}\" }}]");
        } else {
            let _ = writeln!(
                t,
                "trusted_peer = [{{ ip = \"{}\" }}]   # the lab host",
                host_text(self.lab_host)
            );
        }
        if let (true, Some(p)) = (self.tls, &self.pki) {
            t.push_str("[sip.tls]\n");
            if self.lab_gateway_cert {
                let _ = writeln!(t, "cert = {}", quoted(&p.gateway_cert));
                let _ = writeln!(t, "key = {}", quoted(&p.gateway_key));
            } else {
                let _ = writeln!(
                    t,
                    "# cert and key: the gateway's own certificate for {}, issued by {}",
                    self.destination,
                    show(self.gateway_ca.as_deref())
                );
            }
            if self.lab_pool_cert {
                let _ = writeln!(t, "client_ca = {}", quoted(&p.ca));
            } else {
                let _ = writeln!(
                    t,
                    "# client_ca: the CA that issued {}",
                    show(self.pool_cert.as_deref())
                );
            }
            t.push_str("client_cert = \"required\"\n");
        }
        let _ = writeln!(
            t,
            "[pbx]\naddress = \"{}\"\nprofile = \"{}\"\nreconnect_min_ms = 100\nreconnect_max_ms = 1000",
            self.pbx_connect, self.profile
        );
        if let Some((u, p)) = self.pbx_login {
            let _ = writeln!(t, "username = \"{u}\"\npassword = \"{p}\"");
        }
        t.push_str(rcc_simulators::lync::LAB_NUMBERING);
        t
    }
}

fn show(p: Option<&Path>) -> String {
    p.map_or_else(|| "(not set)".to_owned(), |p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(dir: &Path, body: &str) -> (LabFile, PathBuf) {
        std::fs::create_dir_all(dir).expect("dir");
        let path = dir.join("lab.toml");
        std::fs::write(&path, body).expect("write lab.toml");
        (LabFile::load(&path).expect("lab.toml"), path)
    }

    #[test]
    fn tls_generates_the_certificates_once_and_the_gateway_toml_checks() {
        let dir = std::env::temp_dir().join(format!("rcc-labconfig-{}", std::process::id()));
        let (file, path) = lab(
            &dir,
            "[gateway]\nmode = \"external\"\naddress = \"127.0.0.1:5065\"\nfqdn = \"gw.lab.example\"\npbx_listen = \"0.0.0.0:1040\"\n",
        );
        let plan = LabConfig::prepare(&file, &path).expect("plan");
        let pki = plan.pki.clone().expect("pki");
        let first = std::fs::read_to_string(&pki.ca).expect("ca");
        let again = LabConfig::prepare(&file, &path).expect("plan");
        assert_eq!(
            std::fs::read_to_string(&again.pki.expect("pki").ca).expect("ca"),
            first,
            "the CA is kept between runs"
        );
        let text = plan.text();
        assert!(
            text.contains("MatchUri rcc.lab.example -> gw.lab.example:5065 over TLS"),
            "{text}"
        );
        assert!(text.contains("TCP to 127.0.0.1:1040"), "{text}");
        assert!(text.contains("tel:+14255551002;ext=1002"), "{text}");
        let mut config = rcc_gateway::config::parse_unchecked(&plan.gateway_toml()).expect("toml");
        let problems = rcc_gateway::config::check(&mut config);
        assert!(problems.is_empty(), "{problems:?}\n{}", plan.gateway_toml());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_real_topology_states_the_exported_routes_and_line_server() {
        let dir = std::env::temp_dir().join(format!("rcc-labconfig-real-{}", std::process::id()));
        let exports = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("gateway/tests/fixtures/lync-exports");
        let (file, path) = lab(
            &dir,
            &format!(
                "[gateway]\nmode = \"external\"\naddress = \"127.0.0.1:5065\"\nfqdn = \"gw.lab.example\"\npbx_listen = \"0.0.0.0:1040\"\n[lync]\nexports = {}\n",
                quoted(&exports)
            ),
        );
        let text = LabConfig::prepare(&file, &path).expect("plan").text();
        assert!(
            text.contains("static route (exported, Global): MatchUri rcc.contoso.com -> rccgw.contoso.com:5065 over TLS, which the lab sends to 127.0.0.1:5065"),
            "{text}"
        );
        assert!(
            text.contains("LineServerURI sip:rccgateway@rcc.contoso.com for all"),
            "{text}"
        );
        assert!(
            text.contains("the gateway's certificate must name rccgw.contoso.com, rccgw01.contoso.com and come from"),
            "{text}"
        );
        assert!(
            text.contains("that one names only gw.lab.example, so issue one that names these"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_number_the_features_use_is_stated() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("features");
        let users = crate::lab::LabOptions::default().users;
        let re = regex::Regex::new(r"\+\d{6,}").expect("regex");
        for f in crate::selection::feature_files(&dir).expect("features") {
            let text = std::fs::read_to_string(&f).expect("feature file");
            for m in re.find_iter(&text) {
                let n = m.as_str();
                assert!(
                    OUTSIDE_NUMBERS.contains(&n) || users.iter().any(|u| u.e164() == n),
                    "{}: {n} is not among the numbers lab-config states",
                    f.display()
                );
            }
        }
    }

    #[test]
    fn the_ca_is_kept_when_the_gateway_name_changes_and_keys_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        use tokio_rustls::rustls::client::danger::ServerCertVerifier as _;
        let dir = std::env::temp_dir().join(format!("rcc-labconfig-pki-{}", std::process::id()));
        let first = Pki::ensure(&dir, "gw1.lab.example").expect("pki");
        let ca = std::fs::read_to_string(&first.ca).expect("ca");
        let gw1 = std::fs::read_to_string(&first.gateway_cert).expect("cert");
        let second = Pki::ensure(&dir, "gw2.lab.example").expect("pki");
        assert_eq!(
            std::fs::read_to_string(&second.ca).expect("ca"),
            ca,
            "same CA"
        );
        assert_ne!(
            std::fs::read_to_string(&second.gateway_cert).expect("cert"),
            gw1
        );
        for key in [
            dir.join("ca.key"),
            second.pool_key.clone(),
            second.gateway_key.clone(),
        ] {
            let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
        // The new gateway certificate chains to the kept CA.
        let roots = rcc_simulators::tls::roots_from_pem_file(&second.ca).expect("roots");
        let leaf = rcc_simulators::tls::Identity::from_pem_files(
            &second.gateway_cert,
            &second.gateway_key,
        )
        .expect("identity");
        let verifier =
            tokio_rustls::rustls::client::WebPkiServerVerifier::builder(std::sync::Arc::new(roots))
                .build()
                .expect("verifier");
        let name =
            tokio_rustls::rustls::pki_types::ServerName::try_from("gw2.lab.example").expect("name");
        verifier
            .verify_server_cert(
                &leaf.chain[0],
                &[],
                &name,
                &[],
                tokio_rustls::rustls::pki_types::UnixTime::now(),
            )
            .expect("the gateway certificate verifies against the kept CA");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_gateway_with_its_own_certificate_gets_no_lab_certificate_paths() {
        let dir = std::env::temp_dir().join(format!("rcc-labconfig-vendor-{}", std::process::id()));
        let (file, path) = lab(
            &dir,
            "[gateway]\nmode = \"external\"\naddress = \"127.0.0.1:5065\"\nfqdn = \"rccgw01.contoso.com\"\nca = \"vendor-ca.pem\"\npbx_listen = \"0.0.0.0:1040\"\n",
        );
        let plan = LabConfig::prepare(&file, &path).expect("plan");
        let toml = plan.gateway_toml();
        assert!(toml.contains("# cert and key: the gateway's own certificate for rccgw01.contoso.com, issued by vendor-ca.pem"), "{toml}");
        assert!(!toml.contains("gateway.crt"), "{toml}");
        assert!(
            toml.contains("client_ca = \""),
            "the pool's certificate is still the lab's: {toml}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_aes_lab_states_the_login_and_needs_an_external_gateway() {
        let dir = std::env::temp_dir().join(format!("rcc-labconfig-aes-{}", std::process::id()));
        let (file, path) = lab(
            &dir,
            "[gateway]\nmode = \"external\"\naddress = \"127.0.0.1:5066\"\ntransport = \"tcp\"\npbx_listen = \"127.0.0.1:1041\"\n[pbx]\nmode = \"simulator\"\nprofile = \"aes\"\n",
        );
        let plan = LabConfig::prepare(&file, &path).expect("plan");
        assert!(plan.text().contains("ECMA-354 login cti / lab"));
        assert!(plan.gateway_toml().contains("username = \"cti\""));
        assert!(plan.pki.is_none(), "TCP needs no certificates");
        let (inproc, path) = lab(&dir, "");
        let err = LabConfig::prepare(&inproc, &path).expect_err("no external gateway");
        assert!(err.to_string().contains("mode = \"external\""), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
