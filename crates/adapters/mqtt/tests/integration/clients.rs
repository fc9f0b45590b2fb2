//! Stock clients against the endpoint: `mosquitto_pub` / `mosquitto_sub` (Debian
//! `mosquitto-clients`) and Eclipse Paho (`paho-mqtt` on PyPI), MQTT 3.1.1 and 5.

use std::time::{Duration, Instant};

use ingot_codec_mqtt::{ReasonCode, Version};
use ingot_store::Role;
use serde_json::{Value, json};

use crate::support::{
    Background, Options, Server, have, mosquitto, paho, paho_background, report, run, self_signed,
};

const BOTH: [Version; 2] = [Version::V311, Version::V5];

fn level(version: Version) -> u8 {
    match version {
        Version::V311 => 3,
        Version::V5 => 5,
    }
}

fn mosquitto_clients() -> bool {
    have("mosquitto_pub") && have("mosquitto_sub")
}

fn lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn topics(report: &Value) -> Vec<String> {
    report["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["topic"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_qos_0_1_2_round_trip_into_the_store_and_to_subscribers() {
    if !mosquitto_clients() {
        return;
    }
    for version in BOTH {
        let server = Server::start().await;
        let token = server.device("probe-7").await;
        let reader = server.key(server.default_tenant, Role::Reader).await;
        let mut sub = mosquitto("mosquitto_sub", server.port, version);
        sub.args(["-u", "dashboard", "-P", &reader, "-t", "ingot/+/events/#"])
            .args(["-q", "2", "-C", "3", "-F", "%q %t %p"]);
        let sub = Background::spawn(sub);
        server.wait_subscribes(1).await;
        for qos in 0..3 {
            let mut publish = mosquitto("mosquitto_pub", server.port, version);
            publish
                .args([
                    "-u",
                    "probe-7",
                    "-P",
                    &token,
                    "-t",
                    "ingot/probe-7/events/t1",
                ])
                .args(["-q", &qos.to_string()])
                .args(["-m", &format!(r#"{{"kind":"temperature","value":{qos}}}"#)]);
            let out = run(publish, Duration::from_secs(10)).await;
            assert!(out.status.success(), "{version:?} qos {qos}: {out:?}");
        }
        let received = lines(&sub.output(Duration::from_secs(10)).await);
        let expected: Vec<String> = (0..3)
            .map(|q| format!(r#"{q} ingot/probe-7/events/t1 {{"kind":"temperature","value":{q}}}"#))
            .collect();
        assert_eq!(received, expected, "{version:?}: live telemetry");

        let events = server.wait_events(server.default_tenant, 3).await;
        assert_eq!(events.len(), 3, "{version:?}: {events:?}");
        let mut values: Vec<f64> = events.iter().filter_map(|e| e.value).collect();
        values.sort_by(f64::total_cmp);
        assert_eq!(values, vec![0.0, 1.0, 2.0]);
        for e in &events {
            assert_eq!(e.device, "probe-7");
            assert_eq!(e.sensor.as_deref(), Some("t1"), "sensor from the topic");
            assert_eq!(e.kind.as_deref(), Some("temperature"));
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_are_set_replaced_and_cleared() {
    if !mosquitto_clients() {
        return;
    }
    for version in BOTH {
        let server = Server::start().await;
        let token = server.device("probe-7").await;
        let reader = server.key(server.default_tenant, Role::Reader).await;
        let publish = |args: &[&str]| {
            let mut cmd = mosquitto("mosquitto_pub", server.port, version);
            cmd.args([
                "-u",
                "probe-7",
                "-P",
                &token,
                "-t",
                "ingot/probe-7/status",
                "-q",
                "1",
            ])
            .args(args);
            run(cmd, Duration::from_secs(10))
        };
        let latest = || {
            let mut cmd = mosquitto("mosquitto_sub", server.port, version);
            cmd.args(["-u", "r", "-P", &reader, "-t", "ingot/+/status", "-C", "1"])
                .args(["-W", "2", "-F", "%r %t %p"]);
            run(cmd, Duration::from_secs(10))
        };
        assert!(publish(&["-r", "-m", "online"]).await.status.success());
        assert_eq!(
            lines(&latest().await),
            vec!["1 ingot/probe-7/status online"]
        );
        assert!(publish(&["-r", "-m", "sleeping"]).await.status.success());
        assert_eq!(
            lines(&latest().await),
            vec!["1 ingot/probe-7/status sleeping"],
            "{version:?}: replaced"
        );
        assert!(publish(&["-r", "-n"]).await.status.success());
        assert!(
            lines(&latest().await).is_empty(),
            "{version:?}: cleared by an empty payload"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_will_is_published_when_a_client_vanishes() {
    if !mosquitto_clients() {
        return;
    }
    for version in BOTH {
        let server = Server::start().await;
        let token = server.device("probe-7").await;
        let reader = server.key(server.default_tenant, Role::Reader).await;
        let mut watch = mosquitto("mosquitto_sub", server.port, version);
        watch
            .args(["-u", "r", "-P", &reader, "-t", "ingot/probe-7/status"])
            .args(["-C", "1", "-F", "%t %p"]);
        let watcher = Background::spawn(watch);
        let mut victim = mosquitto("mosquitto_sub", server.port, version);
        victim
            .args([
                "-u",
                "probe-7",
                "-P",
                &token,
                "-t",
                "ingot/probe-7/commands",
            ])
            .args([
                "--will-topic",
                "ingot/probe-7/status",
                "--will-payload",
                "gone",
            ]);
        let mut victim = Background::spawn(victim);
        server.wait_subscribes(2).await;
        victim.kill();
        let seen = lines(&watcher.output(Duration::from_secs(10)).await);
        assert_eq!(seen, vec!["ingot/probe-7/status gone"], "{version:?}");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_will_waits_for_its_delay_and_a_clean_disconnect_sends_none() {
    if !have("paho") {
        return;
    }
    let server = Server::start().await;
    let token = server.device("probe-7").await;
    let reader = server.key(server.default_tenant, Role::Reader).await;
    let watcher = paho_background(json!({
        "port": server.port, "username": "r", "password": reader,
        "subscribe": [["ingot/probe-7/status", 1]], "expect": 1, "timeout": 8,
    }));
    server.wait_subscribes(1).await;
    // A clean DISCONNECT: no will.
    let polite = paho(json!({
        "port": server.port, "client_id": "polite", "username": "probe-7", "password": token,
        "will": {"topic": "ingot/probe-7/status", "payload": "polite-gone"},
    }))
    .await;
    assert_eq!(polite["connack"], 0);
    // Vanishing with a will delay of 1 s: published after the delay.
    let vanished = Instant::now();
    let victim = paho(json!({
        "port": server.port, "client_id": "victim", "username": "probe-7", "password": token,
        "session_expiry": 30, "leave": "abrupt",
        "will": {"topic": "ingot/probe-7/status", "payload": "gone", "delay": 1},
    }))
    .await;
    assert_eq!(victim["connack"], 0);
    let seen = report(&watcher.output(Duration::from_secs(10)).await);
    let waited = vanished.elapsed();
    assert_eq!(topics(&seen), vec!["ingot/probe-7/status"]);
    assert_eq!(seen["messages"][0]["payload"], "gone", "not the polite one");
    assert!(
        waited >= Duration::from_millis(900),
        "waited only {waited:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_sessions_queue_qos1_commands_while_the_device_is_away() {
    if !have("paho") {
        return;
    }
    for version in BOTH {
        let server = Server::start().await;
        let token = server.device("probe-7").await;
        let writer = server.key(server.default_tenant, Role::Writer).await;
        let device = |extra: Value| {
            let mut spec = json!({
                "version": level(version), "port": server.port, "client_id": "probe-7-cmd",
                "username": "probe-7", "password": token, "clean": false, "session_expiry": 300,
            });
            if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
                spec.extend(extra.clone());
            }
            paho(spec)
        };
        let first = device(json!({"subscribe": [["ingot/probe-7/commands/#", 1]]})).await;
        assert_eq!(first["suback"], json!([1]), "{version:?}: {first}");
        let sent = paho(json!({
            "version": level(version), "port": server.port, "username": "ops", "password": writer,
            "publish": [
                {"topic": "ingot/probe-7/commands/reboot", "payload": "1", "qos": 1},
                {"topic": "ingot/probe-7/commands/reboot", "payload": "2", "qos": 1},
                {"topic": "ingot/probe-7/commands/led", "payload": "3", "qos": 1},
            ],
        }))
        .await;
        assert_eq!(
            sent["published"],
            json!([{"rc": 0, "reason": null}, {"rc": 0, "reason": null}, {"rc": 0, "reason": null}]),
            "{version:?}"
        );
        let back = device(json!({"expect": 3})).await;
        assert_eq!(back["session_present"], true, "{version:?}: {back}");
        let payloads: Vec<&str> = back["messages"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["payload"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            payloads,
            vec!["1", "2", "3"],
            "{version:?}: queued in order"
        );
        // A clean start discards the session.
        let fresh = device(json!({"clean": true})).await;
        assert_eq!(fresh["session_present"], false, "{version:?}");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_dollar_topics_and_overlapping_subscriptions() {
    if !have("paho") {
        return;
    }
    for version in BOTH {
        let server = Server::start().await;
        let writer = server.key(server.default_tenant, Role::Writer).await;
        let reader = server.key(server.default_tenant, Role::Reader).await;
        let sub = |filters: Value, expect: usize| {
            paho_background(json!({
                "version": level(version), "port": server.port, "username": "r",
                "password": reader, "subscribe": filters, "expect": expect,
                "collect_timeout": 3,
            }))
        };
        let everything = sub(json!([["#", 1]]), 3);
        let overlapping = sub(json!([["a/+", 0], ["a/#", 1], ["+/x", 1]]), 2);
        server.wait_subscribes(2).await;
        let sent = paho(json!({
            "version": level(version), "port": server.port, "username": "w", "password": writer,
            "publish": [
                {"topic": "a/b", "payload": "1", "qos": 1},
                {"topic": "$app/x", "payload": "2", "qos": 1},
                {"topic": "c", "payload": "3", "qos": 1},
                {"topic": "done", "payload": "4", "qos": 1},
            ],
        }))
        .await;
        assert_eq!(sent["published"].as_array().map(Vec::len), Some(4));
        let everything = report(&everything.output(Duration::from_secs(10)).await);
        assert_eq!(
            topics(&everything),
            vec!["a/b", "c", "done"],
            "{version:?}: # does not match $app/x"
        );
        let overlapping = report(&overlapping.output(Duration::from_secs(10)).await);
        assert_eq!(
            topics(&overlapping),
            vec!["a/b"],
            "{version:?}: once, and +/x does not match $app/x"
        );
        assert_eq!(
            overlapping["messages"][0]["qos"], 1,
            "{version:?}: the highest QoS"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscriptions_split_the_messages_between_members() {
    if !have("paho") {
        return;
    }
    for version in BOTH {
        let server = Server::start().await;
        let token = server.device("probe-7").await;
        let reader = server.key(server.default_tenant, Role::Reader).await;
        let member = || {
            paho_background(json!({
                "version": level(version), "port": server.port, "username": "r",
                "password": reader, "subscribe": [["$share/workers/ingot/+/events", 1]],
                "expect": 10, "collect_timeout": 3,
            }))
        };
        let (a, b) = (member(), member());
        server.wait_subscribes(2).await;
        let publishes: Vec<Value> = (0..10)
            .map(|i| json!({"topic": "ingot/probe-7/events", "payload": format!("{{\"value\":{i}}}"), "qos": 1}))
            .collect();
        let sent = paho(json!({
            "version": level(version), "port": server.port, "username": "probe-7",
            "password": token, "publish": publishes,
        }))
        .await;
        assert_eq!(sent["published"].as_array().map(Vec::len), Some(10));
        let a = report(&a.output(Duration::from_secs(10)).await);
        let b = report(&b.output(Duration::from_secs(10)).await);
        let (na, nb) = (topics(&a).len(), topics(&b).len());
        assert_eq!(na + nb, 10, "{version:?}: each message to one member");
        assert!(
            na > 0 && nb > 0,
            "{version:?}: both members served ({na}/{nb})"
        );
        assert_eq!(
            server.wait_events(server.default_tenant, 10).await.len(),
            10
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_credentials_are_refused() {
    if !mosquitto_clients() {
        return;
    }
    for version in BOTH {
        let server = Server::start().await;
        let token = server.device("probe-7").await;
        let attempt = |user: &str, password: Option<&str>| {
            let mut cmd = mosquitto("mosquitto_pub", server.port, version);
            cmd.args([
                "-u",
                user,
                "-t",
                "ingot/probe-7/events",
                "-m",
                r#"{"value":1}"#,
            ]);
            if let Some(p) = password {
                cmd.args(["-P", p]);
            }
            run(cmd, Duration::from_secs(10))
        };
        let wrong = attempt("probe-7", Some("idt_not-a-real-token")).await;
        assert!(!wrong.status.success(), "{version:?}");
        let text = String::from_utf8_lossy(&wrong.stderr).to_lowercase();
        assert!(
            text.contains("bad user name or password"),
            "{version:?}: {text}"
        );
        let other_device = attempt("probe-8", Some(&token)).await;
        assert!(
            !other_device.status.success(),
            "{version:?}: user name ≠ device"
        );
        let missing = attempt("probe-7", None).await;
        assert!(!missing.status.success(), "{version:?}");
        let text = String::from_utf8_lossy(&missing.stderr).to_lowercase();
        assert!(text.contains("not authori"), "{version:?}: {text}");
        assert!(
            server
                .metrics
                .refusals(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
                >= 2
        );
        assert!(server.events(server.default_tenant).await.is_empty());
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_refused_outside_its_namespace() {
    if !have("paho") {
        return;
    }
    for version in BOTH {
        let server = Server::start().await;
        let token = server.device("probe-7").await;
        server.device("probe-8").await;
        let out = paho(json!({
            "version": level(version), "port": server.port, "username": "probe-7",
            "password": token, "subscribe": [["ingot/probe-8/commands", 1]],
            "publish": [{"topic": "ingot/probe-8/events", "payload": "{\"value\":1}", "qos": 1}],
        }))
        .await;
        match version {
            Version::V5 => {
                assert_eq!(out["suback"], json!([0x87]), "{out}");
                assert_eq!(out["published"][0]["rc"], 0x87, "{out}");
                let reason = out["published"][0]["reason"].as_str().unwrap_or_default();
                assert!(
                    reason.contains("may publish only under ingot/probe-7/"),
                    "{reason}"
                );
            }
            Version::V311 => {
                assert_eq!(out["suback"], json!([0x80]), "{out}");
                assert_eq!(out["published"][0]["rc"], Value::Null, "never acknowledged");
                assert!(!out["disconnect"].is_null(), "disconnected: {out}");
            }
        }
        // Nothing of it was stored: a valid event after it is the only one.
        let ok = paho(json!({
            "version": level(version), "port": server.port, "username": "probe-7",
            "password": token,
            "publish": [{"topic": "ingot/probe-7/events", "payload": "{\"value\":2}", "qos": 1}],
        }))
        .await;
        assert_eq!(ok["published"][0]["rc"], 0);
        let events = server.wait_events(server.default_tenant, 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let events_after = server.events(server.default_tenant).await;
        assert_eq!(events_after.len(), 1, "{version:?}: {events:?}");
        assert_eq!(events_after[0].device, "probe-7");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_payload_is_refused_with_0x99_or_a_disconnect_and_nothing_is_stored() {
    if !have("paho") || !mosquitto_clients() {
        return;
    }
    for version in BOTH {
        let server = Server::start().await;
        let token = server.device("probe-7").await;
        let out = paho(json!({
            "version": level(version), "port": server.port, "username": "probe-7",
            "password": token,
            "publish": [
                {"topic": "ingot/probe-7/events", "payload": "{\"value\": \"hot\"}", "qos": 1},
                {"topic": "ingot/probe-7/events", "payload": "{\"value\": 20.5}", "qos": 1},
            ],
        }))
        .await;
        let expected_events = match version {
            Version::V5 => {
                assert_eq!(out["published"][0]["rc"], 0x99, "{out}");
                let reason = out["published"][0]["reason"].as_str().unwrap_or_default();
                assert!(
                    reason.contains("field `value` must be a number"),
                    "the HTTP API's message: {reason}"
                );
                assert_eq!(
                    out["published"][1]["rc"], 0,
                    "the connection goes on: {out}"
                );
                1
            }
            Version::V311 => {
                assert_eq!(out["published"][0]["rc"], Value::Null, "{out}");
                assert!(!out["disconnect"].is_null(), "disconnected: {out}");
                0
            }
        };
        // mosquitto_pub too: a malformed document.
        let mut bad = mosquitto("mosquitto_pub", server.port, version);
        bad.args([
            "-u",
            "probe-7",
            "-P",
            &token,
            "-t",
            "ingot/probe-7/events/t1",
        ])
        .args(["-q", "1", "-m", "{not json"]);
        let _ = run(bad, Duration::from_secs(10)).await;
        let mut good = mosquitto("mosquitto_pub", server.port, version);
        good.args([
            "-u",
            "probe-7",
            "-P",
            &token,
            "-t",
            "ingot/probe-7/events/t1",
        ])
        .args(["-q", "1", "-m", r#"{"value": 7}"#]);
        assert!(run(good, Duration::from_secs(10)).await.status.success());
        server
            .wait_events(server.default_tenant, expected_events + 1)
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let events = server.events(server.default_tenant).await;
        assert_eq!(events.len(), expected_events + 1, "{version:?}: {events:?}");
        assert!(events.iter().all(|e| e.value.is_some_and(|v| v > 1.0)));
        assert!(server.metrics.refusals(ReasonCode::PAYLOAD_FORMAT_INVALID) >= 2);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_with_mosquitto_pub_cafile() {
    if !mosquitto_clients() || !have("openssl") {
        return;
    }
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, key) = self_signed(certs.path()).expect("self-signed certificate");
    let server = Server::start_with(Options {
        tls: Some((cert.clone(), key)),
        ..Options::default()
    })
    .await;
    let token = server.device("probe-7").await;
    let tls_port = server.tls_addr.map(|a| a.port()).expect("tls listener");
    for (n, version) in BOTH.into_iter().enumerate() {
        let mut publish = mosquitto("mosquitto_pub", tls_port, version);
        publish
            .arg("--cafile")
            .arg(&cert)
            .args([
                "-u",
                "probe-7",
                "-P",
                &token,
                "-t",
                "ingot/probe-7/events",
                "-q",
                "1",
            ])
            .args(["-m", &format!(r#"{{"value":{n}}}"#)]);
        let out = run(publish, Duration::from_secs(10)).await;
        assert!(out.status.success(), "{version:?}: {out:?}");
    }
    assert_eq!(server.wait_events(server.default_tenant, 2).await.len(), 2);
    // Plain MQTT to the TLS port is not understood.
    let mut plain = mosquitto("mosquitto_pub", tls_port, Version::V311);
    plain.args([
        "-u",
        "probe-7",
        "-P",
        &token,
        "-t",
        "ingot/probe-7/events",
        "-m",
        "{}",
    ]);
    assert!(!run(plain, Duration::from_secs(10)).await.status.success());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_devices_write_into_the_default_tenant_only_when_allowed() {
    if !mosquitto_clients() {
        return;
    }
    let server = Server::start_with(Options {
        anonymous: true,
        ..Options::default()
    })
    .await;
    let mut free = mosquitto("mosquitto_pub", server.port, Version::V5);
    free.args([
        "-t",
        "ingot/probe-9/events",
        "-q",
        "1",
        "-m",
        r#"{"value":9}"#,
    ]);
    assert!(run(free, Duration::from_secs(10)).await.status.success());
    let mut pinned = mosquitto("mosquitto_pub", server.port, Version::V311);
    pinned.args([
        "-u",
        "probe-1",
        "-t",
        "ingot/probe-2/events",
        "-q",
        "1",
        "-m",
        "{}",
    ]);
    assert!(
        !run(pinned, Duration::from_secs(10)).await.status.success(),
        "a user name pins the device"
    );
    let events = server.wait_events(server.default_tenant, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].device, "probe-9");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_see_each_others_topics() {
    if !have("paho") {
        return;
    }
    let server = Server::start().await;
    let acme = server.tenant("acme").await;
    let acme_token = server.device_in(acme, "probe-7").await;
    let acme_reader = server.key(acme, Role::Reader).await;
    let default_reader = server.key(server.default_tenant, Role::Reader).await;
    let spy = paho_background(json!({
        "port": server.port, "username": "spy", "password": default_reader,
        "subscribe": [["#", 1]], "expect": 1, "collect_timeout": 2,
    }));
    let own = paho_background(json!({
        "port": server.port, "username": "own", "password": acme_reader,
        "subscribe": [["#", 1]], "expect": 1, "collect_timeout": 5,
    }));
    server.wait_subscribes(2).await;
    let sent = paho(json!({
        "port": server.port, "username": "probe-7", "password": acme_token,
        "publish": [{"topic": "ingot/probe-7/events", "payload": "{\"value\":1}", "qos": 1, "retain": true}],
    }))
    .await;
    assert_eq!(sent["published"][0]["rc"], 0);
    let own = report(&own.output(Duration::from_secs(10)).await);
    let spy = report(&spy.output(Duration::from_secs(10)).await);
    assert_eq!(topics(&own), vec!["ingot/probe-7/events"]);
    assert!(
        topics(&spy).is_empty(),
        "another tenant's reader saw it: {spy}"
    );
    assert_eq!(server.wait_events(acme, 1).await.len(), 1);
    assert!(server.events(server.default_tenant).await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_user_properties_and_subscription_identifiers_reach_subscribers() {
    if !have("paho") {
        return;
    }
    let server = Server::start().await;
    let writer = server.key(server.default_tenant, Role::Writer).await;
    let sub = paho_background(json!({
        "port": server.port, "username": "w", "password": writer, "sub_id": 42,
        "subscribe": [["ingot/+/commands", 1]], "expect": 1,
    }));
    server.wait_subscribes(1).await;
    let sent = paho(json!({
        "port": server.port, "username": "w", "password": writer,
        "publish": [{"topic": "ingot/probe-7/commands", "payload": "reboot", "qos": 1,
                     "user": [["origin", "ops"], ["ticket", "17"]]}],
    }))
    .await;
    assert_eq!(sent["published"][0]["rc"], 0);
    let got = report(&sub.output(Duration::from_secs(10)).await);
    assert_eq!(
        got["messages"][0]["user"],
        json!([["origin", "ops"], ["ticket", "17"]])
    );
    assert_eq!(got["messages"][0]["sub_ids"], json!([42]));
    server.stop().await;
}
