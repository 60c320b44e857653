//! The gateway core without sockets: SIP rules (transactions, dialogs, session timers, error
//! answers) driven with synthetic messages and synthetic time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rcc_gateway::config;
use rcc_gateway::core::Metrics;
use rcc_gateway::core::notes::{Leg, SessionNote, Way};
use rcc_gateway::core::pbx::link::LinkOutput;
use rcc_gateway::core::{FlowId, Gateway, Output, Policy};
use rcc_protocol::csta::{self, Request, Response};
use rcc_protocol::sip::{Message, Method};
use rcc_testkit::ScriptedPbx;

const CONFIG: &str = r#"
[sip]
listen_tcp = "127.0.0.1:5066"
host = "gw.lab.example"
trusted_peer = [{ ip = "127.0.0.1" }]
session_expires_s = 1800
[pbx]
address = "127.0.0.1:1040"
"#;

struct Harness {
    gw: Gateway,
    metrics: Arc<Metrics>,
    now: Instant,
    responses: Vec<Message>,
    requests: Vec<Message>,
    pbx: ScriptedPbx,
    traces: Vec<SessionNote>,
}

fn rss(line: &str) -> Vec<u8> {
    csta::encode(
        &csta::Message::Request(Request::RequestSystemStatus {
            line: Some(line.to_owned()),
        }),
        csta::ED3,
    )
    .into_bytes()
}

fn sip(head: &str, content_type: Option<&str>, body: &[u8]) -> Message {
    let mut text = head.trim_start().replace('\n', "\r\n");
    if let Some(ct) = content_type {
        text.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    Message::parse(&bytes).expect("test message parses")
}

fn invite(call_id: &str, branch: &str, extra: &str) -> Message {
    invite_as("alice", "1001", call_id, branch, extra)
}

/// An initial INVITE from `user`@contoso.lab for line `+1425555{ext};ext={ext}`.
fn invite_as(user: &str, ext: &str, call_id: &str, branch: &str, extra: &str) -> Message {
    sip(
        &format!(
            "INVITE sip:rccgateway@rcc.lab.example SIP/2.0
Via: SIP/2.0/TLS fe.lab.example:5061;branch={branch}
Record-Route: <sip:fe.lab.example:5061;transport=tls;lr>
Max-Forwards: 69
From: <sip:{user}@contoso.lab>;tag=a1;epid=e1
To: <sip:rccgateway@rcc.lab.example>
Call-ID: {call_id}
CSeq: 1 INVITE
Contact: <sip:{user}@contoso.lab;opaque=user:epid:e1;gruu>
{extra}"
        ),
        Some("application/csta+xml"),
        &rss(&format!("tel:+1425555{ext};ext={ext}")),
    )
}

impl Harness {
    fn new(toml: &str) -> Harness {
        let config = Arc::new(config::parse(toml).expect("config"));
        let now = Instant::now();
        let metrics = Arc::new(Metrics::new());
        let policy = Policy::build(&config).expect("policy");
        let gw = Gateway::new(config, policy, metrics.clone(), now, 0x5eed);
        let mut h = Harness {
            gw,
            metrics,
            now,
            responses: Vec::new(),
            requests: Vec::new(),
            pbx: ScriptedPbx::new(),
            traces: Vec::new(),
        };
        h.tick(Duration::ZERO);
        h.gw.pbx_connected(h.now);
        h.drain();
        assert!(
            h.gw.pbx_serving(),
            "the PBX link is up once connected (generic profile)"
        );
        h
    }

    /// The gateway's metrics in Prometheus text.
    fn gw_metrics(&self) -> String {
        self.metrics.encode()
    }

    fn drain(&mut self) {
        while let Some(o) = self.gw.poll_output() {
            match o {
                Output::Respond { bytes, .. } => self
                    .responses
                    .push(Message::parse(&bytes).expect("gateway output parses")),
                Output::Request { bytes, .. } => self
                    .requests
                    .push(Message::parse(&bytes).expect("gateway output parses")),
                Output::Pbx(LinkOutput::Send(b)) => {
                    self.pbx.receive(&b);
                }
                Output::Pbx(_) => {}
                Output::Trace(n) => self.traces.push(n),
            }
        }
    }

    fn tick(&mut self, d: Duration) {
        self.now += d;
        self.gw.handle_timeout(self.now);
        self.drain();
    }

    fn send(&mut self, m: Message) -> Vec<Message> {
        let before = self.responses.len();
        self.gw.sip_message(FlowId(1), m, self.now);
        self.drain();
        self.responses[before..].to_vec()
    }

    fn one(&mut self, m: Message) -> Message {
        let r = self.send(m);
        assert_eq!(r.len(), 1, "expected one response, got {r:?}");
        r.into_iter().next().expect("one response")
    }

    /// Signs alice in; returns the 200 OK.
    fn signed_in(&mut self, call_id: &str) -> Message {
        let ok = self.one(invite(call_id, "z9hG4bKinv1", "Supported: timer\n"));
        assert_eq!(ok.status(), Some(200));
        let ack = self.in_dialog(&ok, Method::Ack, 1, "z9hG4bKack1", None, b"");
        assert!(self.send(ack).is_empty(), "no answer to ACK");
        ok
    }

    /// Alice's MonitorStart, answered by a forged PBX MonitorStartResponse with `xref`;
    /// returns the PBX answer frame.
    fn monitor_started(&mut self, ok: &Message, xref: &str) -> Vec<u8> {
        let ms = self.in_dialog(
            ok,
            Method::Info,
            2,
            "z9hG4bKms",
            Some("application/csta+xml"),
            &info_body(Request::MonitorStart {
                object: csta::MonitorObject::Device("tel:+14255551001;ext=1001".into()),
                monitor_type: None,
            }),
        );
        assert!(self.send(ms).is_empty(), "answered once the PBX answers");
        let invoke = self
            .pbx
            .last_request(|r| matches!(r, Request::MonitorStart { .. }))
            .and_then(|f| f.invoke)
            .expect("MonitorStart sent to the PBX");
        let bytes = ScriptedPbx::answer(
            invoke,
            Response::MonitorStart {
                cross_ref: xref.into(),
                existing_calls: None,
            },
        );
        self.gw.pbx_bytes(&bytes, self.now);
        self.drain();
        bytes
    }

    /// The Annex J frame answering the last frame sent to the PBX with `response`.
    fn answer_to_last(&self, response: Response) -> Vec<u8> {
        self.pbx
            .answer_last(response)
            .expect("a frame sent to the PBX")
    }

    fn in_dialog(
        &self,
        ok: &Message,
        method: Method,
        cseq: u32,
        branch: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Message {
        let to = ok.header("To").expect("To");
        let call_id = ok.call_id().expect("Call-ID");
        let via = if branch.is_empty() {
            "SIP/2.0/TLS fe.lab.example:5061".to_owned()
        } else {
            format!("SIP/2.0/TLS fe.lab.example:5061;branch={branch}")
        };
        sip(
            &format!(
                "{method} sip:rccgateway@gw.lab.example:5066;transport=tcp SIP/2.0
Via: {via}
Max-Forwards: 69
From: <sip:alice@contoso.lab>;tag=a1;epid=e1
To: {to}
Call-ID: {call_id}
CSeq: {cseq} {method}
"
            ),
            content_type,
            body,
        )
    }
}

/// A configuration with per-session traces (`extra` adds to the table) and its directory.
fn traced(extra: &str) -> (std::path::PathBuf, String) {
    // Tests run in parallel and remove their directory: one per distinct `extra`.
    let dir = std::env::temp_dir().join(format!(
        "rcc-engine-traces-{}-{}",
        std::process::id(),
        extra.len()
    ));
    let toml = format!(
        "{CONFIG}[observe.session_traces]\ndir = {:?}\n{extra}\n",
        dir.display().to_string()
    );
    (dir, toml)
}

fn info_body(r: Request) -> Vec<u8> {
    csta::encode(&csta::Message::Request(r), csta::ED3).into_bytes()
}

fn body(m: &Message) -> csta::Message {
    csta::decode(&m.body).expect("CSTA body").message
}

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

#[test]
fn per_session_traces_follow_the_user_filter_and_carry_the_wire_bytes() {
    let (dir, toml) = traced("users = [\"SIP:Alice@Contoso.lab\"]");
    let mut h = Harness::new(&toml);
    // Bob's session is not traced.
    let bob = invite_as("bob", "1002", "c2", "z9hG4bKbob", "");
    assert_eq!(h.one(bob).status(), Some(200));
    assert!(
        h.traces.is_empty(),
        "bob is not in the filter: {:?}",
        h.traces
    );

    let ok = h.signed_in("c1");
    let SessionNote::Start { session, user } = &h.traces[0] else {
        panic!("a Start note first, got {:?}", h.traces);
    };
    let alice = *session;
    assert_eq!(user, "sip:alice@contoso.lab");
    let sip_notes: Vec<(Way, Message)> = h.traces[1..]
        .iter()
        .map(|n| match n {
            SessionNote::Data {
                session,
                leg: Leg::Sip(FlowId(1)),
                way,
                bytes,
            } if *session == alice => (*way, Message::parse(bytes).expect("traced SIP parses")),
            other => panic!("alice's SIP on flow 1, got {other:?}"),
        })
        .collect();
    let seen: Vec<(Way, String)> = sip_notes
        .iter()
        .map(|(w, m)| {
            let what = m.method().map_or_else(
                || m.status().unwrap_or_default().to_string(),
                |x| x.as_str().to_owned(),
            );
            (*w, what)
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (Way::In, "INVITE".to_owned()),
            (Way::Out, "200".to_owned()),
            (Way::In, "ACK".to_owned()),
        ]
    );
    assert_eq!(
        sip_notes[1].1.to_bytes(),
        ok.to_bytes(),
        "the 200 OK as sent"
    );

    // The PBX leg: the MonitorStart frame as sent and its answer as received.
    h.traces.clear();
    let answer = h.monitor_started(&ok, "px1");
    let pbx: Vec<(Way, &Vec<u8>)> = h
        .traces
        .iter()
        .filter_map(|n| match n {
            SessionNote::Data {
                leg: Leg::Pbx,
                way,
                bytes,
                ..
            } => Some((*way, bytes)),
            _ => None,
        })
        .collect();
    let sent = &h.pbx.last().expect("MonitorStart frame").bytes;
    assert_eq!(pbx, vec![(Way::Out, sent), (Way::In, &answer)]);

    // The client's BYE ends the trace after the 200 OK.
    h.traces.clear();
    let bye = h.in_dialog(&ok, Method::Bye, 3, "z9hG4bKbye", None, b"");
    assert_eq!(h.one(bye).status(), Some(200));
    let kinds: Vec<&str> = h
        .traces
        .iter()
        .map(|n| match n {
            SessionNote::Start { .. } => "start",
            SessionNote::Data { leg: Leg::Pbx, .. } => "pbx",
            SessionNote::Data {
                leg: Leg::Sip(_), ..
            } => "sip",
            SessionNote::End { .. } => "end",
        })
        .collect();
    // BYE in, 200 OK out, the monitor released on the PBX as the session ends, end.
    assert_eq!(kinds, vec!["sip", "sip", "pbx", "end"], "{:?}", h.traces);
    let _ = std::fs::remove_dir_all(&dir);
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

fn out_of_dialog_options(branch: &str) -> Message {
    sip(
        &format!(
            "OPTIONS sip:gw.lab.example SIP/2.0
Via: SIP/2.0/TLS fe.lab.example:5061;branch={branch}
Max-Forwards: 70
From: <sip:fe.lab.example>;tag=o1
To: <sip:gw.lab.example>
Call-ID: {branch}
CSeq: 1 OPTIONS
"
        ),
        None,
        b"",
    )
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

fn out_of_dialog(method: &str, extra: &str) -> Message {
    sip(
        &format!(
            "{method} sip:gw.lab.example SIP/2.0
Via: SIP/2.0/TLS fe.lab.example:5061;branch=z9hG4bK{method}
Max-Forwards: 70
From: <sip:fe.lab.example>;tag=o1
To: <sip:gw.lab.example>
Call-ID: {method}-1
CSeq: 1 {method}
{extra}"
        ),
        None,
        b"",
    )
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
