//! The PBX simulator's call model over a real TCP socket: every service and the scenario
//! tables of pbx-csta.md §12, checked per monitor (event order, localConnectionInfo, cause).

mod support;

use std::time::Duration;

use rcc_protocol::csta::{
    AutoOriginate, CallEventKind as K, ConnectionId, CstaError, ErrorCategory, Event,
    ForwardingType, Message, Request, Response,
};
use rcc_simulators::pbx::{ExternalParty, Profile, Reach};
use support::*;

fn make_call(calling: &str, called: &str) -> Request {
    Request::MakeCall {
        calling: calling.to_owned(),
        called: called.to_owned(),
        auto_originate: Some(AutoOriginate::DoNotPrompt),
    }
}

fn made(m: Message) -> ConnectionId {
    match m {
        Message::Response(Response::MakeCall { calling }) => calling,
        other => panic!("expected MakeCallResponse, got {other:?}"),
    }
}

fn empty_ok(m: &Message) {
    assert!(
        matches!(m, Message::Response(Response::Empty(_))),
        "expected an empty positive response, got {m:?}"
    );
}

fn error(m: &Message) -> (ErrorCategory, String) {
    match m {
        Message::Error(CstaError { category, value }) => (category.clone(), value.clone()),
        other => panic!("expected CSTAErrorCode, got {other:?}"),
    }
}

/// A calls B; B answers: returns (client, mxA, mxB, call ID) with all events consumed.
async fn connected_ab(c: &mut Client) -> (String, String, String) {
    let mx_a = c.monitor("1001").await;
    let mx_b = c.monitor("1002").await;
    let call = made(c.request(make_call("1001", "1002")).await);
    let id = call.call_id.clone().expect("call ID");
    c.events_for(&mx_a, 3).await;
    c.events_for(&mx_b, 1).await;
    empty_ok(
        &c.request(Request::AnswerCall {
            call: conn(&id, "1002"),
        })
        .await,
    );
    c.events_for(&mx_a, 1).await;
    c.events_for(&mx_b, 1).await;
    (mx_a, mx_b, id)
}

#[tokio::test]
async fn scenario_1_make_call_answer_clear() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    let mx_b = c.monitor("1002").await;
    assert_ne!(mx_a, mx_b);
    let call = made(c.request(make_call("1001", "1002")).await);
    assert_eq!(call.device_id.as_deref(), Some("1001"));
    let id = call.call_id.clone().expect("call ID");
    empty_ok(
        &c.request(Request::AnswerCall {
            call: conn(&id, "1002"),
        })
        .await,
    );
    empty_ok(
        &c.request(Request::ClearConnection {
            connection: conn(&id, "1001"),
            reason: None,
        })
        .await,
    );
    let a: Vec<_> = c.events_for(&mx_a, 5).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![
            s(K::ServiceInitiated, "1001", "initiated", "makeCall"),
            s(K::Originated, "1001", "connected", "newCall"),
            s(K::Delivered, "1002", "connected", "newCall"),
            s(K::Established, "1002", "connected", "normal"),
            s(K::ConnectionCleared, "1001", "null", "normalClearing"),
        ]
    );
    let b: Vec<_> = c.events_for(&mx_b, 3).await.iter().map(shape).collect();
    assert_eq!(
        b,
        vec![
            s(K::Delivered, "1002", "alerting", "newCall"),
            s(K::Established, "1002", "connected", "normal"),
            s(K::ConnectionCleared, "1001", "null", "normalClearing"),
        ]
    );
    assert!(sim.calls().await.expect("calls").is_empty());
}

#[tokio::test]
async fn scenario_1_events_carry_calling_called_and_alerting_devices() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let mx_b = c.monitor("1002").await;
    c.request(make_call("1001", "+14255551002")).await;
    let d = c.events_for(&mx_b, 1).await.remove(0);
    assert_eq!(d.kind, K::Delivered);
    assert_eq!(d.subject.as_ref().and_then(|x| x.as_id()), Some("1002"));
    assert_eq!(d.calling.as_ref().and_then(|x| x.as_id()), Some("1001"));
    assert_eq!(
        d.called.as_ref().and_then(|x| x.as_id()),
        Some("+14255551002"),
        "the called number is reported as dialled"
    );
}

#[tokio::test]
async fn scenario_2_incoming_external_answered_then_caller_clears() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    let id = sim
        .incoming("+14255550200", "1001")
        .await
        .expect("incoming");
    let d = c.events_for(&mx_a, 1).await.remove(0);
    assert_eq!(shape(&d), s(K::Delivered, "1001", "alerting", "newCall"));
    assert_eq!(
        d.calling.as_ref().and_then(|x| x.as_id()),
        Some("+14255550200")
    );
    assert_eq!(call_id(&d), id);
    empty_ok(
        &c.request(Request::AnswerCall {
            call: conn(&id, "1001"),
        })
        .await,
    );
    sim.hang_up("+14255550200")
        .await
        .expect("external hangs up");
    let a: Vec<_> = c.events_for(&mx_a, 2).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![
            s(K::Established, "1001", "connected", "normal"),
            s(
                K::ConnectionCleared,
                "+14255550200",
                "null",
                "normalClearing"
            ),
        ]
    );
}

#[tokio::test]
async fn incoming_call_answered_at_the_desk_phone_gives_the_same_events() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    sim.incoming("+14255550200", "1001")
        .await
        .expect("incoming");
    sim.answer("1001").await.expect("answer at the phone");
    let a: Vec<_> = c.events_for(&mx_a, 2).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![
            s(K::Delivered, "1001", "alerting", "newCall"),
            s(K::Established, "1001", "connected", "normal"),
        ]
    );
}

#[tokio::test]
async fn scenario_3_hold_and_retrieve() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (mx_a, mx_b, id) = connected_ab(&mut c).await;
    empty_ok(
        &c.request(Request::HoldCall {
            call: conn(&id, "1001"),
            reservation: None,
        })
        .await,
    );
    empty_ok(
        &c.request(Request::RetrieveCall {
            call: conn(&id, "1001"),
        })
        .await,
    );
    let a: Vec<_> = c.events_for(&mx_a, 2).await.iter().map(shape).collect();
    let b: Vec<_> = c.events_for(&mx_b, 2).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![
            s(K::Held, "1001", "hold", "normal"),
            s(K::Retrieved, "1001", "connected", "normal"),
        ]
    );
    assert_eq!(
        b,
        vec![
            s(K::Held, "1001", "connected", "normal"),
            s(K::Retrieved, "1001", "connected", "normal"),
        ]
    );
    // Retrieve of a call that is not held.
    let e = c
        .request(Request::RetrieveCall {
            call: conn(&id, "1001"),
        })
        .await;
    assert_eq!(
        error(&e),
        (ErrorCategory::StateIncompatibility, "noHeldCall".into())
    );
}

/// A–B connected in C1, A consults C (C answers): returns (mxA, mxB, mxC, C1, C2).
async fn consulted(c: &mut Client) -> (String, String, String, String, String) {
    let (mx_a, mx_b, c1) = connected_ab(c).await;
    let mx_c = c.monitor("1003").await;
    let r = c
        .request(Request::ConsultationCall {
            existing: conn(&c1, "1001"),
            consulted: "1003".to_owned(),
        })
        .await;
    let Message::Response(Response::ConsultationCall { initiated }) = r else {
        panic!("expected ConsultationCallResponse, got {r:?}");
    };
    let c2 = initiated.call_id.expect("C2");
    assert_ne!(c1, c2);
    let a: Vec<_> = c.events_for(&mx_a, 4).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![
            s(K::Held, "1001", "hold", "consultation"),
            s(K::ServiceInitiated, "1001", "initiated", "consultation"),
            s(K::Originated, "1001", "connected", "consultation"),
            s(K::Delivered, "1003", "connected", "newCall"),
        ]
    );
    let b: Vec<_> = c.events_for(&mx_b, 1).await.iter().map(shape).collect();
    assert_eq!(b, vec![s(K::Held, "1001", "connected", "consultation")]);
    let cc: Vec<_> = c.events_for(&mx_c, 1).await.iter().map(shape).collect();
    assert_eq!(cc, vec![s(K::Delivered, "1003", "alerting", "newCall")]);
    sim_answer(c, &c2, "1003").await;
    c.events_for(&mx_a, 1).await;
    c.events_for(&mx_c, 1).await;
    (mx_a, mx_b, mx_c, c1, c2)
}

async fn sim_answer(c: &mut Client, call: &str, dev: &str) {
    empty_ok(
        &c.request(Request::AnswerCall {
            call: conn(call, dev),
        })
        .await,
    );
}

#[tokio::test]
async fn scenario_4_consultation_then_transfer() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (mx_a, mx_b, mx_c, c1, c2) = consulted(&mut c).await;
    let r = c
        .request(Request::TransferCall {
            held: conn(&c1, "1001"),
            active: conn(&c2, "1001"),
        })
        .await;
    let Message::Response(Response::TransferCall {
        transferred,
        connections,
    }) = r
    else {
        panic!("expected TransferCallResponse, got {r:?}");
    };
    let cn = transferred
        .and_then(|t| t.call_id)
        .expect("transferred call");
    assert_eq!(connections.len(), 2);
    for (mx, lci) in [(&mx_a, "null"), (&mx_b, "connected"), (&mx_c, "connected")] {
        let e = c.events_for(mx, 1).await.remove(0);
        assert_eq!(e.kind, K::Transferred);
        assert_eq!(
            e.local_state.as_ref().map(|s| s.as_str()),
            Some(lci),
            "{mx}"
        );
        assert_eq!(e.cause.as_ref().map(|c| c.as_str()), Some("transfer"));
        assert_eq!(e.connection, Some(conn(&c1, "1001")));
        assert_eq!(e.secondary_old_call, Some(conn(&c2, "1001")));
        let olds: Vec<_> = e
            .connections
            .iter()
            .map(|i| (i.old_connection.clone(), i.new_connection.clone()))
            .collect();
        assert!(olds.contains(&(Some(conn(&c1, "1002")), Some(conn(&cn, "1002")))));
        assert!(olds.contains(&(Some(conn(&c2, "1003")), Some(conn(&cn, "1003")))));
    }
    // No ConnectionCleared for the transferring party.
    assert!(c.quiet(Duration::from_millis(200)).await.is_none());
    let calls = sim.calls().await.expect("calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call_id, cn);
    let devs: Vec<_> = calls[0].parties.iter().map(|p| p.device.as_str()).collect();
    assert_eq!(devs, vec!["1002", "1003"]);
}

#[tokio::test]
async fn reconnect_clears_the_consultation_and_retrieves() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (mx_a, mx_b, mx_c, c1, c2) = consulted(&mut c).await;
    empty_ok(
        &c.request(Request::ReconnectCall {
            active: conn(&c2, "1001"),
            held: conn(&c1, "1001"),
        })
        .await,
    );
    let a: Vec<_> = c.events_for(&mx_a, 2).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![
            s(K::ConnectionCleared, "1001", "null", "normalClearing"),
            s(K::Retrieved, "1001", "connected", "normal"),
        ]
    );
    let cc: Vec<_> = c.events_for(&mx_c, 1).await.iter().map(shape).collect();
    assert_eq!(
        cc,
        vec![s(K::ConnectionCleared, "1001", "null", "normalClearing")]
    );
    let b: Vec<_> = c.events_for(&mx_b, 1).await.iter().map(shape).collect();
    assert_eq!(b, vec![s(K::Retrieved, "1001", "connected", "normal")]);
}

#[tokio::test]
async fn alternate_swaps_held_and_active() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (mx_a, _mx_b, _mx_c, c1, c2) = consulted(&mut c).await;
    empty_ok(
        &c.request(Request::AlternateCall {
            held: conn(&c1, "1001"),
            active: conn(&c2, "1001"),
        })
        .await,
    );
    let a = c.events_for(&mx_a, 2).await;
    assert_eq!(shape(&a[0]), s(K::Held, "1001", "hold", "alternate"));
    assert_eq!(call_id(&a[0]), c2);
    assert_eq!(
        shape(&a[1]),
        s(K::Retrieved, "1001", "connected", "alternate")
    );
    assert_eq!(call_id(&a[1]), c1);
}

#[tokio::test]
async fn scenario_7_conference() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (mx_a, mx_b, mx_c, c1, c2) = consulted(&mut c).await;
    let r = c
        .request(Request::ConferenceCall {
            held: conn(&c1, "1001"),
            active: conn(&c2, "1001"),
        })
        .await;
    let Message::Response(Response::ConferenceCall {
        conference,
        connections,
    }) = r
    else {
        panic!("expected ConferenceCallResponse, got {r:?}");
    };
    assert_eq!(connections.len(), 3);
    let cn = conference.and_then(|c| c.call_id).expect("conference call");
    for mx in [&mx_a, &mx_b, &mx_c] {
        let e = c.events_for(mx, 1).await.remove(0);
        assert_eq!(e.kind, K::Conferenced);
        assert_eq!(
            e.local_state.as_ref().map(|s| s.as_str()),
            Some("connected")
        );
        assert_eq!(e.cause.as_ref().map(|c| c.as_str()), Some("conference"));
    }
    // C hangs up: the others stay connected.
    sim.hang_up("1003").await.expect("C hangs up");
    for (mx, lci) in [(&mx_a, "connected"), (&mx_b, "connected"), (&mx_c, "null")] {
        let e = c.events_for(mx, 1).await.remove(0);
        assert_eq!(
            shape(&e),
            s(K::ConnectionCleared, "1003", lci, "normalClearing")
        );
        assert_eq!(call_id(&e), cn);
    }
}

#[tokio::test]
async fn scenario_5_single_step_transfer() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (mx_a, mx_b, c1) = connected_ab(&mut c).await;
    let mx_c = c.monitor("1003").await;
    let r = c
        .request(Request::SingleStepTransferCall {
            active: conn(&c1, "1001"),
            transferred_to: "1003".to_owned(),
        })
        .await;
    let Message::Response(Response::SingleStepTransferCall { transferred, .. }) = r else {
        panic!("expected SingleStepTransferCallResponse, got {r:?}");
    };
    let cn = transferred.and_then(|t| t.call_id).expect("new call");
    let a: Vec<_> = c.events_for(&mx_a, 1).await;
    assert_eq!(a[0].kind, K::Transferred);
    assert_eq!(a[0].local_state.as_ref().map(|s| s.as_str()), Some("null"));
    let b = c.events_for(&mx_b, 2).await;
    assert_eq!(b[0].kind, K::Transferred);
    assert_eq!(
        shape(&b[1]),
        s(K::Delivered, "1003", "connected", "singleStepTransfer")
    );
    let cc = c.events_for(&mx_c, 1).await.remove(0);
    assert_eq!(
        shape(&cc),
        s(K::Delivered, "1003", "alerting", "singleStepTransfer")
    );
    assert_eq!(call_id(&cc), cn);
    assert_eq!(cc.calling.as_ref().and_then(|d| d.as_id()), Some("1002"));
    assert_eq!(
        cc.last_redirection.as_ref().and_then(|d| d.as_id()),
        Some("1001")
    );
}

#[tokio::test]
async fn scenario_6_deflect() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    let mx_b = c.monitor("1002").await;
    let mx_c = c.monitor("1003").await;
    let id = made(c.request(make_call("1001", "1002")).await)
        .call_id
        .expect("id");
    c.events_for(&mx_a, 3).await;
    c.events_for(&mx_b, 1).await;
    empty_ok(
        &c.request(Request::DeflectCall {
            call: conn(&id, "1002"),
            new_destination: "1003".to_owned(),
        })
        .await,
    );
    let b: Vec<_> = c.events_for(&mx_b, 1).await.iter().map(shape).collect();
    assert_eq!(b, vec![s(K::Diverted, "1002", "null", "redirected")]);
    let a: Vec<_> = c.events_for(&mx_a, 2).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![
            s(K::Diverted, "1002", "connected", "redirected"),
            s(K::Delivered, "1003", "connected", "redirected"),
        ]
    );
    let cc = c.events_for(&mx_c, 1).await.remove(0);
    assert_eq!(
        shape(&cc),
        s(K::Delivered, "1003", "alerting", "redirected")
    );
    assert_eq!(
        cc.last_redirection.as_ref().and_then(|d| d.as_id()),
        Some("1002")
    );
    // B has nothing more for this call.
    assert!(c.quiet(Duration::from_millis(200)).await.is_none());
}

#[tokio::test]
async fn scenario_8_forwarding_set_read_reported_and_applied() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    let mx_c = c.monitor("1003").await;
    empty_ok(
        &c.request(Request::SetForwarding {
            device: "1001".to_owned(),
            forwarding_type: ForwardingType::Immediate,
            activate: true,
            forward_dn: Some("1003".to_owned()),
            ring_count: None,
        })
        .await,
    );
    match c.event().await {
        Event::Forwarding(f) => {
            assert_eq!(f.cross_ref, mx_a);
            assert!(f.status);
            assert_eq!(f.forward_to.as_deref(), Some("1003"));
        }
        other => panic!("expected ForwardingEvent, got {other:?}"),
    }
    let Message::Response(Response::GetForwarding { items }) = c
        .request(Request::GetForwarding {
            device: "1001".to_owned(),
        })
        .await
    else {
        panic!("expected GetForwardingResponse");
    };
    let cfu = items
        .iter()
        .find(|i| i.forwarding_type == ForwardingType::Immediate)
        .expect("forwardImmediate listed");
    assert!(cfu.status);
    assert_eq!(cfu.forward_dn.as_deref(), Some("1003"));
    sim.incoming("+14255550200", "1001")
        .await
        .expect("incoming");
    let a: Vec<_> = c.events_for(&mx_a, 1).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![s(K::Diverted, "1001", "null", "callForwardImmediate")]
    );
    let cc = c.events_for(&mx_c, 1).await.remove(0);
    assert_eq!(
        shape(&cc),
        s(K::Delivered, "1003", "alerting", "callForwardImmediate")
    );
    assert_eq!(
        cc.last_redirection.as_ref().and_then(|d| d.as_id()),
        Some("1001")
    );
}

#[tokio::test]
async fn forwarding_on_no_answer_after_ring_count() {
    let mut config = rcc_simulators::pbx::PbxConfig::for_profile(Profile::Generic);
    config.switch.ring = Duration::from_millis(50);
    let sim = start_with(config).await;
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    let mx_c = c.monitor("1003").await;
    empty_ok(
        &c.request(Request::SetForwarding {
            device: "1001".to_owned(),
            forwarding_type: ForwardingType::NoAnswer,
            activate: true,
            forward_dn: Some("1003".to_owned()),
            ring_count: Some(2),
        })
        .await,
    );
    c.event().await;
    sim.incoming("+14255550200", "1001")
        .await
        .expect("incoming");
    let a: Vec<_> = c.events_for(&mx_a, 2).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![
            s(K::Delivered, "1001", "alerting", "newCall"),
            s(K::Diverted, "1001", "null", "callForwardNoAnswer"),
        ]
    );
    let cc = c.events_for(&mx_c, 1).await.remove(0);
    assert_eq!(
        shape(&cc),
        s(K::Delivered, "1003", "alerting", "callForwardNoAnswer")
    );
}

#[tokio::test]
async fn forwarding_changed_at_the_phone_is_reported() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let mx = c.monitor("1002").await;
    sim.phone_forwarding("1002", ForwardingType::Busy, Some("+14255550300"))
        .await
        .expect("feature code");
    match c.event().await {
        Event::Forwarding(f) => {
            assert_eq!(f.cross_ref, mx);
            assert_eq!(f.forwarding_type, ForwardingType::Busy);
            assert_eq!(f.forward_to.as_deref(), Some("+14255550300"));
        }
        other => panic!("expected ForwardingEvent, got {other:?}"),
    }
}

#[tokio::test]
async fn scenario_9_busy_destination_fails_the_call() {
    let sim = start(Profile::Generic).await;
    sim.set_external("+14255550999", ExternalParty::unreachable(Reach::Busy))
        .await
        .expect("script");
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    let id = made(c.request(make_call("1001", "+14255550999")).await)
        .call_id
        .expect("id");
    let a: Vec<_> = c.events_for(&mx_a, 3).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![
            s(K::ServiceInitiated, "1001", "initiated", "makeCall"),
            s(K::Originated, "1001", "connected", "newCall"),
            s(K::Failed, "+14255550999", "fail", "busy"),
        ]
    );
    empty_ok(
        &c.request(Request::ClearConnection {
            connection: conn(&id, "1001"),
            reason: None,
        })
        .await,
    );
    let a: Vec<_> = c.events_for(&mx_a, 1).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![s(K::ConnectionCleared, "1001", "null", "normalClearing")]
    );
}

#[tokio::test]
async fn busy_internal_device_fails_with_busy() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (mx_a, _, _) = connected_ab(&mut c).await;
    let mx_c = c.monitor("1003").await;
    c.request(make_call("1003", "1001")).await;
    let cc: Vec<_> = c.events_for(&mx_c, 3).await.iter().map(shape).collect();
    assert_eq!(cc[2], s(K::Failed, "1001", "fail", "busy"));
    // The busy device hears nothing of it.
    assert!(
        c.quiet(Duration::from_millis(200)).await.is_none(),
        "{mx_a} got an event"
    );
}

#[tokio::test]
async fn call_waiting_rings_a_second_call_and_answering_it_holds_the_first() {
    let sim = start(Profile::Generic).await;
    sim.set_call_waiting("1001", true)
        .await
        .expect("call waiting");
    let mut c = client(&sim).await;
    let (mx_a, _, first) = connected_ab(&mut c).await;
    let mx_c = c.monitor("1003").await;
    let second = made(c.request(make_call("1003", "1001")).await);
    let second = second.call_id.expect("call ID");
    c.events_for(&mx_c, 3).await;
    let waiting = c.events_for(&mx_a, 1).await;
    assert_eq!(
        shape(&waiting[0]),
        s(K::Delivered, "1001", "alerting", "newCall")
    );
    assert_eq!(call_id(&waiting[0]), second);

    // One waiting call at most: a third caller gets busy, and 1001 hears nothing of it.
    sim.incoming("+14255550300", "1001")
        .await
        .expect("incoming");
    assert!(
        c.quiet(Duration::from_millis(200)).await.is_none(),
        "{mx_a} heard of a third call"
    );

    empty_ok(
        &c.request(Request::AnswerCall {
            call: conn(&second, "1001"),
        })
        .await,
    );
    let a = c.events_for(&mx_a, 2).await;
    assert_eq!(shape(&a[0]), s(K::Held, "1001", "hold", "normal"));
    assert_eq!(call_id(&a[0]), first, "the call in progress is held");
    assert_eq!(
        shape(&a[1]),
        s(K::Established, "1001", "connected", "normal")
    );
    assert_eq!(call_id(&a[1]), second);
}

#[tokio::test]
async fn call_waiting_answered_after_the_client_held_the_first_call() {
    let sim = start(Profile::Generic).await;
    sim.set_call_waiting("1001", true)
        .await
        .expect("call waiting");
    let mut c = client(&sim).await;
    let (mx_a, mx_b, first) = connected_ab(&mut c).await;
    let second = sim
        .incoming("+14255550300", "1001")
        .await
        .expect("incoming");
    c.events_for(&mx_a, 1).await;
    empty_ok(
        &c.request(Request::HoldCall {
            call: conn(&first, "1001"),
            reservation: None,
        })
        .await,
    );
    empty_ok(
        &c.request(Request::AnswerCall {
            call: conn(&second, "1001"),
        })
        .await,
    );
    let a: Vec<_> = c.events_for(&mx_a, 2).await;
    assert_eq!(
        (shape(&a[0]), call_id(&a[0])),
        (s(K::Held, "1001", "hold", "normal"), first.clone())
    );
    assert_eq!(
        (shape(&a[1]), call_id(&a[1])),
        (s(K::Established, "1001", "connected", "normal"), second)
    );
    // bob, on the held call, hears the hold once.
    let b = c.events_for(&mx_b, 1).await;
    assert_eq!((b[0].kind, call_id(&b[0])), (K::Held, first));
    assert!(
        c.quiet(Duration::from_millis(200)).await.is_none(),
        "nothing more: the held call is not held twice"
    );
}

#[tokio::test]
async fn without_hold_on_answer_a_waiting_call_is_answered_only_after_a_hold() {
    let sim = start(Profile::Generic).await;
    sim.set_call_waiting("1001", true)
        .await
        .expect("call waiting");
    sim.configure_switch(|c| c.hold_on_answer = false)
        .await
        .expect("configure");
    let mut c = client(&sim).await;
    let (mx_a, _, first) = connected_ab(&mut c).await;
    let second = sim
        .incoming("+14255550300", "1001")
        .await
        .expect("incoming");
    c.events_for(&mx_a, 1).await;
    let answer = Request::AnswerCall {
        call: conn(&second, "1001"),
    };
    assert_eq!(
        error(&c.request(answer.clone()).await),
        (
            ErrorCategory::StateIncompatibility,
            "connectedCallExists".into()
        )
    );
    // At the desk phone too.
    assert!(sim.answer("1001").await.is_err());
    empty_ok(
        &c.request(Request::HoldCall {
            call: conn(&first, "1001"),
            reservation: None,
        })
        .await,
    );
    empty_ok(&c.request(answer).await);
    let a = c.events_for(&mx_a, 2).await;
    assert_eq!(
        (a[0].kind, call_id(&a[0]), a[1].kind, call_id(&a[1])),
        (K::Held, first, K::Established, second)
    );
}

#[rstest::rstest]
#[case::reject(Reach::Reject, "blocked")]
#[case::unallocated(Reach::Unallocated, "numberUnallocated")]
#[tokio::test]
async fn unreachable_external_destinations(#[case] reach: Reach, #[case] cause: &str) {
    let sim = start(Profile::Generic).await;
    sim.set_external("+15550001", ExternalParty::unreachable(reach))
        .await
        .expect("script");
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    c.request(make_call("1001", "+15550001")).await;
    let a = c.events_for(&mx_a, 3).await;
    assert_eq!(shape(&a[2]), s(K::Failed, "+15550001", "fail", cause));
}

#[tokio::test]
async fn external_party_answers_then_clears_as_scripted() {
    let sim = start(Profile::Generic).await;
    sim.set_external(
        "+15550002",
        ExternalParty {
            reach: Reach::Ring,
            answer_after_ms: Some(50),
            clear_after_ms: Some(150),
        },
    )
    .await
    .expect("script");
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    c.request(make_call("1001", "+15550002")).await;
    let a: Vec<_> = c.events_for(&mx_a, 5).await.iter().map(shape).collect();
    assert_eq!(
        a[2..],
        [
            s(K::Delivered, "+15550002", "connected", "newCall"),
            s(K::Established, "+15550002", "connected", "normal"),
            s(K::ConnectionCleared, "+15550002", "null", "normalClearing"),
        ]
    );
}

#[tokio::test]
async fn caller_abandons_while_alerting() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    sim.incoming("+14255550200", "1001")
        .await
        .expect("incoming");
    c.events_for(&mx_a, 1).await;
    sim.hang_up("+14255550200").await.expect("caller gives up");
    let a: Vec<_> = c.events_for(&mx_a, 1).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![s(
            K::ConnectionCleared,
            "+14255550200",
            "null",
            "normalClearing"
        )]
    );
    assert!(sim.calls().await.expect("calls").is_empty());
}

#[tokio::test]
async fn clear_call_clears_every_connection() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (mx_a, mx_b, id) = connected_ab(&mut c).await;
    empty_ok(
        &c.request(Request::ClearCall {
            call: conn(&id, "1001"),
        })
        .await,
    );
    assert_eq!(c.events_for(&mx_a, 1).await[0].kind, K::ConnectionCleared);
    assert_eq!(c.events_for(&mx_b, 1).await[0].kind, K::ConnectionCleared);
    assert!(sim.calls().await.expect("calls").is_empty());
}

#[tokio::test]
async fn second_connection_cleared_when_the_profile_asks() {
    let mut config = rcc_simulators::pbx::PbxConfig::for_profile(Profile::Generic);
    config.switch.second_connection_cleared = true;
    let sim = start_with(config).await;
    let mut c = client(&sim).await;
    let (_, mx_b, id) = connected_ab(&mut c).await;
    c.request(Request::ClearConnection {
        connection: conn(&id, "1001"),
        reason: None,
    })
    .await;
    let b: Vec<_> = c.events_for(&mx_b, 2).await.iter().map(shape).collect();
    assert_eq!(
        b,
        vec![
            s(K::ConnectionCleared, "1001", "connected", "normalClearing"),
            s(K::ConnectionCleared, "1002", "null", "normalClearing"),
        ]
    );
}

#[tokio::test]
async fn generate_digits_is_recorded_on_the_call() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (mx_a, _, id) = connected_ab(&mut c).await;
    empty_ok(
        &c.request(Request::GenerateDigits {
            connection: conn(&id, "1001"),
            digits: "12#".to_owned(),
            tone_duration: None,
        })
        .await,
    );
    let e = c.events_for(&mx_a, 1).await.remove(0);
    assert_eq!(e.kind, K::DigitsGenerated);
    assert_eq!(e.digits.as_deref(), Some("12#"));
    assert_eq!(sim.calls().await.expect("calls")[0].digits, "12#");
    let bad = c
        .request(Request::GenerateDigits {
            connection: conn(&id, "1001"),
            digits: "12x".to_owned(),
            tone_duration: None,
        })
        .await;
    assert_eq!(
        error(&bad),
        (ErrorCategory::Operation, "invalidParameterValue".into())
    );
}

#[tokio::test]
async fn do_not_disturb_is_reported_and_refuses_calls() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let mx_b = c.monitor("1002").await;
    let mx_a = c.monitor("1001").await;
    empty_ok(
        &c.request(Request::SetDoNotDisturb {
            device: "1002".to_owned(),
            on: true,
        })
        .await,
    );
    match c.event().await {
        Event::DoNotDisturb(d) => {
            assert_eq!(d.cross_ref, mx_b);
            assert!(d.on);
        }
        other => panic!("expected DoNotDisturbEvent, got {other:?}"),
    }
    c.request(make_call("1001", "1002")).await;
    let a = c.events_for(&mx_a, 3).await;
    assert_eq!(shape(&a[2]), s(K::Failed, "1002", "fail", "doNotDisturb"));
}

#[tokio::test]
async fn make_call_with_prompt_rings_the_caller_first() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let mx_a = c.monitor("1001").await;
    let id = made(
        c.request(Request::MakeCall {
            calling: "1001".to_owned(),
            called: "1002".to_owned(),
            auto_originate: Some(AutoOriginate::Prompt),
        })
        .await,
    )
    .call_id
    .expect("id");
    let first = c.events_for(&mx_a, 1).await.remove(0);
    assert_eq!(
        shape(&first),
        s(K::Delivered, "1001", "alerting", "newCall")
    );
    sim.answer("1001").await.expect("off-hook");
    let a: Vec<_> = c.events_for(&mx_a, 3).await.iter().map(shape).collect();
    assert_eq!(
        a,
        vec![
            s(K::ServiceInitiated, "1001", "initiated", "makeCall"),
            s(K::Originated, "1001", "connected", "newCall"),
            s(K::Delivered, "1002", "connected", "newCall"),
        ]
    );
    assert_eq!(sim.calls().await.expect("calls")[0].call_id, id);
}

#[tokio::test]
async fn several_monitors_on_one_device_each_get_their_own_events() {
    let sim = start(Profile::Generic).await;
    let mut c1 = client(&sim).await;
    let mut c2 = client(&sim).await;
    let x1 = c1.monitor("1001").await;
    let x2 = c2.monitor("1001").await;
    let x3 = c2.monitor("1001").await;
    assert!(x1 != x2 && x2 != x3);
    sim.incoming("+15550003", "1001").await.expect("incoming");
    assert_eq!(c1.events_for(&x1, 1).await[0].kind, K::Delivered);
    assert_eq!(c2.events_for(&x2, 1).await[0].kind, K::Delivered);
    assert_eq!(c2.events_for(&x3, 1).await[0].kind, K::Delivered);
    // MonitorStop of another link's monitor is refused; of its own succeeds.
    let e = c1
        .request(Request::MonitorStop {
            cross_ref: x2.clone(),
        })
        .await;
    assert_eq!(
        error(&e),
        (ErrorCategory::Operation, "invalidMonitorCrossRefID".into())
    );
    empty_ok(&c2.request(Request::MonitorStop { cross_ref: x2 }).await);
}

#[tokio::test]
async fn snapshot_device_lists_calls_with_states() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (_, _, id) = connected_ab(&mut c).await;
    let Message::Response(Response::SnapshotDevice { calls }) = c
        .request(Request::SnapshotDevice {
            device: "+14255551001".to_owned(),
        })
        .await
    else {
        panic!("expected SnapshotDeviceResponse");
    };
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].connection, conn(&id, "1001"));
    let states: Vec<_> = calls[0]
        .states
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(states, vec!["connected", "connected"]);
}

#[rstest::rstest]
#[case::unknown_call(Request::AnswerCall { call: conn("999", "1001") }, ErrorCategory::Operation, "invalidCallID")]
#[case::unknown_device(Request::MonitorStart { object: rcc_protocol::csta::MonitorObject::Device("7777".into()), monitor_type: None }, ErrorCategory::Operation, "invalidDeviceID")]
#[case::bad_calling(
    make_call("+15551", "1002"),
    ErrorCategory::Operation,
    "invalidCallingDeviceID"
)]
#[case::bad_called(
    make_call("1001", "bob"),
    ErrorCategory::Operation,
    "invalidCalledDeviceID"
)]
#[case::unknown_xref(Request::MonitorStop { cross_ref: "nope".into() }, ErrorCategory::Operation, "invalidMonitorCrossRefID")]
#[case::forward_to_nothing(Request::SetForwarding { device: "1001".into(), forwarding_type: ForwardingType::Immediate, activate: true, forward_dn: None, ring_count: None }, ErrorCategory::Operation, "invalidForwardingDestination")]
#[tokio::test]
async fn requests_that_do_not_fit_get_the_right_error(
    #[case] request: Request,
    #[case] category: ErrorCategory,
    #[case] value: &str,
) {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    assert_eq!(
        error(&c.request(request).await),
        (category, value.to_owned())
    );
}

#[tokio::test]
async fn state_errors_name_the_state() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let (_, _, id) = connected_ab(&mut c).await;
    let e = c
        .request(Request::AnswerCall {
            call: conn(&id, "1002"),
        })
        .await;
    assert_eq!(
        error(&e),
        (
            ErrorCategory::StateIncompatibility,
            "invalidConnectionState".into()
        )
    );
    let e = c.request(make_call("1001", "1003")).await;
    assert_eq!(
        error(&e),
        (
            ErrorCategory::StateIncompatibility,
            "invalidCallingDeviceState".into()
        )
    );
    let e = c
        .request(Request::AnswerCall {
            call: conn(&id, "1003"),
        })
        .await;
    assert_eq!(
        error(&e),
        (ErrorCategory::Operation, "invalidConnectionID".into())
    );
}

#[tokio::test]
async fn devices_closed_to_cti_are_a_privilege_violation() {
    let sim = start(Profile::Generic).await;
    let mut locked = rcc_simulators::pbx::DeviceConfig::new("1009", None);
    locked.cti = false;
    sim.add_device(locked).await.expect("add device");
    let mut c = client(&sim).await;
    let e = c
        .request(Request::MonitorStart {
            object: rcc_protocol::csta::MonitorObject::Device("1009".into()),
            monitor_type: None,
        })
        .await;
    assert_eq!(
        error(&e),
        (
            ErrorCategory::Operation,
            "privilegeViolationSpecifiedDevice".into()
        )
    );
}

#[tokio::test]
async fn monitor_limit_per_device() {
    let mut config = rcc_simulators::pbx::PbxConfig::for_profile(Profile::Generic);
    config.switch.monitors_per_device = 2;
    let sim = start_with(config).await;
    let mut c = client(&sim).await;
    c.monitor("1001").await;
    c.monitor("1001").await;
    let e = c
        .request(Request::MonitorStart {
            object: rcc_protocol::csta::MonitorObject::Device("1001".into()),
            monitor_type: None,
        })
        .await;
    assert_eq!(
        error(&e),
        (
            ErrorCategory::SubscribedResourceAvailability,
            "objectMonitorLimitExceeded".into()
        )
    );
}

#[tokio::test]
async fn monitors_go_with_their_link() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    c.monitor("1001").await;
    assert_eq!(sim.links().await.expect("links")[0].monitors.len(), 1);
    drop(c);
    for _ in 0..100 {
        if sim.links().await.expect("links").is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the link and its monitors were not released");
}
