//! The CSTA requests the switch serves: the dispatch, and the services that control the calls
//! of one device (transfers and device features have their own modules).

use std::time::Instant;

use rcc_protocol::csta::{
    AutoOriginate, CallEventKind, Cause, ConnectionId, LocalConnectionState as State, Request,
    Response, Service,
};

use super::Switch;
use super::calls::Call;
use super::events::{call_event, conn};
use super::monitors::Owner;
use super::refusal::{Outcome, op, state_err};
use super::routing::Offer;
use crate::pbx::directory::strip_decoration;

impl Switch {
    /// Handles a call-control or monitoring request from the link `owner`.
    pub fn request(&mut self, owner: Owner, request: &Request, now: Instant) -> Outcome {
        match request {
            Request::MonitorStart {
                object,
                monitor_type,
            } => self.monitor_start(owner, object, monitor_type.as_deref()),
            Request::MonitorStop { cross_ref } => self.monitor_stop(owner, cross_ref),
            Request::SnapshotDevice { device } => self.snapshot_device(device),
            Request::MakeCall {
                calling,
                called,
                auto_originate,
            } => {
                let prompt = matches!(auto_originate, Some(AutoOriginate::Prompt));
                self.make_call_service(calling, called, prompt, now)
            }
            Request::AnswerCall { call } => self.answer_call(call, now),
            Request::ClearConnection { connection, reason } => {
                self.clear_connection_service(connection, reason.as_ref())
            }
            Request::ClearCall { call } => self.clear_call(call),
            Request::HoldCall { call, .. } => self.hold_call(call),
            Request::RetrieveCall { call } => self.retrieve_call(call),
            Request::AlternateCall { held, active } => self.alternate_call(held, active),
            Request::ReconnectCall { active, held } => self.reconnect_call(held, active),
            Request::ConsultationCall {
                existing,
                consulted,
            } => self.consultation_call(existing, consulted, now),
            Request::TransferCall { held, active } => self.transfer(held, active, false),
            Request::ConferenceCall { held, active } => self.transfer(held, active, true),
            Request::SingleStepTransferCall {
                active,
                transferred_to,
            } => self.single_step_transfer(active, transferred_to, now),
            Request::DeflectCall {
                call,
                new_destination,
            } => self.deflect_call(call, new_destination, now),
            Request::GenerateDigits {
                connection, digits, ..
            } => self.generate_digits(connection, digits),
            Request::SetForwarding {
                device,
                forwarding_type,
                activate,
                forward_dn,
                ring_count,
            } => self.set_forwarding_service(
                device,
                forwarding_type,
                *activate,
                forward_dn.as_deref(),
                *ring_count,
            ),
            Request::GetForwarding { device } => self.get_forwarding(device),
            Request::SetDoNotDisturb { device, on } => self.set_dnd_service(device, *on),
            _ => Err(op("serviceNotSupported")),
        }
    }

    fn make_call_service(
        &mut self,
        calling: &str,
        called: &str,
        prompt: bool,
        now: Instant,
    ) -> Outcome {
        let call = self.make_call(calling, called, prompt, "makeCall", now)?;
        let device = self
            .devices
            .controllable(calling, "invalidCallingDeviceID")?;
        Ok(Response::MakeCall {
            calling: conn(&call, &device),
        })
    }

    fn answer_call(&mut self, call: &ConnectionId, now: Instant) -> Outcome {
        let (call, device) = self.connection(call)?;
        self.expect_state(&call, &device, State::Alerting, "invalidConnectionState")?;
        self.may_answer(&device, &call)?;
        self.answer(&call, &device, now);
        Ok(Response::Empty(Service::AnswerCall))
    }

    fn clear_connection_service(
        &mut self,
        connection: &ConnectionId,
        reason: Option<&Cause>,
    ) -> Outcome {
        let (call, device) = self.connection(connection)?;
        let cause = reason.map_or("normalClearing", Cause::as_str).to_owned();
        self.clear_connection(&call, &device, &cause);
        Ok(Response::Empty(Service::ClearConnection))
    }

    fn clear_call(&mut self, call: &ConnectionId) -> Outcome {
        let id = call.call_id.as_deref().ok_or_else(|| op("invalidCallID"))?;
        let parties: Vec<String> = self
            .calls
            .get(id)
            .ok_or_else(|| op("invalidCallID"))?
            .parties
            .iter()
            .map(|p| p.device.clone())
            .collect();
        for p in parties {
            if self.calls.contains(id) {
                self.clear_connection(id, &p, "normalClearing");
            }
        }
        Ok(Response::Empty(Service::ClearCall))
    }

    fn hold_call(&mut self, call: &ConnectionId) -> Outcome {
        let (call, device) = self.connection(call)?;
        self.expect_state(&call, &device, State::Connected, "invalidConnectionState")?;
        self.hold(&call, &device, "normal");
        Ok(Response::Empty(Service::HoldCall))
    }

    fn retrieve_call(&mut self, call: &ConnectionId) -> Outcome {
        let (call, device) = self.connection(call)?;
        self.expect_state(&call, &device, State::Hold, "noHeldCall")?;
        if self.calls.is_busy(&device) {
            return Err(state_err("connectedCallExists"));
        }
        self.retrieve(&call, &device, "normal");
        Ok(Response::Empty(Service::RetrieveCall))
    }

    fn alternate_call(&mut self, held: &ConnectionId, active: &ConnectionId) -> Outcome {
        let (c1, c2, a) = self.held_and_active(held, active)?;
        self.expect_state(&c1, &a, State::Hold, "noHeldCall")?;
        self.expect_state(&c2, &a, State::Connected, "invalidActiveConnectionState")?;
        self.hold(&c2, &a, "alternate");
        self.retrieve(&c1, &a, "alternate");
        Ok(Response::Empty(Service::AlternateCall))
    }

    fn reconnect_call(&mut self, held: &ConnectionId, active: &ConnectionId) -> Outcome {
        let (c1, c2, a) = self.held_and_active(held, active)?;
        self.expect_state(&c1, &a, State::Hold, "noHeldCall")?;
        self.clear_connection(&c2, &a, "normalClearing");
        self.retrieve(&c1, &a, "normal");
        Ok(Response::Empty(Service::ReconnectCall))
    }

    fn consultation_call(
        &mut self,
        existing: &ConnectionId,
        consulted: &str,
        now: Instant,
    ) -> Outcome {
        let (c1, a) = self.connection(existing)?;
        self.expect_state(&c1, &a, State::Connected, "invalidConnectionState")?;
        let target = self
            .devices
            .destination(consulted, "invalidDestinationDeviceID")?;
        self.hold(&c1, &a, "consultation");
        let c2 = self.calls.new_id(self.config.call_ids);
        let number = strip_decoration(consulted);
        self.calls.insert(Call::new(&c2, &a, number));
        self.initiate(&c2, &a, "consultation");
        self.originate(&c2, &a, number, "consultation");
        self.offer(&c2, target, Offer::fresh("newCall"), now);
        Ok(Response::ConsultationCall {
            initiated: conn(&c2, &a),
        })
    }

    fn deflect_call(
        &mut self,
        call: &ConnectionId,
        new_destination: &str,
        now: Instant,
    ) -> Outcome {
        let (c1, b) = self.connection(call)?;
        self.expect_state(&c1, &b, State::Alerting, "invalidConnectionState")?;
        self.devices
            .destination(new_destination, "invalidDestinationDeviceID")?;
        self.divert_away(&c1, &b, new_destination, "redirected", 0, now);
        Ok(Response::Empty(Service::DeflectCall))
    }

    fn generate_digits(&mut self, connection: &ConnectionId, digits: &str) -> Outcome {
        let (call, device) = self.connection(connection)?;
        self.expect_state(&call, &device, State::Connected, "invalidConnectionState")?;
        let dtmf = |b: u8| b.is_ascii_digit() || b"*#ABCDabcd".contains(&b);
        if digits.is_empty() || !digits.bytes().all(dtmf) {
            return Err(op("invalidParameterValue"));
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.digits.push_str(digits);
        }
        let mut e = call_event(CallEventKind::DigitsGenerated, conn(&call, &device));
        e.digits = Some(digits.to_owned());
        self.notify(&call, e, &[]);
        Ok(Response::Empty(Service::GenerateDigits))
    }
}
