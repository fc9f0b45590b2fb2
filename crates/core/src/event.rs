//! The canonical event, and the draft a device document becomes before ingest completes it.

use std::fmt;

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::id::EventId;
use crate::time::Timestamp;

/// A tenant's numeric id. Tenants are named in the API; the number is what storage keys on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(pub u32);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Valid, compact JSON text (any JSON value).
///
/// Kept as text rather than a parsed tree: the store writes it as is and the API embeds it
/// as is, so most events are never parsed twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(Box<str>);

impl JsonText {
    /// Serializes a JSON value.
    pub fn from_value(value: &serde_json::Value) -> JsonText {
        JsonText(value.to_string().into_boxed_str())
    }

    /// Checks that `text` is one JSON value and keeps it, compacted.
    pub fn parse(text: &str) -> Result<JsonText, serde_json::Error> {
        let value: &serde_json::value::RawValue = serde_json::from_str(text)?;
        Ok(JsonText(compact(value.get()).into_boxed_str()))
    }

    /// Wraps text already known to be valid, compact JSON (for example, read back from a
    /// store that only ever receives [`JsonText`]).
    pub fn from_trusted(text: impl Into<Box<str>>) -> JsonText {
        JsonText(text.into())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the text into a value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

/// Removes insignificant whitespace from valid JSON text.
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

/// A binary payload (a camera picture) carried by an event, with its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The media type the device declared, e.g. `image/jpeg`.
    pub content_type: String,
    /// The bytes as received.
    pub bytes: Bytes,
}

/// A stored event: what the log carries and the store keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Time-ordered generated id, or the client's own.
    pub id: EventId,
    /// The tenant of the credentials that sent it; never taken from the body.
    pub tenant: TenantId,
    /// The device that sent it.
    pub device: String,
    /// The sensor of the device, if it has several.
    pub sensor: Option<String>,
    /// When it was measured (the device's clock), or when it arrived if the device sent none.
    pub ts: Timestamp,
    /// When ingest accepted it.
    pub received: Timestamp,
    /// What was measured (`temperature`): with `value`, the fast path for charts.
    pub kind: Option<String>,
    /// The measured number.
    pub value: Option<f64>,
    /// Any JSON: the canonical `data`, or a whole non-canonical document.
    pub data: Option<JsonText>,
    /// A binary payload, if the event is one.
    pub payload: Option<Payload>,
}

impl Serialize for Event {
    /// The public JSON form: `id, device, sensor, ts, kind, value, data`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(7))?;
        map.serialize_entry("id", self.id.as_str())?;
        map.serialize_entry("device", &self.device)?;
        map.serialize_entry("sensor", &self.sensor)?;
        map.serialize_entry("ts", &self.ts.to_rfc3339())?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("value", &self.value)?;
        match &self.data {
            Some(data) => {
                let raw = serde_json::value::RawValue::from_string(data.as_str().to_owned())
                    .map_err(serde::ser::Error::custom)?;
                map.serialize_entry("data", &raw)?;
            }
            None => map.serialize_entry("data", &())?,
        }
        map.end()
    }
}

/// An event as parsed from a device document, before ingest assigns what it owns: the
/// tenant, the id (unless the client chose one), the device (when the credentials name it)
/// and the arrival time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Draft {
    /// A client-chosen id, for idempotent retries.
    pub id: Option<EventId>,
    /// The device the document names, if it names one.
    pub device: Option<String>,
    /// The sensor.
    pub sensor: Option<String>,
    /// The measurement time the document gives.
    pub ts: Option<Timestamp>,
    /// What was measured.
    pub kind: Option<String>,
    /// The measured number.
    pub value: Option<f64>,
    /// The JSON kept with the event.
    pub data: Option<JsonText>,
    /// A binary payload.
    pub payload: Option<Payload>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_strings_intact() {
        let text = "{ \"a\" : [1, 2 ],\n \"b\": \"x y \\\" z\" }";
        assert_eq!(compact(text), r#"{"a":[1,2],"b":"x y \" z"}"#);
        assert_eq!(
            JsonText::parse(text).unwrap().as_str(),
            r#"{"a":[1,2],"b":"x y \" z"}"#
        );
    }

    #[test]
    fn event_serializes_in_the_public_shape() {
        let event = Event {
            id: EventId::parse("e1").unwrap(),
            tenant: TenantId(1),
            device: "probe-7".into(),
            sensor: Some("probe1".into()),
            ts: Timestamp::parse_rfc3339("2018-06-01T14:08:24.771Z").unwrap(),
            received: Timestamp::EPOCH,
            kind: Some("temperature".into()),
            value: Some(15.0),
            data: Some(JsonText::parse(r#"{"x": 1}"#).unwrap()),
            payload: None,
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"id":"e1","device":"probe-7","sensor":"probe1","ts":"2018-06-01T14:08:24.771Z","kind":"temperature","value":15.0,"data":{"x":1}}"#
        );
    }
}
