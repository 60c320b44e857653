//! The tokio shell around the core: listeners, connections, the PBX link, TLS.

pub mod admission;
mod cmd;
mod pbx;
pub mod server;
pub mod tls;
