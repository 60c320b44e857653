//! rcc-simulators: what a SIP/CSTA gateway sees on either side. [`pbx`] is a CSTA server with an
//! ECMA-269 call model, vendor profiles and fault injection; [`tls`] mints the lab's
//! certificates.

pub mod pbx;
pub mod tls;
