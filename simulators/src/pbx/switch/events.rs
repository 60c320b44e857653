//! Addressing events: which monitors hear about a call or a device, and how devices appear in
//! events (plain or decorated as OpenScape Voice reports them).

use rcc_protocol::csta::{
    CallEvent, CallEventKind, ConnectionId, DeviceRef, Event, LocalConnectionState as State,
};

use super::Switch;

impl Switch {
    /// Sends `event` to every monitor interested in `call`: device monitors of its parties and
    /// of `also` (devices that just left), each with its own device's state after the event, in
    /// the order of the parties; then call monitors, without a state.
    pub(super) fn notify(&mut self, call: &str, event: CallEvent, also: &[&str]) {
        let mut targets: Vec<(String, State)> = self
            .calls
            .get(call)
            .map(|c| {
                c.parties
                    .iter()
                    .filter(|p| p.internal)
                    .map(|p| (p.device.clone(), p.state.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for d in also {
            if self.devices.contains(d) && !targets.iter().any(|(t, _)| t == d) {
                targets.push(((*d).to_owned(), State::Null));
            }
        }
        self.monitors.call_event(call, &event, &targets);
    }

    /// Sends a device event to the monitors of `device`.
    pub(super) fn notify_device(&mut self, device: &str, event: Event) {
        self.monitors.device_event(device, &event);
    }

    /// The device as events report it.
    pub(super) fn present(&self, device: &str) -> String {
        if self.config.decorate_devices {
            format!("N<{device}>;noa=nk")
        } else {
            device.to_owned()
        }
    }

    /// The device as an event's device field.
    pub(super) fn dref(&self, device: &str) -> DeviceRef {
        DeviceRef::id(self.present(device))
    }
}

/// A call event of `kind` about `connection`, to be completed and addressed.
pub(super) fn call_event(kind: CallEventKind, connection: ConnectionId) -> CallEvent {
    let mut e = CallEvent::new(kind, "");
    e.connection = Some(connection);
    e
}

/// The connection of `device` in `call`.
pub(super) fn conn(call: &str, device: &str) -> ConnectionId {
    ConnectionId::new(call, device)
}
