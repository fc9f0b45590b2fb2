use super::*;
use proptest::prelude::*;

fn limits() -> Limits {
    Limits::default()
}

fn one(json: &str) -> Result<Draft, BodyError> {
    let mut drafts = parse_body(json.as_bytes(), BodyFormat::Json, &limits())?;
    assert_eq!(drafts.len(), 1);
    Ok(drafts.remove(0))
}

fn field_error(json: &str) -> FieldError {
    match one(json) {
        Err(BodyError::Invalid { error, .. }) => error,
        other => panic!("expected a field error for {json}, got {other:?}"),
    }
}

#[test]
fn canonical_document() {
    let d = one(
        r#"{"id":"abc-1","device":"probe-7","sensor":"probe1","ts":"2018-06-01T14:08:24.771Z",
        "kind":"temperature","value":15.0,"data":{"unit":"C"}}"#,
    )
    .unwrap();
    assert_eq!(d.id.unwrap().as_str(), "abc-1");
    assert_eq!(d.device.as_deref(), Some("probe-7"));
    assert_eq!(d.sensor.as_deref(), Some("probe1"));
    assert_eq!(d.ts.unwrap().to_rfc3339(), "2018-06-01T14:08:24.771Z");
    assert_eq!(d.kind.as_deref(), Some("temperature"));
    assert_eq!(d.value, Some(15.0));
    assert_eq!(d.data.unwrap().as_str(), r#"{"unit":"C"}"#);
}

#[test]
fn collector_document_is_mapped_and_kept_whole() {
    let doc = r#"{"namespace": "default", "sender": "demoMemoria", "origin": "probe1",
        "payload": {"type": "temperature", "value": 15}, "timestamp": "2018-06-01T14:08:24.771Z"}"#;
    let d = one(doc).unwrap();
    assert_eq!(d.device.as_deref(), Some("demoMemoria"));
    assert_eq!(d.sensor.as_deref(), Some("probe1"));
    assert_eq!(d.kind.as_deref(), Some("temperature"));
    assert_eq!(d.value, Some(15.0));
    assert_eq!(d.ts.unwrap().as_millis(), 1_527_862_104_771);
    let data = d.data.unwrap().to_value();
    assert_eq!(data["origin"], "probe1");
    assert_eq!(data["payload"]["value"], 15);
    assert_eq!(data["namespace"], "default");
}

#[test]
fn vehicle_document_is_flat() {
    let doc = r#"{"timestamp": "2018-06-01T14:08:24.771Z", "vin": "BSTZ9IEK39HHYZB6I",
        "vehicle_speed": 118.4, "location": {"lat": 38.95618, "lon": -77.39835}, "fuel_level": 76.8}"#;
    let d = one(doc).unwrap();
    assert_eq!(d.device.as_deref(), Some("BSTZ9IEK39HHYZB6I"));
    assert_eq!(d.kind, None);
    assert_eq!(d.value, None);
    let data = d.data.unwrap();
    assert!(
        data.as_str()
            .starts_with(r#"{"timestamp":"2018-06-01T14:08:24.771Z","vin":"#)
    );
    assert_eq!(data.to_value()["vehicle_speed"], 118.4);
    assert_eq!(data.to_value()["location"]["lon"], -77.39835);
}

#[test]
fn flat_document_without_device_leaves_it_to_the_credentials() {
    let d = one(r#"{"temperature": 21.5, "time": 1527862104}"#).unwrap();
    assert_eq!(d.device, None);
    assert_eq!(d.ts.unwrap().as_millis(), 1_527_862_104_000);
    let d = one(r#"{"temperature": 21.5, "time": 1527862104771}"#).unwrap();
    assert_eq!(d.ts.unwrap().as_millis(), 1_527_862_104_771);
}

#[test]
fn field_errors_name_the_path() {
    let cases = [
        (
            r#"{"device":"p","value":"hot"}"#,
            "value",
            "must be a number",
        ),
        (r#"{"device":7}"#, "device", "must be a string"),
        (r#"{"device":"a/b"}"#, "device", "may only contain"),
        (
            r#"{"device":"p","ts":"yesterday"}"#,
            "ts",
            "not a valid timestamp",
        ),
        (
            r#"{"device":"p","id":"no spaces"}"#,
            "id",
            "may only contain",
        ),
        (
            r#"{"sender":"s","payload":{"type":"t","value":"x"}}"#,
            "payload.value",
            "must be a number",
        ),
        (
            r#"{"sender":"s","payload":3}"#,
            "payload",
            "must be an object",
        ),
        (
            r#"{"vin":"V1","location":{"lat":91,"lon":0}}"#,
            "location.lat",
            "between -90 and 90",
        ),
        (
            r#"{"vin":"V1","location":{"lat":1}}"#,
            "location.lon",
            "between -180 and 180",
        ),
        (
            r#"{"device":"p","data":{"location":"here"}}"#,
            "data.location",
            "must be an object",
        ),
    ];
    for (doc, path, reason) in cases {
        let e = field_error(doc);
        assert_eq!(e.path, path, "{doc}: {e}");
        assert!(e.reason.contains(reason), "{doc}: {e}");
    }
    let e = field_error("[1]");
    assert_eq!(e.path, "");
    assert_eq!(e.to_string(), "the event must be a JSON object");
}

#[test]
fn batch_errors_name_index_and_line() {
    let body = "[\n {\"device\":\"a\",\"value\":1},\n {\"device\":\"b\",\"value\":true}\n]";
    match parse_body(body.as_bytes(), BodyFormat::Json, &limits()) {
        Err(BodyError::Invalid {
            index: 1,
            line: 3,
            error,
        }) => assert_eq!(error.path, "value"),
        other => panic!("{other:?}"),
    }
    let ndjson = "{\"device\":\"a\"}\n\n{\"device\":\"b\",\"kind\":5}\n";
    match parse_body(ndjson.as_bytes(), BodyFormat::Ndjson, &limits()) {
        Err(BodyError::Invalid {
            index: 1,
            line: 3,
            error,
        }) => assert_eq!(error.path, "kind"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn syntax_errors_give_line_and_column() {
    match parse_body(
        b"[{\"device\":\"a\"},\n {\"device\" \"b\"}]",
        BodyFormat::Json,
        &limits(),
    ) {
        Err(BodyError::Syntax {
            line: 2,
            column,
            message,
        }) => {
            assert_eq!(column, 12);
            assert!(message.contains("expected `:`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    match parse_body(
        b"{\"device\":\"a\"}\n{\"device\":",
        BodyFormat::Ndjson,
        &limits(),
    ) {
        Err(BodyError::Syntax { line: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    match parse_body(b"{\"device\":\"\xff\"}", BodyFormat::Json, &limits()) {
        Err(BodyError::Syntax {
            line: 1,
            column: 12,
            message,
        }) => assert_eq!(message, "invalid UTF-8"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn limits_are_enforced() {
    let small = Limits {
        max_body_bytes: 100,
        max_event_bytes: 30,
        max_batch_events: 2,
        ..limits()
    };
    let big_body = vec![b' '; 101];
    assert!(matches!(
        parse_body(&big_body, BodyFormat::Json, &small),
        Err(BodyError::BodyTooLarge {
            size: 101,
            max: 100
        })
    ));
    assert!(matches!(
        parse_body(b"[{},{},{}]", BodyFormat::Json, &small),
        Err(BodyError::TooManyEvents { max: 2 })
    ));
    assert!(matches!(
        parse_body(b"{}\n{}\n{}\n", BodyFormat::Ndjson, &small),
        Err(BodyError::TooManyEvents { max: 2 })
    ));
    let long = br#"{"device":"a","data":"0123456789012345"}"#;
    assert!(matches!(
        parse_body(long, BodyFormat::Json, &small),
        Err(BodyError::EventTooLarge {
            index: 0,
            line: 1,
            ..
        })
    ));
    assert_eq!(
        parse_body(b"[]", BodyFormat::Json, &limits()),
        Err(BodyError::Empty)
    );
    assert_eq!(
        parse_body(b"\n \n", BodyFormat::Ndjson, &limits()),
        Err(BodyError::Empty)
    );
}

#[test]
fn binary_drafts_describe_their_payload() {
    let d = binary(
        "image/jpeg",
        Bytes::from_static(b"\xff\xd8\xff\xe0"),
        &limits(),
    )
    .unwrap();
    assert_eq!(
        d.data.unwrap().as_str(),
        r#"{"content_type":"image/jpeg","size":4}"#
    );
    assert_eq!(d.payload.unwrap().bytes.len(), 4);
    let mut d = Draft::default();
    apply_meta(&mut d, "device", "cam-1").unwrap();
    apply_meta(&mut d, "ts", "2018-06-01T14:08:24.771Z").unwrap();
    apply_meta(&mut d, "value", "3.5").unwrap();
    assert_eq!(
        apply_meta(&mut d, "colour", "red").unwrap_err().path,
        "colour"
    );
    assert_eq!(
        apply_meta(&mut d, "value", "NaN").unwrap_err().path,
        "value"
    );
    assert_eq!(d.device.as_deref(), Some("cam-1"));
    assert_eq!(d.value, Some(3.5));
}

proptest! {
    #[test]
    fn any_body_gives_drafts_or_an_error(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_body(&body, BodyFormat::Json, &limits());
        let _ = parse_body(&body, BodyFormat::Ndjson, &limits());
    }

    #[test]
    fn json_like_bodies_never_panic(body in r#"[\[\]{}",:0-9a-z .\-\n]{0,80}"#) {
        let _ = parse_body(body.as_bytes(), BodyFormat::Json, &limits());
        let _ = parse_body(body.as_bytes(), BodyFormat::Ndjson, &limits());
    }

    #[test]
    fn canonical_round_trips(device in "[a-z0-9-]{1,20}", value in -1e9f64..1e9, ms in 0i64..4_000_000_000_000) {
        let ts = Timestamp::from_millis(ms);
        let doc = serde_json::json!({"device": device, "value": value, "ts": ts.to_rfc3339()});
        let d = one(&doc.to_string()).unwrap();
        prop_assert_eq!(d.device.as_deref(), Some(device.as_str()));
        prop_assert_eq!(d.value, Some(value));
        prop_assert_eq!(d.ts, Some(ts));
    }
}
