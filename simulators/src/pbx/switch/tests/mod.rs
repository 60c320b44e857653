//! Switch-level tests: requests and desk-phone actions on a [`Switch`] driven by hand, with a
//! clock that moves only when a test advances it. No sockets, no runtime.
//!
//! Events are compared as one line each: `<monitor>: <Kind> <call>/<device> <local state>
//! <cause>`, where `<monitor>` is the label the test gave the monitor (`-` for a field the
//! event lacks).

mod call_control;
mod device_services;
mod phone;
mod routing;
mod transfers;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rcc_protocol::csta::{ConnectionId, CstaError, Event, MonitorObject, Request, Response};

use super::{Notice, Owner, Switch, SwitchConfig};
use crate::pbx::directory::DeviceConfig;

/// The link most tests act on.
const LINK: Owner = 1;

/// A switch with devices 100 (also +14255550100), 101, 102 and 103, and a clock.
struct Lab {
    sw: Switch,
    now: Instant,
    /// Monitor cross-reference ID → the label events are shown with.
    labels: HashMap<String, String>,
}

impl Lab {
    fn new() -> Self {
        Lab::with(SwitchConfig::default())
    }

    fn with(config: SwitchConfig) -> Self {
        let mut sw = Switch::new(config);
        sw.add_device(DeviceConfig::new("100", Some("+14255550100")));
        for n in ["101", "102", "103"] {
            sw.add_device(DeviceConfig::new(n, None));
        }
        Lab {
            sw,
            now: Instant::now(),
            labels: HashMap::new(),
        }
    }

    /// Adds a device that CTI may not control.
    fn add_locked(&mut self, number: &str) {
        let mut d = DeviceConfig::new(number, None);
        d.cti = false;
        self.sw.add_device(d);
    }

    fn req(&mut self, r: Request) -> Result<Response, CstaError> {
        self.sw.request(LINK, &r, self.now)
    }

    fn ok(&mut self, r: Request) -> Response {
        let what = format!("{r:?}");
        self.req(r)
            .unwrap_or_else(|e| panic!("{what} refused: {e}"))
    }

    fn refused(&mut self, r: Request) -> CstaError {
        let what = format!("{r:?}");
        match self.req(r) {
            Ok(resp) => panic!("{what} accepted: {resp:?}"),
            Err(e) => e,
        }
    }

    /// Starts a device monitor on the test link; its events show as `label`.
    fn watch(&mut self, device: &str) -> String {
        self.watch_as(LINK, device, device)
    }

    fn watch_as(&mut self, owner: Owner, device: &str, label: &str) -> String {
        let r = Request::MonitorStart {
            object: MonitorObject::Device(device.to_owned()),
            monitor_type: None,
        };
        match self.sw.request(owner, &r, self.now) {
            Ok(Response::MonitorStart { cross_ref, .. }) => {
                self.labels.insert(cross_ref.clone(), label.to_owned());
                cross_ref
            }
            other => panic!("monitor on {device}: {other:?}"),
        }
    }

    /// Starts a call monitor; its events show as `call`.
    fn watch_call(&mut self, call: &str) -> String {
        let r = Request::MonitorStart {
            object: MonitorObject::Call(ConnectionId {
                call_id: Some(call.to_owned()),
                device_id: None,
            }),
            monitor_type: None,
        };
        match self.req(r) {
            Ok(Response::MonitorStart { cross_ref, .. }) => {
                self.labels.insert(cross_ref.clone(), "call".to_owned());
                cross_ref
            }
            other => panic!("monitor on call {call}: {other:?}"),
        }
    }

    /// The queued events, taken.
    fn notices(&mut self) -> Vec<Notice> {
        self.sw.take_notices().collect()
    }

    /// The queued events, taken, one line each.
    fn log(&mut self) -> Vec<String> {
        let notices = self.notices();
        notices.iter().map(|n| self.line(&n.event)).collect()
    }

    fn line(&self, event: &Event) -> String {
        let xref = event.cross_ref();
        let label = self.labels.get(xref).map_or(xref, String::as_str);
        match event {
            Event::Call(e) => {
                let (call, dev) = e.connection.as_ref().map_or(("-", "-"), |c| {
                    (
                        c.call_id.as_deref().unwrap_or("-"),
                        c.device_id.as_deref().unwrap_or("-"),
                    )
                });
                let state = e.local_state.as_ref().map_or("-", |s| s.as_str());
                let cause = e.cause.as_ref().map_or("-", |c| c.as_str());
                format!("{label}: {:?} {call}/{dev} {state} {cause}", e.kind)
            }
            Event::Forwarding(f) => format!(
                "{label}: Forwarding {} {} {}",
                f.forwarding_type.as_str(),
                f.status,
                f.forward_to.as_deref().unwrap_or("-")
            ),
            Event::DoNotDisturb(d) => format!("{label}: DoNotDisturb {}", d.on),
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.sw.handle_timeout(self.now);
    }

    /// `a` dials `b` at the phone and `b` answers; the events are dropped. Returns the call ID.
    fn connected(&mut self, a: &str, b: &str) -> String {
        let call = self.sw.phone_dial(a, b, self.now).expect("dial");
        self.sw.phone_answer(b, self.now).expect("answer");
        self.notices();
        call
    }

    /// The parties of `call` as `device:state`, in joining order (empty when it is gone).
    fn parties(&self, call: &str) -> Vec<String> {
        let calls = self.sw.calls();
        let Some(c) = calls.iter().find(|c| c.call_id == call) else {
            return Vec::new();
        };
        c.parties
            .iter()
            .map(|p| format!("{}:{}", p.device, p.state))
            .collect()
    }
}

/// The connection of `device` in `call`.
fn cid(call: &str, device: &str) -> ConnectionId {
    ConnectionId::new(call, device)
}

/// `operation/<value>`
fn op(value: &str) -> CstaError {
    CstaError::operation(value)
}

/// `stateIncompatibility/<value>`
fn state(value: &str) -> CstaError {
    CstaError::state(value)
}
