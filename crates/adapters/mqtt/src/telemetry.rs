//! Telemetry topics: a PUBLISH to `ingot/<device>/events[/<sensor>]` becomes events.
//!
//! The payload is read exactly as an HTTP body is, with `ingot-core`'s `format`
//! functions: one JSON object, a JSON array of objects, or NDJSON (tried when the payload
//! is not one JSON value but several lines). An MQTT 5 Content Type chooses like HTTP's
//! Content-Type: `application/json`, `application/x-ndjson` (and aliases), or a binary
//! type (`image/*`, `video/*`, `audio/*`, `application/octet-stream`) for a camera's
//! picture, whose metadata (`id`, `kind`, `ts`, `value`) may come as user properties.
//! MQTT 3.1.1 has no content type, so its payloads are JSON.
//!
//! The topic names the device, and the sensor if it has a fifth level: an event without
//! `device` gets the topic's, one without `sensor` the topic's sensor. An event naming a
//! different device than its topic is refused (0x87), like HTTP refuses a device token
//! writing as another device. Refusals carry the same messages the HTTP API gives.

use ingot_codec_mqtt::{Properties, ReasonCode};
use ingot_core::error::ErrorExt;
use ingot_core::format::{self, BodyError, BodyFormat};
use ingot_core::{Draft, ErrorKind, Limits, name};
use ingot_ingest::RefusalReason;

/// What a topic is for the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopicKind<'a> {
    /// `ingot/<device>/events[/<sensor>]`: ingested, then routed.
    Telemetry {
        device: &'a str,
        sensor: Option<&'a str>,
    },
    /// Anything else: routed only.
    Plain,
}

/// Why a publish was refused before or by ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The MQTT 5 reason code.
    pub code: ReasonCode,
    /// The reason string (the HTTP API's message for the same problem).
    pub message: String,
    /// The ingest metrics label.
    pub reason: RefusalReason,
}

impl Refusal {
    pub fn new(code: ReasonCode, reason: RefusalReason, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            reason,
        }
    }

    /// The refusal of an error of kind `kind` with `message`.
    pub fn of_kind(kind: ErrorKind, message: String) -> Refusal {
        let (code, reason) = match kind {
            ErrorKind::InvalidInput => (ReasonCode::PAYLOAD_FORMAT_INVALID, RefusalReason::invalid),
            ErrorKind::TooLarge => (ReasonCode::PAYLOAD_FORMAT_INVALID, RefusalReason::too_large),
            ErrorKind::UnsupportedMediaType => (
                ReasonCode::PAYLOAD_FORMAT_INVALID,
                RefusalReason::media_type,
            ),
            ErrorKind::PermissionDenied | ErrorKind::Unauthenticated => {
                (ReasonCode::NOT_AUTHORIZED, RefusalReason::forbidden)
            }
            ErrorKind::RateLimited => (
                ReasonCode::MESSAGE_RATE_TOO_HIGH,
                RefusalReason::rate_limited,
            ),
            _ => (ReasonCode::UNSPECIFIED_ERROR, RefusalReason::unavailable),
        };
        Refusal {
            code,
            message,
            reason,
        }
    }
}

/// Classifies a (valid) topic name; a malformed telemetry topic is a reason string for
/// 0x90 topic name invalid.
pub(crate) fn classify(topic: &str) -> Result<TopicKind<'_>, String> {
    let mut levels = topic.split('/');
    if levels.next() != Some("ingot") {
        return Ok(TopicKind::Plain);
    }
    let (Some(device), Some("events")) = (levels.next(), levels.next()) else {
        return Ok(TopicKind::Plain);
    };
    name::validate(device).map_err(|r| format!("the device name in the topic {r}"))?;
    let sensor = levels.next();
    if let Some(sensor) = sensor {
        name::validate(sensor).map_err(|r| format!("the sensor name in the topic {r}"))?;
    }
    if levels.next().is_some() {
        return Err(
            "telemetry topics are ingot/<device>/events or ingot/<device>/events/<sensor>".into(),
        );
    }
    Ok(TopicKind::Telemetry { device, sensor })
}

enum Body {
    Json(BodyFormat),
    Binary(String),
}

fn body_kind(properties: &Properties) -> Result<Body, String> {
    let Some(content_type) = &properties.content_type else {
        return Ok(Body::Json(BodyFormat::Json));
    };
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" | "text/json" => Ok(Body::Json(BodyFormat::Json)),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(Body::Json(BodyFormat::Ndjson)),
        "application/octet-stream" => Ok(Body::Binary(media)),
        m if m.starts_with("image/") || m.starts_with("video/") || m.starts_with("audio/") => {
            Ok(Body::Binary(media))
        }
        _ => Err(format!(
            "unsupported content type `{content_type}`: send application/json (one event or an array), \
             application/x-ndjson (one event per line), or a binary type (image/*, application/octet-stream)"
        )),
    }
}

/// The drafts of a telemetry publish, all or nothing.
pub(crate) fn drafts(
    payload: &bytes::Bytes,
    properties: &Properties,
    device: &str,
    sensor: Option<&str>,
    limits: &Limits,
) -> Result<Vec<Draft>, Refusal> {
    let body_error = |e: BodyError| Refusal::of_kind(e.kind(), e.to_string());
    let mut drafts = match body_kind(properties).map_err(|m| {
        Refusal::new(
            ReasonCode::PAYLOAD_FORMAT_INVALID,
            RefusalReason::media_type,
            m,
        )
    })? {
        Body::Json(body_format) => match format::parse_body(payload, body_format, limits) {
            Err(BodyError::Syntax { ref message, .. })
                if body_format == BodyFormat::Json && message.contains("trailing characters") =>
            {
                // Several JSON documents, one per line: NDJSON, as HTTP would take it when
                // told so.
                format::parse_body(payload, BodyFormat::Ndjson, limits).map_err(body_error)?
            }
            other => other.map_err(body_error)?,
        },
        Body::Binary(content_type) => {
            let mut draft =
                format::binary(&content_type, payload.clone(), limits).map_err(body_error)?;
            for (key, value) in &properties.user_properties {
                if matches!(key.as_str(), "id" | "kind" | "ts" | "value") {
                    format::apply_meta(&mut draft, key, value).map_err(|e| {
                        Refusal::new(
                            ReasonCode::PAYLOAD_FORMAT_INVALID,
                            RefusalReason::invalid,
                            format!("user property {e}"),
                        )
                    })?;
                }
            }
            vec![draft]
        }
    };
    for (index, draft) in drafts.iter_mut().enumerate() {
        match &draft.device {
            Some(named) if named != device => {
                return Err(Refusal::new(
                    ReasonCode::NOT_AUTHORIZED,
                    RefusalReason::forbidden,
                    format!(
                        "event {index} names device `{named}` but was published to the topic of device `{device}`"
                    ),
                ));
            }
            Some(_) => {}
            None => draft.device = Some(device.to_owned()),
        }
        if draft.sensor.is_none() {
            draft.sensor = sensor.map(str::to_owned);
        }
    }
    Ok(drafts)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn telemetry_topics_name_device_and_sensor() {
        assert_eq!(
            classify("ingot/probe-7/events"),
            Ok(TopicKind::Telemetry {
                device: "probe-7",
                sensor: None
            })
        );
        assert_eq!(
            classify("ingot/probe-7/events/t1"),
            Ok(TopicKind::Telemetry {
                device: "probe-7",
                sensor: Some("t1")
            })
        );
        assert_eq!(classify("ingot/probe-7/commands"), Ok(TopicKind::Plain));
        assert_eq!(classify("ingot/probe-7"), Ok(TopicKind::Plain));
        assert_eq!(classify("other/x/events"), Ok(TopicKind::Plain));
        assert!(classify("ingot/probe-7/events/a/b").is_err());
        assert!(classify("ingot/bad name/events").is_err());
        assert!(classify("ingot//events").is_err());
    }

    fn drafts_of(payload: &'static [u8], props: &Properties) -> Result<Vec<Draft>, Refusal> {
        drafts(
            &Bytes::from_static(payload),
            props,
            "probe-7",
            Some("t1"),
            &Limits::default(),
        )
    }

    #[test]
    fn json_array_and_ndjson_payloads_take_device_and_sensor_from_the_topic() {
        let none = Properties::default();
        let one = drafts_of(br#"{"kind":"temperature","value":15.0}"#, &none).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].device.as_deref(), Some("probe-7"));
        assert_eq!(one[0].sensor.as_deref(), Some("t1"));
        assert_eq!(one[0].value, Some(15.0));
        let many = drafts_of(br#"[{"value":1},{"value":2,"sensor":"own"}]"#, &none).unwrap();
        assert_eq!(many[1].sensor.as_deref(), Some("own"));
        let lines = drafts_of(b"{\"value\":1}\n{\"value\":2}\n", &none).unwrap();
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn invalid_payloads_are_refused_with_the_http_message() {
        let none = Properties::default();
        let e = drafts_of(br#"{"value": "hot"}"#, &none).unwrap_err();
        assert_eq!(e.code, ReasonCode::PAYLOAD_FORMAT_INVALID);
        assert!(
            e.message.contains("field `value` must be a number"),
            "{}",
            e.message
        );
        let e = drafts_of(b"{not json", &none).unwrap_err();
        assert!(
            e.message.starts_with("malformed JSON at line 1"),
            "{}",
            e.message
        );
        let e = drafts_of(br#"{"device":"other","value":1}"#, &none).unwrap_err();
        assert_eq!(e.code, ReasonCode::NOT_AUTHORIZED);
        let e = drafts_of(b"", &none).unwrap_err();
        assert_eq!(e.code, ReasonCode::PAYLOAD_FORMAT_INVALID);
    }

    #[test]
    fn a_v5_content_type_makes_a_binary_event_with_user_property_metadata() {
        let props = Properties {
            content_type: Some("image/jpeg".into()),
            user_properties: vec![
                ("kind".into(), "picture".into()),
                ("camera".into(), "ignored".into()),
            ],
            ..Properties::default()
        };
        let d = drafts_of(b"\xFF\xD8\xFF", &props).unwrap();
        assert_eq!(d[0].kind.as_deref(), Some("picture"));
        assert_eq!(d[0].payload.as_ref().unwrap().content_type, "image/jpeg");
        let props = Properties {
            content_type: Some("text/plain".into()),
            ..Properties::default()
        };
        let e = drafts_of(b"x", &props).unwrap_err();
        assert_eq!(e.reason, RefusalReason::media_type);
    }
}
