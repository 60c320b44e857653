//! rcc-simulators: what a SIP/CSTA gateway sees on either side. [`lync`] is a Lync Server 2013
//! Front End pool with RCC client endpoints; [`pbx`] is a CSTA server with an
//! ECMA-269 call model, vendor profiles and fault injection; [`tls`] mints the lab's
//! certificates.

pub mod http;
pub mod lync;
pub mod pbx;
pub mod signals;
pub mod tls;

/// Wall-clock time in microseconds since the Unix epoch, for traces merged across components.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A value unique to this call within the process and random across processes, for branch
/// parameters, tags and Call-IDs that must never repeat (RFC 3261 §8.1.1.7).
pub fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = STATE
        .get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u64(now_us());
    h.finish()
}
