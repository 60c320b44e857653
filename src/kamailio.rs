//! `rcc-lab kamailio`: the gateway's CPU per RCC request side by side with Kamailio's per relayed
//! INFO transaction, both carrying the same traffic in one run.
//!
//! SIPp plays the Lync side: each of its calls is one RCC session (INVITE with
//! RequestSystemStatus, ACK), then a series of INFOs carrying SnapshotDevice, each waiting for
//! its 200 OK, then BYE. Kamailio (tm, record-routing) relays the dialog statefully to the
//! gateway, which translates every INFO into a CSTA request to the PBX simulator and answers it
//! from the PBX's response. Every INFO thus crosses both: Kamailio relays it and its 200 OK,
//! the gateway does the RCC work. CPU time comes from `/proc` for the gateway and for every
//! Kamailio process.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::load::{self, LoadOptions};

/// What to run.
#[derive(Debug, Clone)]
pub struct KamailioOptions {
    /// RCC sessions SIPp opens (one line each).
    pub calls: usize,
    /// SnapshotDevice INFOs per session.
    pub infos: usize,
    /// Sessions started per second.
    pub rate: f64,
    /// Sessions open at once at most.
    pub limit: usize,
    /// Output folder (configs, logs).
    pub out: PathBuf,
}

/// What one run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    /// INFO transactions the gateway answered 200 OK to SnapshotDevice.
    pub infos: f64,
    /// Seconds SIPp ran.
    pub seconds: f64,
    /// Gateway CPU seconds over the run.
    pub gateway_cpu_s: f64,
    /// Kamailio CPU seconds over the run (all its processes).
    pub kamailio_cpu_s: f64,
    /// PBX simulator CPU seconds.
    pub pbx_cpu_s: f64,
    /// SIPp CPU seconds.
    pub sipp_cpu_s: f64,
    /// Whether SIPp saw every call succeed.
    pub sipp_ok: bool,
}

impl Comparison {
    /// Gateway CPU per INFO, µs.
    pub fn gateway_us(&self) -> f64 {
        per(self.gateway_cpu_s, self.infos)
    }

    /// Kamailio CPU per relayed INFO, µs.
    pub fn kamailio_us(&self) -> f64 {
        per(self.kamailio_cpu_s, self.infos)
    }
}

fn per(cpu_s: f64, n: f64) -> f64 {
    if n > 0.0 { cpu_s * 1e6 / n } else { 0.0 }
}

const KAMAILIO_CFG: &str = r#"#!KAMAILIO
# Stateful relay (tm) of the RCC dialog between the load driver and the gateway.
debug=1
log_stderror=yes
children=2
tcp_children=2
disable_tcp=no
auto_aliases=no
listen=tcp:127.0.0.1:{kamailio_port}
mpath="{modules}"
loadmodule "kex.so"
loadmodule "textops.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"

request_route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) {
            t_relay();
            exit;
        }
        if (is_method("ACK") && t_check_trans()) {
            t_relay();
        }
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) {
            t_relay();
        }
        exit;
    }
    t_check_trans();
    if (is_method("INVITE")) {
        record_route();
    }
    $du = "sip:127.0.0.1:{gateway_port};transport=tcp";
    t_relay();
}
"#;

/// The SIPp scenario; `[field0]` is the user's extension from the injection file.
const SCENARIO: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="RCC session: sign-in, then SnapshotDevice INFOs">
  <send>
    <![CDATA[

      INVITE sip:rccgateway@rcc.contoso.com SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:user[field0]@contoso.com>;tag=[pid]T[call_number];epid=e[call_number]
      To: <sip:rccgateway@rcc.contoso.com>
      Call-ID: [call_id]
      CSeq: [cseq] INVITE
      Contact: <sip:user[field0]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/csta+xml
      Content-Disposition: signal;handling=required
      Content-Length: [len]

      <?xml version="1.0"?><RequestSystemStatus xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3"><extensions><privateData><private><lcs:line xmlns:lcs="http://schemas.microsoft.com/Lcs/2005/04/RCCExtension">tel:+1425[field0];ext=[field0]</lcs:line></private></privateData></extensions></RequestSystemStatus>
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:user[field0]@contoso.com>;tag=[pid]T[call_number];epid=e[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: [cseq] ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <label id="1"/>
  <send>
    <![CDATA[

      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:user[field0]@contoso.com>;tag=[pid]T[call_number];epid=e[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: [cseq] INFO
      Max-Forwards: 70
      Content-Type: application/csta+xml
      Content-Disposition: signal;handling=required
      Content-Length: [len]

      <?xml version="1.0"?><SnapshotDevice xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3"><snapshotObject>tel:+1425[field0];ext=[field0]</snapshotObject></SnapshotDevice>
    ]]>
  </send>
  <recv response="200"/>
  <nop>
    <action>
      <add assign_to="n" value="1"/>
      <test assign_to="more" variable="n" compare="less_than" value="{infos}"/>
    </action>
  </nop>
  <nop next="1" test="more"/>
  <send>
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:user[field0]@contoso.com>;tag=[pid]T[call_number];epid=e[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: [cseq] BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"#;

/// A program from PATH or the system folders Debian installs servers into.
pub fn program(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("{name} not found: install it (apt-get install {package})"))
}

/// Kamailio's module folder on this machine.
pub fn kamailio_modules() -> anyhow::Result<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/aarch64-linux-gnu/kamailio/modules",
        "/usr/lib/kamailio/modules",
        "/usr/local/lib64/kamailio/modules",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.join("tm.so").is_file())
    .ok_or_else(|| anyhow::anyhow!("Kamailio's modules (tm.so) not found"))
}

/// CPU seconds of a running process, or why they cannot be read.
fn cpu_of(pid: u32, what: &str) -> anyhow::Result<f64> {
    load::sample(pid)
        .map(|s| s.cpu_s)
        .ok_or_else(|| anyhow::anyhow!("cannot read the CPU time of {what} (/proc/{pid}/stat)"))
}

/// CPU seconds of a process and of every process it started (Kamailio forks its workers).
pub(crate) fn tree_cpu(root: u32) -> anyhow::Result<f64> {
    let mut total = cpu_of(root, "Kamailio")?;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Ok(total);
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces): state, ppid, ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(root) {
            // A worker may exit between the listing and the read: it no longer counts.
            total += load::sample(pid).map_or(0.0, |s| s.cpu_s);
        }
    }
    Ok(total)
}

/// A program started in a process group of its own, ended with all its workers: Kamailio forks
/// them, and killing only the main process would leave them running.
pub struct ProcessGroup(std::process::Child);

impl ProcessGroup {
    /// Starts `bin args` in a group of its own, its output in `log`.
    pub fn spawn(bin: &Path, args: &[&str], log: &Path) -> anyhow::Result<ProcessGroup> {
        use std::os::unix::process::CommandExt;
        let child = load::logged(bin, args, log)?
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(ProcessGroup(child))
    }

    /// The group leader's process ID.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// How the group leader ended, once it has (`None` while it runs).
    pub fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        Ok(self.0.try_wait()?)
    }

    /// Sends `signal` (`-TERM`, `-KILL`) to the whole group.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal("-KILL");
        let _ = self.0.wait();
    }
}

/// Runs SIPp → Kamailio → gateway → PBX simulator and measures.
pub async fn measure(o: &KamailioOptions) -> anyhow::Result<Comparison> {
    anyhow::ensure!(
        o.calls > 0 && o.infos > 0,
        "nothing to run: 0 calls or 0 INFOs"
    );
    // SIPp runs inside the output folder: every path handed to it must be absolute.
    let o = &KamailioOptions {
        out: std::path::absolute(&o.out)
            .map_err(|e| anyhow::anyhow!("output folder {}: {e}", o.out.display()))?,
        ..o.clone()
    };
    let kamailio = program("kamailio", "kamailio")?;
    let sipp = program("sipp", "sip-tester")?;
    let modules = kamailio_modules()?;
    std::fs::create_dir_all(&o.out)?;
    let (pbx_port, sip_port, metrics_port, kamailio_port) = (
        load::free_port()?,
        load::free_port()?,
        load::free_port()?,
        load::free_port()?,
    );
    let base = LoadOptions {
        users: o.calls,
        endpoints: 1,
        signin_rate: o.rate,
        call_rate: 0.0,
        duration: 0,
        out: o.out.clone(),
        pattern: String::new(),
        pin: false,
        tls: false,
        threads: 1,
        pbx_rate: None,
    };
    let (pbx_cfg, gw_cfg, _) = load::write_configs(&base, pbx_port, sip_port, metrics_port)?;
    let cfg = o.out.join("kamailio.cfg");
    std::fs::write(
        &cfg,
        KAMAILIO_CFG
            .replace("{kamailio_port}", &kamailio_port.to_string())
            .replace("{gateway_port}", &sip_port.to_string())
            .replace("{modules}", &modules.to_string_lossy()),
    )?;
    let scenario = o.out.join("rcc-info.xml");
    std::fs::write(&scenario, SCENARIO.replace("{infos}", &o.infos.to_string()))?;
    let users = o.out.join("users.csv");
    let mut csv = String::from("SEQUENTIAL\n");
    for u in 0..o.calls {
        let _ = writeln!(csv, "{};", 100_000 + u);
    }
    std::fs::write(&users, csv)?;

    let pbx = load::spawn(
        &load::binary("pbx-sim")?,
        &["--config", &pbx_cfg.to_string_lossy()],
        &o.out.join("pbx-sim.log"),
    )?;
    load::listening(pbx_port, "the PBX simulator").await?;
    let gw = load::spawn(
        &load::binary("rcc-gateway")?,
        &["--config", &gw_cfg.to_string_lossy()],
        &o.out.join("gateway.log"),
    )?;
    load::listening(sip_port, "the gateway").await?;
    let kam = ProcessGroup::spawn(
        &kamailio,
        &[
            "-DD",
            "-E",
            "-x",
            "tlsf",
            "-m",
            "2048",
            "-M",
            "32",
            "-f",
            &cfg.to_string_lossy(),
        ],
        &o.out.join("kamailio.log"),
    )?;
    load::listening(kamailio_port, "Kamailio")
        .await
        .with_context(|| format!("see {}", o.out.join("kamailio.log").display()))?;
    // Let the PBX link come up before the first INVITE.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let cpu = || -> anyhow::Result<(f64, f64, f64)> {
        Ok((
            cpu_of(gw.0.id(), "the gateway")?,
            tree_cpu(kam.0.id())?,
            cpu_of(pbx.0.id(), "the PBX simulator")?,
        ))
    };
    let before = cpu()?;
    let started = Instant::now();
    let target = format!("127.0.0.1:{kamailio_port}");
    let sipp_log = std::fs::File::create(o.out.join("sipp.log"))?;
    let mut child = Command::new(&sipp)
        .current_dir(&o.out)
        .args([
            "-sf",
            &scenario.to_string_lossy(),
            "-inf",
            &users.to_string_lossy(),
            "-t",
            "t1",
            "-r",
            &o.rate.to_string(),
            "-m",
            &o.calls.to_string(),
            "-l",
            &o.limit.to_string(),
            "-nostdin",
            "-timeout",
            "600s",
            "-trace_err",
            &target,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(sipp_log.try_clone()?))
        .stderr(Stdio::from(sipp_log))
        .spawn()
        .context("starting sipp")?;
    let sipp_pid = child.id();
    let mut sipp_cpu = 0.0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        sipp_cpu = load::sample(sipp_pid).map_or(sipp_cpu, |s| s.cpu_s);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let after = cpu()?;
    let metrics = load::scrape(metrics_port).await.unwrap_or_default();
    drop(kam);
    drop(gw);
    drop(pbx);
    Ok(Comparison {
        infos: load::metric(
            &metrics,
            "rcc_gateway_csta_requests_total{service=\"SnapshotDevice\",outcome=\"ok\"}",
        ),
        seconds,
        gateway_cpu_s: after.0 - before.0,
        kamailio_cpu_s: after.1 - before.1,
        pbx_cpu_s: after.2 - before.2,
        sipp_cpu_s: sipp_cpu,
        sipp_ok: status.success(),
    })
}

/// Runs and reports.
pub async fn run(o: &KamailioOptions) -> anyhow::Result<String> {
    let c = measure(o).await?;
    let mut r = String::new();
    let _ = writeln!(
        r,
        "{} INFO transactions (SnapshotDevice) in {:.1} s = {:.0}/s through Kamailio and the gateway; SIPp {}",
        c.infos,
        c.seconds,
        c.infos / c.seconds.max(1e-9),
        if c.sipp_ok {
            "saw every session succeed".to_owned()
        } else {
            format!(
                "reported failures (see {})",
                o.out.join("sipp.log").display()
            )
        }
    );
    let _ = writeln!(
        r,
        "CPU: gateway {:.2} s = {:.1} µs per RCC request; Kamailio {:.2} s = {:.1} µs per relayed INFO transaction; ratio gateway/Kamailio {:.2}",
        c.gateway_cpu_s,
        c.gateway_us(),
        c.kamailio_cpu_s,
        c.kamailio_us(),
        if c.kamailio_us() > 0.0 {
            c.gateway_us() / c.kamailio_us()
        } else {
            0.0
        }
    );
    let _ = writeln!(
        r,
        "(PBX simulator {:.2} s, SIPp {:.2} s; configs and logs in {})",
        c.pbx_cpu_s,
        c.sipp_cpu_s,
        o.out.display()
    );
    Ok(r)
}
