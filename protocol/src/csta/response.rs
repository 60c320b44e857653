//! Positive responses to CSTA requests.

use super::DecodeError;
use super::request::Service;
use super::values::{
    ConnectionId, ConnectionListItem, ForwardingType, LocalConnectionState, SystemStatusValue,
    bool_str, parse_bool, parse_u32,
};
use super::xml::{Element, XmlWriter};

/// A capability advertised in GetCSTAFeaturesResponse: the list it belongs to and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The list element (`callControlServList`, `callControlEvtsList`, ...).
    pub list: String,
    /// The capability (`makeCall`, `delivered`, ...).
    pub name: String,
}

impl Feature {
    /// A feature in a list.
    pub fn new(list: &str, name: &str) -> Self {
        Feature {
            list: list.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// One call at a device in a SnapshotDeviceResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCall {
    /// `connectionIdentifier`
    pub connection: ConnectionId,
    /// `localCallState/compoundCallState`: the device's own state first, then the others'.
    pub states: Vec<LocalConnectionState>,
}

/// One entry of a GetForwardingResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardItem {
    /// `forwardingType`
    pub forwarding_type: ForwardingType,
    /// `forwardStatus`
    pub status: bool,
    /// `forwardDN`
    pub forward_dn: Option<String>,
    /// `ringCount`
    pub ring_count: Option<u32>,
}

/// A positive response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A response without content (`<AnswerCallResponse/>` and the like).
    Empty(Service),
    /// RequestSystemStatusResponse.
    RequestSystemStatus {
        /// `systemStatus`
        status: SystemStatusValue,
    },
    /// SystemRegisterResponse.
    SystemRegister {
        /// `sysStatRegisterID`
        register_id: String,
    },
    /// GetCSTAFeaturesResponse.
    GetCstaFeatures {
        /// `supportedServices` entries.
        services: Vec<Feature>,
        /// `supportedEvents` entries.
        events: Vec<Feature>,
    },
    /// MonitorStartResponse.
    MonitorStart {
        /// `monitorCrossRefID`
        cross_ref: String,
        /// `monitorExistingCalls`
        existing_calls: Option<bool>,
    },
    /// SnapshotDeviceResponse.
    SnapshotDevice {
        /// The calls at the device.
        calls: Vec<SnapshotCall>,
    },
    /// MakeCallResponse.
    MakeCall {
        /// `callingDevice`: the calling device's connection in the new call.
        calling: ConnectionId,
    },
    /// ConsultationCallResponse.
    ConsultationCall {
        /// `initiatedCall`
        initiated: ConnectionId,
    },
    /// TransferCallResponse.
    TransferCall {
        /// `transferredCall`
        transferred: Option<ConnectionId>,
        /// `connections`
        connections: Vec<ConnectionListItem>,
    },
    /// SingleStepTransferCallResponse.
    SingleStepTransferCall {
        /// `transferredCall`
        transferred: Option<ConnectionId>,
        /// `connections`
        connections: Vec<ConnectionListItem>,
    },
    /// ConferenceCallResponse.
    ConferenceCall {
        /// `conferenceCall`
        conference: Option<ConnectionId>,
        /// `connections`
        connections: Vec<ConnectionListItem>,
    },
    /// GetForwardingResponse.
    GetForwarding {
        /// `forwardingList`
        items: Vec<ForwardItem>,
    },
}

impl Response {
    /// The service this responds to.
    pub fn service(&self) -> Service {
        match self {
            Response::Empty(s) => *s,
            Response::RequestSystemStatus { .. } => Service::RequestSystemStatus,
            Response::SystemRegister { .. } => Service::SystemRegister,
            Response::GetCstaFeatures { .. } => Service::GetCstaFeatures,
            Response::MonitorStart { .. } => Service::MonitorStart,
            Response::SnapshotDevice { .. } => Service::SnapshotDevice,
            Response::MakeCall { .. } => Service::MakeCall,
            Response::ConsultationCall { .. } => Service::ConsultationCall,
            Response::TransferCall { .. } => Service::TransferCall,
            Response::SingleStepTransferCall { .. } => Service::SingleStepTransferCall,
            Response::ConferenceCall { .. } => Service::ConferenceCall,
            Response::GetForwarding { .. } => Service::GetForwarding,
        }
    }

    pub(crate) fn decode(service: Service, el: Element<'_>) -> Result<Response, DecodeError> {
        let connections = |el: Element<'_>| {
            el.child("connections")
                .map(ConnectionListItem::decode_list)
                .unwrap_or_default()
        };
        Ok(match service {
            Service::RequestSystemStatus => Response::RequestSystemStatus {
                status: SystemStatusValue::parse(el.required_text("systemStatus")?),
            },
            Service::SystemRegister => Response::SystemRegister {
                register_id: el.required_text("sysStatRegisterID")?.to_owned(),
            },
            Service::GetCstaFeatures => Response::GetCstaFeatures {
                services: features(el.child("supportedServices")),
                events: features(el.child("supportedEvents")),
            },
            Service::MonitorStart => Response::MonitorStart {
                cross_ref: el.required_text("monitorCrossRefID")?.to_owned(),
                existing_calls: el
                    .child("monitorExistingCalls")
                    .map(parse_bool)
                    .transpose()?,
            },
            Service::SnapshotDevice => Response::SnapshotDevice {
                calls: el
                    .find("snapshotData")
                    .map(|d| {
                        d.children_named("snapshotDeviceResponseInfo")
                            .map(|info| SnapshotCall {
                                connection: info
                                    .child("connectionIdentifier")
                                    .map(ConnectionId::decode)
                                    .unwrap_or_default(),
                                states: info
                                    .child("localCallState")
                                    .map(|s| {
                                        let compound = s.child("compoundCallState").unwrap_or(s);
                                        compound
                                            .children_named("localConnectionState")
                                            .map(|c| LocalConnectionState::parse(c.text()))
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            Service::MakeCall => Response::MakeCall {
                calling: ConnectionId::decode(el.required("callingDevice")?),
            },
            Service::ConsultationCall => Response::ConsultationCall {
                initiated: ConnectionId::decode(el.required("initiatedCall")?),
            },
            Service::TransferCall => Response::TransferCall {
                transferred: el.child("transferredCall").map(ConnectionId::decode),
                connections: connections(el),
            },
            Service::SingleStepTransferCall => Response::SingleStepTransferCall {
                transferred: el.child("transferredCall").map(ConnectionId::decode),
                connections: connections(el),
            },
            Service::ConferenceCall => Response::ConferenceCall {
                conference: el.child("conferenceCall").map(ConnectionId::decode),
                connections: connections(el),
            },
            Service::GetForwarding => Response::GetForwarding {
                items: el
                    .child("forwardingList")
                    .map(|l| {
                        l.children_named("forwardListItem")
                            .map(|i| {
                                Ok(ForwardItem {
                                    forwarding_type: ForwardingType::parse(
                                        i.required_text("forwardingType")?,
                                    ),
                                    status: parse_bool(i.required("forwardStatus")?)?,
                                    forward_dn: i.child_text("forwardDN").map(str::to_owned),
                                    ring_count: i.child("ringCount").map(parse_u32).transpose()?,
                                })
                            })
                            .collect::<Result<Vec<_>, DecodeError>>()
                    })
                    .transpose()?
                    .unwrap_or_default(),
            },
            other => Response::Empty(other),
        })
    }

    pub(crate) fn encode(&self, w: &mut XmlWriter) {
        match self {
            Response::Empty(_) => {}
            Response::RequestSystemStatus { status } => {
                w.leaf("systemStatus", status.as_str());
            }
            Response::SystemRegister { register_id } => {
                w.leaf("sysStatRegisterID", register_id);
            }
            Response::GetCstaFeatures { services, events } => {
                write_features(w, "supportedServices", services);
                write_features(w, "supportedEvents", events);
            }
            Response::MonitorStart {
                cross_ref,
                existing_calls,
            } => {
                w.leaf("monitorCrossRefID", cross_ref)
                    .opt_leaf("monitorExistingCalls", existing_calls.map(bool_str));
            }
            Response::SnapshotDevice { calls } => {
                w.open("crossRefIDorSnapshotData").open("snapshotData");
                for call in calls {
                    w.open("snapshotDeviceResponseInfo");
                    call.connection.encode(w, "connectionIdentifier");
                    w.open("localCallState").open("compoundCallState");
                    for s in &call.states {
                        w.leaf("localConnectionState", s.as_str());
                    }
                    w.close("compoundCallState").close("localCallState");
                    w.close("snapshotDeviceResponseInfo");
                }
                w.close("snapshotData").close("crossRefIDorSnapshotData");
            }
            Response::MakeCall { calling } => calling.encode(w, "callingDevice"),
            Response::ConsultationCall { initiated } => initiated.encode(w, "initiatedCall"),
            Response::TransferCall {
                transferred,
                connections,
            }
            | Response::SingleStepTransferCall {
                transferred,
                connections,
            } => {
                if let Some(t) = transferred {
                    t.encode(w, "transferredCall");
                }
                if !connections.is_empty() {
                    ConnectionListItem::encode_list(connections, w, "connections");
                }
            }
            Response::ConferenceCall {
                conference,
                connections,
            } => {
                if let Some(c) = conference {
                    c.encode(w, "conferenceCall");
                }
                if !connections.is_empty() {
                    ConnectionListItem::encode_list(connections, w, "connections");
                }
            }
            Response::GetForwarding { items } => {
                w.open("forwardingList");
                for i in items {
                    w.open("forwardListItem")
                        .leaf("forwardingType", i.forwarding_type.as_str())
                        .leaf("forwardStatus", bool_str(i.status))
                        .opt_leaf("forwardDN", i.forward_dn.as_deref())
                        .opt_leaf("ringCount", i.ring_count.map(|c| c.to_string()).as_deref())
                        .close("forwardListItem");
                }
                w.close("forwardingList");
            }
        }
    }
}

fn features(el: Option<Element<'_>>) -> Vec<Feature> {
    let Some(el) = el else { return Vec::new() };
    el.children()
        .flat_map(|list| {
            list.children()
                .map(move |f| Feature::new(list.name(), f.name()))
        })
        .collect()
}

fn write_features(w: &mut XmlWriter, name: &str, features: &[Feature]) {
    if features.is_empty() {
        return;
    }
    w.open(name);
    let mut i = 0;
    while i < features.len() {
        let list = &features[i].list;
        let valid = super::xml::is_ncname(list);
        if valid {
            w.open(list);
        }
        while i < features.len() && features[i].list == *list {
            // Names a peer sent that are no element names are left out.
            if valid && super::xml::is_ncname(&features[i].name) {
                w.empty(&features[i].name);
            }
            i += 1;
        }
        if valid {
            w.close(list);
        }
    }
    w.close(name);
}
