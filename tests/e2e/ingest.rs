//! HTTP ingest of every format, read back through the listing.

use serde_json::{Value, json};

use crate::support::Server;

fn by_id<'a>(events: &'a [Value], id: &Value) -> &'a Value {
    events
        .iter()
        .find(|e| &e["id"] == id)
        .unwrap_or_else(|| panic!("event {id} not listed"))
}

#[tokio::test]
async fn every_format_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let probe = server.add_device("probe-7").await;
    let gateway = server.add_device("demoMemoria").await;
    let vehicle = server.add_device("BSTZ9IEK39HHYZB6I").await;

    // Canonical, with a client id.
    let canonical = json!({"id": "client-0001", "device": "probe-7", "sensor": "probe1",
        "ts": "2018-06-01T14:08:24.771Z", "kind": "temperature", "value": 15.0, "data": {"unit": "C"}});
    let (status, body) = server
        .post(Some(&probe), "application/json", canonical.to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["ids"], json!(["client-0001"]));

    // The collector format, as an array of two.
    let collector = json!([
        {"namespace": "default", "sender": "demoMemoria", "origin": "probe1",
         "payload": {"type": "temperature", "value": 15}, "timestamp": "2018-06-01T14:08:24.771Z"},
        {"namespace": "default", "sender": "demoMemoria", "origin": "probe1",
         "payload": {"type": "temperature", "value": 16.5}, "timestamp": "2018-06-01T14:08:25.771Z"}]);
    let (status, body) = server
        .post(Some(&gateway), "application/json", collector.to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    let collector_ids = body["ids"].as_array().unwrap().clone();
    assert_eq!(collector_ids.len(), 2);

    // A vehicle's flat telemetry document.
    let flat = json!({"timestamp": "2018-06-01T14:08:26.000Z", "vin": "BSTZ9IEK39HHYZB6I", "vehicle_speed": 118.4,
        "location": {"lat": 38.95618, "lon": -77.39835}, "fuel_level": 76.8, "gear": 5});
    let (status, body) = server
        .post(Some(&vehicle), "application/json", flat.to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    let flat_id = body["ids"][0].clone();

    // NDJSON, three lines (one blank line in between is fine).
    let ndjson = "{\"kind\":\"co2\",\"value\":410}\n\n{\"kind\":\"co2\",\"value\":415}\n{\"kind\":\"co2\",\"value\":420}\n";
    let (status, body) = server
        .post(Some(&probe), "application/x-ndjson", ndjson)
        .await;
    assert_eq!(status, 201, "{body}");
    let ndjson_ids = body["ids"].as_array().unwrap().clone();
    assert_eq!(ndjson_ids.len(), 3);

    // A camera picture: binary body, metadata in the query string.
    let picture: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let response = server
        .http
        .post(server.url("/api/v1/events?sensor=front&kind=picture&ts=2018-06-01T14:08:27Z"))
        .bearer_auth(&probe)
        .header("content-type", "image/jpeg")
        .body(picture.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let picture_id = response.json::<Value>().await.unwrap()["ids"][0].clone();

    let events = server.wait_for_events("", 8).await;
    assert_eq!(events.len(), 8);
    let timestamps: Vec<&str> = events.iter().map(|e| e["ts"].as_str().unwrap()).collect();
    let mut newest_first = timestamps.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(timestamps, newest_first, "newest first");

    // The documented key order: id, device, sensor, ts, kind, value, data.
    let listing = server
        .http
        .get(server.url("/api/v1/events?limit=1"))
        .bearer_auth(server.admin_key())
        .send()
        .await
        .unwrap();
    let text = listing.text().await.unwrap();
    let keys: Vec<usize> = [
        "\"id\"",
        "\"device\"",
        "\"sensor\"",
        "\"ts\"",
        "\"kind\"",
        "\"value\"",
        "\"data\"",
    ]
    .iter()
    .map(|k| {
        text.find(k)
            .unwrap_or_else(|| panic!("{k} missing: {text}"))
    })
    .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "keys out of order: {text}"
    );

    let e = by_id(&events, &json!("client-0001"));
    assert_eq!(
        e,
        &json!({"id": "client-0001", "device": "probe-7", "sensor": "probe1",
        "ts": "2018-06-01T14:08:24.771Z", "kind": "temperature", "value": 15.0, "data": {"unit": "C"}})
    );

    let e = by_id(&events, &collector_ids[1]);
    assert_eq!(e["device"], "demoMemoria");
    assert_eq!(e["sensor"], "probe1");
    assert_eq!(e["kind"], "temperature");
    assert_eq!(e["value"], 16.5);
    assert_eq!(e["ts"], "2018-06-01T14:08:25.771Z");
    assert_eq!(
        e["data"], collector[1],
        "the collector document is kept whole"
    );

    let e = by_id(&events, &flat_id);
    assert_eq!(e["device"], "BSTZ9IEK39HHYZB6I");
    assert_eq!(e["ts"], "2018-06-01T14:08:26.000Z");
    assert_eq!(e["data"], flat, "the flat document is kept whole");
    assert_eq!(e["data"]["location"]["lat"], 38.95618);

    let values: Vec<f64> = ndjson_ids
        .iter()
        .map(|id| by_id(&events, id)["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [410.0, 415.0, 420.0]);

    let e = by_id(&events, &picture_id);
    assert_eq!(e["kind"], "picture");
    assert_eq!(e["sensor"], "front");
    assert_eq!(
        e["data"],
        json!({"content_type": "image/jpeg", "size": 300_000})
    );
    let id = picture_id.as_str().unwrap();
    let response = server
        .http
        .get(server.url(&format!("/api/v1/events/{id}/payload")))
        .bearer_auth(server.admin_key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        picture.as_slice(),
        "the picture comes back byte for byte"
    );

    // Filters: device, sensor, kind, time range.
    assert_eq!(server.all_events("device=demoMemoria").await.len(), 2);
    assert_eq!(server.all_events("kind=co2").await.len(), 3);
    assert_eq!(
        server
            .all_events("device=probe-7&sensor=probe1")
            .await
            .len(),
        1
    );
    let range = server
        .all_events("from=2018-06-01T14:08:25Z&to=2018-06-01T14:08:27Z")
        .await;
    let mut ids: Vec<&Value> = range.iter().map(|e| &e["id"]).collect();
    ids.sort_by_key(|v| v.as_str().unwrap().to_owned());
    let mut expected = vec![&collector_ids[1], &flat_id];
    expected.sort_by_key(|v| v.as_str().unwrap().to_owned());
    assert_eq!(ids, expected);

    // A retry with the same client id is stored once.
    let (status, _) = server
        .post(Some(&probe), "application/json", canonical.to_string())
        .await;
    assert_eq!(status, 201);
    let (status, _) = server
        .post(
            Some(&probe),
            "application/json",
            json!({"kind": "marker", "value": 1}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    let events = server.wait_for_events("", 9).await;
    assert_eq!(
        events.iter().filter(|e| e["id"] == "client-0001").count(),
        1
    );
    assert_eq!(events.len(), 9);
}

#[tokio::test]
async fn paging_visits_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let token = server.add_device("pager").await;
    // 250 events, many sharing a timestamp, so the cursor must break ties by id.
    let body: String = (0..250)
        .map(|i| {
            format!(
                "{{\"ts\":\"2020-01-01T00:00:{:02}Z\",\"value\":{i}}}\n",
                i / 10
            )
        })
        .collect();
    let (status, _) = server
        .post(Some(&token), "application/x-ndjson", body)
        .await;
    assert_eq!(status, 201);
    server.wait_for_events("", 250).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let (status, page) = server
            .get(&format!("/api/v1/events?limit=40{cursor}"))
            .await;
        assert_eq!(status, 200);
        pages += 1;
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["value"].as_f64().unwrap() as i64),
        );
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 7);
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..250).collect::<Vec<_>>(),
        "every event exactly once"
    );
}

#[tokio::test]
async fn refused_requests_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ingot.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_body_bytes = 4096\nmax_event_bytes = 1024\nmax_binary_bytes = 2048\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]).await;
    let token = server.add_device("probe-7").await;

    // One bad element refuses the whole batch, naming index, line and field.
    let batch = "[\n{\"kind\":\"t\",\"value\":1},\n{\"kind\":\"t\",\"value\":2},\n{\"kind\":\"t\",\"value\":\"hot\"}\n]";
    let (status, body) = server.post(Some(&token), "application/json", batch).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_input");
    assert_eq!(body["error"]["index"], 2);
    assert_eq!(body["error"]["line"], 4);
    assert_eq!(body["error"]["field"], "value");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must be a number"),
        "{body}"
    );

    // Malformed JSON: line and column.
    let (status, body) = server
        .post(
            Some(&token),
            "application/json",
            "[{\"value\": 1},\n {\"value\" 2}]",
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        (
            body["error"]["line"].as_u64(),
            body["error"]["column"].as_u64()
        ),
        (Some(2), Some(11)),
        "{body}"
    );

    // NDJSON syntax error on line 3.
    let (status, body) = server
        .post(
            Some(&token),
            "application/x-ndjson",
            "{\"value\":1}\n{\"value\":2}\n{\"value\":\n",
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["line"], 3, "{body}");

    // Too large: body, event, binary; wrong media type.
    let big = format!("[{}]", vec!["{\"value\":1}"; 600].join(","));
    let (status, body) = server.post(Some(&token), "application/json", big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["limit"], 4096);
    let long_event = json!({"value": 1, "data": {"pad": "x".repeat(2000)}}).to_string();
    let (status, body) = server
        .post(Some(&token), "application/json", long_event)
        .await;
    assert_eq!(status, 413, "{body}");
    let (status, _) = server
        .post(Some(&token), "image/jpeg", vec![0u8; 3000])
        .await;
    assert_eq!(status, 413);
    let (status, body) = server
        .post(Some(&token), "application/x-www-form-urlencoded", "{}")
        .await;
    assert_eq!(status, 415);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("curl -d"),
        "{body}"
    );
    let (status, body) = server.post(Some(&token), "text/csv", "a,b\n1,2\n").await;
    assert_eq!(status, 415);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("text/csv"),
        "{body}"
    );
    let (status, body) = server.post(Some(&token), "application/json", "[]").await;
    assert_eq!(status, 400, "{body}");

    // Nothing of the above was stored; a good event afterwards is.
    let (status, _) = server
        .post(
            Some(&token),
            "application/json",
            json!({"kind": "ok", "value": 7}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    let events = server.wait_for_events("", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let events_later = server.all_events("").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events_later.len(),
        1,
        "refused batches left nothing: {events_later:?}"
    );
    assert_eq!(events_later[0]["kind"], "ok");
}

#[tokio::test]
async fn credentials_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let token = server.add_device("probe-7").await;
    let event = json!({"kind": "t", "value": 1}).to_string();

    let (status, body) = server.post(None, "application/json", event.clone()).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{body}"
    );
    let (status, _) = server
        .post(Some("idt_not-a-token"), "application/json", event.clone())
        .await;
    assert_eq!(status, 401);

    // A device writes only as itself.
    let other = json!({"device": "probe-8", "value": 1}).to_string();
    let (status, body) = server.post(Some(&token), "application/json", other).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["field"], "device");

    // A reader key reads but cannot write; a writer key writes for any device it names.
    let response = server
        .http
        .post(server.url("/api/v1/keys"))
        .bearer_auth(server.admin_key())
        .json(&json!({"role": "reader"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let reader = response.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = server
        .post(
            Some(&reader),
            "application/json",
            json!({"device": "x", "value": 1}).to_string(),
        )
        .await;
    assert_eq!(status, 403);
    let response = server
        .http
        .post(server.url("/api/v1/keys"))
        .bearer_auth(server.admin_key())
        .json(&json!({"role": "writer"}))
        .send()
        .await
        .unwrap();
    let writer = response.json::<Value>().await.unwrap();
    let (status, _) = server
        .post(
            writer["key"].as_str(),
            "application/json",
            json!({"device": "gw-sensor-1", "value": 1}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = server
        .post(writer["key"].as_str(), "application/json", event.clone())
        .await;
    assert_eq!(status, 400, "a writer key must name the device: {body}");
    let listing = server
        .http
        .get(server.url("/api/v1/events"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 200);
    let listing = server
        .http
        .get(server.url("/api/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 403, "device tokens cannot list");
    let listing = server
        .http
        .get(server.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 401);

    // Revoking the writer key and deleting the device invalidate them at once.
    let id = writer["id"].as_str().unwrap();
    let response = server
        .http
        .delete(server.url(&format!("/api/v1/keys/{id}")))
        .bearer_auth(server.admin_key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, _) = server
        .post(
            writer["key"].as_str(),
            "application/json",
            json!({"device": "gw-sensor-1", "value": 1}).to_string(),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .post(Some(&token), "application/json", event.clone())
        .await;
    assert_eq!(status, 201);
    let response = server
        .http
        .delete(server.url("/api/v1/devices/probe-7"))
        .bearer_auth(server.admin_key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, _) = server
        .post(Some(&token), "application/json", event.clone())
        .await;
    assert_eq!(status, 401, "a deleted device's token stops working");
    let response = server
        .http
        .delete(server.url("/api/v1/devices/probe-7"))
        .bearer_auth(server.admin_key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // Duplicate device names conflict; only admins manage devices.
    server.add_device("dup").await;
    let response = server
        .http
        .post(server.url("/api/v1/devices"))
        .bearer_auth(server.admin_key())
        .json(&json!({"name": "dup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let response = server
        .http
        .post(server.url("/api/v1/devices"))
        .bearer_auth(&reader)
        .json(&json!({"name": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = server
        .http
        .post(server.url("/api/v1/devices"))
        .bearer_auth(server.admin_key())
        .json(&json!({"name": "bad/name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn anonymous_ingest_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--allow-anonymous"]).await;
    let (status, body) = server
        .post(
            None,
            "application/json",
            json!({"device": "probe-7", "value": 3}).to_string(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .post(None, "application/json", json!({"value": 3}).to_string())
        .await;
    assert_eq!(
        status, 400,
        "anonymous events must name their device: {body}"
    );
    let events = server.wait_for_events("", 1).await;
    assert_eq!(events[0]["device"], "probe-7");
    assert!(
        server
            .stderr
            .lock()
            .unwrap()
            .contains("WITHOUT credentials"),
        "the start warns loudly"
    );
}
