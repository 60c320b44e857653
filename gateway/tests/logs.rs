//! The binary's log lines: no ANSI colour when stdout is not a terminal (a file, a pipe, the
//! journal), and JSON lines whose values are plain strings and numbers (no `Some(…)`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::free_port;

/// Starts the gateway with `args`, reads its stdout until the ready line, stops it; the lines.
fn lines_until_ready(name: &str, args: &[&str]) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("rcc-gw-logs-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_tcp = \"127.0.0.1:{}\"\nhost = \"127.0.0.1\"\ntrusted_peer = [{{ ip = \"127.0.0.1\" }}]\n[pbx]\naddress = \"127.0.0.1:{}\"\n",
            free_port(),
            free_port()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rcc-gateway"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the gateway starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let ready = l.contains("rcc-gateway ready");
                lines.push(l);
                if ready {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        lines.iter().any(|l| l.contains("rcc-gateway ready")),
        "no ready line in {lines:?}"
    );
    lines
}

#[test]
fn text_logs_into_a_pipe_carry_no_colour() {
    let lines = lines_until_ready("text", &[]);
    for l in &lines {
        assert!(
            !l.contains('\u{1b}'),
            "ANSI escape in a piped log line: {l:?}"
        );
    }
}

#[test]
fn json_logs_carry_plain_values() {
    let lines = lines_until_ready("json", &["--log-format", "json"]);
    let ready: serde_json::Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "rcc-gateway ready")
        .expect("the ready line is JSON");
    let tcp = ready["fields"]["tcp"].as_str().expect("tcp is a string");
    assert!(
        tcp.parse::<std::net::SocketAddr>().is_ok(),
        "tcp should be a plain address, not {tcp:?}"
    );
    assert!(
        ready["fields"].get("tls").is_none(),
        "no TLS listener, so no tls field: {ready}"
    );
    for l in &lines {
        assert!(
            serde_json::from_str::<serde_json::Value>(l).is_ok(),
            "a log line is not JSON: {l}"
        );
        assert!(!l.contains("Some("), "a Debug Option in {l}");
    }
}
