//! MakeCall, AnswerCall, ClearConnection, ClearCall, HoldCall, RetrieveCall, ConsultationCall,
//! AlternateCall, ReconnectCall, DeflectCall and GenerateDigits.

use rcc_protocol::csta::{
    AutoOriginate, Cause, ConnectionId, DeviceRef, Event, Request, Response, Service,
};

use super::{Lab, cid, op, state};
use crate::pbx::switch::SwitchConfig;

fn make_call(calling: &str, called: &str) -> Request {
    Request::MakeCall {
        calling: calling.into(),
        called: called.into(),
        auto_originate: None,
    }
}

fn hold(call: &str, device: &str) -> Request {
    Request::HoldCall {
        call: cid(call, device),
        reservation: None,
    }
}

fn clear(call: &str, device: &str) -> Request {
    Request::ClearConnection {
        connection: cid(call, device),
        reason: None,
    }
}

/// 100 talks to 101 in call 1, holds it and consults 102, who answers in call 2.
fn consulting(lab: &mut Lab) {
    lab.connected("100", "101");
    lab.ok(Request::ConsultationCall {
        existing: cid("1", "100"),
        consulted: "102".into(),
    });
    lab.sw.phone_answer("102", lab.now).expect("102 answers");
    lab.notices();
}

#[test]
fn make_call_originates_and_rings_the_called_device() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    let r = lab.ok(make_call("100", "101"));
    assert_eq!(
        r,
        Response::MakeCall {
            calling: cid("1", "100")
        }
    );
    let notices = lab.notices();
    let lines: Vec<String> = notices.iter().map(|n| lab.line(&n.event)).collect();
    assert_eq!(
        lines,
        [
            "100: ServiceInitiated 1/100 initiated makeCall",
            "100: Originated 1/100 connected newCall",
            "100: Delivered 1/101 connected newCall",
            "101: Delivered 1/101 alerting newCall",
        ]
    );
    let Event::Call(delivered) = &notices[3].event else {
        panic!("not a call event");
    };
    assert_eq!(delivered.calling, Some(DeviceRef::id("100")));
    assert_eq!(delivered.called, Some(DeviceRef::id("101")));
    assert_eq!(delivered.last_redirection, Some(DeviceRef::NotRequired));
    assert_eq!(lab.parties("1"), ["100:connected", "101:alerting"]);
}

#[test]
fn make_call_by_e164_number_reaches_the_device() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.ok(make_call("101", "tel:+14255550100"));
    assert_eq!(lab.log(), ["100: Delivered 1/100 alerting newCall"]);
}

#[test]
fn make_call_refusals() {
    let mut lab = Lab::new();
    lab.add_locked("104");
    lab.watch("100");
    let cases = [
        (make_call("alice", "101"), op("invalidCallingDeviceID")),
        (make_call("100", "bob"), op("invalidCalledDeviceID")),
        (
            make_call("104", "101"),
            op("privilegeViolationSpecifiedDevice"),
        ),
    ];
    for (request, error) in cases {
        assert_eq!(lab.refused(request), error);
    }
    lab.connected("100", "101");
    let busy = lab.refused(make_call("100", "102"));
    assert_eq!(busy, state("invalidCallingDeviceState"));
    assert!(lab.log().is_empty(), "a refusal reports nothing");
}

#[test]
fn make_call_with_prompt_rings_the_caller_first() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    let r = lab.ok(Request::MakeCall {
        calling: "100".into(),
        called: "101".into(),
        auto_originate: Some(AutoOriginate::Prompt),
    });
    assert_eq!(
        r,
        Response::MakeCall {
            calling: cid("1", "100")
        }
    );
    assert_eq!(lab.log(), ["100: Delivered 1/100 alerting newCall"]);
    lab.ok(Request::AnswerCall {
        call: cid("1", "100"),
    });
    assert_eq!(
        lab.log(),
        [
            "100: ServiceInitiated 1/100 initiated makeCall",
            "100: Originated 1/100 connected newCall",
            "100: Delivered 1/101 connected newCall",
            "101: Delivered 1/101 alerting newCall",
        ]
    );
}

#[test]
fn answer_call_establishes_the_call() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    lab.notices();
    let r = lab.ok(Request::AnswerCall {
        call: cid("1", "101"),
    });
    assert_eq!(r, Response::Empty(Service::AnswerCall));
    assert_eq!(
        lab.log(),
        [
            "100: Established 1/101 connected normal",
            "101: Established 1/101 connected normal",
        ]
    );
    let again = lab.refused(Request::AnswerCall {
        call: cid("1", "101"),
    });
    assert_eq!(again, state("invalidConnectionState"));
}

#[test]
fn connections_that_do_not_exist_are_refused() {
    let mut lab = Lab::new();
    lab.add_locked("104");
    lab.sw.phone_dial("100", "104", lab.now).expect("dial");
    let answer = |call: ConnectionId| Request::AnswerCall { call };
    let no_device = ConnectionId {
        call_id: Some("1".into()),
        device_id: None,
    };
    let no_call = ConnectionId {
        call_id: None,
        device_id: Some("104".into()),
    };
    let cases = [
        (answer(cid("9", "104")), op("invalidCallID")),
        (answer(cid("1", "102")), op("invalidConnectionID")),
        (answer(cid("1", "alice")), op("invalidConnectionID")),
        (answer(no_device), op("invalidConnectionID")),
        (answer(no_call), op("invalidConnectionID")),
        (
            answer(cid("1", "104")),
            op("privilegeViolationSpecifiedDevice"),
        ),
    ];
    for (request, error) in cases {
        assert_eq!(lab.refused(request), error);
    }
}

#[test]
fn clear_connection_of_two_party_call_ends_it() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    lab.connected("100", "101");
    lab.watch_call("1");
    let r = lab.ok(clear("1", "100"));
    assert_eq!(r, Response::Empty(Service::ClearConnection));
    assert_eq!(
        lab.log(),
        [
            "100: ConnectionCleared 1/100 null normalClearing",
            "101: ConnectionCleared 1/100 null normalClearing",
            "call: ConnectionCleared 1/100 - normalClearing",
            "call: CallCleared 1/- - normalClearing",
        ]
    );
    assert!(lab.sw.calls().is_empty());
    assert_eq!(
        lab.sw.monitor_count(),
        2,
        "the call monitor went with the call"
    );
    assert_eq!(lab.refused(clear("1", "101")), op("invalidCallID"));
}

#[test]
fn clear_connection_reports_the_reason_given() {
    let mut lab = Lab::new();
    lab.watch("101");
    lab.connected("100", "101");
    lab.ok(Request::ClearConnection {
        connection: cid("1", "100"),
        reason: Some(Cause::new("busy")),
    });
    assert_eq!(lab.log(), ["101: ConnectionCleared 1/100 null busy"]);
}

#[test]
fn second_connection_cleared_reports_the_last_party_leaving_too() {
    let mut lab = Lab::with(SwitchConfig {
        second_connection_cleared: true,
        ..SwitchConfig::default()
    });
    lab.watch("100");
    lab.watch("101");
    lab.connected("100", "101");
    lab.ok(clear("1", "100"));
    assert_eq!(
        lab.log(),
        [
            "101: ConnectionCleared 1/100 connected normalClearing",
            "100: ConnectionCleared 1/100 null normalClearing",
            "101: ConnectionCleared 1/101 null normalClearing",
        ]
    );
    assert!(lab.sw.calls().is_empty());
}

#[test]
fn clear_call_clears_every_connection() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    lab.connected("100", "101");
    let whole = |id: Option<&str>| Request::ClearCall {
        call: ConnectionId {
            call_id: id.map(str::to_owned),
            device_id: None,
        },
    };
    assert_eq!(lab.refused(whole(Some("9"))), op("invalidCallID"));
    assert_eq!(lab.refused(whole(None)), op("invalidCallID"));
    let r = lab.ok(whole(Some("1")));
    assert_eq!(r, Response::Empty(Service::ClearCall));
    assert_eq!(
        lab.log(),
        [
            "100: ConnectionCleared 1/100 null normalClearing",
            "101: ConnectionCleared 1/100 null normalClearing",
        ]
    );
    assert!(lab.sw.calls().is_empty());
}

#[test]
fn hold_and_retrieve_call() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    lab.connected("100", "101");
    assert_eq!(lab.ok(hold("1", "100")), Response::Empty(Service::HoldCall));
    assert_eq!(
        lab.log(),
        [
            "100: Held 1/100 hold normal",
            "101: Held 1/100 connected normal"
        ]
    );
    assert_eq!(
        lab.refused(hold("1", "100")),
        state("invalidConnectionState")
    );
    let retrieve = || Request::RetrieveCall {
        call: cid("1", "100"),
    };
    assert_eq!(lab.ok(retrieve()), Response::Empty(Service::RetrieveCall));
    assert_eq!(
        lab.log(),
        [
            "100: Retrieved 1/100 connected normal",
            "101: Retrieved 1/100 connected normal",
        ]
    );
    assert_eq!(lab.refused(retrieve()), state("noHeldCall"));
}

#[test]
fn retrieve_call_is_refused_while_connected_in_another_call() {
    let mut lab = Lab::new();
    lab.connected("100", "101");
    lab.ok(hold("1", "100"));
    lab.connected("100", "102");
    let r = lab.refused(Request::RetrieveCall {
        call: cid("1", "100"),
    });
    assert_eq!(r, state("connectedCallExists"));
    assert_eq!(lab.parties("1"), ["100:hold", "101:connected"]);
}

#[test]
fn consultation_call_holds_and_calls_the_consulted_device() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    lab.watch("102");
    lab.connected("100", "101");
    let consult = |existing, to: &str| Request::ConsultationCall {
        existing,
        consulted: to.into(),
    };
    let bad = lab.refused(consult(cid("1", "100"), "alice"));
    assert_eq!(bad, op("invalidDestinationDeviceID"));
    assert_eq!(lab.parties("1"), ["100:connected", "101:connected"]);
    let r = lab.ok(consult(cid("1", "100"), "102"));
    assert_eq!(
        r,
        Response::ConsultationCall {
            initiated: cid("2", "100")
        }
    );
    assert_eq!(
        lab.log(),
        [
            "100: Held 1/100 hold consultation",
            "101: Held 1/100 connected consultation",
            "100: ServiceInitiated 2/100 initiated consultation",
            "100: Originated 2/100 connected consultation",
            "100: Delivered 2/102 connected newCall",
            "102: Delivered 2/102 alerting newCall",
        ]
    );
    let from_held = lab.refused(consult(cid("1", "100"), "103"));
    assert_eq!(from_held, state("invalidConnectionState"));
}

#[test]
fn alternate_call_swaps_the_held_and_the_active_call() {
    let mut lab = Lab::new();
    consulting(&mut lab);
    lab.watch("100");
    lab.watch("101");
    lab.watch("102");
    let alternate = |held, active| Request::AlternateCall { held, active };
    let cases = [
        (
            alternate(cid("2", "100"), cid("1", "100")),
            state("noHeldCall"),
        ),
        (
            alternate(cid("1", "101"), cid("2", "100")),
            op("notSameDevice"),
        ),
        (
            alternate(cid("1", "100"), cid("1", "100")),
            state("invalidActiveConnectionState"),
        ),
    ];
    for (request, error) in cases {
        assert_eq!(lab.refused(request), error);
    }
    let r = lab.ok(alternate(cid("1", "100"), cid("2", "100")));
    assert_eq!(r, Response::Empty(Service::AlternateCall));
    assert_eq!(
        lab.log(),
        [
            "100: Held 2/100 hold alternate",
            "102: Held 2/100 connected alternate",
            "100: Retrieved 1/100 connected alternate",
            "101: Retrieved 1/100 connected alternate",
        ]
    );
}

#[test]
fn reconnect_call_clears_the_active_call_and_retrieves_the_held_one() {
    let mut lab = Lab::new();
    consulting(&mut lab);
    lab.watch("100");
    lab.watch("101");
    lab.watch("102");
    let reconnect = |held, active| Request::ReconnectCall { held, active };
    let not_held = lab.refused(reconnect(cid("2", "100"), cid("1", "100")));
    assert_eq!(not_held, state("noHeldCall"));
    let r = lab.ok(reconnect(cid("1", "100"), cid("2", "100")));
    assert_eq!(r, Response::Empty(Service::ReconnectCall));
    assert_eq!(
        lab.log(),
        [
            "100: ConnectionCleared 2/100 null normalClearing",
            "102: ConnectionCleared 2/100 null normalClearing",
            "100: Retrieved 1/100 connected normal",
            "101: Retrieved 1/100 connected normal",
        ]
    );
    assert_eq!(lab.parties("1"), ["100:connected", "101:connected"]);
    assert!(lab.parties("2").is_empty());
}

#[test]
fn deflect_call_sends_a_ringing_call_elsewhere() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    lab.watch("102");
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    lab.notices();
    let deflect = |to: &str| Request::DeflectCall {
        call: cid("1", "101"),
        new_destination: to.into(),
    };
    assert_eq!(
        lab.refused(deflect("alice")),
        op("invalidDestinationDeviceID")
    );
    assert_eq!(
        lab.ok(deflect("102")),
        Response::Empty(Service::DeflectCall)
    );
    let notices = lab.notices();
    let lines: Vec<String> = notices.iter().map(|n| lab.line(&n.event)).collect();
    assert_eq!(
        lines,
        [
            "100: Diverted 1/101 connected redirected",
            "101: Diverted 1/101 null redirected",
            "100: Delivered 1/102 connected redirected",
            "102: Delivered 1/102 alerting redirected",
        ]
    );
    let Event::Call(delivered) = &notices[3].event else {
        panic!("not a call event");
    };
    assert_eq!(delivered.last_redirection, Some(DeviceRef::id("101")));
    assert_eq!(lab.parties("1"), ["100:connected", "102:alerting"]);
    lab.sw.phone_answer("102", lab.now).expect("answer");
    let connected = lab.refused(Request::DeflectCall {
        call: cid("1", "102"),
        new_destination: "103".into(),
    });
    assert_eq!(connected, state("invalidConnectionState"));
}

#[test]
fn generate_digits_reports_and_records_them() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    lab.connected("100", "101");
    let digits = |d: &str| Request::GenerateDigits {
        connection: cid("1", "100"),
        digits: d.into(),
        tone_duration: None,
    };
    assert_eq!(lab.refused(digits("12x")), op("invalidParameterValue"));
    assert_eq!(lab.refused(digits("")), op("invalidParameterValue"));
    let r = lab.ok(digits("12#*A"));
    assert_eq!(r, Response::Empty(Service::GenerateDigits));
    let notices = lab.notices();
    let lines: Vec<String> = notices.iter().map(|n| lab.line(&n.event)).collect();
    assert_eq!(
        lines,
        [
            "100: DigitsGenerated 1/100 connected -",
            "101: DigitsGenerated 1/100 connected -",
        ]
    );
    let Event::Call(e) = &notices[0].event else {
        panic!("not a call event");
    };
    assert_eq!(e.digits.as_deref(), Some("12#*A"));
    lab.ok(digits("9"));
    assert_eq!(lab.sw.calls()[0].digits, "12#*A9");
    lab.ok(hold("1", "100"));
    assert_eq!(lab.refused(digits("1")), state("invalidConnectionState"));
}

#[test]
fn services_the_switch_does_not_serve_are_refused() {
    let mut lab = Lab::new();
    let features = Request::GetCstaFeatures { line: None };
    assert_eq!(lab.refused(features), op("serviceNotSupported"));
    let register = Request::SystemRegister {
        system_status: true,
        request_system_status: false,
    };
    assert_eq!(lab.refused(register), op("serviceNotSupported"));
}
