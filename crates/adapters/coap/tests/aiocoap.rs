//! The endpoint against aiocoap (PyPI), through `tests/clients/aiocoap_client.py`. Without
//! Python 3 and aiocoap these tests skip with a note, except in CI (`CI=true`), where they
//! fail.

mod support;

use std::path::Path;
use std::time::Duration;

use ingot_adapter_coap::CoapConfig;
use ingot_core::EventId;
use ingot_store::{EventStore, Role};
use serde_json::Value;
use support::{Server, aiocoap_python, aiocoap_script, fake_jpeg, run};

/// Runs the helper script and parses the JSON it prints.
async fn aiocoap(python: &Path, args: &[&str]) -> Value {
    let mut full = vec![aiocoap_script().display().to_string()];
    full.extend(args.iter().map(|a| (*a).to_owned()));
    let result = run(python, &full, Duration::from_secs(30))
        .await
        .expect("the aiocoap client runs");
    assert!(result.success, "aiocoap client failed: {result:?}");
    serde_json::from_str(result.stdout.trim())
        .unwrap_or_else(|e| panic!("aiocoap client printed no JSON ({e}): {result:?}"))
}

fn payload_json(answer: &Value) -> Value {
    serde_json::from_str(answer["payload"].as_str().expect("payload")).expect("a JSON payload")
}

#[tokio::test]
async fn con_non_and_cbor_posts_are_created() {
    let Some(python) = aiocoap_python() else {
        return;
    };
    let server = Server::start().await;
    let token = server.device("probe-a").await;
    let uri = server.uri(&format!("events?token={token}"));

    let con = aiocoap(
        &python,
        &[
            "request",
            "POST",
            &uri,
            "--payload",
            r#"{"kind":"temperature","value":15}"#,
            "--content-format",
            "50",
        ],
    )
    .await;
    assert_eq!(
        (con["code"].as_str(), con["mtype"].as_str()),
        (Some("2.01"), Some("ACK")),
        "{con}"
    );
    assert_eq!(payload_json(&con)["ids"].as_array().map(Vec::len), Some(1));

    let non = aiocoap(
        &python,
        &[
            "request",
            "POST",
            &uri,
            "--payload",
            r#"{"value":16}"#,
            "--content-format",
            "50",
            "--non",
        ],
    )
    .await;
    assert_eq!(
        (non["code"].as_str(), non["mtype"].as_str()),
        (Some("2.01"), Some("NON")),
        "{non}"
    );

    // CBOR: the collector format, as a map.
    let cbor = ciborium::Value::Map(vec![
        (text("sender"), text("probe-a")),
        (text("origin"), text("probe1")),
        (
            text("payload"),
            ciborium::Value::Map(vec![
                (text("type"), text("temperature")),
                (text("value"), ciborium::Value::Float(17.5)),
            ]),
        ),
    ]);
    let file = server.dir.path().join("event.cbor");
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&cbor, &mut bytes).unwrap();
    std::fs::write(&file, bytes).unwrap();
    let answer = aiocoap(
        &python,
        &[
            "request",
            "POST",
            &uri,
            "--payload-file",
            file.to_str().unwrap(),
            "--content-format",
            "60",
        ],
    )
    .await;
    assert_eq!(answer["code"], "2.01", "{answer}");

    let events = server.wait_for_events("probe-a", 3).await;
    let mut values: Vec<f64> = events.iter().filter_map(|e| e.value).collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [15.0, 16.0, 17.5]);
    let collector = events.iter().find(|e| e.value == Some(17.5)).unwrap();
    assert_eq!(collector.sensor.as_deref(), Some("probe1"));
    assert_eq!(collector.kind.as_deref(), Some("temperature"));
}

fn text(s: &str) -> ciborium::Value {
    ciborium::Value::Text(s.to_owned())
}

#[tokio::test]
async fn a_300_kb_picture_uploads_in_block1_blocks() {
    let Some(python) = aiocoap_python() else {
        return;
    };
    let server = Server::start().await;
    let writer = server.key(Role::Writer).await;
    let picture = fake_jpeg(300 * 1000);
    let file = server.dir.path().join("cam.jpg");
    std::fs::write(&file, &picture).unwrap();
    let uri = server.uri(&format!(
        "events?token={writer}&device=cam-7&kind=motion&ts=2018-06-01T14:08:24.771Z"
    ));
    let answer = aiocoap(
        &python,
        &[
            "request",
            "POST",
            &uri,
            "--payload-file",
            file.to_str().unwrap(),
            "--content-format",
            "22",
        ],
    )
    .await;
    assert_eq!(answer["code"], "2.01", "{answer}");
    // aiocoap reassembles and hides the Block1 exchange; the server counted it.
    assert!(
        server.metrics.responses("2.31") >= 292,
        "one 2.31 per full 1 KiB block"
    );
    let id = payload_json(&answer)["ids"][0].as_str().unwrap().to_owned();
    server.wait_for_events("cam-7", 1).await;
    let stored = server
        .store
        .get_event(server.tenant, &EventId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.ts.to_rfc3339(), "2018-06-01T14:08:24.771Z");
    assert_eq!(&stored.payload.unwrap().bytes[..], &picture[..]);
}

#[tokio::test]
async fn a_large_listing_arrives_in_block2_blocks() {
    let Some(python) = aiocoap_python() else {
        return;
    };
    let server = Server::start().await;
    let token = server.device("probe-b").await;
    let batch: Vec<Value> = (0..30)
        .map(|i| serde_json::json!({"kind": "co2", "value": 400 + i, "data": {"room": "lab", "i": i}}))
        .collect();
    let answer = aiocoap(
        &python,
        &[
            "request",
            "POST",
            &server.uri(&format!("events?token={token}")),
            "--payload",
            &serde_json::to_string(&batch).unwrap(),
            "--content-format",
            "50",
        ],
    )
    .await;
    assert_eq!(answer["code"], "2.01", "{answer}");
    server.wait_for_events("probe-b", 30).await;

    // A device token lists its own events.
    let listing = aiocoap(
        &python,
        &[
            "request",
            "GET",
            &server.uri(&format!("events?token={token}&limit=30")),
        ],
    )
    .await;
    assert_eq!(listing["code"], "2.05", "{listing}");
    assert!(
        listing["payload_len"].as_u64().unwrap() > 1024,
        "more than one block: {listing}"
    );
    let events = payload_json(&listing)["events"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(events.len(), 30);
    assert!(
        events
            .iter()
            .all(|e| e["device"] == "probe-b" && e["data"]["room"] == "lab")
    );
}

#[tokio::test]
async fn an_observer_is_notified_of_each_new_event() {
    let Some(python) = aiocoap_python() else {
        return;
    };
    let server = Server::start().await;
    let token = server.device("probe-c").await;
    let reader = server.key(Role::Reader).await;
    let answer = aiocoap(
        &python,
        &[
            "observe",
            &server.uri(&format!("events/latest?token={reader}&device=probe-c")),
            "--post-uri",
            &server.uri(&format!("events?token={token}")),
            "--count",
            "3",
        ],
    )
    .await;
    assert_eq!(answer["code"], "2.05", "{answer}");
    assert_eq!(answer["observe"], true, "registered: {answer}");
    assert_eq!(answer["first"], "null", "no event yet");
    let notes: Vec<Value> = answer["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| serde_json::from_str(n.as_str().unwrap()).unwrap())
        .collect();
    let values: Vec<f64> = notes.iter().filter_map(|n| n["value"].as_f64()).collect();
    assert_eq!(values, [20.0, 21.0, 22.0], "{answer}");
}

#[tokio::test]
async fn confirmable_notifications_are_acknowledged_and_a_vanished_observer_is_dropped() {
    let Some(python) = aiocoap_python() else {
        return;
    };
    // Every notification confirmable, and a quick give-up on an observer that stops
    // acknowledging.
    let config = CoapConfig {
        observe_con_interval: Duration::from_millis(1),
        ack_timeout: Duration::from_millis(200),
        max_retransmit: 2,
        ..CoapConfig::default()
    };
    let server = Server::start_with(config, false).await;
    let token = server.device("probe-e").await;
    let answer = aiocoap(
        &python,
        &[
            "observe",
            &server.uri(&format!("events/latest?token={token}")),
            "--post-uri",
            &server.uri(&format!("events?token={token}")),
            "--count",
            "2",
        ],
    )
    .await;
    assert_eq!(
        answer["notifications"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );
    // aiocoap acknowledged the confirmable notifications and has exited; the server still
    // has the registration (nothing told it otherwise).
    assert_eq!(server.metrics.observers(), 1);
    let created = support::post_json(&server, &token, r#"{"value":99}"#).await;
    assert_eq!(support::code(&created), "2.01");
    // Its notification is never acknowledged: after the retransmissions the observer goes.
    server
        .wait_until("the vanished observer is dropped", |s| {
            s.metrics.observers() == 0
        })
        .await;
    let retransmissions =
        support::metric(&server.metrics_text(), "ingot_coap_retransmissions_total");
    assert!(
        retransmissions >= 2.0,
        "the last notification was retransmitted twice"
    );
}

#[tokio::test]
async fn errors_carry_their_codes_and_diagnostics() {
    let Some(python) = aiocoap_python() else {
        return;
    };
    let server = Server::start().await;
    let token = server.device("probe-d").await;
    let reader = server.key(Role::Reader).await;
    let events = server.uri("events");
    let with_token = server.uri(&format!("events?token={token}"));
    let as_reader = server.uri(&format!("events?token={reader}"));
    let oldest = server.uri("events/oldest");
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["POST", &events, "--payload", "{}", "--content-format", "50"],
            "4.01",
            "missing credentials",
        ),
        (vec!["GET", &events], "4.01", "missing credentials"),
        (
            vec![
                "POST",
                &with_token,
                "--payload",
                "{\"value\": [",
                "--content-format",
                "50",
            ],
            "4.00",
            "malformed JSON at line 1",
        ),
        (
            vec![
                "POST",
                &as_reader,
                "--payload",
                "{\"device\":\"x\"}",
                "--content-format",
                "50",
            ],
            "4.03",
            "a reader key may not ingest",
        ),
        (vec!["GET", &oldest], "4.04", "no resource"),
        (vec!["DELETE", &with_token], "4.05", "DELETE is not allowed"),
        (
            vec!["GET", &as_reader, "--accept", "60"],
            "4.06",
            "Accept 60",
        ),
        (
            vec![
                "POST",
                &with_token,
                "--payload",
                "x",
                "--content-format",
                "0",
            ],
            "4.15",
            "Content-Format 0",
        ),
    ];
    for (args, expected, diagnostic) in cases {
        let mut full = vec!["request"];
        full.extend(args.iter().copied());
        let answer = aiocoap(&python, &full).await;
        assert_eq!(
            answer["code"].as_str(),
            Some(expected),
            "{args:?}: {answer}"
        );
        let text = answer["payload"].as_str().unwrap_or_default();
        assert!(
            text.contains(diagnostic),
            "{args:?} should say {diagnostic:?}: {answer}"
        );
    }
}
