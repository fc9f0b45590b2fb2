//! [`Timestamp`]: microseconds since the Unix epoch, RFC 3339 on the wire.
//!
//! Parsing and formatting are hand-written because they sit on the ingest hot path (every
//! event carries a `ts`) and because the accepted grammar is ours to state precisely:
//!
//! ```text
//! YYYY-MM-DD ( "T" | "t" | " " ) hh:mm:ss [ "." 1*9DIGIT ] ( "Z" | "z" | ("+" | "-") hh:mm )
//! ```
//!
//! Years 0000 to 9999; seconds 00 to 60 (a leap second is taken as the next second's start);
//! digits beyond microseconds are truncated. A date without an offset is refused rather than
//! guessed. Output is always UTC with `Z`, with milliseconds (`.771Z`) when the instant has
//! no sub-millisecond part and microseconds otherwise.

use std::fmt;

/// An instant, in microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// Why a timestamp could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at character {position} (expected RFC 3339, e.g. 2018-06-01T14:08:24.771Z)")]
pub struct TimeError {
    /// 0-based byte position in the input where parsing failed.
    pub position: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

/// 0000-01-01T00:00:00Z in microseconds.
const MIN_MICROS: i64 = -62_167_219_200_000_000;
/// 9999-12-31T23:59:59.999999Z in microseconds.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

impl Timestamp {
    /// The earliest representable instant on the wire, 0000-01-01T00:00:00Z.
    pub const MIN: Timestamp = Timestamp(MIN_MICROS);
    /// The latest representable instant on the wire, 9999-12-31T23:59:59.999999Z.
    pub const MAX: Timestamp = Timestamp(MAX_MICROS);
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// The current time of the system clock.
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    pub fn now() -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(since.as_micros()).unwrap_or(MAX_MICROS))
    }

    /// From microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// From milliseconds since the epoch, saturating at the representable range.
    pub const fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis.saturating_mul(1000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the epoch (floor).
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Whether the instant can be written as RFC 3339 (years 0000 to 9999).
    pub const fn is_in_range(self) -> bool {
        self.0 >= MIN_MICROS && self.0 <= MAX_MICROS
    }

    /// This instant plus `micros` microseconds, saturating.
    pub const fn saturating_add_micros(self, micros: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(micros))
    }

    /// Parses an RFC 3339 date-time (see the module docs for the exact grammar).
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, TimeError> {
        Parser {
            b: s.as_bytes(),
            i: 0,
        }
        .parse()
    }

    /// Formats as RFC 3339 in UTC (`2018-06-01T14:08:24.771Z`).
    pub fn to_rfc3339(self) -> String {
        let mut out = String::with_capacity(27);
        self.write_rfc3339(&mut out);
        out
    }

    /// Appends the RFC 3339 form to `out`.
    pub fn write_rfc3339(self, out: &mut String) {
        let micros = self.0.clamp(MIN_MICROS, MAX_MICROS);
        let secs = micros.div_euclid(1_000_000);
        let sub = micros.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        let mut buf = [0u8; 27];
        put_digits(&mut buf[0..4], y as u32);
        buf[4] = b'-';
        put_digits(&mut buf[5..7], m);
        buf[7] = b'-';
        put_digits(&mut buf[8..10], d);
        buf[10] = b'T';
        put_digits(&mut buf[11..13], sod / 3600);
        buf[13] = b':';
        put_digits(&mut buf[14..16], sod / 60 % 60);
        buf[16] = b':';
        put_digits(&mut buf[17..19], sod % 60);
        buf[19] = b'.';
        let len = if sub.is_multiple_of(1000) {
            put_digits(&mut buf[20..23], sub / 1000);
            buf[23] = b'Z';
            24
        } else {
            put_digits(&mut buf[20..26], sub);
            buf[26] = b'Z';
            27
        };
        // Every byte written above is an ASCII digit or separator.
        out.extend(buf[..len].iter().map(|&b| b as char));
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(27);
        self.write_rfc3339(&mut s);
        f.write_str(&s)
    }
}

fn put_digits(dst: &mut [u8], mut v: u32) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, reason: &'static str) -> Result<T, TimeError> {
        Err(TimeError {
            position: self.i,
            reason,
        })
    }

    fn digits(&mut self, n: usize, what: &'static str) -> Result<u32, TimeError> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.b.get(self.i) {
                Some(c @ b'0'..=b'9') => v = v * 10 + u32::from(c - b'0'),
                _ => return self.fail(what),
            }
            self.i += 1;
        }
        Ok(v)
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), TimeError> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            self.fail(what)
        }
    }

    fn parse(mut self) -> Result<Timestamp, TimeError> {
        let year = i64::from(self.digits(4, "expected a 4-digit year")?);
        self.expect(b'-', "expected '-' after the year")?;
        let start = self.i;
        let month = self.digits(2, "expected a 2-digit month")?;
        if !(1..=12).contains(&month) {
            self.i = start;
            return self.fail("month out of range 01-12");
        }
        self.expect(b'-', "expected '-' after the month")?;
        let start = self.i;
        let day = self.digits(2, "expected a 2-digit day")?;
        if day == 0 || day > days_in_month(year, month) {
            self.i = start;
            return self.fail("day out of range for the month");
        }
        match self.b.get(self.i) {
            Some(b'T' | b't' | b' ') => self.i += 1,
            None => return self.fail("missing time (a date alone is not a date-time)"),
            _ => return self.fail("expected 'T' between date and time"),
        }
        let start = self.i;
        let hour = self.digits(2, "expected a 2-digit hour")?;
        if hour > 23 {
            self.i = start;
            return self.fail("hour out of range 00-23");
        }
        self.expect(b':', "expected ':' after the hour")?;
        let start = self.i;
        let minute = self.digits(2, "expected 2-digit minutes")?;
        if minute > 59 {
            self.i = start;
            return self.fail("minutes out of range 00-59");
        }
        self.expect(b':', "expected ':' after the minutes")?;
        let start = self.i;
        let second = self.digits(2, "expected 2-digit seconds")?;
        if second > 60 {
            self.i = start;
            return self.fail("seconds out of range 00-60");
        }
        let mut micros = 0i64;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            let mut n = 0;
            while let Some(c @ b'0'..=b'9') = self.b.get(self.i) {
                if n < 6 {
                    micros = micros * 10 + i64::from(c - b'0');
                }
                n += 1;
                self.i += 1;
            }
            if n == 0 {
                return self.fail("expected digits after '.'");
            }
            if n > 9 {
                return self.fail("more than 9 fractional digits");
            }
            for _ in n..6 {
                micros *= 10;
            }
        }
        let offset_secs: i64 = match self.b.get(self.i) {
            Some(b'Z' | b'z') => {
                self.i += 1;
                0
            }
            Some(&sign @ (b'+' | b'-')) => {
                self.i += 1;
                let start = self.i;
                let oh = self.digits(2, "expected a 2-digit offset hour")?;
                self.expect(b':', "expected ':' in the UTC offset")?;
                let om = self.digits(2, "expected 2-digit offset minutes")?;
                if oh > 23 || om > 59 {
                    self.i = start;
                    return self.fail("UTC offset out of range");
                }
                let secs = i64::from(oh * 3600 + om * 60);
                if sign == b'+' { secs } else { -secs }
            }
            None => return self.fail("missing UTC offset (add 'Z' for UTC)"),
            _ => return self.fail("expected 'Z' or a UTC offset like +02:00"),
        };
        if self.i != self.b.len() {
            return self.fail("unexpected characters after the date-time");
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
        let ts = Timestamp(secs * 1_000_000 + micros);
        if !ts.is_in_range() {
            return Err(TimeError {
                position: 0,
                reason: "instant outside years 0000-9999 in UTC",
            });
        }
        Ok(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_brief_example() {
        let ts = Timestamp::parse_rfc3339("2018-06-01T14:08:24.771Z").unwrap();
        assert_eq!(ts.as_millis(), 1_527_862_104_771);
        assert_eq!(ts.to_rfc3339(), "2018-06-01T14:08:24.771Z");
    }

    #[test]
    fn offsets_and_fractions() {
        let a = Timestamp::parse_rfc3339("2018-06-01T16:08:24.771+02:00").unwrap();
        let b = Timestamp::parse_rfc3339("2018-06-01t14:08:24.771z").unwrap();
        let c = Timestamp::parse_rfc3339("2018-06-01 12:08:24.771123999-02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(c.as_micros(), b.as_micros() + 123);
        assert_eq!(c.to_rfc3339(), "2018-06-01T14:08:24.771123Z");
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:00Z").unwrap(),
            Timestamp::EPOCH
        );
        assert_eq!(
            Timestamp::parse_rfc3339("1969-12-31T23:59:59.5Z")
                .unwrap()
                .as_micros(),
            -500_000
        );
        assert_eq!(
            Timestamp::from_micros(-500_000).to_rfc3339(),
            "1969-12-31T23:59:59.500Z"
        );
    }

    #[test]
    fn errors_name_the_position() {
        let cases = [
            ("2018-13-01T00:00:00Z", 5, "month"),
            ("2019-02-29T00:00:00Z", 8, "day out of range"),
            ("2018-06-01", 10, "missing time"),
            ("2018-06-01T14:08:24", 19, "missing UTC offset"),
            ("2018-06-01T24:00:00Z", 11, "hour"),
            ("2018-06-01T14:08:24.Z", 20, "digits after"),
            ("2018-06-01T14:08:24Zx", 20, "unexpected characters"),
            ("18-06-01T14:08:24Z", 2, "4-digit year"),
            ("", 0, "4-digit year"),
        ];
        for (input, pos, reason) in cases {
            let err = Timestamp::parse_rfc3339(input).unwrap_err();
            assert_eq!(err.position, pos, "{input}: {err}");
            assert!(err.reason.contains(reason), "{input}: {err}");
        }
        assert!(Timestamp::parse_rfc3339("2000-02-29T00:00:00Z").is_ok());
        assert!(Timestamp::parse_rfc3339("1900-02-29T00:00:00Z").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(micros in MIN_MICROS..=MAX_MICROS) {
            let ts = Timestamp::from_micros(micros);
            let text = ts.to_rfc3339();
            prop_assert_eq!(Timestamp::parse_rfc3339(&text).unwrap(), ts);
        }

        #[test]
        fn civil_round_trip(days in -800_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = Timestamp::parse_rfc3339(&s);
        }

        #[test]
        fn parser_never_panics_on_near_misses(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})?") {
            let _ = Timestamp::parse_rfc3339(&s);
        }
    }
}

/// Parses a duration as people write it in configuration and requests: a whole number and
/// a unit, `ms`, `s`, `m`, `h` or `d` (`10ms`, `25s`, `5m`, `2h`, `7d`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10ms, 25s, 5m, 2h or 7d"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{text}` has no unit: use ms, s, m, h or d")),
    };
    Ok(std::time::Duration::from_millis(n.saturating_mul(unit_ms)))
}

/// Formats a duration with its largest whole unit (`7d`, `90m`, `25s`, `10ms`).
pub fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    for (unit, name) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ] {
        if ms >= unit && ms.is_multiple_of(unit) {
            return format!("{}{name}", ms / unit);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(
            parse_duration("10ms"),
            Ok(std::time::Duration::from_millis(10))
        );
        assert_eq!(
            parse_duration("7d"),
            Ok(std::time::Duration::from_secs(604_800))
        );
        for bad in ["7", "ms", "1w", "-1s", "1.5h", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for text in ["7d", "90m", "25s", "10ms", "1h"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
