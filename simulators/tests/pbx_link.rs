//! The PBX simulator's link over real sockets: each profile's handshake, the ECMA-354 session
//! and its timer, the SystemStatus heartbeat, framing variants, TLS, and every fault.

mod support;

use std::time::Duration;

use rcc_protocol::csta::{
    self, AutoOriginate, CstaError, ErrorCategory, Message, Reason, Request, Response, Service,
    Session, SystemStatusValue,
};
use rcc_protocol::framing;
use rcc_simulators::pbx::{Faults, Framing, Listen, PbxConfig, PbxSim, Profile};
use rcc_simulators::tls::{ClientAuth, LabCa, client_config, server_config};
use support::*;

fn make_call() -> Request {
    Request::MakeCall {
        calling: "1001".to_owned(),
        called: "1002".to_owned(),
        auto_originate: Some(AutoOriginate::DoNotPrompt),
    }
}

#[tokio::test]
async fn generic_profile_needs_no_session_and_answers_in_ed3() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    c.monitor("1001").await;
    let r = c.call(Message::Request(make_call())).await;
    assert!(matches!(
        r.message,
        Message::Response(Response::MakeCall { .. })
    ));
    assert_eq!(r.namespace.as_deref(), Some(csta::ED3));
    assert!(
        r.xml
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
    );
    // Events carry 9999; the response the request's invoke ID.
    let frame = c.read_frame(WAIT).await.expect("an event");
    assert_eq!(frame.invoke, Some(framing::EVENT_INVOKE_ID));
}

#[tokio::test]
async fn osv_profile_sends_system_status_first_and_decorates_devices() {
    let sim = start(Profile::Osv).await;
    let mut c = client(&sim).await;
    c.namespace = csta::ED4.to_owned();
    let first = c.read_frame(WAIT).await.expect("SystemStatus on connect");
    assert!(matches!(
        first.message,
        Message::Request(Request::SystemStatus {
            status: SystemStatusValue::Normal,
            ..
        })
    ));
    assert_eq!(first.namespace.as_deref(), Some(csta::ED4));
    let id = first.invoke.expect("an invoke ID");
    assert!((1..=9998).contains(&id));
    c.send(
        id,
        &Message::Response(Response::Empty(Service::SystemStatus)),
    )
    .await;
    let reg = c
        .request(Request::SystemRegister {
            system_status: true,
            request_system_status: false,
        })
        .await;
    assert!(matches!(
        reg,
        Message::Response(Response::SystemRegister { .. })
    ));
    let xref = c.monitor("1001").await;
    let made = c.request(make_call()).await;
    let Message::Response(Response::MakeCall { calling }) = made else {
        panic!("MakeCallResponse expected");
    };
    let call = calling.call_id.expect("call ID");
    assert_eq!(call.len(), 32);
    assert!(call.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        calling.device_id.as_deref(),
        Some("1001"),
        "ConnectionIDs stay plain"
    );
    let e = c.events_for(&xref, 1).await.remove(0);
    assert_eq!(
        e.subject.as_ref().and_then(|d| d.as_id()),
        Some("N<1001>;noa=nk")
    );
    assert_eq!(sim.links().await.expect("links")[0].heartbeat_misses, 0);
}

#[tokio::test]
async fn osv_heartbeat_misses_drop_the_link() {
    let mut config = PbxConfig::for_profile(Profile::Osv);
    if let Some(hb) = config.heartbeat.as_mut() {
        hb.interval = Duration::from_millis(100);
        hb.max_misses = 2;
    }
    let sim = start_with(config).await;
    let mut c = client(&sim).await;
    // Never answer SystemStatus.
    assert!(
        c.closed_within(WAIT).await,
        "the link stays up without heartbeat answers"
    );
    let log = sim.log_since(0).await.expect("log");
    let statuses = log.iter().filter(|e| e.root == "SystemStatus").count();
    assert!(statuses >= 2, "only {statuses} SystemStatus sent");
}

#[tokio::test]
async fn osv_heartbeat_answered_keeps_the_link() {
    let mut config = PbxConfig::for_profile(Profile::Osv);
    if let Some(hb) = config.heartbeat.as_mut() {
        hb.interval = Duration::from_millis(50);
    }
    let sim = start_with(config).await;
    let mut c = client(&sim).await;
    for _ in 0..6 {
        let r = c.read_frame(WAIT).await.expect("SystemStatus");
        let id = r.invoke.expect("invoke ID");
        c.send(
            id,
            &Message::Response(Response::Empty(Service::SystemStatus)),
        )
        .await;
    }
    let links = sim.links().await.expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].heartbeat_misses, 0);
}

#[tokio::test]
async fn aes_requires_a_session_with_login() {
    let mut config = PbxConfig::for_profile(Profile::Aes);
    config.session.credentials = Some(("cti".to_owned(), "secret".to_owned()));
    let sim = start_with(config).await;
    let mut c = client(&sim).await;
    let refused = c.request(make_call()).await;
    assert_eq!(
        refused,
        Message::Error(CstaError::new(ErrorCategory::Security, "generic"))
    );
    let v = rcc_simulators::pbx::profile::AES_NAMESPACE;
    let bad = c.start_session(Some(("cti", "wrong")), v).await;
    assert_eq!(
        bad,
        Message::Session(Session::StartNeg {
            error: Reason::Defined("invalidApplicationInfo".to_owned())
        })
    );
    let none = c.start_session(None, v).await;
    assert!(matches!(none, Message::Session(Session::StartNeg { .. })));
    let wrong_version = c.start_session(Some(("cti", "secret")), csta::ED4).await;
    assert_eq!(
        wrong_version,
        Message::Session(Session::StartNeg {
            error: Reason::Defined("requestedProtocolVersionNotSupported".to_owned())
        })
    );
    let ok = c.start_session(Some(("cti", "secret")), v).await;
    let Message::Session(Session::StartPos {
        protocol_version,
        duration,
        ..
    }) = ok
    else {
        panic!("StartApplicationSessionPosResponse expected, got {ok:?}");
    };
    assert_eq!(protocol_version.as_deref(), Some(v));
    assert_eq!(duration, Some(180));
    c.namespace = v.to_owned();
    let r = c.call(Message::Request(make_call())).await;
    assert_eq!(r.namespace.as_deref(), Some(v));
    let device_at = r.xml.find("<deviceID>").expect("deviceID");
    let call_at = r.xml.find("<callID>").expect("callID");
    assert!(
        device_at < call_at,
        "AES writes deviceID before callID: {}",
        r.xml
    );
}

#[tokio::test]
async fn session_timer_expiry_terminates_then_closes() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let r = c
        .call(Message::Session(Session::Start {
            application_id: "t".into(),
            user: None,
            password: None,
            protocol_versions: vec![csta::ED3.into()],
            duration: Some(1),
        }))
        .await;
    let Message::Session(Session::StartPos { session_id, .. }) = r.message else {
        panic!("StartPos expected");
    };
    let t = c
        .read_frame(WAIT)
        .await
        .expect("ApplicationSessionTerminated");
    assert_eq!(
        t.message,
        Message::Session(Session::Terminated {
            session_id,
            reason: Reason::Defined("sessionTimerExpired".to_owned())
        })
    );
    assert!(c.closed_within(WAIT).await);
}

#[tokio::test]
async fn session_reset_and_stop() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let Message::Session(Session::StartPos { session_id, .. }) =
        c.start_session(None, csta::ED3).await
    else {
        panic!("StartPos expected");
    };
    let r = c
        .call(Message::Session(Session::Reset {
            session_id: session_id.clone(),
            duration: Some(60),
        }))
        .await;
    assert_eq!(
        r.message,
        Message::Session(Session::ResetPos { duration: Some(60) })
    );
    let r = c
        .call(Message::Session(Session::Reset {
            session_id: "other".into(),
            duration: None,
        }))
        .await;
    assert!(matches!(
        r.message,
        Message::Session(Session::ResetNeg { .. })
    ));
    let links = sim.links().await.expect("links");
    assert_eq!(links[0].resets, 2);
    assert_eq!(links[0].late_resets, 0);
    let r = c
        .call(Message::Session(Session::Stop {
            session_id,
            reason: Reason::Defined("normal".into()),
        }))
        .await;
    assert_eq!(r.message, Message::Session(Session::StopPos));
    assert_eq!(sim.links().await.expect("links")[0].session_id, None);
}

#[tokio::test]
async fn request_system_status_and_features() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    assert_eq!(
        c.request(Request::RequestSystemStatus { line: None }).await,
        Message::Response(Response::RequestSystemStatus {
            status: SystemStatusValue::Normal
        })
    );
    let Message::Response(Response::GetCstaFeatures { services, .. }) =
        c.request(Request::GetCstaFeatures { line: None }).await
    else {
        panic!("GetCSTAFeaturesResponse expected");
    };
    assert!(services.iter().any(|f| f.name == "makeCall"));
}

#[tokio::test]
async fn malformed_and_unknown_requests_are_answered_not_dropped() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    let bad = framing::encode_annex_j(7, b"<MakeCall><callingDevice>").expect("frame");
    c.send_raw(&bad).await;
    let r = c.answer_to(7).await;
    assert_eq!(
        r.message,
        Message::Error(CstaError::operation("invalidParameterValue"))
    );
    let unknown = framing::encode_annex_j(8, b"<ParkCall xmlns=\"x\"/>").expect("frame");
    c.send_raw(&unknown).await;
    let r = c.answer_to(8).await;
    assert_eq!(
        r.message,
        Message::Error(CstaError::operation("serviceNotSupported"))
    );
    // The link survives.
    assert!(matches!(
        c.request(make_call()).await,
        Message::Response(Response::MakeCall { .. })
    ));
}

#[tokio::test]
async fn broken_framing_closes_the_link() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    // Length 4 is below the header size.
    c.send_raw(&[0, 0, 0, 4, b'0', b'0', b'0', b'1']).await;
    assert!(c.closed_within(WAIT).await);
}

#[tokio::test]
async fn nul_framing() {
    let mut config = PbxConfig::for_profile(Profile::Generic);
    config.framing = Framing::Nul;
    let sim = start_with(config).await;
    let s = tokio::net::TcpStream::connect(sim.tcp_addr().expect("tcp"))
        .await
        .expect("connect");
    let mut c = Client::over(Box::new(s), true);
    let r = c.call(Message::Request(make_call())).await;
    assert_eq!(r.invoke, None);
    assert!(matches!(
        r.message,
        Message::Response(Response::MakeCall { .. })
    ));
}

#[tokio::test]
async fn tls_listener() {
    let ca = LabCa::new("test CA").expect("CA");
    let id = ca.issue(&["pbx.lab.example"]).expect("cert");
    let listen = Listen {
        tcp: None,
        tls: Some((
            "127.0.0.1:0".parse().expect("addr"),
            server_config(&id, ClientAuth::None).expect("server config"),
        )),
    };
    let sim = PbxSim::start(PbxConfig::for_profile(Profile::Generic), devices(), listen)
        .await
        .expect("start");
    let tcp = tokio::net::TcpStream::connect(sim.tls_addr().expect("tls"))
        .await
        .expect("connect");
    let connector =
        tokio_rustls::TlsConnector::from(client_config(ca.roots(), None).expect("client config"));
    let name =
        tokio_rustls::rustls::pki_types::ServerName::try_from("pbx.lab.example").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let mut c = Client::over(Box::new(tls), false);
    assert!(matches!(
        c.request(make_call()).await,
        Message::Response(Response::MakeCall { .. })
    ));
}

#[tokio::test]
async fn fault_drop_responses_then_recover() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    sim.set_faults(Faults {
        drop_responses: true,
        ..Faults::default()
    })
    .await
    .expect("faults");
    c.send(
        5,
        &Message::Request(Request::RequestSystemStatus { line: None }),
    )
    .await;
    assert!(c.read_frame(Duration::from_millis(300)).await.is_none());
    let log = sim.log_since(0).await.expect("log");
    assert!(log.iter().any(|e| e.root.ends_with("(dropped)")));
    sim.set_faults(Faults::default()).await.expect("faults");
    assert!(matches!(
        c.request(Request::RequestSystemStatus { line: None }).await,
        Message::Response(_)
    ));
}

#[tokio::test]
async fn fault_response_delay() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    sim.set_faults(Faults {
        response_delay_ms: Some(300),
        ..Faults::default()
    })
    .await
    .expect("faults");
    c.send(
        5,
        &Message::Request(Request::RequestSystemStatus { line: None }),
    )
    .await;
    assert!(
        c.read_frame(Duration::from_millis(100)).await.is_none(),
        "answered before the delay"
    );
    let r = c.read_frame(WAIT).await.expect("the delayed answer");
    assert_eq!(r.invoke, Some(5));
}

#[tokio::test]
async fn fault_events_before_response() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    c.monitor("1001").await;
    sim.set_faults(Faults {
        events_before_response: true,
        ..Faults::default()
    })
    .await
    .expect("faults");
    c.send(42, &Message::Request(make_call())).await;
    let first = c.read_frame(WAIT).await.expect("a frame");
    assert!(
        matches!(first.message, Message::Event(_)),
        "expected an event first, got {:?}",
        first.message
    );
    let r = c.answer_to(42).await;
    assert!(matches!(
        r.message,
        Message::Response(Response::MakeCall { .. })
    ));
}

#[tokio::test]
async fn fault_split_writes_still_frame_correctly() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    sim.set_faults(Faults {
        split_writes: Some(3),
        ..Faults::default()
    })
    .await
    .expect("faults");
    assert!(matches!(
        c.request(make_call()).await,
        Message::Response(Response::MakeCall { .. })
    ));
}

#[tokio::test]
async fn fault_refuse_and_terminate_sessions() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    sim.set_faults(Faults {
        refuse_sessions: true,
        ..Faults::default()
    })
    .await
    .expect("faults");
    assert!(matches!(
        c.start_session(None, csta::ED3).await,
        Message::Session(Session::StartNeg { .. })
    ));
    sim.set_faults(Faults::default()).await.expect("faults");
    assert!(matches!(
        c.start_session(None, csta::ED3).await,
        Message::Session(Session::StartPos { .. })
    ));
    sim.terminate_sessions().await.expect("terminate");
    let t = c
        .read_frame(WAIT)
        .await
        .expect("ApplicationSessionTerminated");
    assert!(matches!(
        t.message,
        Message::Session(Session::Terminated { .. })
    ));
    assert!(c.closed_within(WAIT).await);
}

#[tokio::test]
async fn fault_system_status_disabled_then_normal() {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    c.request(Request::RequestSystemStatus { line: None }).await;
    sim.set_system_status(SystemStatusValue::Disabled)
        .await
        .expect("status");
    let r = c.read_frame(WAIT).await.expect("SystemStatus disabled");
    assert!(matches!(
        r.message,
        Message::Request(Request::SystemStatus {
            status: SystemStatusValue::Disabled,
            ..
        })
    ));
    assert_eq!(
        c.request(Request::RequestSystemStatus { line: None }).await,
        Message::Response(Response::RequestSystemStatus {
            status: SystemStatusValue::Disabled
        })
    );
    sim.set_system_status(SystemStatusValue::Normal)
        .await
        .expect("status");
    let r = c.read_frame(WAIT).await.expect("SystemStatus normal");
    assert!(matches!(
        r.message,
        Message::Request(Request::SystemStatus {
            status: SystemStatusValue::Normal,
            ..
        })
    ));
}

#[tokio::test]
async fn fault_malformed_frame_reaches_the_client() {
    let sim = start(Profile::Generic).await;
    let s = tokio::net::TcpStream::connect(sim.tcp_addr().expect("tcp"))
        .await
        .expect("connect");
    let mut dec = framing::AnnexJDecoder::new();
    sim.links().await.expect("links");
    // Wait until the simulator has registered the link.
    for _ in 0..100 {
        if !sim.links().await.expect("links").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sim.send_malformed().await.expect("fault");
    let mut buf = [0u8; 1024];
    s.readable().await.expect("readable");
    let n = tokio::time::timeout(WAIT, async {
        loop {
            match s.try_read(&mut buf) {
                Ok(n) => break n,
                Err(_) => s.readable().await.expect("readable"),
            }
        }
    })
    .await
    .expect("bytes in time");
    dec.push(&buf[..n]);
    let frame = dec.next_frame().expect("framing").expect("a frame");
    assert!(
        csta::decode(&frame.xml).is_err(),
        "the frame must be malformed"
    );
}

#[rstest::rstest]
#[case::orderly(false)]
#[case::reset(true)]
#[tokio::test]
async fn fault_drop_links(#[case] abort: bool) {
    let sim = start(Profile::Generic).await;
    let mut c = client(&sim).await;
    c.monitor("1001").await;
    sim.drop_links(abort).await.expect("drop");
    assert!(c.closed_within(WAIT).await);
    assert!(sim.links().await.expect("links").is_empty());
    // A new link is accepted afterwards.
    let mut c2 = client(&sim).await;
    c2.monitor("1001").await;
}

/// A client that writes and never reads: the simulator goes on reading while its writes wait
/// (a real CSTA server does; one that stopped reading would leave such a client blocked in its
/// writes for ever), queues the answers up to its bound, then closes the link.
#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_not_deadlocked() {
    let sim = start(Profile::Generic).await;
    let addr = sim.tcp_addr().expect("TCP listener");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(64 * 1024).expect("buffer");
    socket.set_send_buffer_size(64 * 1024).expect("buffer");
    let mut stream = socket.connect(addr).await.expect("connect");
    let xml = csta::encode(
        &Message::Request(Request::RequestSystemStatus { line: None }),
        csta::ED3,
    );
    let mut chunk = Vec::new();
    for invoke in 1..=256 {
        chunk.extend(framing::encode_annex_j(invoke, xml.as_bytes()).expect("frame"));
    }
    // Far more than the link's queue (65,536) and the kernel's buffers hold answers for.
    let mut sent = 0usize;
    let flood = async {
        while sent < 4_000_000 {
            tokio::io::AsyncWriteExt::write_all(&mut stream, &chunk).await?;
            sent += 256;
        }
        std::io::Result::Ok(())
    };
    let ended = tokio::time::timeout(Duration::from_secs(120), flood)
        .await
        .unwrap_or_else(|_| panic!("writes stalled after {sent} requests: deadlocked"));
    assert!(
        ended.is_err(),
        "the simulator took {sent} requests from a client that reads nothing"
    );
    assert!(
        sent >= 65_536,
        "closed after {sent} requests, before the queue could fill"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while !sim.links().await.expect("links").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the link is still listed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
