//! The gateway's own requests to clients (event INFOs and BYEs), by branch, each with its
//! timeout: an event INFO left unanswered is given up (not fatal: pidgin-sipe never answers
//! them), a BYE is forgotten after Timer F.

use std::collections::HashMap;
use std::time::Instant;

use crate::ids::SessionId;
use crate::timers::{TimerId, Timers};

/// What a request to a client was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// An event INFO.
    Event,
    /// The BYE that ended the session.
    Bye,
}

/// One request to a client, waiting for its final answer.
#[derive(Debug)]
pub(crate) struct ClientTx {
    pub(crate) session: SessionId,
    pub(crate) sent: Sent,
    /// The session is traced (a BYE's answer comes after the session is gone).
    pub(crate) traced: bool,
    timer: TimerId,
}

/// Requests to clients in flight.
#[derive(Debug, Default)]
pub(crate) struct ClientTxs {
    by_branch: HashMap<String, ClientTx>,
    timers: Timers<String>,
}

impl ClientTxs {
    /// A request with `branch` went out; it is given up at `deadline`.
    pub(crate) fn sent(
        &mut self,
        branch: String,
        session: SessionId,
        sent: Sent,
        traced: bool,
        deadline: Instant,
    ) {
        let timer = self.timers.set(deadline, branch.clone());
        let tx = ClientTx {
            session,
            sent,
            traced,
            timer,
        };
        if let Some(old) = self.by_branch.insert(branch, tx) {
            self.timers.cancel(old.timer);
        }
    }

    /// The final answer to `branch` came: its transaction, if it was ours.
    pub(crate) fn answered(&mut self, branch: &str) -> Option<ClientTx> {
        let tx = self.by_branch.remove(branch)?;
        self.timers.cancel(tx.timer);
        Some(tx)
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.timers.next_due()
    }

    /// A request whose answer did not come in time, taken out.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<ClientTx> {
        loop {
            let branch = self.timers.pop_due(now)?;
            if let Some(tx) = self.by_branch.remove(&branch) {
                return Some(tx);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_branch.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn answered_requests_leave_no_timer_behind() {
        let t0 = Instant::now();
        let mut txs = ClientTxs::default();
        txs.sent("b1".into(), SessionId(1), Sent::Event, false, t0);
        txs.sent(
            "b2".into(),
            SessionId(1),
            Sent::Bye,
            true,
            t0 + Duration::from_secs(1),
        );
        let tx = txs.answered("b1").expect("ours");
        assert_eq!((tx.session, tx.sent), (SessionId(1), Sent::Event));
        assert!(txs.answered("b1").is_none(), "answered once");
        assert_eq!(txs.timers.next_due(), Some(t0 + Duration::from_secs(1)));
        let late = t0 + Duration::from_secs(2);
        let tx = txs.pop_due(late).expect("timed out");
        assert_eq!(tx.sent, Sent::Bye);
        assert!(tx.traced);
        assert_eq!(txs.len(), 0);
        assert!(txs.pop_due(late).is_none());
    }
}
