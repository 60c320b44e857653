//! rcc-gateway: a SIP/CSTA gateway for Lync Server 2010/2013 Remote Call Control. Lync clients'
//! RCC dialogs (CSTA in INVITE and INFO bodies) come in through the Front End pool; the gateway
//! keeps one RCC session per dialog, one PBX monitor per device, and translates every request,
//! response and event to and from the PBX's CSTA link.
//!
//! [`engine::Gateway`] is the sans-IO core; [`server`] is the tokio shell around it.

pub mod config;
pub mod engine;
pub mod lync_config;
pub mod observe;
pub mod pbx;
pub mod rcc;
pub mod server;
pub mod sip;
pub mod tls;
pub mod trace;
