//! Call-level authorization: a client acts only on calls its line is in. Before, alice could
//! clear bob's call by naming its call ID (call IDs are counters on some PBXs), start call
//! monitors on anyone's calls without limit and never stop them, and send SystemRegister.

use rcc_protocol::csta::{
    CallEventKind as K, ConnectionId, CstaError, ErrorCategory, Message, MonitorObject, Request,
    Response,
};
use rcc_testkit::MemLab;

/// The CSTA error an endpoint got for `request`.
fn refusal(lab: &mut MemLab, id: usize, request: Request) -> anyhow::Result<CstaError> {
    match lab.csta(id, request)? {
        Ok(Message::Error(e)) => Ok(e),
        other => anyhow::bail!("expected a CSTA error, got {other:?}"),
    }
}

fn privilege(e: &CstaError) -> bool {
    e.category == ErrorCategory::Operation && e.value == "privilegeViolationSpecifiedDevice"
}

/// bob calls carol and carol answers: the call ID.
fn bob_talks_to_carol(lab: &mut MemLab, bob: usize) -> anyhow::Result<String> {
    let call = lab.dial(bob, "bob", "tel:+14255551003")?;
    lab.call_event(bob, 0, K::Delivered)?;
    lab.desk_phone(|sw, now| sw.phone_answer("1003", now))?;
    lab.call_event(bob, 0, K::Established)?;
    Ok(call)
}

#[test]
fn a_client_cannot_clear_or_hold_a_call_its_line_is_not_in() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let alice = lab.signed_in("alice", "a1")?;
    let bob = lab.signed_in("bob", "b1")?;
    let call = bob_talks_to_carol(&mut lab, bob)?;
    let carol = ConnectionId::new(call.clone(), "tel:+14255551003");
    let e = refusal(&mut lab, alice, Request::ClearCall { call: carol })?;
    assert!(privilege(&e), "{e:?}");
    // Naming her own line in bob's call does not make it hers.
    let mine = lab.me("alice", &call)?;
    let e = refusal(
        &mut lab,
        alice,
        Request::ClearConnection {
            connection: mine.clone(),
            reason: None,
        },
    )?;
    assert!(privilege(&e), "{e:?}");
    let e = refusal(
        &mut lab,
        alice,
        Request::HoldCall {
            call: mine,
            reservation: None,
        },
    )?;
    assert!(privilege(&e), "{e:?}");
    let calls = lab.switch().calls();
    assert_eq!(calls.len(), 1, "bob's call is untouched");
    assert!(calls[0].parties.iter().all(|p| p.state == "connected"));
    assert!(
        lab.gateway_metrics()
            .contains("rcc_gateway_refused_total{reason=\"call authorization\"} 3"),
        "{}",
        lab.gateway_metrics()
    );
    // bob may clear his own call.
    let own = lab.me("bob", &call)?;
    lab.response(bob, Request::ClearCall { call: own })?;
    assert!(lab.switch().calls().is_empty());
    lab.no_violations(&[alice, bob])
}

#[test]
fn call_monitors_only_for_the_lines_calls_bounded_stoppable_and_stopped_with_the_session()
-> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let alice = lab.signed_in("alice", "a1")?;
    let bob = lab.signed_in("bob", "b1")?;
    let bobs = bob_talks_to_carol(&mut lab, bob)?;
    let monitor_call = |call: &str, line: String| Request::MonitorStart {
        object: MonitorObject::Call(ConnectionId::new(call, line)),
        monitor_type: None,
    };
    let alice_line = lab.user("alice")?.line();
    let e = refusal(&mut lab, alice, monitor_call(&bobs, alice_line.clone()))?;
    assert!(privilege(&e), "someone else's call: {e:?}");
    let device_monitors = lab.switch().monitor_count();

    // alice's own call may be monitored; the monitor can be stopped.
    let own = lab.dial(alice, "alice", "tel:+14255551002")?;
    let r = lab.response(alice, monitor_call(&own, alice_line.clone()))?;
    let Response::MonitorStart { cross_ref, .. } = r else {
        anyhow::bail!("MonitorStartResponse expected, got {r:?}");
    };
    assert_eq!(lab.switch().monitor_count(), device_monitors + 1);
    lab.response(alice, Request::MonitorStop { cross_ref })?;
    assert_eq!(lab.switch().monitor_count(), device_monitors);

    // At most eight per session; all of them go with the session.
    for _ in 0..8 {
        lab.response(alice, monitor_call(&own, alice_line.clone()))?;
    }
    let e = refusal(&mut lab, alice, monitor_call(&own, alice_line.clone()))?;
    assert_eq!(e.value, "overallMonitorLimitExceeded", "{e:?}");
    assert_eq!(lab.switch().monitor_count(), device_monitors + 8);
    lab.sign_out(alice)?;
    lab.wait_until(
        "alice's monitors stopped",
        std::time::Duration::from_secs(5),
        |l| l.switch().monitor_count() == device_monitors - 1,
    )?;
    Ok(())
}

#[test]
fn a_client_cannot_change_the_gateways_system_registration() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let alice = lab.signed_in("alice", "a1")?;
    let e = refusal(
        &mut lab,
        alice,
        Request::SystemRegister {
            system_status: true,
            request_system_status: true,
        },
    )?;
    assert!(privilege(&e), "{e:?}");
    assert!(
        lab.gateway_metrics()
            .contains("rcc_gateway_refused_total{reason=\"system services\"} 1")
    );
    Ok(())
}

#[test]
fn a_call_made_before_sign_in_is_the_clients_once_its_snapshot_names_it() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let call = lab.desk_phone(|sw, now| sw.phone_dial("1001", "1002", now))?;
    lab.desk_phone(|sw, now| sw.phone_answer("1002", now))?;
    let alice = lab.signed_in("alice", "a1")?;
    let line = lab.user("alice")?.line();
    let r = lab.response(alice, Request::SnapshotDevice { device: line })?;
    let Response::SnapshotDevice { calls } = r else {
        anyhow::bail!("SnapshotDeviceResponse expected, got {r:?}");
    };
    assert_eq!(calls.len(), 1);
    let me = lab.me("alice", &call)?;
    lab.response(
        alice,
        Request::HoldCall {
            call: me,
            reservation: None,
        },
    )?;
    lab.call_event(alice, 0, K::Held)?;
    lab.no_violations(&[alice])
}

#[test]
fn call_monitors_asked_for_at_once_still_stop_at_eight() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let alice = lab.signed_in("alice", "a1")?;
    let own = lab.dial(alice, "alice", "tel:+14255551002")?;
    let line = lab.user("alice")?.line();
    let ask = (0..12)
        .map(|_| Request::MonitorStart {
            object: MonitorObject::Call(ConnectionId::new(own.clone(), line.clone())),
            monitor_type: None,
        })
        .collect();
    let answers = lab.csta_at_once(alice, ask)?;
    let granted = answers
        .iter()
        .filter(|a| matches!(a, Ok(Message::Response(Response::MonitorStart { .. }))))
        .count();
    let full = answers
        .iter()
        .filter(|a| matches!(a, Ok(Message::Error(e)) if e.value == "overallMonitorLimitExceeded"))
        .count();
    assert_eq!((granted, full), (8, 4), "{answers:?}");
    Ok(())
}
