//! What the engine tells the shell for the per-session traces: the shell only writes them.

use crate::ids::{FlowId, SessionId};

/// Which way bytes went, seen from the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Received from the peer.
    In,
    /// Sent to the peer.
    Out,
}

/// Which connection a per-session trace record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The SIP connection with this flow number.
    Sip(FlowId),
    /// The PBX link.
    Pbx,
}

/// What the engine tells the shell for the per-session traces (`[observe.session_traces]`).
/// Only traced sessions produce notes; records come in the order the engine handled them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionNote {
    /// A traced session began; its file is named after the user.
    Start {
        /// The session.
        session: SessionId,
        /// Its user (SIP URI).
        user: String,
    },
    /// One SIP message or one CSTA frame of the session.
    Data {
        /// The session.
        session: SessionId,
        /// Where it went.
        leg: Leg,
        /// Which way.
        way: Way,
        /// The message or frame as on the wire.
        bytes: Vec<u8>,
    },
    /// The session and its last transaction are over.
    End {
        /// The session.
        session: SessionId,
    },
}
