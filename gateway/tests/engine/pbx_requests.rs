//! Client requests at the PBX and the events that come back: unanswered event INFOs, the
//! PBX window, the gateway-added time, requests waiting for a monitor.

use super::*;

#[test]
fn unanswered_event_infos_are_not_fatal_but_481_is() {
    let mut h = Harness::new(CONFIG);
    let ok = h.signed_in("c1");
    // MonitorStart: the gateway asks the PBX, whose answer we forge.
    h.monitor_started(&ok, "px1");
    let r = h.responses.last().expect("MonitorStartResponse").clone();
    let csta::Message::Response(Response::MonitorStart { cross_ref, .. }) = body(&r) else {
        panic!("MonitorStartResponse expected");
    };
    // A PBX event reaches the client with the client's own cross-reference ID.
    let event = |kind, state| {
        let mut e = csta::CallEvent::new(kind, "px1");
        e.connection = Some(csta::ConnectionId::new("C1", "1001"));
        e.local_state = Some(state);
        ScriptedPbx::event(csta::Event::Call(e))
    };
    let delivered = event(
        csta::CallEventKind::Delivered,
        csta::LocalConnectionState::Alerting,
    );
    h.gw.pbx_bytes(&delivered, h.now);
    h.drain();
    let info = h.requests.last().expect("event INFO").clone();
    let csta::Message::Event(csta::Event::Call(c)) = body(&info) else {
        panic!("event expected");
    };
    assert_eq!(c.cross_ref, cross_ref);
    assert_eq!(
        c.connection.and_then(|c| c.device_id).as_deref(),
        Some("tel:+14255551001;ext=1001"),
        "the line echoed verbatim"
    );
    // Never answered: given up after the event timeout, the session stays.
    h.tick(Duration::from_secs(9));
    assert_eq!(h.gw.session_count(), 1);
    // The same event again is dropped as a repeat: nothing new for the client.
    let sent = h.requests.len();
    h.gw.pbx_bytes(&delivered, h.now);
    h.drain();
    assert_eq!(h.requests.len(), sent, "a repeated event is not sent");
    assert!(
        h.gw_metrics()
            .contains("rcc_gateway_repeated_events_total 1"),
        "and it is counted"
    );
    // Another event, answered 481: the session ends.
    let established = event(
        csta::CallEventKind::Established,
        csta::LocalConnectionState::Connected,
    );
    h.gw.pbx_bytes(&established, h.now);
    h.drain();
    let info = h.requests.last().expect("event INFO").clone();
    let resp = Message::response_to(&info, 481, "Call/Transaction Does Not Exist", "x");
    h.gw.sip_message(FlowId(1), resp, h.now);
    h.drain();
    assert_eq!(h.gw.session_count(), 0);
}

/// Backpressure towards the PBX: with `max_in_flight` requests unanswered, the next client
/// request is answered at once with a CSTAErrorCode (performance management) and counted, not
/// queued or dropped.
#[test]
fn requests_beyond_the_pbx_window_get_a_csta_error_and_are_counted() {
    let toml = CONFIG.replace(
        "address = \"127.0.0.1:1040\"",
        "address = \"127.0.0.1:1040\"\nmax_in_flight = 3",
    );
    // The window is 3: the link-up GetCSTAFeatures (never answered here) and two MakeCalls.
    let mut h = Harness::new(&toml);
    let ok = h.signed_in("c1");
    h.monitor_started(&ok, "px1");
    let make_call = |h: &Harness, n: u32| {
        h.in_dialog(
            &ok,
            Method::Info,
            10 + n,
            &format!("z9hG4bKmc{n}"),
            Some("application/csta+xml"),
            &info_body(Request::MakeCall {
                calling: "tel:+14255551001;ext=1001".into(),
                called: "tel:+14255551002".into(),
                auto_originate: None,
            }),
        )
    };
    let sent_before = h.pbx.sent().len();
    for n in 0..2 {
        let info = make_call(&h, n);
        assert!(h.send(info).is_empty(), "request {n} waits for the PBX");
    }
    assert_eq!(
        h.pbx.sent().len() - sent_before,
        2,
        "two MakeCalls reached the PBX"
    );
    let third = make_call(&h, 2);
    let answer = h.one(third);
    assert_eq!(answer.status(), Some(200));
    let csta::Message::Error(e) = body(&answer) else {
        panic!("a CSTAErrorCode, got {:?}", body(&answer));
    };
    assert_eq!(e.value, "performanceLimitExceeded");
    assert_eq!(
        h.pbx.sent().len() - sent_before,
        2,
        "the third never reached the PBX"
    );
    let text = h.gw_metrics();
    assert!(
        text.contains(r#"outcome="busy""#),
        "the refusal is counted:\n{text}"
    );
}

/// The gateway-added time of a request is its inbound step plus its outbound step, not the
/// time it spent at the PBX.
#[test]
fn gateway_added_time_sums_the_two_steps_of_a_request() {
    let mut h = Harness::new(CONFIG);
    let ok = h.signed_in("c1");
    h.monitor_started(&ok, "px1");
    let info = h.in_dialog(
        &ok,
        Method::Info,
        10,
        "z9hG4bKmc",
        Some("application/csta+xml"),
        &info_body(Request::MakeCall {
            calling: "tel:+14255551001;ext=1001".into(),
            called: "tel:+14255551002".into(),
            auto_originate: None,
        }),
    );
    let read = h.now;
    h.gw.begin_step(read);
    h.gw.sip_message(FlowId(1), info, read);
    h.drain();
    h.gw.end_step(read + Duration::from_micros(300));
    // The PBX takes 50 ms; the gateway's outbound step 200 µs.
    let bytes = h.answer_to_last(Response::MakeCall {
        calling: csta::ConnectionId::new("C9", "1001"),
    });
    let back = read + Duration::from_millis(50);
    h.gw.begin_step(back);
    h.gw.pbx_bytes(&bytes, back);
    h.drain();
    h.gw.end_step(back + Duration::from_micros(200));
    let text = h.gw_metrics();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    assert_eq!(line("rcc_gateway_added_seconds_count"), 1.0);
    let sum = line("rcc_gateway_added_seconds_sum");
    assert!((sum - 0.0005).abs() < 1e-9, "300 µs + 200 µs, got {sum}");
}

/// A session with two requests waiting for its line's monitor, interleaved with another
/// session's, records the PBX answer once.
#[test]
fn waiting_requests_record_the_monitor_answer_once_per_session() {
    let (dir, toml) = traced("");
    let mut h = Harness::new(&toml);
    let a = h.signed_in("c1");
    let b = h.one(invite_as("alice", "1001", "c2", "z9hG4bKinv2", ""));
    assert_eq!(b.status(), Some(200));
    let monitor = |h: &Harness, ok: &Message, cseq: u32| {
        h.in_dialog(
            ok,
            Method::Info,
            cseq,
            &format!("z9hG4bKm{cseq}{}", ok.call_id().unwrap_or_default()),
            Some("application/csta+xml"),
            &info_body(Request::MonitorStart {
                object: csta::MonitorObject::Device("tel:+14255551001;ext=1001".into()),
                monitor_type: None,
            }),
        )
    };
    for (ok, cseq) in [(&a, 2), (&b, 2), (&a, 3)] {
        let info = monitor(&h, ok, cseq);
        assert!(h.send(info).is_empty(), "waits for the PBX");
    }
    let bytes = h.answer_to_last(Response::MonitorStart {
        cross_ref: "px1".into(),
        existing_calls: None,
    });
    h.traces.clear();
    h.gw.pbx_bytes(&bytes, h.now);
    h.drain();
    let mut answered: Vec<rcc_gateway::core::SessionId> = h
        .traces
        .iter()
        .filter_map(|n| match n {
            SessionNote::Data {
                session,
                leg: Leg::Pbx,
                way: Way::In,
                ..
            } => Some(*session),
            _ => None,
        })
        .collect();
    answered.sort_unstable();
    assert_eq!(answered.len(), 2, "one record per session: {answered:?}");
    assert_ne!(answered[0], answered[1]);
    let _ = std::fs::remove_dir_all(&dir);
}
