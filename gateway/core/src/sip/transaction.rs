//! Server transaction keys and the table that absorbs retransmitted requests: RFC 3261 §17.2.3
//! matching by branch, and RFC 2543 matching (Call-ID, CSeq, From tag, top Via) for clients that
//! send no `z9hG4bK` branch (pidgin-sipe).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rcc_protocol::sip::{Checked, Message, Method};

/// Identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TxKey {
    id: String,
    /// A non-INVITE request: the gateway takes requests over TCP and TLS only, and RFC 3261
    /// §17.2.2 sets Timer J to zero on reliable transports, so the transaction ends with its
    /// final response. (What a Via says is the transport of the hop before, not of ours: a
    /// Via saying UDP used to keep every answer 32 s.)
    ends_with_answer: bool,
}

impl TxKey {
    /// The key of a request, from the views [`Message::check`] parsed (ACK and CANCEL get the
    /// key of the INVITE they belong to, with the method recorded separately by the caller).
    pub(crate) fn of(request: &Message, checked: &Checked) -> Option<TxKey> {
        use std::fmt::Write;
        let via = checked.top_via();
        let method = match request.method()? {
            Method::Ack | Method::Invite => "INVITE",
            Method::Cancel => "CANCEL",
            m => m.as_str(),
        };
        let ends_with_answer = method != "INVITE";
        let mut id = String::with_capacity(64);
        match via.branch() {
            Some(b) if b.starts_with("z9hG4bK") => {
                id.push_str(b);
            }
            _ => {
                let _ = write!(
                    id,
                    "2543|{}|{}|{}",
                    request.call_id().ok()?,
                    checked.cseq.seq,
                    checked.from.tag().unwrap_or_default()
                );
            }
        }
        let _ = write!(id, "|{}", via.host);
        if let Some(p) = via.port {
            let _ = write!(id, ":{p}");
        }
        id.push('|');
        id.push_str(method);
        Some(TxKey {
            id,
            ends_with_answer,
        })
    }
}

#[derive(Debug)]
enum TxState {
    Proceeding,
    Completed(Box<[u8]>),
    Accepted,
}

/// Recently seen server transactions, with their final response for retransmissions.
///
/// Entries live in two generations that rotate every [`LINGER`]: a transaction is remembered
/// between one and two LINGER periods after it was last touched, with no timer per entry. A
/// generation that reaches half of `cap` rotates at once, so a flood of requests costs at most
/// `cap` entries (and remembers each for less).
#[derive(Debug)]
pub(crate) struct ServerTransactions {
    young: HashMap<TxKey, TxState>,
    old: HashMap<TxKey, TxState>,
    rotate_at: Option<Instant>,
    cap: usize,
}

#[cfg(test)]
impl Default for ServerTransactions {
    fn default() -> Self {
        ServerTransactions::with_cap(65_536)
    }
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A new transaction.
    New,
    /// A retransmission while the answer is pending: absorb it.
    Pending,
    /// A retransmission after the answer: send it again.
    Answered(Vec<u8>),
}

/// How long a completed transaction is remembered at least (64·T1).
pub(crate) const LINGER: Duration = Duration::from_secs(32);

impl ServerTransactions {
    /// A table of at most `cap` transactions (at least 2).
    pub(crate) fn with_cap(cap: usize) -> ServerTransactions {
        ServerTransactions {
            young: HashMap::new(),
            old: HashMap::new(),
            rotate_at: None,
            cap: cap.max(2),
        }
    }

    /// Records a request; tells whether it is new.
    pub(crate) fn seen(&mut self, key: &TxKey, now: Instant) -> Seen {
        match self.young.get(key).or_else(|| self.old.get(key)) {
            Some(TxState::Proceeding | TxState::Accepted) => Seen::Pending,
            Some(TxState::Completed(bytes)) => Seen::Answered(bytes.to_vec()),
            None => {
                self.insert(key.clone(), TxState::Proceeding, now);
                Seen::New
            }
        }
    }

    /// Records the final response. A non-INVITE transaction on a reliable transport ends here;
    /// others keep the response for retransmitted requests.
    pub(crate) fn completed(&mut self, key: &TxKey, bytes: &[u8], now: Instant) {
        let next = (!key.ends_with_answer).then(|| TxState::Completed(bytes.into()));
        self.finish(key, next, now);
    }

    /// Records a 2xx to INVITE: the transaction enters RFC 6026's Accepted state, where
    /// retransmitted INVITEs are absorbed (the dialog layer retransmits the 2xx until ACK), so
    /// the response itself is not kept here.
    pub(crate) fn accepted(&mut self, key: &TxKey, now: Instant) {
        self.finish(key, Some(TxState::Accepted), now);
    }

    /// Ends the proceeding phase of a known transaction: it is kept in state `next`, or
    /// forgotten when there is none.
    fn finish(&mut self, key: &TxKey, next: Option<TxState>, now: Instant) {
        let known = self.young.remove(key).or_else(|| self.old.remove(key));
        if let (Some(_), Some(state)) = (known, next) {
            self.insert(key.clone(), state, now);
        }
    }

    fn insert(&mut self, key: TxKey, state: TxState, now: Instant) {
        if self.young.len() >= self.cap / 2 {
            self.old = std::mem::take(&mut self.young);
            self.rotate_at = Some(now + LINGER);
        }
        self.young.insert(key, state);
        self.rotate_at.get_or_insert(now + LINGER);
    }

    /// Forgets the older generation when its time has come.
    pub(crate) fn expire(&mut self, now: Instant) {
        while self.rotate_at.is_some_and(|at| at <= now) {
            self.old = std::mem::take(&mut self.young);
            self.rotate_at = (!self.old.is_empty()).then_some(now + LINGER);
        }
    }

    /// When [`ServerTransactions::expire`] has work.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.rotate_at
    }

    /// Transactions remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// Whether none are remembered.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.young.is_empty() && self.old.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, transport: &str, branch: &str) -> Message {
        let text = format!(
            "{method} sip:gw@lab SIP/2.0\r\nVia: SIP/2.0/{transport} fe:5061;branch={branch}\r\n\
             From: <sip:a@lab>;tag=1\r\nTo: <sip:gw@lab>\r\nCall-ID: c\r\n\
             CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).expect("test request parses")
    }

    fn key(method: &str, transport: &str) -> TxKey {
        let r = request(method, transport, "z9hG4bK1");
        TxKey::of(&r, &r.check().expect("valid request")).expect("key")
    }

    #[test]
    fn non_invite_on_tls_ends_with_its_answer() {
        let (mut t, now) = (ServerTransactions::default(), Instant::now());
        let k = key("INFO", "TLS");
        assert_eq!(t.seen(&k, now), Seen::New);
        assert_eq!(t.seen(&k, now), Seen::Pending);
        t.completed(&k, b"200", now);
        assert!(t.is_empty(), "Timer J is zero on a reliable transport");
    }

    #[test]
    fn invite_answers_are_replayed_until_they_age_out() {
        let (mut t, now) = (ServerTransactions::default(), Instant::now());
        let k = key("INVITE", "TLS");
        assert_eq!(t.seen(&k, now), Seen::New);
        t.completed(&k, b"403", now);
        assert_eq!(t.seen(&k, now), Seen::Answered(b"403".to_vec()));
        t.expire(now + LINGER);
        assert_eq!(t.len(), 1, "kept for at least LINGER");
        t.expire(now + LINGER * 2);
        assert!(t.is_empty(), "forgotten after two generations");
        assert_eq!(t.next_expiry(), None, "no timer while empty");
    }

    #[test]
    fn a_via_saying_udp_does_not_keep_answers_on_our_reliable_connection() {
        let (mut t, now) = (ServerTransactions::default(), Instant::now());
        let k = key("INFO", "UDP");
        assert_eq!(t.seen(&k, now), Seen::New);
        t.completed(&k, b"200", now);
        assert!(t.is_empty());
    }

    #[test]
    fn a_flood_of_invites_costs_at_most_the_cap() {
        let (mut t, now) = (ServerTransactions::with_cap(1000), Instant::now());
        for i in 0..20_000 {
            let r = request("INVITE", "TLS", &format!("z9hG4bK{i}"));
            let k = TxKey::of(&r, &r.check().expect("valid")).expect("key");
            assert_eq!(t.seen(&k, now), Seen::New);
            t.completed(&k, b"403 Forbidden", now);
            assert!(t.len() <= 1000, "{} after {i}", t.len());
        }
        // The latest are still absorbed.
        let r = request("INVITE", "TLS", "z9hG4bK19999");
        let k = TxKey::of(&r, &r.check().expect("valid")).expect("key");
        assert!(matches!(t.seen(&k, now), Seen::Answered(_)));
    }

    #[test]
    fn retransmitted_invite_after_2xx_is_absorbed() {
        let (mut t, now) = (ServerTransactions::default(), Instant::now());
        let k = key("INVITE", "TLS");
        assert_eq!(t.seen(&k, now), Seen::New);
        t.accepted(&k, now);
        assert_eq!(t.seen(&k, now), Seen::Pending, "RFC 6026 Accepted state");
    }

    #[test]
    fn ack_shares_the_invite_key() {
        assert_eq!(key("ACK", "TLS"), key("INVITE", "TLS"));
    }
}
