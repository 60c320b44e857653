//! The PBX side: the CSTA link, and the filter for repeated events.

pub mod link;
pub mod pacer;
pub mod repeats;
