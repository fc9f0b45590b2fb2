//! Each scenario's payload shape, and that the server's own parser accepts it.

use ingot_core::format::{self, BodyFormat, DocumentFormat};
use ingot_core::{Limits, Timestamp};
use serde_json::Value;

use super::*;

fn messages(config: &ScenarioConfig, devices: usize, per_device: usize) -> Vec<(String, Message)> {
    let mut out = Vec::new();
    let t0 = Timestamp::parse_rfc3339("2026-06-01T14:08:24.771Z").unwrap();
    for index in 0..devices {
        let mut device = config.device(index, devices);
        assert_eq!(device.name(), config.device_name(index, devices));
        for n in 0..per_device {
            let mut message = Message::default();
            let now = t0.saturating_add_micros(n as i64 * 2_000_000);
            device.next(now, &mut message);
            out.push((device.name().to_owned(), message));
        }
    }
    out
}

fn json(message: &Message) -> Value {
    assert!(message.binary.is_none());
    serde_json::from_slice(&message.body).unwrap()
}

/// Parses with the server's parser and returns the one draft.
fn accepted(message: &Message) -> ingot_core::Draft {
    let drafts = format::parse_body(&message.body, BodyFormat::Json, &Limits::default())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&message.body)));
    assert_eq!(drafts.len(), 1);
    drafts.into_iter().next().unwrap()
}

fn doc_format(message: &Message) -> DocumentFormat {
    match json(message) {
        Value::Object(map) => format::classify(&map),
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn probe_sends_the_collector_format_growing_by_the_factor() {
    let mut config = ScenarioConfig::new(ScenarioKind::Probe);
    config.probe.sender = "demoMemoria".into();
    config.probe.origin = "probe1".into();
    config.probe.start = 15.0;
    config.probe.factor = 1.1;
    let sent = messages(&config, 1, 4);
    let values: Vec<String> = sent
        .iter()
        .map(|(_, m)| json(m)["payload"]["value"].to_string())
        .collect();
    assert_eq!(values, ["15", "16.5", "18.15", "19.965"]);
    let (_, first) = &sent[0];
    let doc = json(first);
    assert_eq!(doc["namespace"], "default");
    assert_eq!(doc["sender"], "demoMemoria");
    assert_eq!(doc["origin"], "probe1");
    assert_eq!(doc["payload"]["type"], "temperature");
    assert_eq!(doc["timestamp"], "2026-06-01T14:08:24.771Z");
    assert_eq!(doc_format(first), DocumentFormat::Collector);
    let draft = accepted(first);
    assert_eq!(draft.device.as_deref(), Some("demoMemoria"));
    assert_eq!(draft.sensor.as_deref(), Some("probe1"));
    assert_eq!(draft.kind.as_deref(), Some("temperature"));
    assert_eq!(draft.value, Some(15.0));
    // Several probes get distinct names.
    assert_eq!(config.device_name(0, 3), "demoMemoria");
    assert_eq!(config.device_name(2, 3), "demoMemoria-3");
}

#[test]
fn weather_stations_rotate_measures_with_daily_cycles() {
    let mut config = ScenarioConfig::new(ScenarioKind::Weather);
    config.weather.cities = WeatherOptions::parse_cities("seville,london,sydney,new-york").unwrap();
    assert_eq!(config.default_devices(), 4);
    let sent = messages(&config, 4, 3);
    let mut kinds = std::collections::BTreeSet::new();
    for (name, message) in &sent {
        assert_eq!(doc_format(message), DocumentFormat::Canonical);
        let draft = accepted(message);
        assert_eq!(draft.device.as_deref(), Some(name.as_str()));
        assert_eq!(draft.sensor.as_deref(), Some("station"));
        let kind = draft.kind.clone().unwrap();
        let value = draft.value.unwrap();
        match kind.as_str() {
            "temperature" => assert!((-30.0..50.0).contains(&value), "{value}"),
            "humidity" => assert!((3.0..=100.0).contains(&value), "{value}"),
            "pressure" => assert!((960.0..=1050.0).contains(&value), "{value}"),
            other => panic!("unexpected kind {other}"),
        }
        kinds.insert(kind);
        let doc = json(message);
        assert!(doc["data"]["location"]["lat"].is_number());
        assert!(doc["data"]["city"].is_string());
    }
    assert_eq!(kinds.len(), 3);
    assert_eq!(sent[0].0, "weather-seville");
    assert!(WeatherOptions::parse_cities("atlantis").is_err());
    // Afternoon is warmer than dawn in Seville (same day, no noise in the climate).
    let station = weather::Station::new(&config.weather, "weather-seville".into(), 0, 1);
    let day = Timestamp::parse_rfc3339("2026-07-01T00:00:00Z").unwrap();
    let at =
        |hour: i64| station_temperature(&station, day.saturating_add_micros(hour * 3_600_000_000));
    assert!(at(15) > at(5) + 8.0, "{} vs {}", at(15), at(5));
}

fn station_temperature(station: &weather::Station, at: Timestamp) -> f64 {
    station.climate(at).0
}

#[test]
fn vehicles_send_the_flat_document_with_location() {
    let config = ScenarioConfig::new(ScenarioKind::Vehicles);
    let sent = messages(&config, 5, 30);
    for (vin, message) in &sent {
        assert_eq!(doc_format(message), DocumentFormat::Flat);
        let draft = accepted(message);
        assert_eq!(draft.device.as_deref(), Some(vin.as_str()));
        assert!(draft.ts.is_some());
        let doc = json(message);
        for field in [
            "vehicle_speed",
            "engine_speed",
            "fuel_level",
            "fuel_consumption",
            "odometer",
            "gear",
            "heading",
        ] {
            assert!(doc[field].is_number(), "{field} in {doc}");
        }
        assert!(doc["brake"].is_boolean());
        let (lat, lon) = (
            doc["location"]["lat"].as_f64().unwrap(),
            doc["location"]["lon"].as_f64().unwrap(),
        );
        // Within the radius (8 km, plus a block) of the centre.
        assert!((lat - 38.95618).abs() < 0.09, "{lat}");
        assert!((lon + 77.39835).abs() < 0.12, "{lon}");
    }
    // Cars move between reports.
    let first = json(&sent[0].1);
    let last = json(&sent[29].1);
    assert_ne!(first["location"], last["location"]);
    assert!(last["odometer"].as_f64() > first["odometer"].as_f64());
}

#[test]
fn cameras_send_valid_jpegs_of_a_realistic_size_with_metadata() {
    for (resolution, (w, h)) in [
        (Resolution::Small, (320, 188)),
        (Resolution::Vga, (640, 480)),
        (Resolution::Hd, (1280, 720)),
    ] {
        let mut config = ScenarioConfig::new(ScenarioKind::Camera);
        config.camera.resolution = resolution;
        let sent = messages(&config, 1, 2);
        let (name, message) = &sent[0];
        assert_eq!(name, "cam-01");
        assert_eq!(message.binary, Some("image/jpeg"));
        let typical = resolution.typical_bytes() as f64;
        let size = message.body.len() as f64;
        assert!(size > typical * 0.8 && size < typical * 1.2, "{size}");
        let mut decoder = jpeg_decoder::Decoder::new(message.body.as_slice());
        let pixels = decoder.decode().expect("a valid JPEG");
        let info = decoder.info().unwrap();
        assert_eq!((info.width, info.height), (w, h));
        assert_eq!(pixels.len(), usize::from(w) * usize::from(h));
        let meta: std::collections::BTreeMap<&str, &str> =
            message.meta.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(meta["device"], "cam-01");
        assert_eq!(meta["sensor"], "front");
        assert_eq!(meta["kind"], "motion");
        assert_eq!(meta["ts"], "2026-06-01T14:08:24.771Z");
        let comment = String::from_utf8_lossy(&message.body[..200]).into_owned();
        assert!(
            comment.contains("cam-01 2026-06-01T14:08:24.771Z"),
            "{comment}"
        );
        // The server's binary path accepts it, and the metadata applies.
        let mut draft = format::binary(
            "image/jpeg",
            bytes::Bytes::from(message.body.clone()),
            &Limits::default(),
        )
        .unwrap();
        for (key, value) in &message.meta {
            format::apply_meta(&mut draft, key, value).unwrap();
        }
        assert_eq!(draft.kind.as_deref(), Some("motion"));
        // Consecutive pictures differ (the object moves).
        assert_ne!(sent[0].1.body, sent[1].1.body);
    }
}

#[test]
fn flat_events_have_the_exact_size_and_change_every_time() {
    let mut config = ScenarioConfig::new(ScenarioKind::Flat);
    let sent = messages(&config, 3, 3);
    for (name, message) in &sent {
        assert_eq!(
            message.body.len(),
            100,
            "{}",
            String::from_utf8_lossy(&message.body)
        );
        assert_eq!(doc_format(message), DocumentFormat::Canonical);
        let draft = accepted(message);
        assert_eq!(draft.device.as_deref(), Some(name.as_str()));
        assert_eq!(draft.kind.as_deref(), Some("load"));
    }
    assert_ne!(sent[0].1.body, sent[1].1.body);
    config.flat.size = 1000;
    let sent = messages(&config, 1, 1);
    assert_eq!(sent[0].1.body.len(), 1000);
    accepted(&sent[0].1);
    config.flat.size = 10;
    assert!(config.validate().is_err());
    // The smallest size still fits the template.
    config.flat.size = 86;
    config.validate().unwrap();
    let sent = messages(&config, 1, 1);
    assert_eq!(sent[0].1.body.len(), 86);
}

#[test]
fn every_default_scenario_validates_and_names_valid_devices() {
    for kind in [
        ScenarioKind::Probe,
        ScenarioKind::Weather,
        ScenarioKind::Vehicles,
        ScenarioKind::Camera,
        ScenarioKind::Flat,
    ] {
        let config = ScenarioConfig::new(kind);
        config.validate().unwrap();
        for i in 0..50 {
            ingot_core::name::validate(&config.device_name(i, 50)).unwrap();
        }
        let names: std::collections::HashSet<String> =
            (0..50).map(|i| config.device_name(i, 50)).collect();
        assert_eq!(names.len(), 50, "{kind:?} repeats names");
    }
}
