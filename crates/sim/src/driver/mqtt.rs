//! The MQTT client: one task per connection, packets encoded and decoded with
//! `ingot-codec-mqtt` (the broker's own codec).
//!
//! # Hot path
//!
//! - **Pre-encoded publishes.** Per device, the PUBLISH is encoded once by the codec with
//!   a placeholder payload of the message's length; each publish copies that prefix,
//!   writes its packet id at the offset the codec's own frame header gives, and appends
//!   the payload. A message of another length re-encodes the template (rare: the `flat`
//!   scenario's messages all have one length). Binary MQTT 5 publishes, whose properties
//!   change with every picture, are encoded whole.
//! - **Batched writes.** Everything due is encoded into one buffer (up to 64 KiB) and
//!   written with one `write` call; the socket is never written while it would block,
//!   and the task reads acknowledgements between writes, so a broker that pushes back
//!   never deadlocks against a generator that is not reading.
//! - **Acknowledgements in O(1).** Packet ids derive from a per-connection sequence
//!   number, so a PUBACK finds its publish in a ring, not a map.
//!
//! QoS 1 counts a publish acknowledged at its PUBACK; QoS 2 at its PUBREC (the point at
//! which Ingot has made it durable), and keeps it in flight until PUBCOMP. QoS 0
//! publishes get no acknowledgement: at the end each connection sends PINGREQ and waits
//! for PINGRESP, so the run ends after the broker has read everything.
//!
//! A lost connection fails the publishes in flight (`mqtt connection …`) and is
//! re-established (a few attempts), as a device would.

use std::io::ErrorKind as IoErrorKind;
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes, BytesMut};
use ingot_codec_mqtt::{
    Ack, Connect, Disconnect, EncodeError, Packet, Properties, Publish, QoS, ReasonCode, Version,
    check,
};
use ingot_core::Timestamp;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::{Plan, Shared, tcp_connect};
use crate::config::Resolved;
use crate::pacing::{Next, Pacer};
use crate::pending::{Pending, mqtt_pkid};
use crate::scenario::Message;

/// Stop encoding when this much is waiting to be written.
const HIGH_WATER: usize = 64 << 10;
/// Read at least this much at a time.
const READ_CHUNK: usize = 16 << 10;
/// Reconnection attempts after a lost connection.
const RECONNECTS: u32 = 5;
/// Largest packet accepted from the broker.
const MAX_IN: usize = 1 << 20;

/// A PUBLISH encoded once, reused for payloads of one length.
#[derive(Debug)]
struct Template {
    prefix: Vec<u8>,
    payload_len: usize,
    pkid_at: Option<usize>,
}

impl Template {
    fn build(
        version: Version,
        qos: QoS,
        topic: &str,
        payload_len: usize,
    ) -> Result<Template, EncodeError> {
        static ZEROS: [u8; 4096] = [0; 4096];
        let payload = if payload_len <= ZEROS.len() {
            Bytes::from_static(&ZEROS[..payload_len])
        } else {
            Bytes::from(vec![0u8; payload_len])
        };
        let packet = Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.to_owned(),
            pkid: if qos == QoS::AtMostOnce { 0 } else { 1 },
            properties: Properties::default(),
            payload,
        });
        let mut buf = BytesMut::new();
        packet.encode(version, &mut buf)?;
        let header = check(&buf, usize::MAX)
            .ok()
            .flatten()
            .ok_or(EncodeError::Invalid(
                "the codec produced an incomplete frame",
            ))?;
        let pkid_at = (qos != QoS::AtMostOnce).then(|| header.header_len + 2 + topic.len());
        buf.truncate(buf.len() - payload_len);
        Ok(Template {
            prefix: buf.to_vec(),
            payload_len,
            pkid_at,
        })
    }

    fn write(&self, out: &mut BytesMut, pkid: u16, payload: &[u8]) {
        let start = out.len();
        out.extend_from_slice(&self.prefix);
        if let Some(at) = self.pkid_at {
            out[start + at..start + at + 2].copy_from_slice(&pkid.to_be_bytes());
        }
        out.extend_from_slice(payload);
    }
}

/// A publish in flight.
#[derive(Debug, Default)]
struct InFlight {
    sent: Option<Instant>,
    events: u64,
    /// QoS 2: PUBREC received (counted), waiting for PUBCOMP.
    released: bool,
}

/// A connected session.
#[derive(Debug)]
pub(crate) struct Conn {
    pub stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

/// The topic of a device.
fn topic(template: &str, device: &str, sensor: Option<&str>) -> String {
    template
        .replace("{device}", device)
        .replace("{sensor}", sensor.unwrap_or("default"))
}

/// Connects and completes CONNECT/CONNACK.
pub(crate) async fn connect(
    run: &Resolved,
    index: usize,
    total: usize,
    client_id: String,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Conn, String> {
    let c = &run.config;
    let timeout = c.timeout;
    let stream = tokio::time::timeout(timeout, tcp_connect(run.target.addr, index, total))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| short_io(&e))?;
    let mut conn = Conn {
        stream,
        rbuf: BytesMut::new(),
        wbuf: BytesMut::new(),
    };
    let version = c.mqtt_version();
    let packet = Packet::Connect(Box::new(Connect {
        version,
        client_id,
        clean_start: true,
        keep_alive: c.mqtt.keep_alive,
        username: username.map(str::to_owned),
        password: password.map(|p| Bytes::copy_from_slice(p.as_bytes())),
        will: None,
        properties: Properties::default(),
    }));
    packet
        .encode(version, &mut conn.wbuf)
        .map_err(|e| e.to_string())?;
    let handshake = async {
        conn.stream
            .write_all(&conn.wbuf)
            .await
            .map_err(|e| short_io(&e))?;
        conn.wbuf.clear();
        loop {
            conn.rbuf.reserve(1024);
            let n = tokio::io::AsyncReadExt::read_buf(&mut conn.stream, &mut conn.rbuf)
                .await
                .map_err(|e| short_io(&e))?;
            if n == 0 {
                return Err("closed before CONNACK".to_owned());
            }
            match ingot_codec_mqtt::decode(&mut conn.rbuf, version, MAX_IN) {
                Ok(None) => continue,
                Ok(Some(Packet::ConnAck(ack))) if ack.code.is_error() => {
                    return Err(format!("CONNACK {}", ack.code));
                }
                Ok(Some(Packet::ConnAck(_))) => return Ok(()),
                Ok(Some(other)) => {
                    return Err(format!(
                        "{} before CONNACK",
                        ingot_codec_mqtt::packet_type::name(other.packet_type())
                    ));
                }
                Err(e) => return Err(format!("bad CONNACK: {e}")),
            }
        }
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| "no CONNACK in time".to_owned())??;
    Ok(conn)
}

/// A short, stable description of a socket error for the report.
pub(crate) fn short_io(e: &std::io::Error) -> String {
    match e.kind() {
        IoErrorKind::ConnectionRefused => "connection refused".into(),
        IoErrorKind::ConnectionReset => "connection reset".into(),
        IoErrorKind::BrokenPipe => "connection closed".into(),
        IoErrorKind::AddrNotAvailable => "no local address/port available".into(),
        IoErrorKind::TimedOut => "timed out".into(),
        _ => e.to_string(),
    }
}

/// How a session ended.
enum End {
    /// Everything issued and answered (or drained).
    Done,
    /// The connection broke.
    Lost(String),
}

/// The worker of one connection.
pub(crate) async fn worker(mut plan: Plan, mut shared: Shared) {
    let run = shared.run.clone();
    let c = &run.config;
    let (username, token) = match plan.source.slots.first() {
        Some(slot) => (Some(slot.device.name().to_owned()), slot.token.clone()),
        None => (None, None),
    };
    let client_id = format!("sim{}-{}", std::process::id(), plan.index);
    let first = {
        let _permit = shared.connects.acquire().await;
        connect(
            &run,
            plan.index,
            run.connections,
            client_id.clone(),
            username.as_deref(),
            token.as_deref(),
        )
        .await
    };
    let mut conn = match first {
        Ok(conn) => {
            let _ = plan.ready.send(Ok(())).await;
            conn
        }
        Err(reason) => {
            let _ = plan.ready.send(Err(reason)).await;
            return;
        }
    };
    let Some(start) = shared.started().await else {
        let _ = conn.stream.shutdown().await;
        return;
    };
    let mut pacer = plan.pacer(&run, start);
    let version = c.mqtt_version();
    let sensor = c.scenario.sensor().map(str::to_owned);
    let topics: Vec<String> = plan
        .source
        .slots
        .iter()
        .map(|s| topic(&run.target.topic, s.device.name(), sensor.as_deref()))
        .collect();
    let mut templates: Vec<Option<Template>> = topics.iter().map(|_| None).collect();
    let mut pending: Pending<InFlight> = Pending::new(run.window);
    let mut attempts = 0;
    loop {
        let end = session(
            &mut conn,
            &mut plan,
            &mut pacer,
            &shared,
            &topics,
            &mut templates,
            &mut pending,
            version,
        )
        .await;
        let reason = match end {
            End::Done => {
                let mut bye = BytesMut::new();
                if Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS))
                    .encode(version, &mut bye)
                    .is_ok()
                {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), conn.stream.write_all(&bye))
                            .await;
                }
                let _ = conn.stream.shutdown().await;
                break;
            }
            End::Lost(reason) => reason,
        };
        // Everything in flight on the lost connection failed.
        let code = format!("mqtt {reason}");
        let mut failed = 0;
        pending.for_each_live(|_, f| {
            if !f.released {
                failed += f.events;
            }
        });
        while let Some((seq, _)) = pending.oldest() {
            pending.remove(seq);
        }
        if failed > 0 {
            plan.recorder.error(&code, failed);
        }
        let finished = plan.source.exhausted()
            || shared.stop.is_cancelled()
            || matches!(pacer.next(Instant::now()), Next::Done);
        if finished || attempts >= RECONNECTS {
            if !finished {
                plan.recorder.error("mqtt gave up reconnecting", 0);
            }
            break;
        }
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts))).await;
        match connect(
            &run,
            plan.index,
            run.connections,
            client_id.clone(),
            username.as_deref(),
            token.as_deref(),
        )
        .await
        {
            Ok(new) => conn = new,
            Err(reason) => {
                shared.stats.connect_error(&format!("reconnect: {reason}"));
                break;
            }
        }
    }
    plan.recorder.flush();
}

/// Publishes until the share is done (or the connection breaks), then drains.
#[allow(clippy::too_many_arguments)]
async fn session(
    conn: &mut Conn,
    plan: &mut Plan,
    pacer: &mut Pacer,
    shared: &Shared,
    topics: &[String],
    templates: &mut [Option<Template>],
    pending: &mut Pending<InFlight>,
    version: Version,
) -> End {
    let run = &shared.run;
    let c = &run.config;
    let qos = c.mqtt.qos;
    let timeout = c.timeout;
    let keep_alive = Duration::from_secs(u64::from(c.mqtt.keep_alive.max(1)) / 2 + 1);
    let mut issuing = true;
    let mut drain_until: Option<Instant> = None;
    let mut barrier_done = qos != QoS::AtMostOnce;
    let mut last_write = Instant::now();
    let mut spins = 0u32;
    loop {
        let now = Instant::now();
        let mut progress = false;
        let mut wake: Option<Instant> = None;
        if issuing {
            if shared.stop.is_cancelled() {
                pacer.stop();
            }
            let ts = Timestamp::now();
            while conn.wbuf.len() < HIGH_WATER {
                match pacer.next(now) {
                    Next::Done => {
                        issuing = false;
                        break;
                    }
                    Next::At(at) => {
                        wake = Some(at);
                        break;
                    }
                    Next::Now(scheduled) => {
                        if plan.source.exhausted() {
                            issuing = false;
                            break;
                        }
                        if qos != QoS::AtMostOnce && !pending.has_room() {
                            break;
                        }
                        let (slot, events) = plan.source.next_request(ts);
                        let pkid = if qos == QoS::AtMostOnce {
                            0
                        } else {
                            let (seq, f) = pending.push();
                            *f = InFlight {
                                sent: Some(now),
                                events,
                                released: false,
                            };
                            mqtt_pkid(seq)
                        };
                        let encoded = encode(
                            &mut conn.wbuf,
                            &mut templates[slot],
                            &topics[slot],
                            &plan.source.request,
                            version,
                            qos,
                            pkid,
                        );
                        pacer.advance();
                        plan.recorder.sent(
                            events,
                            now,
                            scheduled.map(|s| now.saturating_duration_since(s)),
                        );
                        if let Err(e) = encoded {
                            if pkid != 0
                                && let Some(seq) = pending.seq_of_pkid(pkid)
                            {
                                pending.remove(seq);
                            }
                            plan.recorder
                                .error(&format!("mqtt cannot encode: {e}"), events);
                        }
                        progress = true;
                    }
                }
            }
            if !issuing {
                drain_until = Some(now + timeout);
                if qos == QoS::AtMostOnce {
                    // The barrier: the broker answers after reading everything before.
                    let _ = Packet::PingReq.encode(version, &mut conn.wbuf);
                    barrier_done = false;
                }
            }
        }
        if !conn.wbuf.is_empty() {
            match conn.stream.try_write(&conn.wbuf) {
                Ok(n) => {
                    conn.wbuf.advance(n);
                    last_write = now;
                    progress = true;
                }
                Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
                Err(e) => return End::Lost(short_io(&e)),
            }
        } else if now.saturating_duration_since(last_write) >= keep_alive {
            let _ = Packet::PingReq.encode(version, &mut conn.wbuf);
            continue;
        }
        loop {
            conn.rbuf.reserve(READ_CHUNK);
            match conn.stream.try_read_buf(&mut conn.rbuf) {
                Ok(0) => return End::Lost("connection closed by the broker".into()),
                Ok(_) => {
                    progress = true;
                    let at = Instant::now();
                    match incoming(conn, pending, plan, version, at) {
                        Ok(Incoming::PingResp) => {
                            if !issuing && !barrier_done {
                                plan.recorder.drained(at);
                            }
                            barrier_done = true;
                        }
                        Ok(Incoming::Nothing) => {}
                        Err(reason) => return End::Lost(reason),
                    }
                }
                Err(e) if e.kind() == IoErrorKind::WouldBlock => break,
                Err(e) => return End::Lost(short_io(&e)),
            }
        }
        // Publishes without an acknowledgement in time.
        while let Some((seq, f)) = pending.oldest() {
            let Some(sent) = f.sent else { break };
            if now.saturating_duration_since(sent) < timeout {
                wake = Some(wake.map_or(sent + timeout, |w| w.min(sent + timeout)));
                break;
            }
            let (events, released) = (f.events, f.released);
            pending.remove(seq);
            if !released {
                plan.recorder.error("timeout", events);
            }
        }
        if let Some(until) = drain_until {
            if now >= until {
                let mut left = 0;
                pending.for_each_live(|_, f| {
                    if !f.released {
                        left += f.events;
                    }
                });
                plan.recorder.unanswered(left);
                return End::Done;
            }
            wake = Some(wake.map_or(until, |w| w.min(until)));
        }
        if !issuing && conn.wbuf.is_empty() && pending.is_empty() && barrier_done {
            return End::Done;
        }
        let ping_at = last_write + keep_alive;
        wake = Some(wake.map_or(ping_at, |w| w.min(ping_at)));
        plan.recorder.tick(now);
        if progress {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(32) {
                tokio::task::yield_now().await;
            }
            continue;
        }
        let wbuf_empty = conn.wbuf.is_empty();
        tokio::select! {
            r = conn.stream.readable() => {
                if let Err(e) = r {
                    return End::Lost(short_io(&e));
                }
            }
            w = conn.stream.writable(), if !wbuf_empty => {
                if let Err(e) = w {
                    return End::Lost(short_io(&e));
                }
            }
            () = sleep_until(wake) => {}
            () = shared.stop.cancelled(), if issuing => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn encode(
    out: &mut BytesMut,
    template: &mut Option<Template>,
    topic: &str,
    message: &Message,
    version: Version,
    qos: QoS,
    pkid: u16,
) -> Result<(), EncodeError> {
    if let Some(content_type) = message.binary {
        let mut properties = Properties::default();
        if version == Version::V5 {
            properties.content_type = Some(content_type.to_owned());
            properties.user_properties = message
                .meta
                .iter()
                .filter(|(k, _)| !matches!(*k, "device" | "sensor"))
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
        }
        let packet = Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.to_owned(),
            pkid,
            properties,
            payload: Bytes::copy_from_slice(&message.body),
        });
        return packet.encode(version, out).map(|_| ());
    }
    let fits = template
        .as_ref()
        .is_some_and(|t| t.payload_len == message.body.len());
    if !fits {
        *template = Some(Template::build(version, qos, topic, message.body.len())?);
    }
    if let Some(t) = template {
        t.write(out, pkid, &message.body);
    }
    Ok(())
}

enum Incoming {
    Nothing,
    PingResp,
}

/// Handles every complete packet in the read buffer.
fn incoming(
    conn: &mut Conn,
    pending: &mut Pending<InFlight>,
    plan: &mut Plan,
    version: Version,
    now: Instant,
) -> Result<Incoming, String> {
    let mut result = Incoming::Nothing;
    loop {
        let packet = match ingot_codec_mqtt::decode(&mut conn.rbuf, version, MAX_IN) {
            Ok(Some(packet)) => packet,
            Ok(None) => return Ok(result),
            Err(e) => return Err(format!("bad packet from the broker: {e}")),
        };
        match packet {
            Packet::PubAck(ack) => {
                if let Some(seq) = pending.seq_of_pkid(ack.pkid)
                    && let Some(f) = pending.remove(seq)
                {
                    let (sent, events) = (f.sent, f.events);
                    if ack.reason.is_error() {
                        plan.recorder.error(&format!("mqtt {}", ack.reason), events);
                    } else if let Some(sent) = sent {
                        plan.recorder
                            .acked(events, now, now.saturating_duration_since(sent));
                    }
                }
            }
            Packet::PubRec(ack) => {
                let Some(seq) = pending.seq_of_pkid(ack.pkid) else {
                    continue;
                };
                if ack.reason.is_error() {
                    if let Some(f) = pending.remove(seq) {
                        let events = f.events;
                        plan.recorder.error(&format!("mqtt {}", ack.reason), events);
                    }
                    continue;
                }
                if let Some(f) = pending.get_mut(seq)
                    && !f.released
                {
                    f.released = true;
                    let (sent, events) = (f.sent, f.events);
                    if let Some(sent) = sent {
                        plan.recorder
                            .acked(events, now, now.saturating_duration_since(sent));
                    }
                }
                Packet::PubRel(Ack::new(ack.pkid))
                    .encode(version, &mut conn.wbuf)
                    .map_err(|e| e.to_string())?;
            }
            Packet::PubComp(ack) => {
                if let Some(seq) = pending.seq_of_pkid(ack.pkid) {
                    pending.remove(seq);
                }
            }
            Packet::PingResp => result = Incoming::PingResp,
            Packet::Disconnect(d) => return Err(format!("DISCONNECT {}", d.reason)),
            Packet::Publish(p) => {
                // Not subscribed to anything; acknowledge politely if asked.
                let ack = match p.qos {
                    QoS::AtMostOnce => None,
                    QoS::AtLeastOnce => Some(Packet::PubAck(Ack::new(p.pkid))),
                    QoS::ExactlyOnce => Some(Packet::PubRec(Ack::new(p.pkid))),
                };
                if let Some(ack) = ack {
                    ack.encode(version, &mut conn.wbuf)
                        .map_err(|e| e.to_string())?;
                }
            }
            Packet::PubRel(ack) => {
                Packet::PubComp(Ack::new(ack.pkid))
                    .encode(version, &mut conn.wbuf)
                    .map_err(|e| e.to_string())?;
            }
            _ => {}
        }
    }
}

/// Keeps an idle connection alive until `stop`: PINGREQ every half keep-alive.
pub(crate) async fn hold_idle(
    mut conn: Conn,
    version: Version,
    keep_alive: u16,
    stop: tokio_util::sync::CancellationToken,
) {
    let every = Duration::from_secs(u64::from(keep_alive.max(2)) / 2);
    let mut ping = BytesMut::new();
    let _ = Packet::PingReq.encode(version, &mut ping);
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {
                if conn.stream.write_all(&ping).await.is_err() {
                    return;
                }
            }
            r = tokio::io::AsyncReadExt::read(&mut conn.stream, &mut buf) => {
                // PINGRESP and the like are dropped unread; 0 or an error: gone.
                if matches!(r, Ok(0) | Err(_)) {
                    return;
                }
            }
        }
    }
    let mut bye = BytesMut::new();
    if Packet::Disconnect(Disconnect::new(ReasonCode::SUCCESS))
        .encode(version, &mut bye)
        .is_ok()
    {
        let _ = conn.stream.write_all(&bye).await;
    }
    let _ = conn.stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_produce_what_the_codec_produces() {
        for version in [Version::V311, Version::V5] {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let topic = "ingot/flat-00001/events";
                let t = Template::build(version, qos, topic, 100).unwrap();
                let payload = vec![b'x'; 100];
                let pkid = if qos == QoS::AtMostOnce { 0 } else { 4242 };
                let mut ours = BytesMut::new();
                t.write(&mut ours, pkid, &payload);
                let mut theirs = BytesMut::new();
                Packet::Publish(Publish {
                    dup: false,
                    qos,
                    retain: false,
                    topic: topic.into(),
                    pkid,
                    properties: Properties::default(),
                    payload: Bytes::from(payload.clone()),
                })
                .encode(version, &mut theirs)
                .unwrap();
                assert_eq!(ours, theirs, "{version:?} {qos:?}");
                let decoded = ingot_codec_mqtt::decode(&mut ours, version, MAX_IN)
                    .unwrap()
                    .unwrap();
                match decoded {
                    Packet::Publish(p) => {
                        assert_eq!(p.pkid, pkid);
                        assert_eq!(&p.payload[..], &payload[..]);
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn topics_fill_in_device_and_sensor() {
        assert_eq!(
            topic("ingot/{device}/events/{sensor}", "cam-01", Some("front")),
            "ingot/cam-01/events/front"
        );
        assert_eq!(topic("t/{device}", "d", None), "t/d");
    }
}
