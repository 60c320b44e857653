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
    /// The folder used for a lab file.
    pub fn dir_for(lab_file: &Path) -> PathBuf {
        lab_file
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            .join("rcc-lab-pki")
    }

    /// The certificates in `dir`, generated when absent or when they were made for another
    /// gateway name.
    pub fn ensure(dir: &Path, gateway_fqdn: &str) -> anyhow::Result<Pki> {
        let pki = Pki {
            dir: dir.to_owned(),
            ca: dir.join("ca.pem"),
            pool_cert: dir.join("pool.crt"),
            pool_key: dir.join("pool.key"),
            gateway_cert: dir.join("gateway.crt"),
            gateway_key: dir.join("gateway.key"),
        };
        let name_file = dir.join("gateway.name");
        let made_for = std::fs::read_to_string(&name_file).ok();
        let complete = [
            &pki.ca,
            &pki.pool_cert,
            &pki.pool_key,
            &pki.gateway_cert,
            &pki.gateway_key,
        ]
        .iter()
        .all(|p| p.is_file());
        if complete && made_for.as_deref().map(str::trim) == Some(gateway_fqdn) {
            return Ok(pki);
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca = rcc_simulators::tls::LabCa::new("rcc-lab CA")?;
        let pool = ca.issue(&[POOL_FQDN])?;
        let gateway = ca.issue(&[gateway_fqdn])?;
        for (path, text) in [
            (&pki.ca, ca.cert_pem.as_str()),
            (&pki.pool_cert, pool.cert_pem.as_str()),
            (&pki.pool_key, pool.key_pem.as_str()),
            (&pki.gateway_cert, gateway.cert_pem.as_str()),
            (&pki.gateway_key, gateway.key_pem.as_str()),
            (&name_file, gateway_fqdn),
        ] {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(pki)
    }
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
    /// Where it must open its CSTA link.
    pub pbx_connect: SocketAddr,
    /// The PBX profile it must be configured for.
    pub profile: &'static str,
    /// The ECMA-354 login the simulated PBX demands (aes).
    pub pbx_login: Option<(&'static str, &'static str)>,
    /// The lab's users.
    pub users: Vec<User>,
    /// The certificates (TLS).
    pub pki: Option<Pki>,
    /// The gateway's CA as the lab trusts it (lab.toml `gateway.ca`, or the lab CA).
    pub gateway_ca: Option<PathBuf>,
    /// The pool's certificate as the gateway must accept it.
    pub pool_cert: Option<PathBuf>,
}

/// The lab's desk phones without a Lync user, and the outside numbers the scenarios use.
const DESK_PHONE: &str = "1009";
const OUTSIDE_NUMBERS: &[&str] = &["+14255550200", "+15550001", "+15550002", "+15550003"];

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
        let tls = g.transport.as_deref().unwrap_or("tls") == "tls";
        let fqdn = g.fqdn.clone().unwrap_or_else(|| GATEWAY_FQDN.to_owned());
        let pki = if tls {
            Some(Pki::ensure(&Pki::dir_for(path), &fqdn)?)
        } else {
            None
        };
        let pbx_connect = if pbx_listen.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], pbx_listen.port()))
        } else {
            pbx_listen
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
            gateway_ca: g.ca.clone().or_else(|| pki.as_ref().map(|p| p.ca.clone())),
            pool_cert: g
                .pool_cert
                .clone()
                .or_else(|| pki.as_ref().map(|p| p.pool_cert.clone())),
            pki,
        })
    }

    /// The LineServerURI every lab user has.
    pub fn line_server_uri() -> String {
        format!("sip:rccgateway@{RCC_DOMAIN}")
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
        let _ = writeln!(
            t,
            "static route: MatchUri {RCC_DOMAIN} -> {}:{} over {transport} (UseDefaultCertificate)",
            self.destination,
            self.address.port()
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
        let _ = writeln!(
            t,
            "requests reach the gateway from this host's address, in one long-lived {transport} connection per scenario"
        );
        if self.tls {
            let _ = writeln!(
                t,
                "the pool presents certificate {} (subject {POOL_FQDN}); trust its CA {} for client certificates and {POOL_FQDN} as a peer",
                show(self.pool_cert.as_deref()),
                show(self.pki.as_ref().map(|p| p.ca.as_path()))
            );
            let _ = writeln!(
                t,
                "the gateway's certificate must name {} and come from {}{}",
                self.destination,
                show(self.gateway_ca.as_deref()),
                match &self.pki {
                    Some(p) => format!(
                        " (the lab issued one: {} with key {})",
                        p.gateway_cert.display(),
                        p.gateway_key.display()
                    ),
                    None => String::new(),
                }
            );
        }
        let _ = writeln!(t, "\n## PBX side (the simulated PBX)");
        let _ = writeln!(
            t,
            "CSTA link: TCP to {} (this host), ECMA-323 XML with Annex J framing, profile {}{}",
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
            Self::line_server_uri()
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
        let _ = writeln!(
            t,
            "{:<8} {:<24} {:<28} {:<10} +1425555{DESK_PHONE}",
            "(desk)", "-", "-", DESK_PHONE
        );
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

    /// A ready configuration for rcc-gateway in the external position.
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
            t.push_str("trusted_peer = [{ ip = \"127.0.0.1\" }]   # the lab host's address\n");
        }
        if let (true, Some(p)) = (self.tls, &self.pki) {
            let _ = writeln!(
                t,
                "[sip.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\nclient_cert = \"required\"",
                p.gateway_cert.display(),
                p.gateway_key.display(),
                p.ca.display()
            );
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
