//! What the engine keeps while the PBX works on something: why each PBX request was sent, and
//! for a client's request, just enough to answer it later.

use std::time::Instant;

use rcc_protocol::sip::Message;

use super::latency::RequestKey;
use crate::ids::{FlowId, SessionId};
use crate::sip::transaction::TxKey;

/// The answer owed to a client's INFO: its server transaction, its connection, and the 200 OK
/// head built from the request (Via, From, To, Call-ID, CSeq), waiting for its CSTA body.
#[derive(Debug)]
pub(crate) struct PendingAnswer {
    pub(crate) session: SessionId,
    pub(crate) tx: TxKey,
    pub(crate) flow: FlowId,
    /// Boxed: it rides inside the link's pending table with every request in flight.
    pub(crate) head: Box<Message>,
}

/// What a PBX request was for.
#[derive(Debug)]
pub(crate) enum Purpose {
    /// A client's CSTA request, passed on.
    Client {
        answer: PendingAnswer,
        started: Instant,
        service: &'static str,
        /// Identifies the request for the gateway-added time.
        key: RequestKey,
    },
    /// The device monitor shared by the sessions on `device`.
    Monitor { device: String },
    /// The calls of `device`, to reconcile after a resync.
    Snapshot { device: String },
    /// The PBX's feature list.
    Features,
    /// Nothing to do with the answer.
    Quiet,
    /// The MonitorStop after the last session on a device left (answer not needed).
    Release { session: SessionId },
}
