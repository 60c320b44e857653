//! The simulated PBX: a CSTA server over TCP or TLS with an ECMA-269 call model, vendor
//! profiles and fault injection (pbx-csta.md §17).

pub mod directory;
pub mod engine;
pub mod profile;
pub mod switch;

pub use directory::{DeviceConfig, ExternalParty, Reach};
pub use engine::{Direction, Faults, LinkId, LinkView, LogEntry, Output, Pbx};
pub use profile::{Framing, Heartbeat, PbxConfig, Profile, SessionPolicy};
pub use switch::{CallView, PartyView, Switch, SwitchConfig};
pub mod server;

pub use server::{Listen, PbxSim};
pub mod config;
pub mod control;
