//! `/metrics` of the running binary, checked by the real tools: `promtool check metrics` on
//! the classic text format (the default) and the OpenMetrics parser of the Python
//! prometheus_client on the OpenMetrics answer (asked for by Accept); the families an operator
//! alerts on are there before anything happened; the shipped alert rules pass `promtool check
//! rules` and their unit tests; every metric the Grafana dashboard and the alerts query exists.
//! `tools/test` installs promtool (Debian `prometheus`) and `python3-prometheus-client`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::free_port;

struct Gateway {
    child: Child,
    http: String,
    sip_tcp: u16,
    dir: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The binary with a TLS listener (a fresh certificate for gw.lab.example), a TCP listener,
/// a PBX address nothing listens on, and the HTTP endpoint.
fn start(name: &str) -> Gateway {
    let dir = std::env::temp_dir().join(format!("rcc-gw-metrics-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let id =
        rcgen::generate_simple_self_signed(vec!["gw.lab.example".to_owned()]).expect("certificate");
    std::fs::write(dir.join("gw.crt"), id.cert.pem()).expect("cert");
    std::fs::write(dir.join("gw.key"), id.signing_key.serialize_pem()).expect("key");
    let (http, sip_tcp, sip_tls, pbx) = (free_port(), free_port(), free_port(), free_port());
    let toml = format!(
        r#"[sip]
listen_tls = "127.0.0.1:{sip_tls}"
listen_tcp = "127.0.0.1:{sip_tcp}"
host = "gw.lab.example"
trusted_peer = [{{ ip = "127.0.0.1" }}]
[sip.tls]
cert = "{cert}"
key = "{key}"
client_cert = "none"
[pbx]
address = "127.0.0.1:{pbx}"
reconnect_min_ms = 50
reconnect_max_ms = 100
[observe]
http = "127.0.0.1:{http}"
"#,
        cert = dir.join("gw.crt").display(),
        key = dir.join("gw.key").display(),
    );
    let config = dir.join("gateway.toml");
    std::fs::write(&config, toml).expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_rcc-gateway"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("the gateway binary starts");
    let gw = Gateway {
        child,
        http: format!("http://127.0.0.1:{http}/metrics"),
        sip_tcp,
        dir,
    };
    // The HTTP endpoint answers once the listeners are bound.
    scrape_until(&gw, "the metrics endpoint", |_| true);
    gw
}

fn scrape(url: &str, accept: Option<&str>) -> Option<String> {
    let mut req = ureq::get(url);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    req.call().ok()?.body_mut().read_to_string().ok()
}

/// Scrapes until `done` holds for the classic exposition (10 s at most).
fn scrape_until(gw: &Gateway, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(text) = scrape(&gw.http, None) {
            if done(&text) {
                return text;
            }
            last = text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not seen within 10 s in\n{last}");
}

/// A Debian package's tool: /usr/bin first (a python3 of pyenv or a venv has no Debian
/// modules), then PATH.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(PathBuf::from("/usr/bin").join(name))
        .chain(std::env::split_paths(&path).map(|d| d.join(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed (apt-get install {package}); tools/test installs it")
        })
}

fn run_with_input(cmd: &mut Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("tool runs")
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn live_metrics_pass_promtool_and_the_openmetrics_parser() {
    let promtool = tool("promtool", "prometheus");
    let gw = start("live");
    // The PBX never answers: attempts fail, and none of them is a link loss.
    let text = scrape_until(&gw, "a failed PBX connection attempt", |t| {
        value(t, "rcc_gateway_pbx_connect_failures_total").is_some_and(|v| v >= 1.0)
    });
    assert_eq!(
        value(&text, "rcc_gateway_pbx_link_losses_total"),
        Some(0.0),
        "{text}"
    );

    let lint = run_with_input(Command::new(&promtool).args(["check", "metrics"]), &text);
    assert!(
        lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    let om = scrape(
        &gw.http,
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .expect("OpenMetrics scrape");
    assert!(om.trim_end().ends_with("# EOF"), "not OpenMetrics:\n{om}");
    let parsed = run_with_input(
        Command::new(tool("python3", "python3")).args([
            "-c",
            "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as f\nprint(len(list(f(sys.stdin.read()))))",
        ]),
        &om,
    );
    assert!(
        parsed.status.success(),
        "the OpenMetrics parser refused the exposition (apt-get install python3-prometheus-client): {}",
        String::from_utf8_lossy(&parsed.stderr)
    );

    for series in [
        "rcc_gateway_build_info{version=\"0.1.0\"}",
        "rcc_gateway_sessions_ended_total{reason=\"expired\"}",
        "rcc_gateway_refused_total{reason=\"capacity\"}",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(value(&text, series).is_some(), "{series} missing:\n{text}");
    }
    let left = value(&text, "rcc_gateway_tls_certificate_expiry_seconds").expect("expiry");
    // rcgen's default validity runs to 4096; what matters is that it is the certificate's.
    assert!(left > 365.0 * 86400.0, "certificate expiry {left}");

    // A trusted peer's connection is counted under its address while it is open.
    let conn = std::net::TcpStream::connect(("127.0.0.1", gw.sip_tcp)).expect("connect");
    scrape_until(&gw, "the open connection", |t| {
        value(t, "rcc_gateway_connections{peer=\"127.0.0.1\"}") == Some(1.0)
    });
    drop(conn);
    scrape_until(&gw, "the connection closed", |t| {
        value(t, "rcc_gateway_connections{peer=\"127.0.0.1\"}") == Some(0.0)
    });
}

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

#[test]
fn the_alert_rules_check_and_pass_their_unit_tests() {
    let promtool = tool("promtool", "prometheus");
    let dir = deploy().join("prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Metric names in a PromQL expression (ours and the process ones).
fn names_in(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\b(rcc_gateway_[a-z_]+|process_[a-z_]+)").expect("regex");
    re.find_iter(expr).map(|m| m.as_str().to_owned()).collect()
}

/// Series names of an exposition's samples.
fn sample_names(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split([' ', '{']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_dashboard_and_the_alerts_query_only_metrics_the_gateway_exports() {
    // Families with labels appear once they have a series: a connection for the live
    // binary's, a call flow through the gateway core (in the in-memory lab) for the rest.
    let gw = start("names");
    let conn = std::net::TcpStream::connect(("127.0.0.1", gw.sip_tcp)).expect("connect");
    let live = scrape_until(&gw, "the connection and the process metrics", |t| {
        t.contains("process_open_fds") && t.contains("rcc_gateway_connections{")
    });
    drop(conn);
    let mut lab = rcc_testkit::MemLab::new().expect("in-memory lab");
    let alice = lab.signed_in("alice", "a1").expect("alice signs in");
    lab.dial(alice, "alice", "tel:+14255551002")
        .expect("alice dials bob");
    let mut names = sample_names(&live);
    names.extend(sample_names(&lab.gateway_metrics()));
    let exported = |name: &str| names.iter().any(|n| n == name);
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy().join("grafana/rcc-gateway.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() > 10, "{} queries", exprs.len());
    let alerts = std::fs::read_to_string(deploy().join("prometheus/alerts.yml")).expect("alerts");
    exprs.extend(
        alerts
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr:"))
            .map(str::to_owned),
    );
    for e in &exprs {
        for name in names_in(e) {
            assert!(
                exported(&name),
                "{name} (in {e}) is not exported; exported: {names:?}"
            );
        }
    }
}
