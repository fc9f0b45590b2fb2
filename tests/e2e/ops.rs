//! Health, readiness, metrics, start-up and shutdown behaviour.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::Server;

#[tokio::test]
async fn first_start_creates_tenant_and_admin_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let key = server.admin_key();
    assert!(key.starts_with("ik_"));
    let stdout = server.stdout.lock().unwrap().clone();
    assert!(
        stdout.contains(&key),
        "the first start prints the admin key:\n{stdout}"
    );
    assert!(
        stdout.contains("ingot device add probe-7"),
        "and how to send a first event:\n{stdout}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("admin.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // A second server on the same data directory is refused while the first runs.
    let (code, _, stderr) = crate::support::run_cli(
        &[
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--coap-addr",
            "127.0.0.1:0",
            "--mqtt-addr",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("in use by another ingot process"),
        "{stderr}"
    );

    assert_eq!(server.stop().await.code(), Some(0));
    let server = Server::start(dir.path(), &[]).await;
    assert_eq!(server.admin_key(), key, "the key is kept");
    let stdout = server.stdout.lock().unwrap().clone();
    assert!(
        !stdout.contains(&key),
        "later starts do not print the key again"
    );
    let (status, _) = server.get("/api/v1/events").await;
    assert_eq!(status, 200, "the kept key still works");
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let health: Value = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    let ready: Value = server
        .http
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready, json!({"ready": true}));

    let token = server.add_device("probe-7").await;
    let body: String = (0..25).map(|i| format!("{{\"value\":{i}}}\n")).collect();
    assert_eq!(
        server
            .post(Some(&token), "application/x-ndjson", body)
            .await
            .0,
        201
    );
    assert_eq!(
        server.post(Some(&token), "application/json", "{").await.0,
        400
    );
    assert_eq!(server.post(None, "application/json", "{}").await.0, 401);
    server.wait_for_events("", 25).await;

    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let metric = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(
        metric("ingot_events_accepted_total{protocol=\"http\"}"),
        25.0
    );
    assert_eq!(
        metric("ingot_events_refused_total{protocol=\"http\",reason=\"invalid\"}"),
        1.0
    );
    assert_eq!(
        metric("ingot_events_refused_total{protocol=\"http\",reason=\"unauthenticated\"}"),
        1.0
    );
    assert!(metric("ingot_log_fsync_seconds_count") >= 1.0);
    assert!(metric("ingot_log_append_seconds_count") >= 1.0);
    assert_eq!(metric("ingot_store_writer_lag_messages"), 0.0);
    assert_eq!(metric("ingot_store_writer_inserted_total"), 25.0);
    assert!(
        text.contains(
            "ingot_http_requests_total{method=\"POST\",route=\"/api/v1/events\",status=\"201\"}"
        ),
        "{text}"
    );

    let openapi: Value = server
        .http
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/api/v1/events"]["post"].is_object());

    let missing = server.http.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn readiness_drops_while_draining_and_the_process_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]).await;
    let started = std::time::Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an idle server stops promptly ({:?})",
        started.elapsed()
    );
    assert!(server.stderr.lock().unwrap().contains("drained; bye"));
}
