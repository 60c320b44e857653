//! The Gherkin conformance suite (`features/`) as part of `cargo test`:
//!
//! 1. every scenario against the in-process lab (our gateway, both simulators);
//! 2. every scenario with the gateway in the *external* position, as a lab validates a
//!    vendor's gateway: the `rcc-gateway` binary in its own process, configured with the
//!    gateway.toml `rcc-lab lab-config` prints for a lab.toml, over TCP and over mutual TLS with
//!    the lab's generated certificates, with the runner's default options. Every applicable
//!    scenario must pass; the rest must be listed as not applicable with a reason;
//! 3. the same against a deliberately non-conforming gateway (ours behind a proxy that drops
//!    every HeldEvent): the run must fail, and its conformance report must name the failing
//!    capability and link the evidence.
//!
//! Writes the reports under `target/cucumber/`; prints the totals; exits non-zero on any
//! failure.

#[path = "../src/scenarios/mod.rs"]
mod scenarios;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rcc_lab::conformance::Verdict;
use rcc_lab::lab::LabOptions;
use rcc_lab::labconfig::LabConfig;
use rcc_lab::labfile::LabFile;
use rcc_lab::report::Status;
use rcc_lab::selection::Selection;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn port() -> anyhow::Result<u16> {
    rcc_lab::load::free_port()
}

/// A lab.toml for an external gateway at `address`, and the gateway.toml `lab-config` makes
/// of it (listening on `listen`, which differs from `address` when a proxy stands between).
fn vendor_lab(
    dir: &Path,
    transport: &str,
    address: SocketAddr,
    listen: SocketAddr,
) -> anyhow::Result<(LabFile, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let pbx_listen = SocketAddr::from(([127, 0, 0, 1], port()?));
    let lab_path = dir.join("lab.toml");
    std::fs::write(
        &lab_path,
        format!(
            "[gateway]\nmode = \"external\"\naddress = \"{address}\"\ntransport = \"{transport}\"\n\
             fqdn = \"{}\"\npbx_listen = \"{pbx_listen}\"\n",
            rcc_lab::lab::GATEWAY_FQDN
        ),
    )?;
    let file = LabFile::load(&lab_path)?;
    let gateway_toml = dir.join("gateway.toml");
    if listen == address {
        // As a user does it: the command writes the gateway.toml.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rcc-lab"))
            .arg("lab-config")
            .arg("--lab")
            .arg(&lab_path)
            .arg("--gateway-toml")
            .arg(&gateway_toml)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "rcc-lab lab-config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        // A proxy stands at `address`; the gateway listens behind it.
        let mut plan = LabConfig::prepare(&file, &lab_path)?;
        plan.address = listen;
        std::fs::write(&gateway_toml, plan.gateway_toml())?;
    }
    Ok((file, gateway_toml))
}

/// Starts the rcc-gateway binary with a configuration; it is killed when the guard drops.
async fn gateway_process(
    config: &Path,
    listen: SocketAddr,
    dir: &Path,
) -> anyhow::Result<rcc_lab::load::Killed> {
    let bin = rcc_lab::load::binary("rcc-gateway")?;
    let gw = rcc_lab::load::spawn(
        &bin,
        &["--config", &config.to_string_lossy()],
        &dir.join("gateway.log"),
    )?;
    rcc_lab::load::listening(listen.port(), "the rcc-gateway process").await?;
    Ok(gw)
}

/// A gateway that does not conform: it relays between the pool and `gateway` and drops every
/// message from the gateway whose body holds `<HeldEvent`.
async fn dropping_proxy(listen: SocketAddr, gateway: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tokio::spawn(async move {
        while let Ok((pool, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(upstream) = tokio::net::TcpStream::connect(gateway).await else {
                    return;
                };
                let (mut pool_rd, mut pool_wr) = pool.into_split();
                let (mut gw_rd, mut gw_wr) = upstream.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut pool_rd, &mut gw_wr).await;
                });
                let mut framer =
                    rcc_protocol::sip::StreamFramer::new(rcc_protocol::sip::Limits::default());
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = gw_rd.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    framer.push(&buf[..n]);
                    while let Ok(Some(item)) = framer.next_item() {
                        let rcc_protocol::sip::StreamItem::Message(m) = item else {
                            continue;
                        };
                        if m.body.windows(10).any(|w| w == b"<HeldEvent") {
                            continue;
                        }
                        if pool_wr.write_all(&m.to_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(())
}

fn options(file: &LabFile) -> LabOptions {
    file.options().unwrap_or_else(|e| {
        eprintln!("lab.toml: {e:#}");
        std::process::exit(2);
    })
}

/// Checks a run against a conforming external gateway; returns the failures found.
fn check_conforming(what: &str, outcome: &scenarios::RunOutcome, report: &Path) -> usize {
    let mut failures = outcome.failed();
    println!("{what}: {}", outcome.totals());
    let na: Vec<_> = outcome
        .scenarios
        .iter()
        .filter(|s| matches!(s.status, Status::NotApplicable(_)))
        .collect();
    if na.is_empty() || na.iter().any(|s| s.status.detail().is_empty()) {
        println!("{what}: the not-applicable scenarios must be listed, each with a reason");
        failures += 1;
    }
    let restart = outcome
        .conformance
        .capabilities
        .iter()
        .find(|c| c.id == "gateway-restart");
    // (Not run when the tags leave it out.)
    if !matches!(
        restart.map(|c| c.verdict),
        Some(Verdict::NotApplicable | Verdict::NotRun)
    ) {
        println!("{what}: gateway restart should be not applicable to an external gateway");
        failures += 1;
    }
    let junit = std::fs::read_to_string(report.join("junit.xml")).unwrap_or_default();
    if !junit.contains(r#"<skipped message="not applicable: needs our gateway in process"#) {
        println!("{what}: junit.xml lacks the not-applicable scenarios as <skipped message>");
        failures += 1;
    }
    failures
}

/// Checks the run against the gateway that drops HeldEvents; returns the failures found.
fn check_non_conforming(outcome: &scenarios::RunOutcome, report: &Path) -> usize {
    let mut failures = 0;
    println!("non-conforming gateway: {}", outcome.totals());
    let json = std::fs::read_to_string(report.join("conformance.json")).unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let cap = |id: &str| {
        parsed["capabilities"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == id).cloned())
            .unwrap_or_default()
    };
    let hold = cap("hold-retrieve");
    let evidence = hold["evidence"][0]["report"].as_str().unwrap_or_default();
    if hold["verdict"] != "fail" || !evidence.starts_with("index.html#s-") {
        println!(
            "non-conforming gateway: conformance.json should fail hold-retrieve with evidence: {hold}"
        );
        failures += 1;
    }
    let failing: Vec<&str> = parsed["capabilities"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["verdict"] == "fail")
                .filter_map(|c| c["id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if failing != ["hold-retrieve"] {
        println!("non-conforming gateway: only hold-retrieve should fail, not {failing:?}");
        failures += 1;
    }
    if cap("make-call")["verdict"] != "pass" {
        println!(
            "non-conforming gateway: make-call should still pass: {}",
            cap("make-call")
        );
        failures += 1;
    }
    let page = std::fs::read_to_string(report.join("index.html")).unwrap_or_default();
    let anchor = evidence.trim_start_matches("index.html#");
    let section = page
        .split("<section class=\"scenario")
        .find(|s| s.contains(&format!("id=\"{anchor}\"")))
        .unwrap_or_default();
    if !section.contains("class=\"failure\"") || !section.contains("expected: HeldEvent") {
        println!("non-conforming gateway: the failed scenario's section shows no failure text");
        failures += 1;
    }
    if outcome.failed() == 0 {
        println!("non-conforming gateway: the run passed");
        failures += 1;
    }
    failures
}

/// Every scenario in process with the Lync side of a real deployment (lab.toml `[lync]`, the
/// export fixtures `rcc-gateway lync-check` is tested with): the pool routes by the exported
/// static route and trusted application, the users sign in with the exported LineServerURI.
/// Everything passes, except that the scenarios which set the route or the trust themselves
/// are not applicable, saying why.
async fn real_topology_run(root: &Path, target: &Path) -> anyhow::Result<usize> {
    let dir = std::env::temp_dir().join(format!("rcc-lab-real-topology-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let lab_toml = dir.join("lab.toml");
    std::fs::write(
        &lab_toml,
        format!(
            "[lync]\nexports = {}\nregistrar = \"pool01.contoso.com\"\n",
            rcc_lab::labconfig::quoted(&root.join("gateway/tests/fixtures/lync-exports"))
        ),
    )?;
    let lab = options(&LabFile::load(&lab_toml)?);
    let _ = std::fs::remove_dir_all(&dir);
    let run = scenarios::RunOptions {
        features: root.join("features"),
        selection: Selection::with_tags(std::env::var("RCC_LAB_TAGS").ok().as_deref())?,
        report: target.join("report-real-topology"),
        concurrency: 4,
        fail_fast: false,
        lab,
    };
    let t = scenarios::run(&run).await?;
    println!("in-process lab, real topology: {}", t.totals());
    let mut failures = t.failed();
    let by_topology = |s: &&rcc_lab::report::ScenarioReport| matches!(&s.status, Status::NotApplicable(why) if why.contains("exported Lync topology"));
    // The HA tier brings its own routing (the lab's static route to Kamailio): it runs in the
    // in-process lab, not in one that plays a real topology's routing.
    let ha = |s: &&rcc_lab::report::ScenarioReport| matches!(&s.status, Status::NotApplicable(why) if why.contains("Kamailio tier"));
    for s in t.scenarios.iter().filter(|s| {
        matches!(s.status, Status::NotApplicable(_))
            && !s.tags.iter().any(|t| t == "needs-external-gateway")
            && !by_topology(s)
            && !ha(s)
    }) {
        println!("real topology: {} should apply", s.location());
        failures += 1;
    }
    let routing = t.scenarios.iter().filter(by_topology).count();
    if routing < 2 {
        println!("real topology: the routing scenarios should be not applicable ({routing} were)");
        failures += 1;
    }
    Ok(failures)
}

async fn external_runs(root: &Path, target: &Path) -> anyhow::Result<usize> {
    let mut failures = 0;
    let tags = std::env::var("RCC_LAB_EXTERNAL_TAGS").ok();
    for transport in ["tcp", "tls"] {
        let dir =
            std::env::temp_dir().join(format!("rcc-lab-vendor-{transport}-{}", std::process::id()));
        let sip = SocketAddr::from(([127, 0, 0, 1], port()?));
        let (file, config) = vendor_lab(&dir, transport, sip, sip)?;
        let _gw = gateway_process(&config, sip, &dir).await?;
        let report = target.join(format!("report-external-{transport}"));
        let run = scenarios::RunOptions {
            features: root.join("features"),
            selection: Selection::with_tags(tags.as_deref())?,
            report: report.clone(),
            concurrency: 4,
            fail_fast: false,
            lab: options(&file),
        };
        let outcome = scenarios::run(&run).await?;
        failures += check_conforming(
            &format!("external gateway over {transport}"),
            &outcome,
            &report,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    let dir = std::env::temp_dir().join(format!("rcc-lab-vendor-bad-{}", std::process::id()));
    let proxy = SocketAddr::from(([127, 0, 0, 1], port()?));
    let sip = SocketAddr::from(([127, 0, 0, 1], port()?));
    let (file, config) = vendor_lab(&dir, "tcp", proxy, sip)?;
    let _gw = gateway_process(&config, sip, &dir).await?;
    dropping_proxy(proxy, sip).await?;
    let report = target.join("report-non-conforming");
    let features = root.join("features");
    let dial = features.join("click_to_dial.feature");
    let answered = std::fs::read_to_string(&dial)?
        .lines()
        .position(|l| l.contains("Scenario: The called party answers"))
        .ok_or_else(|| anyhow::anyhow!("no answered scenario in {}", dial.display()))?;
    let selection = Selection {
        locations: vec![
            rcc_lab::selection::Location {
                file: features.join("hold.feature"),
                line: None,
            },
            rcc_lab::selection::Location {
                file: dial,
                line: Some(answered + 1),
            },
        ],
        ..Selection::default()
    };
    let run = scenarios::RunOptions {
        features: root.join("features"),
        selection,
        report: report.clone(),
        concurrency: 4,
        fail_fast: false,
        lab: options(&file),
    };
    let outcome = scenarios::run(&run).await?;
    failures += check_non_conforming(&outcome, &report);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(failures)
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("cucumber");
    let mut failures = 0;

    let embedded = scenarios::RunOptions {
        features: root.join("features"),
        selection: Selection::with_tags(std::env::var("RCC_LAB_TAGS").ok().as_deref())
            .expect("RCC_LAB_TAGS"),
        report: target.join("report"),
        concurrency: 4,
        fail_fast: false,
        lab: LabOptions::default(),
    };
    match scenarios::run(&embedded).await {
        Ok(t) => {
            println!("in-process lab: {}", t.totals());
            failures += t.failed();
            // Only the real-time variants written for external gateways stand aside here.
            let stray = t.scenarios.iter().filter(|s| {
                matches!(s.status, Status::NotApplicable(_))
                    && !s.tags.iter().any(|t| t == "needs-external-gateway")
            });
            for s in stray {
                println!("in-process lab: {} should apply", s.location());
                failures += 1;
            }
        }
        Err(e) => {
            eprintln!("the in-process run did not complete: {e:#}");
            std::process::exit(2);
        }
    }

    match real_topology_run(&root, &target).await {
        Ok(f) => failures += f,
        Err(e) => {
            eprintln!("the real-topology run did not complete: {e:#}");
            std::process::exit(2);
        }
    }

    match external_runs(&root, &target).await {
        Ok(f) => failures += f,
        Err(e) => {
            eprintln!("the external-gateway runs did not complete: {e:#}");
            std::process::exit(2);
        }
    }
    println!("{failures} failed");
    if failures > 0 {
        std::process::exit(1);
    }
}
