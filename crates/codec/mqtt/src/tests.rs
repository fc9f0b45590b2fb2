//! Property tests: every packet type round-trips in both versions, any prefix of a packet
//! is "incomplete", and arbitrary bytes never panic. Plus byte-exact known packets.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::properties::PropertyContext as C;
use crate::*;

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    proptest::option::of(0u8..=1)
}

fn sub_id() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..200, 1u32..=MAX_VARINT]
}

/// Properties holding only what `ctx` allows (and only valid values), so a round trip must
/// give them back unchanged.
fn properties(ctx: C) -> BoxedStrategy<Properties> {
    let allowed = move |id: u32| crate::properties::allowed(id, ctx);
    let a = (
        flag(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(blob()),
        vec(sub_id(), 0..3),
        proptest::option::of(any::<u32>()),
        proptest::option::of(text()),
        proptest::option::of(any::<u16>()),
    );
    let b = (
        proptest::option::of(text()),
        proptest::option::of(blob()),
        flag(),
        proptest::option::of(any::<u32>()),
        flag(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(1u16..),
    );
    let c = (
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u16>()),
        flag(),
        flag(),
        vec((text(), text()), 0..3),
        proptest::option::of(1u32..),
        flag(),
        flag(),
        flag(),
    );
    (a, b, c)
        .prop_map(move |(a, b, c)| {
            let keep = |id: u32| allowed(id);
            let mut p = Properties {
                payload_format_indicator: a.0.filter(|_| keep(0x01)),
                message_expiry_interval: a.1.filter(|_| keep(0x02)),
                content_type: a.2.filter(|_| keep(0x03)),
                response_topic: a.3.filter(|_| keep(0x08)),
                correlation_data: a.4.filter(|_| keep(0x09)),
                subscription_identifiers: if keep(0x0B) { a.5 } else { Vec::new() },
                session_expiry_interval: a.6.filter(|_| keep(0x11)),
                assigned_client_identifier: a.7.filter(|_| keep(0x12)),
                server_keep_alive: a.8.filter(|_| keep(0x13)),
                authentication_method: b.0.filter(|_| keep(0x15)),
                authentication_data: b.1.filter(|_| keep(0x16)),
                request_problem_information: b.2.filter(|_| keep(0x17)),
                will_delay_interval: b.3.filter(|_| keep(0x18)),
                request_response_information: b.4.filter(|_| keep(0x19)),
                response_information: b.5.filter(|_| keep(0x1A)),
                server_reference: b.6.filter(|_| keep(0x1C)),
                reason_string: b.7.filter(|_| keep(0x1F)),
                receive_maximum: b.8.filter(|_| keep(0x21)),
                topic_alias_maximum: c.0.filter(|_| keep(0x22)),
                topic_alias: c.1.filter(|_| keep(0x23)),
                maximum_qos: c.2.filter(|_| keep(0x24)),
                retain_available: c.3.filter(|_| keep(0x25)),
                user_properties: c.4,
                maximum_packet_size: c.5.filter(|_| keep(0x27)),
                wildcard_subscription_available: c.6.filter(|_| keep(0x28)),
                subscription_identifier_available: c.7.filter(|_| keep(0x29)),
                shared_subscription_available: c.8.filter(|_| keep(0x2A)),
            };
            if ctx == C::Subscribe {
                p.subscription_identifiers.truncate(1);
            }
            p
        })
        .boxed()
}

fn props_for(version: Version, ctx: C) -> BoxedStrategy<Properties> {
    match version {
        Version::V5 => properties(ctx),
        Version::V311 => Just(Properties::default()).boxed(),
    }
}

fn pkid() -> impl Strategy<Value = u16> {
    1u16..
}

fn reason(version: Version) -> BoxedStrategy<ReasonCode> {
    match version {
        Version::V5 => any::<u8>().prop_map(ReasonCode).boxed(),
        Version::V311 => Just(ReasonCode::SUCCESS).boxed(),
    }
}

fn connect(version: Version) -> BoxedStrategy<Packet> {
    let will = (
        text(),
        blob(),
        qos(),
        any::<bool>(),
        props_for(version, C::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    (
        text(),
        any::<bool>(),
        any::<u16>(),
        proptest::option::of(text()),
        proptest::option::of(blob()),
        proptest::option::of(will),
        props_for(version, C::Connect),
    )
        .prop_map(
            move |(client_id, clean_start, keep_alive, username, password, will, properties)| {
                // MQTT 3.1.1 has no password without a user name.
                let password = match version {
                    Version::V311 if username.is_none() => None,
                    _ => password,
                };
                Packet::Connect(Box::new(Connect {
                    version,
                    client_id,
                    clean_start,
                    keep_alive,
                    username,
                    password,
                    will,
                    properties,
                }))
            },
        )
        .boxed()
}

fn packet(version: Version) -> BoxedStrategy<Packet> {
    let v5 = version == Version::V5;
    let connack_code = if v5 {
        any::<u8>().prop_map(ReasonCode).boxed()
    } else {
        prop_oneof![
            Just(ReasonCode::SUCCESS),
            Just(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
            Just(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
            Just(ReasonCode::SERVER_UNAVAILABLE),
            Just(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
            Just(ReasonCode::NOT_AUTHORIZED),
        ]
        .boxed()
    };
    let suback_code = if v5 {
        any::<u8>().prop_map(ReasonCode).boxed()
    } else {
        prop_oneof![
            Just(ReasonCode(0)),
            Just(ReasonCode(1)),
            Just(ReasonCode(2)),
            Just(ReasonCode(0x80)),
        ]
        .boxed()
    };
    let ack = (pkid(), reason(version), props_for(version, C::Ack))
        .prop_map(|(pkid, reason, properties)| Ack {
            pkid,
            reason,
            properties,
        })
        .boxed();
    let options = if v5 {
        (
            qos(),
            any::<bool>(),
            any::<bool>(),
            prop_oneof![
                Just(RetainHandling::SendAtSubscribe),
                Just(RetainHandling::SendIfNew),
                Just(RetainHandling::DoNotSend)
            ],
        )
            .prop_map(
                |(qos, no_local, retain_as_published, retain_handling)| SubscriptionOptions {
                    qos,
                    no_local,
                    retain_as_published,
                    retain_handling,
                },
            )
            .boxed()
    } else {
        qos().prop_map(SubscriptionOptions::qos).boxed()
    };
    let publish = (
        any::<bool>(),
        qos(),
        any::<bool>(),
        text(),
        pkid(),
        props_for(version, C::Publish),
        blob(),
    )
        .prop_map(|(dup, qos, retain, topic, pkid, properties, payload)| {
            let at_most_once = qos == QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && !at_most_once,
                qos,
                retain,
                topic,
                pkid: if at_most_once { 0 } else { pkid },
                properties,
                payload,
            })
        });
    prop_oneof![
        connect(version),
        (any::<bool>(), connack_code, props_for(version, C::ConnAck)).prop_map(
            |(session_present, code, properties)| Packet::ConnAck(ConnAck {
                session_present,
                code,
                properties
            })
        ),
        publish,
        ack.clone().prop_map(Packet::PubAck),
        ack.clone().prop_map(Packet::PubRec),
        ack.clone().prop_map(Packet::PubRel),
        ack.prop_map(Packet::PubComp),
        (
            pkid(),
            props_for(version, C::Subscribe),
            vec(
                (text(), options).prop_map(|(filter, options)| SubscribeFilter { filter, options }),
                1..4
            )
        )
            .prop_map(|(pkid, properties, filters)| Packet::Subscribe(Subscribe {
                pkid,
                properties,
                filters
            })),
        (
            pkid(),
            props_for(version, C::SubAck),
            vec(suback_code, 0..4)
        )
            .prop_map(|(pkid, properties, codes)| Packet::SubAck(SubAck {
                pkid,
                properties,
                codes
            })),
        (
            pkid(),
            props_for(version, C::Unsubscribe),
            vec(text(), 1..4)
        )
            .prop_map(
                |(pkid, properties, filters)| Packet::Unsubscribe(Unsubscribe {
                    pkid,
                    properties,
                    filters
                })
            ),
        (
            pkid(),
            props_for(version, C::UnsubAck),
            vec(any::<u8>().prop_map(ReasonCode), 0..4)
        )
            .prop_map(move |(pkid, properties, codes)| Packet::UnsubAck(UnsubAck {
                pkid,
                properties,
                codes: if v5 { codes } else { Vec::new() },
            })),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        (reason(version), props_for(version, C::Disconnect))
            .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties })),
        (reason(version), props_for(version, C::Auth)).prop_map(move |(reason, properties)| {
            if v5 {
                Packet::Auth(Auth { reason, properties })
            } else {
                Packet::PingResp
            }
        }),
    ]
    .boxed()
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V311), Just(Version::V5)]
}

fn versioned_packet() -> impl Strategy<Value = (Version, Packet)> {
    version().prop_flat_map(|v| packet(v).prop_map(move |p| (v, p)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_packet_round_trips((version, packet) in versioned_packet()) {
        let mut buf = BytesMut::new();
        let size = packet.encode(version, &mut buf).unwrap();
        prop_assert_eq!(size, buf.len());
        let decoded = decode(&mut buf, version, MAX_PACKET_SIZE).unwrap();
        prop_assert_eq!(decoded, Some(packet));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn every_proper_prefix_is_incomplete((version, packet) in versioned_packet(), cut in any::<prop::sample::Index>()) {
        let mut buf = BytesMut::new();
        packet.encode(version, &mut buf).unwrap();
        let cut = cut.index(buf.len());
        prop_assert_eq!(check(&buf[..cut], MAX_PACKET_SIZE), Ok(None));
    }

    #[test]
    fn packets_back_to_back_decode_in_order((version, packets) in version().prop_flat_map(|v| vec(packet(v), 1..6).prop_map(move |p| (v, p)))) {
        let mut buf = BytesMut::new();
        for p in &packets {
            p.encode(version, &mut buf).unwrap();
        }
        for p in packets {
            prop_assert_eq!(decode(&mut buf, version, MAX_PACKET_SIZE).unwrap(), Some(p));
        }
        prop_assert_eq!(decode(&mut buf, version, MAX_PACKET_SIZE), Ok(None));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256), v5 in any::<bool>(), max in 2usize..512) {
        let version = if v5 { Version::V5 } else { Version::V311 };
        let mut buf = BytesMut::from(&bytes[..]);
        // Each successful decode consumes at least the 2-byte fixed header: bounded.
        for _ in 0..=bytes.len() {
            match decode(&mut buf, version, max) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn arbitrary_bodies_of_every_type_never_panic(kind in 0u8..16, flags in 0u8..16, body in vec(any::<u8>(), 0..128), v5 in any::<bool>()) {
        let version = if v5 { Version::V5 } else { Version::V311 };
        let header = FrameHeader { first_byte: (kind << 4) | flags, header_len: 2, remaining_len: body.len() };
        // Whatever the outcome, decoding must return.
        let outcome = parse(&header, Bytes::from(body), version);
        if let Ok(packet) = outcome {
            prop_assert_eq!(packet.packet_type(), kind);
        }
    }
}

#[test]
fn decodes_a_mosquitto_v311_connect_byte_for_byte() {
    // mosquitto_pub -V mqttv311 -i c1 -u dev -P pw -k 60
    let bytes: &[u8] = &[
        0x10, 0x17, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xC2, 0x00, 0x3C, 0x00, 0x02, b'c',
        b'1', 0x00, 0x03, b'd', b'e', b'v', 0x00, 0x02, b'p', b'w',
    ];
    let mut buf = BytesMut::from(bytes);
    let Some(Packet::Connect(c)) = decode(&mut buf, Version::V5, 1024).unwrap() else {
        panic!("not a CONNECT");
    };
    assert_eq!(c.version, Version::V311);
    assert_eq!(c.client_id, "c1");
    assert!(c.clean_start);
    assert_eq!(c.keep_alive, 60);
    assert_eq!(c.username.as_deref(), Some("dev"));
    assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
    let mut out = BytesMut::new();
    Packet::Connect(c).encode(Version::V311, &mut out).unwrap();
    assert_eq!(&out[..], bytes, "re-encodes to the same bytes");
}

#[test]
fn v5_short_acks_and_disconnects() {
    // PUBACK pkid 7 with no reason code: success.
    let mut buf = BytesMut::from(&[0x40, 0x02, 0x00, 0x07][..]);
    assert_eq!(
        decode(&mut buf, Version::V5, 64).unwrap(),
        Some(Packet::PubAck(Ack::new(7)))
    );
    // DISCONNECT with nothing: normal disconnection.
    let mut buf = BytesMut::from(&[0xE0, 0x00][..]);
    assert_eq!(
        decode(&mut buf, Version::V5, 64).unwrap(),
        Some(Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS)))
    );
    // PUBACK 0x99 with a reason string.
    let ack = Ack {
        pkid: 1,
        reason: ReasonCode::PAYLOAD_FORMAT_INVALID,
        properties: Properties {
            reason_string: Some("bad".into()),
            ..Properties::default()
        },
    };
    let mut out = BytesMut::new();
    Packet::PubAck(ack).encode(Version::V5, &mut out).unwrap();
    assert_eq!(
        &out[..],
        &[
            0x40, 0x0A, 0x00, 0x01, 0x99, 0x06, 0x1F, 0x00, 0x03, b'b', b'a', b'd'
        ]
    );
}

#[test]
fn malformed_and_oversized_frames_are_refused_with_their_reason() {
    // PUBLISH with QoS 3.
    let mut buf = BytesMut::from(&[0x36, 0x03, 0x00, 0x01, b'a'][..]);
    let e = decode(&mut buf, Version::V5, 64).unwrap_err();
    assert_eq!(e.reason_code(), ReasonCode::MALFORMED_PACKET);
    // SUBSCRIBE with wrong fixed-header flags.
    let mut buf = BytesMut::from(&[0x80, 0x02, 0x00, 0x01][..]);
    assert!(matches!(
        decode(&mut buf, Version::V311, 64),
        Err(DecodeError::Malformed(_))
    ));
    // A 1 MiB PUBLISH refused from its first four bytes.
    let e = check(&[0x30, 0x80, 0x80, 0x40], 1024).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TooLarge {
            size: 1_048_580,
            max: 1024
        }
    );
    assert_eq!(e.reason_code(), ReasonCode::PACKET_TOO_LARGE);
    // Five remaining-length bytes.
    assert!(matches!(
        check(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], usize::MAX),
        Err(DecodeError::Malformed(_))
    ));
    // MQTT 3.1 (MQIsdp, level 3) is not spoken.
    let mut out = BytesMut::from(
        &[
            0x10, 0x0E, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C,
            0x00, 0x00,
        ][..],
    );
    assert_eq!(
        decode(&mut out, Version::V311, 64),
        Err(DecodeError::UnsupportedVersion { level: 3 })
    );
    // Trailing garbage after PINGREQ.
    let mut buf = BytesMut::from(&[0xC0, 0x01, 0x00][..]);
    assert!(matches!(
        decode(&mut buf, Version::V5, 64),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn v311_maps_connack_and_suback_codes() {
    let mut out = BytesMut::new();
    Packet::ConnAck(ConnAck {
        session_present: false,
        code: ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        properties: Properties::default(),
    })
    .encode(Version::V311, &mut out)
    .unwrap();
    assert_eq!(&out[..], &[0x20, 0x02, 0x00, 0x04]);
    let mut out = BytesMut::new();
    Packet::SubAck(SubAck {
        pkid: 1,
        properties: Properties::default(),
        codes: vec![ReasonCode(1), ReasonCode::NOT_AUTHORIZED],
    })
    .encode(Version::V311, &mut out)
    .unwrap();
    assert_eq!(&out[..], &[0x90, 0x04, 0x00, 0x01, 0x01, 0x80]);
}

#[test]
fn encoding_failures_write_nothing() {
    let mut out = BytesMut::from(&b"keep"[..]);
    let e = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t".into(),
        pkid: 0,
        properties: Properties::default(),
        payload: Bytes::new(),
    })
    .encode(Version::V5, &mut out);
    assert!(e.is_err());
    assert_eq!(&out[..], b"keep");
    let long = "x".repeat(70_000);
    let e = Packet::Unsubscribe(Unsubscribe {
        pkid: 1,
        properties: Properties::default(),
        filters: vec![long],
    })
    .encode(Version::V311, &mut out);
    assert!(matches!(e, Err(EncodeError::FieldTooLong { .. })));
    assert_eq!(&out[..], b"keep");
}
