//! Device-ID translation between a Lync session and the PBX: requests on the way in (with the
//! authorization checks), responses and events on the way out. The session's own line is always
//! echoed verbatim; other devices go through the numbering plan and are remembered so that what
//! the client sends back maps to exactly what the PBX said.

use std::collections::HashMap;

use rcc_protocol::csta::{
    ConnectionId, ConnectionListItem, CstaError, DeviceRef, Event, MonitorObject, Request, Response,
};

use super::authz::Authorization;
use super::numbering::Numbering;

/// Entries remembered per session before the memory starts over.
const SHOWN_LIMIT: usize = 4096;

/// A session's view of device IDs.
pub(crate) struct LineView<'a> {
    /// The numbering plan.
    pub numbering: &'a Numbering,
    /// The authorization policy.
    pub authz: &'a Authorization,
    /// The session's SIP user.
    pub user: &'a str,
    /// The LineURI as the client sent it.
    pub line: &'a str,
    /// The line's PBX device ID.
    pub device: &'a str,
    /// Lync string → PBX string for devices shown to this session.
    pub shown: &'a mut HashMap<String, String>,
}

fn privilege() -> CstaError {
    CstaError::operation("privilegeViolationSpecifiedDevice")
}

impl LineView<'_> {
    /// PBX device ID → what the client sees.
    pub(crate) fn show(&mut self, pbx: &str) -> String {
        let bare = self.numbering.undecorate(pbx);
        if bare == self.device {
            return self.line.to_owned();
        }
        let lync = self.numbering.to_lync(pbx);
        if self.shown.len() >= SHOWN_LIMIT {
            self.shown.clear();
        }
        self.shown.insert(lync.clone(), pbx.to_owned());
        lync
    }

    /// A device the client controls (its own line, or one the table allows) → PBX device ID.
    fn controlled(&self, lync: &str) -> Result<String, CstaError> {
        if lync == self.line || self.numbering.same_line(self.line, lync) {
            return Ok(self.device.to_owned());
        }
        if self
            .authz
            .may_control(self.numbering, self.user, self.line, lync)
        {
            Ok(self.numbering.line_to_device(lync))
        } else {
            Err(privilege())
        }
    }

    /// A destination the client dialled → PBX number.
    fn destination(&self, lync: &str) -> String {
        if let Some(pbx) = self.shown.get(lync) {
            return pbx.clone();
        }
        if lync == self.line {
            return self.device.to_owned();
        }
        self.numbering.dialled_to_pbx(lync)
    }

    /// A connection of the client's own line → PBX connection.
    fn own(&self, c: &ConnectionId) -> Result<ConnectionId, CstaError> {
        let device = match &c.device_id {
            Some(d) => Some(self.controlled(d)?),
            None => None,
        };
        Ok(ConnectionId {
            call_id: c.call_id.clone(),
            device_id: device,
        })
    }

    /// Any connection (ClearCall) → PBX connection.
    fn any(&self, c: &ConnectionId) -> ConnectionId {
        ConnectionId {
            call_id: c.call_id.clone(),
            device_id: c.device_id.as_deref().map(|d| {
                if self.numbering.same_line(self.line, d) {
                    self.device.to_owned()
                } else {
                    self.destination(d)
                }
            }),
        }
    }

    /// A client request in PBX terms, or the error the client gets.
    pub(crate) fn request_to_pbx(&self, r: &Request) -> Result<Request, CstaError> {
        use Request as R;
        Ok(match r {
            R::MonitorStart {
                object: MonitorObject::Device(d),
                monitor_type,
            } => R::MonitorStart {
                object: MonitorObject::Device(self.controlled(d)?),
                monitor_type: monitor_type.clone(),
            },
            R::MonitorStart {
                object: MonitorObject::Call(c),
                monitor_type,
            } => R::MonitorStart {
                object: MonitorObject::Call(self.any(c)),
                monitor_type: monitor_type.clone(),
            },
            R::SnapshotDevice { device } => R::SnapshotDevice {
                device: self.controlled(device)?,
            },
            R::MakeCall {
                calling,
                called,
                auto_originate,
            } => R::MakeCall {
                calling: self.controlled(calling)?,
                called: self.destination(called),
                auto_originate: auto_originate.clone(),
            },
            R::AnswerCall { call } => R::AnswerCall {
                call: self.own(call)?,
            },
            R::ClearConnection { connection, reason } => R::ClearConnection {
                connection: self.own(connection)?,
                reason: reason.clone(),
            },
            R::ClearCall { call } => R::ClearCall {
                call: self.any(call),
            },
            R::HoldCall { call, reservation } => R::HoldCall {
                call: self.own(call)?,
                reservation: *reservation,
            },
            R::RetrieveCall { call } => R::RetrieveCall {
                call: self.own(call)?,
            },
            R::AlternateCall { held, active } => R::AlternateCall {
                held: self.own(held)?,
                active: self.own(active)?,
            },
            R::ReconnectCall { active, held } => R::ReconnectCall {
                active: self.own(active)?,
                held: self.own(held)?,
            },
            R::ConsultationCall {
                existing,
                consulted,
            } => R::ConsultationCall {
                existing: self.own(existing)?,
                consulted: self.destination(consulted),
            },
            R::TransferCall { held, active } => R::TransferCall {
                held: self.own(held)?,
                active: self.own(active)?,
            },
            R::ConferenceCall { held, active } => R::ConferenceCall {
                held: self.own(held)?,
                active: self.own(active)?,
            },
            R::SingleStepTransferCall {
                active,
                transferred_to,
            } => R::SingleStepTransferCall {
                active: self.own(active)?,
                transferred_to: self.destination(transferred_to),
            },
            R::DeflectCall {
                call,
                new_destination,
            } => R::DeflectCall {
                call: self.own(call)?,
                new_destination: self.destination(new_destination),
            },
            R::GenerateDigits {
                connection,
                digits,
                tone_duration,
            } => R::GenerateDigits {
                connection: self.own(connection)?,
                digits: digits.clone(),
                tone_duration: *tone_duration,
            },
            R::SetForwarding {
                device,
                forwarding_type,
                activate,
                forward_dn,
                ring_count,
            } => R::SetForwarding {
                device: self.controlled(device)?,
                forwarding_type: forwarding_type.clone(),
                activate: *activate,
                forward_dn: forward_dn.as_deref().map(|d| self.destination(d)),
                ring_count: *ring_count,
            },
            R::GetForwarding { device } => R::GetForwarding {
                device: self.controlled(device)?,
            },
            R::SetDoNotDisturb { device, on } => R::SetDoNotDisturb {
                device: self.controlled(device)?,
                on: *on,
            },
            other => other.clone(),
        })
    }

    fn connection(&mut self, c: &mut ConnectionId) {
        if let Some(d) = c.device_id.as_mut() {
            *d = self.show(d);
        }
    }

    fn list(&mut self, items: &mut [ConnectionListItem]) {
        for i in items {
            for c in i
                .new_connection
                .iter_mut()
                .chain(i.old_connection.iter_mut())
            {
                self.connection(c);
            }
            if let Some(e) = i.endpoint.as_mut() {
                *e = self.show(e);
            }
        }
    }

    /// A PBX response in the client's terms.
    pub(crate) fn response_to_lync(&mut self, r: &mut Response) {
        match r {
            Response::MakeCall { calling } => self.connection(calling),
            Response::ConsultationCall { initiated } => self.connection(initiated),
            Response::TransferCall {
                transferred,
                connections,
            }
            | Response::SingleStepTransferCall {
                transferred,
                connections,
            } => {
                if let Some(t) = transferred {
                    self.connection(t);
                }
                self.list(connections);
            }
            Response::ConferenceCall {
                conference,
                connections,
            } => {
                if let Some(c) = conference {
                    self.connection(c);
                }
                self.list(connections);
            }
            Response::SnapshotDevice { calls } => {
                for c in calls {
                    self.connection(&mut c.connection);
                }
            }
            Response::GetForwarding { items } => {
                for i in items {
                    if let Some(d) = i.forward_dn.as_mut() {
                        *d = self.show(d);
                    }
                }
            }
            _ => {}
        }
    }

    /// A PBX event in the client's terms, carrying the session's cross-reference ID.
    pub(crate) fn event_to_lync(&mut self, e: &mut Event, xref: &str) {
        e.set_cross_ref(xref);
        match e {
            Event::Call(c) => {
                for id in c.device_ids_mut() {
                    let shown = self.show(id);
                    *id = shown;
                }
            }
            Event::Forwarding(f) => {
                if let DeviceRef::Id(d) = &mut f.device {
                    *d = self.show(d);
                }
                if let Some(t) = f.forward_to.as_mut() {
                    *t = self.show(t);
                }
            }
            Event::DoNotDisturb(d) => {
                if let DeviceRef::Id(id) = &mut d.device {
                    *id = self.show(id);
                }
            }
        }
    }
}
