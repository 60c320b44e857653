//! MonitorStart, MonitorStop, SnapshotDevice, SetForwarding, GetForwarding and
//! SetDoNotDisturb; monitors per link.

use rcc_protocol::csta::{
    ConnectionId, CstaError, DeviceRef, ErrorCategory, Event, ForwardItem, ForwardingType,
    LocalConnectionState as State, MonitorObject, Request, Response, Service, SnapshotCall,
};

use super::{LINK, Lab, cid, op};
use crate::pbx::switch::{CallIdFormat, SwitchConfig};

fn monitor(device: &str, monitor_type: Option<&str>) -> Request {
    Request::MonitorStart {
        object: MonitorObject::Device(device.into()),
        monitor_type: monitor_type.map(str::to_owned),
    }
}

fn call_monitor(call: Option<&str>) -> Request {
    Request::MonitorStart {
        object: MonitorObject::Call(ConnectionId {
            call_id: call.map(str::to_owned),
            device_id: None,
        }),
        monitor_type: None,
    }
}

fn forward(device: &str, activate: bool, dn: Option<&str>, rings: Option<u32>) -> Request {
    Request::SetForwarding {
        device: device.into(),
        forwarding_type: ForwardingType::Immediate,
        activate,
        forward_dn: dn.map(str::to_owned),
        ring_count: rings,
    }
}

fn item(kind: ForwardingType, dn: Option<&str>) -> ForwardItem {
    ForwardItem {
        forwarding_type: kind,
        status: dn.is_some(),
        forward_dn: dn.map(str::to_owned),
        ring_count: None,
    }
}

#[test]
fn monitor_start_says_whether_the_device_has_calls() {
    let mut lab = Lab::new();
    let idle = lab.ok(monitor("100", Some("device")));
    assert_eq!(
        idle,
        Response::MonitorStart {
            cross_ref: "1".into(),
            existing_calls: Some(false),
        }
    );
    lab.connected("100", "101");
    let busy = lab.ok(monitor("+14255550100", None));
    assert_eq!(
        busy,
        Response::MonitorStart {
            cross_ref: "2".into(),
            existing_calls: Some(true),
        }
    );
    let on_call = lab.ok(call_monitor(Some("1")));
    assert_eq!(
        on_call,
        Response::MonitorStart {
            cross_ref: "3".into(),
            existing_calls: Some(true),
        }
    );
    assert_eq!(lab.sw.monitor_count(), 3);
}

#[test]
fn monitor_start_refusals() {
    let mut lab = Lab::with(SwitchConfig {
        monitors_per_device: 2,
        ..SwitchConfig::default()
    });
    lab.add_locked("104");
    let limit = CstaError::new(
        ErrorCategory::SubscribedResourceAvailability,
        "objectMonitorLimitExceeded",
    );
    lab.ok(monitor("100", None));
    lab.ok(monitor("100", None));
    let cases = [
        (monitor("alice", None), op("invalidDeviceID")),
        (monitor("5550001", None), op("invalidDeviceID")),
        (
            monitor("104", None),
            op("privilegeViolationSpecifiedDevice"),
        ),
        (monitor("101", Some("call")), op("monitorTypeNotSupported")),
        (monitor("100", None), limit),
        (call_monitor(Some("9")), op("invalidCallID")),
        (call_monitor(None), op("invalidCallID")),
    ];
    for (request, error) in cases {
        assert_eq!(lab.refused(request), error);
    }
    assert_eq!(lab.sw.monitor_count(), 2);
}

#[test]
fn monitor_stop_only_by_the_link_that_started_it() {
    let mut lab = Lab::new();
    let mine = lab.watch("100");
    let theirs = lab.watch_as(2, "100", "theirs");
    let stop = |x: &str| Request::MonitorStop {
        cross_ref: x.into(),
    };
    assert_eq!(lab.refused(stop(&theirs)), op("invalidMonitorCrossRefID"));
    assert_eq!(lab.refused(stop("77")), op("invalidMonitorCrossRefID"));
    assert_eq!(lab.ok(stop(&mine)), Response::Empty(Service::MonitorStop));
    assert_eq!(lab.refused(stop(&mine)), op("invalidMonitorCrossRefID"));
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    let notices = lab.notices();
    assert!(notices.iter().all(|n| n.owner == 2), "{notices:?}");
    assert_eq!(notices.len(), 3);
}

#[test]
fn monitors_belong_to_their_link() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch_as(2, "101", "other");
    lab.watch_as(2, "102", "other");
    assert_eq!(
        lab.sw.monitors_of(LINK),
        [("1".to_owned(), "100".to_owned())]
    );
    lab.sw.remove_owner(2);
    assert_eq!(lab.sw.monitor_count(), 1);
    assert!(lab.sw.monitors_of(2).is_empty());
    lab.sw.phone_dial("101", "102", lab.now).expect("dial");
    assert!(lab.log().is_empty(), "nobody watches 101 or 102 any more");
}

#[test]
fn snapshot_device_lists_calls_own_state_first() {
    let mut lab = Lab::new();
    lab.add_locked("104");
    lab.connected("100", "101");
    lab.sw.phone_hold("100").expect("hold");
    lab.sw.phone_dial("100", "102", lab.now).expect("dial");
    let snapshot = |d: &str| Request::SnapshotDevice { device: d.into() };
    assert_eq!(
        lab.ok(snapshot("100")),
        Response::SnapshotDevice {
            calls: vec![
                SnapshotCall {
                    connection: cid("1", "100"),
                    states: vec![State::Hold, State::Connected],
                },
                SnapshotCall {
                    connection: cid("2", "100"),
                    states: vec![State::Connected, State::Alerting],
                },
            ],
        }
    );
    assert_eq!(
        lab.ok(snapshot("102")),
        Response::SnapshotDevice {
            calls: vec![SnapshotCall {
                connection: cid("2", "102"),
                states: vec![State::Alerting, State::Connected],
            }],
        }
    );
    assert_eq!(
        lab.ok(snapshot("103")),
        Response::SnapshotDevice { calls: vec![] }
    );
    assert_eq!(lab.refused(snapshot("alice")), op("invalidDeviceID"));
    assert_eq!(
        lab.refused(snapshot("104")),
        op("privilegeViolationSpecifiedDevice")
    );
}

#[test]
fn set_forwarding_reports_and_get_forwarding_reads_it_back() {
    let mut lab = Lab::new();
    lab.watch("101");
    let r = lab.ok(forward("101", true, Some("N<102>;noa=nk"), None));
    assert_eq!(r, Response::Empty(Service::SetForwarding));
    assert_eq!(lab.log(), ["101: Forwarding forwardImmediate true 102"]);
    let get = || Request::GetForwarding {
        device: "101".into(),
    };
    assert_eq!(
        lab.ok(get()),
        Response::GetForwarding {
            items: vec![
                item(ForwardingType::Immediate, Some("102")),
                item(ForwardingType::Busy, None),
                item(ForwardingType::NoAnswer, None),
            ],
        }
    );
    lab.ok(forward("101", false, None, None));
    assert_eq!(lab.log(), ["101: Forwarding forwardImmediate false -"]);
    let features = lab.sw.device_features("101").expect("a device");
    assert_eq!(features.0, [item(ForwardingType::Immediate, None)]);
    assert_eq!(
        lab.refused(Request::GetForwarding {
            device: "alice".into()
        }),
        op("invalidDeviceID")
    );
}

#[test]
fn set_forwarding_refusals() {
    let mut lab = Lab::new();
    lab.watch("100");
    let bad = op("invalidForwardingDestination");
    let cases = [
        (forward("100", true, Some("100"), None), bad.clone()),
        (
            forward("100", true, Some("+14255550100"), None),
            bad.clone(),
        ),
        (forward("100", true, None, None), bad.clone()),
        (forward("100", true, Some("alice"), None), bad),
        (
            forward("alice", true, Some("101"), None),
            op("invalidDeviceID"),
        ),
    ];
    for (request, error) in cases {
        assert_eq!(lab.refused(request), error);
    }
    assert!(lab.log().is_empty());
    assert_eq!(lab.sw.device_features("100"), Some((vec![], false)));
}

#[test]
fn set_do_not_disturb_reports_and_refuses_calls() {
    let mut lab = Lab::new();
    lab.watch("100");
    lab.watch("101");
    let dnd = |d: &str, on| Request::SetDoNotDisturb {
        device: d.into(),
        on,
    };
    assert_eq!(
        lab.ok(dnd("101", true)),
        Response::Empty(Service::SetDoNotDisturb)
    );
    assert_eq!(lab.log(), ["101: DoNotDisturb true"]);
    assert_eq!(lab.sw.device_features("101"), Some((vec![], true)));
    lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    let log = lab.log();
    assert_eq!(
        log.last().map(String::as_str),
        Some("100: Failed 1/101 fail doNotDisturb")
    );
    assert_eq!(lab.parties("1"), ["100:fail"]);
    lab.ok(dnd("101", false));
    assert_eq!(lab.log(), ["101: DoNotDisturb false"]);
    assert_eq!(lab.refused(dnd("alice", true)), op("invalidDeviceID"));
}

#[test]
fn openscape_ids_and_decorated_devices() {
    let mut lab = Lab::with(SwitchConfig {
        call_ids: CallIdFormat::Hex32,
        decorate_devices: true,
        ..SwitchConfig::default()
    });
    let xref = lab.watch("100");
    assert_eq!(xref, "00000001");
    let call = lab.sw.phone_dial("100", "101", lab.now).expect("dial");
    assert_eq!(call, "FF000100000000000001C85C1C750000");
    let notices = lab.notices();
    let Some(Event::Call(delivered)) = notices.last().map(|n| &n.event) else {
        panic!("no call event: {notices:?}");
    };
    assert_eq!(delivered.subject, Some(DeviceRef::id("N<101>;noa=nk")));
    assert_eq!(delivered.calling, Some(DeviceRef::id("N<100>;noa=nk")));
    assert_eq!(
        delivered.connection,
        Some(cid(&call, "101")),
        "connections stay plain"
    );
}
