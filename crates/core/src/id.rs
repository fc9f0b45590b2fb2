//! Event ids: time-ordered, assigned at ingest, or chosen by the client for idempotency.
//!
//! Generated ids are ULIDs (26 characters of Crockford base32: 48 bits of milliseconds, then
//! 80 bits that are random for the first id of a millisecond and incremented for the next
//! ones), so sorting ids as strings sorts them by ingest time and ids from one generator
//! never repeat. A client may send its own `id` (1 to 64 of `A-Z a-z 0-9 . _ : ~ -`): it is
//! kept as given, and a second event with the same id in the same tenant is not stored again.

use std::fmt;
use std::sync::Mutex;

use crate::time::Timestamp;

/// The longest client-chosen id accepted.
pub const MAX_ID_LEN: usize = 64;

/// An event id, generated or client-chosen; always valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(Box<str>);

impl EventId {
    /// Validates a client-chosen id.
    pub fn parse(s: &str) -> Result<EventId, &'static str> {
        if s.is_empty() {
            return Err("must not be empty");
        }
        if s.len() > MAX_ID_LEN {
            return Err("is longer than 64 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'~' | b'-'))
        {
            return Err("may only contain letters, digits and . _ : ~ -");
        }
        Ok(EventId(s.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EventId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Hands out monotonic ULIDs. One per process; cheap to share.
#[derive(Debug)]
pub struct IdGenerator {
    last: Mutex<(u64, u128)>,
}

impl Default for IdGenerator {
    fn default() -> Self {
        IdGenerator::new()
    }
}

impl IdGenerator {
    /// A generator with no history.
    pub fn new() -> IdGenerator {
        IdGenerator {
            last: Mutex::new((0, 0)),
        }
    }

    /// The next id for an event arriving at `now`.
    ///
    /// Within one millisecond (or if the clock steps back) the random part is incremented,
    /// so ids from one generator are strictly increasing.
    pub fn next(&self, now: Timestamp) -> EventId {
        let ms = u64::try_from(now.as_millis()).unwrap_or(0) & ((1 << 48) - 1);
        let (ms, rand) = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if ms > last.0 {
                *last = (ms, random_80());
            } else {
                // Same millisecond or a clock step back: keep the last millisecond and count up.
                // 2^80 ids in one millisecond cannot happen; wrap rather than panic regardless.
                last.1 = (last.1 + 1) & ((1 << 80) - 1);
            }
            *last
        };
        let value: u128 = (u128::from(ms) << 80) | rand;
        let mut out = [0u8; 26];
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 125 - 5 * i as u32;
            *slot = CROCKFORD[((value >> shift) & 0x1f) as usize];
        }
        EventId(
            out.iter()
                .map(|&b| b as char)
                .collect::<String>()
                .into_boxed_str(),
        )
    }
}

fn random_80() -> u128 {
    let mut bytes = [0u8; 16];
    // The OS random source does not fail on supported platforms; if it ever did, ids would
    // still be unique within this generator (they count up) but guessable across restarts.
    let _ = getrandom::fill(&mut bytes[6..]);
    // Leave headroom so incrementing within one millisecond never wraps in practice.
    u128::from_be_bytes(bytes) & ((1 << 79) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_sorted_and_unique() {
        let ids = IdGenerator::new();
        let t = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
        let mut prev = ids.next(t);
        assert_eq!(prev.as_str().len(), 26);
        assert!(EventId::parse(prev.as_str()).is_ok());
        for i in 0..10_000 {
            // Same millisecond, later millisecond, and a clock step back all stay increasing.
            let now = match i % 3 {
                0 => t,
                1 => t.saturating_add_micros(i * 1000),
                _ => t.saturating_add_micros(-5_000_000),
            };
            let next = ids.next(now);
            assert!(next > prev, "{next} <= {prev}");
            prev = next;
        }
    }

    #[test]
    fn ids_encode_their_millisecond() {
        let ids = IdGenerator::new();
        let early = ids.next(Timestamp::from_millis(1_000));
        let late = ids.next(Timestamp::from_millis(2_000));
        assert!(early.as_str().starts_with("00000000Z8"), "{early}");
        assert!(late.as_str().starts_with("00000001YG"), "{late}");
    }

    #[test]
    fn client_ids_are_checked() {
        assert!(EventId::parse("3f2a-77:batch.1~x_y").is_ok());
        assert!(EventId::parse("").is_err());
        assert!(EventId::parse("has space").is_err());
        assert!(EventId::parse("slash/no").is_err());
        assert!(EventId::parse(&"a".repeat(65)).is_err());
    }
}
