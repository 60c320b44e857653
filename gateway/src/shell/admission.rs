//! Which connections the SIP listeners take, so that idle or hostile peers cannot use up the
//! open files that the trusted Front Ends and the PBX link need: a cap on all connections with
//! slots only trusted addresses may take, a cap per address, and a cap on TLS handshakes in
//! progress from addresses that are not trusted (overall and per address). A [`Slot`] and a
//! [`Handshake`] give back what they hold when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rcc_gateway_core::LimitReason;

/// The caps.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Connections at most.
    pub connections: usize,
    /// Of those, the ones only trusted addresses may take.
    pub reserved: usize,
    /// Connections per address.
    pub per_peer: usize,
    /// TLS handshakes in progress from untrusted addresses.
    pub handshakes: usize,
}

impl Caps {
    /// Handshakes in progress from one untrusted address: a sixteenth of all, at least one.
    fn handshakes_per_peer(&self) -> usize {
        (self.handshakes / 16).max(1)
    }
}

#[derive(Debug, Default)]
struct Counts {
    open: usize,
    per_peer: HashMap<IpAddr, usize>,
    handshakes: usize,
    handshakes_per_peer: HashMap<IpAddr, usize>,
}

/// The listeners' admission control, shared by their accept loops.
#[derive(Debug)]
pub struct Admission {
    caps: Caps,
    counts: Mutex<Counts>,
}

/// One connection's place; released when dropped.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

/// A TLS handshake in progress; released when dropped.
#[derive(Debug)]
pub struct Handshake {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// Admission control with these caps.
    pub fn new(caps: Caps) -> Arc<Admission> {
        Arc::new(Admission {
            caps,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// The caps.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a connection from `ip` (`trusted`: the address is a trusted peer's), or
    /// the limit that refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, trusted: bool) -> Result<Slot, LimitReason> {
        let mut c = self.counts();
        if c.open >= self.caps.connections {
            return Err(LimitReason::Connections);
        }
        if !trusted && c.open >= self.caps.connections.saturating_sub(self.caps.reserved) {
            return Err(LimitReason::Reserved);
        }
        let n = c.per_peer.entry(ip).or_default();
        if *n >= self.caps.per_peer {
            return Err(LimitReason::PerPeer);
        }
        *n += 1;
        c.open += 1;
        Ok(Slot {
            admission: self.clone(),
            ip,
        })
    }

    /// Connections open.
    pub fn open(&self) -> usize {
        self.counts().open
    }
}

impl Slot {
    /// Room for a TLS handshake from this connection's untrusted address, or the limit that
    /// refuses it.
    pub fn handshake(&self) -> Result<Handshake, LimitReason> {
        let a = &self.admission;
        let mut c = a.counts();
        if c.handshakes >= a.caps.handshakes {
            return Err(LimitReason::Handshakes);
        }
        let n = c.handshakes_per_peer.entry(self.ip).or_default();
        if *n >= a.caps.handshakes_per_peer() {
            return Err(LimitReason::Handshakes);
        }
        *n += 1;
        c.handshakes += 1;
        Ok(Handshake {
            admission: a.clone(),
            ip: self.ip,
        })
    }
}

fn release(map: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = map.get_mut(&ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&ip);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.admission.counts();
        c.open = c.open.saturating_sub(1);
        release(&mut c.per_peer, self.ip);
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        let mut c = self.admission.counts();
        c.handshakes = c.handshakes.saturating_sub(1);
        release(&mut c.handshakes_per_peer, self.ip);
    }
}

/// Lines about refused connections, at most `burst` per `window`; the rest are counted and
/// the count is told with the next line that is written. A peer opening connections in a loop
/// thus cannot fill the log.
#[derive(Debug)]
pub struct RefusalLog {
    window: Duration,
    burst: u32,
    state: Mutex<(Instant, u32, u64)>,
}

impl RefusalLog {
    /// At most `burst` lines per `window`.
    pub fn new(window: Duration, burst: u32) -> RefusalLog {
        RefusalLog {
            window,
            burst,
            state: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// Whether to write a line now; `Some(n)`: yes, after `n` that were not written.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, written, suppressed) = &mut *s;
        if now.saturating_duration_since(*start) >= self.window {
            *start = now;
            *written = 0;
        }
        if *written < self.burst {
            *written += 1;
            Some(std::mem::take(suppressed))
        } else {
            *suppressed += 1;
            None
        }
    }
}

/// Peer-supplied text for a log line: at most 120 characters, escaped.
pub fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(120)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(120).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn the_reserve_is_kept_for_trusted_addresses_and_places_come_back() {
        let a = Admission::new(Caps {
            connections: 4,
            reserved: 2,
            per_peer: 8,
            handshakes: 16,
        });
        let first = a.admit(ip(1), false).expect("free");
        let _second = a.admit(ip(2), false).expect("free");
        assert_eq!(a.admit(ip(3), false).err(), Some(LimitReason::Reserved));
        let _t1 = a.admit(ip(9), true).expect("reserved for trusted");
        let _t2 = a.admit(ip(9), true).expect("reserved for trusted");
        assert_eq!(a.admit(ip(9), true).err(), Some(LimitReason::Connections));
        drop(first);
        assert_eq!(a.open(), 3);
        assert_eq!(a.admit(ip(3), false).err(), Some(LimitReason::Reserved));
        assert!(a.admit(ip(9), true).is_ok());
    }

    #[test]
    fn per_peer_and_handshake_caps() {
        let a = Admission::new(Caps {
            connections: 100,
            reserved: 0,
            per_peer: 3,
            handshakes: 32,
        });
        let slots: Vec<Slot> = (0..3).map(|_| a.admit(ip(1), false).expect("ok")).collect();
        assert_eq!(a.admit(ip(1), false).err(), Some(LimitReason::PerPeer));
        // Two handshakes per address (32 / 16).
        let h1 = slots[0].handshake().expect("ok");
        let _h2 = slots[1].handshake().expect("ok");
        assert_eq!(slots[2].handshake().err(), Some(LimitReason::Handshakes));
        drop(h1);
        assert!(slots[2].handshake().is_ok());
    }

    #[test]
    fn refusal_lines_are_throttled_and_the_rest_counted() {
        let log = RefusalLog::new(Duration::from_secs(10), 2);
        let t = Instant::now();
        assert_eq!(log.allow(t), Some(0));
        assert_eq!(log.allow(t), Some(0));
        assert_eq!(log.allow(t), None);
        assert_eq!(log.allow(t), None);
        assert_eq!(log.allow(t + Duration::from_secs(11)), Some(2));
    }

    #[test]
    fn peer_text_is_cut_and_escaped() {
        let long = "A".repeat(8192);
        assert_eq!(shown(&long).chars().count(), 121);
        assert_eq!(shown("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
    }
}
