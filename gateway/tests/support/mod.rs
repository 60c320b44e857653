//! What the binary tests share: a free port, a child process killed however the test ends,
//! waiting for a listener.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// A TCP port free on loopback at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Kills (and reaps) the process however the test ends, a panic included.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something listens on the loopback `port` (10 s at most).
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A gateway process and its folder, both gone when dropped.
pub struct Gateway {
    child: std::process::Child,
    /// The folder: `gateway.toml`, `gateway.log` (its stdout) and whatever the test put there.
    pub dir: std::path::PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Gateway {
    /// Starts `rcc-gateway` on `config` (a gateway.toml body, `{dir}` replaced by its folder,
    /// which `setup` may fill first), under `ulimit -n files` when given.
    pub fn start(
        name: &str,
        config: &str,
        files: Option<u32>,
        setup: impl Fn(&std::path::Path),
    ) -> Gateway {
        let dir = std::env::temp_dir().join(format!("rcc-gw-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        setup(&dir);
        let path = dir.join("gateway.toml");
        std::fs::write(&path, config.replace("{dir}", &dir.display().to_string())).expect("config");
        let log = std::fs::File::create(dir.join("gateway.log")).expect("log");
        let limit = files.map_or(String::new(), |n| format!("ulimit -n {n} && "));
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{limit}exec \"$0\" --config \"$1\""))
            .arg(env!("CARGO_BIN_EXE_rcc-gateway"))
            .arg(&path)
            .stdout(log)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the gateway starts");
        Gateway { child, dir }
    }

    /// Its process ID (the shell `exec`s it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the gateway's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()))
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }
}

/// A gateway.toml with one TCP listener at `listen`, trusting 127.0.0.1, and a PBX address
/// nothing listens on.
pub fn tcp_config(listen: &str) -> String {
    format!(
        "[sip]\nlisten_tcp = \"{listen}\"\nhost = \"127.0.0.1\"\ntrusted_peer = [{{ ip = \"127.0.0.1\" }}]\n[pbx]\naddress = \"127.0.0.1:{}\"\n",
        free_port()
    )
}
