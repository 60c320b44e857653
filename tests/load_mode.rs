//! Load mode works end to end at a small scale (a functional check: no figures are asserted,
//! the figures live in BENCHMARKS.md): users sign in through the pool, each call pattern runs,
//! every request is answered, events flow and no endpoint sees a rule broken.

use std::time::Duration;

use rcc_lab::lab::{Lab, LabOptions, User};
use rcc_simulators::lync::ClientProfile;
use rcc_simulators::lync::load::{CallPattern, LoadPlan, run};

#[rstest::rstest]
#[case::click_to_dial(CallPattern::ClickToDial, 2, true)]
#[case::hold_retrieve(CallPattern::HoldRetrieve, 4, true)]
#[case::transfer(CallPattern::Transfer, 2, true)]
#[case::snapshot(CallPattern::Snapshot, 1, false)]
#[tokio::test]
async fn load_mode_runs_each_call_pattern(
    #[case] pattern: CallPattern,
    #[case] per_call: u64,
    #[case] makes_calls: bool,
) -> anyhow::Result<()> {
    let users: Vec<User> = (0..20)
        .map(|i| User::new(&format!("u{i}"), &format!("{}", 2000 + i)))
        .collect();
    let lab = Lab::start(LabOptions {
        tls: false,
        users,
        ..LabOptions::default()
    })
    .await?;
    lab.pbx()?
        .set_external(
            "+15550100",
            rcc_simulators::pbx::ExternalParty::answers_after(0),
        )
        .await?;
    let plan = LoadPlan {
        users: 20,
        endpoints_per_user: 2,
        first_extension: 2000,
        line_template: "tel:+1425555{ext};ext={ext}".into(),
        line_server: format!("sip:rccgateway@{}", rcc_lab::lab::RCC_DOMAIN),
        profile: ClientProfile::Lync2013,
        signin_rate: 200.0,
        call_rate: 10.0,
        duration: Duration::from_secs(2),
        callee: "tel:+15550100".into(),
        signin_timeout: Duration::from_secs(20),
        pattern,
        reestablish: None,
    };
    let s = run(&lab.lync, &plan, |_| {}).await?;
    assert_eq!(s.sessions_established, 40);
    assert_eq!(s.sessions_failed, 0);
    assert_eq!(s.failures, 0);
    assert!(s.requests >= per_call * 10, "{} requests", s.requests);
    assert_eq!(
        s.requests % per_call,
        0,
        "{} requests are not whole calls of {per_call}",
        s.requests
    );
    // Calls bring events; snapshots of idle lines bring none.
    assert_eq!(s.events > 0, makes_calls, "{} events", s.events);
    assert_eq!(s.violations, 0);
    assert!(!s.rows.is_empty());
    assert!(rcc_simulators::lync::load::csv(&s.rows).starts_with("t_s,phase"));
    Ok(())
}

/// `rcc-lab load --transport tls`: the three binaries, the pool reaching the gateway over
/// mutual TLS with certificates minted for the run; every user signs in, the calls are
/// answered, and the plot is drawn with its axes (functional: no figure is asserted).
#[tokio::test]
async fn the_load_harness_runs_over_mutual_tls() -> anyhow::Result<()> {
    let out = std::env::temp_dir().join(format!("rcc-lab-load-tls-{}", std::process::id()));
    let report = rcc_lab::load::run(&rcc_lab::load::LoadOptions {
        users: 20,
        endpoints: 1,
        signin_rate: 200.0,
        call_rate: 20.0,
        duration: 2,
        out: out.clone(),
        pattern: "click-to-dial".into(),
        pin: false,
        tls: true,
        threads: 1,
        pbx_rate: None,
    })
    .await?;
    let text = &report.text;
    assert!(text.contains("over mutual TLS"), "{text}");
    assert!(
        text.contains("sessions: 20 established, 0 failed"),
        "{text}"
    );
    assert!(text.contains("; 0 failures"), "{text}");
    let gateway_toml = std::fs::read_to_string(out.join("gateway.toml"))?;
    assert!(gateway_toml.contains("listen_tls") && !gateway_toml.contains("listen_tcp"));
    let svg = std::fs::read_to_string(out.join("load.svg"))?;
    assert!(svg.contains("seconds since start") && svg.contains("p99 response time, ms"));
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// `rcc-lab load --pbx-rate 50`: 200 sign-ins offered at 1,000/s to a PBX that refuses more
/// than 55 requests a second. The gateway paces its MonitorStarts to 50/s, so every user signs
/// in and no request is refused (unpaced, most of the storm's MonitorStarts would be).
#[tokio::test]
async fn a_sign_in_storm_against_a_rate_limited_pbx_is_paced_without_errors() -> anyhow::Result<()>
{
    let out = std::env::temp_dir().join(format!("rcc-lab-load-paced-{}", std::process::id()));
    let report = rcc_lab::load::run(&rcc_lab::load::LoadOptions {
        users: 200,
        endpoints: 1,
        signin_rate: 1000.0,
        call_rate: 5.0,
        duration: 1,
        out: out.clone(),
        pattern: "snapshot".into(),
        pin: false,
        tls: false,
        threads: 1,
        pbx_rate: Some(50.0),
    })
    .await?;
    let text = &report.text;
    assert!(
        text.contains("sessions: 200 established, 0 failed"),
        "{text}"
    );
    assert!(text.contains("; 0 failures"), "{text}");
    let gateway = std::fs::read_to_string(out.join("gateway.toml"))?;
    assert!(gateway.contains("pace_per_s = 50"), "{gateway}");
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// `rcc-lab failover`: two gateway processes behind real Kamailio, 300 users; the busier
/// gateway is killed with SIGKILL, and every one of its users signs in again on the survivor,
/// whose monitors then number exactly the lines (each once). Functional: no time is asserted.
#[tokio::test]
async fn the_failover_harness_brings_every_user_of_a_killed_gateway_back() -> anyhow::Result<()> {
    let out = std::env::temp_dir().join(format!("rcc-lab-failover-{}", std::process::id()));
    let _clean = RemoveOnDrop(out.clone());
    // More users than Kamailio's default 100 turns of a loop: route[GONE] must walk them all.
    let report = rcc_lab::failover::run(&rcc_lab::failover::FailoverOptions {
        users: 300,
        gateways: 2,
        signin_rate: 300.0,
        pbx_rate: Some(100.0),
        reestablish_ms: 200,
        kamailio_shm_mb: 128,
        out: out.clone(),
    })
    .await?;
    assert!(report.moved >= 1, "{}", report.text);
    assert!(report.all_back_s >= report.first_back_s, "{}", report.text);
    // They came back because Kamailio ended their dialogs, not by a request of their own (the
    // load clients send none) or the 30 s keep-alive.
    assert_eq!(
        report.dialogs_ended_by_kamailio, report.moved,
        "{}",
        report.text
    );
    assert!(
        report
            .text
            .contains(&format!("all {} back and monitored", report.moved)),
        "{}",
        report.text
    );
    // The PBX's 100 requests a second are shared: each gateway is paced to half.
    let gateway = std::fs::read_to_string(out.join("gw1.toml"))?;
    assert!(gateway.contains("pace_per_s = 50\n"), "{gateway}");
    Ok(())
}

/// Removes a folder when the test ends, passed or not.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
