//! The switch's settings that vary by vendor profile or lab, and the ID formats they pick.

use std::time::Duration;

use crate::pbx::directory::ExternalParty;

/// How the switch formats call IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallIdFormat {
    /// Small decimal numbers (Avaya, generic).
    Decimal,
    /// 32 hexadecimal digits (OpenScape Voice).
    Hex32,
}

impl CallIdFormat {
    /// Call ID number `n` in this format.
    pub(super) fn call_id(self, n: u64) -> String {
        match self {
            CallIdFormat::Decimal => n.to_string(),
            CallIdFormat::Hex32 => format!("FF000100{n:012X}C85C1C750000"),
        }
    }

    /// Monitor cross-reference ID number `n` in this format.
    pub(super) fn cross_ref(self, n: u64) -> String {
        match self {
            CallIdFormat::Decimal => n.to_string(),
            CallIdFormat::Hex32 => format!("{n:08X}"),
        }
    }
}

/// Behaviour of the switch that varies by vendor profile or lab.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    /// Call ID format.
    pub call_ids: CallIdFormat,
    /// Report devices in events as OpenScape Voice does (`N<number>;noa=nk`).
    pub decorate_devices: bool,
    /// After the last-but-one party leaves, send the remaining party a second
    /// ConnectionCleared for its own connection (otherwise one event tears the call down).
    pub second_connection_cleared: bool,
    /// Duration of one ring, for no-answer forwarding (`ringCount` rings).
    pub ring: Duration,
    /// Rings before no-answer forwarding when SetForwarding gives no `ringCount`.
    pub default_ring_count: u32,
    /// Monitors allowed on one device.
    pub monitors_per_device: usize,
    /// Monitors allowed on the whole switch (a licence limit; beyond it
    /// `overallMonitorLimitExceeded`).
    pub max_monitors: Option<usize>,
    /// Behaviour of external numbers without their own script.
    pub default_external: ExternalParty,
    /// Answering a call (a waiting one) while the device is in another call holds that call;
    /// false: AnswerCall is refused with `connectedCallExists` and the client holds first.
    pub hold_on_answer: bool,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            call_ids: CallIdFormat::Decimal,
            decorate_devices: false,
            second_connection_cleared: false,
            ring: Duration::from_secs(5),
            default_ring_count: 3,
            monitors_per_device: 16,
            max_monitors: None,
            default_external: ExternalParty::default(),
            hold_on_answer: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_format() {
        assert_eq!(CallIdFormat::Decimal.call_id(7), "7");
        assert_eq!(CallIdFormat::Decimal.cross_ref(7), "7");
        assert_eq!(
            CallIdFormat::Hex32.call_id(0x1A),
            "FF00010000000000001AC85C1C750000"
        );
        assert_eq!(CallIdFormat::Hex32.call_id(1).len(), 32);
        assert_eq!(CallIdFormat::Hex32.cross_ref(0x1A), "0000001A");
    }
}
