//! Nobody gets in where they don't belong: an isolation matrix over every endpoint and
//! protocol, token rotation under load, rate limits, tenant disable and delete.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, tool};

/// One request with an optional bearer secret; returns the status and the raw body.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    secret: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let mut request = server.http.request(method, server.url(path));
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn new_key(
    server: &Server,
    admin: &str,
    role: &str,
    expires: Option<&str>,
) -> (String, String) {
    let mut body = json!({"role": role});
    if let Some(expires) = expires {
        body["expires"] = json!(expires);
    }
    let (status, text) = call(
        server,
        Method::POST,
        "/api/v1/keys",
        Some(admin),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

struct World {
    _dir: tempfile::TempDir,
    server: Server,
    /// Tenant A (`default`): its system admin key, a device token, a reader key, an event.
    admin_a: String,
    device_a: String,
    reader_a: String,
    key_id_a: String,
    event_a: String,
    /// Tenant B (`beta`): its admin key and a device of the same name as A's.
    admin_b: String,
    device_b: String,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let admin_a = server.admin_key();
    let device_a = server.add_device("probe-7").await;
    let (key_id_a, reader_a) = new_key(&server, &admin_a, "reader", None).await;
    let (status, body) = server
        .post(
            Some(&device_a),
            "application/json",
            json!({"kind": "secret-kind-a", "value": 42}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    let event_a = body["ids"][0].as_str().unwrap().to_owned();
    let (status, text) = call(
        &server,
        Method::PUT,
        "/api/v1/dashboards/secret-dash-a",
        Some(&admin_a),
        Some(json!({"name": "A only", "spec": {"widgets": []}})),
    )
    .await;
    assert_eq!(status, 200, "{text}");

    let (status, text) = call(
        &server,
        Method::POST,
        "/api/v1/tenants",
        Some(&admin_a),
        Some(json!({"name": "beta"})),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let admin_b = serde_json::from_str::<Value>(&text).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, text) = call(
        &server,
        Method::POST,
        "/api/v1/devices",
        Some(&admin_b),
        Some(json!({"name": "probe-7"})),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let device_b = serde_json::from_str::<Value>(&text).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    server.wait_for_events("", 1).await;
    World {
        _dir: dir,
        server,
        admin_a,
        device_a,
        reader_a,
        key_id_a,
        event_a,
        admin_b,
        device_b,
    }
}

#[tokio::test]
async fn isolation_matrix_over_every_endpoint() {
    let w = world().await;
    let s = &w.server;
    let (revoked_id, revoked) = new_key(s, &w.admin_a, "admin", None).await;
    assert_eq!(
        call(
            s,
            Method::DELETE,
            &format!("/api/v1/keys/{revoked_id}"),
            Some(&w.admin_a),
            None
        )
        .await
        .0,
        204
    );
    let (_, expiring) = new_key(s, &w.admin_a, "admin", Some("1s")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let e = &w.event_a;
    let k = &w.key_id_a;
    // Every endpoint that touches tenant data, with the method and a body where it needs one.
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/events".into(), None),
        (Method::GET, format!("/api/v1/events/{e}"), None),
        (Method::GET, format!("/api/v1/events/{e}/payload"), None),
        (
            Method::GET,
            "/api/v1/series?agg=count&interval=1h".into(),
            None,
        ),
        (Method::GET, "/api/v1/devices".into(), None),
        (Method::GET, "/api/v1/devices/probe-7".into(), None),
        (
            Method::PATCH,
            "/api/v1/devices/probe-7".into(),
            Some(json!({"enabled": false})),
        ),
        (Method::POST, "/api/v1/devices/probe-7/rotate".into(), None),
        (Method::DELETE, "/api/v1/devices/probe-7".into(), None),
        (
            Method::POST,
            "/api/v1/devices".into(),
            Some(json!({"name": "intruder"})),
        ),
        (Method::GET, "/api/v1/keys".into(), None),
        (
            Method::POST,
            "/api/v1/keys".into(),
            Some(json!({"role": "admin"})),
        ),
        (Method::DELETE, format!("/api/v1/keys/{k}"), None),
        (Method::GET, "/api/v1/dashboards".into(), None),
        (Method::GET, "/api/v1/dashboards/secret-dash-a".into(), None),
        (
            Method::PUT,
            "/api/v1/dashboards/secret-dash-a".into(),
            Some(json!({"name": "x", "spec": {}})),
        ),
        (
            Method::DELETE,
            "/api/v1/dashboards/secret-dash-a".into(),
            None,
        ),
        (Method::GET, "/api/v1/tenants".into(), None),
        (
            Method::PATCH,
            "/api/v1/tenants/default".into(),
            Some(json!({"retention": "2d"})),
        ),
        (Method::DELETE, "/api/v1/tenants/default".into(), None),
        (
            Method::POST,
            "/api/v1/tenants".into(),
            Some(json!({"name": "gamma"})),
        ),
    ];
    // No credential, an unknown one, a revoked key and an expired key: 401 everywhere.
    for secret in [
        None,
        Some("ik_not-a-key"),
        Some("idt_not-a-token"),
        Some(revoked.as_str()),
        Some(expiring.as_str()),
    ] {
        for (method, path, body) in &endpoints {
            let (status, text) = call(s, method.clone(), path, secret, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} with {secret:?}: {text}");
            assert!(
                !text.contains("probe-7") && !text.contains("secret"),
                "{method} {path} leaks: {text}"
            );
        }
    }
    // A device token and a reader key may not write or administer.
    for secret in [&w.device_a, &w.reader_a] {
        for (method, path, body) in endpoints.iter().filter(|(m, ..)| *m != Method::GET) {
            let (status, text) = call(s, method.clone(), path, Some(secret), body.clone()).await;
            assert_eq!(
                status,
                403,
                "{method} {path} as a {}: {text}",
                if secret.starts_with("idt_") {
                    "device"
                } else {
                    "reader"
                }
            );
        }
    }
    let (status, _) = call(
        s,
        Method::POST,
        "/api/v1/events",
        Some(&w.reader_a),
        Some(json!({"device": "probe-7", "value": 1})),
    )
    .await;
    assert_eq!(status, 403, "a reader key cannot ingest");
    let (status, _) = call(s, Method::GET, "/api/v1/events", Some(&w.device_a), None).await;
    assert_eq!(status, 403, "a device token cannot read");

    // Tenant B's admin against tenant A's things: not found or empty, never A's data.
    let b = Some(w.admin_b.as_str());
    for (method, path, body) in &endpoints {
        let (status, text) = call(s, method.clone(), path, b, body.clone()).await;
        let request = format!(
            "{path} {}",
            body.as_ref().map(Value::to_string).unwrap_or_default()
        );
        for leak in [
            w.event_a.as_str(),
            "secret-kind-a",
            "secret-dash-a",
            w.key_id_a.as_str(),
        ] {
            // An answer may repeat what the request itself named; anything else of A's is
            // a leak.
            if !request.contains(leak) {
                assert!(
                    !text.contains(leak),
                    "{method} {path} as tenant B leaks {leak}: {text}"
                );
            }
        }
        assert!(
            !(200..300).contains(&status) || !text.contains("\"default\""),
            "{method} {path}: {text}"
        );
        if path.contains(e.as_str()) || path.ends_with("secret-dash-a") && *method == Method::GET {
            assert_eq!(status, 404, "{method} {path} as tenant B: {text}");
        }
        if path == "/api/v1/tenants/default" {
            assert!(
                status == 404 || status == 403,
                "{method} {path} as tenant B: {status} {text}"
            );
        }
        if *method == Method::POST && path == "/api/v1/tenants" {
            assert_eq!(status, 403, "only a system key creates tenants");
        }
    }
    let (status, text) = call(s, Method::GET, "/api/v1/events?total=true", b, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["total"],
        0,
        "B counts none of A's events"
    );
    let (_, text) = call(s, Method::GET, "/api/v1/tenants", b, None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["tenants"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // B's device token writes into B only, even naming the same device.
    // (Device names are per tenant: the loop above rotated and deleted B's own probe-7,
    // never A's, which is why A's still works below. Register B's again.)
    let (status, text) = call(
        s,
        Method::POST,
        "/api/v1/devices",
        b,
        Some(json!({"name": "probe-7"})),
    )
    .await;
    assert_eq!(status, 201, "{text}");
    let device_b = serde_json::from_str::<Value>(&text).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(device_b, w.device_b);
    let (status, _) = s
        .post(
            Some(&device_b),
            "application/json",
            json!({"kind": "b-kind", "value": 1}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a_events = s.all_events("").await;
    assert!(
        a_events.iter().all(|e| e["kind"] != "b-kind"),
        "A never sees B's event"
    );

    // A disabled device is refused with 403, its events kept.
    assert_eq!(
        call(
            s,
            Method::PATCH,
            "/api/v1/devices/probe-7",
            Some(&w.admin_a),
            Some(json!({"enabled": false}))
        )
        .await
        .0,
        200
    );
    let (status, body) = s
        .post(
            Some(&w.device_a),
            "application/json",
            json!({"value": 1}).to_string(),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{body}"
    );
    assert!(
        s.all_events("")
            .await
            .iter()
            .any(|e| e["id"] == w.event_a.as_str())
    );
}

#[tokio::test]
async fn mqtt_and_coap_respect_tenants() {
    let w = world().await;
    let s = &w.server;
    // CoAP: B's token lists B's probe-7 only; A's token cannot read at all with a wrong one.
    if let Some(client) = tool(&[
        "coap-client",
        "coap-client-notls",
        "coap-client-openssl",
        "coap-client-gnutls",
    ]) {
        let uri = format!("{}/events?device=probe-7&token={}", s.coap, w.admin_b);
        let out = Command::new(&client)
            .args(["-m", "get", "-B", "10", &uri])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            !text.contains(&w.event_a) && !text.contains("secret-kind-a"),
            "CoAP leaks A to B: {text}"
        );
        let uri = format!("{}/events?token=ik_forged", s.coap);
        let out = Command::new(&client)
            .args(["-m", "get", "-B", "10", &uri])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("4.01"), "{text}");
    }
    // MQTT: B's admin key subscribes to probe-7's events; A's probe-7 publishes; B hears nothing.
    let (Some(sub_tool), Some(pub_tool)) = (tool(&["mosquitto_sub"]), tool(&["mosquitto_pub"]))
    else {
        return;
    };
    let port = s.mqtt.port().to_string();
    let sub = Command::new(&sub_tool)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            "mqttv5",
            "-u",
            "b-dashboard",
            "-P",
            &w.admin_b,
        ])
        .args(["-t", "ingot/+/events/#", "-W", "3", "-v"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = Command::new(&pub_tool)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-u",
            "probe-7",
            "-P",
            &w.device_a,
        ])
        .args([
            "-t",
            "ingot/probe-7/events",
            "-m",
            "{\"kind\":\"a-over-mqtt\",\"value\":1}",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new(&pub_tool)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-u",
            "probe-7",
            "-P",
            &w.device_b,
        ])
        .args([
            "-t",
            "ingot/probe-7/events",
            "-m",
            "{\"kind\":\"b-over-mqtt\",\"value\":2}",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || sub.wait_with_output().unwrap())
        .await
        .unwrap();
    let heard = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        heard.contains("b-over-mqtt"),
        "B hears its own device: {heard}"
    );
    assert!(
        !heard.contains("a-over-mqtt"),
        "B never hears A's device: {heard}"
    );
    // A device of A cannot log in with B's name, nor B's token as A's device.
    let status = Command::new(&pub_tool)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-u",
            "probe-7",
            "-P",
            "idt_forged",
        ])
        .args(["-t", "ingot/probe-7/events", "-m", "{\"value\":3}"])
        .status()
        .unwrap();
    assert!(!status.success(), "bad credentials are refused");
}

#[tokio::test]
async fn token_rotation_under_load_refuses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let admin = server.admin_key();
    let old = server.add_device("probe-7").await;
    let token = Arc::new(parking_token(old.clone()));
    let refused = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url("/api/v1/events");
    let load = {
        let (token, refused, sent, stop) =
            (token.clone(), refused.clone(), sent.clone(), stop.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let started = Instant::now();
            // Bounded in time and count.
            while !stop.load(Ordering::SeqCst)
                && started.elapsed() < Duration::from_secs(20)
                && sent.load(Ordering::SeqCst) < 20_000
            {
                let secret = token.lock().unwrap().clone();
                let response = http
                    .post(&url)
                    .bearer_auth(&secret)
                    .json(&json!({"kind": "rot", "value": 1}))
                    .send()
                    .await
                    .unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
                if response.status() != 201 {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, text) = call(
        &server,
        Method::POST,
        "/api/v1/devices/probe-7/rotate",
        Some(&admin),
        Some(json!({"grace": "1h"})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let new = serde_json::from_str::<Value>(&text).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The device keeps sending with its old token for a while, then switches.
    tokio::time::sleep(Duration::from_millis(700)).await;
    *token.lock().unwrap() = new.clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    assert!(sent.load(Ordering::SeqCst) > 50, "the load ran");
    assert_eq!(
        refused.load(Ordering::SeqCst),
        0,
        "no request was refused during the rotation"
    );

    // A rotation with a short grace: the old token stops when it ends.
    let (_, text) = call(
        &server,
        Method::POST,
        "/api/v1/devices/probe-7/rotate",
        Some(&admin),
        Some(json!({"grace": "1s"})),
    )
    .await;
    let newest = serde_json::from_str::<Value>(&text).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        server
            .post(Some(&new), "application/json", "{\"value\":1}")
            .await
            .0,
        201,
        "during the grace"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        server
            .post(Some(&new), "application/json", "{\"value\":1}")
            .await
            .0,
        401,
        "after the grace"
    );
    assert_eq!(
        server
            .post(Some(&newest), "application/json", "{\"value\":1}")
            .await
            .0,
        201
    );
    assert_eq!(
        server
            .post(Some(&old), "application/json", "{\"value\":1}")
            .await
            .0,
        401,
        "two rotations ago"
    );
}

fn parking_token(token: String) -> std::sync::Mutex<String> {
    std::sync::Mutex::new(token)
}

#[tokio::test]
async fn rate_limits_answer_429_4_29_and_0x96() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ingot.toml");
    std::fs::write(
        &config,
        "[limits]\ndevice_events_per_second = 2\ndevice_burst = 3\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let token = server.add_device("probe-7").await;
    let three: String = (0..3).map(|i| format!("{{\"value\":{i}}}\n")).collect();
    assert_eq!(
        server
            .post(Some(&token), "application/x-ndjson", three)
            .await
            .0,
        201,
        "a full burst"
    );
    let response = server
        .http
        .post(server.url("/api/v1/events"))
        .bearer_auth(&token)
        .json(&json!({"value": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry, 1, "0.5 s rounds up to 1 s");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("device probe-7"),
        "{body}"
    );
    // A batch larger than the burst can never fit: 413, with advice.
    let big: String = (0..4).map(|i| format!("{{\"value\":{i}}}\n")).collect();
    assert_eq!(
        server
            .post(Some(&token), "application/x-ndjson", big)
            .await
            .0,
        413
    );

    if let Some(client) = tool(&[
        "coap-client",
        "coap-client-notls",
        "coap-client-openssl",
        "coap-client-gnutls",
    ]) {
        let uri = format!("{}/events?token={token}", server.coap);
        let out = Command::new(&client)
            .args(["-m", "post", "-t", "50", "-e", "{\"value\":1}", &uri])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("4.29"),
            "CoAP answers 4.29 Too Many Requests: {text}"
        );
    }
    if let Some(pub_tool) = tool(&["mosquitto_pub"]) {
        let out = Command::new(&pub_tool)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &server.mqtt.port().to_string(),
                "-V",
                "mqttv5",
                "-q",
                "1",
                "-d",
            ])
            .args([
                "-u",
                "probe-7",
                "-P",
                &token,
                "-t",
                "ingot/probe-7/events",
                "-m",
                "{\"value\":1}",
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("150") || text.to_lowercase().contains("rate"),
            "MQTT PUBACK 0x96: {text}"
        );
    }
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("reason=\"rate_limited\""),
        "refusals are counted"
    );
}

#[tokio::test]
async fn a_disabled_then_deleted_tenant_is_refused_and_purged() {
    let w = world().await;
    let s = &w.server;
    let (status, _) = s
        .post(
            Some(&w.device_b),
            "application/json",
            json!({"kind": "b", "value": 1}).to_string(),
        )
        .await;
    assert_eq!(status, 201);
    let (status, text) = call(
        s,
        Method::PATCH,
        "/api/v1/tenants/beta",
        Some(&w.admin_b),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 403, "only a system key disables tenants: {text}");
    assert_eq!(
        call(
            s,
            Method::PATCH,
            "/api/v1/tenants/beta",
            Some(&w.admin_a),
            Some(json!({"disabled": true}))
        )
        .await
        .0,
        200
    );
    let (status, body) = s
        .post(
            Some(&w.device_b),
            "application/json",
            json!({"value": 1}).to_string(),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tenant is disabled")
    );
    assert_eq!(
        call(s, Method::GET, "/api/v1/events", Some(&w.admin_b), None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(
            s,
            Method::PATCH,
            "/api/v1/tenants/beta",
            Some(&w.admin_a),
            Some(json!({"disabled": false}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(s, Method::GET, "/api/v1/events", Some(&w.admin_b), None)
            .await
            .0,
        200
    );

    assert_eq!(
        call(
            s,
            Method::DELETE,
            "/api/v1/tenants/default",
            Some(&w.admin_a),
            None
        )
        .await
        .0,
        400,
        "not its own tenant"
    );
    assert_eq!(
        call(
            s,
            Method::DELETE,
            "/api/v1/tenants/beta",
            Some(&w.admin_a),
            None
        )
        .await
        .0,
        202
    );
    assert_eq!(
        call(s, Method::GET, "/api/v1/events", Some(&w.admin_b), None)
            .await
            .0,
        401,
        "its keys die at once"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = call(s, Method::GET, "/api/v1/tenants", Some(&w.admin_a), None).await;
        let names: Vec<String> = serde_json::from_str::<Value>(&text).unwrap()["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        if names == ["default"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the purge did not finish: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The name is free again, and the new tenant starts empty, with the built-in dashboard.
    let (status, text) = call(
        s,
        Method::POST,
        "/api/v1/tenants",
        Some(&w.admin_a),
        Some(json!({"name": "beta"})),
    )
    .await;
    assert_eq!(status, 201);
    let key = serde_json::from_str::<Value>(&text).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, text) = call(
        s,
        Method::GET,
        "/api/v1/events?total=true",
        Some(&key),
        None,
    )
    .await;
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["total"], 0);
    let (_, text) = call(s, Method::GET, "/api/v1/dashboards", Some(&key), None).await;
    assert!(text.contains("fleet-overview"), "{text}");
}
