//! What an operator watches: `/metrics` and `/health` over HTTP, and pcapng traces of both legs.

pub mod http;
pub mod process;
pub mod trace;

pub use http::serve;
pub use rcc_gateway_core::Metrics;
