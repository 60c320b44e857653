//! One RCC session: the SIP dialog of a Lync endpoint, the line it controls, its place on the
//! line's monitor, the queue of event INFOs waiting to be sent in order, and its timers.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rcc_protocol::sip::Dialog;

use super::output::Target;
use crate::ids::FlowId;
use crate::rcc::translate::LineView;
use crate::setup::Policy;
use crate::timers::TimerId;

/// Calls kept per session from the PBX's answers.
pub(crate) const TOLD_CALLS: usize = 64;

/// A 2xx to INVITE waiting for its ACK (retransmitted on T1, doubling up to T2).
#[derive(Debug, Clone)]
pub(crate) struct AckWait {
    /// The response, for retransmission.
    pub(crate) bytes: Vec<u8>,
    /// Current retransmission interval.
    pub(crate) interval: Duration,
    /// When to give up.
    pub(crate) give_up: Instant,
    /// The retransmission timer.
    pub(crate) timer: TimerId,
}

/// Event INFOs of one session: queued in order, sent within a window, and held back while the
/// client waits for a response they might depend on.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// Event bodies waiting to be sent.
    queue: VecDeque<Vec<u8>>,
    /// Event INFOs sent and not yet answered or given up.
    inflight: usize,
    /// Client requests waiting for the PBX: events wait until their responses are sent.
    pending_pbx: usize,
}

/// The event queue is full: the session must end so that its client re-syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueFull;

impl Delivery {
    /// Queues an event body, unless `limit` bodies already wait.
    pub(crate) fn enqueue(&mut self, body: Vec<u8>, limit: usize) -> Result<(), QueueFull> {
        if self.queue.len() >= limit {
            return Err(QueueFull);
        }
        self.queue.push_back(body);
        Ok(())
    }

    /// The next body to send now, if the window and the session's state allow one. A client
    /// that does not answer event INFOs (`answered` false) gets them without a window: waiting
    /// for answers that never come would hold every event back by the event timeout.
    pub(crate) fn next(&mut self, window: usize, blocked: bool, answered: bool) -> Option<Vec<u8>> {
        if blocked || self.pending_pbx > 0 || (answered && self.inflight >= window) {
            return None;
        }
        let body = self.queue.pop_front()?;
        self.inflight += 1;
        Some(body)
    }

    /// An event INFO was answered or given up.
    pub(crate) fn settled(&mut self) {
        self.inflight = self.inflight.saturating_sub(1);
    }

    /// A client request went to the PBX.
    pub(crate) fn request_out(&mut self) {
        self.pending_pbx += 1;
    }

    /// A client request came back from the PBX.
    pub(crate) fn request_back(&mut self) {
        self.pending_pbx = self.pending_pbx.saturating_sub(1);
    }
}

/// An RCC session.
#[derive(Debug)]
pub(crate) struct RccSession {
    /// The dialog (UAS side).
    pub(crate) dialog: Dialog,
    /// The connection the dialog's requests last came on.
    pub(crate) flow: FlowId,
    /// Where the dialog's requests go when that connection is gone (first route, else the
    /// remote target), parsed once.
    pub(crate) next_hop: Target,
    /// The From URI (the Lync user), normalised.
    pub(crate) user: String,
    /// The endpoint ID (`epid`), when the client sent one.
    pub(crate) epid: Option<String>,
    /// The LineURI, verbatim.
    pub(crate) line: String,
    /// The line's PBX device ID.
    pub(crate) device: String,
    /// Namespace the client speaks.
    pub(crate) namespace: String,
    /// The cross-reference ID the client got from MonitorStart.
    pub(crate) xref: Option<String>,
    /// The device of the client's monitor (its line, or another line it may control).
    pub(crate) monitor_device: Option<String>,
    /// The PBX's cross-reference IDs of the call monitors the client holds (stopped with it).
    pub(crate) call_monitors: Vec<String>,
    /// Call MonitorStarts sent and not yet answered (they count toward the limit).
    pub(crate) call_monitors_pending: usize,
    /// Calls the PBX named in its answers to this client (MakeCall, ConsultationCall,
    /// ConferenceCall, SnapshotDevice): the client may act on them before, or without, an
    /// event of its monitor. The latest [`TOLD_CALLS`] are kept.
    pub(crate) told_calls: VecDeque<String>,
    /// Devices shown to the client (Lync string → PBX string).
    pub(crate) shown: HashMap<String, String>,
    /// Event INFOs to send.
    pub(crate) delivery: Delivery,
    /// Session-Expires granted (0: no session timer).
    pub(crate) session_expires: u32,
    /// The session timer.
    pub(crate) expiry: Option<TimerId>,
    /// The 2xx to the latest INVITE, until ACKed.
    pub(crate) ack_wait: Option<AckWait>,
    /// Written to a per-session trace (`[observe.session_traces]`).
    pub(crate) traced: bool,
    /// The client answers event INFOs. Learned: false when its own Via in the INVITE has no RFC
    /// 3261 branch (pidgin-sipe, which never answers them) or once one times out; true again when
    /// an answer comes.
    pub(crate) answers_events: bool,
}

impl RccSession {
    /// The PBX named `call` in an answer to this client.
    pub(crate) fn told(&mut self, call: &str) {
        if self.told_calls.iter().any(|c| c == call) {
            return;
        }
        if self.told_calls.len() >= TOLD_CALLS {
            self.told_calls.pop_front();
        }
        self.told_calls.push_back(call.to_owned());
    }

    /// The session's view of device IDs, for translating to and from the PBX.
    pub(crate) fn view<'a>(&'a mut self, policy: &'a Policy) -> LineView<'a> {
        LineView {
            numbering: &policy.numbering,
            authz: &policy.authorization,
            user: &self.user,
            line: &self.line,
            device: &self.device,
            shown: &mut self.shown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_wait_for_responses_the_window_and_the_ack() {
        let mut d = Delivery::default();
        for b in [b"1", b"2", b"3"] {
            assert_eq!(d.enqueue(b.to_vec(), 3), Ok(()));
        }
        assert_eq!(d.enqueue(b"4".to_vec(), 3), Err(QueueFull));
        assert_eq!(
            d.next(2, true, true),
            None,
            "an INVITE 2xx waits for its ACK"
        );
        d.request_out();
        assert_eq!(d.next(2, false, true), None, "a response is owed first");
        d.request_back();
        assert_eq!(d.next(2, false, true), Some(b"1".to_vec()));
        assert_eq!(d.next(2, false, true), Some(b"2".to_vec()));
        assert_eq!(d.next(2, false, true), None, "window of 2 full");
        assert_eq!(
            d.next(2, false, false),
            Some(b"3".to_vec()),
            "no window for a client that does not answer"
        );
        assert_eq!(d.enqueue(b"4".to_vec(), 3), Ok(()));
        d.settled();
        assert_eq!(d.next(2, false, true), None, "still two in flight");
        d.settled();
        assert_eq!(d.next(2, false, true), Some(b"4".to_vec()));
        assert_eq!(d.next(2, false, true), None);
    }
}
