//! The `sipe` profile sends what the real pidgin-sipe sends (captures/13-real-sipe.pcapng, a
//! session of Debian's pidgin-sipe 1.25 against the lab): GetCSTAFeatures and MonitorStart go
//! out together right after the ACK, without waiting for the first answer, and in-dialog
//! requests other than a re-INVITE carry no Contact. Lync 2013 waits for the features first.

use std::time::{Duration, Instant};

use rcc_protocol::csta::{self, Request, Response};
use rcc_protocol::sip::{Message, Method};
use rcc_simulators::lync::{ClientProfile, Endpoint, EndpointConfig};

fn endpoint(profile: ClientProfile) -> Endpoint {
    Endpoint::new(EndpointConfig {
        user: "sip:alice@contoso.lab".into(),
        epid: "24c1cfd6bfa0".into(),
        line: "tel:+14255551001;ext=1001".into(),
        line_server: "sip:rccgateway@rcc.lab.example".into(),
        profile,
        refresh: None,
        reestablish: false,
        reestablish_delay: Duration::from_secs(5),
        address: "127.0.0.1:44910".into(),
    })
}

fn accepted(invite: &Message) -> Message {
    let body = csta::encode(
        &csta::Message::Response(Response::RequestSystemStatus {
            status: csta::SystemStatusValue::Normal,
        }),
        csta::ED3,
    );
    let mut ok = Message::response_to(invite, 200, "OK", "gwtag");
    ok.push_header("Contact", "<sip:rccgateway@127.0.0.1:5065;transport=tcp>");
    ok.push_header("Session-Expires", "1800;refresher=uac");
    ok.with_body("application/csta+xml", None, body.into_bytes())
}

/// What the endpoint sends once its sign-in INVITE is accepted, before any other answer.
fn after_the_invite(profile: ClientProfile) -> Vec<Message> {
    let now = Instant::now();
    let mut e = endpoint(profile);
    e.sign_in(now);
    let invite = e.poll_output().expect("the sign-in INVITE");
    assert_eq!(invite.method(), Some(&Method::Invite));
    e.receive(accepted(&invite), now);
    std::iter::from_fn(|| e.poll_output()).collect()
}

fn csta_request(m: &Message) -> Option<Request> {
    match csta::decode(&m.body).ok()?.message {
        csta::Message::Request(r) => Some(r),
        _ => None,
    }
}

#[test]
fn sipe_sends_monitor_start_with_get_csta_features_and_no_contact() {
    let sent = after_the_invite(ClientProfile::Sipe);
    let methods: Vec<&str> = sent
        .iter()
        .map(|m| m.method().map_or("?", Method::as_str))
        .collect();
    assert_eq!(methods, ["ACK", "INFO", "INFO"], "{sent:?}");
    assert!(matches!(
        csta_request(&sent[1]),
        Some(Request::GetCstaFeatures { .. })
    ));
    assert!(matches!(
        csta_request(&sent[2]),
        Some(Request::MonitorStart { .. })
    ));
    assert!(
        sent.iter().all(|m| m.header("Contact").is_none()),
        "pidgin-sipe's ACK and INFOs carry no Contact"
    );
    assert_eq!(
        sent[1].header("User-Agent"),
        Some("Purple/2.14.12 Sipe/1.25.0 (linux-x86_64)")
    );
}

#[test]
fn lync_waits_for_the_features_before_monitor_start() {
    let sent = after_the_invite(ClientProfile::Lync2013);
    let infos: Vec<Option<Request>> = sent
        .iter()
        .filter(|m| m.method() == Some(&Method::Info))
        .map(csta_request)
        .collect();
    assert!(
        matches!(infos.as_slice(), [Some(Request::GetCstaFeatures { .. })]),
        "{infos:?}"
    );
}
