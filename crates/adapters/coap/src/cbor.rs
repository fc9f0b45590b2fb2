//! CBOR bodies (Content-Format 60) mapped onto the same drafts as JSON bodies.
//!
//! A CBOR body is one map (one event) or an array of maps. Each map is converted to the
//! JSON value it denotes and read by [`ingot_core::format::parse_document`], so the three
//! device formats (canonical, collector, flat) and every field rule are exactly those of
//! JSON bodies. What has no JSON equivalent is refused with the field's path: byte strings,
//! map keys that are not text, integers beyond 64 bits, and NaN or infinite floats. Tags
//! are read as the value they tag (tag 1 epoch time stays a number, tag 0 a string).
//!
//! Nesting is limited to 128 levels, the same depth serde_json accepts for JSON, so a
//! stored document can always be read back.

use std::io::Write;

use ingot_core::format::{FieldError, parse_document};
use ingot_core::{Draft, Limits};
use serde_json::{Map, Number, Value};

use crate::error::CborError;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 128;

/// Parses a whole CBOR body into drafts, all or nothing.
pub fn parse_cbor(body: &[u8], limits: &Limits) -> Result<Vec<Draft>, CborError> {
    if body.len() > limits.max_body_bytes {
        return Err(CborError::BodyTooLarge {
            size: body.len(),
            max: limits.max_body_bytes,
        });
    }
    let mut rest = body;
    let item: ciborium::Value =
        ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH).map_err(malformed)?;
    if !rest.is_empty() {
        return Err(CborError::Trailing { count: rest.len() });
    }
    let elements = match item {
        ciborium::Value::Array(items) => items,
        map @ ciborium::Value::Map(_) => vec![map],
        ciborium::Value::Tag(_, inner) if matches!(*inner, ciborium::Value::Map(_)) => {
            vec![*inner]
        }
        _ => return Err(CborError::NotEvents),
    };
    if elements.is_empty() {
        return Err(CborError::Empty);
    }
    if elements.len() > limits.max_batch_events {
        return Err(CborError::TooManyEvents {
            max: limits.max_batch_events,
        });
    }
    let mut drafts = Vec::with_capacity(elements.len());
    for (index, element) in elements.into_iter().enumerate() {
        let invalid = |error: FieldError| CborError::Invalid { index, error };
        let value = to_json(element, &mut String::new()).map_err(invalid)?;
        let size = json_size(&value);
        if size > limits.max_event_bytes {
            return Err(CborError::EventTooLarge {
                index,
                size,
                max: limits.max_event_bytes,
            });
        }
        drafts.push(parse_document(value, None).map_err(invalid)?);
    }
    Ok(drafts)
}

fn malformed(e: ciborium::de::Error<std::io::Error>) -> CborError {
    use ciborium::de::Error;
    match e {
        Error::Io(_) => CborError::Malformed {
            at: None,
            message: "the body ends inside an item".into(),
        },
        Error::Syntax(at) => CborError::Malformed {
            at: Some(at),
            message: "invalid item header".into(),
        },
        Error::Semantic(at, message) => CborError::Malformed { at, message },
        Error::RecursionLimitExceeded => CborError::Malformed {
            at: None,
            message: format!("nested deeper than {MAX_DEPTH} levels"),
        },
    }
}

/// The JSON value a CBOR value denotes; `path` is the dotted path of `value` (for errors).
fn to_json(value: ciborium::Value, path: &mut String) -> Result<Value, FieldError> {
    use ciborium::Value as C;
    let here = |path: &str, reason: &'static str| FieldError::new(path.to_owned(), reason);
    Ok(match value {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Text(s) => Value::String(s),
        C::Integer(i) => {
            let i = i128::from(i);
            if let Ok(n) = i64::try_from(i) {
                Value::Number(n.into())
            } else if let Ok(n) = u64::try_from(i) {
                Value::Number(n.into())
            } else {
                return Err(here(path, "is an integer beyond 64 bits"));
            }
        }
        C::Float(f) => Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| here(path, "is not a finite number"))?,
        C::Bytes(_) => {
            return Err(here(
                path,
                "is a byte string, which has no JSON form (send pictures as the whole body with a binary Content-Format)",
            ));
        }
        C::Tag(_, inner) => to_json(*inner, path)?,
        C::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let len = path.len();
                if len > 0 {
                    path.push('.');
                }
                path.push_str(&i.to_string());
                out.push(to_json(item, path)?);
                path.truncate(len);
            }
            Value::Array(out)
        }
        C::Map(entries) => {
            let mut out = Map::new();
            for (key, item) in entries {
                let C::Text(key) = key else {
                    return Err(here(path, "has a map key that is not a text string"));
                };
                let len = path.len();
                if len > 0 {
                    path.push('.');
                }
                path.push_str(&key);
                let item = to_json(item, path)?;
                path.truncate(len);
                out.insert(key, item);
            }
            Value::Object(out)
        }
        _ => return Err(here(path, "is a CBOR value with no JSON form")),
    })
}

/// The length of a value's compact JSON text.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciborium::Value as C;

    fn cbor(value: &C) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(value, &mut out).unwrap();
        out
    }

    fn map(entries: Vec<(&str, C)>) -> C {
        C::Map(
            entries
                .into_iter()
                .map(|(k, v)| (C::Text(k.into()), v))
                .collect(),
        )
    }

    #[test]
    fn reads_the_three_formats() {
        let canonical = map(vec![
            ("device", C::Text("probe-7".into())),
            ("kind", C::Text("temperature".into())),
            ("value", C::Float(15.5)),
        ]);
        let collector = map(vec![
            ("sender", C::Text("demoMemoria".into())),
            ("origin", C::Text("probe1".into())),
            (
                "payload",
                map(vec![
                    ("type", C::Text("temperature".into())),
                    ("value", C::Integer(15.into())),
                ]),
            ),
        ]);
        let flat = map(vec![
            ("vin", C::Text("BSTZ9IEK39HHYZB6I".into())),
            ("vehicle_speed", C::Float(118.4)),
            (
                "location",
                map(vec![("lat", C::Float(38.9)), ("lon", C::Float(-77.3))]),
            ),
        ]);
        let drafts = parse_cbor(
            &cbor(&C::Array(vec![canonical, collector, flat])),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(drafts.len(), 3);
        assert_eq!(drafts[0].device.as_deref(), Some("probe-7"));
        assert_eq!(drafts[0].value, Some(15.5));
        assert_eq!(drafts[1].device.as_deref(), Some("demoMemoria"));
        assert_eq!(drafts[1].sensor.as_deref(), Some("probe1"));
        assert_eq!(drafts[1].value, Some(15.0));
        assert_eq!(drafts[2].device.as_deref(), Some("BSTZ9IEK39HHYZB6I"));
        let data = drafts[2].data.as_ref().unwrap().to_value();
        assert_eq!(data["vehicle_speed"], 118.4);
    }

    #[test]
    fn errors_name_the_element_and_the_field() {
        let limits = Limits::default();
        let bad_value = map(vec![
            ("device", C::Text("d".into())),
            ("value", C::Text("hot".into())),
        ]);
        let err = parse_cbor(&cbor(&C::Array(vec![map(vec![]), bad_value])), &limits);
        let err = err.unwrap_err();
        assert_eq!(err.to_string(), "event 1: field `value` must be a number");

        let bytes = map(vec![("data", map(vec![("raw", C::Bytes(vec![1, 2]))]))]);
        let err = parse_cbor(&cbor(&bytes), &limits).unwrap_err();
        assert!(
            err.to_string()
                .contains("field `data.raw` is a byte string"),
            "{err}"
        );

        let nan = map(vec![("data", map(vec![("x", C::Float(f64::NAN))]))]);
        let err = parse_cbor(&cbor(&nan), &limits).unwrap_err();
        assert!(
            err.to_string().contains("`data.x` is not a finite number"),
            "{err}"
        );

        let key = C::Map(vec![(C::Integer(1.into()), C::Null)]);
        let err = parse_cbor(&cbor(&key), &limits).unwrap_err();
        assert!(err.to_string().contains("map key"), "{err}");
    }

    #[test]
    fn refuses_malformed_trailing_and_non_event_bodies() {
        let limits = Limits::default();
        assert!(matches!(
            parse_cbor(&[0xBF], &limits),
            Err(CborError::Malformed { .. })
        ));
        let mut two = cbor(&map(vec![]));
        two.extend(cbor(&map(vec![])));
        assert_eq!(
            parse_cbor(&two, &limits),
            Err(CborError::Trailing { count: 1 })
        );
        assert_eq!(
            parse_cbor(&cbor(&C::Integer(3.into())), &limits),
            Err(CborError::NotEvents)
        );
        assert_eq!(
            parse_cbor(&cbor(&C::Array(vec![])), &limits),
            Err(CborError::Empty)
        );
        let mut deep = C::Null;
        for _ in 0..200 {
            deep = C::Array(vec![deep]);
        }
        let err = parse_cbor(&cbor(&map(vec![("data", deep)])), &limits).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    #[test]
    fn enforces_the_limits() {
        let limits = Limits {
            max_event_bytes: 64,
            max_batch_events: 2,
            max_body_bytes: 4096,
            ..Limits::default()
        };
        let big = map(vec![
            ("device", C::Text("d".into())),
            ("data", C::Text("x".repeat(100))),
        ]);
        assert!(matches!(
            parse_cbor(&cbor(&big), &limits),
            Err(CborError::EventTooLarge { index: 0, .. })
        ));
        let three = C::Array(vec![map(vec![]), map(vec![]), map(vec![])]);
        assert_eq!(
            parse_cbor(&cbor(&three), &limits),
            Err(CborError::TooManyEvents { max: 2 })
        );
        assert!(matches!(
            parse_cbor(&vec![0u8; 5000], &limits),
            Err(CborError::BodyTooLarge { .. })
        ));
    }
}
