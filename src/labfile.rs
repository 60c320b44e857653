//! `lab.toml`: which component stands in each position. Our gateway in process or an external
//! gateway (with our PBX simulator listening for it); our PBX simulator or an external PBX (with
//! our gateway in process). Scenarios that need a component the lab does not control are listed
//! as not applicable, by name.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::lab::{ExternalGateway, ExternalPbx, GatewayAt, LabOptions, PbxAt, RealTopology, User};

/// The file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    /// The gateway position.
    #[serde(default)]
    pub gateway: Option<GatewayFile>,
    /// The PBX position.
    #[serde(default)]
    pub pbx: Option<PbxFile>,
    /// Lab users (default: alice 1001, bob 1002, carol 1003); on an external PBX these
    /// extensions must exist with E.164 numbers +1425555xxxx.
    #[serde(default, rename = "user")]
    pub users: Vec<UserFile>,
    /// The Lync side of a real deployment.
    #[serde(default)]
    pub lync: Option<LyncFile>,
    /// Where the file was read from (its folder keeps the lab's generated certificates).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[lync]`: the simulated pool routes as a real one, from its Management Shell exports (the
/// folder `rcc-gateway lync-check` reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LyncFile {
    /// The exports' folder (relative to lab.toml).
    pub exports: PathBuf,
    /// The Front End pool whose routing the lab plays (its own routing collection if it has
    /// one); default: the global routing.
    #[serde(default)]
    pub registrar: Option<String>,
}

/// `[gateway]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    /// `in-process` or `external`.
    pub mode: Mode,
    /// External: the gateway's SIP address (IP:port).
    #[serde(default)]
    pub address: Option<SocketAddr>,
    /// External: `tls` or `tcp`.
    #[serde(default)]
    pub transport: Option<String>,
    /// External TLS: the gateway's FQDN.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// External TLS: the CA of the gateway's certificate.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// External TLS: the pool's certificate and key, from a CA the gateway trusts.
    #[serde(default)]
    pub pool_cert: Option<PathBuf>,
    /// See `pool_cert`.
    #[serde(default)]
    pub pool_key: Option<PathBuf>,
    /// External: where our PBX simulator listens for the gateway's CSTA link.
    #[serde(default)]
    pub pbx_listen: Option<SocketAddr>,
}

impl GatewayFile {
    /// Mutual TLS (the default), else TCP.
    pub fn tls(&self) -> bool {
        self.transport.as_deref().unwrap_or("tls") == "tls"
    }
}

/// `[pbx]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PbxFile {
    /// `simulator` or `external`.
    pub mode: Mode,
    /// External: `host:port` of the CSTA server.
    #[serde(default)]
    pub address: Option<String>,
    /// `generic`, `osv` or `aes`.
    #[serde(default)]
    pub profile: Option<String>,
    /// ECMA-354 login.
    #[serde(default)]
    pub username: Option<String>,
    /// ECMA-354 password.
    #[serde(default)]
    pub password: Option<String>,
}

/// Who stands in a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Ours, in this process.
    InProcess,
    /// Our simulator.
    Simulator,
    /// Someone else's.
    External,
}

/// `[[user]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    /// Name used in the scenarios.
    pub name: String,
    /// PBX extension.
    pub extension: String,
}

impl LabFile {
    /// Reads and checks a file; every problem is listed.
    pub fn load(path: &std::path::Path) -> anyhow::Result<LabFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let mut f: LabFile =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        f.path = Some(path.to_owned());
        let p = f.problems();
        anyhow::ensure!(
            p.is_empty(),
            "{}: {} problem(s):\n  - {}",
            path.display(),
            p.len(),
            p.join("\n  - ")
        );
        Ok(f)
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let ext_gw = self
            .gateway
            .as_ref()
            .is_some_and(|g| g.mode == Mode::External);
        let ext_pbx = self.pbx.as_ref().is_some_and(|x| x.mode == Mode::External);
        if ext_gw && ext_pbx {
            p.push("an external gateway and an external PBX leave nothing for the lab to observe; keep one of ours".into());
        }
        if let Some(g) = &self.gateway {
            if g.mode == Mode::Simulator {
                p.push("gateway.mode is in-process or external".into());
            }
            if g.mode == Mode::External {
                if g.address.is_none() {
                    p.push("gateway.address (IP:port) is needed for an external gateway".into());
                }
                if g.pbx_listen.is_none() {
                    p.push("gateway.pbx_listen is needed: where our PBX simulator waits for its CSTA link".into());
                }
                if g.tls() && g.fqdn.is_none() {
                    p.push(
                        "an external TLS gateway needs gateway.fqdn (its certificate name)".into(),
                    );
                }
                if !["tls", "tcp"].contains(&g.transport.as_deref().unwrap_or("tls")) {
                    p.push("gateway.transport is tls or tcp".into());
                }
                if g.pool_cert.is_some() != g.pool_key.is_some() {
                    p.push("gateway.pool_cert and gateway.pool_key go together".into());
                }
            }
        }
        if let Some(x) = &self.pbx {
            if x.mode == Mode::InProcess {
                p.push("pbx.mode is simulator or external".into());
            }
            if x.mode == Mode::External && x.address.is_none() {
                p.push("pbx.address is needed for an external PBX".into());
            }
            if let Some(pr) = &x.profile
                && !["generic", "osv", "aes"].contains(&pr.as_str())
            {
                p.push(format!("pbx.profile {pr:?} is not generic, osv or aes"));
            }
        }
        p
    }

    /// The lab options this file describes. An external TLS gateway without `ca`,
    /// `pool_cert` and `pool_key` uses the lab's certificates (generated beside the file once,
    /// see `rcc-lab lab-config`).
    pub fn options(&self) -> anyhow::Result<LabOptions> {
        let mut o = LabOptions::default();
        if !self.users.is_empty() {
            o.users = self
                .users
                .iter()
                .map(|u| User::new(&u.name, &u.extension))
                .collect();
        }
        let profile = self
            .pbx
            .as_ref()
            .and_then(|x| x.profile.as_deref())
            .unwrap_or("generic");
        o.pbx_profile = match profile {
            "osv" => rcc_simulators::pbx::Profile::Osv,
            "aes" => rcc_simulators::pbx::Profile::Aes,
            _ => rcc_simulators::pbx::Profile::Generic,
        };
        if let Some(g) = self.gateway.as_ref().filter(|g| g.mode == Mode::External)
            && let (Some(address), Some(pbx_listen)) = (g.address, g.pbx_listen)
        {
            let tls = g.tls();
            let fqdn = g.fqdn.clone().unwrap_or_default();
            let pki = match (&self.path, tls && (g.ca.is_none() || g.pool_cert.is_none())) {
                (Some(path), true) => Some(crate::labconfig::Pki::ensure(
                    &crate::labconfig::Pki::dir_for(path),
                    &fqdn,
                )?),
                _ => None,
            };
            o.gateway_at = GatewayAt::External(ExternalGateway {
                address,
                tls,
                fqdn,
                ca: g.ca.clone().or_else(|| pki.as_ref().map(|p| p.ca.clone())),
                pool_identity: g.pool_cert.clone().zip(g.pool_key.clone()).or_else(|| {
                    pki.as_ref()
                        .map(|p| (p.pool_cert.clone(), p.pool_key.clone()))
                }),
                pbx_listen,
            });
            o.tls = tls;
        }
        if let Some(l) = &self.lync {
            let dir = match self.path.as_ref().and_then(|p| p.parent()) {
                Some(base) => base.join(&l.exports),
                None => l.exports.clone(),
            };
            o.real_topology = Some(RealTopology {
                exports: rcc_lync_topology::exports::Exports::read(&dir)?,
                registrar: l.registrar.clone().unwrap_or_default(),
            });
        }
        if let Some(x) = self.pbx.as_ref().filter(|x| x.mode == Mode::External) {
            o.pbx_at = PbxAt::External(ExternalPbx {
                address: x.address.clone().unwrap_or_default(),
                profile: match profile {
                    "osv" => rcc_gateway::config::PbxProfile::Osv,
                    "aes" => rcc_gateway::config::PbxProfile::Aes,
                    _ => rcc_gateway::config::PbxProfile::Generic,
                },
                credentials: x.username.clone().zip(x.password.clone()),
            });
        }
        Ok(o)
    }
}

/// Why a scenario with these tags (without `@`) cannot run in this lab, if it cannot:
/// `needs-pbx-sim` with an external PBX, `needs-gateway-in-process` with an external gateway,
/// `needs-external-gateway` in the in-process lab, `profile-X` when the gateway is not ours
/// to configure and is set up for another PBX
/// profile, `transport-tcp` with an external gateway reached over TLS.
pub fn not_applicable(options: &LabOptions, tags: &[String]) -> Option<String> {
    let has = |t: &str| tags.iter().any(|x| x == t);
    let external_gateway = matches!(options.gateway_at, GatewayAt::External(_));
    let external_pbx = matches!(options.pbx_at, PbxAt::External(_));
    if external_pbx && has("needs-pbx-sim") {
        return Some(
            "needs PBX-side actions (desk phones, outside callers, faults) and the PBX is external"
                .into(),
        );
    }
    if has("needs-pidgin-sipe")
        && let Some(why) = crate::sipe::excluded()
    {
        return Some(why);
    }
    if has("ha") {
        if external_gateway {
            return Some(
                "tests our gateway as several processes behind Kamailio; the gateway under test is external"
                    .into(),
            );
        }
        if options.real_topology.is_some() {
            return Some(
                "the Kamailio tier is reached by the lab's own static route; this lab plays a real topology's routing"
                    .into(),
            );
        }
    }
    if !external_gateway && has("needs-external-gateway") {
        return Some(
            "runs in real time against an external gateway; the in-process lab runs this case in virtual time"
                .into(),
        );
    }
    if external_gateway && has("needs-gateway-in-process") {
        return Some(
            "needs our gateway in process (restart, configuration) and the gateway is external"
                .into(),
        );
    }
    if external_gateway || external_pbx {
        let configured = profile_name(options.pbx_profile);
        if let Some(wanted) = tags.iter().find_map(|t| t.strip_prefix("profile-"))
            && wanted != configured
        {
            return Some(format!(
                "written for the {wanted} PBX profile; this lab is configured for {configured} \
                 (lab.toml pbx.profile)"
            ));
        }
    }
    if let GatewayAt::External(g) = &options.gateway_at
        && g.tls
        && has("transport-tcp")
    {
        return Some("needs the Front End to reach the gateway over TCP; lab.toml says tls".into());
    }
    None
}

/// The lab.toml spelling of a PBX profile.
pub fn profile_name(p: rcc_simulators::pbx::Profile) -> &'static str {
    match p {
        rcc_simulators::pbx::Profile::Generic => "generic",
        rcc_simulators::pbx::Profile::Osv => "osv",
        rcc_simulators::pbx::Profile::Aes => "aes",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses() {
        let f: LabFile = toml::from_str(include_str!("../lab.example.toml")).expect("example");
        assert!(f.problems().is_empty(), "{:?}", f.problems());
        let o = f.options().expect("options");
        assert!(matches!(o.gateway_at, GatewayAt::External(_)));
        assert_eq!(o.users.len(), 3);
    }

    #[test]
    fn external_gateway_needs_its_addresses() {
        let f: LabFile = toml::from_str("[gateway]\nmode = \"external\"\n").expect("toml");
        let p = f.problems();
        assert!(p.iter().any(|x| x.contains("gateway.address")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("pbx_listen")), "{p:?}");
        assert!(p.iter().any(|x| x.contains("gateway.fqdn")), "{p:?}");
    }

    #[test]
    fn external_pbx_makes_pbx_scenarios_inapplicable() {
        let f: LabFile = toml::from_str(
            "[pbx]\nmode = \"external\"\naddress = \"10.0.0.20:1040\"\nprofile = \"osv\"\n",
        )
        .expect("toml");
        assert!(f.problems().is_empty());
        let o = f.options().expect("options");
        let why = not_applicable(&o, &["needs-pbx-sim".to_owned()]).expect("not applicable");
        assert!(why.contains("PBX is external"), "{why}");
        let aes = not_applicable(&o, &["profile-aes".to_owned()]).expect("not applicable");
        assert!(aes.contains("configured for osv"), "{aes}");
        assert_eq!(not_applicable(&o, &["profile-osv".to_owned()]), None);
    }

    #[test]
    fn in_process_everything_applies() {
        let o = LabOptions::default();
        let all = [
            "needs-pbx-sim",
            "needs-gateway-in-process",
            "profile-aes",
            "transport-tcp",
        ];
        assert_eq!(not_applicable(&o, &all.map(str::to_owned)), None);
    }
}
