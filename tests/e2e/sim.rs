//! `ingot sim` against the real binary: the collector smoke test over HTTP, CoAP and
//! MQTT with provisioned devices, then the events listed through the API.

use serde_json::Value;

use crate::support::{Server, run_cli};

/// Runs `ingot sim` with `--json` and returns its exit code and report.
fn sim(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["sim"];
    all.extend_from_slice(args);
    all.push("--json");
    let (code, stdout, stderr) = run_cli(&all, &[]);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stdout:\n{stdout}\nstderr:\n{stderr}"));
    (code, report)
}

fn probe_args<'a>(
    protocol: &'a str,
    target: &'a str,
    server: &'a Server,
    key: &'a str,
) -> Vec<&'a str> {
    vec![
        "probe",
        "--protocol",
        protocol,
        "--target",
        target,
        "--provision",
        "--server",
        &server.base,
        "--api-key",
        key,
        "--sender",
        "demoMemoria",
        "--origin",
        "probe1",
        "--kind",
        "temperature",
        "--start",
        "15",
        "--factor",
        "1.1",
        "--count",
        "10",
    ]
}

/// The ten probe values were stored, as the collector format maps them.
async fn assert_probe_stored(server: &Server) {
    let events = server.wait_for_events("device=demoMemoria", 10).await;
    assert_eq!(events.len(), 10, "{events:?}");
    let mut values: Vec<f64> = events
        .iter()
        .map(|e| e["value"].as_f64().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    let expected = [
        15.0, 16.5, 18.15, 19.965, 21.9615, 24.15765, 26.573415, 29.230757, 32.153832, 35.369215,
    ];
    for (got, want) in values.iter().zip(expected) {
        assert!((got - want).abs() < 1e-6, "{values:?}");
    }
    for event in &events {
        assert_eq!(event["sensor"], "probe1");
        assert_eq!(event["kind"], "temperature");
        assert_eq!(event["data"]["origin"], "probe1");
        assert_eq!(event["data"]["payload"]["type"], "temperature");
    }
}

#[tokio::test]
async fn probe_over_http_with_provisioned_devices() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let key = server.admin_key();
    let (code, report) = sim(&probe_args("http", &server.base, &server, &key));
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["sent"], 10);
    assert_eq!(report["acked"], 10);
    assert!(report["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    assert_probe_stored(&server).await;
    // A second run re-provisions the same device (a fresh token) and adds ten more.
    let (code, report) = sim(&probe_args("http", &server.base, &server, &key));
    assert_eq!(code, 0, "{report}");
    server.wait_for_events("device=demoMemoria", 20).await;
    server.stop().await;
}

#[tokio::test]
async fn probe_and_vehicles_over_coap() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let key = server.admin_key();
    let (code, report) = sim(&probe_args("coap", &server.coap, &server, &key));
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["acked"], 10, "{report}");
    assert_probe_stored(&server).await;

    // Vehicles with an API key (one for the whole fleet), paced, non-confirmable.
    let (code, report) = sim(&[
        "vehicles",
        "--protocol",
        "coap",
        "--non",
        "--target",
        &server.coap,
        "--token",
        &key,
        "--devices",
        "3",
        "--rate",
        "200",
        "--count",
        "30",
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["acked"], 30, "{report}");
    // 10 probe events and 30 vehicle reports.
    let events = server.wait_for_events("", 40).await;
    let vehicles: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["vin"].is_string())
        .collect();
    assert_eq!(vehicles.len(), 30);
    for event in vehicles {
        let location = &event["data"]["location"];
        assert!(location["lat"].is_number() && location["lon"].is_number());
        assert_eq!(event["device"], event["data"]["vin"]);
    }
    server.stop().await;
}

#[tokio::test]
async fn weather_and_camera_over_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let key = server.admin_key();
    let target = server.mqtt.to_string();
    let (code, report) = sim(&[
        "weather",
        "--protocol",
        "mqtt",
        "--target",
        &target,
        "--provision",
        "--server",
        &server.base,
        "--api-key",
        &key,
        "--cities",
        "seville,london",
        "--max",
        "--count",
        "12",
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["acked"], 12, "{report}");
    let events = server.wait_for_events("device=weather-seville", 6).await;
    assert!(events.iter().all(|e| e["sensor"] == "station"));

    // Pictures: MQTT 5 with a content type, metadata as user properties and topic.
    let (code, report) = sim(&[
        "camera",
        "--protocol",
        "mqtt",
        "--target",
        &target,
        "--provision",
        "--server",
        &server.base,
        "--api-key",
        &key,
        "--resolution",
        "320x188",
        "--max",
        "--count",
        "2",
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["acked"], 2, "{report}");
    let events = server.wait_for_events("device=cam-01", 2).await;
    for event in &events {
        assert_eq!(event["kind"], "motion");
        assert_eq!(event["sensor"], "front");
        assert_eq!(event["data"]["content_type"], "image/jpeg");
    }
    server.stop().await;
}

#[tokio::test]
async fn refusals_are_reported_by_code_with_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let (code, report) = sim(&[
        "probe",
        "--protocol",
        "http",
        "--target",
        &server.base,
        "--token",
        "idt_not-a-real-token",
        "--count",
        "3",
    ]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["errors_by_code"]["http 401"], 3, "{report}");
    server.stop().await;
}

/// `ingot serve --demo`: the demo fleet is registered, writes a day of weather history at
/// once and keeps reporting; the new tenant has its built-in dashboard; a restart does not
/// duplicate the history (its ids are derived from station, time and kind).
#[tokio::test]
async fn serve_demo_registers_its_fleet_and_writes_history_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"]).await;
    let banner = server.stdout.lock().unwrap().clone();
    assert!(banner.contains("Demo fleet"), "{banner}");
    let (status, devices) = server.get("/api/v1/devices").await;
    assert_eq!(status, 200);
    assert_eq!(
        devices["devices"].as_array().unwrap().len(),
        16,
        "{devices}"
    );
    let (status, dashboards) = server.get("/api/v1/dashboards").await;
    assert_eq!(status, 200);
    assert_eq!(dashboards["dashboards"][0]["id"], "fleet-overview");
    // 4 stations × 3 readings × 97 quarter hours of history, plus live reports.
    let history = server.wait_for_events("kind=temperature", 4 * 97).await;
    assert!(history.len() >= 4 * 97, "{}", history.len());
    // Vehicles report every 2 s with their position.
    let vehicles = server.wait_for_events("q=vin:*", 12).await;
    assert!(
        vehicles
            .iter()
            .all(|e| e["data"]["location"]["lat"].is_number())
    );
    let count = |events: &[Value]| {
        events
            .iter()
            .filter(|e| e["id"].as_str().is_some_and(|id| id.starts_with("demo-")))
            .count()
    };
    let before = count(&server.all_events("kind=temperature").await);
    assert!(before >= 4 * 96, "{before}");
    server.stop().await;

    let server = Server::start(dir.path(), &["--demo"]).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = count(&server.all_events("kind=temperature").await);
    // At most one new quarter hour of history can have started between the two runs.
    assert!(
        after <= before + 4,
        "history duplicated: {before} → {after}"
    );
    let (_, devices) = server.get("/api/v1/devices").await;
    assert_eq!(devices["devices"].as_array().unwrap().len(), 16);
    server.stop().await;
}
