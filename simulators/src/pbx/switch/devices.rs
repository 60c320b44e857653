//! Who the switch knows: internal devices with their line settings (forwarding, do-not-disturb),
//! scripted external numbers, and the resolution of device identifiers from requests.

use std::collections::{BTreeMap, HashMap};

use rcc_protocol::csta::{CstaError, ForwardItem, ForwardingType};

use super::refusal::op;
use crate::pbx::directory::{DeviceConfig, ExternalParty, Resolved, is_dialable, strip_decoration};

/// An internal device and its settings.
#[derive(Debug, Clone)]
pub(super) struct Device {
    pub(super) config: DeviceConfig,
    pub(super) forwarding: Vec<ForwardItem>,
    pub(super) dnd: bool,
}

impl Device {
    /// The active forwarding of `kind` that has a destination.
    pub(super) fn forward(&self, kind: &ForwardingType) -> Option<&ForwardItem> {
        self.forwarding
            .iter()
            .find(|f| &f.forwarding_type == kind && f.status && f.forward_dn.is_some())
    }

    /// The forwarding destination of `kind`, when active.
    pub(super) fn forward_to(&self, kind: &ForwardingType) -> Option<String> {
        self.forward(kind).and_then(|f| f.forward_dn.clone())
    }
}

/// The internal devices by number, their E.164 aliases, and the scripts of external numbers.
#[derive(Debug, Default)]
pub(super) struct DeviceTable {
    devices: BTreeMap<String, Device>,
    /// E.164 number (with and without `+`) → device number.
    by_e164: HashMap<String, String>,
    externals: HashMap<String, ExternalParty>,
}

impl DeviceTable {
    /// Adds (or replaces) an internal device, with no forwarding and do-not-disturb off.
    pub(super) fn add(&mut self, config: DeviceConfig) {
        let number = config.number.clone();
        if let Some(e) = &config.e164 {
            self.by_e164.insert(e.clone(), number.clone());
            self.by_e164
                .insert(e.trim_start_matches('+').to_owned(), number.clone());
        }
        self.devices.insert(
            number,
            Device {
                config,
                forwarding: Vec::new(),
                dnd: false,
            },
        );
    }

    /// Scripts an external number.
    pub(super) fn set_external(&mut self, number: &str, party: ExternalParty) {
        self.externals
            .insert(strip_decoration(number).to_owned(), party);
    }

    /// The script of external `number`, or `default` when it has none.
    pub(super) fn script(&self, number: &str, default: &ExternalParty) -> ExternalParty {
        self.externals
            .get(number)
            .cloned()
            .unwrap_or_else(|| default.clone())
    }

    pub(super) fn get(&self, device: &str) -> Option<&Device> {
        self.devices.get(device)
    }

    pub(super) fn get_mut(&mut self, device: &str) -> Option<&mut Device> {
        self.devices.get_mut(device)
    }

    /// Whether `device` is an internal device.
    pub(super) fn contains(&self, device: &str) -> bool {
        self.devices.contains_key(device)
    }

    /// The configured devices, by number.
    pub(super) fn configs(&self) -> Vec<DeviceConfig> {
        self.devices.values().map(|d| d.config.clone()).collect()
    }

    /// Resolves a device identifier as a request or the control API gives it: an internal
    /// number, one of their E.164 numbers (with or without `+`), or another dialable number.
    pub(super) fn resolve(&self, raw: &str) -> Resolved {
        let s = strip_decoration(raw);
        if self.devices.contains_key(s) {
            return Resolved::Internal(s.to_owned());
        }
        let plain = s.strip_prefix('+').unwrap_or(s);
        if let Some(d) = self.by_e164.get(s).or_else(|| self.by_e164.get(plain)) {
            return Resolved::Internal(d.clone());
        }
        if is_dialable(s) {
            Resolved::External(s.to_owned())
        } else {
            Resolved::Invalid
        }
    }

    /// An internal device CTI may control; `error` when `raw` is no internal device.
    pub(super) fn controllable(&self, raw: &str, error: &str) -> Result<String, CstaError> {
        match self.resolve(raw) {
            Resolved::Internal(d) => {
                if self.devices.get(&d).is_some_and(|d| d.config.cti) {
                    Ok(d)
                } else {
                    Err(op("privilegeViolationSpecifiedDevice"))
                }
            }
            _ => Err(op(error)),
        }
    }

    /// An internal device, CTI-enabled or not (desk-phone actions, the control API).
    pub(super) fn internal(&self, raw: &str) -> Result<String, CstaError> {
        match self.resolve(raw) {
            Resolved::Internal(d) => Ok(d),
            _ => Err(op("invalidDeviceID")),
        }
    }

    /// An internal device or an external number.
    pub(super) fn party(&self, raw: &str) -> Result<String, CstaError> {
        match self.resolve(raw) {
            Resolved::Internal(d) | Resolved::External(d) => Ok(d),
            Resolved::Invalid => Err(op("invalidDeviceID")),
        }
    }

    /// A destination a call can be offered to; `error` when `raw` is not dialable.
    pub(super) fn destination(&self, raw: &str, error: &str) -> Result<Resolved, CstaError> {
        match self.resolve(raw) {
            Resolved::Invalid => Err(op(error)),
            r => Ok(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> DeviceTable {
        let mut t = DeviceTable::default();
        t.add(DeviceConfig::new("100", Some("+14255550100")));
        let mut locked = DeviceConfig::new("101", None);
        locked.cti = false;
        t.add(locked);
        t
    }

    #[test]
    fn identifiers_resolve_by_number_e164_or_as_external() {
        let t = table();
        let internal = |s: &str| Resolved::Internal(s.to_owned());
        assert_eq!(t.resolve("100"), internal("100"));
        assert_eq!(t.resolve("N<100>;noa=nk"), internal("100"));
        assert_eq!(t.resolve("+14255550100"), internal("100"));
        assert_eq!(t.resolve("tel:14255550100"), internal("100"));
        assert_eq!(
            t.resolve("+15551234"),
            Resolved::External("+15551234".into())
        );
        assert_eq!(t.resolve("alice"), Resolved::Invalid);
    }

    #[test]
    fn only_cti_devices_are_controllable() {
        let t = table();
        assert_eq!(
            t.controllable("100", "invalidDeviceID"),
            Ok("100".to_owned())
        );
        assert_eq!(
            t.controllable("101", "invalidDeviceID"),
            Err(op("privilegeViolationSpecifiedDevice"))
        );
        assert_eq!(
            t.controllable("555", "invalidCallingDeviceID"),
            Err(op("invalidCallingDeviceID"))
        );
        assert_eq!(t.internal("101"), Ok("101".to_owned()));
        assert_eq!(t.internal("555"), Err(op("invalidDeviceID")));
        assert_eq!(t.party("555"), Ok("555".to_owned()));
        assert_eq!(
            t.destination("x", "invalidCalledDeviceID"),
            Err(op("invalidCalledDeviceID"))
        );
    }
}
