//! What happens to an offered call: ringing, busy, call waiting, forwarding (immediate, busy,
//! no answer) and the scripts of external numbers.

use std::time::Duration;

use rcc_protocol::csta::{ForwardingType, Request, Response, Service};

use super::{Lab, cid, state};
use crate::pbx::directory::{ExternalParty, Reach};

fn forward(device: &str, kind: ForwardingType, to: &str, rings: Option<u32>) -> Request {
    Request::SetForwarding {
        device: device.into(),
        forwarding_type: kind,
        activate: true,
        forward_dn: Some(to.into()),
        ring_count: rings,
    }
}

#[test]
fn a_busy_device_fails_the_call() {
    let mut lab = Lab::new();
    lab.connected("100", "101");
    lab.watch("101");
    lab.watch("102");
    lab.sw.phone_dial("102", "101", lab.now).expect("dial");
    let log = lab.log();
    assert_eq!(
        log[2..],
        ["102: Failed 2/101 fail busy"],
        "101 hears nothing: {log:?}"
    );
    assert_eq!(lab.parties("2"), ["102:fail"]);
    // The caller hangs up on the busy tone.
    lab.sw.phone_hang_up("102").expect("hang up");
    assert_eq!(
        lab.log(),
        ["102: ConnectionCleared 2/102 null normalClearing"]
    );
    assert!(lab.parties("2").is_empty());
}

#[test]
fn busy_forwarding_diverts_instead() {
    let mut lab = Lab::new();
    lab.connected("100", "101");
    lab.ok(forward("101", ForwardingType::Busy, "103", None));
    lab.watch("101");
    lab.watch("102");
    lab.watch("103");
    lab.sw.phone_dial("102", "101", lab.now).expect("dial");
    let log = lab.log();
    assert_eq!(
        log[2..],
        [
            "102: Diverted 2/101 connected callForwardBusy",
            "101: Diverted 2/101 null callForwardBusy",
            "102: Delivered 2/103 connected callForwardBusy",
            "103: Delivered 2/103 alerting callForwardBusy",
        ]
    );
}

#[test]
fn immediate_forwarding_diverts_before_ringing() {
    let mut lab = Lab::new();
    lab.ok(forward("101", ForwardingType::Immediate, "102", None));
    lab.watch("100");
    lab.watch("101");
    lab.watch("102");
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    let log = lab.log();
    assert_eq!(
        log[2..],
        [
            "100: Diverted 1/101 connected callForwardImmediate",
            "101: Diverted 1/101 null callForwardImmediate",
            "100: Delivered 1/102 connected callForwardImmediate",
            "102: Delivered 1/102 alerting callForwardImmediate",
        ]
    );
    assert_eq!(lab.parties("1"), ["100:connected", "102:alerting"]);
}

#[test]
fn a_forwarding_loop_stops_after_five_diversions() {
    let mut lab = Lab::new();
    lab.ok(forward("101", ForwardingType::Immediate, "102", None));
    lab.ok(forward("102", ForwardingType::Immediate, "101", None));
    lab.watch("100");
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    let diverted = lab.log().iter().filter(|l| l.contains("Diverted")).count();
    assert_eq!(diverted, 5);
    assert_eq!(lab.parties("1"), ["100:connected", "102:alerting"]);
}

#[test]
fn call_waiting_rings_a_second_call_and_answering_holds_the_first() {
    let mut lab = Lab::new();
    lab.sw.set_call_waiting("101", true).expect("line setting");
    lab.connected("100", "101");
    for d in ["100", "101", "102", "103"] {
        lab.watch(d);
    }
    lab.sw.phone_dial("102", "101", lab.now).expect("dial");
    let log = lab.log();
    assert_eq!(
        log[2..],
        [
            "102: Delivered 2/101 connected newCall",
            "101: Delivered 2/101 alerting newCall"
        ]
    );
    // One waiting call at most: a third caller gets busy.
    lab.sw.phone_dial("103", "101", lab.now).expect("dial");
    let log = lab.log();
    assert_eq!(
        log.last().map(String::as_str),
        Some("103: Failed 3/101 fail busy")
    );
    assert_eq!(lab.sw.phone_answer("101", lab.now), Ok("2".to_owned()));
    assert_eq!(
        lab.log(),
        [
            "100: Held 1/101 connected normal",
            "101: Held 1/101 hold normal",
            "102: Established 2/101 connected normal",
            "101: Established 2/101 connected normal",
        ]
    );
}

#[test]
fn without_hold_on_answer_a_waiting_call_is_answered_after_holding() {
    let mut lab = Lab::new();
    lab.sw.configure(|c| c.hold_on_answer = false);
    lab.sw.set_call_waiting("101", true).expect("line setting");
    lab.connected("100", "101");
    lab.sw.phone_dial("102", "101", lab.now).expect("dial");
    lab.notices();
    let refused = state("connectedCallExists");
    assert_eq!(lab.sw.phone_answer("101", lab.now), Err(refused.clone()));
    let answer = Request::AnswerCall {
        call: cid("2", "101"),
    };
    assert_eq!(lab.refused(answer.clone()), refused);
    assert!(lab.log().is_empty());
    lab.sw.phone_hold("101").expect("hold");
    assert_eq!(lab.ok(answer), Response::Empty(Service::AnswerCall));
    assert_eq!(lab.parties("1"), ["100:connected", "101:hold"]);
    assert_eq!(lab.parties("2"), ["102:connected", "101:connected"]);
}

#[test]
fn no_answer_forwarding_diverts_after_the_rings() {
    let mut lab = Lab::new();
    lab.ok(forward("101", ForwardingType::NoAnswer, "102", Some(2)));
    lab.watch("100");
    lab.watch("101");
    lab.watch("102");
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    lab.notices();
    assert_eq!(
        lab.sw.next_timeout(),
        Some(lab.now + Duration::from_secs(10))
    );
    lab.advance(9_999);
    assert!(lab.log().is_empty());
    lab.advance(1);
    assert_eq!(
        lab.log(),
        [
            "100: Diverted 1/101 connected callForwardNoAnswer",
            "101: Diverted 1/101 null callForwardNoAnswer",
            "100: Delivered 1/102 connected callForwardNoAnswer",
            "102: Delivered 1/102 alerting callForwardNoAnswer",
        ]
    );
    assert_eq!(lab.sw.next_timeout(), None);
}

#[test]
fn no_answer_forwarding_counts_default_rings_and_spares_an_answered_call() {
    let mut lab = Lab::new();
    lab.ok(forward("101", ForwardingType::NoAnswer, "102", None));
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    assert_eq!(
        lab.sw.next_timeout(),
        Some(lab.now + Duration::from_secs(15))
    );
    lab.sw.phone_answer("101", lab.now).expect("answer");
    lab.watch("100");
    lab.advance(15_000);
    assert!(lab.log().is_empty());
    assert_eq!(lab.parties("1"), ["100:connected", "101:connected"]);
}

#[test]
fn an_external_number_answers_on_its_script() {
    let mut lab = Lab::new();
    lab.sw
        .set_external("5550001", ExternalParty::answers_after(1_500));
    lab.watch("100");
    lab.sw.phone_dial("100", "5550001", lab.now).expect("dial");
    let log = lab.log();
    assert_eq!(
        log.last().map(String::as_str),
        Some("100: Delivered 1/5550001 connected newCall")
    );
    lab.advance(1_499);
    assert!(lab.log().is_empty());
    lab.advance(1);
    assert_eq!(lab.log(), ["100: Established 1/5550001 connected normal"]);
    assert_eq!(lab.parties("1"), ["100:connected", "5550001:connected"]);
}

#[test]
fn a_called_external_number_hangs_up_on_its_script() {
    let mut lab = Lab::new();
    let script = ExternalParty {
        answer_after_ms: Some(100),
        clear_after_ms: Some(1_000),
        ..ExternalParty::default()
    };
    lab.sw.set_external("5550001", script);
    lab.watch("100");
    lab.sw.phone_dial("100", "5550001", lab.now).expect("dial");
    lab.notices();
    lab.advance(1_000);
    assert_eq!(
        lab.log(),
        [
            "100: Established 1/5550001 connected normal",
            "100: ConnectionCleared 1/5550001 null normalClearing",
        ]
    );
    assert!(lab.sw.calls().is_empty());
}

#[test]
fn unreachable_external_numbers_fail_the_call_with_their_cause() {
    let cases = [
        (Reach::Busy, "busy"),
        (Reach::Reject, "blocked"),
        (Reach::Unallocated, "numberUnallocated"),
    ];
    for (reach, cause) in cases {
        let mut lab = Lab::new();
        lab.sw
            .set_external("tel:5550001", ExternalParty::unreachable(reach));
        lab.watch("100");
        lab.sw.phone_dial("100", "5550001", lab.now).expect("dial");
        let log = lab.log();
        let expected = format!("100: Failed 1/5550001 fail {cause}");
        assert_eq!(log.last(), Some(&expected));
    }
}

#[test]
fn unscripted_external_numbers_follow_the_default() {
    let mut lab = Lab::new();
    lab.sw
        .configure(|c| c.default_external = ExternalParty::unreachable(Reach::Busy));
    lab.sw.set_external("5550002", ExternalParty::default());
    lab.watch("100");
    lab.sw.phone_dial("100", "5550001", lab.now).expect("dial");
    assert_eq!(
        lab.log().last().map(String::as_str),
        Some("100: Failed 1/5550001 fail busy")
    );
    lab.sw.phone_hang_up("100").expect("hang up");
    lab.notices();
    lab.sw.phone_dial("100", "5550002", lab.now).expect("dial");
    let rings = lab.log().last().cloned();
    assert_eq!(
        rings.as_deref(),
        Some("100: Delivered 2/5550002 connected newCall")
    );
    assert_eq!(lab.sw.next_timeout(), None, "it never answers");
}

#[test]
fn an_external_call_nobody_can_take_goes_away() {
    let mut lab = Lab::new();
    lab.sw.phone_dnd("100", true).expect("dnd");
    lab.sw.incoming("5550001", "100", lab.now).expect("call");
    assert!(
        lab.sw.calls().is_empty(),
        "no internal party hears the busy tone"
    );
}

#[test]
fn a_deflected_call_follows_the_forwarding_of_its_new_destination() {
    let mut lab = Lab::new();
    lab.ok(forward("102", ForwardingType::Immediate, "103", None));
    lab.watch("100");
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    lab.notices();
    lab.ok(Request::DeflectCall {
        call: cid("1", "101"),
        new_destination: "102".into(),
    });
    assert_eq!(
        lab.log(),
        [
            "100: Diverted 1/101 connected redirected",
            "100: Diverted 1/102 connected callForwardImmediate",
            "100: Delivered 1/103 connected callForwardImmediate",
        ]
    );
    assert_eq!(lab.parties("1"), ["100:connected", "103:alerting"]);
}
