//! The real pidgin-sipe client in the lab: `tools/sipe-host/sipe-host.c` (a headless libpurple
//! host for the `pidgin-sipe` plugin, Debian packages `pidgin-sipe` and `libpurple-dev`) built
//! with the system's C compiler, started against the simulated pool's client port, and driven
//! line by line: it prints `event …` lines and sipe's own debug trace (`debug <category>: …`),
//! and takes `dial <number>` and `quit` on its standard input.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The host program's source, in the repository.
const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/sipe-host/sipe-host.c");
/// Where Debian installs the plugin.
const PLUGIN: &str = "/usr/lib/purple-2/libsipe.so";
/// Set to leave the pidgin-sipe scenarios out where the packages cannot be installed.
pub const WITHOUT_SIPE: &str = "RCC_LAB_WITHOUT_SIPE";

/// Whether the pidgin-sipe scenarios were excluded explicitly ([`WITHOUT_SIPE`]), with the
/// message to print.
pub fn excluded() -> Option<String> {
    std::env::var_os(WITHOUT_SIPE).map(|_| {
        format!("{WITHOUT_SIPE} is set: the pidgin-sipe scenarios are left out of this run")
    })
}

/// `sipe-host`, built once per process into the temporary folder.
pub fn host() -> anyhow::Result<PathBuf> {
    static HOST: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rcc-lab-sipe-host-{}", std::process::id()));
        build(&dir).map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}

/// Builds `sipe-host` into `dir` and returns its path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let missing = || {
        format!(
            "the pidgin-sipe scenarios need the Debian packages pidgin-sipe, libpurple-dev, \
             pkg-config and a C compiler (apt-get install pidgin-sipe libpurple-dev pkg-config gcc); \
             set {WITHOUT_SIPE}=1 to leave them out"
        )
    };
    if !Path::new(PLUGIN).exists() {
        bail!("{PLUGIN} is missing: {}", missing());
    }
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "purple", "glib-2.0"])
        .output()
        .with_context(missing)?;
    if !flags.status.success() {
        bail!(
            "pkg-config purple: {}; {}",
            String::from_utf8_lossy(&flags.stderr).trim(),
            missing()
        );
    }
    std::fs::create_dir_all(dir)?;
    let out = dir.join("sipe-host");
    let flags = String::from_utf8_lossy(&flags.stdout).into_owned();
    let built = Command::new("cc")
        .args(["-O1", "-Wall", "-Wextra", "-o"])
        .arg(&out)
        .arg(SOURCE)
        .args(flags.split_whitespace())
        .args(["-rdynamic", "-ldl"])
        .output()
        .with_context(missing)?;
    if !built.status.success() {
        bail!(
            "building {SOURCE} failed:\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    Ok(out)
}

/// A running pidgin-sipe client, killed when dropped.
pub struct SipeClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl SipeClient {
    /// Signs `user` (`alice@contoso.lab`) in at the pool's client port `server`, with its
    /// libpurple folder in `dir`.
    pub fn start(host: &Path, server: SocketAddr, user: &str, dir: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(host)
            .args(["--server", &server.to_string(), "--user", user, "--dir"])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", host.display()))?;
        let stdout = child.stdout.take().context("sipe-host stdout")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        Ok(SipeClient {
            stdin: child.stdin.take(),
            child,
            lines,
        })
    }

    /// Everything it printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Index of the first line from `from` on that contains `needle`, waiting up to `within`.
    pub async fn wait_for(
        &self,
        needle: &str,
        from: usize,
        within: Duration,
    ) -> anyhow::Result<usize> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self
                .lines()
                .iter()
                .enumerate()
                .skip(from)
                .find_map(|(i, l)| l.contains(needle).then_some(i))
            {
                return Ok(i);
            }
            if Instant::now() > deadline {
                bail!(
                    "pidgin-sipe did not print {needle:?} within {within:?}; it printed:\n{}",
                    self.tail(60)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `n` lines, for an error message.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Places an RCC call from the user's line (MakeCall in an INFO).
    pub fn dial(&mut self, number: &str) -> anyhow::Result<()> {
        self.command(&format!("dial {number}"))
    }

    /// Signs off and waits for the host to end (5 s at most).
    pub async fn quit(mut self) -> anyhow::Result<Vec<String>> {
        self.command("quit")?;
        let deadline = Instant::now() + Duration::from_secs(8);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("sipe-host did not end after quit:\n{}", self.tail(30));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(self.lines())
    }

    fn command(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("sipe-host's input is closed")?;
        writeln!(stdin, "{line}").context("writing to sipe-host")?;
        stdin.flush().context("writing to sipe-host")
    }
}

impl Drop for SipeClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
