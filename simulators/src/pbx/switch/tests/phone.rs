//! Desk-phone actions: dial, answer, hang up, hold, retrieve, forwarding, do-not-disturb and
//! call waiting settings; calls from external parties through a trunk.

use rcc_protocol::csta::{DeviceRef, Event, ForwardingType, LocalConnectionState as State};

use super::{Lab, op, state};
use crate::pbx::directory::ExternalParty;

#[test]
fn dialling_at_the_phone_reports_what_make_call_does() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    assert_eq!(lab.sw.phone_dial("100", "101", lab.now), Ok("1".to_owned()));
    assert_eq!(
        lab.log(),
        [
            "100: ServiceInitiated 1/100 initiated newCall",
            "100: Originated 1/100 connected newCall",
            "100: Delivered 1/101 connected newCall",
            "101: Delivered 1/101 alerting newCall",
        ]
    );
}

#[test]
fn dialling_refusals() {
    let mut lab = Lab::new();
    lab.add_locked("104");
    let now = lab.now;
    assert_eq!(
        lab.sw.phone_dial("alice", "101", now),
        Err(op("invalidDeviceID"))
    );
    assert_eq!(
        lab.sw.phone_dial("5550001", "101", now),
        Err(op("invalidDeviceID"))
    );
    assert_eq!(
        lab.sw.phone_dial("100", "bob", now),
        Err(op("invalidCalledDeviceID"))
    );
    // The desk phone of a device closed to CTI cannot dial either (see the report).
    let locked = lab.sw.phone_dial("104", "101", now);
    assert_eq!(locked, Err(op("privilegeViolationSpecifiedDevice")));
    lab.connected("100", "101");
    let busy = lab.sw.phone_dial("100", "102", now);
    assert_eq!(busy, Err(state("invalidCallingDeviceState")));
}

#[test]
fn answering_at_the_phone_establishes_the_ringing_call() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    assert_eq!(
        lab.sw.phone_answer("101", lab.now),
        Err(state("noCallToAnswer"))
    );
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    lab.notices();
    assert_eq!(lab.sw.phone_answer("101", lab.now), Ok("1".to_owned()));
    assert_eq!(
        lab.log(),
        [
            "100: Established 1/101 connected normal",
            "101: Established 1/101 connected normal",
        ]
    );
    assert_eq!(
        lab.sw.phone_answer("alice", lab.now),
        Err(op("invalidDeviceID"))
    );
    assert_eq!(lab.sw.connection_state("1", "101"), State::Connected);
}

#[test]
fn hanging_up_clears_the_active_call() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    assert_eq!(lab.sw.phone_hang_up("100"), Err(state("noCallToClear")));
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    lab.notices();
    // A ringing desk phone does not hang up; the caller does.
    assert_eq!(lab.sw.phone_hang_up("101"), Err(state("noCallToClear")));
    assert_eq!(lab.sw.phone_hang_up("100"), Ok("1".to_owned()));
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
fn a_ringing_external_party_can_hang_up() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.sw.phone_dial("100", "5550001", lab.now).expect("dial");
    lab.notices();
    assert_eq!(lab.sw.phone_hang_up("5550001"), Ok("1".to_owned()));
    assert_eq!(
        lab.log(),
        ["100: ConnectionCleared 1/5550001 null normalClearing"]
    );
}

#[test]
fn holding_and_retrieving_at_the_phone() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    assert_eq!(lab.sw.phone_hold("100"), Err(state("noActiveCall")));
    assert_eq!(lab.sw.phone_retrieve("100"), Err(state("noHeldCall")));
    assert_eq!(lab.sw.phone_hold("5550001"), Err(op("invalidDeviceID")));
    lab.connected("100", "101");
    assert_eq!(lab.sw.phone_hold("100"), Ok("1".to_owned()));
    assert_eq!(
        lab.log(),
        [
            "100: Held 1/100 hold normal",
            "101: Held 1/100 connected normal"
        ]
    );
    assert_eq!(lab.sw.phone_retrieve("100"), Ok("1".to_owned()));
    assert_eq!(
        lab.log(),
        [
            "100: Retrieved 1/100 connected normal",
            "101: Retrieved 1/100 connected normal",
        ]
    );
    lab.sw.phone_hold("100").expect("hold");
    lab.connected("100", "102");
    assert_eq!(
        lab.sw.phone_retrieve("100"),
        Err(state("connectedCallExists"))
    );
}

#[test]
fn forwarding_and_do_not_disturb_at_the_phone_report_like_the_services() {
    let mut lab = Lab::new();
    lab.watch("101");
    let busy = ForwardingType::Busy;
    lab.sw
        .phone_forwarding("101", busy.clone(), Some("102"))
        .expect("forward");
    lab.sw.phone_forwarding("101", busy, None).expect("cancel");
    lab.sw.phone_dnd("101", true).expect("dnd");
    assert_eq!(
        lab.log(),
        [
            "101: Forwarding forwardBusy true 102",
            "101: Forwarding forwardBusy false -",
            "101: DoNotDisturb true",
        ]
    );
    let nobody = lab.sw.phone_forwarding("alice", ForwardingType::Busy, None);
    assert_eq!(nobody, Err(op("invalidDeviceID")));
    assert_eq!(
        lab.sw.phone_dnd("5550001", true),
        Err(op("invalidDeviceID"))
    );
}

#[test]
fn an_external_call_rings_the_device() {
    let mut lab = Lab::new();
    lab.watch("100");
    let call = lab.sw.incoming("+15550001", "tel:+14255550100", lab.now);
    assert_eq!(call, Ok("1".to_owned()));
    let notices = lab.notices();
    let lines: Vec<String> = notices.iter().map(|n| lab.line(&n.event)).collect();
    assert_eq!(lines, ["100: Delivered 1/100 alerting newCall"]);
    let Event::Call(e) = &notices[0].event else {
        panic!("not a call event");
    };
    assert_eq!(e.calling, Some(DeviceRef::id("+15550001")));
    assert_eq!(e.called, Some(DeviceRef::id("+14255550100")));
    assert_eq!(lab.parties("1"), ["+15550001:connected", "100:alerting"]);
    assert!(!lab.sw.calls()[0].parties[0].internal);
    // The external caller gives up.
    lab.sw.phone_hang_up("+15550001").expect("hang up");
    assert_eq!(
        lab.log(),
        ["100: ConnectionCleared 1/+15550001 null normalClearing"]
    );
}

#[test]
fn external_call_refusals_and_internal_callers() {
    let mut lab = Lab::new();
    lab.watch("101");
    let now = lab.now;
    assert_eq!(
        lab.sw.incoming("alice", "100", now),
        Err(op("invalidCallingDeviceID"))
    );
    assert_eq!(
        lab.sw.incoming("5550001", "bob", now),
        Err(op("invalidCalledDeviceID"))
    );
    assert!(lab.sw.calls().is_empty());
    // A caller that is an internal device dials as its desk phone would.
    lab.sw.incoming("101", "100", now).expect("internal");
    assert_eq!(
        lab.log().first().map(String::as_str),
        Some("101: ServiceInitiated 1/101 initiated newCall")
    );
}

#[test]
fn an_external_caller_hangs_up_on_its_script() {
    let mut lab = Lab::new();
    lab.watch("100");
    let script = ExternalParty {
        clear_after_ms: Some(2_000),
        ..ExternalParty::default()
    };
    lab.sw.set_external("5550001", script);
    lab.sw.incoming("5550001", "100", lab.now).expect("call");
    lab.notices();
    assert_eq!(
        lab.sw.next_timeout(),
        Some(lab.now + std::time::Duration::from_secs(2))
    );
    lab.advance(1_999);
    assert!(lab.log().is_empty());
    lab.advance(1);
    assert_eq!(
        lab.log(),
        ["100: ConnectionCleared 1/5550001 null normalClearing"]
    );
    assert!(lab.sw.calls().is_empty());
}

#[test]
fn call_waiting_is_a_line_setting() {
    let mut lab = Lab::new();
    lab.watch("101");
    assert_eq!(
        lab.sw.set_call_waiting("N<101>", true),
        Ok("101".to_owned())
    );
    assert_eq!(
        lab.sw.set_call_waiting("5550001", true),
        Err(op("invalidDeviceID"))
    );
    let waiting: Vec<bool> = lab.sw.devices().iter().map(|d| d.call_waiting).collect();
    assert_eq!(waiting, [false, true, false, false]);
    assert!(lab.log().is_empty(), "no event");
}
