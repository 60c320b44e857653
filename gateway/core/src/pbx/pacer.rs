//! Pacing of the requests that cost a PBX most when they come in storms (MonitorStart and
//! SnapshotDevice at sign-in, after a PBX link loss, after a failover): a token bucket, and
//! two queues in front of it. What a client waits for goes first and gives up after a while
//! (its SIP transaction would time out anyway); the gateway's own resynchronisation waits as
//! long as it takes.
//!
//! Time is an input here, as everywhere in the core, so the bucket is a few lines of
//! arithmetic rather than a rate-limiting crate that reads a clock of its own.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How fast paced requests may go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Requests per second.
    pub per_second: f64,
    /// Requests that may go at once after a quiet spell.
    pub burst: u32,
}

/// Who waits for a paced request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A client's request: sent first; failed if it waits longer than the queue allows.
    Client,
    /// The gateway's own work (resync): sent when no client waits; never failed for waiting.
    Background,
}

/// A token bucket: `per_second` tokens a second, `burst` at most.
#[derive(Debug)]
struct Bucket {
    pace: Pace,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(pace: Pace, now: Instant) -> Bucket {
        Bucket {
            pace,
            tokens: f64::from(pace.burst.max(1)),
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens =
            (self.tokens + elapsed * self.pace.per_second).min(f64::from(self.pace.burst.max(1)));
    }

    fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token is there.
    fn next_at(&self) -> Instant {
        let missing = (1.0 - self.tokens).max(0.0);
        self.at + Duration::from_secs_f64(missing / self.pace.per_second)
    }
}

/// A request waiting for its turn.
#[derive(Debug)]
pub struct Queued<T> {
    /// What the caller gave.
    pub item: T,
    /// When it was queued.
    pub since: Instant,
}

/// The pacer: a bucket and the two queues.
#[derive(Debug)]
pub struct Pacer<T> {
    bucket: Bucket,
    clients: VecDeque<Queued<T>>,
    background: VecDeque<Queued<T>>,
    /// Queued requests at most.
    capacity: usize,
    /// How long a client's request may wait.
    client_wait: Duration,
}

/// Why a request was not taken.
#[derive(Debug, PartialEq, Eq)]
pub struct Full<T>(pub T);

impl<T> Pacer<T> {
    /// A pacer going at `pace`, holding `capacity` requests, a client's for `client_wait`.
    pub fn new(pace: Pace, capacity: usize, client_wait: Duration, now: Instant) -> Pacer<T> {
        Pacer {
            bucket: Bucket::new(pace, now),
            clients: VecDeque::new(),
            background: VecDeque::new(),
            capacity,
            client_wait,
        }
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.clients.len() + self.background.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `item` may go now (`Ok(Some)`), is queued (`Ok(None)`), or the queue is full.
    pub fn offer(
        &mut self,
        item: T,
        priority: Priority,
        now: Instant,
    ) -> Result<Option<T>, Full<T>> {
        if self.is_empty() && self.bucket.take(now) {
            return Ok(Some(item));
        }
        if self.len() >= self.capacity {
            return Err(Full(item));
        }
        let q = Queued { item, since: now };
        match priority {
            Priority::Client => self.clients.push_back(q),
            Priority::Background => self.background.push_back(q),
        }
        Ok(None)
    }

    /// The next request whose turn it is, clients' first.
    pub fn next_due(&mut self, now: Instant) -> Option<T> {
        if self.is_empty() || !self.bucket.take(now) {
            return None;
        }
        self.clients
            .pop_front()
            .or_else(|| self.background.pop_front())
            .map(|q| q.item)
    }

    /// Clients' requests that waited too long, to fail.
    pub fn expired(&mut self, now: Instant) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(q) = self.clients.front() {
            if now.saturating_duration_since(q.since) < self.client_wait {
                break;
            }
            if let Some(q) = self.clients.pop_front() {
                out.push(q.item);
            }
        }
        out
    }

    /// When something is due: the next token for a queued request, or a client's giving up.
    pub fn next_timeout(&self) -> Option<Instant> {
        if self.is_empty() {
            return None;
        }
        let token = self.bucket.next_at();
        let give_up = self.clients.front().map(|q| q.since + self.client_wait);
        Some(give_up.map_or(token, |g| g.min(token)))
    }

    /// Everything queued (the link went down).
    pub fn drain(&mut self) -> Vec<T> {
        self.clients
            .drain(..)
            .chain(self.background.drain(..))
            .map(|q| q.item)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(now: Instant) -> Pacer<u32> {
        Pacer::new(
            Pace {
                per_second: 10.0,
                burst: 2,
            },
            4,
            Duration::from_secs(1),
            now,
        )
    }

    #[test]
    fn a_burst_goes_at_once_then_one_every_tenth_of_a_second() {
        let t = Instant::now();
        let mut p = pacer(t);
        assert_eq!(p.offer(1, Priority::Client, t), Ok(Some(1)));
        assert_eq!(p.offer(2, Priority::Client, t), Ok(Some(2)));
        assert_eq!(p.offer(3, Priority::Background, t), Ok(None));
        assert_eq!(p.offer(4, Priority::Client, t), Ok(None));
        assert_eq!(p.next_timeout(), Some(t + Duration::from_millis(100)));
        assert_eq!(p.next_due(t + Duration::from_millis(50)), None);
        // The client's goes before the background one queued earlier.
        assert_eq!(p.next_due(t + Duration::from_millis(100)), Some(4));
        assert_eq!(p.next_due(t + Duration::from_millis(200)), Some(3));
        assert!(p.is_empty());
    }

    #[test]
    fn a_full_queue_refuses_and_clients_give_up_after_their_wait() {
        let t = Instant::now();
        let mut p = pacer(t);
        for i in 0..2 {
            assert!(matches!(p.offer(i, Priority::Client, t), Ok(Some(_))));
        }
        for i in 2..6 {
            assert_eq!(p.offer(i, Priority::Client, t), Ok(None));
        }
        assert_eq!(p.offer(9, Priority::Background, t), Err(Full(9)));
        assert_eq!(p.expired(t + Duration::from_millis(999)), Vec::<u32>::new());
        assert_eq!(p.expired(t + Duration::from_secs(1)), vec![2, 3, 4, 5]);
    }

    #[test]
    fn background_work_never_gives_up() {
        let t = Instant::now();
        let mut p = pacer(t);
        let _ = p.offer(0, Priority::Background, t);
        let _ = p.offer(1, Priority::Background, t);
        assert_eq!(p.offer(2, Priority::Background, t), Ok(None));
        assert!(p.expired(t + Duration::from_secs(60)).is_empty());
        assert_eq!(p.drain(), vec![2]);
    }
}
