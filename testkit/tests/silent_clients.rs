//! A client that never answers event INFOs (pidgin-sipe) still gets every event at once and in
//! order. Before, after eight unanswered INFOs each further event waited the 8 s event timeout
//! for a window slot: a second call's Established arrived 7.7 s late.

use std::time::Duration;

use rcc_protocol::csta::CallEventKind as K;
use rcc_simulators::lync::ClientProfile;
use rcc_testkit::MemLab;

#[test]
fn a_sipe_client_gets_twenty_events_in_two_calls_without_waiting() -> anyhow::Result<()> {
    let mut lab = MemLab::new()?;
    let alice = lab.endpoint_of("alice", "a1", ClientProfile::Sipe, None)?;
    lab.sign_in(alice)?;
    let mut next = 0;
    for (round, callee) in [("first", "1002"), ("second", "1003")] {
        let started = lab.now();
        let call = lab.dial(alice, "alice", &format!("tel:+1425555{callee}"))?;
        lab.desk_phone(|sw, now| sw.phone_answer(callee, now))?;
        let (n, _) = lab.call_event(alice, next, K::Established)?;
        let me = lab.me("alice", &call)?;
        lab.response(
            alice,
            rcc_protocol::csta::Request::HoldCall {
                call: me.clone(),
                reservation: None,
            },
        )?;
        let (n, _) = lab.call_event(alice, n, K::Held)?;
        lab.response(
            alice,
            rcc_protocol::csta::Request::RetrieveCall { call: me.clone() },
        )?;
        let (n, _) = lab.call_event(alice, n, K::Retrieved)?;
        lab.response(
            alice,
            rcc_protocol::csta::Request::ClearConnection {
                connection: me,
                reason: None,
            },
        )?;
        let (n, _) = lab.call_event(alice, n, K::ConnectionCleared)?;
        next = n;
        let took = lab.now().duration_since(started);
        assert!(
            took < Duration::from_secs(1),
            "{round} call: its events took {took:?} of the lab's time"
        );
    }
    assert!(
        lab.endpoint(alice)?.events_received() >= 10,
        "events: {}",
        lab.endpoint(alice)?.events_received()
    );
    lab.no_violations(&[alice])
}
