//! Decode and encode throughput of the MQTT codec on the packets of the ingest hot path.
//!
//! ```text
//! cargo bench -p ingot-codec-mqtt --bench decode
//! ```
//!
//! A read buffer of back-to-back QoS 1 PUBLISH packets with 100-byte JSON payloads (what a
//! pipelining device sends), decoded with `check` + `parse` as the broker does; then
//! PUBACK encoding, in MQTT 3.1.1 and 5. Each case runs for about a second. Prints a
//! markdown table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ingot_codec_mqtt::{Ack, MAX_PACKET_SIZE, Packet, Properties, Publish, QoS, Version, decode};

const PER_BUFFER: usize = 64;
const RUN: Duration = Duration::from_secs(1);

fn payload() -> Bytes {
    let json =
        br#"{"kind":"temperature","value":21.5,"data":{"battery":87,"rssi":-71,"fw":"1.2"}}"#;
    let mut p = json.to_vec();
    p.resize(100, b' ');
    Bytes::from(p)
}

fn buffer(version: Version) -> BytesMut {
    let mut buf = BytesMut::new();
    for pkid in 1..=PER_BUFFER as u16 {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "ingot/probe-7/events".into(),
            pkid,
            properties: Properties::default(),
            payload: payload(),
        })
        .encode(version, &mut buf)
        .expect("encode");
    }
    buf
}

fn rate(mut f: impl FnMut() -> usize) -> f64 {
    let started = Instant::now();
    let mut packets = 0;
    while started.elapsed() < RUN {
        packets += f();
    }
    packets as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    println!("| case | version | packets/s |\n|---|---|---|");
    for version in [Version::V311, Version::V5] {
        let template = buffer(version).freeze();
        let decoded = rate(|| {
            let mut buf = BytesMut::from(&template[..]);
            let mut n = 0;
            while let Ok(Some(p)) = decode(&mut buf, version, MAX_PACKET_SIZE) {
                black_box(p);
                n += 1;
            }
            n
        });
        println!("| decode PUBLISH (QoS 1, 100 B) | {version:?} | {decoded:.0} |");
        let mut out = BytesMut::with_capacity(4 * PER_BUFFER);
        let encoded = rate(|| {
            out.clear();
            for pkid in 1..=PER_BUFFER as u16 {
                let _ = black_box(Packet::PubAck(Ack::new(pkid)).encode(version, &mut out));
            }
            PER_BUFFER
        });
        println!("| encode PUBACK | {version:?} | {encoded:.0} |");
    }
}
