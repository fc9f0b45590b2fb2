//! What devices send, mapped onto [`Draft`]s.
//!
//! A body is one JSON object, a JSON array of objects, or NDJSON (one object per line).
//! Each object is read as one of three formats, decided by its keys:
//!
//! 1. **Collector** (has `payload` and one of `sender`, `origin`, `namespace`):
//!    `sender` → device, `origin` → sensor, `payload.type` → kind, `payload.value` → value,
//!    `timestamp` → ts; the whole document is kept as `data`.
//! 2. **Canonical** (only keys among `id device sensor ts kind value data`): read strictly,
//!    every field checked for its type.
//! 3. **Flat telemetry** (anything else, e.g. a vehicle's `vin`, `vehicle_speed`,
//!    `location`): device from the first of `device device_id deviceId vin sender`, ts from
//!    `ts timestamp time`, kind from `kind` or `type` and value from `value` when they are
//!    usable; the whole document is kept as `data`, so its own names stay queryable.
//!
//! Timestamps are RFC 3339 strings or numbers: numbers below 10^11 are Unix seconds (any
//! such number of milliseconds would be a date in 1970-73), larger ones Unix milliseconds.
//! A `location` object, at the top of a flat document or of canonical `data`, must hold
//! numeric `lat` in [-90, 90] and `lon` in [-180, 180], so maps can trust it.
//!
//! A batch is all or nothing: the first bad element fails the whole body, and the error
//! names the element's index (and line), the field path and the reason.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{ErrorExt, ErrorKind};
use crate::event::{Draft, JsonText, Payload, compact};
use crate::id::EventId;
use crate::limits::Limits;
use crate::name;
use crate::time::Timestamp;

/// How a JSON body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// One object or an array of objects.
    Json,
    /// One object per line; blank lines are skipped.
    Ndjson,
}

/// A problem with one field of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field (`payload.value`); empty for the document itself.
    pub path: String,
    /// What is wrong with it.
    pub reason: Cow<'static, str>,
}

impl FieldError {
    /// An error about the field at `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<Cow<'static, str>>) -> FieldError {
        FieldError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "the event {}", self.reason)
        } else {
            write!(f, "field `{}` {}", self.path, self.reason)
        }
    }
}

/// Why a body was refused. Nothing of a refused body is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is not well-formed JSON (or NDJSON).
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line in the body.
        line: usize,
        /// 1-based column in that line.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// One element is well-formed but not a valid event.
    #[error("event {index} (line {line}): {error}")]
    Invalid {
        /// 0-based position of the element in the batch.
        index: usize,
        /// 1-based line where the element starts.
        line: usize,
        /// What is wrong.
        error: FieldError,
    },
    /// One element is larger than `max_event_bytes`.
    #[error("event {index} (line {line}) is {size} bytes, more than the limit of {max}")]
    EventTooLarge {
        /// 0-based position of the element.
        index: usize,
        /// 1-based line where the element starts.
        line: usize,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// More elements than `max_batch_events`.
    #[error("the batch has more than {max} events")]
    TooManyEvents {
        /// The limit.
        max: usize,
    },
    /// The body is larger than `max_body_bytes` (or `max_binary_bytes` for binary bodies).
    #[error("the body is {size} bytes, more than the limit of {max}")]
    BodyTooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// No events at all.
    #[error("the body contains no events")]
    Empty,
}

impl ErrorExt for BodyError {
    fn kind(&self) -> ErrorKind {
        match self {
            BodyError::EventTooLarge { .. }
            | BodyError::TooManyEvents { .. }
            | BodyError::BodyTooLarge { .. } => ErrorKind::TooLarge,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Parses a whole body into drafts, all or nothing.
pub fn parse_body(
    body: &[u8],
    format: BodyFormat,
    limits: &Limits,
) -> Result<Vec<Draft>, BodyError> {
    if body.len() > limits.max_body_bytes {
        return Err(BodyError::BodyTooLarge {
            size: body.len(),
            max: limits.max_body_bytes,
        });
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        let (line, column) = line_col(body, e.valid_up_to());
        BodyError::Syntax {
            line,
            column,
            message: "invalid UTF-8".into(),
        }
    })?;
    match format {
        BodyFormat::Json => parse_json(text, limits),
        BodyFormat::Ndjson => parse_ndjson(text, limits),
    }
}

fn parse_json(text: &str, limits: &Limits) -> Result<Vec<Draft>, BodyError> {
    let syntax = |e: serde_json::Error| BodyError::Syntax {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e),
    };
    let elements: Vec<&RawValue> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(syntax)?
    } else {
        vec![serde_json::from_str(text).map_err(syntax)?]
    };
    if elements.is_empty() {
        return Err(BodyError::Empty);
    }
    if elements.len() > limits.max_batch_events {
        return Err(BodyError::TooManyEvents {
            max: limits.max_batch_events,
        });
    }
    let mut drafts = Vec::with_capacity(elements.len());
    for (index, raw) in elements.into_iter().enumerate() {
        let line = || {
            let at = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            line_col(text.as_bytes(), at).0
        };
        let raw = raw.get();
        if raw.len() > limits.max_event_bytes {
            let max = limits.max_event_bytes;
            return Err(BodyError::EventTooLarge {
                index,
                line: line(),
                size: raw.len(),
                max,
            });
        }
        // Already known to be well-formed: the only error left is the event's content.
        let value: Value = serde_json::from_str(raw).map_err(syntax)?;
        let draft = parse_document(value, Some(raw)).map_err(|error| BodyError::Invalid {
            index,
            line: line(),
            error,
        })?;
        drafts.push(draft);
    }
    Ok(drafts)
}

fn parse_ndjson(text: &str, limits: &Limits) -> Result<Vec<Draft>, BodyError> {
    let mut drafts = Vec::new();
    for (n, line_text) in text.split('\n').enumerate() {
        let line = n + 1;
        let trimmed = line_text.trim();
        if trimmed.is_empty() {
            continue;
        }
        let index = drafts.len();
        if index >= limits.max_batch_events {
            return Err(BodyError::TooManyEvents {
                max: limits.max_batch_events,
            });
        }
        if trimmed.len() > limits.max_event_bytes {
            let (size, max) = (trimmed.len(), limits.max_event_bytes);
            return Err(BodyError::EventTooLarge {
                index,
                line,
                size,
                max,
            });
        }
        let value: Value = serde_json::from_str(line_text).map_err(|e| BodyError::Syntax {
            line,
            column: e.column(),
            message: strip_position(&e),
        })?;
        let draft = parse_document(value, Some(trimmed)).map_err(|error| BodyError::Invalid {
            index,
            line,
            error,
        })?;
        drafts.push(draft);
    }
    if drafts.is_empty() {
        return Err(BodyError::Empty);
    }
    Ok(drafts)
}

/// serde_json appends " at line L column C" to its messages; we report those separately.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn line_col(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (line, before.len() - line_start + 1)
}

const CANONICAL: [&str; 7] = ["id", "device", "sensor", "ts", "kind", "value", "data"];
const FLAT_DEVICE: [&str; 5] = ["device", "device_id", "deviceId", "vin", "sender"];
const FLAT_TS: [&str; 3] = ["ts", "timestamp", "time"];

/// Which of the three formats a document is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// `{"device", "sensor", "ts", "kind", "value", "data", "id"}`.
    Canonical,
    /// `{"namespace", "sender", "origin", "payload": {"type", "value"}, "timestamp"}`.
    Collector,
    /// Any other object.
    Flat,
}

/// Decides the format of a document from its keys.
pub fn classify(doc: &Map<String, Value>) -> DocumentFormat {
    if doc.contains_key("payload")
        && (doc.contains_key("sender")
            || doc.contains_key("origin")
            || doc.contains_key("namespace"))
    {
        DocumentFormat::Collector
    } else if doc.keys().all(|k| CANONICAL.contains(&k.as_str())) {
        DocumentFormat::Canonical
    } else {
        DocumentFormat::Flat
    }
}

/// Maps one parsed document onto a draft. `raw` is its source text, if there is one: a
/// non-canonical document is kept as that text, compacted, rather than re-serialized.
pub fn parse_document(doc: Value, raw: Option<&str>) -> Result<Draft, FieldError> {
    let Value::Object(map) = doc else {
        return Err(FieldError::new("", "must be a JSON object"));
    };
    let whole = |map: &Map<String, Value>| match raw {
        Some(raw) => JsonText::from_trusted(compact(raw)),
        None => JsonText::from_value(&Value::Object(map.clone())),
    };
    match classify(&map) {
        DocumentFormat::Canonical => canonical(map),
        DocumentFormat::Collector => {
            let mut draft = collector(&map)?;
            draft.data = Some(whole(&map));
            Ok(draft)
        }
        DocumentFormat::Flat => {
            let mut draft = flat(&map)?;
            draft.data = Some(whole(&map));
            Ok(draft)
        }
    }
}

fn canonical(mut map: Map<String, Value>) -> Result<Draft, FieldError> {
    let data = match map.remove("data") {
        None | Some(Value::Null) => None,
        Some(data) => {
            if let Value::Object(obj) = &data {
                check_location(obj, "data.")?;
            }
            Some(JsonText::from_value(&data))
        }
    };
    let id = match opt_str(&map, "id")? {
        Some(id) => Some(EventId::parse(id).map_err(|r| FieldError::new("id", r))?),
        None => None,
    };
    Ok(Draft {
        id,
        device: opt_name(&map, "device")?,
        sensor: opt_name(&map, "sensor")?,
        ts: opt_ts(&map, "ts", "ts")?,
        kind: opt_name(&map, "kind")?,
        value: opt_number(&map, "value", "value")?,
        data,
        payload: None,
    })
}

fn collector(map: &Map<String, Value>) -> Result<Draft, FieldError> {
    opt_str(map, "namespace")?;
    let payload = match map.get("payload") {
        Some(Value::Object(p)) => p,
        _ => {
            return Err(FieldError::new(
                "payload",
                "must be an object with `type` and `value`",
            ));
        }
    };
    let kind = match payload.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            name::validate(s).map_err(|r| FieldError::new("payload.type", r))?;
            Some(s.clone())
        }
        Some(_) => return Err(FieldError::new("payload.type", "must be a string")),
    };
    Ok(Draft {
        id: None,
        device: opt_name(map, "sender")?,
        sensor: opt_name(map, "origin")?,
        ts: opt_ts(map, "timestamp", "timestamp")?,
        kind,
        value: opt_number(payload, "value", "payload.value")?,
        data: None,
        payload: None,
    })
}

fn flat(map: &Map<String, Value>) -> Result<Draft, FieldError> {
    let mut device = None;
    for key in FLAT_DEVICE {
        match map.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => {
                name::validate(s).map_err(|r| FieldError::new(key, r))?;
                device = Some(s.clone());
            }
            Some(Value::Number(n)) if n.is_u64() => device = Some(n.to_string()),
            Some(_) => return Err(FieldError::new(key, "must be a string naming the device")),
        }
        break;
    }
    let mut ts = None;
    for key in FLAT_TS {
        if map.get(key).is_some_and(|v| !v.is_null()) {
            ts = opt_ts(map, key, key)?;
            break;
        }
    }
    check_location(map, "")?;
    // Kind, sensor and value are the fast path for charts; a flat document's own fields
    // stay queryable under `data` even when they do not fit it.
    let usable_name = |key: &str| match map.get(key) {
        Some(Value::String(s)) if name::validate(s).is_ok() => Some(s.clone()),
        _ => None,
    };
    Ok(Draft {
        id: None,
        device,
        sensor: usable_name("sensor"),
        ts,
        kind: usable_name("kind").or_else(|| usable_name("type")),
        value: map
            .get("value")
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite()),
        data: None,
        payload: None,
    })
}

fn check_location(map: &Map<String, Value>, prefix: &str) -> Result<(), FieldError> {
    let Some(location) = map.get("location") else {
        return Ok(());
    };
    let Value::Object(loc) = location else {
        return Err(FieldError::new(
            format!("{prefix}location"),
            "must be an object with `lat` and `lon`",
        ));
    };
    for (key, limit) in [("lat", 90.0), ("lon", 180.0)] {
        let ok = loc
            .get(key)
            .and_then(Value::as_f64)
            .is_some_and(|v| v.abs() <= limit);
        if !ok {
            let reason = format!("must be a number between -{limit} and {limit}");
            return Err(FieldError::new(format!("{prefix}location.{key}"), reason));
        }
    }
    Ok(())
}

fn opt_str<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FieldError::new(key, "must be a string")),
    }
}

fn opt_name(map: &Map<String, Value>, key: &str) -> Result<Option<String>, FieldError> {
    match opt_str(map, key)? {
        Some(s) => {
            name::validate(s).map_err(|r| FieldError::new(key, r))?;
            Ok(Some(s.to_owned()))
        }
        None => Ok(None),
    }
}

fn opt_number(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<f64>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(FieldError::new(path, "is not a finite number")),
        },
        Some(_) => Err(FieldError::new(path, "must be a number")),
    }
}

fn opt_ts(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<Timestamp>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Timestamp::parse_rfc3339(s)
            .map(Some)
            .map_err(|e| FieldError::new(path, format!("is not a valid timestamp: {e}"))),
        Some(Value::Number(n)) => number_ts(n.as_f64().unwrap_or(f64::NAN))
            .map(Some)
            .ok_or_else(|| {
                FieldError::new(path, "is not a valid Unix time in seconds or milliseconds")
            }),
        Some(_) => Err(FieldError::new(
            path,
            "must be an RFC 3339 string or a Unix time number",
        )),
    }
}

/// Unix seconds below 10^11, Unix milliseconds above.
pub fn number_ts(n: f64) -> Option<Timestamp> {
    if !n.is_finite() {
        return None;
    }
    let micros = if n.abs() < 1e11 { n * 1e6 } else { n * 1e3 };
    let ts = Timestamp::from_micros(micros.round() as i64);
    (micros.abs() < 9.2e18 && ts.is_in_range()).then_some(ts)
}

/// A draft for a binary body (a camera picture). Its `data` records the media type and size;
/// the caller sets device, sensor, kind and ts from the request's metadata.
pub fn binary(content_type: &str, bytes: Bytes, limits: &Limits) -> Result<Draft, BodyError> {
    if bytes.len() > limits.max_binary_bytes {
        return Err(BodyError::BodyTooLarge {
            size: bytes.len(),
            max: limits.max_binary_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(BodyError::Empty);
    }
    let data = serde_json::json!({ "content_type": content_type, "size": bytes.len() });
    Ok(Draft {
        data: Some(JsonText::from_value(&data)),
        payload: Some(Payload {
            content_type: content_type.to_owned(),
            bytes,
        }),
        ..Draft::default()
    })
}

/// Sets one metadata field of a draft from text (an HTTP query parameter or a CoAP option):
/// `id`, `device`, `sensor`, `kind`, `ts` or `value`.
pub fn apply_meta(draft: &mut Draft, key: &str, text: &str) -> Result<(), FieldError> {
    let checked = |key: &str| -> Result<String, FieldError> {
        name::validate(text).map_err(|r| FieldError::new(key, r))?;
        Ok(text.to_owned())
    };
    match key {
        "id" => draft.id = Some(EventId::parse(text).map_err(|r| FieldError::new("id", r))?),
        "device" => draft.device = Some(checked("device")?),
        "sensor" => draft.sensor = Some(checked("sensor")?),
        "kind" => draft.kind = Some(checked("kind")?),
        "ts" => {
            let ts = match text.parse::<f64>() {
                Ok(n) => number_ts(n),
                Err(_) => Timestamp::parse_rfc3339(text).ok(),
            };
            draft.ts = Some(ts.ok_or_else(|| FieldError::new("ts", "is not a valid timestamp"))?);
        }
        "value" => match text.parse::<f64>() {
            Ok(v) if v.is_finite() => draft.value = Some(v),
            _ => return Err(FieldError::new("value", "is not a finite number")),
        },
        other => return Err(FieldError::new(other, "is not an event field")),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
