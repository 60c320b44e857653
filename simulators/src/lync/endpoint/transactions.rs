//! The endpoint's open client transactions: each request waiting for its final answer, why it
//! was sent, and its Timer F.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rcc_protocol::sip::{Message, Method};

/// Timer F: a request without an answer for this long counts as 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(32);

/// Identifies a user action, for collecting its outcome.
pub type ActionId = u64;

/// Why a request was sent, which decides what its answer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The INVITE that signs in, or (`refresh`) a re-INVITE that refreshes the session.
    Invite { refresh: bool },
    /// An UPDATE that refreshes the session.
    Update,
    /// GetCSTAFeatures.
    Features,
    /// MonitorStart.
    MonitorStart,
    /// MonitorStop at sign-out.
    MonitorStop,
    /// A user action.
    Action(ActionId),
    /// BYE at sign-out.
    Bye,
}

/// A client transaction: CSeq number and method.
pub(super) type TransactionKey = (u32, String);

/// A request waiting for its final answer.
#[derive(Debug)]
pub(super) struct Pending {
    /// Why it was sent.
    pub purpose: Purpose,
    /// The request as sent (an INVITE's ACK is built from it).
    pub request: Message,
    /// A MakeCall (its answer, even an error, settles one pending MakeCall).
    pub makecall: bool,
    /// When it was sent.
    pub sent: Instant,
}

impl Pending {
    fn deadline(&self) -> Instant {
        self.sent + REQUEST_TIMEOUT
    }
}

/// Open transactions by key.
#[derive(Debug, Default)]
pub(super) struct Transactions {
    open: HashMap<TransactionKey, Pending>,
}

impl Transactions {
    /// Opens a transaction for `request` (not for ACK, which has none).
    pub fn open(&mut self, request: &Message, purpose: Purpose, makecall: bool, now: Instant) {
        if let (Ok(cseq), Some(method)) = (request.cseq(), request.method())
            && method != &Method::Ack
        {
            self.open.insert(
                (cseq.seq, method.as_str().to_owned()),
                Pending {
                    purpose,
                    request: request.clone(),
                    makecall,
                    sent: now,
                },
            );
        }
    }

    /// Ends the transaction `key`, if it is open.
    pub fn close(&mut self, key: &TransactionKey) -> Option<Pending> {
        self.open.remove(key)
    }

    /// The soonest Timer F.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(Pending::deadline).min()
    }

    /// Transactions whose Timer F has fired.
    pub fn expired(&self, now: Instant) -> Vec<TransactionKey> {
        self.open
            .iter()
            .filter(|(_, p)| p.deadline() <= now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Ends every transaction.
    pub fn close_all(&mut self) -> impl Iterator<Item = Pending> + '_ {
        self.open.drain().map(|(_, p)| p)
    }
}
