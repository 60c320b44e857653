//! SIP rules: the INVITE's answer, retransmissions and ACK, session timers, requests outside
//! a dialog, broken bodies, branch-less clients, and the codes RFC 3261 asks for.

use super::*;

#[test]
fn invite_answered_with_normal_status_timer_and_record_route() {
    let mut h = Harness::new(CONFIG);
    let ok = h.one(invite(
        "c1",
        "z9hG4bKinv1",
        "Supported: timer\nSession-Expires: 3600\n",
    ));
    assert_eq!(ok.status(), Some(200));
    assert_eq!(
        body(&ok),
        csta::Message::Response(Response::RequestSystemStatus {
            status: csta::SystemStatusValue::Normal
        })
    );
    assert_eq!(
        ok.header("Record-Route"),
        Some("<sip:fe.lab.example:5061;transport=tls;lr>")
    );
    assert_eq!(
        ok.header("Session-Expires"),
        Some("1800;refresher=uac"),
        "capped to the configured 1800"
    );
    assert_eq!(ok.header("Require"), Some("timer"));
    assert!(ok.header("Allow").is_some_and(|a| a.contains("UPDATE")));
    assert!(ok.to_header().expect("To").tag().is_some());
    assert_eq!(
        ok.header("Contact"),
        Some("<sip:rccgateway@gw.lab.example:5066;transport=tcp>")
    );
}

#[test]
fn retransmitted_invite_is_absorbed_and_the_2xx_is_retransmitted_until_ack() {
    let mut h = Harness::new(CONFIG);
    let a = h.one(invite("c1", "z9hG4bKinv1", ""));
    assert!(
        h.send(invite("c1", "z9hG4bKinv1", "")).is_empty(),
        "RFC 6026 Accepted state absorbs the retransmitted INVITE"
    );
    assert_eq!(h.gw.session_count(), 1);
    h.tick(Duration::from_millis(500));
    let again = h.responses.last().expect("2xx retransmitted after T1");
    assert_eq!(again.to_bytes(), a.to_bytes(), "the same 2xx");
}

#[test]
fn unacknowledged_2xx_is_retransmitted_then_the_session_ends() {
    let mut h = Harness::new(CONFIG);
    h.one(invite("c1", "z9hG4bKinv1", ""));
    h.tick(Duration::from_millis(500));
    h.tick(Duration::from_millis(1000));
    assert_eq!(h.responses.len(), 3, "T1, then 2·T1");
    h.tick(Duration::from_secs(40));
    assert_eq!(h.gw.session_count(), 0);
    assert!(
        h.requests.iter().any(|r| r.method() == Some(&Method::Bye)),
        "BYE after 64·T1 without ACK"
    );
}

#[test]
fn ack_stops_retransmissions() {
    let mut h = Harness::new(CONFIG);
    h.signed_in("c1");
    let n = h.responses.len();
    h.tick(Duration::from_secs(5));
    assert_eq!(h.responses.len(), n);
    assert_eq!(h.gw.session_count(), 1);
}

#[test]
fn session_timer_expiry_ends_the_session_and_update_refreshes_it() {
    let mut h = Harness::new(CONFIG);
    let ok = h.signed_in("c1");
    h.tick(Duration::from_secs(1700));
    let update = h.in_dialog(&ok, Method::Update, 2, "z9hG4bKupd", None, b"");
    let r = h.one(update);
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.header("Session-Expires"), Some("1800;refresher=uac"));
    h.tick(Duration::from_secs(1700));
    assert_eq!(h.gw.session_count(), 1, "refreshed 1700 s ago by UPDATE");
    h.tick(Duration::from_secs(101));
    assert_eq!(h.gw.session_count(), 0, "expired");
    let bye = h
        .requests
        .iter()
        .find(|r| r.method() == Some(&Method::Bye))
        .expect("BYE");
    assert_eq!(
        bye.request_uri(),
        Some("sip:alice@contoso.lab;opaque=user:epid:e1;gruu")
    );
    assert_eq!(
        bye.header("Route"),
        Some("<sip:fe.lab.example:5061;transport=tls;lr>")
    );
    assert_eq!(
        bye.header("To"),
        Some("<sip:alice@contoso.lab>;tag=a1;epid=e1"),
        "epid echoed"
    );
}

#[test]
fn reinvite_refreshes_without_a_new_session() {
    let mut h = Harness::new(CONFIG);
    let ok = h.signed_in("c1");
    let re = h.in_dialog(
        &ok,
        Method::Invite,
        2,
        "z9hG4bKre",
        Some("application/csta+xml"),
        &rss("tel:+14255551001;ext=1001"),
    );
    let r = h.one(re);
    assert_eq!(r.status(), Some(200));
    assert!(matches!(
        body(&r),
        csta::Message::Response(Response::RequestSystemStatus { .. })
    ));
    assert_eq!(h.gw.session_count(), 1);
}

#[test]
fn too_small_session_interval_gets_422_with_min_se() {
    let mut h = Harness::new(CONFIG);
    let r = h.one(invite(
        "c1",
        "z9hG4bKinv1",
        "Supported: timer\nSession-Expires: 30\n",
    ));
    assert_eq!(r.status(), Some(422));
    assert_eq!(r.header("Min-SE"), Some("90"));
}

#[test]
fn requests_outside_a_known_dialog() {
    let mut h = Harness::new(CONFIG);
    let ok = h.signed_in("c1");
    let mut stranger = h.in_dialog(&ok, Method::Info, 2, "z9hG4bKx", None, b"");
    stranger.set_header("Call-ID", "unknown");
    assert_eq!(h.one(stranger).status(), Some(481));
    let options = sip(
        "OPTIONS sip:gw.lab.example SIP/2.0
Via: SIP/2.0/TLS fe.lab.example:5061;branch=z9hG4bKopt
Max-Forwards: 70
From: <sip:fe.lab.example>;tag=o1
To: <sip:gw.lab.example>
Call-ID: opt1
CSeq: 1 OPTIONS
",
        None,
        b"",
    );
    let r = h.one(options);
    assert_eq!(r.status(), Some(200));
    assert!(r.header("Allow").is_some());
    let refer = h.in_dialog(
        &ok,
        Method::parse("REFER").expect("method"),
        3,
        "z9hG4bKref",
        None,
        b"",
    );
    let r = h.one(refer);
    assert_eq!(r.status(), Some(501));
    assert!(r.header("Allow").is_some());
}

#[test]
fn wrong_and_broken_bodies() {
    let mut h = Harness::new(CONFIG);
    let ok = h.signed_in("c1");
    let plain = h.in_dialog(&ok, Method::Info, 2, "z9hG4bKi2", Some("text/plain"), b"hi");
    let r = h.one(plain);
    assert_eq!(r.status(), Some(415));
    assert_eq!(r.header("Accept"), Some("application/csta+xml"));
    let broken = h.in_dialog(
        &ok,
        Method::Info,
        3,
        "z9hG4bKi3",
        Some("application/csta+xml"),
        b"<MakeCall>",
    );
    let r = h.one(broken);
    assert_eq!(r.status(), Some(400));
    assert!(
        r.reason().is_some_and(|why| why.contains("CSTA body")),
        "{:?}",
        r.reason()
    );
    let mut sdp = invite("c2", "z9hG4bKinv2", "");
    sdp.set_header("Content-Type", "application/sdp");
    assert_eq!(h.one(sdp).status(), Some(488));
}

#[test]
fn branchless_client_with_cseq_back_to_one() {
    let mut h = Harness::new(CONFIG);
    let ok = h.signed_in("c1");
    // pidgin-sipe: re-INVITE CSeq 7, ACK CSeq 1, then INFO CSeq 2, all without a branch.
    let re = h.in_dialog(
        &ok,
        Method::Invite,
        7,
        "",
        Some("application/csta+xml"),
        &rss("tel:+14255551001;ext=1001"),
    );
    assert_eq!(h.one(re).status(), Some(200));
    let ack = h.in_dialog(&ok, Method::Ack, 1, "", None, b"");
    assert!(h.send(ack).is_empty());
    let info = h.in_dialog(
        &ok,
        Method::Info,
        2,
        "",
        Some("application/csta+xml"),
        &info_body(Request::GetCstaFeatures { line: None }),
    );
    let r = h.one(info.clone());
    assert_eq!(r.status(), Some(200));
    assert!(matches!(
        body(&r),
        csta::Message::Response(Response::GetCstaFeatures { .. })
    ));
    // A retransmission of that INFO (same RFC 2543 key) gets the same answer.
    assert_eq!(h.one(info).to_bytes(), r.to_bytes());
}

#[test]
fn out_of_dialog_methods_get_405_501_or_481_as_rfc_3261_says() {
    let mut h = Harness::new(CONFIG);
    for (method, code) in [
        ("REGISTER", 405),
        ("MESSAGE", 405),
        ("SUBSCRIBE", 405),
        ("REFER", 405),
        ("FOO", 501),
        ("BYE", 481),
        ("INFO", 481),
    ] {
        let r = h.one(out_of_dialog(method, ""));
        assert_eq!(r.status(), Some(code), "{method}");
        if code == 405 || code == 501 {
            assert!(r.header("Allow").is_some(), "{method}: Allow");
        }
    }
}

#[test]
fn a_required_extension_the_gateway_lacks_gets_420_with_unsupported() {
    let mut h = Harness::new(CONFIG);
    let r = h.one(invite(
        "c420",
        "z9hG4bK420",
        "Supported: timer\nRequire: timer, 100rel, foo\n",
    ));
    assert_eq!(r.status(), Some(420));
    assert_eq!(r.header("Unsupported"), Some("100rel, foo"));
    assert_eq!(h.gw.session_count(), 0);
    // `timer` alone is supported.
    let r = h.one(invite(
        "c200",
        "z9hG4bK200",
        "Supported: timer\nRequire: timer\n",
    ));
    assert_eq!(r.status(), Some(200));
}
