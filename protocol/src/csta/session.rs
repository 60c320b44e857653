//! ECMA-354 application session messages.

use super::DecodeError;
use super::values::parse_u32;
use super::xml::{Element, XmlWriter};

/// The ECMA-354 namespace, used for every session message on output.
pub const SESSION_NAMESPACE: &str =
    "http://www.ecma-international.org/standards/ecma-354/appl_session";

/// A reason or error: a value defined by the schema, or free text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `definedError`, `definedEndReason` or `definedTermReason`.
    Defined(String),
    /// `applError`, `appEndReason` or `serverTermReason`.
    Text(String),
}

impl Reason {
    fn decode(el: Element<'_>, defined: &str, text: &str) -> Reason {
        if let Some(d) = el.child(defined) {
            Reason::Defined(d.text().to_string())
        } else {
            Reason::Text(el.child_text(text).unwrap_or(el.text()).to_owned())
        }
    }

    fn encode(&self, w: &mut XmlWriter, name: &str, defined: &str, text: &str) {
        w.open(name);
        match self {
            Reason::Defined(d) => w.leaf(defined, d),
            Reason::Text(t) => w.leaf(text, t),
        };
        w.close(name);
    }

    /// The value, whichever form it has.
    pub fn as_str(&self) -> &str {
        match self {
            Reason::Defined(s) | Reason::Text(s) => s,
        }
    }
}

/// An ECMA-354 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    /// StartApplicationSession.
    Start {
        /// `applicationInfo/applicationID`
        application_id: String,
        /// `userName` from any vendor `SessionLoginInfo`.
        user: Option<String>,
        /// `password` from any vendor `SessionLoginInfo`.
        password: Option<String>,
        /// `requestedProtocolVersions/protocolVersion`
        protocol_versions: Vec<String>,
        /// `requestedSessionDuration` in seconds.
        duration: Option<u32>,
    },
    /// StartApplicationSessionPosResponse.
    StartPos {
        /// `sessionID`, opaque.
        session_id: String,
        /// `actualProtocolVersion`
        protocol_version: Option<String>,
        /// `actualSessionDuration` in seconds.
        duration: Option<u32>,
    },
    /// StartApplicationSessionNegResponse.
    StartNeg {
        /// `errorCode`
        error: Reason,
    },
    /// StopApplicationSession.
    Stop {
        /// `sessionID`
        session_id: String,
        /// `sessionEndReason`
        reason: Reason,
    },
    /// StopApplicationSessionPosResponse.
    StopPos,
    /// StopApplicationSessionNegResponse.
    StopNeg {
        /// `errorCode`
        error: Reason,
    },
    /// ResetApplicationSessionTimer.
    Reset {
        /// `sessionID`
        session_id: String,
        /// `requestedSessionDuration`
        duration: Option<u32>,
    },
    /// ResetApplicationSessionTimerPosResponse.
    ResetPos {
        /// `actualSessionDuration`
        duration: Option<u32>,
    },
    /// ResetApplicationSessionTimerNegResponse.
    ResetNeg {
        /// `errorCode`
        error: Reason,
    },
    /// ApplicationSessionTerminated (server to client; has no response).
    Terminated {
        /// `sessionID`
        session_id: String,
        /// `sessionTermReason`
        reason: Reason,
    },
}

const ROOTS: [&str; 10] = [
    "StartApplicationSession",
    "StartApplicationSessionPosResponse",
    "StartApplicationSessionNegResponse",
    "StopApplicationSession",
    "StopApplicationSessionPosResponse",
    "StopApplicationSessionNegResponse",
    "ResetApplicationSessionTimer",
    "ResetApplicationSessionTimerPosResponse",
    "ResetApplicationSessionTimerNegResponse",
    "ApplicationSessionTerminated",
];

fn opt_u32(el: Element<'_>, name: &str) -> Result<Option<u32>, DecodeError> {
    el.child(name).map(parse_u32).transpose()
}

impl Session {
    /// The root element name.
    pub fn root_name(&self) -> &'static str {
        let i = match self {
            Session::Start { .. } => 0,
            Session::StartPos { .. } => 1,
            Session::StartNeg { .. } => 2,
            Session::Stop { .. } => 3,
            Session::StopPos => 4,
            Session::StopNeg { .. } => 5,
            Session::Reset { .. } => 6,
            Session::ResetPos { .. } => 7,
            Session::ResetNeg { .. } => 8,
            Session::Terminated { .. } => 9,
        };
        ROOTS[i]
    }

    pub(crate) fn decode(root: &str, el: Element<'_>) -> Result<Option<Session>, DecodeError> {
        let Some(i) = ROOTS.iter().position(|r| r.eq_ignore_ascii_case(root)) else {
            return Ok(None);
        };
        let error = |el: Element<'_>| {
            el.child("errorCode")
                .map(|e| Reason::decode(e, "definedError", "applError"))
                .ok_or_else(|| el.missing("errorCode"))
        };
        let sid = |el: Element<'_>| el.required_text("sessionID").map(str::to_owned);
        Ok(Some(match i {
            0 => {
                let info = el.child("applicationInfo");
                let login = info.and_then(|i| i.find("SessionLoginInfo"));
                Session::Start {
                    application_id: info
                        .and_then(|i| i.child_text("applicationID"))
                        .unwrap_or_default()
                        .to_owned(),
                    user: login
                        .and_then(|l| l.child_text("userName"))
                        .map(str::to_owned),
                    password: login
                        .and_then(|l| l.child_text("password"))
                        .map(str::to_owned),
                    protocol_versions: el
                        .child("requestedProtocolVersions")
                        .map(|v| {
                            v.children_named("protocolVersion")
                                .map(|p| p.text().to_string())
                                .collect()
                        })
                        .unwrap_or_default(),
                    duration: opt_u32(el, "requestedSessionDuration")?,
                }
            }
            1 => Session::StartPos {
                session_id: sid(el)?,
                protocol_version: el.child_text("actualProtocolVersion").map(str::to_owned),
                duration: opt_u32(el, "actualSessionDuration")?,
            },
            2 => Session::StartNeg { error: error(el)? },
            3 => Session::Stop {
                session_id: sid(el)?,
                reason: el
                    .child("sessionEndReason")
                    .map(|r| Reason::decode(r, "definedEndReason", "appEndReason"))
                    .unwrap_or(Reason::Defined("normal".into())),
            },
            4 => Session::StopPos,
            5 => Session::StopNeg { error: error(el)? },
            6 => Session::Reset {
                session_id: sid(el)?,
                duration: opt_u32(el, "requestedSessionDuration")?,
            },
            7 => Session::ResetPos {
                duration: opt_u32(el, "actualSessionDuration")?,
            },
            8 => Session::ResetNeg { error: error(el)? },
            _ => Session::Terminated {
                session_id: sid(el)?,
                reason: el
                    .child("sessionTermReason")
                    .map(|r| Reason::decode(r, "definedTermReason", "serverTermReason"))
                    .ok_or_else(|| el.missing("sessionTermReason"))?,
            },
        }))
    }

    pub(crate) fn encode(&self, w: &mut XmlWriter) {
        let num = |n: &Option<u32>| n.map(|n| n.to_string());
        match self {
            Session::Start {
                application_id,
                user,
                password,
                protocol_versions,
                duration,
            } => {
                w.open("applicationInfo")
                    .leaf("applicationID", application_id);
                if user.is_some() || password.is_some() {
                    w.open("applicationSpecificInfo")
                        .open("SessionLoginInfo")
                        .opt_leaf("userName", user.as_deref())
                        .opt_leaf("password", password.as_deref())
                        .close("SessionLoginInfo")
                        .close("applicationSpecificInfo");
                }
                w.close("applicationInfo").open("requestedProtocolVersions");
                for v in protocol_versions {
                    w.leaf("protocolVersion", v);
                }
                w.close("requestedProtocolVersions")
                    .opt_leaf("requestedSessionDuration", num(duration).as_deref());
            }
            Session::StartPos {
                session_id,
                protocol_version,
                duration,
            } => {
                w.leaf("sessionID", session_id)
                    .opt_leaf("actualProtocolVersion", protocol_version.as_deref())
                    .opt_leaf("actualSessionDuration", num(duration).as_deref());
            }
            Session::StartNeg { error }
            | Session::StopNeg { error }
            | Session::ResetNeg { error } => {
                error.encode(w, "errorCode", "definedError", "applError");
            }
            Session::Stop { session_id, reason } => {
                w.leaf("sessionID", session_id);
                reason.encode(w, "sessionEndReason", "definedEndReason", "appEndReason");
            }
            Session::StopPos => {}
            Session::Reset {
                session_id,
                duration,
            } => {
                w.leaf("sessionID", session_id)
                    .opt_leaf("requestedSessionDuration", num(duration).as_deref());
            }
            Session::ResetPos { duration } => {
                w.opt_leaf("actualSessionDuration", num(duration).as_deref());
            }
            Session::Terminated { session_id, reason } => {
                w.leaf("sessionID", session_id);
                reason.encode(
                    w,
                    "sessionTermReason",
                    "definedTermReason",
                    "serverTermReason",
                );
            }
        }
    }
}
