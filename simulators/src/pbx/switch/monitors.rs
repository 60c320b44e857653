//! The monitor table (device and call monitors, by cross-reference ID) and the queue of events
//! it addresses to each monitor's link.

use std::collections::{HashMap, VecDeque};

use rcc_protocol::csta::{CallEvent, Event, LocalConnectionState as State};

use super::config::CallIdFormat;

/// Who owns a monitor (the link it was started on).
pub type Owner = u64;

/// An event for one monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The link that owns the monitor.
    pub owner: Owner,
    /// The event, carrying that monitor's cross-reference ID.
    pub event: Event,
}

/// What a monitor watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Watch {
    Device(String),
    Call(String),
}

#[derive(Debug, Clone)]
struct Monitor {
    owner: Owner,
    watch: Watch,
}

/// Every monitor, and the events queued for their links.
#[derive(Debug, Default)]
pub(super) struct Monitors {
    monitors: HashMap<String, Monitor>,
    /// Device monitors per device, in the order they were started.
    by_device: HashMap<String, Vec<String>>,
    has_call_monitors: bool,
    notices: VecDeque<Notice>,
    next_xref: u64,
}

impl Monitors {
    pub(super) fn new() -> Self {
        Monitors {
            next_xref: 1,
            ..Monitors::default()
        }
    }

    /// Starts a monitor for `owner`; returns its cross-reference ID.
    pub(super) fn start(&mut self, owner: Owner, watch: Watch, format: CallIdFormat) -> String {
        let n = self.next_xref;
        self.next_xref += 1;
        let xref = format.cross_ref(n);
        match &watch {
            Watch::Device(d) => self
                .by_device
                .entry(d.clone())
                .or_default()
                .push(xref.clone()),
            Watch::Call(_) => self.has_call_monitors = true,
        }
        self.monitors.insert(xref.clone(), Monitor { owner, watch });
        xref
    }

    /// Stops monitor `xref` if `owner` holds it; false when it does not.
    pub(super) fn stop(&mut self, owner: Owner, xref: &str) -> bool {
        match self.monitors.get(xref) {
            Some(m) if m.owner == owner => {
                self.remove(xref);
                true
            }
            _ => false,
        }
    }

    /// Ends monitor `xref` whoever holds it (the switch's own decision); its owner, if it
    /// existed.
    pub(super) fn end(&mut self, xref: &str) -> Option<Owner> {
        let owner = self.monitors.get(xref)?.owner;
        self.remove(xref);
        Some(owner)
    }

    /// Drops every monitor of `owner`.
    pub(super) fn remove_owner(&mut self, owner: Owner) {
        let gone: Vec<String> = self
            .monitors
            .iter()
            .filter(|(_, m)| m.owner == owner)
            .map(|(x, _)| x.clone())
            .collect();
        for xref in gone {
            self.remove(&xref);
        }
    }

    fn remove(&mut self, xref: &str) {
        if let Some(Monitor {
            watch: Watch::Device(d),
            ..
        }) = self.monitors.remove(xref)
            && let Some(list) = self.by_device.get_mut(&d)
        {
            list.retain(|x| x != xref);
            if list.is_empty() {
                self.by_device.remove(&d);
            }
        }
    }

    /// Number of monitors on `device`.
    pub(super) fn on_device(&self, device: &str) -> usize {
        self.by_device.get(device).map_or(0, Vec::len)
    }

    /// Monitors held by `owner`: cross-reference ID and watched device or call.
    pub(super) fn of_owner(&self, owner: Owner) -> Vec<(String, String)> {
        self.monitors
            .iter()
            .filter(|(_, m)| m.owner == owner)
            .map(|(x, m)| {
                let w = match &m.watch {
                    Watch::Device(d) | Watch::Call(d) => d.clone(),
                };
                (x.clone(), w)
            })
            .collect()
    }

    pub(super) fn count(&self) -> usize {
        self.monitors.len()
    }

    /// Call monitors of `olds` now watch `new` (the calls were merged into it).
    pub(super) fn move_calls(&mut self, olds: &[String], new: &str) {
        for m in self.monitors.values_mut() {
            if let Watch::Call(c) = &m.watch
                && olds.contains(c)
            {
                m.watch = Watch::Call(new.to_owned());
            }
        }
    }

    /// Drops the call monitors of a call that ended.
    pub(super) fn forget_call(&mut self, call: &str) {
        // Device monitors outnumber call monitors by far: skip the walk when there are none.
        if self.has_call_monitors {
            self.monitors
                .retain(|_, m| !matches!(&m.watch, Watch::Call(c) if c == call));
        }
    }

    /// Queues a call event: for each device of `devices` in order, one per monitor of that
    /// device with that device's state; then one per monitor of `call`, without a state.
    pub(super) fn call_event(
        &mut self,
        call: &str,
        event: &CallEvent,
        devices: &[(String, State)],
    ) {
        for (device, state) in devices {
            let Some(xrefs) = self.by_device.get(device) else {
                continue;
            };
            for xref in xrefs {
                let Some(m) = self.monitors.get(xref) else {
                    continue;
                };
                let mut e = event.clone();
                e.cross_ref.clone_from(xref);
                e.local_state = Some(state.clone());
                self.notices.push_back(Notice {
                    owner: m.owner,
                    event: Event::Call(e),
                });
            }
        }
        for (xref, owner) in self.call_monitors(call) {
            let mut e = event.clone();
            e.cross_ref = xref;
            e.local_state = None;
            self.notices.push_back(Notice {
                owner,
                event: Event::Call(e),
            });
        }
    }

    fn call_monitors(&self, call: &str) -> Vec<(String, Owner)> {
        if !self.has_call_monitors {
            return Vec::new();
        }
        self.monitors
            .iter()
            .filter(|(_, m)| m.watch == Watch::Call(call.to_owned()))
            .map(|(x, m)| (x.clone(), m.owner))
            .collect()
    }

    /// Queues a device event (forwarding, do-not-disturb) for every monitor of `device`.
    pub(super) fn device_event(&mut self, device: &str, event: &Event) {
        let Some(xrefs) = self.by_device.get(device) else {
            return;
        };
        for xref in xrefs {
            if let Some(m) = self.monitors.get(xref) {
                let mut e = event.clone();
                e.set_cross_ref(xref);
                self.notices.push_back(Notice {
                    owner: m.owner,
                    event: e,
                });
            }
        }
    }

    /// Takes the queued events.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Notice> + '_ {
        self.notices.drain(..)
    }

    pub(super) fn has_notices(&self) -> bool {
        !self.notices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use rcc_protocol::csta::CallEventKind;

    use super::*;

    const F: CallIdFormat = CallIdFormat::Decimal;

    fn held() -> CallEvent {
        CallEvent::new(CallEventKind::Held, "")
    }

    fn xrefs(m: &mut Monitors) -> Vec<(Owner, String, Option<State>)> {
        m.drain()
            .map(|n| match n.event {
                Event::Call(e) => (n.owner, e.cross_ref, e.local_state),
                other => (n.owner, other.cross_ref().to_owned(), None),
            })
            .collect()
    }

    #[test]
    fn device_monitors_get_their_state_then_call_monitors_none() {
        let mut m = Monitors::new();
        let a = m.start(1, Watch::Device("100".into()), F);
        let b = m.start(2, Watch::Device("100".into()), F);
        let c = m.start(3, Watch::Device("101".into()), F);
        let k = m.start(4, Watch::Call("9".into()), F);
        assert_eq!([&a, &b, &c, &k], ["1", "2", "3", "4"]);
        let devices = [
            ("101".to_owned(), State::Alerting),
            ("100".to_owned(), State::Hold),
        ];
        m.call_event("9", &held(), &devices);
        assert_eq!(
            xrefs(&mut m),
            [
                (3, c, Some(State::Alerting)),
                (1, a, Some(State::Hold)),
                (2, b, Some(State::Hold)),
                (4, k, None),
            ]
        );
    }

    #[test]
    fn only_the_owner_stops_a_monitor_and_a_gone_link_loses_all() {
        let mut m = Monitors::new();
        let a = m.start(1, Watch::Device("100".into()), F);
        m.start(1, Watch::Call("9".into()), F);
        m.start(2, Watch::Device("100".into()), F);
        assert!(!m.stop(2, &a));
        assert_eq!(m.on_device("100"), 2);
        assert!(m.stop(1, &a));
        assert!(!m.stop(1, &a), "already stopped");
        assert_eq!(m.on_device("100"), 1);
        m.remove_owner(1);
        assert_eq!(m.count(), 1);
        assert_eq!(m.of_owner(2), [("3".to_owned(), "100".to_owned())]);
    }

    #[test]
    fn call_monitors_follow_a_merge_and_go_with_the_call() {
        let mut m = Monitors::new();
        m.start(1, Watch::Call("1".into()), F);
        m.move_calls(&["1".to_owned()], "3");
        assert_eq!(m.of_owner(1), [("1".to_owned(), "3".to_owned())]);
        m.forget_call("3");
        assert_eq!(m.count(), 0);
    }
}
