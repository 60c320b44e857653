//! The high-availability tier a lab can put in the gateway position (issue 17's topology):
//! N `rcc-gateway` processes, each with its own CSTA link to the PBX through a [`Cable`] that
//! can be cut, behind Kamailio running exactly the configuration `rcc-gateway
//! kamailio-config` prints for them. The lab's Front End pool routes the LineServerURI domain
//! to the Kamailio node, over TCP or over mutual TLS (Kamailio's certificate names
//! [`KAMAILIO_POOL`], the trusted application pool).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rcc_simulators::tls::LabCa;

use crate::kamailio::{ProcessGroup, kamailio_modules, program};
use crate::load::{self, Killed};

mod cable;
pub use cable::Cable;

/// The trusted application pool FQDN of the Kamailio tier, on its certificate.
pub const KAMAILIO_POOL: &str = "rcc-tier.lab.example";

/// How the tier is built.
#[derive(Debug, Clone, PartialEq)]
pub struct TierOptions {
    /// Gateway processes behind Kamailio.
    pub gateways: usize,
    /// Front End ↔ Kamailio over mutual TLS (TCP otherwise).
    pub tls: bool,
    /// Kamailio's in-dialog keep-alive towards the gateways, seconds (`--dialog-keepalive-s`).
    pub dialog_keepalive_s: u32,
    /// The gateways' MonitorStart and SnapshotDevice pace (`pbx.pace_per_s`, bursts of a
    /// twentieth): `None` keeps the gateway's default, 0 turns pacing off.
    pub pace_per_s: Option<f64>,
    /// Kamailio's shared memory, MB (`-m`; Debian's default is 64): the dialogs and
    /// transactions of every session live there.
    pub kamailio_shm_mb: u32,
}

impl Default for TierOptions {
    fn default() -> Self {
        TierOptions {
            gateways: 2,
            tls: false,
            dialog_keepalive_s: 30,
            pace_per_s: None,
            kamailio_shm_mb: 256,
        }
    }
}

/// What the gateways need to reach and log in to the PBX.
#[derive(Debug, Clone)]
pub struct PbxAccess {
    /// The PBX's CSTA address.
    pub address: SocketAddr,
    /// The gateway's `pbx.profile`.
    pub profile: &'static str,
    /// CTI login, when the PBX asks for one.
    pub login: Option<(String, String)>,
}

/// One gateway process of the tier.
pub struct TierGateway {
    number: usize,
    ip: std::net::Ipv4Addr,
    config: PathBuf,
    log: PathBuf,
    metrics: u16,
    sip: u16,
    process: Option<Killed>,
    cable: Cable,
}

impl TierGateway {
    /// Writes its gateway.toml: TCP from Kamailio (trusted by address), its PBX link through
    /// its own cable, quick reconnects, metrics on a port of its own. Gateway `n` listens on
    /// 127.0.0.`n + 1`, an address of its own as on a host of its own: Kamailio tells the
    /// gateways' requests from the Front End's (127.0.0.1) by it.
    fn write(
        dir: &Path,
        number: usize,
        cable: Cable,
        pbx: &PbxAccess,
        pace_per_s: Option<f64>,
    ) -> anyhow::Result<Self> {
        let ip = std::net::Ipv4Addr::new(127, 0, 0, u8::try_from(number + 1)?);
        let (sip, metrics) = (free_port_on(ip)?, load::free_port()?);
        let config = dir.join(format!("gw{number}.toml"));
        let login = pbx
            .login
            .as_ref()
            .map(|(u, p)| format!("username = \"{u}\"\npassword = \"{p}\"\n"))
            .unwrap_or_default();
        let pace = pace_per_s
            .map(|n| {
                format!(
                    "pace_per_s = {n}\npace_burst = {}\n",
                    (n / 20.0).ceil().max(1.0) as u64
                )
            })
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "[sip]\nlisten_tcp = \"{ip}:{sip}\"\nhost = \"{ip}\"\n\
                 trusted_peer = [{{ ip = \"127.0.0.1\" }}]   # Kamailio\n\
                 [pbx]\naddress = \"{}\"\nprofile = \"{}\"\nreconnect_min_ms = 100\nreconnect_max_ms = 500\nmax_in_flight = 8000\n{login}{pace}\
                 [observe]\nhttp = \"127.0.0.1:{metrics}\"\n{}",
                cable.address(),
                pbx.profile,
                rcc_simulators::lync::LAB_NUMBERING
            ),
        )
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", config.display()))?;
        Ok(TierGateway {
            number,
            ip,
            log: dir.join(format!("gw{number}.log")),
            config,
            metrics,
            sip,
            process: None,
            cable,
        })
    }

    /// Its number in the tier, from 1.
    pub fn number(&self) -> usize {
        self.number
    }

    /// Starts the process (again) and waits until it listens for SIP.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        self.process = Some(load::spawn(
            &load::binary("rcc-gateway")?,
            &["--config", &self.config.to_string_lossy()],
            &self.log,
        )?);
        listening_on(self.ip, self.sip, &format!("gateway {}", self.number)).await
    }

    /// Kills it with SIGKILL, as a crash or a power cut would.
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Whether its process runs.
    pub fn running(&self) -> bool {
        self.process.is_some()
    }

    /// Puts it in drain mode (SIGUSR1): it keeps its sessions and takes no new one.
    pub fn drain(&self) -> anyhow::Result<()> {
        let pid = self
            .process
            .as_ref()
            .map(|p| p.0.id())
            .ok_or_else(|| anyhow::anyhow!("gateway {} is not running", self.number))?;
        let status = std::process::Command::new("kill")
            .args(["-USR1", &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -USR1 {pid} failed");
        Ok(())
    }

    /// The sum of a metric's samples on its /metrics (0 when absent).
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        Ok(load::metric(&self.scrape().await?, name))
    }

    /// Its `/metrics` page.
    pub async fn scrape(&self) -> anyhow::Result<String> {
        load::scrape(self.metrics)
            .await
            .map_err(|e| anyhow::anyhow!("gateway {}'s /metrics: {e}", self.number))
    }

    /// Its CSTA link's cable.
    pub fn cable(&self) -> &Cable {
        &self.cable
    }
}

/// A TCP port free on `ip` at the time of asking.
fn free_port_on(ip: std::net::Ipv4Addr) -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// Waits until something listens on `ip:port`.
async fn listening_on(ip: std::net::Ipv4Addr, port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::net::TcpStream::connect((ip, port)).await.is_err() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what} does not listen on {ip}:{port}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Prints Kamailio's configuration for `gateways` into `dir` with `rcc-gateway
/// kamailio-config`: Kamailio listens on `front` (over mutual TLS there, with its TCP listener
/// on `tcp`, when `o.tls`; its certificate then comes from `ca`) and relays only `front_ends`.
fn print_kamailio_config(
    dir: &Path,
    o: &TierOptions,
    gateways: &[TierGateway],
    front_ends: &[&str],
    (front, tcp): (SocketAddr, SocketAddr),
    ca: &LabCa,
) -> anyhow::Result<()> {
    let path = |file: &str| dir.join(file).display().to_string();
    let (first, others) = gateways
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("a tier needs at least one gateway"))?;
    let mut args: Vec<String> = vec![
        "--config".into(),
        first.config.display().to_string(),
        "kamailio-config".into(),
    ];
    let mut flag = |name: &str, value: String| args.extend([name.to_owned(), value]);
    for g in others {
        flag("--gateway", g.config.display().to_string());
    }
    for f in front_ends {
        flag("--front-end", (*f).to_owned());
    }
    flag("--listen", if o.tls { tcp } else { front }.to_string());
    flag("--dispatcher-list", path("rcc-dispatcher.list"));
    flag("--probe-interval-s", "1".into());
    flag("--probe-misses", "1".into());
    flag("--dialog-keepalive-s", o.dialog_keepalive_s.to_string());
    flag("--out", dir.display().to_string());
    if o.tls {
        let id = ca.issue(&[KAMAILIO_POOL])?;
        for (file, text) in [
            ("kamailio-ca.pem", &ca.cert_pem),
            ("kamailio.crt", &id.cert_pem),
            ("kamailio.key", &id.key_pem),
        ] {
            std::fs::write(dir.join(file), text)?;
        }
        flag("--tls-listen", front.to_string());
        flag("--tls-config", path("rcc-tls.cfg"));
        flag("--tls-cert", path("kamailio.crt"));
        flag("--tls-key", path("kamailio.key"));
        flag("--tls-ca", path("kamailio-ca.pem"));
    }
    let out = std::process::Command::new(load::binary("rcc-gateway")?)
        .args(&args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "rcc-gateway kamailio-config: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The running tier.
pub struct Tier {
    gateways: Vec<TierGateway>,
    shm_mb: u32,
    kamailio: Option<ProcessGroup>,
    /// Where the Front End pool reaches Kamailio.
    pub front: SocketAddr,
    /// Whether it does so over mutual TLS.
    pub tls: bool,
    dir: PathBuf,
}

impl Tier {
    /// Starts the gateways, prints Kamailio's configuration for them with `kamailio-config`
    /// (probes every second, out of rotation after one miss; Kamailio's certificate from
    /// `ca` when over TLS; requests taken only from `front_ends`, `--front-end` values) and
    /// starts Kamailio on it. Files go to `dir`.
    pub async fn start(
        dir: &Path,
        o: &TierOptions,
        pbx: &PbxAccess,
        ca: &LabCa,
        front_ends: &[&str],
    ) -> anyhow::Result<Tier> {
        anyhow::ensure!(o.gateways >= 1, "a tier needs at least one gateway");
        let mut gateways = Vec::with_capacity(o.gateways);
        for n in 1..=o.gateways {
            let cable = Cable::lay(pbx.address).await?;
            let mut g = TierGateway::write(dir, n, cable, pbx, o.pace_per_s)?;
            g.start().await?;
            gateways.push(g);
        }
        let front = SocketAddr::from(([127, 0, 0, 1], load::free_port()?));
        let tcp = SocketAddr::from(([127, 0, 0, 1], load::free_port()?));
        print_kamailio_config(dir, o, &gateways, front_ends, (front, tcp), ca)?;
        let mut tier = Tier {
            gateways,
            shm_mb: o.kamailio_shm_mb,
            kamailio: None,
            front,
            tls: o.tls,
            dir: dir.to_owned(),
        };
        tier.start_kamailio().await?;
        Ok(tier)
    }

    /// Starts Kamailio (again) on the printed configuration and waits until it listens.
    pub async fn start_kamailio(&mut self) -> anyhow::Result<()> {
        let modules = kamailio_modules()?;
        self.kamailio = Some(ProcessGroup::spawn(
            &program("kamailio", "kamailio")?,
            &[
                "-DD",
                "-E",
                "-m",
                &self.shm_mb.to_string(),
                "-L",
                &modules.to_string_lossy(),
                "-f",
                &self.dir.join("kamailio.cfg").to_string_lossy(),
            ],
            &self.dir.join("kamailio.log"),
        )?);
        load::listening(self.front.port(), "Kamailio").await
    }

    /// Stops Kamailio (every process of it).
    pub fn stop_kamailio(&mut self) {
        self.kamailio = None;
    }

    /// CPU seconds Kamailio has used, over all its processes.
    pub fn kamailio_cpu_s(&self) -> anyhow::Result<f64> {
        let k = self
            .kamailio
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("Kamailio is not running"))?;
        crate::kamailio::tree_cpu(k.id())
    }

    /// An error naming how Kamailio ended, and where its log is, once it has (it exits
    /// when one of its processes crashes).
    pub fn kamailio_running(&mut self) -> anyhow::Result<()> {
        let log = self.dir.join("kamailio.log");
        let k = self
            .kamailio
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("Kamailio is not running"))?;
        match k.exited()? {
            None => Ok(()),
            Some(status) => anyhow::bail!("Kamailio ended ({status}); see {}", log.display()),
        }
    }

    /// The gateways, in order.
    pub fn gateways(&self) -> &[TierGateway] {
        &self.gateways
    }

    /// Gateway `number` (from 1).
    pub fn gateway(&self, number: usize) -> anyhow::Result<&TierGateway> {
        number
            .checked_sub(1)
            .and_then(|i| self.gateways.get(i))
            .ok_or_else(|| anyhow::anyhow!("the tier has no gateway {number}"))
    }

    /// Gateway `number` (from 1), to start, kill or drain.
    pub fn gateway_mut(&mut self, number: usize) -> anyhow::Result<&mut TierGateway> {
        number
            .checked_sub(1)
            .and_then(|i| self.gateways.get_mut(i))
            .ok_or_else(|| anyhow::anyhow!("the tier has no gateway {number}"))
    }

    /// The sessions each gateway holds (0 for one that is not running).
    pub async fn sessions(&self) -> anyhow::Result<Vec<f64>> {
        let mut out = Vec::with_capacity(self.gateways.len());
        for g in &self.gateways {
            out.push(match g.running() {
                true => g.metric("rcc_gateway_sessions").await?,
                false => 0.0,
            });
        }
        Ok(out)
    }
}
