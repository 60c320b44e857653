//! Value types shared by CSTA messages: identifiers, connection IDs, device references and the
//! schema's enumerations (each with an `Other` variant, so unknown values never fail a decode).

use super::DecodeError;
use super::xml::{Element, XmlWriter};

/// Declares an enumeration with its wire spellings, alternative input spellings, and `Other`.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal $(| $alias:literal)*,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A value outside the schema's list, kept as received.
            Other(String),
        }

        impl $name {
            /// Every known value.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The schema spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)*
                    $name::Other(s) => s,
                }
            }

            /// Parses a value: exact spelling, known alternative spellings, then ignoring case.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($wire $(| $alias)* => $name::$variant,)*
                    other => {
                        $(if other.eq_ignore_ascii_case($wire) { return $name::$variant; })*
                        $name::Other(other.to_owned())
                    }
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// `LocalConnectionState`: the monitored device's own connection state after an event.
    LocalConnectionState {
        /// No relationship to the call.
        Null = "null",
        /// Requesting service (off-hook, dialling).
        Initiated = "initiated",
        /// Ringing.
        Alerting = "alerting",
        /// Talking.
        Connected = "connected",
        /// On hold.
        Hold = "hold",
        /// Queued at the device.
        Queued = "queued",
        /// Cannot progress (busy, reorder).
        Fail = "fail",
    }
}

wire_enum! {
    /// `SystemStatus` values.
    SystemStatusValue {
        /// Initialising.
        Initializing = "initializing",
        /// Enabled.
        Enabled = "enabled",
        /// Normal operation (the only value that lets RCC clients proceed).
        Normal = "normal",
        /// Messages were lost.
        MessagesLost = "messagesLost",
        /// Disabled.
        Disabled = "disabled",
        /// Partially disabled.
        PartiallyDisabled = "partiallyDisabled",
        /// Overload imminent.
        OverloadImminent = "overloadImminent",
        /// Overload reached.
        OverloadReached = "overloadReached",
        /// Overload relieved.
        OverloadRelieved = "overloadRelieved",
    }
}

wire_enum! {
    /// `ForwardingType`.
    ForwardingType {
        /// Immediate.
        Immediate = "forwardImmediate",
        /// On busy.
        Busy = "forwardBusy",
        /// On no answer.
        NoAnswer = "forwardNoAns",
        /// Do not disturb.
        Dnd = "forwardDND",
        /// Busy, internal callers.
        BusyInt = "forwardBusyInt",
        /// Busy, external callers.
        BusyExt = "forwardBusyExt",
        /// No answer, internal callers.
        NoAnswerInt = "forwardNoAnsInt",
        /// No answer, external callers.
        NoAnswerExt = "forwardNoAnsExt",
        /// Immediate, internal callers.
        ImmediateInt = "forwardImmInt",
        /// Immediate, external callers.
        ImmediateExt = "forwardImmExt",
        /// DND, internal callers.
        DndInt = "forwardDNDInt",
        /// DND, external callers.
        DndExt = "forwardDNDExt",
    }
}

wire_enum! {
    /// `autoOriginate` of MakeCall.
    AutoOriginate {
        /// Ring the calling device first.
        Prompt = "prompt",
        /// Go off-hook automatically.
        DoNotPrompt = "doNotPrompt",
    }
}

wire_enum! {
    /// The category child of `CSTAErrorCode`.
    ErrorCategory {
        /// `operation`
        Operation = "operation",
        /// `security`
        Security = "security",
        /// `stateIncompatibility`
        StateIncompatibility = "stateIncompatibility",
        /// `systemResourceAvailibility` (the schema's spelling; the correct spelling is accepted).
        SystemResourceAvailability = "systemResourceAvailibility" | "systemResourceAvailability",
        /// `subscribedResourceAvailability`
        SubscribedResourceAvailability = "subscribedResourceAvailability",
        /// `performanceManagement`
        PerformanceManagement = "performanceManagement",
        /// `privateData`
        PrivateData = "privateData",
        /// `privateErrorCode`
        PrivateErrorCode = "privateErrorCode",
        /// `unspecified`
        Unspecified = "unspecified",
    }
}

/// An event `cause`. The schema lists 113 values and real PBXs send others (`Normal Clearing`),
/// so the value is kept as a string; [`Cause::is_known`] tells whether it is in the schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cause(pub String);

/// The `EventCause` values of ECMA-323 ed3 plus those ed6 adds.
pub const KNOWN_CAUSES: &[&str] = &[
    "aCDBusy",
    "aCDForward",
    "aCDSaturated",
    "activation",
    "activeParticipation",
    "alertTimeExpired",
    "alternate",
    "autoWork",
    "babble",
    "badAttribute",
    "badGrammar",
    "badURI",
    "badVoice",
    "blocked",
    "busy",
    "busyOverflow",
    "calendarOverflow",
    "callBack",
    "callCancelled",
    "callForward",
    "callForwardImmediate",
    "callForwardBusy",
    "callForwardNoAnswer",
    "callNotAnswered",
    "callPickup",
    "campOn",
    "campOnTrunks",
    "capacityOverflow",
    "characterCountReached",
    "conference",
    "consultation",
    "destDetected",
    "destNotObtainable",
    "destOutOfOrder",
    "distributed",
    "distributionDelay",
    "doNotDisturb",
    "dTMFDigitDetected",
    "duplicateDTMF",
    "durationExceeded",
    "earlyStop",
    "emptyQueue",
    "endOfMessageDetected",
    "enteringDistribution",
    "forcedPause",
    "forcedTransition",
    "incompatibleDestination",
    "interdigitTimeout",
    "intrude",
    "invalidAccountCode",
    "invalidConnection",
    "invalidConnectionState",
    "invalidNumberFormat",
    "joinCall",
    "keyOperation",
    "keyOperationInUse",
    "lockout",
    "maintenance",
    "makeCall",
    "makePredictiveCall",
    "maxTimeout",
    "messageDurationExceeded",
    "messageSizeExceeded",
    "multipleAlerting",
    "multipleQueuing",
    "networkCongestion",
    "networkDialling",
    "networkNotObtainable",
    "networkOutOfOrder",
    "networkSignal",
    "newCall",
    "nextMessage",
    "noAvailableAgents",
    "normal",
    "normalClearing",
    "noAudioSaved",
    "noQueue",
    "noRule",
    "noSpeechDetected",
    "notAvailableBearerService",
    "notSupportedBearerService",
    "numberChanged",
    "numberUnallocated",
    "outOfGrammar",
    "overflow",
    "override",
    "park",
    "pathReplacement",
    "queueCleared",
    "queueTimeOverflow",
    "recall",
    "recallBusy",
    "recallForwarded",
    "recallNoAnswer",
    "recallResourcesNotAvailable",
    "redirected",
    "remainsInQueue",
    "reorderTone",
    "reserved",
    "resourcesNotAvailable",
    "selectedTrunkBusy",
    "silentParticipation",
    "singleStepConference",
    "singleStepTransfer",
    "speechDetected",
    "suspend",
    "switchingFunctionTerminated",
    "terminationCharacterReceived",
    "timeout",
    "transfer",
    "trunksBusy",
    "unauthorisedBearerService",
    "unknownOverflow",
    "callInterception",
    "callInterceptionBusy",
    "callInterceptionForwarded",
    "callInterceptionNoAnswer",
    "lawfulInterception",
    "makeConnection",
];

impl Cause {
    /// A cause from its wire spelling.
    pub fn new(s: impl Into<String>) -> Self {
        Cause(s.into())
    }

    /// Whether the value is an `EventCause` of the schema.
    pub fn is_known(&self) -> bool {
        KNOWN_CAUSES.contains(&self.0.as_str())
    }

    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A ConnectionID: a call and/or a device in it. Either may be absent per the schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    /// `callID`, opaque.
    pub call_id: Option<String>,
    /// `deviceID`, opaque.
    pub device_id: Option<String>,
}

impl ConnectionId {
    /// A connection with both parts.
    pub fn new(call_id: impl Into<String>, device_id: impl Into<String>) -> Self {
        ConnectionId {
            call_id: Some(call_id.into()),
            device_id: Some(device_id.into()),
        }
    }

    pub(crate) fn decode(el: Element<'_>) -> ConnectionId {
        ConnectionId {
            call_id: el.child_text("callID").map(str::to_owned),
            device_id: el.child_text("deviceID").map(str::to_owned),
        }
    }

    /// Writes `callID` then `deviceID` (the recommended order), or the reverse when the writer
    /// asks for it.
    pub(crate) fn encode(&self, w: &mut XmlWriter, name: &str) {
        w.open(name);
        if w.device_id_first {
            w.opt_leaf("deviceID", self.device_id.as_deref())
                .opt_leaf("callID", self.call_id.as_deref());
        } else {
            w.opt_leaf("callID", self.call_id.as_deref())
                .opt_leaf("deviceID", self.device_id.as_deref());
        }
        w.close(name);
    }
}

/// A device as events report it: an identifier, or one of the schema's placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeviceRef {
    /// `<deviceIdentifier>` (or `numberDialed`, or plain text from sloppy peers).
    Id(String),
    /// `<notKnown/>`
    NotKnown,
    /// `<restricted/>`
    Restricted,
    /// `<notRequired/>`
    NotRequired,
    /// `<notSpecified/>`
    NotSpecified,
}

impl DeviceRef {
    /// A device identifier.
    pub fn id(s: impl Into<String>) -> Self {
        DeviceRef::Id(s.into())
    }

    /// The identifier, if there is one.
    pub fn as_id(&self) -> Option<&str> {
        match self {
            DeviceRef::Id(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn decode(el: Element<'_>) -> DeviceRef {
        for c in el.children() {
            match c.name() {
                "deviceIdentifier" | "numberDialed" | "deviceID" => {
                    return DeviceRef::Id(c.text().to_string());
                }
                "notKnown" => return DeviceRef::NotKnown,
                "restricted" => return DeviceRef::Restricted,
                "notRequired" => return DeviceRef::NotRequired,
                "notSpecified" => return DeviceRef::NotSpecified,
                _ => {}
            }
        }
        if el.text().is_empty() {
            DeviceRef::NotKnown
        } else {
            DeviceRef::Id(el.text().to_string())
        }
    }

    pub(crate) fn encode(&self, w: &mut XmlWriter, name: &str) {
        w.open(name);
        match self {
            DeviceRef::Id(s) => w.leaf("deviceIdentifier", s),
            DeviceRef::NotKnown => w.empty("notKnown"),
            DeviceRef::Restricted => w.empty("restricted"),
            DeviceRef::NotRequired => w.empty("notRequired"),
            DeviceRef::NotSpecified => w.empty("notSpecified"),
        };
        w.close(name);
    }
}

/// An entry of `connections`, `transferredConnections` or `conferenceConnections`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionListItem {
    /// The connection after the transfer or conference.
    pub new_connection: Option<ConnectionId>,
    /// The connection before it.
    pub old_connection: Option<ConnectionId>,
    /// The party's device.
    pub endpoint: Option<String>,
}

impl ConnectionListItem {
    pub(crate) fn decode_list(el: Element<'_>) -> Vec<ConnectionListItem> {
        el.children_named("connectionListItem")
            .map(|item| ConnectionListItem {
                new_connection: item.child("newConnection").map(ConnectionId::decode),
                old_connection: item.child("oldConnection").map(ConnectionId::decode),
                endpoint: item
                    .child("endpoint")
                    .and_then(|e| match DeviceRef::decode(e) {
                        DeviceRef::Id(s) => Some(s),
                        _ => None,
                    }),
            })
            .collect()
    }

    pub(crate) fn encode_list(items: &[ConnectionListItem], w: &mut XmlWriter, name: &str) {
        w.open(name);
        for item in items {
            w.open("connectionListItem");
            if let Some(c) = &item.new_connection {
                c.encode(w, "newConnection");
            }
            if let Some(c) = &item.old_connection {
                c.encode(w, "oldConnection");
            }
            if let Some(e) = &item.endpoint {
                w.open("endpoint").leaf("deviceID", e).close("endpoint");
            }
            w.close("connectionListItem");
        }
        w.close(name);
    }
}

/// Parses `true`/`false` (also `1`/`0`), naming the element on error.
pub(crate) fn parse_bool(el: Element<'_>) -> Result<bool, DecodeError> {
    match el.text() {
        "true" | "1" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "FALSE" | "False" => Ok(false),
        other => Err(DecodeError::Value {
            element: el.name().to_string(),
            reason: format!("{other:?} is not a boolean"),
        }),
    }
}

/// Parses an unsigned integer, naming the element on error.
pub(crate) fn parse_u32(el: Element<'_>) -> Result<u32, DecodeError> {
    el.text().parse().map_err(|_| DecodeError::Value {
        element: el.name().to_string(),
        reason: format!("{:?} is not an unsigned integer", el.text()),
    })
}

pub(crate) fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}
