//! The simulated switch: devices, calls and their connections in ECMA-269 local connection
//! states, device and call monitors, and the event sequences of every service (pbx-csta.md §12
//! and §17). Sans-IO: requests and desk-phone actions go in with the current time; a response
//! comes back and events queue up as [`Notice`]s; scripted delays are timers the caller drives
//! with [`Switch::next_timeout`] and [`Switch::handle_timeout`].
//!
//! CTI requests and desk-phone actions use the same generators, so a call answered at the desk
//! phone produces exactly the events of an AnswerCall.
//!
//! Layers, each using only those before it:
//! - owned tables: `calls` (calls, parties, the per-device call index), `devices` (devices,
//!   their settings, external scripts, identifier resolution), `monitors` (the monitor table
//!   and the events queued per monitor), `timers` (scripted delays); and `config`, `refusal`;
//! - `events`: which monitors hear about a call or a device, and how devices appear;
//! - `connections`: one connection's state changes (initiated … cleared), merging calls;
//! - `routing`: offering a call (ringing, busy, call waiting, forwarding, external scripts);
//! - `transitions`: what services and desk phones share (placing and answering a call,
//!   forwarding, do-not-disturb) and the timers firing;
//! - entry points: `checks` (what a request names), `services` (the request dispatch and the
//!   services on one device's calls), `transfers`, `device_services`, and `phone` (desk-phone
//!   actions and trunk calls).

mod calls;
mod checks;
mod config;
mod connections;
mod device_services;
mod devices;
mod events;
mod monitors;
mod phone;
mod refusal;
mod routing;
mod services;
mod timers;
mod transfers;
mod transitions;

#[cfg(test)]
mod tests;

use rcc_protocol::csta::{ForwardItem, LocalConnectionState as State};

pub use calls::{CallView, PartyView};
pub use config::{CallIdFormat, SwitchConfig};
pub use monitors::{Notice, Owner};

use super::directory::{DeviceConfig, ExternalParty, Resolved};
use calls::CallTable;
use devices::DeviceTable;
use monitors::Monitors;
use timers::Timers;

/// The simulated switch.
#[derive(Debug)]
pub struct Switch {
    config: SwitchConfig,
    devices: DeviceTable,
    calls: CallTable,
    monitors: Monitors,
    timers: Timers,
}

impl Switch {
    /// A switch with no devices.
    pub fn new(config: SwitchConfig) -> Self {
        Switch {
            config,
            devices: DeviceTable::default(),
            calls: CallTable::new(),
            monitors: Monitors::new(),
            timers: Timers::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SwitchConfig {
        &self.config
    }

    /// Changes the switch's settings from now on (ring length, answering while in a call…).
    pub fn configure(&mut self, f: impl FnOnce(&mut SwitchConfig)) {
        f(&mut self.config);
    }

    /// Adds (or replaces) an internal device.
    pub fn add_device(&mut self, config: DeviceConfig) {
        self.devices.add(config);
    }

    /// Scripts an external number.
    pub fn set_external(&mut self, number: &str, party: ExternalParty) {
        self.devices.set_external(number, party);
    }

    /// Takes the queued events.
    pub fn take_notices(&mut self) -> impl Iterator<Item = Notice> + '_ {
        self.monitors.drain()
    }

    /// Whether events are queued.
    pub fn has_notices(&self) -> bool {
        self.monitors.has_notices()
    }

    /// Resolves a device identifier as a request or the control API gives it.
    pub fn resolve(&self, raw: &str) -> Resolved {
        self.devices.resolve(raw)
    }

    /// Drops every monitor of a link that went away.
    pub fn remove_owner(&mut self, owner: Owner) {
        self.monitors.remove_owner(owner);
    }

    /// Ends a monitor on the switch's own account (as a PBX does when a device is removed or a
    /// licence withdrawn); the link that held it, to tell with a MonitorStop request.
    pub fn end_monitor(&mut self, xref: &str) -> Option<Owner> {
        self.monitors.end(xref)
    }

    /// Monitors held by `owner`: cross-reference ID and watched device or call.
    pub fn monitors_of(&self, owner: Owner) -> Vec<(String, String)> {
        self.monitors.of_owner(owner)
    }

    /// Number of monitors on the switch.
    pub fn monitor_count(&self) -> usize {
        self.monitors.count()
    }

    /// Every call with its parties.
    pub fn calls(&self) -> Vec<CallView> {
        self.calls.views()
    }

    /// The state of `device`'s connection in `call` (`null` when it has none).
    pub fn connection_state(&self, call: &str, device: &str) -> State {
        match self.resolve(device) {
            Resolved::Internal(d) | Resolved::External(d) => self.calls.state_in(call, &d),
            Resolved::Invalid => State::Null,
        }
    }

    /// The forwarding settings and do-not-disturb flag of an internal device.
    pub fn device_features(&self, device: &str) -> Option<(Vec<ForwardItem>, bool)> {
        let d = self.devices.internal(device).ok()?;
        self.devices.get(&d).map(|d| (d.forwarding.clone(), d.dnd))
    }

    /// The configured devices.
    pub fn devices(&self) -> Vec<DeviceConfig> {
        self.devices.configs()
    }
}
