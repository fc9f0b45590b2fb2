//! How log topics, partitions and groups become JetStream names.
//!
//! ```text
//! stream   <stream_prefix>_<topic>_<partition>      INGOT_events_0
//! subject  <subject_prefix>.<topic>.<partition>     ingot.events.0
//! consumer <group>                                   store-writer (durable, on each stream)
//! ```
//!
//! Log names are `[a-z0-9._-]` ([`ingot_log::validate_name`]); JetStream stream and
//! consumer names may not hold `.`, and a `.` in a subject would split a token. So names are
//! escaped: `a-z`, `0-9` and `-` stay, `_` becomes `__` and `.` becomes `_d`. The escape is
//! reversible (an `_` is always followed by `_` or `d`), so two topics never share a stream,
//! and the separator before the partition (`_` then a digit) cannot be mistaken for one.

use ingot_log::LogError;

/// `name` escaped for a stream name, a consumer name or one subject token.
pub(crate) fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        match c {
            '_' => out.push_str("__"),
            '.' => out.push_str("_d"),
            other => out.push(other),
        }
    }
    out
}

/// The stream holding `partition` of `topic`.
pub(crate) fn stream(prefix: &str, topic: &str, partition: u32) -> String {
    format!("{prefix}_{}_{partition}", escape(topic))
}

/// The subject the stream of `partition` of `topic` captures.
pub(crate) fn subject(prefix: &str, topic: &str, partition: u32) -> String {
    format!("{prefix}.{}.{partition}", escape(topic))
}

/// The durable consumer of `group` (one per partition stream, all with this name).
pub(crate) fn consumer(group: &str) -> String {
    escape(group)
}

/// Checks a stream prefix: 1 to 32 of `A-Z a-z 0-9 - _`.
pub(crate) fn check_stream_prefix(prefix: &str) -> Result<(), LogError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 32
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(LogError::Invalid(format!(
            "nats stream prefix {prefix:?} must be 1 to 32 of A-Z, a-z, 0-9, '-', '_'"
        )))
    }
}

/// Checks a subject prefix: tokens of `A-Z a-z 0-9 - _` separated by single dots.
pub(crate) fn check_subject_prefix(prefix: &str) -> Result<(), LogError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        });
    if ok {
        Ok(())
    } else {
        Err(LogError::Invalid(format!(
            "nats subject prefix {prefix:?} must be dot-separated tokens of A-Z, a-z, 0-9, '-', '_'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_follow_the_documented_scheme() {
        assert_eq!(stream("INGOT", "events", 0), "INGOT_events_0");
        assert_eq!(subject("ingot", "events", 3), "ingot.events.3");
        assert_eq!(consumer("store-writer"), "store-writer");
        assert_eq!(stream("INGOT", "a.b_c", 12), "INGOT_a_db__c_12");
        assert_eq!(subject("ingot", "a.b", 1), "ingot.a_db.1");
    }

    #[test]
    fn escaping_never_maps_two_names_to_one() {
        let names = [
            "a.b", "a_b", "a__b", "a_db", "a._", "a_.", "a-d", "ad", "a.d", "a_d", "_d", ".d",
        ];
        let escaped: HashSet<String> = names.iter().map(|n| escape(n)).collect();
        assert_eq!(escaped.len(), names.len(), "{escaped:?}");
        // Topic and partition never run into each other.
        let streams: HashSet<String> = [("a_1", 0), ("a", 10), ("a.1", 0), ("a_d1", 0)]
            .iter()
            .map(|(t, p)| stream("P", t, *p))
            .collect();
        assert_eq!(streams.len(), 4, "{streams:?}");
        for name in names.iter().filter(|n| !n.starts_with('.')) {
            let e = escape(name);
            assert!(!e.contains('.'), "{e}");
        }
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_stream_prefix("INGOT").is_ok());
        assert!(check_stream_prefix("acme-prod_1").is_ok());
        for bad in ["", "A.B", "A B", "A*", &"x".repeat(33)] {
            assert!(check_stream_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(check_subject_prefix("ingot").is_ok());
        assert!(check_subject_prefix("acme.ingot").is_ok());
        for bad in ["", ".ingot", "ingot.", "a..b", "in*got", "a >"] {
            assert!(check_subject_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
