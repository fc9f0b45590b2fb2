//! Decodes arbitrary bytes as a stream of MQTT packets, in both protocol versions and
//! with a small and a large maximum packet size. Decoding must never panic; every packet
//! it accepts must re-encode, and decode again to the same packet.

#![no_main]

use bytes::BytesMut;
use ingot_codec_mqtt::{MAX_PACKET_SIZE, Version, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for version in [Version::V311, Version::V5] {
        for max in [256, MAX_PACKET_SIZE] {
            let mut buf = BytesMut::from(data);
            // Each decoded packet consumes at least two bytes, so this ends.
            while let Ok(Some(packet)) = decode(&mut buf, version, max) {
                let mut out = BytesMut::new();
                // A CONNECT re-encodes in its own version; other packets in `version`.
                let again_version = match &packet {
                    ingot_codec_mqtt::Packet::Connect(c) => c.version,
                    _ => version,
                };
                packet
                    .encode(version, &mut out)
                    .expect("a decoded packet encodes");
                let again = decode(&mut out, again_version, MAX_PACKET_SIZE)
                    .expect("an encoded packet decodes")
                    .expect("a whole packet");
                assert_eq!(again, packet, "round trip");
                assert!(out.is_empty(), "exactly one packet");
            }
        }
    }
});
