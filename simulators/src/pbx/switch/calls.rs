//! The call table: calls, their parties in ECMA-269 local connection states, and the index of
//! the calls each device has joined.

use std::collections::{BTreeMap, HashMap, HashSet};

use rcc_protocol::csta::LocalConnectionState as State;
use serde::Serialize;

use super::config::CallIdFormat;

/// A party of a call as the control API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartyView {
    /// The device: an internal number or an external number.
    pub device: String,
    /// Whether the device is internal.
    pub internal: bool,
    /// Its local connection state.
    pub state: String,
}

/// A call as the control API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallView {
    /// The call ID.
    pub call_id: String,
    /// Its parties in joining order.
    pub parties: Vec<PartyView>,
    /// Digits generated in the call (GenerateDigits).
    pub digits: String,
}

/// One connection of a call: a device and its local state.
#[derive(Debug, Clone)]
pub(super) struct Party {
    pub(super) device: String,
    pub(super) internal: bool,
    pub(super) state: State,
}

/// A call and its parties in joining order.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) id: String,
    pub(super) parties: Vec<Party>,
    /// The calling device as events report it.
    pub(super) calling: String,
    /// The called number as dialled.
    pub(super) called: String,
    /// Digits generated in the call (GenerateDigits).
    pub(super) digits: String,
    /// A MakeCall with autoOriginate=prompt waiting for the caller to go off-hook.
    pub(super) pending_dial: Option<String>,
}

impl Call {
    /// A call with only its internal caller, in state null.
    pub(super) fn new(id: &str, caller: &str, called: &str) -> Self {
        Call {
            id: id.to_owned(),
            parties: vec![Party {
                device: caller.to_owned(),
                internal: true,
                state: State::Null,
            }],
            calling: caller.to_owned(),
            called: called.to_owned(),
            digits: String::new(),
            pending_dial: None,
        }
    }

    pub(super) fn party(&self, device: &str) -> Option<&Party> {
        self.parties.iter().find(|p| p.device == device)
    }

    pub(super) fn party_mut(&mut self, device: &str) -> Option<&mut Party> {
        self.parties.iter_mut().find(|p| p.device == device)
    }

    /// The local state of `device` in this call (`null` when it is no party).
    pub(super) fn state_of(&self, device: &str) -> State {
        self.party(device)
            .map(|p| p.state.clone())
            .unwrap_or(State::Null)
    }

    fn view(&self) -> CallView {
        CallView {
            call_id: self.id.clone(),
            parties: self
                .parties
                .iter()
                .map(|p| PartyView {
                    device: p.device.clone(),
                    internal: p.internal,
                    state: p.state.as_str().to_owned(),
                })
                .collect(),
            digits: self.digits.clone(),
        }
    }
}

/// One device's entry in the call index.
#[derive(Debug, Clone, Default)]
struct PartyCalls {
    ids: HashSet<String>,
    /// Entries left after the last pruning.
    live: usize,
}

/// Every call on the switch, by call ID, and which calls each device is in.
#[derive(Debug, Default)]
pub(super) struct CallTable {
    calls: BTreeMap<String, Call>,
    /// The calls each device has joined (may still list calls it left or that ended: checked on
    /// use, pruned once the set doubles), so a device's calls are found without walking every
    /// call.
    party_calls: HashMap<String, PartyCalls>,
    next_call: u64,
}

impl CallTable {
    pub(super) fn new() -> Self {
        CallTable {
            next_call: 1,
            ..CallTable::default()
        }
    }

    /// A fresh call ID.
    pub(super) fn new_id(&mut self, format: CallIdFormat) -> String {
        let n = self.next_call;
        self.next_call += 1;
        format.call_id(n)
    }

    pub(super) fn get(&self, call: &str) -> Option<&Call> {
        self.calls.get(call)
    }

    pub(super) fn get_mut(&mut self, call: &str) -> Option<&mut Call> {
        self.calls.get_mut(call)
    }

    pub(super) fn contains(&self, call: &str) -> bool {
        self.calls.contains_key(call)
    }

    /// Adds a call and indexes its parties.
    pub(super) fn insert(&mut self, call: Call) {
        let id = call.id.clone();
        self.calls.insert(id.clone(), call);
        self.index(&id);
    }

    pub(super) fn remove(&mut self, call: &str) {
        self.calls.remove(call);
    }

    /// Records the parties of `call` in the per-device index (after a party joined it). Stale
    /// entries are dropped when a device's set has doubled since it was last pruned, so the
    /// work per call stays constant on average (an external number is in every call).
    pub(super) fn index(&mut self, call: &str) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        for p in &c.parties {
            let entry = self.party_calls.entry(p.device.clone()).or_default();
            entry.ids.insert(call.to_owned());
            if entry.ids.len() > 2 * entry.live + 16 {
                let calls = &self.calls;
                entry
                    .ids
                    .retain(|id| calls.get(id).is_some_and(|c| c.party(&p.device).is_some()));
                entry.live = entry.ids.len();
            }
        }
    }

    /// The state of `device`'s connection in `call` (`null` when it has none).
    pub(super) fn state_in(&self, call: &str, device: &str) -> State {
        self.calls
            .get(call)
            .map(|c| c.state_of(device))
            .unwrap_or(State::Null)
    }

    /// The calling device and called number of `call`.
    pub(super) fn refs(&self, call: &str) -> (String, String) {
        self.calls
            .get(call)
            .map(|c| (c.calling.clone(), c.called.clone()))
            .unwrap_or_default()
    }

    /// The parties of `call` other than `device`.
    pub(super) fn others(&self, call: &str, device: &str) -> Vec<Party> {
        self.calls
            .get(call)
            .map(|c| {
                c.parties
                    .iter()
                    .filter(|p| p.device != device)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The calls `device` is a party of.
    pub(super) fn of<'a>(&'a self, device: &'a str) -> impl Iterator<Item = &'a Call> + 'a {
        self.party_calls
            .get(device)
            .into_iter()
            .flat_map(|e| e.ids.iter())
            .filter_map(|id| self.calls.get(id))
            .filter(move |c| c.party(device).is_some())
    }

    /// The calls `device` is a party of, in call ID order (as the call table lists them).
    pub(super) fn of_sorted<'a>(&'a self, device: &'a str) -> Vec<&'a Call> {
        let mut v: Vec<&Call> = self.of(device).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Whether `device` is in a call other than on hold.
    pub(super) fn is_busy(&self, device: &str) -> bool {
        self.of(device).any(|c| {
            c.party(device)
                .is_some_and(|p| !matches!(p.state, State::Hold | State::Null))
        })
    }

    /// The first call (by call ID) in which `device` is in the first of `states` it has.
    pub(super) fn in_state(&self, device: &str, states: &[State]) -> Option<String> {
        let calls = self.of_sorted(device);
        states.iter().find_map(|s| {
            calls
                .iter()
                .find(|c| c.party(device).is_some_and(|p| &p.state == s))
                .map(|c| c.id.clone())
        })
    }

    /// A call other than `call` in which `device` is connected.
    pub(super) fn connected_besides(&self, device: &str, call: &str) -> Option<String> {
        self.of(device)
            .find(|c| c.id != call && c.party(device).is_some_and(|p| p.state == State::Connected))
            .map(|c| c.id.clone())
    }

    /// Every call with its parties, in call ID order.
    pub(super) fn views(&self) -> Vec<CallView> {
        self.calls.values().map(Call::view).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_with(id: &str, parties: &[(&str, State)]) -> Call {
        let mut c = Call::new(id, parties[0].0, "x");
        c.parties = parties
            .iter()
            .map(|(d, s)| Party {
                device: (*d).to_owned(),
                internal: true,
                state: s.clone(),
            })
            .collect();
        c
    }

    #[test]
    fn a_device_finds_its_calls_by_state_in_call_id_order() {
        let mut t = CallTable::new();
        t.insert(call_with(
            "2",
            &[("100", State::Hold), ("101", State::Connected)],
        ));
        t.insert(call_with(
            "1",
            &[("100", State::Hold), ("102", State::Connected)],
        ));
        t.insert(call_with(
            "3",
            &[("100", State::Connected), ("103", State::Connected)],
        ));
        assert_eq!(t.in_state("100", &[State::Hold]).as_deref(), Some("1"));
        assert_eq!(
            t.in_state("100", &[State::Alerting, State::Connected])
                .as_deref(),
            Some("3")
        );
        assert_eq!(t.connected_besides("100", "3"), None);
        assert_eq!(t.connected_besides("100", "1").as_deref(), Some("3"));
        assert!(t.is_busy("100"));
        assert!(!t.is_busy("104"));
    }

    #[test]
    fn a_device_that_left_a_call_no_longer_finds_it() {
        let mut t = CallTable::new();
        t.insert(call_with(
            "1",
            &[("100", State::Connected), ("101", State::Connected)],
        ));
        if let Some(c) = t.get_mut("1") {
            c.parties.retain(|p| p.device != "100");
        }
        assert_eq!(t.of("100").count(), 0);
        assert!(!t.is_busy("100"));
        assert_eq!(t.of("101").count(), 1);
    }

    #[test]
    fn call_ids_count_up() {
        let mut t = CallTable::new();
        assert_eq!(t.new_id(CallIdFormat::Decimal), "1");
        assert_eq!(t.new_id(CallIdFormat::Decimal), "2");
    }
}
