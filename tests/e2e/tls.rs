//! TLS on HTTP and MQTT with the certificate of `ingot cert self-signed`: round trips with
//! curl, mosquitto_pub (`--cafile`) and paho-mqtt, and the plain listeners turned off.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{Server, run_cli, tool};

/// curl with the development CA; returns (HTTP status, body). A TLS failure is status 0.
fn curl(ca: Option<&Path>, args: &[&str]) -> (u16, String) {
    let mut command = Command::new("curl");
    command.args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"]);
    if let Some(ca) = ca {
        command.arg("--cacert").arg(ca);
    }
    let out = command.args(args).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

const PAHO_PUBLISH: &str = r#"
import json, sys
import paho.mqtt.client as mqtt
port, user, password, ca, topic, payload = sys.argv[1:7]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
client.username_pw_set(user, password)
client.tls_set(ca_certs=ca)
client.connect("127.0.0.1", int(port))
client.loop_start()
info = client.publish(topic, payload, qos=1)
info.wait_for_publish(timeout=10)
print(json.dumps({"published": info.is_published(), "rc": int(info.rc)}))
client.disconnect()
client.loop_stop()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_mosquitto_and_paho_round_trip_over_tls_with_a_self_signed_certificate() {
    let (Some(_), Some(pub_tool), Some(python)) = (
        tool(&["curl"]),
        tool(&["mosquitto_pub"]),
        tool(&["python3"]),
    ) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let certs = work.path().join("tls");
    let (code, out, err) = run_cli(
        &["cert", "self-signed", "--out", certs.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (cert, key) = (certs.join("cert.pem"), certs.join("key.pem"));
    assert!(out.contains(cert.to_str().unwrap()), "{out}");
    let config = work.path().join("ingot.toml");
    std::fs::write(&config, "[mqtt]\ntls_addr = \"127.0.0.1:0\"\n").unwrap();
    let server = Server::start(
        &work.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--plain=false",
        ],
    )
    .await;
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let banner = server.stdout.lock().unwrap().clone();
    assert!(
        !banner.contains("mqtt://"),
        "no plain MQTT listener: {banner}"
    );
    let mqtts = server
        .mqtt_tls
        .expect("an MQTT TLS listener")
        .port()
        .to_string();
    let admin = format!("Authorization: Bearer {}", server.admin_key());

    // curl: trusted with --cacert, refused without it, and plain HTTP gets no answer.
    let (status, body) = curl(Some(&cert), &["-H", &admin, &server.url("/readyz")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        curl(None, &[&server.url("/readyz")]).0,
        0,
        "untrusted certificate"
    );
    let plain = server.base.replace("https://", "http://");
    assert_ne!(curl(None, &[&format!("{plain}/readyz")]).0, 200);
    let (status, body) = curl(
        Some(&cert),
        &[
            "-X",
            "POST",
            "-H",
            &admin,
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"name": "probe-7"}"#,
            &server.url("/api/v1/devices"),
        ],
    );
    assert_eq!(status, 201, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let (status, body) = curl(
        Some(&cert),
        &[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"kind": "temperature", "value": 1}"#,
            &server.url("/api/v1/events"),
        ],
    );
    assert_eq!(status, 201, "{body}");

    // mosquitto_pub with --cafile, in both protocol versions.
    for (version, value) in [("mqttv311", 2), ("mqttv5", 3)] {
        let out = Command::new(&pub_tool)
            .args(["-h", "127.0.0.1", "-p", &mqtts, "-V", version, "--cafile"])
            .arg(&cert)
            .args(["-u", "probe-7", "-P", &token, "-q", "1"])
            .args(["-t", "ingot/probe-7/events"])
            .args([
                "-m",
                &format!(r#"{{"kind": "temperature", "value": {value}}}"#),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{version}: {out:?}");
    }
    // Without the CA, the broker's certificate is refused by the client.
    let untrusted = Command::new(&pub_tool)
        .args(["-h", "127.0.0.1", "-p", &mqtts, "--capath", "/nonexistent"])
        .args(["-u", "probe-7", "-P", &token, "-q", "1"])
        .args(["-t", "ingot/probe-7/events", "-m", "{}"])
        .output()
        .unwrap();
    assert!(!untrusted.status.success());

    // paho-mqtt with tls_set(ca_certs=...).
    let paho = Command::new(&python)
        .args(["-c", PAHO_PUBLISH, &mqtts, "probe-7", &token])
        .arg(&cert)
        .args([
            "ingot/probe-7/events",
            r#"{"kind": "temperature", "value": 4}"#,
        ])
        .output()
        .unwrap();
    assert!(
        paho.status.success(),
        "paho-mqtt (pip install paho-mqtt): {}",
        String::from_utf8_lossy(&paho.stderr)
    );
    let report: Value = serde_json::from_slice(&paho.stdout).unwrap();
    assert_eq!(report["published"], true, "{report}");

    // All four are stored, read back over HTTPS.
    let mut values = Vec::new();
    for _ in 0..100 {
        let (status, body) = curl(
            Some(&cert),
            &["-H", &admin, &server.url("/api/v1/events?device=probe-7")],
        );
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        values = answer["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["value"].as_f64())
            .collect();
        if values.len() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [1.0, 2.0, 3.0, 4.0]);
    server.stop().await;
}

#[test]
fn tls_settings_are_checked_before_anything_starts() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let (code, _, err) = run_cli(
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--plain=false",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("plain_listeners"), "{err}");
    let (code, _, err) = run_cli(
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
            "--http-addr",
            "127.0.0.1:0",
            "--coap-addr",
            "127.0.0.1:0",
            "--mqtt-addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}
