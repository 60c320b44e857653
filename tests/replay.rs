//! The capture corpus: every capture in `captures/` reads cleanly (no gaps, no framing loss), has
//! a one-line description, and its normalized ladder matches the snapshot beside it
//! (`captures/<name>.snap`); every replayable capture replays against a fresh in-process gateway
//! without divergence, and a deliberately changed behaviour is caught.

use std::path::PathBuf;

/// The corpus capture whose name contains `name`.
fn capture(name: &str) -> PathBuf {
    captures()
        .into_iter()
        .find(|p| p.to_string_lossy().contains(name))
        .unwrap_or_else(|| panic!("no capture named {name}"))
}

fn captures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "pcapng" || e == "pcap"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_corpus_has_at_least_twelve_described_captures() {
    let caps = captures();
    assert!(caps.len() >= 12, "only {} captures", caps.len());
    for c in &caps {
        let txt = c.with_extension("txt");
        let line = std::fs::read_to_string(&txt).unwrap_or_default();
        assert_eq!(
            line.lines().count(),
            1,
            "{} needs a one-line description",
            txt.display()
        );
    }
}

#[test]
fn every_capture_ladder_matches_its_snapshot() {
    for c in captures() {
        let cap = rcc_lab::capture::read(&c).unwrap_or_else(|e| panic!("{}: {e}", c.display()));
        let (steps, notes) = rcc_lab::capture::ladder(&cap);
        assert!(notes.is_empty(), "{}: {notes:?}", c.display());
        assert!(
            steps.iter().any(|s| s.label.starts_with("INVITE")),
            "{}: no INVITE",
            c.display()
        );
        let name = c
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("capture")
            .to_owned();
        let text = rcc_lab::capture::ladder_text(&steps, &notes);
        insta::with_settings!({
            snapshot_path => "../captures",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

#[test]
fn a_truncated_capture_is_reported_not_looped_on() {
    let src = captures().into_iter().next().expect("a capture");
    let bytes = std::fs::read(&src).expect("read");
    let cut = std::env::temp_dir().join(format!("rcc-lab-truncated-{}.pcapng", std::process::id()));
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).expect("write");
    let cap = rcc_lab::capture::read(&cut).expect("readable up to the cut");
    let _ = std::fs::remove_file(&cut);
    assert!(
        cap.problems.iter().any(|p| p.contains("truncated")),
        "{:?}",
        cap.problems
    );
}

#[test]
fn garbage_is_refused_with_a_reason() {
    let f = std::env::temp_dir().join(format!("rcc-lab-garbage-{}.pcap", std::process::id()));
    std::fs::write(&f, b"this is not a capture at all").expect("write");
    let err = rcc_lab::capture::read(&f)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&f);
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
}

/// Captures that cannot be replayed yet, each with the reason (never skipped silently). Empty
/// since the replayer drops and re-accepts the PBX link where a capture does.
const NOT_REPLAYABLE: &[(&str, &str)] = &[];

#[tokio::test]
async fn every_capture_replays_against_the_gateway() {
    let mut failures = Vec::new();
    for c in captures() {
        let name = c
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if let Some((_, why)) = NOT_REPLAYABLE.iter().find(|(n, _)| *n == name) {
            let cap = rcc_lab::capture::read(&c).expect("capture");
            let (steps, _) = rcc_lab::capture::ladder(&cap);
            assert_eq!(
                rcc_lab::replay::replayable(&steps),
                Err((*why).to_owned()),
                "{name}: the exclusion reason changed"
            );
            println!("{name}: not replayed: {why}");
            continue;
        }
        match rcc_lab::replay::replay_file(&c, None).await {
            Ok(rcc_lab::replay::Outcome::Matched { steps }) => {
                println!("{name}: {steps} steps matched")
            }
            Ok(rcc_lab::replay::Outcome::Diverged(d)) => failures.push(format!("{name}: {d}")),
            Err(e) => failures.push(format!("{name}: {e:#}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn a_reordered_event_is_caught() {
    let path = capture("02-click-to-dial");
    let cap = rcc_lab::capture::read(&path).expect("capture");
    let (mut steps, _) = rcc_lab::capture::ladder(&cap);
    // Pretend the gateway used to send OriginatedEvent before ServiceInitiatedEvent.
    let si = steps
        .iter()
        .position(|s| s.from == "GW" && s.label == "INFO (ServiceInitiatedEvent)")
        .expect("ServiceInitiated INFO");
    let or = steps
        .iter()
        .position(|s| s.from == "GW" && s.label == "INFO (OriginatedEvent)")
        .expect("Originated INFO");
    let (a, b) = (steps[si].clone(), steps[or].clone());
    steps[si] = b;
    steps[or] = a;
    let pbx = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let pbx_addr = pbx.local_addr().expect("addr");
    let sip = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let config = rcc_gateway::config::parse(&rcc_lab::replay::lab_gateway_toml(sip, pbx_addr))
        .expect("config");
    let _gw = rcc_gateway::server::GatewayHandle::start(config)
        .await
        .expect("gateway");
    match rcc_lab::replay::replay(&steps, sip, pbx)
        .await
        .expect("replay runs")
    {
        rcc_lab::replay::Outcome::Diverged(d) => {
            assert_eq!(
                d.step, si,
                "the divergence is reported where the order changed"
            );
            assert!(d.expected.contains("OriginatedEvent"), "{d}");
            assert!(d.actual.contains("ServiceInitiatedEvent"), "{d}");
            assert!(!d.context.is_empty());
        }
        rcc_lab::replay::Outcome::Matched { .. } => panic!("a reordered event went unnoticed"),
    }
}

#[tokio::test]
async fn update_records_the_new_behaviour_as_expected() {
    // On a copy: replaying with --update rewrites the capture from the gateway's own trace; the
    // new capture then replays cleanly and its ladder matches the old one (same behaviour).
    let src = captures()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("04-hold-retrieve"))
        .expect("the hold capture");
    let dir = std::env::temp_dir().join(format!("rcc-lab-update-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let copy = dir.join("hold.pcapng");
    std::fs::copy(&src, &copy).expect("copy");
    let before = {
        let cap = rcc_lab::capture::read(&src).expect("capture");
        let (steps, notes) = rcc_lab::capture::ladder(&cap);
        rcc_lab::capture::ladder_text(&steps, &notes)
    };
    let after = rcc_lab::replay::update_file(&copy, None)
        .await
        .expect("update");
    // How directions interleave depends on timing; each direction's own sequence does not.
    let direction = |text: &str, from: &str, to: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some(from) && w.next() == Some("->") && w.next() == Some(to)
            })
            .map(str::to_owned)
            .collect()
    };
    for (from, to) in [("FE", "GW"), ("GW", "FE"), ("GW", "PBX"), ("PBX", "GW")] {
        assert_eq!(
            direction(&after, from, to),
            direction(&before, from, to),
            "{from} -> {to} differs"
        );
    }
    assert!(dir.join("hold.snap").is_file());
    match rcc_lab::replay::replay_file(&copy, None)
        .await
        .expect("replay of the updated capture")
    {
        rcc_lab::replay::Outcome::Matched { .. } => {}
        rcc_lab::replay::Outcome::Diverged(d) => panic!("the updated capture does not replay: {d}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills the spawned gateway when the test ends, however it ends.
#[tokio::test]
async fn a_capture_replays_against_a_gateway_in_another_process() {
    // The rcc-gateway binary, configured as `rcc-lab replay --gateway-config` prints, runs as its
    // own process; the replay plays the Front End and the PBX against it over loopback.
    let path = capture("02-click-to-dial");
    let bin = rcc_lab::load::binary("rcc-gateway").expect("rcc-gateway built beside the tests");
    let sip: std::net::SocketAddr =
        ([127, 0, 0, 1], rcc_lab::load::free_port().expect("port")).into();
    let pbx: std::net::SocketAddr =
        ([127, 0, 0, 1], rcc_lab::load::free_port().expect("port")).into();
    let dir = std::env::temp_dir().join(format!("rcc-lab-external-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("gateway.toml");
    std::fs::write(&config, rcc_lab::replay::lab_gateway_toml(sip, pbx)).expect("config");
    let _gw = rcc_lab::load::spawn(
        &bin,
        &["--config", &config.to_string_lossy()],
        &dir.join("gateway.log"),
    )
    .expect("gateway starts");
    rcc_lab::load::listening(sip.port(), "the gateway")
        .await
        .expect("the gateway listens");
    match rcc_lab::replay::replay_external(&path, sip, pbx)
        .await
        .expect("replay runs")
    {
        rcc_lab::replay::Outcome::Matched { steps } => assert!(steps > 10, "{steps} steps"),
        rcc_lab::replay::Outcome::Diverged(d) => panic!("external gateway diverged: {d}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory for one test's files.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rcc-lab-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// A site's gateway.toml with `numbering`: TLS with certificates that exist only at the site
/// (not on this machine), Front Ends by name, a PBX elsewhere over TLS, metrics and
/// per-session traces; every placement the replay must replace (`held` is an address the test
/// keeps bound, so a listener left on it would fail).
fn site_config(dir: &std::path::Path, held: std::net::SocketAddr, numbering: &str) -> PathBuf {
    let file = |f: &str| format!("{:?}", dir.join(f).display().to_string());
    let text = format!(
        r#"[sip]
listen_tls = "{held}"
listen_tcp = "{held}"
host = "rccgw01.contoso.com"
trusted_peer = [{{ name = "fe01.contoso.com" }}]
[sip.tls]
cert = {cert}
key = {key}
client_cert = "none"
[pbx]
address = "10.0.0.20:1040"
secondary = "10.0.0.21:1040"
transport = "tls"
tls_ca = {ca}
reconnect_min_ms = 50
reconnect_max_ms = 200
[observe]
http = "{held}"
[observe.session_traces]
dir = {sessions}
{numbering}"#,
        cert = file("gw.crt"),
        key = file("gw.key"),
        ca = file("pbx-ca.pem"),
        sessions = file("sessions"),
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).expect("config");
    path
}

#[tokio::test]
async fn a_capture_replays_with_a_site_config_of_the_lab_numbering() {
    let dir = temp_dir("site-config");
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let config = site_config(
        &dir,
        held.local_addr().expect("addr"),
        rcc_simulators::lync::LAB_NUMBERING,
    );
    let outcome = rcc_lab::replay::replay_file(&capture("02-click-to-dial"), Some(&config))
        .await
        .expect("replay runs");
    assert!(
        !dir.join("sessions").exists(),
        "per-session traces were written"
    );
    let _ = std::fs::remove_dir_all(&dir);
    match outcome {
        rcc_lab::replay::Outcome::Matched { steps } => assert!(steps > 10, "{steps} steps"),
        rcc_lab::replay::Outcome::Diverged(d) => panic!("diverged with the site config: {d}"),
    }
}

#[tokio::test]
async fn another_numbering_plan_in_the_config_makes_the_replay_diverge() {
    // The site dials 9 before the extension: the capture's MakeCall to 1002 now goes out as 91002.
    let dir = temp_dir("site-numbering");
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let numbering = r#"[numbering]
line = "ext"
[[numbering.to_pbx]]
pattern = '\+1425555(\d{4})'
replace = "9$1"
[[numbering.to_lync]]
pattern = '9(\d{4})'
replace = "+1425555$1"
"#;
    let config = site_config(&dir, held.local_addr().expect("addr"), numbering);
    let outcome = rcc_lab::replay::replay_file(&capture("02-click-to-dial"), Some(&config))
        .await
        .expect("replay runs");
    let _ = std::fs::remove_dir_all(&dir);
    match outcome {
        rcc_lab::replay::Outcome::Diverged(d) => {
            assert!(d.expected.contains("<calledDirectoryNumber>1002<"), "{d}");
            assert!(d.actual.contains("<calledDirectoryNumber>91002<"), "{d}");
        }
        rcc_lab::replay::Outcome::Matched { .. } => {
            panic!("the config's numbering plan was not used")
        }
    }
}

#[tokio::test]
async fn a_missing_or_broken_config_is_named_with_the_reason() {
    let dir = temp_dir("bad-config");
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "[sip\nhost = ").expect("write");
    let invalid = dir.join("invalid.toml");
    std::fs::write(
        &invalid,
        "[sip]\nlisten_tcp = \"127.0.0.1:5066\"\nhost = \"gw\"\nmin_se_s = 30\n\
         trusted_peer = [{ ip = \"127.0.0.1\" }]\n[pbx]\naddress = \"127.0.0.1:1040\"\n\
         [[numbering.to_pbx]]\npattern = \"(\"\nreplace = \"\"\n",
    )
    .expect("write");
    let cases = [
        (dir.join("missing.toml"), vec!["cannot read"]),
        (broken, vec!["TOML parse error"]),
        (
            invalid,
            vec!["2 problem(s)", "min_se_s", "numbering.to_pbx #1"],
        ),
    ];
    for (config, reasons) in cases {
        let err = rcc_lab::replay::replay_file(&capture("02-click-to-dial"), Some(&config))
            .await
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains(&config.display().to_string()), "{err}");
        for r in reasons {
            assert!(err.contains(r), "missing {r:?} in {err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
