//! Identifiers: the shell's connection numbers, the engine's session numbers, and the
//! generator of every branch, tag and cross-reference ID the gateway sends.

use std::fmt;

/// A SIP connection, as the shell numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(pub u64);

impl FlowId {
    /// No connection (a record whose connection is unknown or gone).
    pub const NONE: FlowId = FlowId(u64::MAX);
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An RCC session, as the engine numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Unique strings and numbers from a seed the shell gives (the core has no entropy of its own).
#[derive(Debug)]
pub(crate) struct Ids {
    seed: u32,
    counter: u64,
}

impl Ids {
    pub(crate) fn new(seed: u64) -> Ids {
        Ids {
            seed: (seed & 0xffff_ffff) as u32,
            counter: 0,
        }
    }

    /// The next number (never repeated).
    pub(crate) fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// `prefix`, eight hex digits of the seed, the counter in hex (no formatter: this names
    /// every branch and tag the gateway sends).
    pub(crate) fn unique(&mut self, prefix: &str) -> String {
        let n = self.next();
        let mut s = String::with_capacity(prefix.len() + 24);
        s.push_str(prefix);
        push_hex(&mut s, u64::from(self.seed), 8);
        push_hex(&mut s, n, 1);
        s
    }

    /// A new session number.
    pub(crate) fn session(&mut self) -> SessionId {
        SessionId(self.next())
    }
}

/// Appends `v` in lower-case hex, at least `width` digits.
fn push_hex(s: &mut String, v: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (16 - v.leading_zeros() as usize / 4).max(width);
    for i in (0..digits).rev() {
        s.push(char::from(DIGITS[((v >> (i * 4)) & 0xf) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_match_the_formatter() {
        for (v, w) in [
            (0u64, 1),
            (0, 8),
            (0xabc, 8),
            (u64::MAX, 1),
            (0x1_0000_0000, 8),
            (15, 1),
        ] {
            let mut s = String::new();
            push_hex(&mut s, v, w);
            assert_eq!(s, format!("{v:0w$x}"));
        }
    }

    #[test]
    fn unique_strings_carry_the_seed_and_never_repeat() {
        let mut ids = Ids::new(0x1234_5678_9abc_def0);
        let a = ids.unique("gw");
        let b = ids.unique("gw");
        assert_eq!(a, "gw9abcdef01");
        assert_eq!(b, "gw9abcdef02");
        assert_eq!(ids.session(), SessionId(3));
    }
}
