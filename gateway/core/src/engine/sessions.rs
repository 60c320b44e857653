//! The session table: sessions by ID and by dialog, admission of new ones, and their timers
//! (session expiry, 2xx retransmission), cancelled with the session.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rcc_protocol::csta::{self, Request};
use rcc_protocol::sip::{Dialog, Message, NameAddr};

use super::output::target_of;
use super::session::{AckWait, Delivery, RccSession};
use super::uas::{self, Refusal, Uas};
use crate::config::{PbxDownAnswer, SipConfig};
use crate::ids::{FlowId, Ids, SessionId};
use crate::metrics::RefusalReason;
use crate::rcc::authz::normalise_user;
use crate::setup::Policy;
use crate::timers::Timers;

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// A session timer that fell due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionClock {
    /// The session was not refreshed in time.
    Expired(SessionId),
    /// The 2xx to INVITE is due for retransmission (or its ACK for giving up).
    Retransmit(SessionId),
}

/// A refused INVITE, and how to count it.
#[derive(Debug)]
pub(crate) struct AdmissionRefusal {
    pub(crate) refusal: Refusal,
    /// `rcc_gateway_refused` reason, if counted there.
    pub(crate) refused: Option<RefusalReason>,
    /// Counted as malformed.
    pub(crate) malformed: bool,
    /// Who asked for which line, when the request got that far (for the log line).
    pub(crate) who: Option<(String, String)>,
}

impl AdmissionRefusal {
    fn plain(code: u16, why: &str) -> AdmissionRefusal {
        AdmissionRefusal {
            refusal: Refusal::new(code, why),
            refused: None,
            malformed: false,
            who: None,
        }
    }

    /// A refusal counted under `reason`, of `user` asking for `line`.
    fn counted(
        reason: RefusalReason,
        code: u16,
        why: &str,
        (user, line): (&str, &str),
    ) -> AdmissionRefusal {
        AdmissionRefusal {
            refused: Some(reason),
            who: Some((user.to_owned(), line.to_owned())),
            ..AdmissionRefusal::plain(code, why)
        }
    }
}

/// What an admitted INVITE opens.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) dialog: Dialog,
    pub(crate) line: String,
    pub(crate) namespace: String,
    pub(crate) session_expires: Option<u32>,
    /// The client is expected to answer event INFOs (its own Via has an RFC 3261 branch).
    pub(crate) answers_events: bool,
}

/// Sessions and the dialogs that lead to them.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    /// Boxed: a session is ~540 bytes, and a table of boxes wastes 16 bytes per free slot
    /// instead of a whole session.
    by_id: HashMap<SessionId, Box<RccSession>>,
    dialogs: HashMap<(String, String), SessionId>,
    timers: Timers<SessionClock>,
}

impl Sessions {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn get(&self, sid: SessionId) -> Option<&RccSession> {
        self.by_id.get(&sid).map(|s| &**s)
    }

    pub(crate) fn get_mut(&mut self, sid: SessionId) -> Option<&mut RccSession> {
        self.by_id.get_mut(&sid).map(|s| &mut **s)
    }

    pub(crate) fn ids(&self) -> Vec<SessionId> {
        self.by_id.keys().copied().collect()
    }

    /// The session of a dialog, by Call-ID and our tag.
    pub(crate) fn of_dialog(&self, call_id: &str, local_tag: &str) -> Option<SessionId> {
        self.dialogs
            .get(&(call_id.to_owned(), local_tag.to_owned()))
            .copied()
    }

    /// Checks an initial INVITE, in the order a client learns the most from.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit(
        &self,
        req: &Message,
        from: &NameAddr,
        uas: &Uas,
        sip: &SipConfig,
        policy: &Policy,
        pbx_serving: bool,
        draining: bool,
        local_tag: impl FnOnce() -> String,
    ) -> Result<Admitted, AdmissionRefusal> {
        let sdp = req.content_type().ok().flatten();
        if sdp.is_some_and(|c| c.is("application/sdp")) {
            return Err(AdmissionRefusal::plain(
                488,
                "Not Acceptable Here (RCC carries no media)",
            ));
        }
        let decoded = match uas::csta_body(req) {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(AdmissionRefusal::plain(
                    400,
                    "Bad Request (no RequestSystemStatus body)",
                ));
            }
            Err(refusal) => {
                return Err(AdmissionRefusal {
                    refusal,
                    refused: None,
                    malformed: true,
                    who: None,
                });
            }
        };
        let csta::Message::Request(Request::RequestSystemStatus { line: Some(line) }) =
            decoded.message
        else {
            return Err(AdmissionRefusal::plain(
                400,
                "Bad Request (expected RequestSystemStatus with lcs:line)",
            ));
        };
        let user = &from.uri_raw;
        if !policy
            .authorization
            .may_open(&policy.numbering, user, &line)
        {
            return Err(AdmissionRefusal::counted(
                RefusalReason::Authorization,
                403,
                "Forbidden (line not assigned to this user)",
                (user, &line),
            ));
        }
        if draining {
            return Err(AdmissionRefusal::counted(
                RefusalReason::Draining,
                503,
                "Service Unavailable (draining)",
                (user, &line),
            ));
        }
        if self.len() >= sip.max_sessions {
            return Err(AdmissionRefusal::counted(
                RefusalReason::Capacity,
                503,
                "Service Unavailable (session limit)",
                (user, &line),
            ));
        }
        let session_expires = uas.session_timer(req).map_err(|refusal| AdmissionRefusal {
            refusal,
            refused: None,
            malformed: false,
            who: None,
        })?;
        if !pbx_serving && sip.pbx_down == PbxDownAnswer::ServiceUnavailable {
            return Err(AdmissionRefusal::counted(
                RefusalReason::PbxDown,
                503,
                "Service Unavailable (PBX link down)",
                (user, &line),
            ));
        }
        let dialog = Dialog::as_uas(req, &local_tag(), uas.contact())
            .map_err(|e| AdmissionRefusal::plain(400, &format!("Bad Request ({e})")))?;
        // The client's own Via is the last one (the Front End adds its own on top).
        let answers_events = req.vias().ok().is_some_and(|vias| {
            vias.last()
                .and_then(|v| v.branch())
                .is_some_and(|b| b.starts_with("z9hG4bK"))
        });
        Ok(Admitted {
            dialog,
            line,
            namespace: decoded.namespace.unwrap_or_else(|| csta::ED3.to_owned()),
            session_expires,
            answers_events,
        })
    }

    /// Opens the session an admitted INVITE asked for.
    pub(crate) fn open(
        &mut self,
        ids: &mut Ids,
        admitted: Admitted,
        flow: FlowId,
        from: &NameAddr,
        policy: &Policy,
        dial_tls: bool,
    ) -> SessionId {
        let sid = ids.session();
        let Admitted {
            dialog,
            line,
            namespace,
            session_expires,
            answers_events,
        } = admitted;
        self.dialogs
            .insert((dialog.call_id.clone(), dialog.local_tag.clone()), sid);
        let device = policy.numbering.line_to_device(&line);
        self.by_id.insert(
            sid,
            Box::new(RccSession {
                next_hop: target_of(&dialog, dial_tls),
                dialog,
                flow,
                user: normalise_user(&from.uri_raw),
                epid: from.epid().map(str::to_owned),
                line,
                device,
                namespace,
                xref: None,
                monitor_device: None,
                call_monitors: Vec::new(),
                call_monitors_pending: 0,
                told_calls: VecDeque::new(),
                shown: HashMap::new(),
                delivery: Delivery::default(),
                session_expires: session_expires.unwrap_or(0),
                expiry: None,
                ack_wait: None,
                traced: false,
                answers_events,
            }),
        );
        sid
    }

    /// The PBX link is gone, and the call monitors with it.
    pub(crate) fn forget_call_monitors(&mut self) {
        for s in self.by_id.values_mut() {
            s.call_monitors.clear();
            s.call_monitors_pending = 0;
        }
    }

    /// Forgets one call monitor the PBX ended; whether a session held it.
    pub(crate) fn forget_call_monitor(&mut self, xref: &str) -> bool {
        for s in self.by_id.values_mut() {
            if let Some(i) = s.call_monitors.iter().position(|x| x == xref) {
                s.call_monitors.swap_remove(i);
                return true;
            }
        }
        false
    }

    /// Takes a session out, with its dialog and its timers.
    pub(crate) fn remove(&mut self, sid: SessionId) -> Option<Box<RccSession>> {
        let mut s = self.by_id.remove(&sid)?;
        self.dialogs
            .remove(&(s.dialog.call_id.clone(), s.dialog.local_tag.clone()));
        if let Some(t) = s.expiry.take() {
            self.timers.cancel(t);
        }
        if let Some(w) = s.ack_wait.take() {
            self.timers.cancel(w.timer);
        }
        Some(s)
    }

    /// (Re)starts the session timer from `now`.
    pub(crate) fn arm_expiry(&mut self, sid: SessionId, now: Instant) {
        let Some(s) = self.by_id.get_mut(&sid) else {
            return;
        };
        if let Some(t) = s.expiry.take() {
            self.timers.cancel(t);
        }
        if s.session_expires > 0 {
            let at = now + Duration::from_secs(s.session_expires.into());
            s.expiry = Some(self.timers.set(at, SessionClock::Expired(sid)));
        }
    }

    /// The 2xx to INVITE `bytes` was sent: retransmit it until ACKed (RFC 3261 §13.3.1.4).
    pub(crate) fn await_ack(&mut self, sid: SessionId, bytes: Vec<u8>, now: Instant) {
        let Some(s) = self.by_id.get_mut(&sid) else {
            return;
        };
        if let Some(w) = s.ack_wait.take() {
            self.timers.cancel(w.timer);
        }
        s.ack_wait = Some(AckWait {
            bytes,
            interval: T1,
            give_up: now + T1 * 64,
            timer: self.timers.set(now + T1, SessionClock::Retransmit(sid)),
        });
    }

    /// The ACK came.
    pub(crate) fn acked(&mut self, sid: SessionId) {
        if let Some(w) = self.by_id.get_mut(&sid).and_then(|s| s.ack_wait.take()) {
            self.timers.cancel(w.timer);
        }
    }

    /// The 2xx to send again now, or `Err` when it is time to give up on the ACK.
    pub(crate) fn retransmission(
        &mut self,
        sid: SessionId,
        now: Instant,
    ) -> Option<Result<(FlowId, Vec<u8>), ()>> {
        let s = self.by_id.get_mut(&sid)?;
        let wait = s.ack_wait.as_mut()?;
        if now >= wait.give_up {
            return Some(Err(()));
        }
        wait.interval = (wait.interval * 2).min(T2);
        wait.timer = self
            .timers
            .set(now + wait.interval, SessionClock::Retransmit(sid));
        Some(Ok((s.flow, wait.bytes.clone())))
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.timers.next_due()
    }

    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<SessionClock> {
        let due = self.timers.pop_due(now)?;
        // Fired: the session no longer holds it.
        match due {
            SessionClock::Expired(sid) => {
                if let Some(s) = self.by_id.get_mut(&sid) {
                    s.expiry = None;
                }
            }
            SessionClock::Retransmit(_) => {}
        }
        Some(due)
    }
}
