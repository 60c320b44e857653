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
    }
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
fn sent_invoke(link: &mut PbxLink<()>) -> u16 {
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
