//! CSTA events. Call-control events share one shape ([`CallEvent`]) whose children are named
//! per event by a schema table in ECMA-323 order; device-feature events have their own types.

use super::DecodeError;
use super::values::{
    Cause, ConnectionId, ConnectionListItem, DeviceRef, ForwardingType, LocalConnectionState,
    bool_str, parse_bool, parse_u32,
};
use super::xml::{Element, XmlWriter};

/// The call-control events of the RCC call model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallEventKind {
    /// ServiceInitiatedEvent
    ServiceInitiated,
    /// OriginatedEvent
    Originated,
    /// DeliveredEvent
    Delivered,
    /// EstablishedEvent
    Established,
    /// ConnectionClearedEvent
    ConnectionCleared,
    /// CallClearedEvent
    CallCleared,
    /// HeldEvent
    Held,
    /// RetrievedEvent
    Retrieved,
    /// DivertedEvent
    Diverted,
    /// TransferedEvent (schema spelling; `TransferredEvent` accepted)
    Transferred,
    /// ConferencedEvent
    Conferenced,
    /// FailedEvent
    Failed,
    /// QueuedEvent
    Queued,
    /// DigitsGeneratedEvent
    DigitsGenerated,
}

/// What a child element of a call event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Connection,
    SecondaryOldCall,
    Subject,
    Calling,
    Called,
    LastRedirection,
    Target,
    Connections,
    Digits,
    LocalState,
    EventCause,
}

use Role::*;

impl CallEventKind {
    /// Every kind.
    pub const ALL: [CallEventKind; 14] = [
        CallEventKind::ServiceInitiated,
        CallEventKind::Originated,
        CallEventKind::Delivered,
        CallEventKind::Established,
        CallEventKind::ConnectionCleared,
        CallEventKind::CallCleared,
        CallEventKind::Held,
        CallEventKind::Retrieved,
        CallEventKind::Diverted,
        CallEventKind::Transferred,
        CallEventKind::Conferenced,
        CallEventKind::Failed,
        CallEventKind::Queued,
        CallEventKind::DigitsGenerated,
    ];

    /// The root element name as emitted.
    pub fn root_name(self) -> &'static str {
        match self {
            CallEventKind::ServiceInitiated => "ServiceInitiatedEvent",
            CallEventKind::Originated => "OriginatedEvent",
            CallEventKind::Delivered => "DeliveredEvent",
            CallEventKind::Established => "EstablishedEvent",
            CallEventKind::ConnectionCleared => "ConnectionClearedEvent",
            CallEventKind::CallCleared => "CallClearedEvent",
            CallEventKind::Held => "HeldEvent",
            CallEventKind::Retrieved => "RetrievedEvent",
            CallEventKind::Diverted => "DivertedEvent",
            CallEventKind::Transferred => "TransferedEvent",
            CallEventKind::Conferenced => "ConferencedEvent",
            CallEventKind::Failed => "FailedEvent",
            CallEventKind::Queued => "QueuedEvent",
            CallEventKind::DigitsGenerated => "DigitsGeneratedEvent",
        }
    }

    /// The kind of a root element name (either transfer spelling; ASCII case ignored).
    pub fn from_root_name(name: &str) -> Option<CallEventKind> {
        if name.eq_ignore_ascii_case("TransferredEvent") {
            return Some(CallEventKind::Transferred);
        }
        CallEventKind::ALL
            .into_iter()
            .find(|k| k.root_name().eq_ignore_ascii_case(name))
    }

    /// Children after `monitorCrossRefID`, in schema order, with what each carries.
    fn schema(self) -> &'static [(&'static str, Role)] {
        match self {
            CallEventKind::ServiceInitiated => &[
                ("initiatedConnection", Connection),
                ("initiatingDevice", Subject),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::Originated => &[
                ("originatedConnection", Connection),
                ("callingDevice", Calling),
                ("calledDevice", Called),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::Delivered => &[
                ("connection", Connection),
                ("alertingDevice", Subject),
                ("callingDevice", Calling),
                ("calledDevice", Called),
                ("lastRedirectionDevice", LastRedirection),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::Established => &[
                ("establishedConnection", Connection),
                ("answeringDevice", Subject),
                ("callingDevice", Calling),
                ("calledDevice", Called),
                ("lastRedirectionDevice", LastRedirection),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::ConnectionCleared => &[
                ("droppedConnection", Connection),
                ("releasingDevice", Subject),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::CallCleared => &[("clearedCall", Connection), ("cause", EventCause)],
            CallEventKind::Held => &[
                ("heldConnection", Connection),
                ("holdingDevice", Subject),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::Retrieved => &[
                ("retrievedConnection", Connection),
                ("retrievingDevice", Subject),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::Diverted => &[
                ("connection", Connection),
                ("divertingDevice", Subject),
                ("newDestination", Target),
                ("callingDevice", Calling),
                ("calledDevice", Called),
                ("lastRedirectionDevice", LastRedirection),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::Transferred => &[
                ("primaryOldCall", Connection),
                ("secondaryOldCall", SecondaryOldCall),
                ("transferringDevice", Subject),
                ("transferredToDevice", Target),
                ("transferredConnections", Connections),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::Conferenced => &[
                ("primaryOldCall", Connection),
                ("secondaryOldCall", SecondaryOldCall),
                ("conferencingDevice", Subject),
                ("addedParty", Target),
                ("conferenceConnections", Connections),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::Failed => &[
                ("failedConnection", Connection),
                ("failingDevice", Subject),
                ("callingDevice", Calling),
                ("calledDevice", Called),
                ("lastRedirectionDevice", LastRedirection),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::Queued => &[
                ("queuedConnection", Connection),
                ("queue", Subject),
                ("callingDevice", Calling),
                ("calledDevice", Called),
                ("lastRedirectionDevice", LastRedirection),
                ("localConnectionInfo", LocalState),
                ("cause", EventCause),
            ],
            CallEventKind::DigitsGenerated => {
                &[("connection", Connection), ("digitGeneratedList", Digits)]
            }
        }
    }
}

/// A call-control event. Which fields a kind uses is fixed by its schema; the others stay empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEvent {
    /// Which event.
    pub kind: CallEventKind,
    /// `monitorCrossRefID`
    pub cross_ref: String,
    /// The event's connection (`connection`, `establishedConnection`, ..., or `primaryOldCall`).
    pub connection: Option<ConnectionId>,
    /// `secondaryOldCall` (Transfered, Conferenced).
    pub secondary_old_call: Option<ConnectionId>,
    /// The device the event is about (`alertingDevice`, `answeringDevice`, `holdingDevice`, ...).
    pub subject: Option<DeviceRef>,
    /// `callingDevice`
    pub calling: Option<DeviceRef>,
    /// `calledDevice`
    pub called: Option<DeviceRef>,
    /// `lastRedirectionDevice`
    pub last_redirection: Option<DeviceRef>,
    /// `newDestination`, `transferredToDevice` or `addedParty`.
    pub target: Option<DeviceRef>,
    /// `transferredConnections` or `conferenceConnections`.
    pub connections: Vec<ConnectionListItem>,
    /// `digitGeneratedList` (DigitsGenerated).
    pub digits: Option<String>,
    /// `localConnectionInfo`
    pub local_state: Option<LocalConnectionState>,
    /// `cause`
    pub cause: Option<Cause>,
}

impl CallEvent {
    /// An event of `kind` with only its cross-reference set.
    pub fn new(kind: CallEventKind, cross_ref: impl Into<String>) -> Self {
        CallEvent {
            kind,
            cross_ref: cross_ref.into(),
            connection: None,
            secondary_old_call: None,
            subject: None,
            calling: None,
            called: None,
            last_redirection: None,
            target: None,
            connections: Vec::new(),
            digits: None,
            local_state: None,
            cause: None,
        }
    }

    /// Every device identifier the event carries, for rewriting (device-ID mapping).
    pub fn device_ids_mut(&mut self) -> Vec<&mut String> {
        let mut ids: Vec<&mut String> = Vec::new();
        for c in self
            .connection
            .iter_mut()
            .chain(self.secondary_old_call.iter_mut())
        {
            ids.extend(c.device_id.as_mut());
        }
        for item in &mut self.connections {
            for c in item
                .new_connection
                .iter_mut()
                .chain(item.old_connection.iter_mut())
            {
                ids.extend(c.device_id.as_mut());
            }
            ids.extend(item.endpoint.as_mut());
        }
        for d in [
            &mut self.subject,
            &mut self.calling,
            &mut self.called,
            &mut self.last_redirection,
            &mut self.target,
        ] {
            if let Some(DeviceRef::Id(s)) = d {
                ids.push(s);
            }
        }
        ids
    }

    fn decode(kind: CallEventKind, el: Element<'_>) -> Result<CallEvent, DecodeError> {
        let mut ev = CallEvent::new(kind, el.required_text("monitorCrossRefID")?);
        for (name, role) in kind.schema() {
            let Some(child) = el.child(name) else {
                continue;
            };
            match role {
                Connection => ev.connection = Some(ConnectionId::decode(child)),
                SecondaryOldCall => ev.secondary_old_call = Some(ConnectionId::decode(child)),
                Subject => ev.subject = Some(DeviceRef::decode(child)),
                Calling => ev.calling = Some(DeviceRef::decode(child)),
                Called => ev.called = Some(DeviceRef::decode(child)),
                LastRedirection => ev.last_redirection = Some(DeviceRef::decode(child)),
                Target => ev.target = Some(DeviceRef::decode(child)),
                Connections => ev.connections = ConnectionListItem::decode_list(child),
                Digits => ev.digits = Some(child.text().to_string()),
                LocalState => ev.local_state = Some(LocalConnectionState::parse(child.text())),
                EventCause => ev.cause = Some(Cause::new(child.text())),
            }
        }
        Ok(ev)
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.leaf("monitorCrossRefID", &self.cross_ref);
        for (name, role) in self.kind.schema() {
            match role {
                Connection => {
                    if let Some(c) = &self.connection {
                        c.encode(w, name);
                    }
                }
                SecondaryOldCall => {
                    if let Some(c) = &self.secondary_old_call {
                        c.encode(w, name);
                    }
                }
                Subject | Calling | Called | LastRedirection | Target => {
                    let d = match role {
                        Subject => &self.subject,
                        Calling => &self.calling,
                        Called => &self.called,
                        LastRedirection => &self.last_redirection,
                        _ => &self.target,
                    };
                    if let Some(d) = d {
                        d.encode(w, name);
                    }
                }
                Connections => ConnectionListItem::encode_list(&self.connections, w, name),
                Digits => {
                    w.opt_leaf(name, self.digits.as_deref());
                }
                LocalState => {
                    w.opt_leaf(name, self.local_state.as_ref().map(|s| s.as_str()));
                }
                EventCause => {
                    w.opt_leaf(name, self.cause.as_ref().map(|c| c.as_str()));
                }
            }
        }
    }
}

/// ForwardingEvent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingEvent {
    /// `monitorCrossRefID`
    pub cross_ref: String,
    /// `device`
    pub device: DeviceRef,
    /// `forwardingType`
    pub forwarding_type: ForwardingType,
    /// `forwardStatus`
    pub status: bool,
    /// `forwardTo`
    pub forward_to: Option<String>,
    /// `ringCount`
    pub ring_count: Option<u32>,
}

/// DoNotDisturbEvent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoNotDisturbEvent {
    /// `monitorCrossRefID`
    pub cross_ref: String,
    /// `device`
    pub device: DeviceRef,
    /// `doNotDisturbOn`
    pub on: bool,
}

/// An event.
// Events are decoded, routed and dropped; boxing the common variant would add an allocation
// per event on the hot path for no saving.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A call-control or call-associated event.
    Call(CallEvent),
    /// ForwardingEvent.
    Forwarding(ForwardingEvent),
    /// DoNotDisturbEvent.
    DoNotDisturb(DoNotDisturbEvent),
}

impl Event {
    /// The root element name as emitted.
    pub fn root_name(&self) -> &'static str {
        match self {
            Event::Call(c) => c.kind.root_name(),
            Event::Forwarding(_) => "ForwardingEvent",
            Event::DoNotDisturb(_) => "DoNotDisturbEvent",
        }
    }

    /// `monitorCrossRefID`
    pub fn cross_ref(&self) -> &str {
        match self {
            Event::Call(c) => &c.cross_ref,
            Event::Forwarding(f) => &f.cross_ref,
            Event::DoNotDisturb(d) => &d.cross_ref,
        }
    }

    /// Replaces `monitorCrossRefID` (fan-out to several monitors).
    pub fn set_cross_ref(&mut self, xref: &str) {
        let slot = match self {
            Event::Call(c) => &mut c.cross_ref,
            Event::Forwarding(f) => &mut f.cross_ref,
            Event::DoNotDisturb(d) => &mut d.cross_ref,
        };
        xref.clone_into(slot);
    }

    pub(crate) fn decode(root: &str, el: Element<'_>) -> Result<Option<Event>, DecodeError> {
        if let Some(kind) = CallEventKind::from_root_name(root) {
            return CallEvent::decode(kind, el).map(|e| Some(Event::Call(e)));
        }
        if root.eq_ignore_ascii_case("ForwardingEvent") {
            return Ok(Some(Event::Forwarding(ForwardingEvent {
                cross_ref: el.required_text("monitorCrossRefID")?.to_owned(),
                device: DeviceRef::decode(el.required("device")?),
                forwarding_type: ForwardingType::parse(el.required_text("forwardingType")?),
                status: parse_bool(el.required("forwardStatus")?)?,
                forward_to: el.child_text("forwardTo").map(str::to_owned),
                ring_count: el.child("ringCount").map(parse_u32).transpose()?,
            })));
        }
        if root.eq_ignore_ascii_case("DoNotDisturbEvent") {
            return Ok(Some(Event::DoNotDisturb(DoNotDisturbEvent {
                cross_ref: el.required_text("monitorCrossRefID")?.to_owned(),
                device: DeviceRef::decode(el.required("device")?),
                on: parse_bool(el.required("doNotDisturbOn")?)?,
            })));
        }
        Ok(None)
    }

    pub(crate) fn encode(&self, w: &mut XmlWriter) {
        match self {
            Event::Call(c) => c.encode(w),
            Event::Forwarding(f) => {
                w.leaf("monitorCrossRefID", &f.cross_ref);
                f.device.encode(w, "device");
                w.leaf("forwardingType", f.forwarding_type.as_str())
                    .leaf("forwardStatus", bool_str(f.status))
                    .opt_leaf("forwardTo", f.forward_to.as_deref())
                    .opt_leaf("ringCount", f.ring_count.map(|c| c.to_string()).as_deref());
            }
            Event::DoNotDisturb(d) => {
                w.leaf("monitorCrossRefID", &d.cross_ref);
                d.device.encode(w, "device");
                w.leaf("doNotDisturbOn", bool_str(d.on));
            }
        }
    }
}
