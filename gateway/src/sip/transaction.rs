//! Server transaction keys and the table that absorbs retransmitted requests: RFC 3261 §17.2.3
//! matching by branch, and RFC 2543 matching (Call-ID, CSeq, From tag, top Via) for clients that
//! send no `z9hG4bK` branch (pidgin-sipe).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rcc_protocol::sip::{Message, Method};

/// Identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey(String);

impl TxKey {
    /// The key of a request (ACK and CANCEL get the key of the INVITE they belong to, with the
    /// method recorded separately by the caller).
    pub fn of(request: &Message) -> Option<TxKey> {
        let via = request.top_via().ok()?;
        let method = match request.method()? {
            Method::Ack | Method::Invite => "INVITE",
            Method::Cancel => "CANCEL",
            m => m.as_str(),
        };
        match via.branch() {
            Some(b) if b.starts_with("z9hG4bK") => {
                Some(TxKey(format!("{b}|{}|{method}", sent_by(&via))))
            }
            _ => {
                let cseq = request.cseq().ok()?;
                let from_tag = request
                    .from_header()
                    .ok()
                    .and_then(|f| f.tag().map(str::to_owned))
                    .unwrap_or_default();
                Some(TxKey(format!(
                    "2543|{}|{}|{from_tag}|{}|{method}",
                    request.call_id().ok()?,
                    cseq.seq,
                    sent_by(&via)
                )))
            }
        }
    }
}

fn sent_by(via: &rcc_protocol::sip::Via) -> String {
    match via.port {
        Some(p) => format!("{}:{p}", via.host),
        None => via.host.to_string(),
    }
}

#[derive(Debug)]
enum TxState {
    Proceeding,
    Completed(Vec<u8>),
}

/// Recently seen server transactions, with their final response for retransmissions.
#[derive(Debug, Default)]
pub struct ServerTransactions {
    txs: HashMap<TxKey, (TxState, Instant)>,
    expiry: BTreeMap<(Instant, u64), TxKey>,
    seq: u64,
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// A new transaction.
    New,
    /// A retransmission while the answer is pending: absorb it.
    Pending,
    /// A retransmission after the answer: send it again.
    Answered(Vec<u8>),
}

/// How long a completed transaction is remembered (64·T1).
pub const LINGER: Duration = Duration::from_secs(32);

impl ServerTransactions {
    /// Records a request; tells whether it is new.
    pub fn seen(&mut self, key: &TxKey, now: Instant) -> Seen {
        match self.txs.get(key) {
            Some((TxState::Proceeding, _)) => Seen::Pending,
            Some((TxState::Completed(bytes), _)) => Seen::Answered(bytes.clone()),
            None => {
                self.txs
                    .insert(key.clone(), (TxState::Proceeding, now + LINGER));
                self.seq += 1;
                self.expiry.insert((now + LINGER, self.seq), key.clone());
                Seen::New
            }
        }
    }

    /// Records the final response.
    pub fn completed(&mut self, key: &TxKey, bytes: &[u8], now: Instant) {
        if let Some(tx) = self.txs.get_mut(key) {
            tx.0 = TxState::Completed(bytes.to_vec());
            tx.1 = now + LINGER;
            self.seq += 1;
            self.expiry.insert((now + LINGER, self.seq), key.clone());
        }
    }

    /// Forgets transactions past their time.
    pub fn expire(&mut self, now: Instant) {
        while let Some(entry) = self.expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            if self.txs.get(&key).is_some_and(|t| t.1 <= now) {
                self.txs.remove(&key);
            }
        }
    }

    /// When [`ServerTransactions::expire`] has work.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiry.keys().next().map(|k| k.0)
    }

    /// Transactions remembered.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether none are remembered.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
}
