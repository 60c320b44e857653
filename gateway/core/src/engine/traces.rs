//! Which sessions are traced (`[observe.session_traces]`), and the notes the engine emits for
//! them; the shell writes the files.

use std::collections::VecDeque;

use super::monitors::{MonitorState, Monitors};
use super::output::Output;
use super::pending::Purpose;
use super::sessions::Sessions;
use crate::ids::{FlowId, SessionId};
use crate::notes::{Leg, SessionNote, Way};
use crate::rcc::authz::normalise_user;

/// Whose sessions are traced.
#[derive(Debug)]
pub(crate) struct TraceFilter {
    /// Normalised user URIs (empty: everyone); `None`: session traces are off.
    users: Option<Vec<String>>,
}

impl TraceFilter {
    pub(crate) fn new(users: Option<&[String]>) -> TraceFilter {
        TraceFilter {
            users: users.map(|u| u.iter().map(|u| normalise_user(u)).collect()),
        }
    }

    /// Session traces are configured.
    pub(crate) fn on(&self) -> bool {
        self.users.is_some()
    }

    /// A new session of `user` is to be traced.
    pub(crate) fn wants(&self, user: &str) -> bool {
        self.users
            .as_ref()
            .is_some_and(|u| u.is_empty() || u.iter().any(|x| x == user))
    }

    pub(crate) fn traced(&self, sessions: &Sessions, sid: SessionId) -> bool {
        self.on() && sessions.get(sid).is_some_and(|s| s.traced)
    }

    /// The traced sessions on a device, those waiting for its monitor included.
    pub(crate) fn on_device(
        &self,
        sessions: &Sessions,
        monitors: &Monitors,
        device: &str,
    ) -> Vec<SessionId> {
        if !self.on() {
            return Vec::new();
        }
        let Some(m) = monitors.get(device) else {
            return Vec::new();
        };
        let waiting: &[_] = match &m.state {
            MonitorState::Starting { waiting } => waiting,
            _ => &[],
        };
        let mut v: Vec<SessionId> = m
            .sessions
            .iter()
            .copied()
            .chain(waiting.iter().map(|w| w.session))
            .filter(|s| self.traced(sessions, *s))
            .collect();
        // A session may have several requests waiting, not necessarily side by side.
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The traced sessions a PBX request (and so its answer) belongs to.
    pub(crate) fn of_purpose(
        &self,
        sessions: &Sessions,
        monitors: &Monitors,
        purpose: &Purpose,
    ) -> Vec<SessionId> {
        match purpose {
            Purpose::Client { answer, .. } if self.traced(sessions, answer.session) => {
                vec![answer.session]
            }
            Purpose::Release { session } if self.traced(sessions, *session) => vec![*session],
            Purpose::Monitor { device } | Purpose::Snapshot { device } => {
                self.on_device(sessions, monitors, device)
            }
            _ => Vec::new(),
        }
    }
}

/// A SIP message of a traced session.
pub(crate) fn sip_note(
    outputs: &mut VecDeque<Output>,
    session: SessionId,
    flow: FlowId,
    way: Way,
    bytes: Vec<u8>,
) {
    outputs.push_back(Output::Trace(SessionNote::Data {
        session,
        leg: Leg::Sip(flow),
        way,
        bytes,
    }));
}

/// A PBX frame for each of `sessions`.
pub(crate) fn pbx_notes(
    outputs: &mut VecDeque<Output>,
    sessions: &[SessionId],
    way: Way,
    frame: Option<&[u8]>,
) {
    let Some(frame) = frame else {
        return;
    };
    for &session in sessions {
        outputs.push_back(Output::Trace(SessionNote::Data {
            session,
            leg: Leg::Pbx,
            way,
            bytes: frame.to_vec(),
        }));
    }
}

/// A traced session and its last transaction are over.
pub(crate) fn end_note(outputs: &mut VecDeque<Output>, session: SessionId) {
    outputs.push_back(Output::Trace(SessionNote::End { session }));
}
