//! The conformance checker: the rules a gateway's messages to one line must keep, checked as
//! they arrive, and the list of those broken. It tracks the calls at the line as far as the
//! rules need (which calls it knows, each connection's latest event, MakeCalls awaiting their
//! answer), and takes violations other parts found, so they are all listed in order.
//!
//! Rules:
//! - every event carries the monitorCrossRefID of MonitorStartResponse, and none comes before it;
//! - no ServiceInitiated/Originated for the line's new call while a MakeCall awaits its answer;
//! - the LineURI comes back verbatim (not rewritten to another spelling of the same number),
//!   in events and in MakeCallResponse;
//! - no connection gets the same event (kind, local state, cause) twice in a row;
//! - the gateway's requests in the dialog come with non-decreasing CSeq.

use std::collections::{BTreeMap, HashMap, HashSet};

use rcc_protocol::csta::{
    self, CallEvent, CallEventKind, ConnectionId, Event, LocalConnectionState, Response,
};
use rcc_protocol::sip::Message;
use serde::Serialize;

#[cfg(test)]
mod tests;

/// At most this many violations are kept: a gateway that breaks a rule on every event must not
/// exhaust memory.
const MAX_VIOLATIONS: usize = 1000;

/// What the endpoint knows of a call at its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallInfo {
    /// The line's connection state as the latest event reported.
    pub state: String,
    /// Kinds of events received for the call, in order.
    pub events: Vec<String>,
}

/// An event as the repeat rule compares it: kind, local connection state, cause.
type EventShape = (CallEventKind, String, String);

/// The checker for one line.
#[derive(Debug)]
pub(super) struct ConformanceChecker {
    /// The LineURI, as the endpoint sent it.
    line: String,
    violations: Vec<String>,
    /// Calls at the line, by callID.
    calls: BTreeMap<String, CallInfo>,
    /// Calls an event or a MakeCallResponse named, until they clear.
    known_calls: HashSet<String>,
    /// Each live connection's (callID, deviceID) latest event.
    last_events: HashMap<(String, String), EventShape>,
    /// MakeCalls sent and not yet answered.
    makecalls_pending: usize,
    /// The gateway's last request in a dialog (Call-ID, CSeq number).
    gateway_cseq: Option<(String, u32)>,
}

impl ConformanceChecker {
    /// A checker for the line `line` (the LineURI exactly as sent).
    pub fn new(line: impl Into<String>) -> Self {
        ConformanceChecker {
            line: line.into(),
            violations: Vec::new(),
            calls: BTreeMap::new(),
            known_calls: HashSet::new(),
            last_events: HashMap::new(),
            makecalls_pending: 0,
            gateway_cseq: None,
        }
    }

    /// Records a broken rule (up to [`MAX_VIOLATIONS`]).
    pub fn record(&mut self, why: String) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(why);
        }
    }

    /// Rules the gateway broke, in order.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Calls at the line, by callID.
    pub fn calls(&self) -> &BTreeMap<String, CallInfo> {
        &self.calls
    }

    /// Connections whose latest event is remembered.
    pub fn remembered_connections(&self) -> usize {
        self.last_events.len()
    }

    /// A MakeCall went out.
    pub fn makecall_sent(&mut self) {
        self.makecalls_pending += 1;
    }

    /// A user action was answered with 2xx carrying `answer`; `makecall` when it was a MakeCall.
    /// A MakeCallResponse names the new call, and must echo the line verbatim.
    pub fn action_answered(&mut self, answer: Option<&csta::Message>, makecall: bool) {
        if let Some(csta::Message::Response(Response::MakeCall { calling })) = answer {
            self.makecalls_pending = self.makecalls_pending.saturating_sub(1);
            self.check_echo(calling, "MakeCallResponse");
            if let Some(c) = &calling.call_id {
                self.known_calls.insert(c.clone());
            }
        } else if self.makecalls_pending > 0 && makecall {
            self.makecalls_pending -= 1;
        }
    }

    /// A user action failed (SIP error or timeout).
    pub fn action_failed(&mut self) {
        // Any failed action settles a pending MakeCall, not only a failed MakeCall.
        self.makecalls_pending = self.makecalls_pending.saturating_sub(1);
    }

    /// The dialog is gone: no MakeCall will be answered.
    pub fn dialog_lost(&mut self) {
        self.makecalls_pending = 0;
    }

    /// The gateway's requests in a dialog come with increasing CSeq (RFC 3261 §12.2.1.1): one
    /// that goes back arrived out of order (an equal one is a retransmission).
    pub fn check_order(&mut self, request: &Message) {
        let (Ok(call_id), Ok(cseq)) = (request.call_id(), request.cseq()) else {
            return;
        };
        if let Some((last_call, last)) = &self.gateway_cseq
            && last_call == call_id
            && cseq.seq < *last
        {
            let why = format!(
                "{} with CSeq {} after CSeq {last}: out of order",
                cseq.method, cseq.seq
            );
            self.record(why);
            return;
        }
        self.gateway_cseq = Some((call_id.to_owned(), cseq.seq));
    }

    /// Checks an event against every rule and updates the calls. `xref` is the
    /// monitorCrossRefID of MonitorStartResponse, `None` before it.
    pub fn event(&mut self, e: &Event, xref: Option<&str>) {
        match xref {
            None => self.record(format!("{} before MonitorStartResponse", e.root_name())),
            Some(x) if x != e.cross_ref() => self.record(format!(
                "{} with monitorCrossRefID {:?}, expected {x:?}",
                e.root_name(),
                e.cross_ref()
            )),
            Some(_) => {}
        }
        let Event::Call(c) = e else {
            return;
        };
        let call = c
            .connection
            .as_ref()
            .and_then(|x| x.call_id.clone())
            .unwrap_or_default();
        self.check_makecall_order(c, &call);
        if let Some(connection) = &c.connection {
            self.check_echo(connection, c.kind.root_name());
        }
        let state = c
            .local_state
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        self.check_repeat(c, &call, &state);
        self.track(c, call, state);
    }

    /// The line's new call is announced only after MakeCallResponse named it.
    fn check_makecall_order(&mut self, c: &CallEvent, call: &str) {
        let mine = c
            .connection
            .as_ref()
            .and_then(|x| x.device_id.as_deref())
            .is_some_and(|d| d == self.line);
        if self.makecalls_pending > 0
            && mine
            && matches!(
                c.kind,
                CallEventKind::ServiceInitiated | CallEventKind::Originated
            )
            && !self.known_calls.contains(call)
        {
            self.record(format!(
                "{} for call {call} before MakeCallResponse",
                c.kind.root_name()
            ));
        }
    }

    /// A device that is the line's number spelled differently is the line rewritten.
    fn check_echo(&mut self, c: &ConnectionId, what: &str) {
        if let Some(d) = c.device_id.as_deref()
            && d != self.line
            && same_number(d, &self.line)
        {
            self.record(format!(
                "{what}: the line came back as {d:?}, not verbatim {:?}",
                self.line
            ));
        }
    }

    /// The same event twice in a row for one connection tells the user nothing new, and Lync
    /// would show a second pop-up for it (rcc-sip.md §6.2, event storms).
    fn check_repeat(&mut self, c: &CallEvent, call: &str, state: &str) {
        let Some(device) = c.connection.as_ref().and_then(|x| x.device_id.clone()) else {
            return;
        };
        let cause = c
            .cause
            .as_ref()
            .map(|x| x.as_str().to_owned())
            .unwrap_or_default();
        let key = (call.to_owned(), device);
        let shape = (c.kind, state.to_owned(), cause);
        if self.last_events.get(&key) == Some(&shape) {
            let why = format!(
                "{} for call {call} repeats connection {:?}'s previous event",
                c.kind.root_name(),
                key.1
            );
            self.record(why);
        }
        if c.kind == CallEventKind::ConnectionCleared {
            self.last_events.remove(&key);
        } else {
            self.last_events.insert(key, shape);
        }
    }

    /// Updates the calls at the line: the event's call, a call the line moved into, and
    /// forgetting a call that cleared.
    fn track(&mut self, c: &CallEvent, call: String, state: String) {
        let entry = self.calls.entry(call.clone()).or_insert_with(|| CallInfo {
            state: String::new(),
            events: Vec::new(),
        });
        entry.events.push(c.kind.root_name().to_owned());
        if !state.is_empty() {
            entry.state = state;
        }
        self.known_calls.insert(call.clone());
        // Transfers and conferences move the line into a new call.
        for item in &c.connections {
            if let Some(new) = &item.new_connection
                && new.device_id.as_deref() == Some(self.line.as_str())
                && let Some(id) = &new.call_id
            {
                let st = c
                    .local_state
                    .clone()
                    .unwrap_or(LocalConnectionState::Connected);
                if st != LocalConnectionState::Null {
                    self.calls.insert(
                        id.clone(),
                        CallInfo {
                            state: st.as_str().to_owned(),
                            events: vec![c.kind.root_name().to_owned()],
                        },
                    );
                    self.known_calls.insert(id.clone());
                }
            }
        }
        if c.local_state == Some(LocalConnectionState::Null)
            || (c.kind == CallEventKind::CallCleared)
        {
            // Forgotten with the call, so a long load run's memory stays flat (the far end's
            // connection, too, which is not always reported cleared).
            self.calls.remove(&call);
            self.known_calls.remove(&call);
            self.last_events.retain(|(k, _), _| *k != call);
        }
    }
}

/// The distinctive part of a LineURI (its number), for spotting a rewritten echo.
fn line_key(line: &str) -> &str {
    let s = line.strip_prefix("tel:").unwrap_or(line);
    s.split(';').next().unwrap_or(s)
}

fn same_number(a: &str, b: &str) -> bool {
    line_key(a) == line_key(b)
}
