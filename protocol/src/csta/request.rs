//! CSTA requests: the RCC services a Lync client sends, and the link services between a
//! gateway and a PBX.

use super::DecodeError;
use super::values::{
    AutoOriginate, Cause, ConnectionId, ForwardingType, SystemStatusValue, bool_str, parse_bool,
    parse_u32,
};
use super::xml::{Element, XmlWriter};

/// Namespace of Microsoft's RCC private data (`lcs:line`).
pub const LCS_NAMESPACE: &str = "http://schemas.microsoft.com/Lcs/2005/04/RCCExtension";

/// The object a monitor watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorObject {
    /// `deviceObject`
    Device(String),
    /// `callObject`
    Call(ConnectionId),
}

/// A CSTA request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// RequestSystemStatus, with Microsoft's `lcs:line` when a Lync client sends it.
    RequestSystemStatus {
        /// `extensions/privateData/private/lcs:line`
        line: Option<String>,
    },
    /// SystemStatus (either direction).
    SystemStatus {
        /// `sysStatRegisterID`
        register_id: Option<String>,
        /// `systemStatus` (absent is read as `normal`).
        status: SystemStatusValue,
    },
    /// SystemRegister.
    SystemRegister {
        /// `requestTypes/systemStatus`
        system_status: bool,
        /// `requestTypes/requestSystemStatus`
        request_system_status: bool,
    },
    /// SystemRegisterCancel.
    SystemRegisterCancel {
        /// `sysStatRegisterID`
        register_id: String,
    },
    /// GetCSTAFeatures, with `lcs:line` when a Lync client sends it.
    GetCstaFeatures {
        /// `lcs:line`
        line: Option<String>,
    },
    /// MonitorStart.
    MonitorStart {
        /// `monitorObject`
        object: MonitorObject,
        /// `monitorType` (`call` or `device`).
        monitor_type: Option<String>,
    },
    /// MonitorStop.
    MonitorStop {
        /// `monitorCrossRefID`
        cross_ref: String,
    },
    /// SnapshotDevice.
    SnapshotDevice {
        /// `snapshotObject`
        device: String,
    },
    /// MakeCall.
    MakeCall {
        /// `callingDevice`
        calling: String,
        /// `calledDirectoryNumber`
        called: String,
        /// `autoOriginate`
        auto_originate: Option<AutoOriginate>,
    },
    /// AnswerCall.
    AnswerCall {
        /// `callToBeAnswered`
        call: ConnectionId,
    },
    /// ClearConnection.
    ClearConnection {
        /// `connectionToBeCleared`
        connection: ConnectionId,
        /// `reason`
        reason: Option<Cause>,
    },
    /// ClearCall.
    ClearCall {
        /// `callToBeCleared`
        call: ConnectionId,
    },
    /// HoldCall.
    HoldCall {
        /// `callToBeHeld`
        call: ConnectionId,
        /// `connectionReservation`
        reservation: Option<bool>,
    },
    /// RetrieveCall.
    RetrieveCall {
        /// `callToBeRetrieved`
        call: ConnectionId,
    },
    /// AlternateCall: hold `active`, retrieve `held`.
    AlternateCall {
        /// `heldCall`
        held: ConnectionId,
        /// `activeCall`
        active: ConnectionId,
    },
    /// ReconnectCall: clear `active`, retrieve `held`.
    ReconnectCall {
        /// `activeCall`
        active: ConnectionId,
        /// `heldCall`
        held: ConnectionId,
    },
    /// ConsultationCall.
    ConsultationCall {
        /// `existingCall`
        existing: ConnectionId,
        /// `consultedDevice`
        consulted: String,
    },
    /// TransferCall.
    TransferCall {
        /// `heldCall`
        held: ConnectionId,
        /// `activeCall`
        active: ConnectionId,
    },
    /// SingleStepTransferCall.
    SingleStepTransferCall {
        /// `activeCall`
        active: ConnectionId,
        /// `transferredTo`
        transferred_to: String,
    },
    /// DeflectCall (`newDestination` as text, or ed5-style `<newDestination><device>`).
    DeflectCall {
        /// `callToBeDiverted`
        call: ConnectionId,
        /// `newDestination`
        new_destination: String,
    },
    /// ConferenceCall.
    ConferenceCall {
        /// `heldCall`
        held: ConnectionId,
        /// `activeCall`
        active: ConnectionId,
    },
    /// GenerateDigits (DTMF).
    GenerateDigits {
        /// `connectionToSendDigits`
        connection: ConnectionId,
        /// `charactersToSend`
        digits: String,
        /// `toneDuration` in milliseconds.
        tone_duration: Option<u32>,
    },
    /// SetForwarding.
    SetForwarding {
        /// `device`
        device: String,
        /// `forwardingType`
        forwarding_type: ForwardingType,
        /// `activateForward`
        activate: bool,
        /// `forwardDN`
        forward_dn: Option<String>,
        /// `ringCount`
        ring_count: Option<u32>,
    },
    /// GetForwarding.
    GetForwarding {
        /// `device`
        device: String,
    },
    /// SetDoNotDisturb.
    SetDoNotDisturb {
        /// `device`
        device: String,
        /// `doNotDisturbOn`
        on: bool,
    },
}

/// The name of a CSTA service, shared by a request and its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Service {
    RequestSystemStatus,
    SystemStatus,
    SystemRegister,
    SystemRegisterCancel,
    GetCstaFeatures,
    MonitorStart,
    MonitorStop,
    SnapshotDevice,
    MakeCall,
    AnswerCall,
    ClearConnection,
    ClearCall,
    HoldCall,
    RetrieveCall,
    AlternateCall,
    ReconnectCall,
    ConsultationCall,
    TransferCall,
    SingleStepTransferCall,
    DeflectCall,
    ConferenceCall,
    GenerateDigits,
    SetForwarding,
    GetForwarding,
    SetDoNotDisturb,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 25] = [
        Service::RequestSystemStatus,
        Service::SystemStatus,
        Service::SystemRegister,
        Service::SystemRegisterCancel,
        Service::GetCstaFeatures,
        Service::MonitorStart,
        Service::MonitorStop,
        Service::SnapshotDevice,
        Service::MakeCall,
        Service::AnswerCall,
        Service::ClearConnection,
        Service::ClearCall,
        Service::HoldCall,
        Service::RetrieveCall,
        Service::AlternateCall,
        Service::ReconnectCall,
        Service::ConsultationCall,
        Service::TransferCall,
        Service::SingleStepTransferCall,
        Service::DeflectCall,
        Service::ConferenceCall,
        Service::GenerateDigits,
        Service::SetForwarding,
        Service::GetForwarding,
        Service::SetDoNotDisturb,
    ];

    /// The request's root element name.
    pub fn request_name(self) -> &'static str {
        match self {
            Service::RequestSystemStatus => "RequestSystemStatus",
            Service::SystemStatus => "SystemStatus",
            Service::SystemRegister => "SystemRegister",
            Service::SystemRegisterCancel => "SystemRegisterCancel",
            Service::GetCstaFeatures => "GetCSTAFeatures",
            Service::MonitorStart => "MonitorStart",
            Service::MonitorStop => "MonitorStop",
            Service::SnapshotDevice => "SnapshotDevice",
            Service::MakeCall => "MakeCall",
            Service::AnswerCall => "AnswerCall",
            Service::ClearConnection => "ClearConnection",
            Service::ClearCall => "ClearCall",
            Service::HoldCall => "HoldCall",
            Service::RetrieveCall => "RetrieveCall",
            Service::AlternateCall => "AlternateCall",
            Service::ReconnectCall => "ReconnectCall",
            Service::ConsultationCall => "ConsultationCall",
            Service::TransferCall => "TransferCall",
            Service::SingleStepTransferCall => "SingleStepTransferCall",
            Service::DeflectCall => "DeflectCall",
            Service::ConferenceCall => "ConferenceCall",
            Service::GenerateDigits => "GenerateDigits",
            Service::SetForwarding => "SetForwarding",
            Service::GetForwarding => "GetForwarding",
            Service::SetDoNotDisturb => "SetDoNotDisturb",
        }
    }

    /// The positive response's root element name.
    pub fn response_name(self) -> String {
        format!("{}Response", self.request_name())
    }

    /// The service whose request root is `name` (compared without ASCII case).
    pub fn from_request_name(name: &str) -> Option<Service> {
        Service::ALL
            .into_iter()
            .find(|s| s.request_name().eq_ignore_ascii_case(name))
    }
}

fn conn(el: Element<'_>, name: &'static str) -> Result<ConnectionId, DecodeError> {
    el.required(name).map(ConnectionId::decode)
}

fn text(el: Element<'_>, name: &'static str) -> Result<String, DecodeError> {
    el.required_text(name).map(str::to_owned)
}

fn lcs_line(el: Element<'_>) -> Option<String> {
    el.child("extensions")
        .and_then(|x| x.find("line"))
        .map(|l| l.text().to_string())
}

impl Request {
    /// The service this request invokes.
    pub fn service(&self) -> Service {
        match self {
            Request::RequestSystemStatus { .. } => Service::RequestSystemStatus,
            Request::SystemStatus { .. } => Service::SystemStatus,
            Request::SystemRegister { .. } => Service::SystemRegister,
            Request::SystemRegisterCancel { .. } => Service::SystemRegisterCancel,
            Request::GetCstaFeatures { .. } => Service::GetCstaFeatures,
            Request::MonitorStart { .. } => Service::MonitorStart,
            Request::MonitorStop { .. } => Service::MonitorStop,
            Request::SnapshotDevice { .. } => Service::SnapshotDevice,
            Request::MakeCall { .. } => Service::MakeCall,
            Request::AnswerCall { .. } => Service::AnswerCall,
            Request::ClearConnection { .. } => Service::ClearConnection,
            Request::ClearCall { .. } => Service::ClearCall,
            Request::HoldCall { .. } => Service::HoldCall,
            Request::RetrieveCall { .. } => Service::RetrieveCall,
            Request::AlternateCall { .. } => Service::AlternateCall,
            Request::ReconnectCall { .. } => Service::ReconnectCall,
            Request::ConsultationCall { .. } => Service::ConsultationCall,
            Request::TransferCall { .. } => Service::TransferCall,
            Request::SingleStepTransferCall { .. } => Service::SingleStepTransferCall,
            Request::DeflectCall { .. } => Service::DeflectCall,
            Request::ConferenceCall { .. } => Service::ConferenceCall,
            Request::GenerateDigits { .. } => Service::GenerateDigits,
            Request::SetForwarding { .. } => Service::SetForwarding,
            Request::GetForwarding { .. } => Service::GetForwarding,
            Request::SetDoNotDisturb { .. } => Service::SetDoNotDisturb,
        }
    }

    pub(crate) fn decode(service: Service, el: Element<'_>) -> Result<Request, DecodeError> {
        Ok(match service {
            Service::RequestSystemStatus => Request::RequestSystemStatus { line: lcs_line(el) },
            Service::SystemStatus => Request::SystemStatus {
                register_id: el.child_text("sysStatRegisterID").map(str::to_owned),
                status: el
                    .child_text("systemStatus")
                    .map_or(SystemStatusValue::Normal, SystemStatusValue::parse),
            },
            Service::SystemRegister => {
                let types = el.child("requestTypes");
                let flag = |name| {
                    types
                        .and_then(|t| t.child(name))
                        .map(parse_bool)
                        .transpose()
                };
                Request::SystemRegister {
                    system_status: flag("systemStatus")?.unwrap_or(false),
                    request_system_status: flag("requestSystemStatus")?.unwrap_or(false),
                }
            }
            Service::SystemRegisterCancel => Request::SystemRegisterCancel {
                register_id: text(el, "sysStatRegisterID")?,
            },
            Service::GetCstaFeatures => Request::GetCstaFeatures { line: lcs_line(el) },
            Service::MonitorStart => {
                let obj = el.required("monitorObject")?;
                let object = if let Some(d) = obj.child("deviceObject") {
                    MonitorObject::Device(d.text().to_string())
                } else if let Some(c) = obj.child("callObject") {
                    MonitorObject::Call(ConnectionId::decode(c))
                } else {
                    return Err(obj.missing("deviceObject"));
                };
                Request::MonitorStart {
                    object,
                    monitor_type: el.child_text("monitorType").map(str::to_owned),
                }
            }
            Service::MonitorStop => Request::MonitorStop {
                cross_ref: text(el, "monitorCrossRefID")?,
            },
            Service::SnapshotDevice => Request::SnapshotDevice {
                device: text(el, "snapshotObject")?,
            },
            Service::MakeCall => Request::MakeCall {
                calling: text(el, "callingDevice")?,
                called: text(el, "calledDirectoryNumber")?,
                auto_originate: el.child_text("autoOriginate").map(AutoOriginate::parse),
            },
            Service::AnswerCall => Request::AnswerCall {
                call: conn(el, "callToBeAnswered")?,
            },
            Service::ClearConnection => Request::ClearConnection {
                connection: conn(el, "connectionToBeCleared")?,
                reason: el.child_text("reason").map(Cause::new),
            },
            Service::ClearCall => Request::ClearCall {
                call: conn(el, "callToBeCleared")?,
            },
            Service::HoldCall => Request::HoldCall {
                call: conn(el, "callToBeHeld")?,
                reservation: el
                    .child("connectionReservation")
                    .map(parse_bool)
                    .transpose()?,
            },
            Service::RetrieveCall => Request::RetrieveCall {
                call: conn(el, "callToBeRetrieved")?,
            },
            Service::AlternateCall => Request::AlternateCall {
                held: conn(el, "heldCall")?,
                active: conn(el, "activeCall")?,
            },
            Service::ReconnectCall => Request::ReconnectCall {
                active: conn(el, "activeCall")?,
                held: conn(el, "heldCall")?,
            },
            Service::ConsultationCall => Request::ConsultationCall {
                existing: conn(el, "existingCall")?,
                consulted: text(el, "consultedDevice")?,
            },
            Service::TransferCall => Request::TransferCall {
                held: conn(el, "heldCall")?,
                active: conn(el, "activeCall")?,
            },
            Service::SingleStepTransferCall => Request::SingleStepTransferCall {
                active: conn(el, "activeCall")?,
                transferred_to: text(el, "transferredTo")?,
            },
            Service::DeflectCall => {
                let dest = el.required("newDestination")?;
                let new_destination = match dest.child("device").or_else(|| dest.child("deviceID"))
                {
                    Some(d) => d.text().to_string(),
                    None => dest.text().to_string(),
                };
                Request::DeflectCall {
                    call: conn(el, "callToBeDiverted")?,
                    new_destination,
                }
            }
            Service::ConferenceCall => Request::ConferenceCall {
                held: conn(el, "heldCall")?,
                active: conn(el, "activeCall")?,
            },
            Service::GenerateDigits => Request::GenerateDigits {
                connection: conn(el, "connectionToSendDigits")?,
                digits: text(el, "charactersToSend")?,
                tone_duration: el.child("toneDuration").map(parse_u32).transpose()?,
            },
            Service::SetForwarding => Request::SetForwarding {
                device: text(el, "device")?,
                forwarding_type: ForwardingType::parse(el.required_text("forwardingType")?),
                activate: parse_bool(el.required("activateForward")?)?,
                forward_dn: el.child_text("forwardDN").map(str::to_owned),
                ring_count: el.child("ringCount").map(parse_u32).transpose()?,
            },
            Service::GetForwarding => Request::GetForwarding {
                device: text(el, "device")?,
            },
            Service::SetDoNotDisturb => Request::SetDoNotDisturb {
                device: text(el, "device")?,
                on: parse_bool(el.required("doNotDisturbOn")?)?,
            },
        })
    }

    pub(crate) fn encode(&self, w: &mut XmlWriter) {
        match self {
            Request::RequestSystemStatus { line } | Request::GetCstaFeatures { line } => {
                if let Some(line) = line {
                    w.open("extensions").open("privateData").open("private");
                    w.raw(&format!(r#"<lcs:line xmlns:lcs="{LCS_NAMESPACE}">"#));
                    w.text(line);
                    w.raw("</lcs:line>");
                    w.close("private").close("privateData").close("extensions");
                }
            }
            Request::SystemStatus {
                register_id,
                status,
            } => {
                w.opt_leaf("sysStatRegisterID", register_id.as_deref())
                    .leaf("systemStatus", status.as_str());
            }
            Request::SystemRegister {
                system_status,
                request_system_status,
            } => {
                w.open("requestTypes")
                    .leaf("systemStatus", bool_str(*system_status))
                    .leaf("requestSystemStatus", bool_str(*request_system_status))
                    .close("requestTypes");
            }
            Request::SystemRegisterCancel { register_id } => {
                w.leaf("sysStatRegisterID", register_id);
            }
            Request::MonitorStart {
                object,
                monitor_type,
            } => {
                w.open("monitorObject");
                match object {
                    MonitorObject::Device(d) => {
                        w.leaf("deviceObject", d);
                    }
                    MonitorObject::Call(c) => c.encode(w, "callObject"),
                }
                w.close("monitorObject")
                    .opt_leaf("monitorType", monitor_type.as_deref());
            }
            Request::MonitorStop { cross_ref } => {
                w.leaf("monitorCrossRefID", cross_ref);
            }
            Request::SnapshotDevice { device } => {
                w.leaf("snapshotObject", device);
            }
            Request::MakeCall {
                calling,
                called,
                auto_originate,
            } => {
                w.leaf("callingDevice", calling)
                    .leaf("calledDirectoryNumber", called)
                    .opt_leaf("autoOriginate", auto_originate.as_ref().map(|a| a.as_str()));
            }
            Request::AnswerCall { call } => call.encode(w, "callToBeAnswered"),
            Request::ClearConnection { connection, reason } => {
                connection.encode(w, "connectionToBeCleared");
                w.opt_leaf("reason", reason.as_ref().map(Cause::as_str));
            }
            Request::ClearCall { call } => call.encode(w, "callToBeCleared"),
            Request::HoldCall { call, reservation } => {
                call.encode(w, "callToBeHeld");
                w.opt_leaf("connectionReservation", reservation.map(bool_str));
            }
            Request::RetrieveCall { call } => call.encode(w, "callToBeRetrieved"),
            Request::AlternateCall { held, active }
            | Request::TransferCall { held, active }
            | Request::ConferenceCall { held, active } => {
                held.encode(w, "heldCall");
                active.encode(w, "activeCall");
            }
            Request::ReconnectCall { active, held } => {
                active.encode(w, "activeCall");
                held.encode(w, "heldCall");
            }
            Request::ConsultationCall {
                existing,
                consulted,
            } => {
                existing.encode(w, "existingCall");
                w.leaf("consultedDevice", consulted);
            }
            Request::SingleStepTransferCall {
                active,
                transferred_to,
            } => {
                active.encode(w, "activeCall");
                w.leaf("transferredTo", transferred_to);
            }
            Request::DeflectCall {
                call,
                new_destination,
            } => {
                call.encode(w, "callToBeDiverted");
                w.leaf("newDestination", new_destination);
            }
            Request::GenerateDigits {
                connection,
                digits,
                tone_duration,
            } => {
                connection.encode(w, "connectionToSendDigits");
                w.leaf("charactersToSend", digits).opt_leaf(
                    "toneDuration",
                    tone_duration.map(|d| d.to_string()).as_deref(),
                );
            }
            Request::SetForwarding {
                device,
                forwarding_type,
                activate,
                forward_dn,
                ring_count,
            } => {
                w.leaf("device", device)
                    .leaf("forwardingType", forwarding_type.as_str())
                    .leaf("activateForward", bool_str(*activate))
                    .opt_leaf("forwardDN", forward_dn.as_deref())
                    .opt_leaf("ringCount", ring_count.map(|c| c.to_string()).as_deref());
            }
            Request::GetForwarding { device } => {
                w.leaf("device", device);
            }
            Request::SetDoNotDisturb { device, on } => {
                w.leaf("device", device)
                    .leaf("doNotDisturbOn", bool_str(*on));
            }
        }
    }
}
