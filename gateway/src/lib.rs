//! rcc-gateway: a SIP/CSTA gateway for Lync Server 2010/2013 Remote Call Control. Lync clients'
//! RCC dialogs (CSTA in INVITE and INFO bodies) come in through the Front End pool; the gateway
//! keeps one RCC session per dialog, one PBX monitor per device, and translates every request,
//! response and event to and from the PBX's CSTA link.
//!
//! The protocol core is the crate `rcc-gateway-core` (re-exported as [`core`]): sans-IO, no
//! tokio. This crate is what runs it: [`config`] reads the file and what it names, [`shell`] owns
//! the sockets, tasks and TLS, [`observe`] serves metrics and health and writes traces, and
//! [`lync_config`] prints the Lync side's PowerShell.

pub use rcc_gateway_core as core;

pub mod certs;
pub mod config;
pub mod kamailio_config;
pub mod lync_check;
pub mod lync_config;
pub mod observe;
pub mod shell;

pub use shell::server;
