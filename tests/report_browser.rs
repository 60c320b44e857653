//! The HTML report opens in a real browser: headless Chromium loads a report, runs its script,
//! and the message an arrow links to opens. `tools/test` installs Chromium; without it this test
//! fails and says so.

use std::path::PathBuf;
use std::process::Command;

use rcc_lab::conformance::{Conformance, RunInfo};
use rcc_lab::report::{Arrow, ScenarioReport, Status, html};

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "chromium-headless-shell",
        "google-chrome",
        "headless_shell",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn arrow(at: u64, from: &str, to: &str, label: &str) -> Arrow {
    Arrow {
        at_us: at,
        from: from.into(),
        to: to.into(),
        label: label.into(),
        text: format!("{label} <body>"),
    }
}

#[test]
fn report_renders_and_an_arrow_opens_its_message() {
    let Some(browser) = chromium() else {
        panic!(
            "headless Chromium is not installed (apt-get install chromium); tools/test installs it"
        );
    };
    let reports = vec![
        ScenarioReport {
            feature: "Click to dial".into(),
            name: "answered".into(),
            status: Status::Passed,
            millis: 12,
            file: "features/click_to_dial.feature".into(),
            line: 7,
            tags: vec!["cap-make-call".into()],
            arrows: vec![
                arrow(1, "alice/desk", "Front End", "INFO (MakeCall)"),
                arrow(2, "Front End", "gateway", "INFO (MakeCall)"),
                arrow(3, "gateway", "PBX", "[0001] MakeCall"),
                arrow(4, "PBX", "gateway", "[0001] MakeCallResponse"),
            ],
            ..Default::default()
        },
        ScenarioReport {
            feature: "Click to dial".into(),
            name: "busy".into(),
            status: Status::Failed("no FailedEvent".into()),
            millis: 3,
            file: "features/click_to_dial.feature".into(),
            line: 21,
            tags: vec!["cap-hold-retrieve".into()],
            ..Default::default()
        },
    ];
    let dir = std::env::temp_dir().join(format!("rcc-lab-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("index.html");
    let run = RunInfo::new(
        &rcc_lab::lab::LabOptions::default(),
        None,
        std::time::SystemTime::now(),
    );
    let conformance = Conformance::summarize(&run, &reports, &[]);
    std::fs::write(&file, html("browser check", &reports, Some(&conformance)))
        .expect("write report");
    let target = format!("{}-m2", reports[0].anchor());
    let url = format!("file://{}#{target}", file.display());
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--dump-dom",
            &url,
        ])
        .output()
        .expect("run Chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "Chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.contains("data-ready=\"yes\""),
        "the report's script did not run:\n{dom}"
    );
    assert!(dom.contains("2 scenarios"), "summary missing");
    assert_eq!(
        dom.matches("<tr class=\"row ").count(),
        2,
        "one summary row per scenario"
    );
    let row = |id: &str| {
        dom.split("<tr ")
            .find(|r| r.contains(&format!("data-capability=\"{id}\"")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        row("make-call").contains("capability passed"),
        "conformance row for make-call: {}",
        row("make-call")
    );
    assert!(
        row("hold-retrieve").contains("capability failed")
            && row("hold-retrieve").contains("no FailedEvent"),
        "conformance row for hold-retrieve: {}",
        row("hold-retrieve")
    );
    assert!(dom.contains("<svg class=\"ladder\""), "ladder missing");
    let opened = dom
        .split("<details")
        .filter(|d| d.contains(&format!("id=\"{target}\"")))
        .any(|d| d.split('>').next().is_some_and(|tag| tag.contains("open")));
    assert!(
        opened,
        "following the arrow's link did not open the message:\n{dom}"
    );
}
