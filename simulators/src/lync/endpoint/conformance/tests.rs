//! Unit tests of the conformance checker: for each rule, a sequence that keeps it passes and one
//! that breaks it is flagged. Events and messages are built directly, without sockets.

use rcc_protocol::csta::{
    self, CallEvent, CallEventKind, Cause, ConnectionId, ConnectionListItem, DeviceRef,
    DoNotDisturbEvent, Event, LocalConnectionState, Response,
};
use rcc_protocol::sip::{Message, Method};

use super::{ConformanceChecker, MAX_VIOLATIONS};

const LINE: &str = "tel:+14255550100";
const FAR: &str = "tel:+14255550199";
const XREF: Option<&str> = Some("x1");

fn checker() -> ConformanceChecker {
    ConformanceChecker::new(LINE)
}

/// A call event for `device`'s connection in `call`, on monitor `x1`.
fn call_event(
    kind: CallEventKind,
    call: &str,
    device: &str,
    state: Option<LocalConnectionState>,
) -> CallEvent {
    let mut e = CallEvent::new(kind, "x1");
    e.connection = Some(ConnectionId::new(call, device));
    e.local_state = state;
    e
}

fn ev(kind: CallEventKind, call: &str, state: LocalConnectionState) -> Event {
    Event::Call(call_event(kind, call, LINE, Some(state)))
}

fn makecall_response(call: &str, device: &str) -> csta::Message {
    csta::Message::Response(Response::MakeCall {
        calling: ConnectionId::new(call, device),
    })
}

fn gateway_request(call_id: &str, cseq: u32) -> Message {
    let mut m = Message::request(Method::Info, "sip:alice@contoso.com");
    m.push_header("Call-ID", call_id);
    m.push_header("CSeq", format!("{cseq} INFO"));
    m
}

fn assert_clean(c: &ConformanceChecker) {
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

fn assert_one(c: &ConformanceChecker, needle: &str) {
    assert_eq!(c.violations().len(), 1, "{:?}", c.violations());
    assert!(c.violations()[0].contains(needle), "{:?}", c.violations());
}

// monitorCrossRefID

#[test]
fn events_with_the_monitors_cross_ref_pass() {
    let mut c = checker();
    c.event(
        &ev(
            CallEventKind::Delivered,
            "C1",
            LocalConnectionState::Alerting,
        ),
        XREF,
    );
    let dnd = Event::DoNotDisturb(DoNotDisturbEvent {
        cross_ref: "x1".into(),
        device: DeviceRef::Id(LINE.into()),
        on: true,
    });
    c.event(&dnd, XREF);
    assert_clean(&c);
}

#[test]
fn an_event_with_another_cross_ref_is_flagged() {
    let mut c = checker();
    let mut e = call_event(
        CallEventKind::Delivered,
        "C1",
        LINE,
        Some(LocalConnectionState::Alerting),
    );
    e.cross_ref = "x2".into();
    c.event(&Event::Call(e), XREF);
    assert_one(
        &c,
        "DeliveredEvent with monitorCrossRefID \"x2\", expected \"x1\"",
    );
}

#[test]
fn a_device_event_with_another_cross_ref_is_flagged() {
    let mut c = checker();
    let dnd = Event::DoNotDisturb(DoNotDisturbEvent {
        cross_ref: "x9".into(),
        device: DeviceRef::Id(LINE.into()),
        on: false,
    });
    c.event(&dnd, XREF);
    assert_one(&c, "DoNotDisturbEvent with monitorCrossRefID \"x9\"");
}

#[test]
fn an_event_before_monitor_start_response_is_flagged() {
    let mut c = checker();
    c.event(
        &ev(
            CallEventKind::Delivered,
            "C1",
            LocalConnectionState::Alerting,
        ),
        None,
    );
    assert_one(&c, "DeliveredEvent before MonitorStartResponse");
}

// No event for the new call before MakeCallResponse

#[test]
fn events_after_make_call_response_pass() {
    let mut c = checker();
    c.makecall_sent();
    c.action_answered(Some(&makecall_response("C1", LINE)), true);
    c.event(
        &ev(
            CallEventKind::ServiceInitiated,
            "C1",
            LocalConnectionState::Initiated,
        ),
        XREF,
    );
    c.event(
        &ev(
            CallEventKind::Originated,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    assert_clean(&c);
}

#[test]
fn an_answered_call_passes_while_another_make_call_waits() {
    let mut c = checker();
    c.makecall_sent();
    c.makecall_sent();
    c.action_answered(Some(&makecall_response("C1", LINE)), true);
    c.event(
        &ev(
            CallEventKind::Originated,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    assert_clean(&c);
}

#[test]
fn originated_before_make_call_response_is_flagged() {
    let mut c = checker();
    c.makecall_sent();
    c.event(
        &ev(
            CallEventKind::Originated,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    assert_one(&c, "OriginatedEvent for call C1 before MakeCallResponse");
    // The answer that comes late settles it: no more violations for the call.
    c.action_answered(Some(&makecall_response("C1", LINE)), true);
    c.event(
        &ev(
            CallEventKind::Established,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    assert_eq!(c.violations().len(), 1, "{:?}", c.violations());
}

#[test]
fn service_initiated_before_make_call_response_is_flagged() {
    let mut c = checker();
    c.makecall_sent();
    c.event(
        &ev(
            CallEventKind::ServiceInitiated,
            "C1",
            LocalConnectionState::Initiated,
        ),
        XREF,
    );
    assert_one(
        &c,
        "ServiceInitiatedEvent for call C1 before MakeCallResponse",
    );
}

#[test]
fn a_call_the_user_starts_on_the_phone_passes() {
    // No MakeCall pending: the phone went off-hook by itself.
    let mut c = checker();
    c.event(
        &ev(
            CallEventKind::ServiceInitiated,
            "C1",
            LocalConnectionState::Initiated,
        ),
        XREF,
    );
    c.event(
        &ev(
            CallEventKind::Originated,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    assert_clean(&c);
}

#[test]
fn a_make_call_settled_by_failure_or_a_lost_dialog_no_longer_waits() {
    let mut c = checker();
    c.makecall_sent();
    c.action_failed();
    c.event(
        &ev(
            CallEventKind::Originated,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    c.makecall_sent();
    c.dialog_lost();
    c.event(
        &ev(
            CallEventKind::Originated,
            "C2",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    c.makecall_sent();
    c.action_answered(None, true);
    c.event(
        &ev(
            CallEventKind::Originated,
            "C3",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    assert_clean(&c);
}

// LineURI echoed verbatim

#[test]
fn the_line_echoed_verbatim_passes() {
    let mut c = checker();
    c.makecall_sent();
    c.action_answered(Some(&makecall_response("C1", LINE)), true);
    c.event(
        &ev(
            CallEventKind::Originated,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    // Other numbers are not the line, however they are spelled.
    let far = call_event(CallEventKind::Delivered, "C1", "+14255550199", None);
    c.event(&Event::Call(far), XREF);
    assert_clean(&c);
}

#[test]
fn the_line_rewritten_in_an_event_is_flagged() {
    for rewritten in ["+14255550100", "tel:+14255550100;ext=100"] {
        let mut c = checker();
        let e = call_event(
            CallEventKind::Delivered,
            "C1",
            rewritten,
            Some(LocalConnectionState::Alerting),
        );
        c.event(&Event::Call(e), XREF);
        assert_one(
            &c,
            &format!("DeliveredEvent: the line came back as {rewritten:?}, not verbatim"),
        );
    }
}

#[test]
fn the_line_rewritten_in_make_call_response_is_flagged() {
    let mut c = checker();
    c.makecall_sent();
    c.action_answered(Some(&makecall_response("C1", "+14255550100")), true);
    assert_one(
        &c,
        "MakeCallResponse: the line came back as \"+14255550100\"",
    );
}

// No repeated event for a connection

#[test]
fn a_call_s_progress_passes() {
    let mut c = checker();
    c.event(
        &ev(
            CallEventKind::Delivered,
            "C1",
            LocalConnectionState::Alerting,
        ),
        XREF,
    );
    c.event(
        &ev(
            CallEventKind::Established,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    c.event(
        &ev(CallEventKind::Held, "C1", LocalConnectionState::Hold),
        XREF,
    );
    c.event(
        &ev(
            CallEventKind::Retrieved,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    // The same event for another connection, or with another cause, is news.
    let far = call_event(
        CallEventKind::Retrieved,
        "C1",
        FAR,
        Some(LocalConnectionState::Connected),
    );
    c.event(&Event::Call(far), XREF);
    let mut caused = call_event(
        CallEventKind::Retrieved,
        "C1",
        LINE,
        Some(LocalConnectionState::Connected),
    );
    caused.cause = Some(Cause::new("normal"));
    c.event(&Event::Call(caused), XREF);
    assert_clean(&c);
}

#[test]
fn the_same_event_twice_is_flagged() {
    let mut c = checker();
    c.event(
        &ev(
            CallEventKind::Delivered,
            "C1",
            LocalConnectionState::Alerting,
        ),
        XREF,
    );
    c.event(
        &ev(
            CallEventKind::Delivered,
            "C1",
            LocalConnectionState::Alerting,
        ),
        XREF,
    );
    assert_one(
        &c,
        "DeliveredEvent for call C1 repeats connection \"tel:+14255550100\"'s previous event",
    );
}

#[test]
fn a_cleared_connection_starts_afresh() {
    let mut c = checker();
    let cleared = || {
        Event::Call(call_event(
            CallEventKind::ConnectionCleared,
            "C1",
            FAR,
            Some(LocalConnectionState::Connected),
        ))
    };
    c.event(&cleared(), XREF);
    c.event(&cleared(), XREF);
    assert_clean(&c);
    assert_eq!(c.remembered_connections(), 0);
}

// The gateway's CSeq goes up

#[test]
fn increasing_cseq_and_retransmissions_pass() {
    let mut c = checker();
    c.check_order(&gateway_request("d1", 1));
    c.check_order(&gateway_request("d1", 2));
    c.check_order(&gateway_request("d1", 2));
    c.check_order(&gateway_request("d1", 7));
    // A new dialog starts its own numbering.
    c.check_order(&gateway_request("d2", 1));
    assert_clean(&c);
}

#[test]
fn cseq_going_back_is_flagged() {
    let mut c = checker();
    c.check_order(&gateway_request("d1", 5));
    c.check_order(&gateway_request("d1", 4));
    assert_one(&c, "INFO with CSeq 4 after CSeq 5: out of order");
    // The late request does not become the reference.
    c.check_order(&gateway_request("d1", 5));
    assert_eq!(c.violations().len(), 1, "{:?}", c.violations());
}

// Call tracking

#[test]
fn calls_follow_their_events_and_are_forgotten_when_cleared() {
    let mut c = checker();
    c.event(
        &ev(
            CallEventKind::Delivered,
            "C1",
            LocalConnectionState::Alerting,
        ),
        XREF,
    );
    c.event(
        &ev(
            CallEventKind::Established,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    let info = &c.calls()["C1"];
    assert_eq!(info.state, "connected");
    assert_eq!(info.events, ["DeliveredEvent", "EstablishedEvent"]);
    let far = call_event(
        CallEventKind::Established,
        "C1",
        FAR,
        Some(LocalConnectionState::Connected),
    );
    c.event(&Event::Call(far), XREF);
    assert_eq!(c.remembered_connections(), 2);
    c.event(
        &ev(
            CallEventKind::ConnectionCleared,
            "C1",
            LocalConnectionState::Null,
        ),
        XREF,
    );
    assert!(c.calls().is_empty());
    assert_eq!(
        c.remembered_connections(),
        0,
        "the far end is forgotten too"
    );
    assert_clean(&c);
}

#[test]
fn a_transfer_moves_the_line_into_the_new_call() {
    let mut c = checker();
    c.event(
        &ev(
            CallEventKind::Established,
            "C1",
            LocalConnectionState::Connected,
        ),
        XREF,
    );
    let mut t = call_event(
        CallEventKind::Transferred,
        "C1",
        FAR,
        Some(LocalConnectionState::Connected),
    );
    t.connections = vec![ConnectionListItem {
        new_connection: Some(ConnectionId::new("C3", LINE)),
        old_connection: Some(ConnectionId::new("C1", LINE)),
        endpoint: Some(LINE.into()),
    }];
    c.event(&Event::Call(t), XREF);
    let moved = &c.calls()["C3"];
    assert_eq!(moved.state, "connected");
    assert_eq!(moved.events, ["TransferedEvent"]);
    assert_clean(&c);
}

// The list itself

#[test]
fn violations_are_kept_in_order_up_to_the_bound() {
    let mut c = checker();
    for i in 0..MAX_VIOLATIONS + 5 {
        c.record(format!("v{i}"));
    }
    assert_eq!(c.violations().len(), MAX_VIOLATIONS);
    assert_eq!(c.violations()[0], "v0");
    assert_eq!(
        c.violations()[MAX_VIOLATIONS - 1],
        format!("v{}", MAX_VIOLATIONS - 1)
    );
}
