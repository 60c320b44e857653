//! TransferCall, ConferenceCall and SingleStepTransferCall.

use rcc_protocol::csta::{ConnectionId, ConnectionListItem, Request, Response};

use super::{Lab, cid, op, state};
use crate::pbx::directory::ExternalParty;

/// 100 talks to 101 in call 1, holds it and calls `consulted` in call 2; `answer` makes the
/// consulted party answer. Monitors on 100, 101, 102 and on call 1.
fn consulting(lab: &mut Lab, consulted: &str, answer: bool) {
    for d in ["100", "101", "102"] {
        lab.watch(d);
    }
    lab.connected("100", "101");
    lab.watch_call("1");
    lab.ok(Request::ConsultationCall {
        existing: cid("1", "100"),
        consulted: consulted.into(),
    });
    if answer {
        lab.sw.phone_answer(consulted, lab.now).expect("answer");
    }
    lab.notices();
}

fn moved(new_call: &str, old_call: &str, device: &str) -> ConnectionListItem {
    ConnectionListItem {
        new_connection: Some(cid(new_call, device)),
        old_connection: Some(cid(old_call, device)),
        endpoint: Some(device.into()),
    }
}

#[test]
fn transfer_call_joins_the_other_parties_and_the_device_leaves() {
    let mut lab = Lab::new();
    consulting(&mut lab, "102", true);
    let r = lab.ok(Request::TransferCall {
        held: cid("1", "100"),
        active: cid("2", "100"),
    });
    assert_eq!(
        r,
        Response::TransferCall {
            transferred: Some(ConnectionId {
                call_id: Some("3".into()),
                device_id: None,
            }),
            connections: vec![moved("3", "1", "101"), moved("3", "2", "102")],
        }
    );
    assert_eq!(
        lab.log(),
        [
            "101: Transferred 1/100 connected transfer",
            "102: Transferred 1/100 connected transfer",
            "100: Transferred 1/100 null transfer",
            "call: Transferred 1/100 - transfer",
        ],
        "the call monitor of call 1 follows it into call 3"
    );
    assert_eq!(lab.parties("3"), ["101:connected", "102:connected"]);
    assert!(lab.parties("1").is_empty() && lab.parties("2").is_empty());
}

#[test]
fn transfer_call_refusals() {
    let mut lab = Lab::new();
    consulting(&mut lab, "102", true);
    let transfer = |held, active| Request::TransferCall { held, active };
    let cases = [
        (
            transfer(cid("1", "100"), cid("1", "100")),
            op("invalidActiveConnectionID"),
        ),
        (
            transfer(cid("2", "100"), cid("1", "100")),
            state("noHeldCall"),
        ),
        (
            transfer(cid("1", "100"), cid("2", "102")),
            op("notSameDevice"),
        ),
        (
            transfer(cid("9", "100"), cid("2", "100")),
            op("invalidCallID"),
        ),
    ];
    for (request, error) in cases {
        assert_eq!(lab.refused(request), error);
    }
    assert_eq!(lab.parties("1"), ["100:hold", "101:connected"]);
    assert_eq!(lab.parties("2"), ["100:connected", "102:connected"]);
    assert!(lab.log().is_empty());
}

#[test]
fn transfer_while_the_consulted_party_rings_hands_on_the_ringing_call() {
    let mut lab = Lab::new();
    consulting(&mut lab, "102", false);
    lab.ok(Request::TransferCall {
        held: cid("1", "100"),
        active: cid("2", "100"),
    });
    assert_eq!(lab.parties("3"), ["101:connected", "102:alerting"]);
}

#[test]
fn timers_follow_a_transferred_call() {
    let mut lab = Lab::new();
    lab.sw
        .set_external("5550001", ExternalParty::answers_after(1_000));
    consulting(&mut lab, "5550001", false);
    lab.ok(Request::TransferCall {
        held: cid("1", "100"),
        active: cid("2", "100"),
    });
    lab.notices();
    lab.advance(1_000);
    assert_eq!(
        lab.log(),
        [
            "101: Established 3/5550001 connected normal",
            "call: Established 3/5550001 - normal",
        ]
    );
}

#[test]
fn conference_call_joins_everyone_in_a_new_call() {
    let mut lab = Lab::new();
    consulting(&mut lab, "102", true);
    let r = lab.ok(Request::ConferenceCall {
        held: cid("1", "100"),
        active: cid("2", "100"),
    });
    assert_eq!(
        r,
        Response::ConferenceCall {
            conference: Some(cid("3", "100")),
            connections: vec![
                moved("3", "1", "100"),
                moved("3", "1", "101"),
                moved("3", "2", "102"),
            ],
        }
    );
    assert_eq!(
        lab.log(),
        [
            "100: Conferenced 1/100 connected conference",
            "101: Conferenced 1/100 connected conference",
            "102: Conferenced 1/100 connected conference",
            "call: Conferenced 1/100 - conference",
        ]
    );
    assert_eq!(
        lab.parties("3"),
        ["100:connected", "101:connected", "102:connected"]
    );
    // One party leaving a conference leaves the call to the others.
    lab.sw.phone_hang_up("102").expect("hang up");
    assert_eq!(
        lab.log(),
        [
            "100: ConnectionCleared 3/102 connected normalClearing",
            "101: ConnectionCleared 3/102 connected normalClearing",
            "102: ConnectionCleared 3/102 null normalClearing",
            "call: ConnectionCleared 3/102 - normalClearing",
        ]
    );
    assert_eq!(lab.parties("3"), ["100:connected", "101:connected"]);
}

#[test]
fn conference_call_refusals() {
    let mut lab = Lab::new();
    consulting(&mut lab, "102", true);
    let conference = |held, active| Request::ConferenceCall { held, active };
    let same = lab.refused(conference(cid("2", "100"), cid("2", "100")));
    assert_eq!(same, op("invalidActiveConnectionID"));
    let not_held = lab.refused(conference(cid("2", "100"), cid("1", "100")));
    assert_eq!(not_held, state("noHeldCall"));
}

#[test]
fn single_step_transfer_hands_the_call_on_and_rings_the_target() {
    let mut lab = Lab::new();
    for d in ["100", "101", "102"] {
        lab.watch(d);
    }
    lab.connected("100", "101");
    let sst = |to: &str| Request::SingleStepTransferCall {
        active: cid("1", "100"),
        transferred_to: to.into(),
    };
    assert_eq!(lab.refused(sst("alice")), op("invalidDestinationDeviceID"));
    let r = lab.ok(sst("N<102>;noa=nk"));
    assert_eq!(
        r,
        Response::SingleStepTransferCall {
            transferred: Some(cid("2", "102")),
            connections: vec![
                moved("2", "1", "101"),
                ConnectionListItem {
                    new_connection: Some(cid("2", "102")),
                    old_connection: None,
                    endpoint: Some("102".into()),
                },
            ],
        }
    );
    assert_eq!(
        lab.log(),
        [
            "101: Transferred 1/100 connected singleStepTransfer",
            "100: Transferred 1/100 null singleStepTransfer",
            "101: Delivered 2/102 connected singleStepTransfer",
            "102: Delivered 2/102 alerting singleStepTransfer",
        ]
    );
    assert_eq!(lab.parties("2"), ["101:connected", "102:alerting"]);
    let gone = lab.refused(sst("103"));
    assert_eq!(gone, op("invalidCallID"));
}

#[test]
fn single_step_transfer_needs_a_connected_call() {
    let mut lab = Lab::new();
    lab.connected("100", "101");
    lab.sw.phone_hold("100").expect("hold");
    let r = lab.refused(Request::SingleStepTransferCall {
        active: cid("1", "100"),
        transferred_to: "102".into(),
    });
    assert_eq!(r, state("invalidConnectionState"));
}
