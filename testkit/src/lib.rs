//! Test support for rcc-lab (dev-only). [`MemLab`] wires the three sans-IO state machines —
//! the simulated Front End pool with its Lync endpoints, the gateway core and the PBX
//! simulator's engine — with no sockets and a virtual clock, so that a call flow runs in
//! microseconds and a 30-minute session expiry takes as long as any other step.
//! [`ScriptedPbx`] is the PBX a gateway test or benchmark plays itself.

mod memlab;
mod scripted_pbx;

pub use memlab::MemLab;
pub use rcc_simulators::lync::LabUser as User;
pub use scripted_pbx::{ScriptedPbx, SentFrame};
