//! `pbx.toml`: the PBX simulator's configuration file, checked as a whole so every problem is
//! reported at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::directory::{DeviceConfig, ExternalParty, is_dialable};
use super::profile::{Framing, Heartbeat, PbxConfig, Profile};

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PbxFile {
    /// `generic`, `osv` or `aes`.
    #[serde(default)]
    pub profile: Profile,
    /// `annex-j` (default) or `nul`.
    #[serde(default)]
    pub framing: Framing,
    /// Override of the profile's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Listeners.
    pub listen: ListenFile,
    /// TLS material, needed with `listen.tls`.
    #[serde(default)]
    pub tls: Option<TlsFile>,
    /// ECMA-354 session overrides.
    #[serde(default)]
    pub session: SessionFile,
    /// SystemStatus heartbeat overrides.
    #[serde(default)]
    pub heartbeat: Option<HeartbeatFile>,
    /// Call model settings.
    #[serde(default)]
    pub switch: SwitchFile,
    /// Internal devices.
    #[serde(default, rename = "device")]
    pub devices: Vec<DeviceConfig>,
    /// Behaviour of external numbers without their own entry.
    #[serde(default)]
    pub default_external: Option<ExternalParty>,
    /// Scripted external numbers.
    #[serde(default, rename = "external")]
    pub externals: Vec<ExternalFile>,
    /// Keep the frame log for the control endpoint (default true; turn off for load runs).
    #[serde(default)]
    pub log_frames: Option<bool>,
}

/// `[listen]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenFile {
    /// Plain TCP address.
    #[serde(default)]
    pub tcp: Option<SocketAddr>,
    /// TLS address.
    #[serde(default)]
    pub tls: Option<SocketAddr>,
    /// HTTP control endpoint.
    #[serde(default)]
    pub control: Option<SocketAddr>,
}

/// `[tls]`: certificate files, or names to generate a lab certificate for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// PEM certificate chain.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Generate a certificate for these names with a fresh lab CA.
    #[serde(default)]
    pub generate: Vec<String>,
    /// Where to write the generated CA certificate (PEM) for clients to trust.
    #[serde(default)]
    pub ca_out: Option<PathBuf>,
}

/// `[session]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFile {
    /// Require StartApplicationSession before CSTA requests.
    #[serde(default)]
    pub required: Option<bool>,
    /// Accepted user name (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// Accepted password.
    #[serde(default)]
    pub password: Option<String>,
    /// Duration granted when none is asked for, in seconds.
    #[serde(default)]
    pub default_duration_s: Option<u64>,
    /// Longest duration granted, in seconds.
    #[serde(default)]
    pub max_duration_s: Option<u64>,
}

/// `[heartbeat]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatFile {
    /// Seconds between SystemStatus requests (0 turns the heartbeat off).
    pub interval_s: f64,
    /// Unanswered requests before the link is dropped.
    #[serde(default = "two")]
    pub max_misses: u32,
}

fn two() -> u32 {
    2
}

/// `[switch]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchFile {
    /// One ring, in milliseconds (no-answer forwarding counts rings).
    #[serde(default)]
    pub ring_ms: Option<u64>,
    /// Rings before no-answer forwarding when none is given.
    #[serde(default)]
    pub default_ring_count: Option<u32>,
    /// Monitors allowed per device.
    #[serde(default)]
    pub monitors_per_device: Option<usize>,
    /// Monitors on the whole switch at most (`overallMonitorLimitExceeded` beyond).
    #[serde(default)]
    pub max_monitors: Option<usize>,
    /// Requests accepted per second (`resourceBusy` beyond), as a PBX's published limit.
    #[serde(default)]
    pub requests_per_s: Option<u32>,
    /// Send the remaining party a second ConnectionCleared.
    #[serde(default)]
    pub second_connection_cleared: Option<bool>,
    /// Answering while in another call holds that call (false: refused, hold first).
    #[serde(default)]
    pub hold_on_answer: Option<bool>,
}

/// `[[external]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalFile {
    /// The number.
    pub number: String,
    /// `ring`, `busy`, `reject` or `unallocated`.
    #[serde(default)]
    pub reach: super::directory::Reach,
    /// Answers this many milliseconds after it starts ringing.
    #[serde(default)]
    pub answer_after_ms: Option<u64>,
    /// Hangs up this many milliseconds after it joined a call.
    #[serde(default)]
    pub clear_after_ms: Option<u64>,
}

impl ExternalFile {
    /// The scripted behaviour.
    pub fn party(&self) -> ExternalParty {
        ExternalParty {
            reach: self.reach,
            answer_after_ms: self.answer_after_ms,
            clear_after_ms: self.clear_after_ms,
        }
    }
}

/// Everything needed to start the simulator.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The engine configuration.
    pub config: PbxConfig,
    /// The file as read (listeners, TLS, devices, externals).
    pub file: PbxFile,
}

/// A simulator started from a configuration file.
#[derive(Debug)]
pub struct Launched {
    /// The running simulator.
    pub sim: super::server::PbxSim,
    /// The control endpoint's address, when configured.
    pub control: Option<SocketAddr>,
}

impl Loaded {
    /// Starts the listeners, scripts the externals and serves the control endpoint.
    pub async fn launch(&self) -> anyhow::Result<Launched> {
        let tls = match (&self.file.listen.tls, &self.file.tls) {
            (Some(addr), Some(t)) => {
                let identity = match (&t.cert, &t.key) {
                    (Some(cert), Some(key)) => crate::tls::Identity::from_pem_files(cert, key)?,
                    _ => {
                        let ca = crate::tls::LabCa::new("rcc-lab PBX simulator CA")?;
                        if let Some(out) = &t.ca_out {
                            std::fs::write(out, &ca.cert_pem).map_err(|e| {
                                anyhow::anyhow!("cannot write the lab CA to {}: {e}", out.display())
                            })?;
                        }
                        let names: Vec<&str> = t.generate.iter().map(String::as_str).collect();
                        ca.issue(&names)?
                    }
                };
                let config = crate::tls::server_config(&identity, crate::tls::ClientAuth::None)?;
                Some((*addr, config))
            }
            _ => None,
        };
        let listen = super::server::Listen {
            tcp: self.file.listen.tcp,
            tls,
        };
        let sim =
            super::server::PbxSim::start(self.config.clone(), self.file.devices.clone(), listen)
                .await?;
        for x in &self.file.externals {
            sim.set_external(&x.number, x.party()).await?;
        }
        let control = match self.file.listen.control {
            Some(addr) => Some(super::control::serve(sim.clone(), addr).await?),
            None => None,
        };
        Ok(Launched { sim, control })
    }
}

/// Reads and checks a configuration file.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Parses and checks configuration text; every problem is listed.
pub fn parse(text: &str) -> anyhow::Result<Loaded> {
    let file: PbxFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let problems = check(&file);
    if !problems.is_empty() {
        return Err(anyhow::anyhow!(
            "{} problem(s):\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        ));
    }
    let config = build(&file);
    Ok(Loaded { config, file })
}

fn check(file: &PbxFile) -> Vec<String> {
    let mut problems = Vec::new();
    if file.listen.tcp.is_none() && file.listen.tls.is_none() {
        problems.push("listen: give `tcp` or `tls` (or both)".to_owned());
    }
    match (&file.listen.tls, &file.tls) {
        (Some(_), None) => problems.push("listen.tls needs a [tls] section".to_owned()),
        (Some(_), Some(t)) => {
            let files = t.cert.is_some() && t.key.is_some();
            if !files && t.generate.is_empty() {
                problems.push("tls: give `cert` and `key`, or `generate` names".to_owned());
            }
            if t.cert.is_some() != t.key.is_some() {
                problems.push("tls: `cert` and `key` go together".to_owned());
            }
        }
        _ => {}
    }
    if file.session.username.is_some() != file.session.password.is_some() {
        problems.push("session: `username` and `password` go together".to_owned());
    }
    if let Some(hb) = &file.heartbeat {
        if !(hb.interval_s >= 0.0 && hb.interval_s.is_finite()) {
            problems.push(format!(
                "heartbeat.interval_s must be a non-negative number, not {}",
                hb.interval_s
            ));
        }
        if hb.max_misses == 0 {
            problems.push("heartbeat.max_misses must be at least 1".to_owned());
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, d) in file.devices.iter().enumerate() {
        if !is_dialable(&d.number) {
            problems.push(format!(
                "device #{}: number {:?} is not dialable",
                i + 1,
                d.number
            ));
        }
        if let Some(e) = &d.e164
            && (!e.starts_with('+') || !is_dialable(e))
        {
            problems.push(format!(
                "device {}: e164 {e:?} must be + and digits",
                d.number
            ));
        }
        if !seen.insert(d.number.clone()) {
            problems.push(format!("device {} is listed twice", d.number));
        }
    }
    for x in &file.externals {
        if !is_dialable(&x.number) {
            problems.push(format!("external {:?} is not a dialable number", x.number));
        }
    }
    problems
}

fn build(file: &PbxFile) -> PbxConfig {
    let mut c = PbxConfig::for_profile(file.profile);
    c.framing = file.framing;
    if let Some(ns) = &file.namespace {
        c.namespace.clone_from(ns);
    }
    let s = &file.session;
    if let Some(r) = s.required {
        c.session.required = r;
    }
    if let (Some(u), Some(p)) = (&s.username, &s.password) {
        c.session.credentials = Some((u.clone(), p.clone()));
    }
    if let Some(d) = s.default_duration_s {
        c.session.default_duration = Duration::from_secs(d);
    }
    if let Some(d) = s.max_duration_s {
        c.session.max_duration = Duration::from_secs(d);
    }
    if let Some(hb) = &file.heartbeat {
        c.heartbeat = (hb.interval_s > 0.0).then(|| Heartbeat {
            interval: Duration::from_secs_f64(hb.interval_s),
            max_misses: hb.max_misses,
        });
    }
    let w = &file.switch;
    if let Some(ms) = w.ring_ms {
        c.switch.ring = Duration::from_millis(ms);
    }
    if let Some(n) = w.default_ring_count {
        c.switch.default_ring_count = n;
    }
    if let Some(n) = w.monitors_per_device {
        c.switch.monitors_per_device = n;
    }
    c.switch.max_monitors = w.max_monitors;
    c.requests_per_s = w.requests_per_s;
    if let Some(b) = w.second_connection_cleared {
        c.switch.second_connection_cleared = b;
    }
    if let Some(b) = w.hold_on_answer {
        c.switch.hold_on_answer = b;
    }
    if let Some(l) = file.log_frames {
        c.log_frames = l;
    }
    if let Some(x) = &file.default_external {
        c.switch.default_external = x.clone();
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../pbx.example.toml");
        let loaded = parse(text).expect("example config");
        assert_eq!(loaded.file.devices.len(), 3);
        assert_eq!(loaded.config.profile, Profile::Osv);
    }

    #[test]
    fn call_waiting_settings_are_read() {
        let text = "[listen]\ntcp = \"127.0.0.1:1\"\n[switch]\nhold_on_answer = false\n\
                    [[device]]\nnumber = \"100\"\ncall_waiting = true\n[[device]]\nnumber = \"101\"\n";
        let loaded = parse(text).expect("config");
        assert!(!loaded.config.switch.hold_on_answer);
        let waiting: Vec<bool> = loaded.file.devices.iter().map(|d| d.call_waiting).collect();
        assert_eq!(waiting, [true, false], "off unless asked");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            [listen]
            tls = "127.0.0.1:4722"
            [session]
            username = "u"
            [[device]]
            number = "alice"
            [[device]]
            number = "100"
            e164 = "14255550100"
        "#;
        let err = parse(text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("4 problem(s)"), "{err}");
        assert!(err.contains("listen.tls needs a [tls] section"));
        assert!(err.contains("`username` and `password` go together"));
        assert!(err.contains("\"alice\" is not dialable"));
        assert!(err.contains("must be + and digits"));
    }

    #[test]
    fn typos_are_named() {
        let err = parse("profle = \"osv\"\n[listen]\ntcp = \"127.0.0.1:1\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown field `profle`"), "{err}");
    }
}
