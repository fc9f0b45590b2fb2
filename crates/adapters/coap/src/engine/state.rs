//! The engine's bounded containers: the deduplication cache, the Block2 representation
//! cache and the retransmission queue of the server's own confirmable messages.
//!
//! Each is a hash map for O(1) lookups plus a queue in expiry order for O(1) amortised
//! expiry; a queue entry carries a generation so an entry replaced since it was queued is
//! skipped rather than searched for.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::Token;

/// A message exchange: the peer and the message id it chose.
pub(crate) type ExchangeKey = (SocketAddr, u16);

/// An answered exchange.
#[derive(Debug)]
struct Answered {
    generation: u64,
    expires: Instant,
    /// The bytes to resend on a duplicate (`None`: a NON exchange, duplicates are ignored).
    reply: Option<Bytes>,
}

/// Answers of recent exchanges, so a duplicate is answered again and never processed again.
///
/// Bounded by `capacity`: when full, the oldest entry is forgotten first. Entries expire
/// after `EXCHANGE_LIFETIME` (CON) or `NON_LIFETIME` (NON).
#[derive(Debug)]
pub(crate) struct Dedup {
    capacity: usize,
    map: HashMap<ExchangeKey, Answered>,
    order: VecDeque<(ExchangeKey, u64)>,
    generation: u64,
}

impl Dedup {
    pub(crate) fn new(capacity: usize) -> Dedup {
        Dedup {
            capacity: capacity.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
            generation: 0,
        }
    }

    /// The remembered answer of `key`: `Some(None)` for a NON exchange.
    pub(crate) fn get(&self, key: &ExchangeKey, now: Instant) -> Option<Option<&Bytes>> {
        self.map
            .get(key)
            .filter(|a| a.expires > now)
            .map(|a| a.reply.as_ref())
    }

    pub(crate) fn insert(&mut self, key: ExchangeKey, reply: Option<Bytes>, expires: Instant) {
        self.generation += 1;
        let generation = self.generation;
        self.map.insert(
            key,
            Answered {
                generation,
                expires,
                reply,
            },
        );
        self.order.push_back((key, generation));
        while self.map.len() > self.capacity {
            if !self.pop_front() {
                break;
            }
        }
        // Queue entries of replaced keys are dropped as they reach the front; this bounds
        // the queue at twice the map's size.
        while self.order.len() > 2 * self.capacity {
            self.pop_front();
        }
    }

    /// Forgets expired entries at the front of the queue.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some((key, generation)) = self.order.front() {
            match self.map.get(key) {
                Some(a) if a.generation == *generation && a.expires > now => break,
                _ => {
                    self.pop_front();
                }
            }
        }
    }

    /// Drops the front of the queue (and its entry, if current). False when empty.
    fn pop_front(&mut self) -> bool {
        let Some((key, generation)) = self.order.pop_front() else {
            return false;
        };
        if self
            .map
            .get(&key)
            .is_some_and(|a| a.generation == generation)
        {
            self.map.remove(&key);
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// A large response kept so its blocks can be fetched one by one.
#[derive(Debug, Clone)]
pub(crate) struct Representation {
    pub(crate) body: Bytes,
    pub(crate) etag: [u8; 8],
    pub(crate) content_format: u16,
    generation: u64,
    expires: Instant,
}

/// Representations by (peer, resource), bounded in bytes, expiring after a fixed lifetime.
#[derive(Debug)]
pub(crate) struct Representations {
    max_bytes: usize,
    lifetime: Duration,
    bytes: usize,
    map: HashMap<(SocketAddr, String), Representation>,
    order: VecDeque<((SocketAddr, String), u64)>,
    generation: u64,
}

impl Representations {
    pub(crate) fn new(max_bytes: usize, lifetime: Duration) -> Representations {
        Representations {
            max_bytes,
            lifetime,
            bytes: 0,
            map: HashMap::new(),
            order: VecDeque::new(),
            generation: 0,
        }
    }

    pub(crate) fn get(
        &self,
        peer: SocketAddr,
        resource: &str,
        now: Instant,
    ) -> Option<&Representation> {
        // A (SocketAddr, String) key cannot be borrowed as (SocketAddr, &str); the lookup
        // allocates once per block request, which is small beside the block it sends.
        self.map
            .get(&(peer, resource.to_owned()))
            .filter(|r| r.expires > now)
    }

    /// Keeps `body` unless it alone is larger than the whole cache.
    pub(crate) fn insert(
        &mut self,
        peer: SocketAddr,
        resource: String,
        body: Bytes,
        etag: [u8; 8],
        content_format: u16,
        now: Instant,
    ) {
        if body.len() > self.max_bytes {
            return;
        }
        self.generation += 1;
        let key = (peer, resource);
        self.bytes += body.len();
        let old = self.map.insert(
            key.clone(),
            Representation {
                body,
                etag,
                content_format,
                generation: self.generation,
                expires: now + self.lifetime,
            },
        );
        if let Some(old) = old {
            self.bytes -= old.body.len();
        }
        self.order.push_back((key, self.generation));
        while self.bytes > self.max_bytes {
            if !self.pop_front() {
                break;
            }
        }
        // Drop queue entries of replaced representations that reached the front; the rest
        // go when the entry before them expires (the queue holds at most a lifetime's
        // inserts).
        while let Some((key, generation)) = self.order.front() {
            if self
                .map
                .get(key)
                .is_some_and(|r| r.generation == *generation)
            {
                break;
            }
            self.order.pop_front();
        }
    }

    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some((key, generation)) = self.order.front() {
            match self.map.get(key) {
                Some(r) if r.generation == *generation && r.expires > now => break,
                _ => {
                    self.pop_front();
                }
            }
        }
    }

    fn pop_front(&mut self) -> bool {
        let Some((key, generation)) = self.order.pop_front() else {
            return false;
        };
        if self
            .map
            .get(&key)
            .is_some_and(|r| r.generation == generation)
            && let Some(old) = self.map.remove(&key)
        {
            self.bytes -= old.body.len();
        }
        true
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// What a confirmable message of the server is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A separate response.
    Response,
    /// A notification to the observer registered with this token.
    Notification(Token),
}

#[derive(Debug)]
struct Pending {
    bytes: Bytes,
    purpose: Purpose,
    retransmissions: u32,
    timeout: Duration,
    due: Instant,
}

/// What the retransmission timer decided for one message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Send these bytes again.
    Resend(SocketAddr, Bytes),
    /// The peer never acknowledged: give up.
    GaveUp(SocketAddr, Purpose),
}

/// The server's confirmable messages awaiting an ACK (RFC 7252 §4.2): retransmitted with
/// exponential back-off, at most `max_retransmit` times.
#[derive(Debug)]
pub(crate) struct Outgoing {
    max_retransmit: u32,
    pending: HashMap<ExchangeKey, Pending>,
    timers: BinaryHeap<Reverse<(Instant, ExchangeKey)>>,
}

impl Outgoing {
    pub(crate) fn new(max_retransmit: u32) -> Outgoing {
        Outgoing {
            max_retransmit,
            pending: HashMap::new(),
            timers: BinaryHeap::new(),
        }
    }

    /// Tracks a message just sent; `timeout` is its first (randomised) timeout.
    pub(crate) fn track(
        &mut self,
        key: ExchangeKey,
        bytes: Bytes,
        purpose: Purpose,
        timeout: Duration,
        now: Instant,
    ) {
        let due = now + timeout;
        self.pending.insert(
            key,
            Pending {
                bytes,
                purpose,
                retransmissions: 0,
                timeout,
                due,
            },
        );
        self.timers.push(Reverse((due, key)));
    }

    /// The peer acknowledged or reset `key`: what the message was for, if it was pending.
    pub(crate) fn settle(&mut self, key: &ExchangeKey) -> Option<Purpose> {
        self.pending.remove(key).map(|p| p.purpose)
    }

    /// The earliest retransmission.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((due, _))| *due)
    }

    /// Retransmissions and give-ups due at `now`.
    pub(crate) fn due(&mut self, now: Instant, out: &mut Vec<Due>) {
        while let Some(Reverse((due, key))) = self.timers.peek().copied() {
            if due > now {
                break;
            }
            self.timers.pop();
            let Some(pending) = self.pending.get_mut(&key) else {
                continue;
            };
            if pending.due != due {
                continue;
            }
            if pending.retransmissions >= self.max_retransmit {
                let purpose = pending.purpose;
                self.pending.remove(&key);
                out.push(Due::GaveUp(key.0, purpose));
                continue;
            }
            pending.retransmissions += 1;
            pending.timeout = pending.timeout.saturating_mul(2);
            pending.due = now + pending.timeout;
            self.timers.push(Reverse((pending.due, key)));
            out.push(Due::Resend(key.0, pending.bytes.clone()));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn dedup_is_bounded_and_expires() {
        let t0 = Instant::now();
        let mut dedup = Dedup::new(3);
        for mid in 0..5u16 {
            dedup.insert(
                (peer(1), mid),
                Some(Bytes::from(vec![mid as u8])),
                t0 + Duration::from_secs(10),
            );
        }
        assert_eq!(dedup.len(), 3);
        assert_eq!(
            dedup.get(&(peer(1), 0), t0),
            None,
            "the oldest was forgotten"
        );
        assert_eq!(
            dedup.get(&(peer(1), 4), t0),
            Some(Some(&Bytes::from(vec![4])))
        );
        dedup.insert((peer(2), 1), None, t0 + Duration::from_secs(1));
        assert_eq!(dedup.get(&(peer(2), 1), t0), Some(None));
        assert_eq!(dedup.get(&(peer(2), 1), t0 + Duration::from_secs(2)), None);
        dedup.expire(t0 + Duration::from_secs(11));
        assert_eq!(dedup.len(), 0);
        // Re-inserting one key many times keeps the queue bounded.
        for _ in 0..100 {
            dedup.insert((peer(3), 7), None, t0 + Duration::from_secs(10));
        }
        assert!(dedup.order.len() <= 6);
    }

    #[test]
    fn representations_are_bounded_in_bytes() {
        let t0 = Instant::now();
        let mut reps = Representations::new(100, Duration::from_secs(5));
        reps.insert(
            peer(1),
            "a".into(),
            Bytes::from(vec![0; 60]),
            [0; 8],
            50,
            t0,
        );
        reps.insert(
            peer(1),
            "b".into(),
            Bytes::from(vec![0; 60]),
            [1; 8],
            50,
            t0,
        );
        assert!(
            reps.get(peer(1), "a", t0).is_none(),
            "evicted to stay within 100 bytes"
        );
        assert_eq!(reps.get(peer(1), "b", t0).map(|r| r.etag), Some([1; 8]));
        assert_eq!(reps.bytes(), 60);
        reps.insert(
            peer(1),
            "huge".into(),
            Bytes::from(vec![0; 101]),
            [2; 8],
            50,
            t0,
        );
        assert!(reps.get(peer(1), "huge", t0).is_none());
        reps.expire(t0 + Duration::from_secs(6));
        assert_eq!(reps.bytes(), 0);
    }

    #[test]
    fn outgoing_backs_off_then_gives_up() {
        let t0 = Instant::now();
        let mut outgoing = Outgoing::new(2);
        let key = (peer(1), 9);
        outgoing.track(
            key,
            Bytes::from_static(b"x"),
            Purpose::Response,
            Duration::from_secs(2),
            t0,
        );
        let mut due = Vec::new();
        outgoing.due(t0 + Duration::from_secs(1), &mut due);
        assert!(due.is_empty());
        outgoing.due(t0 + Duration::from_secs(2), &mut due);
        assert_eq!(due, [Due::Resend(peer(1), Bytes::from_static(b"x"))]);
        assert_eq!(outgoing.next_due(), Some(t0 + Duration::from_secs(6)));
        due.clear();
        outgoing.due(t0 + Duration::from_secs(6), &mut due);
        outgoing.due(t0 + Duration::from_secs(14), &mut due);
        assert_eq!(due.last(), Some(&Due::GaveUp(peer(1), Purpose::Response)));
        assert_eq!(outgoing.len(), 0);
        outgoing.track(
            key,
            Bytes::from_static(b"y"),
            Purpose::Response,
            Duration::from_secs(2),
            t0,
        );
        assert_eq!(outgoing.settle(&key), Some(Purpose::Response));
        due.clear();
        outgoing.due(t0 + Duration::from_secs(60), &mut due);
        assert!(due.is_empty());
    }
}
