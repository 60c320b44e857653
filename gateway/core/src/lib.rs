//! rcc-gateway-core: the sans-IO heart of rcc-gateway, the SIP/CSTA gateway for Lync Server
//! 2010/2013 Remote Call Control. No sockets, no tokio, no files, no clock of its own: the
//! shell hands in SIP messages, PBX bytes, time, a seed and a checked configuration, and polls
//! [`Gateway::poll_output`] for what to write.
//!
//! Layers, each depending only on those before it: [`config`] (the file as data) → [`rcc`]
//! (numbering plan, authorization, translation, features) and [`pbx`] (the CSTA link state
//! machine) and [`sip`] (server transactions) → [`setup`] (checks and builds the policy) →
//! [`engine`] (the orchestrator and its sub-states).

#![warn(unreachable_pub)]

pub mod config;
mod engine;
mod ids;
mod metrics;
pub mod notes;
pub mod pbx;
mod rcc;
pub mod setup;
mod sip;
mod timers;

pub use engine::{Gateway, Output, Target, target_of};
pub use ids::{FlowId, SessionId};
pub use metrics::{EndReason, Exposition, LimitReason, Metrics, RefusalReason};
pub use rcc::authz::parse_csv;
pub use rcc::numbering::{explain as explain_numbering, maps_line};
pub use setup::Policy;
