//! rcc-simulators: what a SIP/CSTA gateway sees on either side. [`lync`] is a Lync Server 2013
//! Front End pool with RCC client endpoints; [`pbx`] is a CSTA server with an
//! ECMA-269 call model, vendor profiles and fault injection; [`tls`] mints the lab's
//! certificates.

pub mod lync;
pub mod pbx;
pub mod tls;
