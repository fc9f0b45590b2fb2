//! Bucket widths: `1s` … `1d` (and multiples such as `15m`, `7d`), or `auto`.
//!
//! Buckets are aligned to the Unix epoch: a bucket of width `w` starts at a multiple of `w`
//! microseconds since 1970-01-01T00:00:00Z, so `1h` buckets start on the hour and `1d`
//! buckets at midnight UTC, whatever range is asked for.

use std::fmt;

use ingot_core::Timestamp;

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The widths `auto` chooses from.
const LADDER: [i64; 22] = [
    SECOND,
    2 * SECOND,
    5 * SECOND,
    10 * SECOND,
    15 * SECOND,
    30 * SECOND,
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    30 * DAY,
    365 * DAY,
];

/// A bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    micros: i64,
}

/// What a request asks for: a fixed width or one chosen from the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalSpec {
    /// The smallest ladder width giving at most the target number of buckets.
    Auto,
    /// This width.
    Fixed(Interval),
}

/// Why an interval is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an interval: {reason}")]
pub struct IntervalError {
    /// What was given.
    pub text: String,
    /// Why it was refused.
    pub reason: &'static str,
}

impl Interval {
    /// Parses `auto` or `<n><unit>` with unit `s`, `m`, `h` or `d` (from 1s to 365d).
    pub fn parse_spec(text: &str) -> Result<IntervalSpec, IntervalError> {
        if text == "auto" {
            return Ok(IntervalSpec::Auto);
        }
        let err = |reason| IntervalError {
            text: text.to_owned(),
            reason,
        };
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| err("it has no unit (s, m, h or d)"))?;
        let (n, unit) = text.split_at(split);
        let n: i64 = n
            .parse()
            .map_err(|_| err("it must start with a whole number"))?;
        let unit = match unit {
            "s" => SECOND,
            "m" => MINUTE,
            "h" => HOUR,
            "d" => DAY,
            _ => return Err(err("the unit must be s, m, h or d")),
        };
        if n < 1 || n > 365 * DAY / unit {
            return Err(err("it must be from 1s to 365d"));
        }
        Ok(IntervalSpec::Fixed(Interval { micros: n * unit }))
    }

    /// A width of `micros` microseconds (at least 1 s).
    pub fn from_micros(micros: i64) -> Interval {
        Interval {
            micros: micros.max(SECOND),
        }
    }

    /// The width in microseconds.
    pub fn micros(self) -> i64 {
        self.micros
    }

    /// The start of the bucket holding `ts`.
    pub fn floor(self, ts: Timestamp) -> Timestamp {
        let t = ts.as_micros();
        Timestamp::from_micros(t - t.rem_euclid(self.micros))
    }

    /// The smallest ladder width giving at most `target` buckets over `[from, to)`.
    pub fn auto(from: Timestamp, to: Timestamp, target: usize) -> Interval {
        let span = (to.as_micros() - from.as_micros()).max(1);
        let target = target.max(1) as i64;
        let micros = LADDER
            .iter()
            .copied()
            .find(|w| span.div_euclid(*w) < target)
            .unwrap_or(LADDER[LADDER.len() - 1]);
        Interval { micros }
    }

    /// Resolves a spec for a range.
    pub fn resolve(spec: IntervalSpec, from: Timestamp, to: Timestamp, target: usize) -> Interval {
        match spec {
            IntervalSpec::Auto => Interval::auto(from, to, target),
            IntervalSpec::Fixed(i) => i,
        }
    }

    /// The number of buckets covering `[from, to)`.
    pub fn buckets(self, from: Timestamp, to: Timestamp) -> u64 {
        let first = self.floor(from).as_micros();
        let last = to.as_micros();
        if last <= first {
            return 0;
        }
        ((last - first - 1) / self.micros + 1) as u64
    }
}

impl fmt::Display for Interval {
    /// The largest whole unit: `90m` is `90m`, `2h` is `2h`, `86400s` is `1d`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, name) in [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (SECOND, "s")] {
            if self.micros % unit == 0 {
                return write!(f, "{}{name}", self.micros / unit);
            }
        }
        write!(f, "{}us", self.micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(text: &str) -> Interval {
        match Interval::parse_spec(text).unwrap() {
            IntervalSpec::Fixed(i) => i,
            IntervalSpec::Auto => panic!("auto"),
        }
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(fixed("1h").micros(), HOUR);
        assert_eq!(fixed("15m").to_string(), "15m");
        assert_eq!(fixed("60m").to_string(), "1h");
        assert_eq!(fixed("1d").to_string(), "1d");
        assert_eq!(Interval::parse_spec("auto"), Ok(IntervalSpec::Auto));
        for bad in [
            "",
            "h",
            "1",
            "0s",
            "1w",
            "-1h",
            "1.5h",
            "366d",
            "99999999999999999999s",
        ] {
            assert!(Interval::parse_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn buckets_are_aligned_to_the_epoch() {
        let t = Timestamp::parse_rfc3339("2018-06-01T14:08:24.771Z").unwrap();
        assert_eq!(
            fixed("1h").floor(t).to_rfc3339(),
            "2018-06-01T14:00:00.000Z"
        );
        assert_eq!(
            fixed("1d").floor(t).to_rfc3339(),
            "2018-06-01T00:00:00.000Z"
        );
        assert_eq!(
            fixed("15m").floor(t).to_rfc3339(),
            "2018-06-01T14:00:00.000Z"
        );
        let before_epoch = Timestamp::from_micros(-1);
        assert_eq!(fixed("1s").floor(before_epoch).as_micros(), -SECOND);
    }

    #[test]
    fn auto_and_counts() {
        let from = Timestamp::parse_rfc3339("2018-06-01T00:00:00Z").unwrap();
        let to = Timestamp::parse_rfc3339("2018-06-02T00:00:00Z").unwrap();
        assert_eq!(Interval::auto(from, to, 100).to_string(), "15m");
        assert_eq!(Interval::auto(from, to, 30).to_string(), "1h");
        assert_eq!(fixed("1h").buckets(from, to), 24);
        let mid = from.saturating_add_micros(30 * MINUTE);
        assert_eq!(
            fixed("1h").buckets(mid, to),
            24,
            "the first bucket starts on the hour"
        );
        assert_eq!(fixed("1h").buckets(to, from), 0);
    }
}
