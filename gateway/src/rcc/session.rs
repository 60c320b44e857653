//! One RCC session: the SIP dialog of a Lync endpoint, the line it controls, its monitor, and
//! the queue of event INFOs waiting to be sent in order.

use std::collections::{HashMap, VecDeque};

use rcc_protocol::sip::Dialog;

/// Identifies a session.
pub type SessionId = u64;

/// Identifies a SIP connection (as the shell numbers them).
pub type FlowId = u64;

/// A 2xx to INVITE waiting for its ACK.
#[derive(Debug, Clone)]
pub struct AckWait {
    /// The response, for retransmission.
    pub bytes: Vec<u8>,
    /// Current retransmission interval.
    pub interval: std::time::Duration,
    /// When to give up.
    pub give_up: std::time::Instant,
}

/// An RCC session.
#[derive(Debug)]
pub struct RccSession {
    /// Its ID.
    pub id: SessionId,
    /// The dialog (UAS side).
    pub dialog: Dialog,
    /// The connection the dialog arrived on.
    pub flow: FlowId,
    /// Where the dialog's requests go when that connection is gone (first route, else the
    /// remote target), parsed once.
    pub next_hop: crate::engine::Target,
    /// The From URI (the Lync user).
    pub user: String,
    /// The endpoint ID (`epid`), when the client sent one.
    pub epid: Option<String>,
    /// The LineURI, verbatim.
    pub line: String,
    /// The line's PBX device ID.
    pub device: String,
    /// Namespace the client speaks.
    pub namespace: String,
    /// The cross-reference ID the client got from MonitorStart.
    pub xref: Option<String>,
    /// Devices shown to the client (Lync string → PBX string).
    pub shown: HashMap<String, String>,
    /// Event bodies waiting to be sent.
    pub queue: VecDeque<Vec<u8>>,
    /// Event INFOs sent and not yet answered or given up.
    pub inflight: usize,
    /// Client requests waiting for the PBX: events wait until their responses are sent.
    pub pending_pbx: usize,
    /// Session-Expires granted (0: no session timer).
    pub session_expires: u32,
    /// Generation of the expiry timer (older timers are stale).
    pub expiry_gen: u64,
    /// The 2xx to the latest INVITE, until ACKed.
    pub ack_wait: Option<AckWait>,
    /// Generation of the 2xx retransmission timer.
    pub ack_gen: u64,
    /// Event INFOs sent.
    pub events_sent: u64,
    /// Written to a per-session trace (`[observe.session_traces]`).
    pub traced: bool,
}
