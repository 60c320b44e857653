//! What the listener, connection and PBX tasks tell the driver task, which owns the engine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use rcc_gateway_core::{FlowId, Gateway, Target};
use rcc_net::Control;
use rcc_protocol::sip::Message;
use tokio::sync::{mpsc, oneshot};

pub(super) enum Cmd {
    FlowUp {
        flow: FlowId,
        out: mpsc::Sender<Vec<u8>>,
        /// Dropped by the driver to close the connection at once (see `server::FlowOut`).
        open: oneshot::Sender<()>,
        /// Requests read and handed to the driver, not yet taken up (see `server::FlowOut`).
        unread: Arc<AtomicUsize>,
        target: Option<Target>,
        /// (local, peer) addresses.
        ends: (SocketAddr, SocketAddr),
    },
    Sip {
        flow: FlowId,
        msg: Message,
        /// When its bytes were read.
        at: Instant,
    },
    FlowDown {
        flow: FlowId,
    },
    OutboundFailed {
        target: Target,
    },
    PbxUp {
        conn: u64,
        out: mpsc::Sender<Vec<u8>>,
        /// (local, peer) addresses.
        ends: Option<(SocketAddr, SocketAddr)>,
    },
    PbxBytes {
        conn: u64,
        bytes: Vec<u8>,
        /// When they were read.
        at: Instant,
    },
    PbxDown {
        conn: u64,
        reason: String,
    },
    /// A closure to run on the engine ([`super::server::GatewayHandle::with`]).
    Control(Control<Gateway>),
}
