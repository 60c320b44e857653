//! Repeated PBX events.
//!
//! The last call event per connection of one monitor, to drop exact repeats: a PBX that rings
//! several appearances of a line may report the same Delivered (or Established, Held…) more
//! than once, and each copy would be a new pop-up in Lync (rcc-sip.md §6.2). An event is a
//! repeat when the connection's previous event had the same kind, local state and cause: it
//! tells nothing new. Entries go when their connection clears; the table is bounded.

use std::collections::HashMap;

use rcc_protocol::csta;

/// Per PBX monitor: the latest event of each of its connections.
#[derive(Debug, Default)]
pub struct Repeats {
    /// callID → its connections' deviceIDs and latest events (a few per call).
    calls: HashMap<String, Vec<(String, EventState)>>,
    /// Connections remembered.
    len: usize,
}

/// What a call event says of its connection: kind, local state, cause.
#[derive(Debug, PartialEq)]
struct EventState {
    kind: csta::CallEventKind,
    local_state: Option<csta::LocalConnectionState>,
    cause: Option<csta::Cause>,
}

impl EventState {
    fn of(e: &csta::CallEvent) -> Self {
        EventState {
            kind: e.kind,
            local_state: e.local_state.clone(),
            cause: e.cause.clone(),
        }
    }

    fn told_by(&self, e: &csta::CallEvent) -> bool {
        self.kind == e.kind && self.local_state == e.local_state && self.cause == e.cause
    }
}

impl Repeats {
    /// Connections remembered per monitor before the table is cleared (a PBX that never
    /// clears its connections cannot grow it without bound; at worst a repeat then passes).
    const MAX: usize = 512;

    /// Whether `e` repeats its connection's previous event; remembers it otherwise. Looking up
    /// allocates nothing: only a connection seen for the first time is copied in.
    pub fn is_repeat(&mut self, e: &csta::CallEvent) -> bool {
        let Some(conn) = e.connection.as_ref() else {
            return false;
        };
        let Some(call) = conn.call_id.as_deref() else {
            return false;
        };
        if e.kind == csta::CallEventKind::CallCleared {
            if let Some(gone) = self.calls.remove(call) {
                self.len -= gone.len();
            }
            return false;
        }
        let Some(device) = conn.device_id.as_deref() else {
            return false;
        };
        let cleared = e.kind == csta::CallEventKind::ConnectionCleared
            || e.local_state == Some(csta::LocalConnectionState::Null);
        if let Some(known) = self.calls.get_mut(call)
            && let Some(i) = known.iter().position(|(d, _)| d == device)
        {
            if known[i].1.told_by(e) {
                return true;
            }
            if cleared {
                known.swap_remove(i);
                self.len -= 1;
                if known.is_empty() {
                    self.calls.remove(call);
                }
            } else {
                known[i].1 = EventState::of(e);
            }
            return false;
        }
        if cleared {
            return false;
        }
        if self.len >= Self::MAX {
            self.calls.clear();
            self.len = 0;
        }
        self.calls
            .entry(call.to_owned())
            .or_default()
            .push((device.to_owned(), EventState::of(e)));
        self.len += 1;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::Repeats;
    use rcc_protocol::csta::LocalConnectionState as L;
    use rcc_protocol::csta::{CallEvent, CallEventKind as K, Cause, ConnectionId};

    fn ev(kind: K, call: &str, device: &str, state: L) -> CallEvent {
        let mut e = CallEvent::new(kind, "x1");
        e.connection = Some(ConnectionId::new(call, device));
        e.local_state = Some(state);
        e.cause = Some(Cause::new("normal"));
        e
    }

    #[test]
    fn only_exact_repeats_of_a_connections_last_event_are_dropped() {
        let mut r = Repeats::default();
        let delivered = ev(K::Delivered, "1", "100", L::Alerting);
        assert!(!r.is_repeat(&delivered));
        assert!(r.is_repeat(&delivered), "the same event again");
        // Another connection of the same call, or another call, is news.
        assert!(!r.is_repeat(&ev(K::Delivered, "1", "101", L::Alerting)));
        assert!(!r.is_repeat(&ev(K::Delivered, "2", "100", L::Alerting)));
        // A different cause is not a repeat.
        let mut forwarded = delivered.clone();
        forwarded.cause = Some(Cause::new("callForward"));
        assert!(!r.is_repeat(&forwarded));
        // Held, retrieved, held again: each one changes the connection.
        for _ in 0..2 {
            assert!(!r.is_repeat(&ev(K::Held, "1", "100", L::Hold)));
            assert!(!r.is_repeat(&ev(K::Retrieved, "1", "100", L::Connected)));
        }
        // A cleared connection is forgotten: the same call ID may come back.
        let cleared = ev(K::ConnectionCleared, "1", "100", L::Null);
        assert!(!r.is_repeat(&cleared));
        assert!(!r.is_repeat(&delivered), "news after the clear");
        // CallCleared forgets every connection of the call.
        let mut call_cleared = ev(K::CallCleared, "1", "", L::Null);
        call_cleared.connection = Some(ConnectionId {
            call_id: Some("1".into()),
            device_id: None,
        });
        assert!(!r.is_repeat(&call_cleared));
        assert!(!r.is_repeat(&ev(K::Delivered, "1", "101", L::Alerting)));
        // Events without a connection are never repeats.
        let mut bare = delivered.clone();
        bare.connection = None;
        assert!(!r.is_repeat(&bare) && !r.is_repeat(&bare));
        // What is left: call 1 at 101, call 2 at 100.
        assert_eq!(r.len, 2);
        assert_eq!(r.len, r.calls.values().map(Vec::len).sum::<usize>());
    }

    #[test]
    fn the_repeat_table_is_bounded() {
        let mut r = Repeats::default();
        for call in 0..(3 * Repeats::MAX) {
            assert!(!r.is_repeat(&ev(K::Delivered, &call.to_string(), "100", L::Alerting)));
            assert!(r.len <= Repeats::MAX);
            assert_eq!(r.len, r.calls.values().map(Vec::len).sum::<usize>());
        }
    }
}
