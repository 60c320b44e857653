//! rcc-simulators: what a SIP/CSTA gateway sees on either side. [`lync`] is a Lync Server 2013
//! Front End pool with RCC client endpoints; [`pbx`] is a CSTA server with an
//! ECMA-269 call model, vendor profiles and fault injection; [`tls`] mints the lab's
//! certificates.

pub mod lync;
pub mod pbx;
pub mod tls;

/// Wall-clock time in microseconds since the Unix epoch, for traces merged across components.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
