//! One PBX monitor per device, shared by every session on it: its state as a type (no monitor,
//! starting with requests parked on it, up with its cross-reference ID), the sessions on it, and
//! the calls it reported (kept across a link loss, to reconcile after the resync).

use std::collections::{HashMap, HashSet};
use std::mem;

use rcc_protocol::csta;

use super::pending::PendingAnswer;
use crate::ids::SessionId;
use crate::pbx::repeats::Repeats;

/// Where a device's PBX monitor is.
#[derive(Debug, Default)]
pub(crate) enum MonitorState {
    /// None: not asked for yet, lost with the link, or refused.
    #[default]
    Down,
    /// MonitorStart sent; these clients' MonitorStarts wait for its answer.
    Starting { waiting: Vec<PendingAnswer> },
    /// The PBX monitors the device under `xref`.
    Up {
        xref: String,
        /// The last event of each connection (see [`Repeats`]).
        repeats: Repeats,
    },
}

/// One device and its monitor.
#[derive(Debug, Default)]
pub(crate) struct Monitor {
    pub(crate) state: MonitorState,
    /// Sessions attached (they have their own cross-reference ID).
    pub(crate) sessions: Vec<SessionId>,
    /// Calls the device is in, as the events told (for resynchronisation).
    calls: HashSet<String>,
}

impl Monitor {
    /// The PBX monitor is up.
    pub(crate) fn is_up(&self) -> bool {
        matches!(self.state, MonitorState::Up { .. })
    }

    /// A MonitorStart for it is in flight.
    pub(crate) fn is_starting(&self) -> bool {
        matches!(self.state, MonitorState::Starting { .. })
    }
}

/// What a client's MonitorStart finds on its device.
#[derive(Debug)]
pub(crate) enum Parked {
    /// The monitor is up: attach the session now.
    Ready(PendingAnswer),
    /// The request waits for the MonitorStart already sent.
    Waiting,
    /// The request waits; send the device's MonitorStart.
    Start,
}

/// A device's monitor came up.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) waiting: Vec<PendingAnswer>,
    /// Sessions were already on it (a resync): ask for the device's calls.
    pub(crate) resync: bool,
}

/// What the PBX reported for a monitored device.
#[derive(Debug)]
pub(crate) enum Reported<'a> {
    /// Fan it out to the device's sessions.
    News(&'a str),
    /// An exact repeat of its connection's previous event: drop it.
    Repeat(&'a str),
}

/// The devices watched and their monitors.
#[derive(Debug, Default)]
pub(crate) struct Monitors {
    devices: HashMap<String, Monitor>,
    /// Cross-reference ID → device, for every monitor that is up.
    by_xref: HashMap<String, String>,
}

impl Monitors {
    /// PBX monitors held.
    pub(crate) fn count(&self) -> usize {
        self.by_xref.len()
    }

    pub(crate) fn get(&self, device: &str) -> Option<&Monitor> {
        self.devices.get(device)
    }

    /// Whether clients' MonitorStarts wait for the device's monitor.
    pub(crate) fn has_waiting(&self, device: &str) -> bool {
        self.devices.get(device).is_some_and(
            |m| matches!(&m.state, MonitorState::Starting { waiting } if !waiting.is_empty()),
        )
    }

    /// The sessions on a device.
    pub(crate) fn sessions_on(&self, device: &str) -> &[SessionId] {
        self.devices.get(device).map_or(&[], |m| &m.sessions)
    }

    /// A client's MonitorStart on `device` (whose link is up).
    pub(crate) fn park(&mut self, device: &str, answer: PendingAnswer) -> Parked {
        let m = self.devices.entry(device.to_owned()).or_default();
        match &mut m.state {
            MonitorState::Up { .. } => Parked::Ready(answer),
            MonitorState::Starting { waiting } => {
                waiting.push(answer);
                Parked::Waiting
            }
            MonitorState::Down => {
                m.state = MonitorState::Starting {
                    waiting: vec![answer],
                };
                Parked::Start
            }
        }
    }

    /// Marks a device's MonitorStart as sent, unless one is in flight or the monitor is up.
    pub(crate) fn begin_start(&mut self, device: &str) -> bool {
        match self.devices.get_mut(device) {
            Some(m) if matches!(m.state, MonitorState::Down) => {
                m.state = MonitorState::Starting {
                    waiting: Vec::new(),
                };
                true
            }
            _ => false,
        }
    }

    /// The MonitorStart could not be sent or was refused: the parked requests, to answer.
    pub(crate) fn start_failed(&mut self, device: &str) -> Vec<PendingAnswer> {
        match self.devices.get_mut(device) {
            Some(m) => match mem::take(&mut m.state) {
                MonitorState::Starting { waiting } => waiting,
                other => {
                    m.state = other;
                    Vec::new()
                }
            },
            None => Vec::new(),
        }
    }

    /// The PBX granted the MonitorStart of `device` under `xref`.
    pub(crate) fn started(&mut self, device: &str, xref: String) -> Started {
        let Some(m) = self.devices.get_mut(device) else {
            return Started {
                waiting: Vec::new(),
                resync: false,
            };
        };
        let waiting = match mem::take(&mut m.state) {
            MonitorState::Starting { waiting } => waiting,
            _ => Vec::new(),
        };
        self.by_xref.insert(xref.clone(), device.to_owned());
        // A new monitor: what the PBX reports now is news.
        m.state = MonitorState::Up {
            xref,
            repeats: Repeats::default(),
        };
        Started {
            waiting,
            resync: !m.sessions.is_empty(),
        }
    }

    /// The link is down: no monitor survives; the parked requests, to answer.
    pub(crate) fn link_lost(&mut self) -> Vec<PendingAnswer> {
        self.by_xref.clear();
        let mut parked = Vec::new();
        for m in self.devices.values_mut() {
            if let MonitorState::Starting { waiting } = mem::take(&mut m.state) {
                parked.extend(waiting);
            }
        }
        parked
    }

    /// For a resync: every device with sessions whose monitor is not starting, each with the
    /// cross-reference ID of the monitor it had (to stop); all are now down.
    pub(crate) fn take_for_resync(&mut self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        for (device, m) in &mut self.devices {
            if m.sessions.is_empty() || matches!(m.state, MonitorState::Starting { .. }) {
                continue;
            }
            let old = match mem::take(&mut m.state) {
                MonitorState::Up { xref, .. } => {
                    self.by_xref.remove(&xref);
                    Some(xref)
                }
                _ => None,
            };
            out.push((device.clone(), old));
        }
        out
    }

    /// The PBX ended monitor `xref` itself: the device it watched, now without a monitor.
    pub(crate) fn ended(&mut self, xref: &str) -> Option<String> {
        let device = self.by_xref.remove(xref)?;
        if let Some(m) = self.devices.get_mut(&device) {
            m.state = MonitorState::Down;
        }
        Some(device)
    }

    /// Puts a session on a device whose monitor is up.
    pub(crate) fn attach(&mut self, device: &str, sid: SessionId) {
        if let Some(m) = self.devices.get_mut(device)
            && !m.sessions.contains(&sid)
        {
            m.sessions.push(sid);
        }
    }

    /// Takes a session off a device.
    pub(crate) fn detach(&mut self, device: &str, sid: SessionId) {
        if let Some(m) = self.devices.get_mut(device) {
            m.sessions.retain(|x| *x != sid);
        }
    }

    /// Forgets a device no session uses and no MonitorStart is pending for: `Some` with the
    /// cross-reference ID of its monitor, if it had one up, to stop.
    pub(crate) fn release_if_unused(&mut self, device: &str) -> Option<Option<String>> {
        let m = self.devices.get(device)?;
        if !m.sessions.is_empty() || matches!(m.state, MonitorState::Starting { .. }) {
            return None;
        }
        let m = self.devices.remove(device)?;
        match m.state {
            MonitorState::Up { xref, .. } => {
                self.by_xref.remove(&xref);
                Some(Some(xref))
            }
            _ => Some(None),
        }
    }

    /// The device a PBX event is for, and whether it is news; the device's calls are updated.
    pub(crate) fn report(&mut self, xref: &str, event: &csta::Event) -> Option<Reported<'_>> {
        let (device, m) = self
            .by_xref
            .get(xref)
            .and_then(|d| self.devices.get_mut(d).map(|m| (d.as_str(), m)))?;
        let csta::Event::Call(c) = event else {
            return Some(Reported::News(device));
        };
        if let MonitorState::Up { repeats, .. } = &mut m.state
            && repeats.is_repeat(c)
        {
            return Some(Reported::Repeat(device));
        }
        if let Some(call) = c.connection.as_ref().and_then(|c| c.call_id.as_ref()) {
            if c.local_state == Some(csta::LocalConnectionState::Null)
                || c.kind == csta::CallEventKind::CallCleared
            {
                m.calls.remove(call);
            } else {
                m.calls.insert(call.clone());
            }
        }
        // A transfer or conference ends the secondary old call.
        if let Some(old) = c
            .secondary_old_call
            .as_ref()
            .and_then(|o| o.call_id.as_ref())
        {
            m.calls.remove(old);
        }
        for item in &c.connections {
            if let Some(new) = item.new_connection.as_ref().and_then(|n| n.call_id.clone())
                && c.local_state != Some(csta::LocalConnectionState::Null)
            {
                m.calls.insert(new);
            }
        }
        Some(Reported::News(device))
    }

    /// Whether `device`'s monitor knows it is in `call`.
    pub(crate) fn has_call(&self, device: &str, call: &str) -> bool {
        self.devices
            .get(device)
            .is_some_and(|m| m.calls.contains(call))
    }

    /// After a resync: the calls the device was in that the PBX no longer has (forgotten now);
    /// the live ones are remembered.
    pub(crate) fn reconcile(&mut self, device: &str, live: &[&str]) -> Vec<String> {
        let Some(m) = self.devices.get_mut(device) else {
            return Vec::new();
        };
        let gone: Vec<String> = m
            .calls
            .iter()
            .filter(|c| !live.contains(&c.as_str()))
            .cloned()
            .collect();
        for c in &gone {
            m.calls.remove(c);
        }
        m.calls.extend(live.iter().map(|c| (*c).to_owned()));
        gone
    }
}

#[cfg(test)]
mod tests {
    use rcc_protocol::sip::Message;

    use super::*;
    use crate::ids::FlowId;
    use crate::sip::transaction::TxKey;

    fn answer(session: u64) -> PendingAnswer {
        let req = Message::parse(
            format!(
                "INFO sip:gw SIP/2.0\r\nVia: SIP/2.0/TCP fe;branch=z9hG4bK{session}\r\n\
                 From: <sip:a@b>;tag=1\r\nTo: <sip:gw>;tag=2\r\nCall-ID: c{session}\r\n\
                 CSeq: 2 INFO\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("test INFO");
        let checked = req.check().expect("valid");
        PendingAnswer {
            session: SessionId(session),
            tx: TxKey::of(&req, &checked).expect("key"),
            flow: FlowId(1),
            head: Box::new(Message::response_to(&req, 200, "OK", "t")),
        }
    }

    fn event(xref: &str, call: &str, state: csta::LocalConnectionState) -> csta::Event {
        let mut e = csta::CallEvent::new(csta::CallEventKind::Delivered, xref);
        e.connection = Some(csta::ConnectionId::new(call, "100"));
        e.local_state = Some(state);
        csta::Event::Call(e)
    }

    #[test]
    fn requests_park_on_one_monitor_start_and_attach_when_it_is_up() {
        let mut m = Monitors::default();
        assert!(matches!(m.park("100", answer(1)), Parked::Start));
        assert!(matches!(m.park("100", answer(2)), Parked::Waiting));
        assert!(!m.begin_start("100"), "one MonitorStart in flight");
        let started = m.started("100", "px1".into());
        assert_eq!(started.waiting.len(), 2);
        assert!(!started.resync, "nobody was on it yet");
        assert_eq!(m.count(), 1);
        assert!(matches!(m.park("100", answer(3)), Parked::Ready(_)));
    }

    #[test]
    fn a_lost_link_answers_the_parked_and_a_resync_restarts_what_sessions_use() {
        let mut m = Monitors::default();
        let _ = m.park("100", answer(1));
        let _ = m.started("100", "px1".into());
        m.attach("100", SessionId(1));
        let _ = m.park("200", answer(2));
        let parked = m.link_lost();
        assert_eq!(parked.len(), 1, "the request waiting on device 200");
        assert_eq!(m.count(), 0);
        let plan = m.take_for_resync();
        assert_eq!(plan, vec![("100".to_owned(), None)], "200 has no session");
        assert!(m.begin_start("100"));
        let started = m.started("100", "px2".into());
        assert!(started.resync, "its sessions need their calls reconciled");
    }

    #[test]
    fn the_last_session_releases_the_monitor_unless_a_start_is_pending() {
        let mut m = Monitors::default();
        let _ = m.park("100", answer(1));
        assert_eq!(m.release_if_unused("100"), None, "starting");
        let _ = m.started("100", "px1".into());
        m.attach("100", SessionId(1));
        assert_eq!(m.release_if_unused("100"), None, "in use");
        m.detach("100", SessionId(1));
        assert_eq!(m.release_if_unused("100"), Some(Some("px1".to_owned())));
        assert_eq!(m.count(), 0);
        assert!(m.get("100").is_none());
    }

    #[test]
    fn events_keep_the_calls_for_reconciling_and_repeats_are_told_apart() {
        use csta::LocalConnectionState::{Alerting, Null};
        let mut m = Monitors::default();
        let _ = m.park("100", answer(1));
        let _ = m.started("100", "px1".into());
        assert!(m.report("other", &event("other", "c1", Alerting)).is_none());
        let e = event("px1", "c1", Alerting);
        assert!(matches!(m.report("px1", &e), Some(Reported::News("100"))));
        assert!(matches!(m.report("px1", &e), Some(Reported::Repeat("100"))));
        let _ = m.report("px1", &event("px1", "c2", Alerting));
        let _ = m.report("px1", &event("px1", "c2", Null));
        let mut gone = m.reconcile("100", &["c3"]);
        gone.sort();
        assert_eq!(gone, vec!["c1"], "c2 cleared itself, c3 is live");
        assert_eq!(m.reconcile("100", &[]), vec!["c3"]);
    }
}
