//! `data` between [`JsonText`](ingot_core::JsonText) and `jsonb`.
//!
//! - Writing: the JSON text goes to the server as is ([`Jsonb`]: the binary form of `jsonb`
//!   is a version byte and the text), so nothing is parsed or re-serialized in Rust.
//! - Reading: the server prints `jsonb` in its normal form (keys ordered by length, then
//!   bytewise; one space after `:` and `,`; numbers as `numeric` prints them); [`JsonbText`]
//!   removes the spaces outside strings, so the result is compact JSON again.
//! - `jsonb` cannot hold every JSON text: `\u0000` (PostgreSQL text has no NUL) and
//!   `\uD800`–`\uDFFF` escapes that do not form a surrogate pair are refused, and a
//!   refused row would fail its whole batch on every retry. [`for_jsonb`] finds such
//!   documents and gives a copy with those escapes replaced by `\uFFFD` for the `data`
//!   column; the caller keeps the exact text in `data_text`, which reading prefers.
//!   Filters on such a document see U+FFFD where the device sent the refused escape.

use std::borrow::Cow;
use std::error::Error;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// The version byte of the binary `jsonb` format.
const JSONB_VERSION: u8 = 1;

/// JSON text sent as a `jsonb` (or `json`) parameter or COPY field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Jsonb<'a>(pub(crate) &'a str);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.put_u8(JSONB_VERSION);
        }
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::JSON
    }

    to_sql_checked!();
}

/// A `jsonb` (or `json`) column read back as compact JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonbText(pub(crate) String);

impl<'a> FromSql<'a> for JsonbText {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let text = if *ty == Type::JSONB {
            match raw.split_first() {
                Some((&JSONB_VERSION, rest)) => rest,
                Some((version, _)) => {
                    return Err(format!("unsupported jsonb format version {version}").into());
                }
                None => return Err("empty jsonb value".into()),
            }
        } else {
            raw
        };
        Ok(JsonbText(compact(std::str::from_utf8(text)?)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::JSON
    }
}

/// Removes whitespace outside strings from valid JSON text.
pub(crate) fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

/// The text to store in the `jsonb` column: `json` itself, or, if `jsonb` would refuse
/// it, a copy with the refused `\u` escapes replaced by `\uFFFD` (see the module docs).
///
/// `json` must be valid JSON text; outside strings, backslashes cannot occur.
pub(crate) fn for_jsonb(json: &str) -> Cow<'_, str> {
    // Fast path: no escape that could be refused.
    if !json.contains("\\u") {
        return Cow::Borrowed(json);
    }
    let bytes = json.as_bytes();
    let mut refused: Vec<std::ops::Range<usize>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        // An escape: `\` and one character, or `\uXXXX`.
        if bytes.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let Some(unit) = hex4(bytes, i + 2) else {
            // Not valid JSON; leave it for the server to judge.
            i += 2;
            continue;
        };
        match unit {
            0 => {
                refused.push(i..i + 6);
                i += 6;
            }
            0xD800..=0xDBFF => {
                let low = (bytes.get(i + 6) == Some(&b'\\') && bytes.get(i + 7) == Some(&b'u'))
                    .then(|| hex4(bytes, i + 8))
                    .flatten();
                if low.is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) {
                    i += 12;
                } else {
                    refused.push(i..i + 6);
                    i += 6;
                }
            }
            0xDC00..=0xDFFF => {
                refused.push(i..i + 6);
                i += 6;
            }
            _ => i += 6,
        }
    }
    if refused.is_empty() {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let mut at = 0;
    for range in refused {
        out.push_str(&json[at..range.start]);
        out.push_str("\\ufffd");
        at = range.end;
    }
    out.push_str(&json[at..]);
    Cow::Owned(out)
}

/// The four hex digits at `at`, as a UTF-16 code unit.
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_removes_the_spaces_jsonb_prints() {
        assert_eq!(
            compact(r#"{"a": 1, "b": [1, 2, {"c": "x y, z: \" w"}], "d": "\\"}"#),
            r#"{"a":1,"b":[1,2,{"c":"x y, z: \" w"}],"d":"\\"}"#
        );
        assert_eq!(compact("\"  \""), "\"  \"");
        assert_eq!(compact("42"), "42");
    }

    #[test]
    fn documents_jsonb_accepts_are_kept_as_they_are() {
        for ok in [
            r#"{"a":"caf\u00e9 \ud83d\ude00"}"#,
            r#"["\\u0000","\\\\u0000"]"#,
            r#"{"n":[1,-2.5,1e300]}"#,
            r#""\uD83D\uDE00""#,
            "null",
        ] {
            assert!(matches!(for_jsonb(ok), Cow::Borrowed(_)), "{ok}");
        }
    }

    #[test]
    fn refused_escapes_become_replacement_characters() {
        assert_eq!(for_jsonb(r#""a\u0000b""#), r#""a\ufffdb""#);
        assert_eq!(for_jsonb(r#"["\ud83d",1]"#), r#"["\ufffd",1]"#);
        assert_eq!(
            for_jsonb(r#""\ude00\ud83d\ude00""#),
            r#""\ufffd\ud83d\ude00""#
        );
        assert_eq!(for_jsonb(r#""\ud83d\u0041""#), r#""\ufffd\u0041""#);
        assert_eq!(
            for_jsonb(r#"{"k\u0000":"\\\u0000"}"#),
            r#"{"k\ufffd":"\\\ufffd"}"#
        );
    }
}
