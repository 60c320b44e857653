//! Call flows through the Front End pool, the gateway core and the PBX switch in one process,
//! with no sockets and a virtual clock: the session-expiry case spans 90 seconds of the lab's
//! time and runs in microseconds.

use std::time::Duration;

use rcc_protocol::csta::{CallEventKind as K, ErrorCategory, Message, Request};
use rcc_testkit::MemLab;

fn lci(c: &rcc_protocol::csta::CallEvent) -> &str {
    c.local_state.as_ref().map_or("", |s| s.as_str())
}

/// alice calls bob and bob answers at his desk phone: the call ID and the next event index.
fn alice_talks_to_bob(lab: &mut MemLab, alice: usize) -> anyhow::Result<(String, usize)> {
    let call = lab.dial(alice, "alice", "tel:+14255551002")?;
    let (n, delivered) = lab.call_event(alice, 0, K::Delivered)?;
    assert_eq!(lci(&delivered), "connected");
    lab.desk_phone(|sw, now| sw.phone_answer("1002", now))?;
    let (n, established) = lab.call_event(alice, n, K::Established)?;
    assert_eq!(lci(&established), "connected");
    Ok((call, n))
}

#[test]
fn click_to_dial_answered_at_the_desk_phone_then_cleared() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let alice = lab.signed_in("alice", "a1")?;
    let (call, n) = alice_talks_to_bob(&mut lab, alice)?;
    let calls = lab.switch().calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call_id, call);
    assert!(calls[0].parties.iter().all(|p| p.state == "connected"));
    let me = lab.me("alice", &call)?;
    lab.response(
        alice,
        Request::ClearConnection {
            connection: me,
            reason: None,
        },
    )?;
    let (_, cleared) = lab.call_event(alice, n, K::ConnectionCleared)?;
    assert_eq!(lci(&cleared), "null");
    assert!(lab.switch().calls().is_empty());
    lab.no_violations(&[alice])
}

#[test]
fn consultation_then_transfer_leaves_bob_with_carol() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let alice = lab.signed_in("alice", "a1")?;
    let (c1, n) = alice_talks_to_bob(&mut lab, alice)?;
    let existing = lab.me("alice", &c1)?;
    let r = lab.response(
        alice,
        Request::ConsultationCall {
            existing,
            consulted: "tel:+14255551003".into(),
        },
    )?;
    let rcc_protocol::csta::Response::ConsultationCall { initiated } = r else {
        anyhow::bail!("ConsultationCallResponse expected, got {r:?}");
    };
    let c2 = initiated.call_id.unwrap_or_default();
    let (n, held) = lab.call_event(alice, n, K::Held)?;
    assert_eq!(lci(&held), "hold");
    let (n, _) = lab.call_event(alice, n, K::Delivered)?;
    lab.desk_phone(|sw, now| sw.phone_answer("1003", now))?;
    let (n, _) = lab.call_event(alice, n, K::Established)?;
    let (held, active) = (lab.me("alice", &c1)?, lab.me("alice", &c2)?);
    lab.response(alice, Request::TransferCall { held, active })?;
    let (_, transferred) = lab.call_event(alice, n, K::Transferred)?;
    assert_eq!(lci(&transferred), "null");
    let calls = lab.switch().calls();
    assert_eq!(calls.len(), 1);
    let parties: Vec<_> = calls[0]
        .parties
        .iter()
        .map(|p| (p.device.as_str(), p.state.as_str()))
        .collect();
    assert_eq!(parties, vec![("1002", "connected"), ("1003", "connected")]);
    lab.no_violations(&[alice])
}

#[test]
fn two_endpoints_of_one_user_share_one_pbx_monitor_and_both_see_the_call() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let desk = lab.signed_in("alice", "a1")?;
    let laptop = lab.signed_in("alice", "a2")?;
    assert_eq!(lab.gateway().session_count(), 2);
    assert_eq!(lab.gateway().monitor_count(), 1, "one PBX monitor per line");
    assert_eq!(lab.switch().monitor_count(), 1);
    let (x1, x2) = (
        lab.endpoint(desk)?.xref().map(str::to_owned),
        lab.endpoint(laptop)?.xref().map(str::to_owned),
    );
    assert!(
        x1.is_some() && x1 != x2,
        "each session has its own cross-reference ID"
    );
    alice_talks_to_bob(&mut lab, desk)?;
    let (_, established) = lab.call_event(laptop, 0, K::Established)?;
    assert_eq!(lci(&established), "connected");
    // The laptop stops monitoring: the PBX monitor stays for the desk client.
    let monitor_stop = Request::MonitorStop {
        cross_ref: x2.unwrap_or_default(),
    };
    lab.response(laptop, monitor_stop)?;
    assert_eq!(lab.switch().monitor_count(), 1);
    assert_eq!(lab.gateway().monitor_count(), 1);
    lab.no_violations(&[desk, laptop])
}

#[test]
fn a_lost_pbx_link_fails_requests_cleanly_and_recovers_with_every_session() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let alice = lab.signed_in("alice", "a1")?;
    let (call, n) = alice_talks_to_bob(&mut lab, alice)?;
    lab.break_pbx_link(false);
    assert!(!lab.gateway().pbx_serving());
    let me = lab.me("alice", &call)?;
    let hold = Request::HoldCall {
        call: me.clone(),
        reservation: None,
    };
    match lab.csta(alice, hold.clone())? {
        Ok(Message::Error(e)) => {
            assert_eq!(e.category, ErrorCategory::SystemResourceAvailability);
            assert_eq!(e.value, "resourceOutOfService");
        }
        other => anyhow::bail!("expected a CSTA error while the link is down, got {other:?}"),
    }
    // The gateway retries with backoff; ten seconds of the lab's time pass in no time.
    lab.advance(Duration::from_secs(10));
    assert!(!lab.gateway().pbx_serving());
    lab.restore_pbx();
    lab.wait_until("the link is back", Duration::from_secs(5), |l| {
        l.gateway().pbx_serving() && l.gateway().monitor_count() == 1
    })?;
    assert_eq!(lab.gateway().session_count(), 1, "no session is lost");
    lab.response(alice, hold)?;
    let (_, held) = lab.call_event(alice, n, K::Held)?;
    assert_eq!(lci(&held), "hold");
    lab.no_violations(&[alice])
}

#[test]
fn a_session_not_refreshed_expires_after_its_interval() -> anyhow::Result<()> {
    let mut lab = MemLab::with(&[("alice", "1001")], |c| {
        c.sip.session_expires_s = 90;
    })?;
    // A client that would refresh only after a day.
    let day = Some(Duration::from_secs(86_400));
    let alice = lab.endpoint_of(
        "alice",
        "a1",
        rcc_simulators::lync::ClientProfile::Lync2013,
        day,
    )?;
    lab.sign_in(alice)?;
    assert_eq!(lab.gateway().session_count(), 1);
    lab.advance(Duration::from_secs(89));
    assert_eq!(lab.gateway().session_count(), 1, "not yet: 90 s granted");
    lab.advance(Duration::from_secs(2));
    assert_eq!(lab.gateway().session_count(), 0, "expired");
    assert_eq!(lab.gateway().monitor_count(), 0, "its monitor went with it");
    assert_eq!(lab.switch().monitor_count(), 0);
    let metrics = lab.gateway_metrics();
    assert!(
        metrics.contains("rcc_gateway_sessions_ended_total{reason=\"expired\"} 1"),
        "{metrics}"
    );
    Ok(())
}

#[test]
fn a_refreshing_client_keeps_its_session_for_hours() -> anyhow::Result<()> {
    let mut lab = MemLab::with(&[("alice", "1001")], |c| {
        c.sip.session_expires_s = 90;
    })?;
    let alice = lab.endpoint_of(
        "alice",
        "a1",
        rcc_simulators::lync::ClientProfile::Lync2013,
        Some(Duration::from_secs(60)),
    )?;
    lab.sign_in(alice)?;
    lab.advance(Duration::from_secs(3 * 3600));
    assert_eq!(lab.gateway().session_count(), 1);
    assert!(
        lab.endpoint(alice)?.refreshes() >= 170,
        "every 60 s for 3 hours"
    );
    lab.no_violations(&[alice])
}
