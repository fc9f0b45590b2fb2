//! Every request body devices send goes through `parse_body` (HTTP, CoAP JSON, MQTT
//! payloads): whatever the bytes, it gives drafts or a positioned error, never a panic, and
//! what it accepts is valid. Timestamps and query-string metadata are fuzzed on the way.
#![no_main]

use ingot_core::format::{self, BodyFormat};
use ingot_core::{Draft, Limits, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_batch_events: 64, ..Limits::default() };
    for body_format in [BodyFormat::Json, BodyFormat::Ndjson] {
        match format::parse_body(data, body_format, &limits) {
            Ok(drafts) => {
                assert!(!drafts.is_empty() && drafts.len() <= 64);
                for Draft { data, value, ts, .. } in drafts {
                    if let Some(data) = data {
                        // Kept documents are valid JSON.
                        assert!(serde_json_valid(data.as_str()), "invalid kept JSON {:?}", data.as_str());
                    }
                    assert!(value.is_none_or(f64::is_finite));
                    assert!(ts.is_none_or(Timestamp::is_in_range));
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(ts) = Timestamp::parse_rfc3339(text) {
            assert_eq!(Timestamp::parse_rfc3339(&ts.to_rfc3339()), Ok(ts));
        }
        if let Some((key, value)) = text.split_once('=') {
            let _ = format::apply_meta(&mut Draft::default(), key, value);
        }
    }
});

fn serde_json_valid(text: &str) -> bool {
    ingot_core::JsonText::parse(text).is_ok()
}
