//! Protocol corner cases through a raw client on our codec: what stock clients never send.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ingot_adapter_mqtt::MqttConfig;
use ingot_codec_mqtt::{
    Ack, ConnAck, Connect, Disconnect, Packet, Properties, Publish, QoS, ReasonCode, Subscribe,
    SubscribeFilter, SubscriptionOptions, Version,
};
use ingot_store::Role;

use crate::support::{Options, Raw, Server};

fn connect(client_id: &str, user: &str, password: &str) -> Connect {
    Connect {
        version: Version::V5,
        client_id: client_id.into(),
        clean_start: true,
        keep_alive: 30,
        username: Some(user.into()),
        password: Some(Bytes::from(password.to_owned())),
        will: None,
        properties: Properties::default(),
    }
}

async fn login_with(addr: SocketAddr, version: Version, mut c: Connect) -> (Raw, ConnAck) {
    c.version = version;
    let mut raw = Raw::connect(addr, version).await;
    raw.send(Packet::Connect(Box::new(c))).await;
    match raw.recv().await {
        Some(Packet::ConnAck(ack)) => (raw, ack),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> Raw {
    let (raw, ack) = login_with(addr, Version::V5, connect("", user, password)).await;
    assert_eq!(ack.code, ReasonCode::SUCCESS, "{ack:?}");
    raw
}

fn publish(topic: &str, qos: QoS, pkid: u16, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        pkid,
        properties: Properties::default(),
        payload: Bytes::from_static(payload),
    })
}

fn subscribe(filter: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        pkid: 1,
        properties: Properties::default(),
        filters: vec![SubscribeFilter {
            filter: filter.into(),
            options: SubscriptionOptions::qos(qos),
        }],
    })
}

/// Reads until a DISCONNECT (returned) or the end of the connection (`None`).
async fn disconnect_reason(raw: &mut Raw) -> Option<ReasonCode> {
    for _ in 0..10_000 {
        match raw.recv().await? {
            Packet::Disconnect(d) => return Some(d.reason),
            _ => continue,
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_close_only_their_connection_with_the_right_reason() {
    let server = Server::start_with(Options {
        config: Some(MqttConfig {
            max_packet_size: 1024,
            ..MqttConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let key = server.key(server.default_tenant, Role::Writer).await;
    let mut bystander = login(server.addr, "b", &key).await;

    // A PUBLISH whose topic length runs past the packet: 0x81.
    let mut bad = login(server.addr, "w", &key).await;
    bad.send_bytes(&[0x30, 0x03, 0x00, 0x05, b'a']).await;
    assert_eq!(
        disconnect_reason(&mut bad).await,
        Some(ReasonCode::MALFORMED_PACKET)
    );
    assert!(bad.recv().await.is_none(), "then closed");

    // A second CONNECT: 0x82.
    let mut again = login(server.addr, "w", &key).await;
    again
        .send(Packet::Connect(Box::new(connect("x", "w", &key))))
        .await;
    assert_eq!(
        disconnect_reason(&mut again).await,
        Some(ReasonCode::PROTOCOL_ERROR)
    );

    // A 1 MiB PUBLISH announced against a 1 KiB limit: 0x95 from the header alone.
    let mut big = login(server.addr, "w", &key).await;
    big.send_bytes(&[0x30, 0x80, 0x80, 0x40]).await;
    assert_eq!(
        disconnect_reason(&mut big).await,
        Some(ReasonCode::PACKET_TOO_LARGE)
    );

    // MQTT 3.1.1: no DISCONNECT to send, the connection just closes.
    let (mut old, ack) = login_with(server.addr, Version::V311, connect("old", "w", &key)).await;
    assert_eq!(ack.code, ReasonCode::SUCCESS);
    old.send_bytes(&[0x36, 0x02, 0x00, 0x00]).await; // QoS 3
    assert!(old.recv().await.is_none());

    // Garbage instead of CONNECT, and an unsupported protocol level.
    let mut junk = Raw::connect(server.addr, Version::V5).await;
    junk.send_bytes(b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(junk.recv().await.is_none());
    let mut v31 = Raw::connect(server.addr, Version::V311).await;
    v31.send_bytes(&[
        0x10, 0x0E, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C, 0x00,
        0x00,
    ])
    .await;
    match v31.recv().await {
        Some(Packet::ConnAck(a)) => assert_eq!(a.code, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
        other => panic!("{other:?}"),
    }

    // The bystander never noticed.
    bystander.send(Packet::PingReq).await;
    assert_eq!(bystander.recv().await, Some(Packet::PingResp));
    assert!(server.metrics.refusals(ReasonCode::MALFORMED_PACKET) >= 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_disconnected_after_one_and_a_half_keep_alives() {
    let server = Server::start().await;
    let key = server.key(server.default_tenant, Role::Reader).await;
    let mut c = connect("sleepy", "r", &key);
    c.keep_alive = 1;
    let started = std::time::Instant::now();
    let (mut raw, ack) = login_with(server.addr, Version::V5, c).await;
    assert_eq!(ack.code, ReasonCode::SUCCESS);
    assert_eq!(
        disconnect_reason(&mut raw).await,
        Some(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_acknowledges_what_it_read_then_says_0x8b() {
    let server = Server::start().await;
    let token = server.device("probe-7").await;
    let mut raw = login(server.addr, "probe-7", &token).await;
    for pkid in 1..=50 {
        raw.send(publish(
            "ingot/probe-7/events",
            QoS::AtLeastOnce,
            pkid,
            br#"{"value":1}"#,
        ))
        .await;
    }
    server.cancel();
    let mut acked = 0;
    let mut last = None;
    while let Some(p) = raw.recv().await {
        match p {
            Packet::PubAck(a) => {
                assert_eq!(a.reason, ReasonCode::SUCCESS);
                acked += 1;
            }
            Packet::Disconnect(d) => last = Some(d.reason),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(last, Some(ReasonCode::SERVER_SHUTTING_DOWN));
    let tenant = server.default_tenant;
    let store = server.store.clone();
    server.join().await.expect("serve returns Ok");
    // Every acknowledged event is durable (and the writer stored them before stopping).
    let events = ingot_store::EventStore::list_events(
        &*store,
        tenant,
        &ingot_store::ListQuery {
            limit: 1000,
            ..Default::default()
        },
    )
    .await
    .expect("list")
    .events;
    assert!(
        events.len() >= acked,
        "{} stored, {acked} acked",
        events.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_is_ingested_exactly_once_despite_a_redelivery() {
    let server = Server::start().await;
    let token = server.device("probe-7").await;
    let mut raw = login(server.addr, "probe-7", &token).await;
    raw.send(publish(
        "ingot/probe-7/events",
        QoS::ExactlyOnce,
        7,
        br#"{"value":1}"#,
    ))
    .await;
    assert_eq!(raw.recv().await, Some(Packet::PubRec(Ack::new(7))));
    let Packet::Publish(mut again) = publish(
        "ingot/probe-7/events",
        QoS::ExactlyOnce,
        7,
        br#"{"value":1}"#,
    ) else {
        unreachable!()
    };
    again.dup = true;
    raw.send(Packet::Publish(again)).await;
    assert_eq!(raw.recv().await, Some(Packet::PubRec(Ack::new(7))));
    raw.send(Packet::PubRel(Ack::new(7))).await;
    assert_eq!(raw.recv().await, Some(Packet::PubComp(Ack::new(7))));
    raw.send(Packet::PubRel(Ack::new(7))).await;
    match raw.recv().await {
        Some(Packet::PubComp(a)) => {
            assert_eq!(a.reason, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
        }
        other => panic!("{other:?}"),
    }
    server.wait_events(server.default_tenant, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.events(server.default_tenant).await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_messages_are_redelivered_on_reconnect_with_dup() {
    let server = Server::start().await;
    let writer = server.key(server.default_tenant, Role::Writer).await;
    let mut c = connect("keeper", "w", &writer);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(60);
    let (mut sub, _) = login_with(server.addr, Version::V5, c.clone()).await;
    sub.send(subscribe("jobs/#", QoS::AtLeastOnce)).await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));
    let mut publisher = login(server.addr, "w", &writer).await;
    publisher
        .send(publish("jobs/1", QoS::AtLeastOnce, 1, b"work"))
        .await;
    assert_eq!(publisher.recv().await, Some(Packet::PubAck(Ack::new(1))));
    let Some(Packet::Publish(first)) = sub.recv().await else {
        panic!("no delivery")
    };
    assert!(!first.dup);
    drop(sub); // gone without PUBACK
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut back, ack) = login_with(server.addr, Version::V5, c).await;
    assert!(ack.session_present);
    let Some(Packet::Publish(again)) = back.recv().await else {
        panic!("no redelivery")
    };
    assert!(again.dup, "redelivered with DUP");
    assert_eq!(again.pkid, first.pkid, "with its packet id");
    assert_eq!(again.payload, first.payload);
    back.send(Packet::PubAck(Ack::new(again.pkid))).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_disconnected_with_0x97() {
    let server = Server::start_with(Options {
        config: Some(MqttConfig {
            max_inflight: 1,
            max_queued_messages: 5,
            ..MqttConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let writer = server.key(server.default_tenant, Role::Writer).await;
    let mut slow = login(server.addr, "s", &writer).await;
    slow.send(subscribe("load/#", QoS::AtLeastOnce)).await;
    assert!(matches!(slow.recv().await, Some(Packet::SubAck(_))));
    let mut publisher = login(server.addr, "w", &writer).await;
    for pkid in 1..=20 {
        publisher
            .send(publish("load/x", QoS::AtLeastOnce, pkid, b"m"))
            .await;
    }
    for _ in 1..=20 {
        assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));
    }
    // The consumer never acknowledges: one in flight, five queued, then it is dropped.
    assert_eq!(
        disconnect_reason(&mut slow).await,
        Some(ReasonCode::QUOTA_EXCEEDED)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_aliases_and_receive_maximum_are_enforced() {
    let server = Server::start_with(Options {
        config: Some(MqttConfig {
            receive_maximum: 2,
            max_topic_alias: 4,
            ..MqttConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let writer = server.key(server.default_tenant, Role::Writer).await;
    let mut sub = login(server.addr, "r", &writer).await;
    sub.send(subscribe("a/b", QoS::AtMostOnce)).await;
    assert!(matches!(sub.recv().await, Some(Packet::SubAck(_))));

    let (mut w, ack) = login_with(server.addr, Version::V5, connect("w", "w", &writer)).await;
    assert_eq!(ack.properties.topic_alias_maximum, Some(4));
    assert_eq!(ack.properties.receive_maximum, Some(2));
    let aliased = |topic: &str, alias: u16, payload: &'static [u8]| {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            pkid: 0,
            properties: Properties {
                topic_alias: Some(alias),
                ..Properties::default()
            },
            payload: Bytes::from_static(payload),
        })
    };
    w.send(aliased("a/b", 1, b"1")).await;
    w.send(aliased("", 1, b"2")).await;
    for expected in [&b"1"[..], b"2"] {
        match sub.recv().await {
            Some(Packet::Publish(p)) => {
                assert_eq!(p.topic, "a/b");
                assert_eq!(&p.payload[..], expected);
                assert_eq!(p.properties.topic_alias, None, "aliases are per connection");
            }
            other => panic!("{other:?}"),
        }
    }
    w.send(aliased("a/b", 5, b"3")).await;
    assert_eq!(
        disconnect_reason(&mut w).await,
        Some(ReasonCode::TOPIC_ALIAS_INVALID)
    );

    // Three QoS 1 publishes in one go against a Receive Maximum of 2.
    let mut greedy = login(server.addr, "w", &writer).await;
    let mut burst = bytes::BytesMut::new();
    for pkid in 1..=3 {
        publish("a/c", QoS::AtLeastOnce, pkid, b"x")
            .encode(Version::V5, &mut burst)
            .expect("encode");
    }
    greedy.send_bytes(&burst).await;
    assert_eq!(
        disconnect_reason(&mut greedy).await,
        Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_retained_messages_are_not_delivered() {
    let server = Server::start().await;
    let writer = server.key(server.default_tenant, Role::Writer).await;
    let mut w = login(server.addr, "w", &writer).await;
    for (topic, expiry) in [("news/short", Some(1)), ("news/long", None)] {
        w.send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: topic.into(),
            pkid: 1,
            properties: Properties {
                message_expiry_interval: expiry,
                ..Properties::default()
            },
            payload: Bytes::from_static(b"x"),
        }))
        .await;
        assert!(matches!(w.recv().await, Some(Packet::PubAck(_))));
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut late = login(server.addr, "r", &writer).await;
    late.send(subscribe("news/#", QoS::AtLeastOnce)).await;
    assert!(matches!(late.recv().await, Some(Packet::SubAck(_))));
    match late.recv().await {
        Some(Packet::Publish(p)) => {
            assert_eq!(p.topic, "news/long");
            assert!(p.retain);
        }
        other => panic!("{other:?}"),
    }
    late.send(Packet::PingReq).await;
    assert_eq!(
        late.recv().await,
        Some(Packet::PingResp),
        "news/short expired"
    );
    late.send(Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)))
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_and_the_clients_maximum_packet_size() {
    let server = Server::start().await;
    let writer = server.key(server.default_tenant, Role::Writer).await;
    let mut c = connect("small", "r", &writer);
    c.properties.maximum_packet_size = Some(64);
    let (mut small, _) = login_with(server.addr, Version::V5, c).await;
    small.send(subscribe("t/#", QoS::AtMostOnce)).await;
    assert!(matches!(small.recv().await, Some(Packet::SubAck(_))));
    let mut w = login(server.addr, "w", &writer).await;
    w.send(publish("t/big", QoS::AtMostOnce, 0, &[b'x'; 100]))
        .await;
    w.send(publish("t/small", QoS::AtMostOnce, 0, b"ok")).await;
    match small.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(p.topic, "t/small", "the big one was dropped"),
        other => panic!("{other:?}"),
    }
    let unsubscribe = |pkid| {
        Packet::Unsubscribe(ingot_codec_mqtt::Unsubscribe {
            pkid,
            properties: Properties::default(),
            filters: vec!["t/#".into()],
        })
    };
    small.send(unsubscribe(2)).await;
    match small.recv().await {
        Some(Packet::UnsubAck(u)) => assert_eq!(u.codes, vec![ReasonCode::SUCCESS]),
        other => panic!("{other:?}"),
    }
    small.send(unsubscribe(3)).await;
    match small.recv().await {
        Some(Packet::UnsubAck(u)) => {
            assert_eq!(u.codes, vec![ReasonCode::NO_SUBSCRIPTION_EXISTED])
        }
        other => panic!("{other:?}"),
    }
    // Routed before its PUBACK is sent: once acknowledged, a delivery would be queued.
    w.send(publish("t/small", QoS::AtLeastOnce, 1, b"again"))
        .await;
    assert_eq!(w.recv().await, Some(Packet::PubAck(Ack::new(1))));
    // A delivery queued before the first PINGREQ would be written right after its PINGRESP.
    small.send(Packet::PingReq).await;
    assert_eq!(small.recv().await, Some(Packet::PingResp));
    small.send(Packet::PingReq).await;
    assert_eq!(
        small.recv().await,
        Some(Packet::PingResp),
        "nothing delivered after unsubscribe"
    );
    server.stop().await;
}
