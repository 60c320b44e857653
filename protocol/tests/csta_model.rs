//! CSTA decoding tolerance, canonical encoding snapshots, malformed input, and encode/decode
//! round trips over generated messages.

use proptest::prelude::*;
use rcc_protocol::csta::{
    self, AutoOriginate, CallEvent, CallEventKind, Cause, ConnectionId, ConnectionListItem,
    CstaError, DecodeError, DeviceRef, DoNotDisturbEvent, ED3, ErrorCategory, Event, Feature,
    ForwardItem, ForwardingEvent, ForwardingType, LocalConnectionState, Message, MonitorObject,
    Reason, Request, Response, Service, Session, SnapshotCall, SystemStatusValue,
};

fn decode(xml: &str) -> Message {
    csta::decode(xml.as_bytes())
        .unwrap_or_else(|e| panic!("{e}: {xml}"))
        .message
}

#[test]
fn lcs_line_and_namespace_of_a_lync_invite_body() {
    let d = csta::decode(br#"<?xml version="1.0"?><RequestSystemStatus xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3"><extensions><privateData><private><lcs:line xmlns:lcs="http://schemas.microsoft.com/Lcs/2005/04/RCCExtension">tel:+14255550100;ext=100</lcs:line></private></privateData></extensions></RequestSystemStatus>"#).expect("decodes");
    assert_eq!(d.namespace.as_deref(), Some(ED3));
    assert_eq!(
        d.message,
        Message::Request(Request::RequestSystemStatus {
            line: Some("tel:+14255550100;ext=100".into())
        })
    );
}

#[test]
fn any_namespace_prefix_or_none() {
    for xml in [
        r#"<MonitorStopResponse/>"#,
        r#"<MonitorStopResponse xmlns="http://www.ecma.ch/standards/ecma-323/csta/ed6"/>"#,
        r#"<ns3:MonitorStopResponse xmlns:ns3="http://www.ecma-international.org/standards/ecma-323/csta/ed3/priv6"/>"#,
    ] {
        assert_eq!(
            decode(xml),
            Message::Response(Response::Empty(Service::MonitorStop)),
            "{xml}"
        );
    }
    let d = csta::decode(br#"<ns3:SystemStatus xmlns:ns2="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns3="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>"#).expect("decodes");
    assert_eq!(
        d.namespace.as_deref(),
        Some("http://www.ecma-international.org/standards/ecma-323/csta/ed4")
    );
    assert_eq!(
        d.message,
        Message::Request(Request::SystemStatus {
            register_id: None,
            status: SystemStatusValue::Normal
        }),
        "a SystemStatus without systemStatus reads as normal"
    );
}

#[test]
fn element_order_and_connection_id_order_do_not_matter() {
    let a = decode(
        r#"<AnswerCall><callToBeAnswered><deviceID typeOfNumber="other">1002:CM1:10.0.0.1:0</deviceID><callID>179</callID></callToBeAnswered></AnswerCall>"#,
    );
    assert_eq!(
        a,
        Message::Request(Request::AnswerCall {
            call: ConnectionId::new("179", "1002:CM1:10.0.0.1:0")
        })
    );
    let m = decode(
        r#"<MakeCall><autoOriginate>prompt</autoOriginate><calledDirectoryNumber>1002</calledDirectoryNumber><callingDevice>1001</callingDevice></MakeCall>"#,
    );
    assert_eq!(
        m,
        Message::Request(Request::MakeCall {
            calling: "1001".into(),
            called: "1002".into(),
            auto_originate: Some(AutoOriginate::Prompt)
        })
    );
}

#[test]
fn schema_quirks_in_both_spellings() {
    let ev = r#"<TransferredEvent><monitorCrossRefID>7</monitorCrossRefID><primaryOldCall><callID>C1</callID><deviceID>1001</deviceID></primaryOldCall></TransferredEvent>"#;
    let Message::Event(Event::Call(c)) = decode(ev) else {
        panic!("not an event")
    };
    assert_eq!(c.kind, CallEventKind::Transferred);
    assert!(csta::encode(&Message::Event(Event::Call(c)), ED3).contains("<TransferedEvent "));
    for cat in ["systemResourceAvailibility", "systemResourceAvailability"] {
        let xml = format!("<CSTAErrorCode><{cat}>resourceBusy</{cat}></CSTAErrorCode>");
        assert_eq!(
            decode(&xml),
            Message::Error(CstaError::resource("resourceBusy"))
        );
    }
    assert!(
        csta::encode(&Message::Error(CstaError::resource("resourceBusy")), ED3)
            .contains("<systemResourceAvailibility>")
    );
}

#[test]
fn case_insensitive_fallback_and_unknown_elements() {
    let m = decode(
        r#"<HoldCall><callToBeHeld><callId>17</callId><DeviceID>LINE</DeviceID></callToBeHeld><vendorThing><x/></vendorThing></HoldCall>"#,
    );
    assert_eq!(
        m,
        Message::Request(Request::HoldCall {
            call: ConnectionId::new("17", "LINE"),
            reservation: None
        })
    );
}

#[test]
fn unknown_enumerations_are_kept() {
    let Message::Event(Event::Call(c)) = decode(
        r#"<ConnectionClearedEvent><monitorCrossRefID>u-1</monitorCrossRefID><localConnectionInfo>weird</localConnectionInfo><cause>Normal Clearing</cause></ConnectionClearedEvent>"#,
    ) else {
        panic!("not an event")
    };
    assert_eq!(
        c.local_state,
        Some(LocalConnectionState::Other("weird".into()))
    );
    assert_eq!(c.cause, Some(Cause::new("Normal Clearing")));
    assert!(!c.cause.as_ref().is_some_and(Cause::is_known));
    assert!(Cause::new("callNotAnswered").is_known());
}

#[test]
fn deflect_accepts_both_destination_forms() {
    for dest in [
        "<newDestination>tel:+1555</newDestination>",
        "<newDestination><device>tel:+1555</device></newDestination>",
    ] {
        let xml = format!(
            "<DeflectCall><callToBeDiverted><callID>1</callID><deviceID>L</deviceID></callToBeDiverted>{dest}</DeflectCall>"
        );
        assert!(
            matches!(decode(&xml), Message::Request(Request::DeflectCall { new_destination, .. }) if new_destination == "tel:+1555")
        );
    }
}

#[test]
fn avaya_exception_and_session_negative_responses() {
    let x = r#"<CSTAException xmlns="http://www.avaya.com/csta"><exceptionClass>x</exceptionClass><CSTAErrorCode xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3"><operation>invalidDeviceID</operation></CSTAErrorCode></CSTAException>"#;
    assert_eq!(
        decode(x),
        Message::Error(CstaError::operation("invalidDeviceID"))
    );
    assert_eq!(
        decode("<CSTAErrorCode><unspecified/></CSTAErrorCode>"),
        Message::Error(CstaError::new(ErrorCategory::Unspecified, ""))
    );
}

#[test]
fn malformed_input_gets_typed_errors() {
    assert!(matches!(
        csta::decode(b"<MakeCall><callingDevice>1</callingDevice>"),
        Err(DecodeError::Xml(_))
    ));
    assert!(
        matches!(csta::decode(b"<RouteRequest/>"), Err(DecodeError::UnknownRoot(r)) if r == "RouteRequest")
    );
    assert!(matches!(
        csta::decode(b"<MakeCall><callingDevice>1</callingDevice></MakeCall>"),
        Err(DecodeError::Missing {
            element: "calledDirectoryNumber",
            ..
        })
    ));
    assert!(matches!(csta::decode(b"<SetDoNotDisturb><device>1</device><doNotDisturbOn>maybe</doNotDisturbOn></SetDoNotDisturb>"), Err(DecodeError::Value { .. })));
    let deep = format!(
        "<MakeCall>{}{}</MakeCall>",
        "<x>".repeat(100),
        "</x>".repeat(100)
    );
    assert!(matches!(
        csta::decode(deep.as_bytes()),
        Err(DecodeError::Limit {
            what: "nesting depth",
            ..
        })
    ));
    let huge = format!(
        "<MakeCall><callingDevice>{}</callingDevice></MakeCall>",
        "9".repeat(20_000)
    );
    assert!(matches!(
        csta::decode(huge.as_bytes()),
        Err(DecodeError::Limit { .. })
    ));
    assert!(matches!(
        csta::decode(&vec![b' '; 70_000]),
        Err(DecodeError::Limit {
            what: "document size",
            ..
        })
    ));
    assert!(matches!(
        csta::decode(b"<a>\xff</a>"),
        Err(DecodeError::Xml(_))
    ));
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><MonitorStopResponse><x>M\xfcller</x></MonitorStopResponse>";
    assert!(csta::decode(latin1).is_ok());
}

/// One instance of every message type, with the name its snapshot is stored under.
fn samples() -> Vec<(&'static str, Message)> {
    let c1 = ConnectionId::new("C1", "tel:+14255550100;ext=100");
    let c2 = ConnectionId::new("C2", "tel:+14255550100;ext=100");
    let list = vec![ConnectionListItem {
        new_connection: Some(ConnectionId::new("C2", "1002")),
        old_connection: Some(ConnectionId::new("C1", "1002")),
        endpoint: Some("1002".into()),
    }];
    let line = "tel:+14255550100;ext=100".to_owned();
    let mut out: Vec<(&'static str, Message)> = vec![
        (
            "RequestSystemStatus",
            Message::Request(Request::RequestSystemStatus {
                line: Some(line.clone()),
            }),
        ),
        (
            "SystemStatus",
            Message::Request(Request::SystemStatus {
                register_id: Some("27ss".into()),
                status: SystemStatusValue::Normal,
            }),
        ),
        (
            "SystemRegister",
            Message::Request(Request::SystemRegister {
                system_status: true,
                request_system_status: false,
            }),
        ),
        (
            "SystemRegisterCancel",
            Message::Request(Request::SystemRegisterCancel {
                register_id: "27ss".into(),
            }),
        ),
        (
            "GetCSTAFeatures",
            Message::Request(Request::GetCstaFeatures {
                line: Some(line.clone()),
            }),
        ),
        (
            "MonitorStart",
            Message::Request(Request::MonitorStart {
                object: MonitorObject::Device(line.clone()),
                monitor_type: None,
            }),
        ),
        (
            "MonitorStartCall",
            Message::Request(Request::MonitorStart {
                object: MonitorObject::Call(c1.clone()),
                monitor_type: Some("call".into()),
            }),
        ),
        (
            "MonitorStop",
            Message::Request(Request::MonitorStop {
                cross_ref: "99fda87c".into(),
            }),
        ),
        (
            "SnapshotDevice",
            Message::Request(Request::SnapshotDevice {
                device: line.clone(),
            }),
        ),
        (
            "MakeCall",
            Message::Request(Request::MakeCall {
                calling: line.clone(),
                called: "tel:+3222220220".into(),
                auto_originate: Some(AutoOriginate::DoNotPrompt),
            }),
        ),
        (
            "AnswerCall",
            Message::Request(Request::AnswerCall { call: c1.clone() }),
        ),
        (
            "ClearConnection",
            Message::Request(Request::ClearConnection {
                connection: c1.clone(),
                reason: Some(Cause::new("normalClearing")),
            }),
        ),
        (
            "ClearCall",
            Message::Request(Request::ClearCall { call: c1.clone() }),
        ),
        (
            "HoldCall",
            Message::Request(Request::HoldCall {
                call: c1.clone(),
                reservation: Some(true),
            }),
        ),
        (
            "RetrieveCall",
            Message::Request(Request::RetrieveCall { call: c1.clone() }),
        ),
        (
            "AlternateCall",
            Message::Request(Request::AlternateCall {
                held: c1.clone(),
                active: c2.clone(),
            }),
        ),
        (
            "ReconnectCall",
            Message::Request(Request::ReconnectCall {
                active: c2.clone(),
                held: c1.clone(),
            }),
        ),
        (
            "ConsultationCall",
            Message::Request(Request::ConsultationCall {
                existing: c1.clone(),
                consulted: "tel:+14255550199".into(),
            }),
        ),
        (
            "TransferCall",
            Message::Request(Request::TransferCall {
                held: c1.clone(),
                active: c2.clone(),
            }),
        ),
        (
            "SingleStepTransferCall",
            Message::Request(Request::SingleStepTransferCall {
                active: c1.clone(),
                transferred_to: "tel:+14255550199".into(),
            }),
        ),
        (
            "DeflectCall",
            Message::Request(Request::DeflectCall {
                call: c1.clone(),
                new_destination: "tel:+14255550123".into(),
            }),
        ),
        (
            "ConferenceCall",
            Message::Request(Request::ConferenceCall {
                held: c1.clone(),
                active: c2.clone(),
            }),
        ),
        (
            "GenerateDigits",
            Message::Request(Request::GenerateDigits {
                connection: c1.clone(),
                digits: "1234#".into(),
                tone_duration: Some(100),
            }),
        ),
        (
            "SetForwarding",
            Message::Request(Request::SetForwarding {
                device: line.clone(),
                forwarding_type: ForwardingType::NoAnswer,
                activate: true,
                forward_dn: Some("tel:+14255550111".into()),
                ring_count: Some(4),
            }),
        ),
        (
            "GetForwarding",
            Message::Request(Request::GetForwarding {
                device: line.clone(),
            }),
        ),
        (
            "SetDoNotDisturb",
            Message::Request(Request::SetDoNotDisturb {
                device: line.clone(),
                on: true,
            }),
        ),
        (
            "RequestSystemStatusResponse",
            Message::Response(Response::RequestSystemStatus {
                status: SystemStatusValue::Normal,
            }),
        ),
        (
            "SystemRegisterResponse",
            Message::Response(Response::SystemRegister {
                register_id: "500046".into(),
            }),
        ),
        (
            "GetCSTAFeaturesResponse",
            Message::Response(Response::GetCstaFeatures {
                services: vec![
                    Feature::new("callControlServList", "makeCall"),
                    Feature::new("callControlServList", "answerCall"),
                    Feature::new("logicalServList", "setForwarding"),
                ],
                events: vec![
                    Feature::new("callControlEvtsList", "delivered"),
                    Feature::new("logicalEvtsList", "forwarding"),
                ],
            }),
        ),
        (
            "MonitorStartResponse",
            Message::Response(Response::MonitorStart {
                cross_ref: "99fda87c".into(),
                existing_calls: Some(false),
            }),
        ),
        (
            "SnapshotDeviceResponse",
            Message::Response(Response::SnapshotDevice {
                calls: vec![SnapshotCall {
                    connection: c1.clone(),
                    states: vec![
                        LocalConnectionState::Connected,
                        LocalConnectionState::Alerting,
                    ],
                }],
            }),
        ),
        (
            "MakeCallResponse",
            Message::Response(Response::MakeCall {
                calling: c1.clone(),
            }),
        ),
        (
            "ConsultationCallResponse",
            Message::Response(Response::ConsultationCall {
                initiated: c2.clone(),
            }),
        ),
        (
            "TransferCallResponse",
            Message::Response(Response::TransferCall {
                transferred: Some(ConnectionId::new("C2", "1002")),
                connections: list.clone(),
            }),
        ),
        (
            "SingleStepTransferCallResponse",
            Message::Response(Response::SingleStepTransferCall {
                transferred: Some(ConnectionId::new("C1", "1003")),
                connections: vec![],
            }),
        ),
        (
            "ConferenceCallResponse",
            Message::Response(Response::ConferenceCall {
                conference: Some(c1.clone()),
                connections: list.clone(),
            }),
        ),
        (
            "GetForwardingResponse",
            Message::Response(Response::GetForwarding {
                items: vec![ForwardItem {
                    forwarding_type: ForwardingType::Immediate,
                    status: true,
                    forward_dn: Some("tel:+14255550111".into()),
                    ring_count: None,
                }],
            }),
        ),
        (
            "CSTAErrorCode",
            Message::Error(CstaError::operation("invalidCallID")),
        ),
        (
            "StartApplicationSession",
            Message::Session(Session::Start {
                application_id: "rcc-gateway".into(),
                user: Some("ctiuser".into()),
                password: Some("secret".into()),
                protocol_versions: vec![ED3.into()],
                duration: Some(180),
            }),
        ),
        (
            "StartApplicationSessionPosResponse",
            Message::Session(Session::StartPos {
                session_id: "009968951".into(),
                protocol_version: Some(ED3.into()),
                duration: Some(180),
            }),
        ),
        (
            "StartApplicationSessionNegResponse",
            Message::Session(Session::StartNeg {
                error: Reason::Defined("invalidApplicationInfo".into()),
            }),
        ),
        (
            "StopApplicationSession",
            Message::Session(Session::Stop {
                session_id: "009968951".into(),
                reason: Reason::Defined("normal".into()),
            }),
        ),
        (
            "StopApplicationSessionPosResponse",
            Message::Session(Session::StopPos),
        ),
        (
            "StopApplicationSessionNegResponse",
            Message::Session(Session::StopNeg {
                error: Reason::Defined("invalidSessionID".into()),
            }),
        ),
        (
            "ResetApplicationSessionTimer",
            Message::Session(Session::Reset {
                session_id: "5A3F9C2E".into(),
                duration: Some(180),
            }),
        ),
        (
            "ResetApplicationSessionTimerPosResponse",
            Message::Session(Session::ResetPos {
                duration: Some(180),
            }),
        ),
        (
            "ResetApplicationSessionTimerNegResponse",
            Message::Session(Session::ResetNeg {
                error: Reason::Text("no such session".into()),
            }),
        ),
        (
            "ApplicationSessionTerminated",
            Message::Session(Session::Terminated {
                session_id: "5A3F9C2E".into(),
                reason: Reason::Defined("sessionTimerExpired".into()),
            }),
        ),
        (
            "ForwardingEvent",
            Message::Event(Event::Forwarding(ForwardingEvent {
                cross_ref: "99fda87c".into(),
                device: DeviceRef::id(line.clone()),
                forwarding_type: ForwardingType::Immediate,
                status: true,
                forward_to: Some("tel:+14255550111".into()),
                ring_count: None,
            })),
        ),
        (
            "DoNotDisturbEvent",
            Message::Event(Event::DoNotDisturb(DoNotDisturbEvent {
                cross_ref: "99fda87c".into(),
                device: DeviceRef::id(line.clone()),
                on: true,
            })),
        ),
    ];
    for s in Service::ALL {
        if matches!(
            s,
            Service::AnswerCall
                | Service::ClearConnection
                | Service::ClearCall
                | Service::HoldCall
                | Service::RetrieveCall
                | Service::AlternateCall
                | Service::ReconnectCall
                | Service::DeflectCall
                | Service::GenerateDigits
                | Service::SetForwarding
                | Service::SetDoNotDisturb
                | Service::MonitorStop
                | Service::SystemStatus
                | Service::SystemRegisterCancel
        ) {
            out.push((
                Box::leak(s.response_name().into_boxed_str()),
                Message::Response(Response::Empty(s)),
            ));
        }
    }
    for kind in CallEventKind::ALL {
        let mut e = CallEvent::new(kind, "99fda87c");
        e.connection = Some(c1.clone());
        e.subject = Some(DeviceRef::id(line.clone()));
        e.calling = Some(DeviceRef::id("tel:+14255550177"));
        e.called = Some(DeviceRef::id(line.clone()));
        e.last_redirection = Some(DeviceRef::NotRequired);
        e.target = Some(DeviceRef::id("tel:+14255550199"));
        e.secondary_old_call = Some(c2.clone());
        e.connections = list.clone();
        e.digits = Some("1234#".into());
        e.local_state = Some(LocalConnectionState::Connected);
        e.cause = Some(Cause::new("normal"));
        out.push((kind.root_name(), Message::Event(Event::Call(e))));
    }
    out
}

#[test]
fn canonical_encoding_of_every_message_type() {
    let samples = samples();
    assert!(
        samples.len() >= 75,
        "every request, response, event, error and session message"
    );
    for (name, msg) in samples {
        let xml = csta::encode(&msg, ED3);
        insta::assert_snapshot!(name, xml);
        let back = csta::decode(xml.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .message;
        // Fields a kind does not carry are dropped by its schema; compare after one round trip.
        let twice = csta::decode(csta::encode(&back, ED3).as_bytes())
            .expect("decodes")
            .message;
        assert_eq!(back, twice, "{name}");
        if !matches!(msg, Message::Event(Event::Call(_))) {
            assert_eq!(back, msg, "{name}");
        }
    }
}

#[test]
fn encoding_is_deterministic() {
    for (_, msg) in samples() {
        assert_eq!(csta::encode(&msg, ED3), csta::encode(&msg, ED3));
    }
}

fn text() -> impl Strategy<Value = String> {
    // Anything XML 1.0 can carry, including markup characters; no surrounding whitespace
    // (the decoder trims it) and no control characters (XML forbids most of them).
    "[a-zA-Z0-9+;=:<>&\"' é€_.-]{0,24}".prop_map(|s| s.trim().to_owned())
}

fn conn() -> impl Strategy<Value = ConnectionId> {
    (proptest::option::of(text()), proptest::option::of(text())).prop_map(|(c, d)| ConnectionId {
        call_id: c,
        device_id: d,
    })
}

fn device() -> impl Strategy<Value = DeviceRef> {
    prop_oneof![
        text()
            .prop_filter("non-empty", |s| !s.is_empty())
            .prop_map(DeviceRef::Id),
        Just(DeviceRef::NotKnown),
        Just(DeviceRef::Restricted)
    ]
}

fn call_event() -> impl Strategy<Value = CallEvent> {
    (
        0..CallEventKind::ALL.len(),
        text(),
        conn(),
        device(),
        device(),
        proptest::option::of(text().prop_map(Cause::new)),
    )
        .prop_map(|(k, xref, c, sub, calling, cause)| {
            let kind = CallEventKind::ALL[k];
            let mut e = CallEvent::new(kind, xref);
            e.connection = Some(c);
            if !matches!(
                kind,
                CallEventKind::CallCleared | CallEventKind::DigitsGenerated
            ) {
                if kind != CallEventKind::Originated {
                    e.subject = Some(sub);
                }
                e.local_state = Some(LocalConnectionState::Alerting);
            }
            if matches!(
                kind,
                CallEventKind::Delivered | CallEventKind::Established | CallEventKind::Failed
            ) {
                e.calling = Some(calling);
            }
            if kind != CallEventKind::DigitsGenerated {
                e.cause = cause.filter(|c| !c.0.is_empty());
            }
            e
        })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (text(), text()).prop_map(|(calling, called)| Request::MakeCall {
            calling,
            called,
            auto_originate: None
        }),
        conn().prop_map(|call| Request::AnswerCall { call }),
        (conn(), conn()).prop_map(|(held, active)| Request::TransferCall { held, active }),
        (conn(), text()).prop_map(|(connection, digits)| Request::GenerateDigits {
            connection,
            digits,
            tone_duration: None
        }),
        proptest::option::of(text().prop_filter("non-empty", |s| !s.is_empty()))
            .prop_map(|line| Request::RequestSystemStatus { line }),
        (
            text(),
            any::<bool>(),
            proptest::option::of(text()),
            proptest::option::of(0u32..100)
        )
            .prop_map(|(device, activate, forward_dn, ring_count)| {
                Request::SetForwarding {
                    device,
                    forwarding_type: ForwardingType::Busy,
                    activate,
                    forward_dn,
                    ring_count,
                }
            }),
    ]
}

proptest! {
    #[test]
    fn call_events_round_trip(ev in call_event()) {
        let msg = Message::Event(Event::Call(ev));
        let xml = csta::encode(&msg, ED3);
        prop_assert_eq!(csta::decode(xml.as_bytes()).map(|d| d.message), Ok(msg));
    }

    #[test]
    fn requests_round_trip(req in request()) {
        let msg = Message::Request(req);
        let xml = csta::encode(&msg, "");
        prop_assert_eq!(csta::decode(xml.as_bytes()).map(|d| d.message), Ok(msg));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = csta::decode(&data);
    }
}
