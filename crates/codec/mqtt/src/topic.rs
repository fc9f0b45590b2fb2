//! Topic names, topic filters and how they match (§4.7 of both specifications).
//!
//! - A topic name is 1 to 65,535 bytes without the wildcards `+` and `#`.
//! - A filter's levels (split on `/`) are literal, `+` (exactly one level) or, last only,
//!   `#` (this level's parent and everything below it). Wildcards are whole levels.
//! - Topics starting with `$` are not matched by a filter starting with a wildcard, so
//!   `#` never sees `$SYS/...`.
//! - `$share/<group>/<filter>` is a shared subscription (MQTT 5 §4.8.2): the group is a
//!   non-empty level without wildcards; the filter after it follows the rules above.

use crate::wire::MAX_FIELD;

/// Checks a topic name a client publishes to.
pub fn validate_name(topic: &str) -> Result<(), &'static str> {
    if topic.is_empty() {
        return Err("the topic name is empty");
    }
    if topic.len() > MAX_FIELD {
        return Err("the topic name is longer than 65535 bytes");
    }
    if topic.contains(['+', '#']) {
        return Err("a topic name may not contain the wildcards + or #");
    }
    Ok(())
}

/// Checks a topic filter (without a `$share/<group>/` prefix; see [`split_shared`]).
pub fn validate_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("the topic filter is empty");
    }
    if filter.len() > MAX_FIELD {
        return Err("the topic filter is longer than 65535 bytes");
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "#" if levels.peek().is_some() => {
                return Err("`#` must be the last level of a topic filter");
            }
            "#" | "+" => {}
            l if l.contains(['+', '#']) => {
                return Err("a wildcard must be a whole level of the topic filter");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Splits `$share/<group>/<filter>` into its group and filter; `Ok(None)` for a filter
/// that is not shared. The inner filter is not validated here.
pub fn split_shared(filter: &str) -> Result<Option<(&str, &str)>, &'static str> {
    let Some(rest) = filter.strip_prefix("$share/") else {
        return Ok(None);
    };
    let Some((group, inner)) = rest.split_once('/') else {
        return Err("a shared subscription needs $share/<group>/<filter>");
    };
    if group.is_empty() || group.contains(['+', '#']) {
        return Err("a shared subscription's group must be a name without wildcards");
    }
    if inner.is_empty() {
        return Err("a shared subscription's topic filter is empty");
    }
    Ok(Some((group, inner)))
}

/// Whether the (valid) filter `filter` matches the topic name `topic`.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_the_specification_examples() {
        let yes = [
            ("sport/tennis/player1/#", "sport/tennis/player1"),
            ("sport/tennis/player1/#", "sport/tennis/player1/ranking"),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
            ),
            ("sport/#", "sport"),
            ("#", "sport/tennis"),
            ("sport/tennis/+", "sport/tennis/player1"),
            ("sport/+", "sport/"),
            ("+/+", "/finance"),
            ("/+", "/finance"),
            ("+", "a"),
            ("$SYS/#", "$SYS/broker"),
            ("$SYS/+", "$SYS/broker"),
            ("a/b", "a/b"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f} should match {t}");
        }
        let no = [
            ("sport/tennis/+", "sport/tennis/player1/ranking"),
            ("sport/+", "sport"),
            ("+", "/finance"),
            ("#", "$SYS/broker"),
            ("+/monitor/Clients", "$SYS/monitor/Clients"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("A/b", "a/b"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f} should not match {t}");
        }
    }

    #[test]
    fn filters_and_names_are_validated() {
        for ok in ["#", "+", "a/+/b", "a/#", "/", "+/+", "$SYS/#", "a//b"] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "+a", "##"] {
            assert!(validate_filter(bad).is_err(), "{bad}");
        }
        assert!(validate_name("a/b").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a/+").is_err());
        assert!(validate_name("a/#").is_err());
    }

    #[test]
    fn shared_subscriptions_split_into_group_and_filter() {
        assert_eq!(split_shared("a/b"), Ok(None));
        assert_eq!(split_shared("$share/g/a/+"), Ok(Some(("g", "a/+"))));
        assert!(split_shared("$share/g").is_err());
        assert!(split_shared("$share//a").is_err());
        assert!(split_shared("$share/g+/a").is_err());
        assert!(split_shared("$share/g/").is_err());
    }
}
