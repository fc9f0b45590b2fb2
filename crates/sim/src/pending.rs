//! Requests awaiting their answer, per connection: a ring indexed by sequence number.
//!
//! Every request of a connection gets the next sequence number; its protocol identifier
//! is derived from it (a CoAP token is its low 32 bits, an MQTT packet id cycles through
//! 1..=65535), so an answer finds its request in O(1) without a hash map. The ring's
//! slots keep their buffers between uses (a CoAP request keeps its datagram for
//! retransmission), so steady-state sending allocates nothing.
//!
//! # Invariants
//!
//! - Live entries have sequence numbers in `[oldest, next)`, and `next - oldest` never
//!   exceeds the capacity; [`Pending::has_room`] says whether one more fits. An entry that
//!   is never answered therefore stalls its connection at most until it times out —
//!   the window is on the span of outstanding numbers, not only their count.
//! - An identifier maps back to at most one live sequence number, because the span is
//!   smaller than the identifier space (65 535 MQTT packet ids, 2^32 CoAP tokens).

/// One slot of the ring.
#[derive(Debug, Default)]
struct Slot<T> {
    seq: u64,
    live: bool,
    value: T,
}

/// Requests in flight.
#[derive(Debug)]
pub struct Pending<T> {
    slots: Vec<Slot<T>>,
    mask: u64,
    /// Most live entries at once.
    window: usize,
    oldest: u64,
    next: u64,
    live: usize,
}

/// The largest capacity: below the number of MQTT packet ids, so ids map back uniquely.
pub const MAX_CAPACITY: usize = 1 << 15;

impl<T: Default> Pending<T> {
    /// A ring for at most `window` live entries (its capacity: twice that, rounded up to
    /// a power of two, so a stuck entry does not stall the window at once).
    pub fn new(window: usize) -> Pending<T> {
        let window = window.clamp(1, MAX_CAPACITY);
        let capacity = (window * 2).next_power_of_two().min(MAX_CAPACITY);
        Pending {
            slots: (0..capacity).map(|_| Slot::default()).collect(),
            mask: capacity as u64 - 1,
            window,
            oldest: 0,
            next: 0,
            live: 0,
        }
    }

    /// Whether another entry may be added now.
    pub fn has_room(&self) -> bool {
        self.live < self.window && self.next - self.oldest <= self.mask
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The sequence number the next entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Adds the next entry and returns its sequence number and value to fill in (the
    /// previous occupant's buffers, for reuse). Callers check [`Pending::has_room`] first;
    /// without room the oldest entry is overwritten.
    pub fn push(&mut self) -> (u64, &mut T) {
        let seq = self.next;
        if seq - self.oldest > self.mask {
            // Without room: the oldest is forgotten (callers avoid this).
            let old = self.oldest;
            let _ = self.remove(old);
            self.oldest = self.oldest.max(seq + 1 - self.slots.len() as u64);
        }
        self.next += 1;
        let slot = &mut self.slots[(seq & self.mask) as usize];
        slot.seq = seq;
        slot.live = true;
        self.live += 1;
        (seq, &mut slot.value)
    }

    /// The live entry `seq`, if any.
    pub fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        let slot = &mut self.slots[(seq & self.mask) as usize];
        (slot.live && slot.seq == seq).then_some(&mut slot.value)
    }

    /// Ends entry `seq`, returning its value for the caller to read (it stays in the
    /// slot for reuse).
    pub fn remove(&mut self, seq: u64) -> Option<&mut T> {
        let slot = &mut self.slots[(seq & self.mask) as usize];
        if !(slot.live && slot.seq == seq) {
            return None;
        }
        slot.live = false;
        self.live -= 1;
        if seq == self.oldest {
            self.oldest += 1;
            while self.oldest < self.next {
                let s = &self.slots[(self.oldest & self.mask) as usize];
                if s.live && s.seq == self.oldest {
                    break;
                }
                self.oldest += 1;
            }
        }
        let slot = &mut self.slots[(seq & self.mask) as usize];
        Some(&mut slot.value)
    }

    /// The oldest live entry.
    pub fn oldest(&mut self) -> Option<(u64, &mut T)> {
        if self.live == 0 {
            return None;
        }
        let seq = self.oldest;
        let slot = &mut self.slots[(seq & self.mask) as usize];
        (slot.live && slot.seq == seq).then_some((seq, &mut slot.value))
    }

    /// Every live entry, oldest first.
    pub fn for_each_live(&mut self, mut f: impl FnMut(u64, &mut T)) {
        for seq in self.oldest..self.next {
            let slot = &mut self.slots[(seq & self.mask) as usize];
            if slot.live && slot.seq == seq {
                f(seq, &mut slot.value);
            }
        }
    }

    /// The live sequence number whose MQTT packet id is `pkid` (see [`mqtt_pkid`]).
    pub fn seq_of_pkid(&self, pkid: u16) -> Option<u64> {
        if pkid == 0 || self.next == 0 {
            return None;
        }
        let newest = self.next - 1;
        let back = (newest % 65_535 + 65_535 - u64::from(pkid - 1)) % 65_535;
        let seq = newest.checked_sub(back)?;
        (seq >= self.oldest).then_some(seq)
    }

    /// The live sequence number whose CoAP token is `token` (see [`coap_token`]).
    pub fn seq_of_token(&self, token: u32) -> Option<u64> {
        if self.next == 0 {
            return None;
        }
        let newest = self.next - 1;
        let back = u64::from((newest as u32).wrapping_sub(token));
        let seq = newest.checked_sub(back)?;
        (seq >= self.oldest).then_some(seq)
    }
}

/// The MQTT packet id of sequence number `seq`: 1..=65535, cycling.
pub fn mqtt_pkid(seq: u64) -> u16 {
    (seq % 65_535) as u16 + 1
}

/// The CoAP token of sequence number `seq`: its low 32 bits.
pub fn coap_token(seq: u64) -> u32 {
    seq as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_and_go_in_any_order() {
        let mut p: Pending<u32> = Pending::new(4);
        assert!(p.has_room());
        for i in 0..4 {
            let (seq, v) = p.push();
            assert_eq!(seq, i);
            *v = i as u32 * 10;
        }
        assert!(!p.has_room(), "window of 4");
        assert_eq!(p.remove(2).copied(), Some(20));
        assert_eq!(p.remove(2), None);
        assert!(p.has_room());
        assert_eq!(p.oldest().map(|(s, _)| s), Some(0));
        assert_eq!(p.remove(0).copied(), Some(0));
        assert_eq!(p.oldest().map(|(s, _)| s), Some(1));
        let mut seen = Vec::new();
        p.for_each_live(|s, _| seen.push(s));
        assert_eq!(seen, vec![1, 3]);
    }

    #[test]
    fn a_stuck_entry_limits_the_span() {
        let mut p: Pending<()> = Pending::new(2);
        p.push(); // 0 never answered
        let mut n = 0;
        while p.has_room() {
            let (seq, _) = p.push();
            p.remove(seq);
            n += 1;
            assert!(n < 100);
        }
        // Capacity 4: sequence numbers 0..=3 outstanding at most.
        assert_eq!(p.next_seq(), 4);
        p.remove(0);
        assert!(p.has_room());
    }

    #[test]
    fn identifiers_map_back_to_sequence_numbers() {
        let mut p: Pending<()> = Pending::new(100);
        // Far into the id space, across the wrap of packet ids and tokens.
        p.oldest = 65_500;
        p.next = 65_500;
        let mut seqs = Vec::new();
        for _ in 0..100 {
            seqs.push(p.push().0);
        }
        for &seq in &seqs {
            assert_eq!(p.seq_of_pkid(mqtt_pkid(seq)), Some(seq));
            assert_eq!(p.seq_of_token(coap_token(seq)), Some(seq));
        }
        assert_eq!(p.seq_of_pkid(0), None);
        p.oldest = (1u64 << 32) - 5;
        p.next = p.oldest;
        let a = p.push().0;
        let b = (0..10).map(|_| p.push().0).last().unwrap();
        assert_eq!(p.seq_of_token(coap_token(a)), Some(a));
        assert_eq!(p.seq_of_token(coap_token(b)), Some(b));
        assert_eq!(mqtt_pkid(65_534), 65_535);
        assert_eq!(mqtt_pkid(65_535), 1);
    }
}
