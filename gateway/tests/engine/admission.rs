//! Who gets a session: the PBX link down, the session limit, congested connections, a
//! reloaded policy, OPTIONS for dispatchers, and drain mode.

use super::*;

#[test]
fn pbx_down_gives_503_or_a_disabled_status() {
    let mut h = Harness::new(CONFIG);
    h.gw.pbx_disconnected("test", h.now);
    h.drain();
    let r = h.one(invite("c1", "z9hG4bKinv1", ""));
    assert_eq!(r.status(), Some(503));
    assert_eq!(r.header("Retry-After"), Some("30"));
    let mut h = Harness::new(&format!("{CONFIG}\n").replace("[pbx]", "[pbx]\n").replace(
        "session_expires_s = 1800",
        "session_expires_s = 1800\npbx_down = \"status\"",
    ));
    h.gw.pbx_disconnected("test", h.now);
    h.drain();
    let r = h.one(invite("c1", "z9hG4bKinv1", ""));
    assert_eq!(r.status(), Some(200));
    assert_eq!(
        body(&r),
        csta::Message::Response(Response::RequestSystemStatus {
            status: csta::SystemStatusValue::Disabled
        })
    );
}

#[test]
fn session_limit_gives_503() {
    let mut h = Harness::new(&CONFIG.replace(
        "session_expires_s = 1800",
        "session_expires_s = 1800\nmax_sessions = 1",
    ));
    h.signed_in("c1");
    assert_eq!(h.one(invite("c2", "z9hG4bKinv2", "")).status(), Some(503));
}

/// A connection whose peer reads slowly: new work from it gets 503 with Retry-After (counted),
/// what ends or keeps work is still served, and everything is served again once it drains.
#[test]
fn a_congested_connection_gets_503_for_new_work_only() {
    let mut h = Harness::new(CONFIG);
    let ok = h.signed_in("c1");
    h.monitor_started(&ok, "px1");
    let make_call = |h: &Harness, cseq: u32, branch: &str| {
        h.in_dialog(
            &ok,
            Method::Info,
            cseq,
            branch,
            Some("application/csta+xml"),
            &info_body(Request::MakeCall {
                calling: "tel:+14255551001;ext=1001".into(),
                called: "tel:+14255551002".into(),
                auto_originate: None,
            }),
        )
    };
    h.gw.set_flow_congested(FlowId(1), true);
    let sent_before = h.pbx.sent().len();
    let refused = h.one(make_call(&h, 10, "z9hG4bKmc1"));
    assert_eq!(refused.status(), Some(503));
    assert_eq!(refused.header("Retry-After"), Some("30"));
    assert_eq!(h.pbx.sent().len(), sent_before, "nothing reached the PBX");
    assert_eq!(
        h.one(invite("c2", "z9hG4bKinv2", "")).status(),
        Some(503),
        "no new session either"
    );
    let text = h.gw_metrics();
    assert!(
        text.contains(r#"reason="congested"} 2"#),
        "both refusals are counted:\n{text}"
    );
    // A refresh keeps the session; it is served.
    let update = h.in_dialog(&ok, Method::Update, 11, "z9hG4bKup", None, b"");
    assert_eq!(h.one(update).status(), Some(200));
    // Drained: requests reach the PBX again.
    h.gw.set_flow_congested(FlowId(1), false);
    assert!(h.send(make_call(&h, 12, "z9hG4bKmc2")).is_empty());
    assert_eq!(
        h.pbx.sent().len(),
        sent_before + 1,
        "the MakeCall reached the PBX"
    );
    // Congested again: BYE still ends the session (its MonitorStop goes out).
    h.gw.set_flow_congested(FlowId(1), true);
    let bye = h.in_dialog(&ok, Method::Bye, 13, "z9hG4bKbye", None, b"");
    assert_eq!(h.one(bye).status(), Some(200));
    assert_eq!(h.gw.session_count(), 0);
}

#[test]
fn a_reloaded_policy_ends_only_the_sessions_it_no_longer_allows() {
    let mut h = Harness::new(CONFIG);
    h.signed_in("c-alice");
    let bob = h.one(invite_as("bob", "1002", "c-bob", "z9hG4bKbob", ""));
    assert_eq!(bob.status(), Some(200));
    assert_eq!(h.gw.session_count(), 2);
    let with_table = |users: &str| {
        let mut c = config::parse(&format!("{CONFIG}\n[authorization]\n{users}")).expect("config");
        c.authorization.file_rows = Some(Vec::new());
        Policy::build(&c).expect("policy")
    };
    // Both still allowed: nothing happens.
    let both = with_table(
        "user = [{ uri = \"sip:alice@contoso.lab\", lines = [\"tel:+14255551001;ext=1001\"] },\n\
                 { uri = \"sip:bob@contoso.lab\", lines = [\"tel:+14255551002;ext=1002\"] }]",
    );
    let before = h.requests.len();
    assert_eq!(h.gw.set_policy(both, h.now), 0);
    h.drain();
    assert_eq!(h.requests.len(), before, "no request to any client");
    // bob is no longer in the table: his session gets a BYE, alice's goes on.
    let alice_only = with_table(
        "user = [{ uri = \"sip:alice@contoso.lab\", lines = [\"tel:+14255551001;ext=1001\"] }]",
    );
    assert_eq!(h.gw.set_policy(alice_only, h.now), 1);
    h.drain();
    let byes: Vec<&Message> = h.requests[before..]
        .iter()
        .filter(|m| m.method() == Some(&Method::Bye))
        .collect();
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].call_id().ok(), Some("c-bob"));
    assert_eq!(h.gw.session_count(), 1);
    assert!(
        h.gw_metrics()
            .contains("rcc_gateway_sessions_ended_total{reason=\"reload\"} 1"),
        "{}",
        h.gw_metrics()
    );
}

#[test]
fn options_say_503_while_the_pbx_link_is_down_so_a_dispatcher_can_route_around() {
    let mut h = Harness::new(CONFIG);
    assert_eq!(
        h.one(out_of_dialog_options("z9hG4bKo1")).status(),
        Some(200)
    );
    let ok = h.signed_in("c1");
    h.gw.pbx_disconnected("lost", h.now);
    h.drain();
    let r = h.one(out_of_dialog_options("z9hG4bKo2"));
    assert_eq!(r.status(), Some(503));
    assert_eq!(r.reason(), Some("Service Unavailable (PBX link down)"));
    assert_eq!(r.header("Retry-After"), Some("30"));
    // In the dialog, OPTIONS is a keep-alive of a session that goes on.
    let keep_alive = h.in_dialog(&ok, Method::Options, 2, "z9hG4bKo3", None, b"");
    assert_eq!(h.one(keep_alive).status(), Some(200));
    // Configured to always answer 200.
    let always = CONFIG.replace(
        "session_expires_s = 1800",
        "session_expires_s = 1800\noptions_when_unavailable = \"200\"",
    );
    let mut h = Harness::new(&always);
    h.gw.pbx_disconnected("lost", h.now);
    h.drain();
    assert_eq!(
        h.one(out_of_dialog_options("z9hG4bKo4")).status(),
        Some(200)
    );
}

#[test]
fn a_draining_gateway_serves_its_sessions_and_refuses_new_ones() {
    let mut h = Harness::new(CONFIG);
    let ok = h.signed_in("c1");
    h.gw.set_draining(true);
    let r = h.one(invite_as("bob", "1002", "c2", "z9hG4bKbob", ""));
    assert_eq!(r.status(), Some(503));
    assert_eq!(r.reason(), Some("Service Unavailable (draining)"));
    assert!(r.header("Retry-After").is_some());
    assert_eq!(
        h.one(out_of_dialog_options("z9hG4bKo1")).status(),
        Some(503)
    );
    // alice's session is served: a GetCSTAFeatures is answered.
    let features = h.in_dialog(
        &ok,
        Method::Info,
        2,
        "z9hG4bKf",
        Some("application/csta+xml"),
        &info_body(Request::GetCstaFeatures { line: None }),
    );
    assert_eq!(h.one(features).status(), Some(200));
    assert!(h.gw_metrics().contains("rcc_gateway_draining 1"));
    assert!(
        h.gw_metrics()
            .contains("rcc_gateway_refused_total{reason=\"draining\"} 1")
    );
    h.gw.set_draining(false);
    let r = h.one(invite_as("bob", "1002", "c3", "z9hG4bKbob2", ""));
    assert_eq!(r.status(), Some(200));
    assert_eq!(h.gw.session_count(), 2);
}

#[test]
fn a_reloaded_numbering_plan_ends_the_sessions_whose_line_now_maps_elsewhere() {
    let mut h = Harness::new(CONFIG);
    h.signed_in("c-alice");
    let before = h.requests.len();
    let same = Policy::build(&config::parse(CONFIG).expect("config")).expect("policy");
    assert_eq!(h.gw.set_policy(same, h.now), 0, "same plan: nothing ends");
    // The line's device was its `;ext=` (1001); now it is the number without `+`.
    let remapped =
        config::parse(&format!("{CONFIG}\n[numbering]\nline = \"digits\"\n")).expect("config");
    assert_eq!(
        h.gw.set_policy(Policy::build(&remapped).expect("policy"), h.now),
        1
    );
    h.drain();
    let byes = h.requests[before..]
        .iter()
        .filter(|m| m.method() == Some(&Method::Bye))
        .count();
    assert_eq!(byes, 1, "the client signs in again onto the right monitor");
    assert_eq!(h.gw.session_count(), 0);
}
