//! The Lync simulator against a scripted gateway on a real socket: routing by MatchUri, the
//! trusted-application check, each client profile's refresh and quirks on the wire, MPOP and
//! re-establishment.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcc_protocol::csta::{self, Request, Response};
use rcc_protocol::sip::{Limits, Message, Method, StreamFramer, StreamItem};
use rcc_simulators::lync::{
    ClientProfile, EndpointConfig, LyncSim, LyncSimConfig, Phase, PoolConfig, RouteTransport,
    StaticRoute, TrustedApplication, TrustedComputer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

/// What the scripted gateway saw.
#[derive(Default)]
struct Seen {
    requests: Vec<Message>,
    responses: Vec<Message>,
}

/// A scripted RCC gateway: answers INVITE, UPDATE, INFO (features, monitor), BYE; can push an
/// event INFO or a BYE into the latest dialog.
struct FakeGateway {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    push: mpsc::Sender<Vec<u8>>,
}

fn csta_body(m: csta::Message) -> Vec<u8> {
    csta::encode(&m, csta::ED3).into_bytes()
}

fn answer(req: &Message, allow_update: bool, se: bool) -> Message {
    let mut r = Message::response_to(req, 200, "OK", "gwtag");
    match req.method() {
        Some(Method::Invite) => {
            for rr in req.headers_named("Record-Route") {
                r.push_header("Record-Route", rr);
            }
            r.push_header("Contact", "<sip:rccgateway@127.0.0.1:5065;transport=tcp>");
            r.push_header(
                "Allow",
                if allow_update {
                    "INVITE, ACK, BYE, INFO, UPDATE"
                } else {
                    "INVITE, ACK, BYE, INFO"
                },
            );
            if se {
                r.push_header("Session-Expires", "120;refresher=uac");
            }
            r.with_body(
                "application/csta+xml",
                None,
                csta_body(csta::Message::Response(Response::RequestSystemStatus {
                    status: csta::SystemStatusValue::Normal,
                })),
            )
        }
        Some(Method::Info) => match csta::decode(&req.body).map(|d| d.message) {
            Ok(csta::Message::Request(Request::GetCstaFeatures { .. })) => r.with_body(
                "application/csta+xml",
                None,
                csta_body(csta::Message::Response(Response::GetCstaFeatures {
                    services: vec![csta::Feature::new("callControlServList", "makeCall")],
                    events: vec![],
                })),
            ),
            Ok(csta::Message::Request(Request::MonitorStart { .. })) => r.with_body(
                "application/csta+xml",
                None,
                csta_body(csta::Message::Response(Response::MonitorStart {
                    cross_ref: "x1".into(),
                    existing_calls: None,
                })),
            ),
            _ => r,
        },
        _ => r,
    }
}

async fn fake_gateway(allow_update: bool, session_expires: bool) -> FakeGateway {
    fake_gateway_at("127.0.0.1:0", allow_update, session_expires).await
}

async fn fake_gateway_at(at: &str, allow_update: bool, session_expires: bool) -> FakeGateway {
    let l = TcpListener::bind(at).await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (push, mut pushed) = mpsc::channel::<Vec<u8>>(16);
    let s2 = seen.clone();
    tokio::spawn(async move {
        let (mut stream, _) = l.accept().await.expect("accept");
        let mut framer = StreamFramer::new(Limits::default());
        let mut buf = vec![0u8; 65536];
        loop {
            tokio::select! {
                n = stream.read(&mut buf) => {
                    let Ok(n) = n else { return };
                    if n == 0 { return; }
                    framer.push(&buf[..n]);
                    while let Ok(Some(StreamItem::Message(m))) = framer.next_item() {
                        if m.is_request() {
                            let ack = m.method() == Some(&Method::Ack);
                            s2.lock().expect("lock").requests.push(m.clone());
                            if !ack {
                                let r = answer(&m, allow_update, session_expires);
                                if stream.write_all(&r.to_bytes()).await.is_err() { return; }
                            }
                        } else {
                            s2.lock().expect("lock").responses.push(m);
                        }
                    }
                }
                Some(b) = pushed.recv() => {
                    if stream.write_all(&b).await.is_err() { return; }
                }
            }
        }
    });
    FakeGateway { addr, seen, push }
}

fn pool(route_port: u16, match_uri: &str, trusted: bool) -> PoolConfig {
    PoolConfig {
        fqdn: "fe.lab.example".into(),
        port: 5061,
        static_routes: vec![StaticRoute {
            match_uri: match_uri.into(),
            transport: RouteTransport::Tcp,
            destination: "127.0.0.1".into(),
            port: route_port,
            use_default_certificate: true,
        }],
        trusted_applications: if trusted {
            vec![TrustedApplication {
                pool_fqdn: "127.0.0.1".into(),
                ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port: route_port,
                tcp_enabled: true,
                treat_as_authenticated: true,
                computers: Vec::new(),
            }]
        } else {
            vec![]
        },
    }
}

async fn sim(pool: PoolConfig, listen: bool) -> LyncSim {
    LyncSim::start(LyncSimConfig {
        pool,
        listen: listen.then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        tls: None,
        hosts: HashMap::new(),
        clients: None,
    })
    .await
    .expect("start")
}

fn endpoint(profile: ClientProfile, epid: &str, server: &str) -> EndpointConfig {
    EndpointConfig {
        user: "sip:alice@contoso.lab".into(),
        epid: epid.into(),
        line: "tel:+14255550100;ext=100".into(),
        line_server: server.into(),
        profile,
        refresh: None,
        reestablish: true,
        reestablish_delay: Duration::from_millis(50),
        address: "192.0.2.10:51063".into(),
    }
}

#[tokio::test]
async fn sign_in_through_the_pool_adds_via_and_record_route() {
    let gw = fake_gateway(true, false).await;
    let lync = sim(pool(gw.addr.port(), "rcc.lab.example", true), false).await;
    let id = lync
        .add_endpoint(endpoint(
            ClientProfile::Lync2013,
            "e1",
            "sip:rccgateway@rcc.lab.example",
        ))
        .await
        .expect("endpoint");
    lync.sign_in(id).await.expect("sign in");
    assert_eq!(lync.wait_ready(id, WAIT).await.expect("ready"), "x1");
    let seen = gw.seen.lock().expect("lock");
    let invite = &seen.requests[0];
    assert_eq!(invite.method(), Some(&Method::Invite));
    assert_eq!(
        invite.header("Record-Route"),
        Some("<sip:fe.lab.example:5061;transport=tcp;lr>")
    );
    let vias = invite.vias().expect("vias");
    assert_eq!(vias.len(), 2, "pool Via above the client's");
    assert_eq!(vias[0].host.to_string(), "fe.lab.example");
    assert_eq!(invite.from_header().expect("From").epid(), Some("e1"));
    let methods: Vec<_> = seen
        .requests
        .iter()
        .map(|r| {
            r.method()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(methods, vec!["INVITE", "ACK", "INFO", "INFO"]);
    // In-dialog requests lose the pool's own Route on the way to the gateway.
    assert!(seen.requests[2].header("Route").is_none());
    assert_eq!(seen.requests[2].cseq().expect("CSeq").seq, 2);
}

#[rstest::rstest]
#[case::exact("rcc.lab.example", "sip:gw@rcc.lab.example", true)]
#[case::wildcard("*.lab.example", "sip:gw@rcc.lab.example", true)]
#[case::wildcard_child("*.lab.example", "sip:gw@a.rcc.lab.example", true)]
#[case::mismatch("rcc.lab.example", "sip:gw@other.example", false)]
#[tokio::test]
async fn routing_by_match_uri(#[case] match_uri: &str, #[case] server: &str, #[case] routed: bool) {
    let gw = fake_gateway(true, false).await;
    let lync = sim(pool(gw.addr.port(), match_uri, true), false).await;
    let id = lync
        .add_endpoint(endpoint(ClientProfile::Lync2013, "e1", server))
        .await
        .expect("endpoint");
    lync.sign_in(id).await.expect("sign in");
    let r = lync.wait_ready(id, WAIT).await;
    if routed {
        assert!(r.is_ok(), "{r:?}");
    } else {
        let e = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("INVITE answered 404"), "{e}");
        assert_eq!(lync.stats().await.expect("stats").no_route, 1);
    }
}

#[tokio::test]
async fn a_route_without_trusted_application_is_not_applied() {
    let gw = fake_gateway(true, false).await;
    let lync = sim(pool(gw.addr.port(), "rcc.lab.example", false), false).await;
    let id = lync
        .add_endpoint(endpoint(
            ClientProfile::Lync2013,
            "e1",
            "sip:gw@rcc.lab.example",
        ))
        .await
        .expect("endpoint");
    lync.sign_in(id).await.expect("sign in");
    let e = lync
        .wait_ready(id, WAIT)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("INVITE answered 404"), "{e}");
    assert!(gw.seen.lock().expect("lock").requests.is_empty());
}

#[tokio::test]
async fn requests_from_an_untrusted_peer_are_refused_and_counted() {
    let gw = fake_gateway(true, false).await;
    // The pool trusts only 10.9.9.9, not the loopback peer.
    let mut p = pool(gw.addr.port(), "rcc.lab.example", true);
    p.trusted_applications.push(TrustedApplication {
        pool_fqdn: "other".into(),
        ip: Some("10.9.9.9".parse().expect("ip")),
        port: 1,
        tcp_enabled: true,
        treat_as_authenticated: true,
        computers: Vec::new(),
    });
    p.trusted_applications.remove(0);
    p.trusted_applications.push(TrustedApplication {
        pool_fqdn: "127.0.0.1".into(),
        ip: None,
        port: gw.addr.port(),
        tcp_enabled: true,
        treat_as_authenticated: true,
        computers: Vec::new(),
    });
    let lync = sim(p, true).await;
    let answer = probe_from(&lync, Ipv4Addr::LOCALHOST).await;
    assert_eq!(answer, "SIP/2.0 403 Forbidden");
    assert_eq!(lync.stats().await.expect("stats").untrusted_refused, 1);
}

/// Sends an in-dialog INFO, as a gateway would, to the pool from `from`; returns the status
/// line of the pool's answer.
async fn probe_from(lync: &LyncSim, from: Ipv4Addr) -> String {
    let info = "INFO sip:alice@contoso.lab SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKx\r\nMax-Forwards: 70\r\nFrom: <sip:gw@rcc.lab.example>;tag=g\r\nTo: <sip:alice@contoso.lab>;tag=a\r\nCall-ID: c\r\nCSeq: 1 INFO\r\nContent-Length: 0\r\n\r\n";
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("bind");
    let pool = lync.listen_addr.expect("pool listener");
    let mut s = socket.connect(pool).await.expect("connect");
    s.write_all(info.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]);
    text.lines().next().unwrap_or_default().to_owned()
}

async fn signed_in(
    profile: ClientProfile,
    allow_update: bool,
    se: bool,
) -> (FakeGateway, LyncSim, usize) {
    let gw = fake_gateway(allow_update, se).await;
    let lync = sim(pool(gw.addr.port(), "rcc.lab.example", true), false).await;
    let id = lync
        .add_endpoint(endpoint(profile, "e1", "sip:gw@rcc.lab.example"))
        .await
        .expect("endpoint");
    lync.sign_in(id).await.expect("sign in");
    lync.wait_ready(id, WAIT).await.expect("ready");
    (gw, lync, id)
}

#[rstest::rstest]
#[case::lync2013_update(ClientProfile::Lync2013, true, "UPDATE")]
#[case::lync2013_without_update(ClientProfile::Lync2013, false, "INVITE")]
#[case::oc2007r2(ClientProfile::Oc2007r2, true, "UPDATE")]
#[case::oc2007(ClientProfile::Oc2007, true, "INVITE")]
#[case::sipe(ClientProfile::Sipe, true, "INVITE")]
#[tokio::test]
async fn refresh_method_per_profile(
    #[case] profile: ClientProfile,
    #[case] allow_update: bool,
    #[case] method: &str,
) {
    let (gw, lync, id) = signed_in(profile, allow_update, true).await;
    lync.refresh(id).await.expect("refresh");
    lync.wait_for(id, WAIT, "refresh", |e| (e.refreshes() == 1).then_some(()))
        .await
        .expect("refreshed");
    let seen = gw.seen.lock().expect("lock");
    let refresh = seen
        .requests
        .iter()
        .skip(4)
        .find(|r| r.method() != Some(&Method::Ack))
        .expect("refresh request");
    assert_eq!(refresh.method().map(|m| m.as_str()), Some(method));
    if method == "INVITE" {
        assert!(matches!(
            csta::decode(&refresh.body).map(|d| d.message),
            Ok(csta::Message::Request(Request::RequestSystemStatus {
                line: Some(_)
            }))
        ));
    }
}

#[tokio::test]
async fn sipe_quirks_on_the_wire() {
    let (gw, lync, id) = signed_in(ClientProfile::Sipe, true, true).await;
    lync.refresh(id).await.expect("refresh");
    lync.wait_for(id, WAIT, "refresh", |e| (e.refreshes() == 1).then_some(()))
        .await
        .expect("refreshed");
    let r = lync
        .request(id, Request::GetCstaFeatures { line: None }, WAIT)
        .await
        .expect("answer");
    assert!(r.is_ok());
    let seen = gw.seen.lock().expect("lock");
    // The client's own Via (second) has no branch.
    let client_via = seen.requests[0].vias().expect("vias")[1].clone();
    assert_eq!(client_via.branch(), None);
    // After the refresh INVITE (CSeq 4), the ACK has CSeq 1 and the next INFO CSeq 2.
    let after: Vec<(String, u32)> = seen
        .requests
        .iter()
        .skip(4)
        .map(|r| {
            (
                r.method()
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_default(),
                r.cseq().map(|c| c.seq).unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        after,
        vec![("INVITE".into(), 4), ("ACK".into(), 1), ("INFO".into(), 2)]
    );
}

/// A Delivered event for `call` at the line, as an INFO from the gateway.
fn event_info(seen: &Seen, xref: &str, cseq: u32, call: &str) -> Vec<u8> {
    let invite = &seen.requests[0];
    let from = invite.header("From").expect("From");
    let mut e = csta::CallEvent::new(csta::CallEventKind::Delivered, xref);
    e.connection = Some(csta::ConnectionId::new(call, "tel:+14255550100;ext=100"));
    e.local_state = Some(csta::LocalConnectionState::Alerting);
    let body = csta_body(csta::Message::Event(csta::Event::Call(e)));
    let mut m = Message::request(
        Method::Info,
        "sip:alice@contoso.lab;opaque=user:epid:e1;gruu",
    );
    m.push_header(
        "Via",
        format!("SIP/2.0/TCP 127.0.0.1:5065;branch=z9hG4bKev{cseq}"),
    );
    m.push_header("Route", "<sip:fe.lab.example:5061;transport=tls;lr>");
    m.push_header("Max-Forwards", "70");
    m.push_header("From", "<sip:gw@rcc.lab.example>;tag=gwtag");
    m.push_header("To", from);
    m.push_header("Call-ID", invite.call_id().expect("Call-ID"));
    m.push_header("CSeq", format!("{cseq} INFO"));
    m.with_body("application/csta+xml", None, body).to_bytes()
}

#[rstest::rstest]
#[case::lync(ClientProfile::Lync2013, true)]
#[case::sipe(ClientProfile::Sipe, false)]
#[tokio::test]
async fn events_are_validated_and_answered_per_profile(
    #[case] profile: ClientProfile,
    #[case] answered: bool,
) {
    let (gw, lync, id) = signed_in(profile, true, false).await;
    let info = |xref, cseq, call| event_info(&gw.seen.lock().expect("lock"), xref, cseq, call);
    let good = info("x1", 2, "C1");
    let foreign = info("zz", 3, "C2");
    // CSeq going back: an INFO that arrived out of order.
    let late = info("x1", 1, "C3");
    // The first event again: nothing new for the user.
    let repeat = info("x1", 4, "C1");
    for m in [good, foreign, late, repeat] {
        gw.push.send(m).await.expect("push");
    }
    lync.wait_for(id, WAIT, "four events", |e| {
        (e.events().len() == 4).then_some(())
    })
    .await
    .expect("events");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let v = lync.violations(id).await.expect("violations");
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v[0].contains("monitorCrossRefID \"zz\""), "{v:?}");
    assert!(v[1].contains("CSeq 1 after CSeq 3: out of order"), "{v:?}");
    assert!(v[2].contains("DeliveredEvent for call C1 repeats"), "{v:?}");
    let responses = gw.seen.lock().expect("lock").responses.len();
    assert_eq!(responses, if answered { 4 } else { 0 });
}

#[tokio::test]
async fn mpop_endpoints_have_their_own_dialogs() {
    let gw = fake_gateway(true, false).await;
    let lync = sim(pool(gw.addr.port(), "rcc.lab.example", true), false).await;
    let a = lync
        .add_endpoint(endpoint(
            ClientProfile::Lync2013,
            "desk",
            "sip:gw@rcc.lab.example",
        ))
        .await
        .expect("a");
    let b = lync
        .add_endpoint(endpoint(
            ClientProfile::Lync2013,
            "laptop",
            "sip:gw@rcc.lab.example",
        ))
        .await
        .expect("b");
    lync.sign_in(a).await.expect("a");
    lync.sign_in(b).await.expect("b");
    lync.wait_ready(a, WAIT).await.expect("a ready");
    lync.wait_ready(b, WAIT).await.expect("b ready");
    let seen = gw.seen.lock().expect("lock");
    let invites: Vec<_> = seen
        .requests
        .iter()
        .filter(|r| r.method() == Some(&Method::Invite))
        .collect();
    assert_eq!(invites.len(), 2);
    assert_ne!(
        invites[0].call_id().expect("id"),
        invites[1].call_id().expect("id")
    );
    let epids: Vec<_> = invites
        .iter()
        .map(|i| i.from_header().expect("From").epid().map(str::to_owned))
        .collect();
    assert_eq!(
        epids,
        vec![Some("desk".to_owned()), Some("laptop".to_owned())]
    );
}

#[tokio::test]
async fn a_gateway_bye_makes_the_client_sign_in_again() {
    let (gw, lync, id) = signed_in(ClientProfile::Lync2013, true, false).await;
    let bye = {
        let seen = gw.seen.lock().expect("lock");
        let invite = &seen.requests[0];
        let mut m = Message::request(
            Method::Bye,
            "sip:alice@contoso.lab;opaque=user:epid:e1;gruu",
        );
        m.push_header("Via", "SIP/2.0/TCP 127.0.0.1:5065;branch=z9hG4bKbye");
        m.push_header("Max-Forwards", "70");
        m.push_header("From", "<sip:gw@rcc.lab.example>;tag=gwtag");
        m.push_header("To", invite.header("From").expect("From"));
        m.push_header("Call-ID", invite.call_id().expect("Call-ID"));
        m.push_header("CSeq", "9 BYE");
        m.push_header("Content-Length", "0");
        m.to_bytes()
    };
    gw.push.send(bye).await.expect("push");
    lync.wait_for(id, WAIT, "second sign-in", |e| {
        (e.sign_ins() == 2 && e.phase() == &Phase::Ready).then_some(())
    })
    .await
    .expect("re-established");
    let invites = gw
        .seen
        .lock()
        .expect("lock")
        .requests
        .iter()
        .filter(|r| r.method() == Some(&Method::Invite))
        .count();
    assert_eq!(invites, 2);
}

#[tokio::test]
async fn only_advertised_features_are_used() {
    // The scripted gateway advertises makeCall only.
    let (gw, lync, id) = signed_in(ClientProfile::Lync2013, true, false).await;
    let before = gw.seen.lock().expect("lock").requests.len();
    let r = lync
        .request(
            id,
            Request::HoldCall {
                call: csta::ConnectionId::new("C1", "tel:+14255550100;ext=100"),
                reservation: None,
            },
            WAIT,
        )
        .await
        .expect("outcome");
    assert_eq!(r, Err("not offered by the gateway: holdCall".to_owned()));
    assert_eq!(
        gw.seen.lock().expect("lock").requests.len(),
        before,
        "nothing was sent"
    );
    let r = lync
        .request(
            id,
            Request::MakeCall {
                calling: "tel:+14255550100;ext=100".into(),
                called: "tel:+1".into(),
                auto_originate: None,
            },
            WAIT,
        )
        .await
        .expect("outcome");
    // The scripted gateway answers with an empty 200: what matters is that it was sent.
    assert_eq!(r, Err("200 OK without a CSTA body".to_owned()));
    assert_eq!(gw.seen.lock().expect("lock").requests.len(), before + 1);
}

/// A trusted application pool of two computers behind one static route to the pool FQDN, as
/// `New-CsTrustedApplicationComputer` makes it (DNS load balancing): the pool reaches the
/// computer that is up when the other is not, and trusts requests from either computer's
/// address, not from a third. Each order of the two computers is run, so the pool meets the
/// computer that is down first in one of them.
#[rstest::rstest]
#[case::down_one_listed_first(true)]
#[case::down_one_listed_second(false)]
#[tokio::test]
async fn a_route_to_a_pool_of_computers_reaches_the_one_that_is_up(#[case] down_first: bool) {
    // Computer B listens; computer A, on the same port, does not.
    let gw = fake_gateway_at("127.0.0.3:0", true, false).await;
    let port = gw.addr.port();
    let computer = |fqdn: &str, ip: &str| TrustedComputer {
        fqdn: fqdn.into(),
        ip: Some(ip.parse().expect("ip")),
    };
    let p = PoolConfig {
        fqdn: "fe.lab.example".into(),
        port: 5061,
        static_routes: vec![StaticRoute {
            match_uri: "rcc.lab.example".into(),
            transport: RouteTransport::Tcp,
            destination: "rccgw.lab.example".into(),
            port,
            use_default_certificate: true,
        }],
        trusted_applications: vec![TrustedApplication {
            pool_fqdn: "rccgw.lab.example".into(),
            ip: None,
            port,
            tcp_enabled: true,
            treat_as_authenticated: true,
            computers: {
                let mut c = vec![
                    computer("rccgw-a.lab.example", "127.0.0.2"),
                    computer("rccgw-b.lab.example", "127.0.0.3"),
                ];
                if !down_first {
                    c.reverse();
                }
                c
            },
        }],
    };
    let lync = sim(p, true).await;
    let id = lync
        .add_endpoint(endpoint(
            ClientProfile::Lync2013,
            "e1",
            "sip:rccgateway@rcc.lab.example",
        ))
        .await
        .expect("endpoint");
    lync.sign_in(id).await.expect("sign in");
    lync.wait_ready(id, WAIT)
        .await
        .expect("ready through computer B");
    assert_eq!(
        gw.seen.lock().expect("lock").requests[0].method(),
        Some(&Method::Invite)
    );

    // A request from a computer's address is the trusted application's; from another, not.
    let mut answers = Vec::new();
    for from in [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 4)] {
        answers.push(probe_from(&lync, from).await);
    }
    assert!(
        !answers[0].starts_with("SIP/2.0 403"),
        "computer A refused: {answers:?}"
    );
    assert!(
        answers[1].starts_with("SIP/2.0 403"),
        "a stranger trusted: {answers:?}"
    );
}
