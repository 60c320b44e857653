//! The CSTA link to the PBX.

pub mod link;
pub mod repeats;
