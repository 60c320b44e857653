//! Who is on the simulated switch: internal devices (configured) and external parties (any
//! other dialable number), with the scripted behaviour of the latter.

use serde::{Deserialize, Serialize};

/// An internal extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// The PBX's own device ID and dialing number (`100`, `4001`).
    pub number: String,
    /// The public E.164 number (`+14255550100`), by which the device may also be addressed.
    #[serde(default)]
    pub e164: Option<String>,
    /// A label for logs and the control API.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether CTI applications may monitor and control it (false: privilege violation).
    #[serde(default = "yes")]
    pub cti: bool,
    /// Call waiting: a second call rings while the device is in a call (one at a time), instead
    /// of getting busy; answering it holds the call in progress.
    #[serde(default)]
    pub call_waiting: bool,
}

fn yes() -> bool {
    true
}

impl DeviceConfig {
    /// An extension with a dialing number and an optional E.164 number.
    pub fn new(number: &str, e164: Option<&str>) -> Self {
        DeviceConfig {
            number: number.to_owned(),
            e164: e164.map(str::to_owned),
            name: None,
            cti: true,
            call_waiting: false,
        }
    }
}

/// How an external party reacts when called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    /// It rings (and answers or clears per the timers).
    #[default]
    Ring,
    /// Busy: the call fails with cause `busy`.
    Busy,
    /// Rejected: the call fails with cause `blocked`.
    Reject,
    /// Not a number in service: the call fails with cause `numberUnallocated`.
    Unallocated,
}

/// The scripted behaviour of an external party.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalParty {
    /// What happens when it is called.
    #[serde(default)]
    pub reach: Reach,
    /// Answers this many milliseconds after it starts ringing (never when absent).
    #[serde(default)]
    pub answer_after_ms: Option<u64>,
    /// Hangs up this many milliseconds after it joined the call (ringing or calling).
    #[serde(default)]
    pub clear_after_ms: Option<u64>,
}

impl ExternalParty {
    /// Rings and answers after `ms`.
    pub fn answers_after(ms: u64) -> Self {
        ExternalParty {
            answer_after_ms: Some(ms),
            ..Default::default()
        }
    }

    /// Fails every call with `reach`.
    pub fn unreachable(reach: Reach) -> Self {
        ExternalParty {
            reach,
            ..Default::default()
        }
    }
}

/// What a device identifier from a request designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// An internal device, by its number.
    Internal(String),
    /// An external party, by the number as dialled (trimmed of decoration).
    External(String),
    /// Not a dialable number.
    Invalid,
}

/// Strips the decorations a gateway may echo back: `tel:` and URI parameters, OpenScape Voice's
/// `N<…>;…`, and surrounding white space.
pub fn strip_decoration(raw: &str) -> &str {
    let s = raw.trim();
    if let Some(inner) = s.strip_prefix("N<").and_then(|r| r.split_once('>')) {
        return inner.0.trim();
    }
    let s = s.strip_prefix("tel:").unwrap_or(s);
    s.split(';').next().unwrap_or(s).trim()
}

/// Whether `s` is a dialable number: an optional leading `+`, then 1 to 32 of `0-9 * #`.
pub fn is_dialable(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    !digits.is_empty()
        && digits.len() <= 32
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorations_are_stripped() {
        assert_eq!(strip_decoration("N<302118840100>;noa=nk"), "302118840100");
        assert_eq!(strip_decoration("tel:+14255550100;ext=100"), "+14255550100");
        assert_eq!(strip_decoration(" 100 "), "100");
    }

    #[test]
    fn dialable_numbers() {
        assert!(is_dialable("+14255550100"));
        assert!(is_dialable("*72#"));
        assert!(!is_dialable("+"));
        assert!(!is_dialable("alice"));
        assert!(!is_dialable(&"1".repeat(33)));
    }
}
