//! The link state machine driven with synthetic frames and time.

use super::*;

fn aes_settings() -> LinkSettings {
    LinkSettings {
        profile: PbxProfile::Aes,
        namespace: ED3.to_owned(),
        framing: PbxFraming::AnnexJ,
        credentials: None,
        application_id: "rcc-lab".to_owned(),
        session_duration: Duration::from_secs(180),
        request_timeout: Duration::from_secs(4),
        reconnect_min: Duration::from_millis(500),
        reconnect_max: Duration::from_secs(30),
        max_in_flight: 64,
        keep_frames: false,
        timeouts_before_drop: 3,
        frame_timeout: Duration::from_secs(10),
        keepalive: None,
        pace: None,
        pace_queue: 16,
        pace_wait: Duration::from_secs(2),
    }
}

/// A generic-profile link that is up (no session, no registration).
fn generic_up(settings: LinkSettings, now: Instant) -> PbxLink<u32> {
    let mut link = PbxLink::new(
        LinkSettings {
            profile: PbxProfile::Generic,
            ..settings
        },
        now,
    );
    link.handle_timeout(now);
    assert!(matches!(
        link.poll_output(),
        Some(LinkOutput::Connect { .. })
    ));
    link.connected(now);
    assert!(link.is_up());
    while link.poll_event().is_some() {}
    link
}

fn downs<P>(link: &mut PbxLink<P>) -> Vec<String> {
    std::iter::from_fn(|| link.poll_event())
        .filter_map(|e| match e {
            LinkEvent::Down { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

fn snapshot() -> Request {
    Request::SnapshotDevice {
        device: "1001".to_owned(),
    }
}

/// An answer frame for invoke `invoke`.
fn answer(invoke: u16) -> Vec<u8> {
    let xml = csta::encode(
        &Message::Response(Response::Empty(Service::SystemStatus)),
        ED3,
    );
    framing::encode_annex_j(invoke, xml.as_bytes()).expect("frame")
}

#[test]
fn requests_unanswered_in_a_row_drop_the_link_and_an_answer_resets_the_count() {
    let t0 = Instant::now();
    let mut link = generic_up(aes_settings(), t0);
    let timeout = Duration::from_secs(4);
    // Two timeouts, an answer, two more: still up.
    let mut t = t0;
    for round in 0..2 {
        for n in 0..2 {
            link.request(round * 10 + n, snapshot(), t).expect("sent");
            sent_invoke(&mut link);
        }
        t += timeout + Duration::from_millis(1);
        link.handle_timeout(t);
        link.request(99, snapshot(), t).expect("sent");
        let id = sent_invoke(&mut link);
        link.receive(&answer(id), t);
        assert!(link.is_up(), "round {round}");
        assert!(downs(&mut link).is_empty());
    }
    // Three in a row: down.
    for n in 0..3 {
        link.request(50 + n, snapshot(), t).expect("sent");
        sent_invoke(&mut link);
    }
    link.handle_timeout(t + timeout + Duration::from_millis(1));
    assert!(!link.is_up());
    assert_eq!(
        downs(&mut link),
        ["the PBX left 3 request(s) in a row unanswered"]
    );
}

#[test]
fn a_frame_stalled_halfway_drops_the_link() {
    let t0 = Instant::now();
    let mut link = generic_up(aes_settings(), t0);
    let whole = answer(7);
    link.receive(&whole[..5], t0);
    assert_eq!(link.next_timeout(), Some(t0 + Duration::from_secs(10)));
    link.handle_timeout(t0 + Duration::from_secs(9));
    assert!(link.is_up(), "not yet");
    link.handle_timeout(t0 + Duration::from_secs(10));
    assert!(!link.is_up());
    assert_eq!(
        downs(&mut link),
        ["a frame from the PBX stayed incomplete for 10000 ms"]
    );
}

#[test]
fn a_quiet_link_is_probed_and_a_silent_pbx_is_dropped() {
    let t0 = Instant::now();
    let settings = LinkSettings {
        keepalive: Some(Duration::from_secs(30)),
        timeouts_before_drop: 1,
        ..aes_settings()
    };
    let mut link = generic_up(settings, t0);
    assert_eq!(link.next_timeout(), Some(t0 + Duration::from_secs(30)));
    // Answered: the status it reports is taken, and the next probe waits for the next quiet spell.
    let t1 = t0 + Duration::from_secs(30);
    link.handle_timeout(t1);
    let probe = sent_invoke(&mut link);
    let status = csta::encode(
        &Message::Response(Response::RequestSystemStatus {
            status: SystemStatusValue::Disabled,
        }),
        ED3,
    );
    link.receive(
        &framing::encode_annex_j(probe, status.as_bytes()).expect("frame"),
        t1,
    );
    assert!(link.is_up() && !link.is_serving(), "disabled, as answered");
    assert_eq!(link.next_timeout(), Some(t1 + Duration::from_secs(30)));
    // Unanswered: the PBX is gone.
    let t2 = t1 + Duration::from_secs(30);
    link.handle_timeout(t2);
    sent_invoke(&mut link);
    link.handle_timeout(t2 + Duration::from_secs(4));
    assert!(!link.is_up());
    assert!(downs(&mut link).contains(&"the PBX left 1 request(s) in a row unanswered".to_owned()));
}

/// A StartApplicationSessionPosResponse frame answering invoke `invoke`.
fn start_pos(invoke: u16) -> Vec<u8> {
    let pos = csta::encode(
        &Message::Session(Session::StartPos {
            session_id: "s1".to_owned(),
            protocol_version: None,
            duration: Some(180),
        }),
        ED3,
    );
    framing::encode_annex_j(invoke, pos.as_bytes()).expect("frame")
}

/// The invoke ID of the one frame the link sent.
fn sent_invoke<P>(link: &mut PbxLink<P>) -> u16 {
    let Some(LinkOutput::Send(bytes)) = link.poll_output() else {
        panic!("the link sent a frame");
    };
    let mut d = framing::AnnexJDecoder::new();
    d.push(&bytes);
    match d.next_frame() {
        Ok(Some(Frame {
            invoke_id: Some(InvokeId::Id(id)),
            ..
        })) => id,
        other => panic!("an Annex J request frame, got {other:?}"),
    }
}

#[test]
fn unanswered_stop_at_shutdown_does_not_count_as_a_link_loss() {
    let now = Instant::now();
    let mut link: PbxLink<()> = PbxLink::new(aes_settings(), now);
    link.connected(now);
    let start = sent_invoke(&mut link);
    link.receive(&start_pos(start), now);
    assert!(link.is_up(), "up once the session started");
    while link.poll_event().is_some() {}

    link.stop(now);
    sent_invoke(&mut link);
    link.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(link.in_flight(), 0, "the stop request expired");
    assert!(link.is_up(), "a silent PBX at shutdown is not a link loss");
    assert!(
        std::iter::from_fn(|| link.poll_event()).all(|e| !matches!(e, LinkEvent::Down { .. })),
        "no Down event"
    );
}

#[test]
fn kept_frames_are_the_bytes_on_the_wire() {
    let now = Instant::now();
    let mut settings = aes_settings();
    settings.keep_frames = true;
    let mut link: PbxLink<()> = PbxLink::new(settings, now);
    link.connected(now);
    let start = link
        .last_sent()
        .map(<[u8]>::to_vec)
        .expect("a frame queued");
    assert_eq!(
        link.poll_output(),
        Some(LinkOutput::Send(start)),
        "last_sent is the queued frame"
    );
    link.receive(&start_pos(1), now);
    while link.poll_event().is_some() {}
    assert!(link.is_up(), "up once the session started");
    let mut e = csta::CallEvent::new(csta::CallEventKind::Delivered, "x1");
    e.connection = Some(csta::ConnectionId::new("C1", "1001"));
    let ev = framing::encode_annex_j(
        EVENT_INVOKE_ID,
        csta::encode(&Message::Event(Event::Call(e)), ED3).as_bytes(),
    )
    .expect("frame");
    // Split across two reads: the kept frame is still the whole frame.
    link.receive(&ev[..10], now);
    link.receive(&ev[10..], now);
    match link.poll_event_with_frame() {
        Some((LinkEvent::Event(_), Some(frame))) => assert_eq!(frame, ev),
        other => panic!("an event with its frame, got {other:?}"),
    }
}

/// An Annex J frame with raw header bytes, as a PBX out of step would send it.
fn raw_frame(version: [u8; 2], invoke: &[u8; 4], xml: &str) -> Vec<u8> {
    let len = u16::try_from(xml.len() + 8).expect("short");
    let mut f = Vec::new();
    f.extend_from_slice(&version);
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(invoke);
    f.extend_from_slice(xml.as_bytes());
    f
}

#[test]
fn a_stream_out_of_step_drops_the_link_instead_of_matching_the_oldest_request() {
    let mut settings = aes_settings();
    settings.profile = PbxProfile::Generic;
    let now = Instant::now();
    for (version, invoke) in [([0u8, 0u8], b"ab12"), ([0x41, 0x42], b"0001")] {
        let mut link: PbxLink<&str> = PbxLink::new(settings.clone(), now);
        link.connected(now);
        assert!(link.is_up());
        while link.poll_event().is_some() {}
        while link.poll_output().is_some() {}
        let sent = link.request(
            "alice's request",
            Request::SnapshotDevice {
                device: "100".into(),
            },
            now,
        );
        assert!(sent.is_ok());
        let answer = csta::encode(
            &Message::Response(Response::SnapshotDevice { calls: Vec::new() }),
            ED3,
        );
        link.receive(&raw_frame(version, invoke, &answer), now);
        let events: Vec<_> = std::iter::from_fn(|| link.poll_event()).collect();
        assert!(
            events.iter().any(|e| matches!(e, LinkEvent::Down { .. })),
            "{version:?} {invoke:?}: the link goes down: {events:?}"
        );
        assert!(
            events
                .iter()
                .all(|e| !matches!(e, LinkEvent::Completed { result: Ok(_), .. })),
            "no request gets that answer: {events:?}"
        );
        assert!(!link.is_up());
    }
}
