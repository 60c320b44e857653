//! The tokio shell around the core: listeners, connections, the PBX link, TLS.

pub mod server;
pub mod tls;
