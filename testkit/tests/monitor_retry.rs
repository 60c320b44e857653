//! A device monitor that sessions need and that the PBX refuses for want of licences
//! (`overallMonitorLimitExceeded`) is asked for again with a backoff until the PBX grants it;
//! the session stays and gets its events once it does. Before, the refusal left the session
//! signed in with no monitor and no events, for good.

use std::time::Duration;

use rcc_protocol::csta::CallEventKind as K;
use rcc_simulators::lync::Phase;
use rcc_simulators::pbx::DeviceConfig;
use rcc_testkit::MemLab;

fn metric(lab: &MemLab, series: &str) -> Option<f64> {
    lab.gateway_metrics().lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

#[test]
fn a_monitor_refused_for_want_of_licences_is_asked_for_again_until_granted() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let alice = lab.signed_in("alice", "a1")?;
    lab.signed_in("bob", "b1")?;
    assert_eq!(lab.pbx_monitors_on("1001"), 1);

    // The PBX withdraws alice's monitor and has no licence left to give it back.
    lab.desk_phone(|sw, _| sw.configure(|c| c.max_monitors = Some(1)));
    lab.pbx_ends_monitor("1001")?;
    assert_eq!(lab.pbx_monitors_on("1001"), 0);
    assert_eq!(metric(&lab, "rcc_gateway_monitor_retries_total"), Some(1.0));
    assert_eq!(
        metric(&lab, "rcc_gateway_monitors_awaiting_retry"),
        Some(1.0)
    );

    // Each refusal waits about twice as long as the one before (1 s, 2 s, 4 s, plus a spread).
    lab.advance(Duration::from_millis(1300));
    assert_eq!(metric(&lab, "rcc_gateway_monitor_retries_total"), Some(2.0));
    lab.advance(Duration::from_millis(1300));
    assert_eq!(
        metric(&lab, "rcc_gateway_monitor_retries_total"),
        Some(2.0),
        "the second wait is longer than the first"
    );
    lab.advance(Duration::from_millis(1300));
    assert_eq!(metric(&lab, "rcc_gateway_monitor_retries_total"), Some(3.0));
    assert_eq!(
        lab.gateway().session_count(),
        2,
        "alice's session stays while it waits"
    );

    // A licence comes free: the next attempt gets the monitor, and alice her events.
    lab.desk_phone(|sw, _| sw.configure(|c| c.max_monitors = None));
    lab.wait_until(
        "alice's monitor granted again",
        Duration::from_secs(6),
        |l| l.pbx_monitors_on("1001") == 1,
    )?;
    assert_eq!(
        metric(&lab, "rcc_gateway_monitors_awaiting_retry"),
        Some(0.0)
    );
    let before = lab.endpoint(alice)?.events().len();
    lab.desk_phone(|sw, now| sw.phone_dial("1001", "1002", now))?;
    lab.call_event(alice, before, K::Originated)?;
    Ok(())
}

#[test]
fn a_monitor_refused_for_good_ends_the_sessions_that_need_it() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let alice = lab.signed_in("alice", "a1")?;
    lab.signed_in("bob", "b1")?;
    // The device leaves the PBX's CTI control: its monitor cannot come back.
    lab.desk_phone(|sw, _| {
        let mut d = DeviceConfig::new("1001", Some("+14255551001"));
        d.cti = false;
        sw.add_device(d);
    });
    lab.pbx_ends_monitor("1001")?;
    lab.wait_until("alice's session ended", Duration::from_secs(5), |l| {
        l.gateway().session_count() == 1
    })?;
    assert!(
        lab.gateway_metrics()
            .contains("rcc_gateway_sessions_ended_total{reason=\"monitor refused\"} 1"),
        "{}",
        lab.gateway_metrics()
    );
    assert_eq!(metric(&lab, "rcc_gateway_monitor_retries_total"), Some(0.0));
    let phase = lab.endpoint(alice)?.phase();
    assert!(
        !matches!(phase, Phase::Ready),
        "alice's client was told (BYE): {phase:?}"
    );
    Ok(())
}
