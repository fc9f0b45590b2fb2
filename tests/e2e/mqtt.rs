//! The MQTT broker of the real binary: stock clients, and acknowledged means durable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ingot_codec_mqtt::{Connect, Packet, Properties, Publish, QoS, ReasonCode, Version, decode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{Server, tool};

#[tokio::test]
async fn mosquitto_pub_events_are_stored() {
    let Some(pub_tool) = tool(&["mosquitto_pub"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let token = server.add_device("probe-7").await;
    let port = server.mqtt.port().to_string();
    for (version, value) in [("mqttv311", "21.5"), ("mqttv5", "22.5")] {
        let status = Command::new(&pub_tool)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-V",
                version,
                "-q",
                "1",
                "-i",
                &format!("probe-7-{version}"),
            ])
            .args([
                "-u",
                "probe-7",
                "-P",
                &token,
                "-t",
                "ingot/probe-7/events/probe1",
            ])
            .args([
                "-m",
                &format!("{{\"kind\":\"temperature\",\"value\":{value}}}"),
            ])
            .status()
            .unwrap();
        assert!(status.success(), "{version}");
    }
    let events = server.wait_for_events("device=probe-7", 2).await;
    let mut values: Vec<f64> = events
        .iter()
        .map(|e| e["value"].as_f64().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [21.5, 22.5]);
    assert!(
        events.iter().all(|e| e["sensor"] == "probe1"),
        "the sensor comes from the topic"
    );

    // Publishing under another device's topic is refused (v5: 0x87 in the PUBACK), nothing stored.
    let output = Command::new(&pub_tool)
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
            &token,
        ])
        .args(["-t", "ingot/probe-8/events", "-m", "{\"value\":1}", "-d"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("135") || text.to_lowercase().contains("not authorized"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.all_events("").await.len(), 2);
}

/// A minimal QoS 1 publisher on our codec: keeps `window` publishes in flight and records
/// which sequence numbers were acknowledged, until the connection dies or the bounds end.
async fn publish_until_dead(
    addr: SocketAddr,
    device: &str,
    token: &str,
    window: usize,
) -> Vec<u64> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut out = BytesMut::new();
    let connect = Connect {
        version: Version::V5,
        client_id: format!("{device}-durability"),
        clean_start: true,
        keep_alive: 30,
        username: Some(device.to_owned()),
        password: Some(Bytes::copy_from_slice(token.as_bytes())),
        will: None,
        properties: Properties::default(),
    };
    Packet::Connect(Box::new(connect))
        .encode(Version::V5, &mut out)
        .unwrap();
    stream.write_all(&out).await.unwrap();
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    // CONNACK.
    loop {
        if let Some(packet) = decode(&mut inbuf, Version::V5, 1 << 20).unwrap() {
            match packet {
                Packet::ConnAck(ack) => assert_eq!(ack.code, ReasonCode::SUCCESS),
                other => panic!("expected CONNACK, got {other:?}"),
            }
            break;
        }
        assert!(
            stream.read_buf(&mut inbuf).await.unwrap() > 0,
            "closed before CONNACK"
        );
    }
    let topic = format!("ingot/{device}/events");
    let mut in_flight: HashMap<u16, u64> = HashMap::new();
    let mut acked = Vec::new();
    let mut seq: u64 = 0;
    let mut pkid: u16 = 0;
    let started = Instant::now();
    // Bounded in count and time, whatever the server does.
    'run: while seq < 100_000 && started.elapsed() < Duration::from_secs(20) {
        out.clear();
        while in_flight.len() < window {
            pkid = pkid % u16::MAX + 1;
            let publish = Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: topic.clone(),
                pkid,
                properties: Properties::default(),
                payload: Bytes::from(format!("{{\"kind\":\"load\",\"value\":{seq}}}")),
            };
            Packet::Publish(publish)
                .encode(Version::V5, &mut out)
                .unwrap();
            in_flight.insert(pkid, seq);
            seq += 1;
        }
        if stream.write_all(&out).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(5), stream.read_buf(&mut inbuf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
        loop {
            match decode(&mut inbuf, Version::V5, 1 << 20) {
                Ok(Some(Packet::PubAck(ack))) => {
                    assert_eq!(ack.reason, ReasonCode::SUCCESS);
                    if let Some(s) = in_flight.remove(&ack.pkid) {
                        acked.push(s);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'run,
            }
        }
    }
    acked
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_mqtt_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]).await;
    let token = server.add_device("pub-1").await;
    let addr = server.mqtt;
    let publisher =
        tokio::spawn(async move { publish_until_dead(addr, "pub-1", &token, 64).await });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10)).await;
    let acked = publisher.await.unwrap();
    assert!(
        acked.len() > 100,
        "the publisher ran ({} acknowledged)",
        acked.len()
    );
    drop(server);

    let server = Server::start(dir.path(), &[]).await;
    // Wait until the store writer has replayed at least what was acknowledged, then read
    // once more so anything appended but unacknowledged is counted too.
    server.wait_for_events("kind=load", acked.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stored = server.all_events("kind=load").await;
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for e in &stored {
        *counts
            .entry(e["value"].as_f64().unwrap() as u64)
            .or_default() += 1;
    }
    assert!(counts.values().all(|n| *n == 1), "a message stored twice");
    let missing: Vec<&u64> = acked.iter().filter(|s| !counts.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}
