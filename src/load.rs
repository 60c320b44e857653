//! `rcc-lab load`: the gateway, the PBX simulator and the Lync load generator as three separate
//! processes on loopback, so each one's CPU time and memory are measured from `/proc`; then a
//! loopback TCP echo of the same message size in the same run, the physical floor the gateway's
//! response times are compared with. Writes a CSV and an SVG plot; prints the figures.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Users (one line each).
    pub users: usize,
    /// Endpoints per user.
    pub endpoints: usize,
    /// Sign-ins per second.
    pub signin_rate: f64,
    /// Calls per second (MakeCall + ClearConnection each).
    pub call_rate: f64,
    /// Seconds of calls.
    pub duration: u64,
    /// Output folder (CSV, SVG, configs, logs).
    pub out: PathBuf,
    /// What each call does: click-to-dial, hold-retrieve, transfer or snapshot.
    pub pattern: String,
    /// Give the gateway CPU 0 to itself and the simulators the other CPUs (`taskset`), as if
    /// the Front End pool and the PBX were other machines.
    pub pin: bool,
    /// Front End to gateway over mutual TLS (certificates minted for the run) instead of TCP.
    pub tls: bool,
    /// The gateway's runtime threads (`--threads`).
    pub threads: usize,
    /// A PBX with a published request limit: the PBX simulator refuses requests beyond 1.1 × this
    /// many per second and the gateway paces MonitorStart and SnapshotDevice to it
    /// (`pbx.pace_per_s`, bursts of a twentieth). None: an unlimited PBX and an unpaced
    /// gateway, to measure the gateway's own capacity.
    pub pbx_rate: Option<f64>,
}

/// What a load run measured, beside its printed report.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The figures, one per line.
    pub text: String,
    /// Gateway CPU per CSTA request during the call phase, µs.
    pub gateway_us_per_request: f64,
}

/// Restricts every thread of process `pid` to the CPUs in `list` (`taskset` syntax).
fn pin(pid: u32, list: &str, what: &str) -> anyhow::Result<()> {
    let out = Command::new("taskset")
        .args(["-apc", list, &pid.to_string()])
        .output()
        .with_context(|| format!("running taskset for the {what} (util-linux)"))?;
    anyhow::ensure!(
        out.status.success(),
        "taskset could not place the {what} on CPUs {list}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// CPU time and resident memory of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User + system CPU seconds.
    pub cpu_s: f64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = 100.0; // USER_HZ on Linux.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(ProcSample {
        cpu_s: (utime + stime) / ticks,
        rss_kib,
    })
}

/// A workspace binary next to the running one (or one folder up, for test executables in
/// `target/<profile>/deps`).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no directory for {}", exe.display()))?;
    let candidates = [Some(dir), dir.parent().filter(|_| dir.ends_with("deps"))];
    candidates
        .into_iter()
        .flatten()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{name} not found next to {}: build everything first (cargo build --release --workspace)",
                exe.display()
            )
        })
}

/// A TCP port free on loopback at the time of asking.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `bin args` with stdout and stderr going to the file `log`.
pub(crate) fn logged(bin: &Path, args: &[&str], log: &Path) -> anyhow::Result<Command> {
    let f = std::fs::File::create(log)?;
    let mut c = Command::new(bin);
    c.args(args)
        .stdout(Stdio::from(f.try_clone()?))
        .stderr(Stdio::from(f));
    Ok(c)
}

/// Starts `bin args` with its output in `log` and `RUST_LOG=warn`; killed when dropped.
pub fn spawn(bin: &Path, args: &[&str], log: &Path) -> anyhow::Result<Killed> {
    let child = logged(bin, args, log)?
        .env("RUST_LOG", "warn")
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(Killed(child))
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port` (10 s at most).
pub async fn listening(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what} does not listen on 127.0.0.1:{port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The PBX simulator's configuration for `users` lines (extensions from 100000), listening on
/// `port`; with a published request limit, it refuses requests beyond 1.1 × `pbx_rate` a second.
pub(crate) fn pbx_toml(users: usize, pbx_rate: Option<f64>, port: u16) -> String {
    let pbx_limit = pbx_rate.map_or(String::new(), |n| {
        format!("requests_per_s = {}\n", (n * 1.1).ceil() as u64)
    });
    let mut p = format!(
        "profile = \"generic\"\nlog_frames = false\n[listen]\ntcp = \"127.0.0.1:{port}\"\n[switch]\nmonitors_per_device = 4\n{pbx_limit}[default_external]\nreach = \"ring\"\nanswer_after_ms = 0\n"
    );
    for u in 0..users {
        let ext = 100_000 + u;
        let _ = write!(p, "[[device]]\nnumber = \"{ext}\"\n");
    }
    p
}

pub(crate) fn write_configs(
    o: &LoadOptions,
    pbx: u16,
    sip: u16,
    metrics: u16,
) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    std::fs::create_dir_all(&o.out)?;
    let p = pbx_toml(o.users, o.pbx_rate, pbx);
    // `[sip]` lines, then the tables that follow it, then the pool's configuration.
    let (sip_lines, sip_tables, l) = if o.tls {
        tls_configs(o, sip)?
    } else {
        (
            format!(
                "listen_tcp = \"127.0.0.1:{sip}\"\nhost = \"127.0.0.1\"\ntrusted_peer = [{{ ip = \"127.0.0.1\" }}]\n"
            ),
            String::new(),
            format!(
                r#"[pool]
fqdn = "fe.load.lab"
[[pool.static_route]]
match_uri = "rcc.contoso.com"
transport = "tcp"
destination = "127.0.0.1"
port = {sip}
[[pool.trusted_application]]
pool_fqdn = "127.0.0.1"
ip = "127.0.0.1"
port = {sip}
tcp_enabled = true
"#
            ),
        )
    };
    let pacing = match o.pbx_rate {
        Some(n) => format!(
            "pace_per_s = {n}    # the PBX's published limit\npace_burst = {}",
            (n / 20.0).ceil().max(1.0) as u64
        ),
        None => {
            "pace_per_s = 0    # the gateway's capacity is measured, not the PBX's limit".to_owned()
        }
    };
    let g = format!(
        r#"[sip]
{sip_lines}max_sessions = 1000000
{sip_tables}[pbx]
address = "127.0.0.1:{pbx}"
max_in_flight = 8000
{pacing}
[observe]
http = "127.0.0.1:{metrics}"
"#
    );
    let paths = (
        o.out.join("pbx.toml"),
        o.out.join("gateway.toml"),
        o.out.join("lync.toml"),
    );
    std::fs::write(&paths.0, p)?;
    std::fs::write(&paths.1, g)?;
    std::fs::write(&paths.2, l)?;
    Ok(paths)
}

/// For mutual TLS, with a CA and the two certificates minted into the output folder: the
/// gateway's `[sip]` lines and its `[sip.tls]` table, and the pool's configuration.
fn tls_configs(o: &LoadOptions, sip: u16) -> anyhow::Result<(String, String, String)> {
    const GW: &str = "gw.load.lab";
    const POOL: &str = "fe.load.lab";
    let ca = rcc_simulators::tls::LabCa::new("rcc-lab load CA")?;
    let gw = ca.issue(&[GW])?;
    let pool = ca.issue(&[POOL])?;
    let file = |name: &str, text: &str| -> anyhow::Result<String> {
        let p = o.out.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        Ok(crate::labconfig::quoted(&p))
    };
    let (ca_file, gw_cert, gw_key) = (
        file("ca.pem", &ca.cert_pem)?,
        file("gw.crt", &gw.cert_pem)?,
        file("gw.key", &gw.key_pem)?,
    );
    let (pool_cert, pool_key) = (
        file("pool.crt", &pool.cert_pem)?,
        file("pool.key", &pool.key_pem)?,
    );
    Ok((
        format!(
            "listen_tls = \"127.0.0.1:{sip}\"\nhost = \"{GW}\"\ntrusted_peer = [{{ name = \"{POOL}\" }}]\n"
        ),
        format!(
            "[sip.tls]\ncert = {gw_cert}\nkey = {gw_key}\nclient_ca = {ca_file}\nclient_cert = \"required\"\n"
        ),
        format!(
            r#"[pool]
fqdn = "{POOL}"
[[pool.static_route]]
match_uri = "rcc.contoso.com"
transport = "tls"
destination = "{GW}"
port = {sip}
[[pool.trusted_application]]
pool_fqdn = "{GW}"
port = {sip}
tcp_enabled = false
[tls]
ca = {ca_file}
cert = {pool_cert}
key = {pool_key}
[hosts]
"{GW}" = "127.0.0.1"
"#
        ),
    ))
}

/// Loopback TCP echo round trips of `size` bytes: p50 and p99 in microseconds.
pub async fn echo_floor(size: usize, rounds: usize) -> anyhow::Result<(f64, f64)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let server = tokio::spawn(async move {
        if let Ok((mut s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            let mut buf = vec![0u8; 65536];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    let mut c = tokio::net::TcpStream::connect(addr).await?;
    c.set_nodelay(true)?;
    let msg = vec![b'x'; size];
    let mut back = vec![0u8; size];
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        c.write_all(&msg).await?;
        c.read_exact(&mut back).await?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    server.abort();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Ok((at(0.5), at(0.99)))
}

/// The gateway's Prometheus text from its HTTP endpoint.
pub(crate) async fn scrape(port: u16) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut text)).await??;
    Ok(text)
}

/// The sum of the samples of metric `name` in Prometheus text whose labels (`None`: it has
/// none) `wanted` accepts; 0 when there is none.
fn sum_samples(text: &str, name: &str, wanted: impl Fn(Option<&str>) -> bool) -> f64 {
    text.lines()
        .filter(|l| match l.strip_prefix(name) {
            Some(rest) if rest.starts_with(' ') => wanted(None),
            Some(rest) => rest
                .strip_prefix('{')
                .is_some_and(|labels| wanted(Some(labels))),
            None => false,
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |sum, v| sum + v)
}

/// The sum of every sample of one metric in Prometheus text (0 when absent).
pub(crate) fn metric(text: &str, name: &str) -> f64 {
    sum_samples(text, name, |_| true)
}

/// The sum of the samples of one metric whose labels include `label` (e.g. `reason="busy"`).
pub(crate) fn metric_labelled(text: &str, name: &str, label: &str) -> f64 {
    sum_samples(text, name, |labels| {
        labels.is_some_and(|ls| ls.split(['}', ',']).any(|l| l == label))
    })
}

/// The upper bound of the histogram bucket that holds quantile `q` of the samples whose
/// labels include `label` (for example `input="sip"`), from Prometheus text; `None` without
/// samples. Bucket bounds make this an upper bound, not an interpolation.
pub(crate) fn bucket_quantile(text: &str, name: &str, label: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{");
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(label))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, cumulative)| *cumulative >= q * total)
        .map(|(le, _)| *le)
}

/// Runs the three processes and reports.
pub async fn run(o: &LoadOptions) -> anyhow::Result<LoadReport> {
    let (pbx_port, sip_port, metrics_port) = (free_port()?, free_port()?, free_port()?);
    let (pbx_cfg, gw_cfg, lync_cfg) = write_configs(o, pbx_port, sip_port, metrics_port)?;
    let pbx = spawn(
        &binary("pbx-sim")?,
        &["--config", &pbx_cfg.to_string_lossy()],
        &o.out.join("pbx-sim.log"),
    )?;
    // Let the PBX listen before the gateway connects (it retries anyway).
    listening(pbx_port, "the PBX simulator").await?;
    let threads = o.threads.max(1).to_string();
    let gw = spawn(
        &binary("rcc-gateway")?,
        &["--config", &gw_cfg.to_string_lossy(), "--threads", &threads],
        &o.out.join("gateway.log"),
    )?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let gw_pid = gw.0.id();
    let pbx_pid = pbx.0.id();
    let base = sample(gw_pid)
        .ok_or_else(|| anyhow::anyhow!("the gateway process is not running (see gateway.log)"))?;
    let csv_path = o.out.join("load.csv");
    let mut generator = Command::new(binary("lync-sim")?)
        .args([
            "load",
            "--config",
            &lync_cfg.to_string_lossy(),
            "--users",
            &o.users.to_string(),
            "--endpoints",
            &o.endpoints.to_string(),
            "--first-extension",
            "100000",
            "--line",
            "tel:+1425{ext};ext={ext}",
            "--line-server",
            "sip:rccgateway@rcc.contoso.com",
            "--signin-rate",
            &o.signin_rate.to_string(),
            "--call-rate",
            &o.call_rate.to_string(),
            "--duration",
            &o.duration.to_string(),
            "--callee",
            "tel:+15550100",
            "--pattern",
            &o.pattern,
            "--csv",
            &csv_path.to_string_lossy(),
            "--json",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting lync-sim load")?;
    let gen_pid = generator.id();
    let placement = if o.pin {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        anyhow::ensure!(
            cpus >= 2,
            "--pin needs at least two CPUs; this machine has {cpus}"
        );
        let rest = if cpus == 2 {
            "1".to_owned()
        } else {
            format!("1-{}", cpus - 1)
        };
        pin(gw_pid, "0", "gateway")?;
        pin(pbx_pid, &rest, "PBX simulator")?;
        pin(gen_pid, &rest, "load generator")?;
        format!("CPU placement: gateway alone on CPU 0, PBX simulator and generator on CPUs {rest}")
    } else {
        "CPU placement: the three processes share every CPU".to_owned()
    };
    let stderr = generator.stderr.take();
    let progress = std::thread::spawn(move || {
        let mut lines = Vec::new();
        if let Some(e) = stderr {
            for line in BufReader::new(e).lines().map_while(Result::ok) {
                eprintln!("{line}");
                lines.push(line);
            }
        }
        lines
    });
    let started = Instant::now();
    let mut samples: Vec<(f64, ProcSample, ProcSample, ProcSample)> = Vec::new();
    loop {
        if let Ok(Some(_)) = generator.try_wait() {
            break;
        }
        let t = started.elapsed().as_secs_f64();
        samples.push((
            t,
            sample(gw_pid).unwrap_or_default(),
            sample(pbx_pid).unwrap_or_default(),
            sample(gen_pid).unwrap_or_default(),
        ));
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let out = generator
        .wait_with_output()
        .context("waiting for lync-sim load")?;
    let _ = progress.join();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json_line = stdout.lines().last().unwrap_or_default();
    let summary: serde_json::Value = serde_json::from_str(json_line)
        .with_context(|| format!("lync-sim load did not report a summary: {stdout}"))?;
    let end = sample(gw_pid).unwrap_or_default();
    // Let event INFOs still in flight land, then read the gateway's own counters.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = scrape(metrics_port).await.unwrap_or_default();
    drop(gw);
    drop(pbx);

    let num = |k: &str| {
        summary
            .get(k)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0)
    };
    let arr = |k: &str, i: usize| {
        summary
            .get(k)
            .and_then(|v| v.get(i))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0)
    };
    let sessions = num("sessions_established");
    let peak_rss = samples
        .iter()
        .map(|s| s.1.rss_kib)
        .max()
        .unwrap_or(0)
        .max(end.rss_kib);
    let rss_per_session = if sessions > 0.0 {
        (peak_rss.saturating_sub(base.rss_kib)) as f64 / sessions
    } else {
        0.0
    };
    let requests = num("requests");
    let signin_s = num("signin_seconds");
    // CPU of each process over the call phase (after the sign-in storm).
    let phase = |proc_of: fn(&(f64, ProcSample, ProcSample, ProcSample)) -> f64| {
        let after: Vec<_> = samples.iter().filter(|s| s.0 >= signin_s + 1.0).collect();
        match (after.first(), after.last()) {
            (Some(a), Some(b)) => proc_of(b) - proc_of(a),
            _ => 0.0,
        }
    };
    let gw_cpu_calls = phase(|s| s.1.cpu_s);
    let pbx_cpu_calls = phase(|s| s.2.cpu_s);
    let gen_cpu_calls = phase(|s| s.3.cpu_s);
    let (echo50, echo99) = echo_floor(1024, 5000).await?;
    let p50_us = arr("request_ms", 0) * 1000.0;

    let mut csv = String::from(
        "t_s,gateway_cpu_s,gateway_rss_kib,pbx_cpu_s,pbx_rss_kib,generator_cpu_s,generator_rss_kib\n",
    );
    for (t, g, p, l) in &samples {
        let _ = writeln!(
            csv,
            "{t:.1},{:.2},{},{:.2},{},{:.2},{}",
            g.cpu_s, g.rss_kib, p.cpu_s, p.rss_kib, l.cpu_s, l.rss_kib
        );
    }
    std::fs::write(o.out.join("processes.csv"), csv)?;
    if let Ok(rows_csv) = std::fs::read_to_string(&csv_path) {
        let rows: Vec<rcc_simulators::lync::load::Row> = rows_csv
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                Some(rcc_simulators::lync::load::Row {
                    t: f.first()?.parse().ok()?,
                    phase: if f.get(1)? == &"calls" {
                        "calls"
                    } else {
                        "sign-in"
                    },
                    sessions: f.get(2)?.parse().ok()?,
                    requests: f.get(3)?.parse().ok()?,
                    failures: f.get(4)?.parse().ok()?,
                    p50_ms: f.get(5)?.parse().ok()?,
                    p99_ms: f.get(6)?.parse().ok()?,
                    events: f.get(7)?.parse().ok()?,
                })
            })
            .collect();
        let title = format!(
            "rcc-gateway under load ({}, {} thread{}, {})",
            if o.tls { "mutual TLS" } else { "TCP" },
            o.threads.max(1),
            if o.threads > 1 { "s" } else { "" },
            o.pattern
        );
        std::fs::write(
            o.out.join("load.svg"),
            crate::plot::load_svg(&rows, &title)?,
        )?;
    }
    let mut r = String::new();
    let _ = writeln!(
        r,
        "Front End to gateway over {}; gateway on {} runtime thread{}",
        if o.tls { "mutual TLS" } else { "TCP" },
        o.threads.max(1),
        if o.threads > 1 { "s" } else { "" }
    );
    let _ = writeln!(r, "{placement}");
    let _ = writeln!(
        r,
        "sessions: {} established, {} failed; sign-in storm {:.1} s (p50 {:.1} ms, p99 {:.1} ms)",
        sessions,
        num("sessions_failed"),
        signin_s,
        arr("signin_ms", 0),
        arr("signin_ms", 2)
    );
    let _ = writeln!(
        r,
        "gateway memory: {:.1} MiB at start, {:.1} MiB peak: {:.2} KiB per session",
        base.rss_kib as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        rss_per_session
    );
    let _ = writeln!(
        r,
        "requests: {} at {:.0}/s end to end; response p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms; {} failures",
        requests,
        num("requests_per_second"),
        arr("request_ms", 0),
        arr("request_ms", 1),
        arr("request_ms", 2),
        arr("request_ms", 3),
        num("failures")
    );
    let _ = writeln!(
        r,
        "events: {} received by clients; {} rule violations seen",
        num("events"),
        num("violations")
    );
    let counter = |name: &str| metric(&metrics, &format!("rcc_gateway_{name}_total"));
    let sent = counter("events_sent");
    let _ = writeln!(
        r,
        "event path (gateway counters): {} CSTA events from the PBX ({} dropped as repeats), {} event INFOs sent, {} unanswered; {}",
        counter("pbx_events"),
        counter("repeated_events"),
        sent,
        counter("event_timeouts"),
        if metrics.is_empty() {
            "the gateway's metrics could not be read".to_owned()
        } else if sent == num("events") {
            "every INFO sent reached a client".to_owned()
        } else {
            format!(
                "{} INFOs sent, {} counted by the clients",
                sent,
                num("events")
            )
        }
    );
    let _ = writeln!(
        r,
        "overload (gateway counters): {} requests answered 503 on congested connections, {} CSTA requests refused as busy (pbx.max_in_flight), {} connections closed for overflow",
        metric_labelled(
            &metrics,
            "rcc_gateway_refused_total",
            "reason=\"congested\""
        ),
        metric_labelled(
            &metrics,
            "rcc_gateway_csta_requests_total",
            "outcome=\"busy\""
        ),
        counter("queue_overflows"),
    );
    let residence = |input: &str, q: f64| {
        let label = format!("input=\"{input}\"");
        match bucket_quantile(&metrics, "rcc_gateway_residence_seconds", &label, q) {
            Some(s) if s.is_finite() => format!("≤ {:.0} µs", s * 1e6),
            Some(_) => "above the largest bucket".to_owned(),
            None => "no samples".to_owned(),
        }
    };
    let _ = writeln!(
        r,
        "gateway's own time per message (read to outputs queued; a request is one SIP and one PBX step): SIP in p50 {}, p99 {}; PBX in p50 {}, p99 {}",
        residence("sip", 0.5),
        residence("sip", 0.99),
        residence("pbx", 0.5),
        residence("pbx", 0.99)
    );
    let added = |q: f64| match bucket_quantile(&metrics, "rcc_gateway_added_seconds", "", q) {
        Some(s) if s.is_finite() => format!("≤ {:.0} µs", s * 1e6),
        Some(_) => "above the largest bucket".to_owned(),
        None => "no samples".to_owned(),
    };
    let _ = writeln!(
        r,
        "gateway-added time per CSTA request (INFO read to request queued, plus answer read to 200 OK queued): p50 {}, p90 {}, p99 {}",
        added(0.5),
        added(0.9),
        added(0.99)
    );
    let _ = writeln!(
        r,
        "CPU during calls: gateway {:.2} s, PBX simulator {:.2} s, generator {:.2} s; gateway {:.1} µs per request",
        gw_cpu_calls,
        pbx_cpu_calls,
        gen_cpu_calls,
        if requests > 0.0 {
            gw_cpu_calls * 1e6 / requests
        } else {
            0.0
        }
    );
    let _ = writeln!(
        r,
        "loopback TCP echo of 1 KiB (same run): p50 {echo50:.1} µs, p99 {echo99:.1} µs; request p50 / echo p50 = {:.1}",
        if echo50 > 0.0 { p50_us / echo50 } else { 0.0 }
    );
    let _ = writeln!(
        r,
        "written: {}, {}, {}",
        o.out.join("load.csv").display(),
        o.out.join("processes.csv").display(),
        o.out.join("load.svg").display()
    );
    Ok(LoadReport {
        text: r,
        gateway_us_per_request: if requests > 0.0 {
            gw_cpu_calls * 1e6 / requests
        } else {
            0.0
        },
    })
}

/// TCP and then mutual TLS with the same options, each in its own folder under `o.out`, and
/// the ratio of the gateway's CPU per request: what TLS costs, measured in one run.
pub async fn run_both(o: &LoadOptions) -> anyhow::Result<String> {
    let mut text = String::new();
    let mut per_request = Vec::new();
    for tls in [false, true] {
        let mut one = o.clone();
        one.tls = tls;
        one.out = o.out.join(if tls { "tls" } else { "tcp" });
        let report = run(&one).await?;
        text.push_str(&report.text);
        text.push('\n');
        per_request.push(report.gateway_us_per_request);
    }
    let (tcp, tls) = (per_request[0], per_request[1]);
    let _ = writeln!(
        text,
        "gateway CPU per request: TCP {tcp:.1} µs, mutual TLS {tls:.1} µs; TLS / TCP = {:.2}",
        if tcp > 0.0 { tls / tcp } else { 0.0 }
    );
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::metric;

    #[test]
    fn bucket_quantile_finds_the_bucket_holding_the_quantile() {
        let text = "x_bucket{le=\"0.001\",input=\"sip\"} 50\n\
                    x_bucket{le=\"0.002\",input=\"sip\"} 98\n\
                    x_bucket{le=\"0.004\",input=\"sip\"} 100\n\
                    x_bucket{le=\"+Inf\",input=\"sip\"} 100\n\
                    x_bucket{le=\"+Inf\",input=\"pbx\"} 0\n";
        let q = |q| super::bucket_quantile(text, "x", "input=\"sip\"", q);
        assert_eq!(q(0.5), Some(0.001));
        assert_eq!(q(0.98), Some(0.002));
        assert_eq!(q(0.99), Some(0.004));
        assert_eq!(
            super::bucket_quantile(text, "x", "input=\"pbx\"", 0.5),
            None
        );
    }

    #[test]
    fn metric_sums_labelled_samples_and_ignores_longer_names() {
        let text = "# TYPE events_sent counter\nevents_sent_total 12\n\
                    events_sent_total_other 99\nsip_responses_total{code=\"200\"} 3\n\
                    sip_responses_total{code=\"481\"} 2\n";
        assert_eq!(metric(text, "events_sent_total"), 12.0);
        assert_eq!(metric(text, "sip_responses_total"), 5.0);
        assert_eq!(metric(text, "absent_total"), 0.0);
    }

    #[test]
    fn metric_labelled_sums_only_samples_with_the_label() {
        let text = "refused_total{reason=\"congested\"} 4\nrefused_total{reason=\"capacity\"} 2\n\
                    req_total{service=\"MakeCall\",outcome=\"busy\"} 3\n\
                    req_total{service=\"HoldCall\",outcome=\"busy\"} 1\n\
                    req_total{service=\"HoldCall\",outcome=\"ok\"} 9\n";
        let m = |n, l| super::metric_labelled(text, n, l);
        assert_eq!(m("refused_total", "reason=\"congested\""), 4.0);
        assert_eq!(m("req_total", "outcome=\"busy\""), 4.0);
        assert_eq!(m("req_total", "outcome=\"lost\""), 0.0);
    }
}
