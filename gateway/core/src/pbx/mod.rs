//! The PBX side: the CSTA link, the pacing of costly requests, the retries of refused
//! monitors, and the filter for repeated events.

pub mod backoff;
pub mod link;
pub mod pacer;
pub mod repeats;
