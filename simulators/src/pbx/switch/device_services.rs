//! The CSTA services about devices rather than calls: monitors, SnapshotDevice, forwarding and
//! do-not-disturb.

use rcc_protocol::csta::{
    CstaError, ErrorCategory, ForwardItem, ForwardingType, MonitorObject, Response, Service,
    SnapshotCall,
};

use super::Switch;
use super::events::conn;
use super::monitors::{Owner, Watch};
use super::refusal::{Outcome, op};
use crate::pbx::directory::{Resolved, strip_decoration};

impl Switch {
    /// MonitorStart on a device (at most `monitors_per_device` of them) or on a call.
    pub(super) fn monitor_start(
        &mut self,
        owner: Owner,
        object: &MonitorObject,
        monitor_type: Option<&str>,
    ) -> Outcome {
        let watch = match object {
            MonitorObject::Device(d) => {
                let d = self.devices.controllable(d, "invalidDeviceID")?;
                if monitor_type == Some("call") {
                    return Err(op("monitorTypeNotSupported"));
                }
                if self
                    .config
                    .max_monitors
                    .is_some_and(|max| self.monitors.count() >= max)
                {
                    return Err(CstaError::new(
                        ErrorCategory::SubscribedResourceAvailability,
                        "overallMonitorLimitExceeded",
                    ));
                }
                if self.monitors.on_device(&d) >= self.config.monitors_per_device {
                    return Err(CstaError::new(
                        ErrorCategory::SubscribedResourceAvailability,
                        "objectMonitorLimitExceeded",
                    ));
                }
                Watch::Device(d)
            }
            MonitorObject::Call(c) => {
                let id = c.call_id.as_deref().ok_or_else(|| op("invalidCallID"))?;
                if !self.calls.contains(id) {
                    return Err(op("invalidCallID"));
                }
                Watch::Call(id.to_owned())
            }
        };
        let existing = match &watch {
            Watch::Device(d) => self.calls.of(d).next().is_some(),
            Watch::Call(_) => true,
        };
        let cross_ref = self.monitors.start(owner, watch, self.config.call_ids);
        Ok(Response::MonitorStart {
            cross_ref,
            existing_calls: Some(existing),
        })
    }

    /// MonitorStop, of a monitor the link holds.
    pub(super) fn monitor_stop(&mut self, owner: Owner, cross_ref: &str) -> Outcome {
        if self.monitors.stop(owner, cross_ref) {
            Ok(Response::Empty(Service::MonitorStop))
        } else {
            Err(op("invalidMonitorCrossRefID"))
        }
    }

    /// SnapshotDevice: the device's calls in call ID order, its own state first.
    pub(super) fn snapshot_device(&self, device: &str) -> Outcome {
        let d = self.devices.controllable(device, "invalidDeviceID")?;
        let calls = self
            .calls
            .of_sorted(&d)
            .into_iter()
            .filter_map(|c| {
                let own = c.party(&d)?;
                let mut states = vec![own.state.clone()];
                let others = c.parties.iter().filter(|p| p.device != d);
                states.extend(others.map(|p| p.state.clone()));
                Some(SnapshotCall {
                    connection: conn(&c.id, &d),
                    states,
                })
            })
            .collect();
        Ok(Response::SnapshotDevice { calls })
    }

    /// SetForwarding: activating needs a dialable destination other than the device itself.
    pub(super) fn set_forwarding_service(
        &mut self,
        device: &str,
        kind: &ForwardingType,
        activate: bool,
        forward_dn: Option<&str>,
        ring_count: Option<u32>,
    ) -> Outcome {
        let d = self.devices.controllable(device, "invalidDeviceID")?;
        if activate {
            match forward_dn.map(|n| self.devices.resolve(n)) {
                Some(Resolved::Internal(t)) if t == d => {
                    return Err(op("invalidForwardingDestination"));
                }
                Some(Resolved::Internal(_) | Resolved::External(_)) => {}
                _ => return Err(op("invalidForwardingDestination")),
            }
        }
        let dn = forward_dn.map(|n| strip_decoration(n).to_owned());
        self.set_forwarding(&d, kind.clone(), activate, dn, ring_count);
        Ok(Response::Empty(Service::SetForwarding))
    }

    /// GetForwarding: immediate, busy and no-answer, inactive when never set.
    pub(super) fn get_forwarding(&self, device: &str) -> Outcome {
        let d = self.devices.controllable(device, "invalidDeviceID")?;
        let dev = self.devices.get(&d).ok_or_else(|| op("invalidDeviceID"))?;
        let items = [
            ForwardingType::Immediate,
            ForwardingType::Busy,
            ForwardingType::NoAnswer,
        ]
        .into_iter()
        .map(|kind| {
            dev.forwarding
                .iter()
                .find(|f| f.forwarding_type == kind)
                .cloned()
                .unwrap_or(ForwardItem {
                    forwarding_type: kind,
                    status: false,
                    forward_dn: None,
                    ring_count: None,
                })
        })
        .collect();
        Ok(Response::GetForwarding { items })
    }

    /// SetDoNotDisturb.
    pub(super) fn set_dnd_service(&mut self, device: &str, on: bool) -> Outcome {
        let d = self.devices.controllable(device, "invalidDeviceID")?;
        self.set_dnd(&d, on);
        Ok(Response::Empty(Service::SetDoNotDisturb))
    }
}
