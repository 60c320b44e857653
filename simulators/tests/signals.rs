//! The `pbx-sim` binary and its signals: SIGHUP does not end it (it says there is nothing to
//! reload), SIGTERM ends it gracefully with exit status 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn next_with(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("pbx-sim did not log {needle:?}");
}

fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{signal} {pid}");
}

#[test]
fn pbx_sim_survives_sighup_and_stops_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("pbx-sim-signals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("pbx.toml");
    std::fs::write(
        &config,
        "profile = \"generic\"\n[listen]\ntcp = \"127.0.0.1:0\"\n",
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pbx-sim"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("pbx-sim starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    next_with(&lines, "pbx-sim ready");
    kill(child.id(), "HUP");
    next_with(&lines, "nothing to reload");
    assert!(
        child.try_wait().expect("wait").is_none(),
        "still running after SIGHUP"
    );
    kill(child.id(), "TERM");
    next_with(&lines, "signal=\"SIGTERM\"");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
