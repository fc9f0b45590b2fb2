//! The engine driven with synthetic datagrams and time: no sockets, no sleeping.

use coap_lite::{CoapOption, MessageClass, MessageType, Packet};

use super::*;
use crate::message::encode_uint;

const GET: u8 = 0x01;
const POST: u8 = 0x02;
const PUT: u8 = 0x03;

fn peer(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn engine(config: CoapConfig) -> Engine {
    Engine::new(config, CoapMetrics::default(), 42).unwrap()
}

/// A request datagram under construction.
struct Msg(Packet);

impl Msg {
    fn new(kind: MessageType, code: u8, mid: u16) -> Msg {
        let mut packet = Packet::new();
        packet.header.set_version(1);
        packet.header.set_type(kind);
        packet.header.code = MessageClass::from(code);
        packet.header.message_id = mid;
        packet.set_token(vec![0xA0, mid as u8]);
        Msg(packet)
    }
    fn con(code: u8, mid: u16) -> Msg {
        Msg::new(MessageType::Confirmable, code, mid)
    }
    fn non(code: u8, mid: u16) -> Msg {
        Msg::new(MessageType::NonConfirmable, code, mid)
    }
    fn path(mut self, path: &str) -> Msg {
        for segment in path.split('/') {
            self.0
                .add_option(CoapOption::UriPath, segment.as_bytes().to_vec());
        }
        self
    }
    fn query(mut self, arg: &str) -> Msg {
        self.0
            .add_option(CoapOption::UriQuery, arg.as_bytes().to_vec());
        self
    }
    fn opt(mut self, number: u16, value: Vec<u8>) -> Msg {
        self.0.add_option(CoapOption::from(number), value);
        self
    }
    fn token(mut self, token: &[u8]) -> Msg {
        self.0.set_token(token.to_vec());
        self
    }
    fn payload(mut self, payload: &[u8]) -> Msg {
        self.0.payload = payload.to_vec();
        self
    }
    fn bytes(&self) -> Vec<u8> {
        self.0.to_bytes_with_limit(65_000).unwrap()
    }
}

fn decode(transmit: &Transmit) -> Packet {
    Packet::from_bytes(&transmit.bytes).unwrap()
}

fn code_of(packet: &Packet) -> &'static str {
    code::name(u8::from(packet.header.code))
}

fn uint(packet: &Packet, number: u16) -> Option<u32> {
    packet
        .get_option(CoapOption::from(number))
        .and_then(|values| values.front())
        .and_then(|v| message::decode_uint(v, 4))
}

fn block(packet: &Packet, number: u16) -> Option<Block> {
    uint(packet, number).map(|raw| Block {
        num: raw >> 4,
        more: raw & 8 != 0,
        szx: (raw & 7) as u8,
    })
}

fn payload_text(packet: &Packet) -> String {
    String::from_utf8_lossy(&packet.payload).into_owned()
}

/// Sends one datagram and returns what came out.
fn send(engine: &mut Engine, from: SocketAddr, msg: &Msg, now: Instant) -> Output {
    let mut out = Output::default();
    engine.handle_datagram(from, &msg.bytes(), now, &mut out);
    out
}

/// The single response of `out`, decoded.
fn only_response(out: &Output) -> Packet {
    assert_eq!(out.transmits.len(), 1, "{out:?}");
    decode(&out.transmits[0])
}

fn created(n: usize) -> Outcome {
    Outcome::Created(
        (0..n)
            .map(|i| EventId::parse(&format!("01J{i:023}")).unwrap())
            .collect(),
    )
}

fn post(mid: u16) -> Msg {
    Msg::con(POST, mid)
        .path("events")
        .query("token=t")
        .opt(opt::CONTENT_FORMAT, vec![50])
        .payload(br#"{"device":"d","value":1}"#)
}

#[test]
fn a_confirmable_post_is_answered_piggybacked_after_its_job() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let out = send(&mut engine, peer(1), &post(7), t0);
    assert!(out.transmits.is_empty(), "nothing before durability");
    assert_eq!(out.jobs.len(), 1);
    let Work::Ingest {
        credentials,
        body,
        format,
    } = &out.jobs[0].work
    else {
        panic!("{:?}", out.jobs[0].work);
    };
    assert_eq!(credentials.as_deref(), Some("t"));
    assert_eq!(&body[..], br#"{"device":"d","value":1}"#);
    assert_eq!(*format, BodyFormat::Json);

    let mut done = Output::default();
    engine.complete(out.jobs[0].id, created(1), t0, &mut done);
    let response = only_response(&done);
    assert_eq!(response.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(response.header.message_id, 7);
    assert_eq!(response.get_token(), &[0xA0, 7]);
    assert_eq!(code_of(&response), "2.01");
    assert_eq!(uint(&response, opt::CONTENT_FORMAT), Some(50));
    let ids: serde_json::Value = serde_json::from_slice(&response.payload).unwrap();
    assert_eq!(ids["ids"].as_array().map(Vec::len), Some(1));
    assert_eq!(engine.stats().in_flight, 0);
}

#[test]
fn duplicates_are_answered_again_and_never_processed_twice() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let first = send(&mut engine, peer(1), &post(7), t0);
    assert_eq!(first.jobs.len(), 1);

    // A retransmission while the job runs: an empty ACK, no second job.
    let again = send(
        &mut engine,
        peer(1),
        &post(7),
        t0 + Duration::from_millis(10),
    );
    assert!(again.jobs.is_empty());
    let ack = only_response(&again);
    assert_eq!(ack.header.get_type(), MessageType::Acknowledgement);
    assert_eq!(u8::from(ack.header.code), 0);
    assert_eq!(ack.header.message_id, 7);

    // The response now goes separately, as CON with a new id and the request's token.
    let mut done = Output::default();
    engine.complete(first.jobs[0].id, created(1), t0, &mut done);
    let separate = only_response(&done);
    assert_eq!(separate.header.get_type(), MessageType::Confirmable);
    assert_ne!(separate.header.message_id, 7);
    assert_eq!(separate.get_token(), &[0xA0, 7]);
    assert_eq!(code_of(&separate), "2.01");
    assert_eq!(engine.stats().unacknowledged, 1);
    let mut out = Output::default();
    engine.handle_datagram(
        peer(1),
        &message::empty(Kind::Ack, separate.header.message_id),
        t0,
        &mut out,
    );
    assert_eq!(engine.stats().unacknowledged, 0);

    // A later duplicate gets the empty ACK again; another peer with the same id is new.
    let late = send(&mut engine, peer(1), &post(7), t0 + Duration::from_secs(5));
    assert!(late.jobs.is_empty());
    assert_eq!(u8::from(only_response(&late).header.code), 0);
    let other = send(&mut engine, peer(2), &post(7), t0);
    assert_eq!(other.jobs.len(), 1);
}

#[test]
fn an_answered_duplicate_gets_identical_bytes_until_the_exchange_lifetime() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let out = send(&mut engine, peer(1), &post(9), t0);
    let mut done = Output::default();
    engine.complete(out.jobs[0].id, created(1), t0, &mut done);
    let original = done.transmits[0].bytes.clone();
    let again = send(
        &mut engine,
        peer(1),
        &post(9),
        t0 + Duration::from_secs(200),
    );
    assert!(again.jobs.is_empty());
    assert_eq!(again.transmits[0].bytes, original);
    // After EXCHANGE_LIFETIME the message id may be reused for a new request.
    let reused = send(
        &mut engine,
        peer(1),
        &post(9),
        t0 + Duration::from_secs(248),
    );
    assert_eq!(reused.jobs.len(), 1);
}

#[test]
fn non_requests_get_non_responses_and_duplicates_are_ignored() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let msg = Msg::non(POST, 3)
        .path("events")
        .payload(br#"{"device":"d"}"#);
    let out = send(&mut engine, peer(1), &msg, t0);
    assert_eq!(out.jobs.len(), 1);
    let mut done = Output::default();
    engine.complete(out.jobs[0].id, created(1), t0, &mut done);
    let response = only_response(&done);
    assert_eq!(response.header.get_type(), MessageType::NonConfirmable);
    assert_eq!(code_of(&response), "2.01");
    assert_eq!(response.get_token(), &[0xA0, 3]);
    for dt in [0, 100] {
        let dup = send(&mut engine, peer(1), &msg, t0 + Duration::from_secs(dt));
        assert!(
            dup.is_empty(),
            "a duplicate NON is not processed or answered"
        );
    }
    assert_eq!(
        send(&mut engine, peer(1), &msg, t0 + Duration::from_secs(146))
            .jobs
            .len(),
        1
    );
}

#[test]
fn a_slow_job_gets_an_empty_ack_then_a_retransmitted_separate_response() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig {
        separate_response_after: Duration::from_millis(500),
        ..CoapConfig::default()
    });
    let out = send(&mut engine, peer(1), &post(1), t0);
    assert_eq!(engine.next_timer(), Some(t0 + Duration::from_millis(500)));
    let mut timer = Output::default();
    engine.on_timer(t0 + Duration::from_millis(500), &mut timer);
    let ack = only_response(&timer);
    assert_eq!(
        (ack.header.get_type(), ack.header.message_id),
        (MessageType::Acknowledgement, 1)
    );
    assert_eq!(u8::from(ack.header.code), 0);

    let mut done = Output::default();
    let t1 = t0 + Duration::from_secs(1);
    engine.complete(out.jobs[0].id, created(1), t1, &mut done);
    let response = only_response(&done);
    assert_eq!(response.header.get_type(), MessageType::Confirmable);
    // Unacknowledged: resent after ACK_TIMEOUT (2 to 3 s), with back-off, at most 4 times.
    let mut resent = 0;
    let mut t = t1;
    for _ in 0..200 {
        t += Duration::from_millis(500);
        let mut out = Output::default();
        engine.on_timer(t, &mut out);
        for transmit in &out.transmits {
            assert_eq!(transmit.bytes, done.transmits[0].bytes);
            resent += 1;
        }
    }
    assert_eq!(resent, 4);
    assert_eq!(engine.stats().unacknowledged, 0);
}

#[test]
fn zero_delay_always_answers_separately() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig {
        separate_response_after: Duration::ZERO,
        ..CoapConfig::default()
    });
    let out = send(&mut engine, peer(1), &post(1), t0);
    assert_eq!(u8::from(only_response(&out).header.code), 0);
    let mut done = Output::default();
    engine.complete(out.jobs[0].id, created(1), t0, &mut done);
    assert_eq!(
        only_response(&done).header.get_type(),
        MessageType::Confirmable
    );
}

fn upload_block(mid: u16, num: u32, more: bool, payload: &[u8]) -> Msg {
    Msg::con(POST, mid)
        .path("events")
        .query("token=t")
        .query("device=cam")
        .opt(opt::CONTENT_FORMAT, vec![22])
        .opt(opt::BLOCK1, Block { num, more, szx: 6 }.encode())
        .payload(payload)
}

#[test]
fn block1_uploads_are_authorised_reassembled_and_ingested_once() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let body: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
    let chunks: Vec<&[u8]> = body.chunks(1024).collect();

    let out = send(
        &mut engine,
        peer(1),
        &upload_block(1, 0, true, chunks[0]),
        t0,
    );
    assert!(matches!(out.jobs[0].work, Work::Authorize { .. }));
    let mut done = Output::default();
    engine.complete(out.jobs[0].id, Outcome::Authorized, t0, &mut done);
    let cont = only_response(&done);
    assert_eq!(code_of(&cont), "2.31");
    assert_eq!(
        block(&cont, opt::BLOCK1),
        Some(Block {
            num: 0,
            more: true,
            szx: 6
        })
    );
    assert_eq!(engine.stats().uploads, 1);

    let out = send(
        &mut engine,
        peer(1),
        &upload_block(2, 1, true, chunks[1]),
        t0,
    );
    assert!(out.jobs.is_empty());
    assert_eq!(code_of(&only_response(&out)), "2.31");
    // The same block again under a new id (the client lost our answer): acknowledged, not
    // appended twice.
    let out = send(
        &mut engine,
        peer(1),
        &upload_block(3, 1, true, chunks[1]),
        t0,
    );
    assert_eq!(code_of(&only_response(&out)), "2.31");

    let out = send(
        &mut engine,
        peer(1),
        &upload_block(4, 2, false, chunks[2]),
        t0,
    );
    let Work::Ingest {
        body: got, format, ..
    } = &out.jobs[0].work
    else {
        panic!("{out:?}");
    };
    assert_eq!(&got[..], &body[..]);
    assert!(
        matches!(format, BodyFormat::Binary { media_type: "image/jpeg", meta } if meta == &[("device".to_owned(), "cam".to_owned())])
    );
    assert_eq!(engine.stats().uploads, 0);
    let mut done = Output::default();
    engine.complete(out.jobs[0].id, created(1), t0, &mut done);
    let response = only_response(&done);
    assert_eq!(code_of(&response), "2.01");
    assert_eq!(
        block(&response, opt::BLOCK1),
        Some(Block {
            num: 2,
            more: false,
            szx: 6
        })
    );
}

fn start_upload(engine: &mut Engine, from: SocketAddr, mid: u16, t: Instant) {
    let out = send(engine, from, &upload_block(mid, 0, true, &[0; 1024]), t);
    let mut done = Output::default();
    engine.complete(out.jobs[0].id, Outcome::Authorized, t, &mut done);
    assert_eq!(code_of(&only_response(&done)), "2.31");
}

#[test]
fn block1_refuses_gaps_oversize_and_expired_uploads() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig {
        max_body_bytes: 3000,
        ..CoapConfig::default()
    });
    // Out of order: 4.08, and the upload is gone.
    start_upload(&mut engine, peer(1), 1, t0);
    let out = send(
        &mut engine,
        peer(1),
        &upload_block(2, 2, true, &[0; 1024]),
        t0,
    );
    let response = only_response(&out);
    assert_eq!(code_of(&response), "4.08");
    assert!(
        payload_text(&response).contains("in order"),
        "{}",
        payload_text(&response)
    );
    assert_eq!(engine.stats().uploads, 0);

    // Announced too large: 4.13 with Size1 = the limit, before anything is buffered.
    let big = upload_block(3, 0, true, &[0; 1024]).opt(opt::SIZE1, encode_uint(300_000));
    let response = only_response(&send(&mut engine, peer(1), &big, t0));
    assert_eq!(code_of(&response), "4.13");
    assert_eq!(uint(&response, opt::SIZE1), Some(3000));

    // Growing past the limit: 4.13 at the block that crosses it.
    start_upload(&mut engine, peer(1), 4, t0);
    assert_eq!(
        code_of(&only_response(&send(
            &mut engine,
            peer(1),
            &upload_block(5, 1, true, &[0; 1024]),
            t0
        ))),
        "2.31"
    );
    let response = only_response(&send(
        &mut engine,
        peer(1),
        &upload_block(6, 2, true, &[0; 1024]),
        t0,
    ));
    assert_eq!(code_of(&response), "4.13");
    assert_eq!(uint(&response, opt::SIZE1), Some(3000));

    // Expired after block_transfer_timeout without a block.
    start_upload(&mut engine, peer(1), 7, t0);
    let mut out = Output::default();
    engine.on_timer(t0 + Duration::from_secs(61), &mut out);
    assert_eq!(engine.stats().uploads, 0);
    let late = send(
        &mut engine,
        peer(1),
        &upload_block(8, 1, true, &[0; 1024]),
        t0 + Duration::from_secs(62),
    );
    assert_eq!(code_of(&only_response(&late)), "4.08");

    // A short middle block is malformed.
    start_upload(&mut engine, peer(1), 9, t0);
    let short = send(
        &mut engine,
        peer(1),
        &upload_block(10, 1, true, &[0; 100]),
        t0,
    );
    assert_eq!(code_of(&only_response(&short)), "4.00");
}

#[test]
fn uploads_are_limited_per_endpoint() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig {
        max_block_transfers_per_endpoint: 1,
        ..CoapConfig::default()
    });
    start_upload(&mut engine, peer(1), 1, t0);
    let second = Msg::con(POST, 2)
        .path("events")
        .query("token=t")
        .query("device=other")
        .opt(opt::CONTENT_FORMAT, vec![22])
        .opt(
            opt::BLOCK1,
            Block {
                num: 0,
                more: true,
                szx: 6,
            }
            .encode(),
        )
        .payload(&[0; 1024]);
    let response = only_response(&send(&mut engine, peer(1), &second, t0));
    assert_eq!(code_of(&response), "5.03");
    assert_eq!(uint(&response, opt::MAX_AGE), Some(1));
}

fn list(mid: u16) -> Msg {
    Msg::con(GET, mid)
        .path("events")
        .query("token=k")
        .query("limit=50")
}

#[test]
fn large_listings_go_in_block2_blocks_with_a_stable_etag() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let out = send(&mut engine, peer(1), &list(1), t0);
    let Work::List { credentials, query } = &out.jobs[0].work else {
        panic!("{out:?}");
    };
    assert_eq!((credentials.as_deref(), query.limit), (Some("k"), 50));
    let body: Bytes =
        serde_json::to_vec(&serde_json::json!({"events": ["x".repeat(2500)], "next": null}))
            .unwrap()
            .into();
    let mut done = Output::default();
    engine.complete(out.jobs[0].id, Outcome::Listed(body.clone()), t0, &mut done);
    let first = only_response(&done);
    assert_eq!(code_of(&first), "2.05");
    assert_eq!(
        block(&first, opt::BLOCK2),
        Some(Block {
            num: 0,
            more: true,
            szx: 6
        })
    );
    assert_eq!(uint(&first, opt::SIZE2), Some(body.len() as u32));
    let etag = first.get_first_option(CoapOption::ETag).cloned().unwrap();

    let mut assembled = first.payload.clone();
    for num in 1..3u32 {
        let msg = list(10 + num as u16).opt(
            opt::BLOCK2,
            Block {
                num,
                more: false,
                szx: 6,
            }
            .encode(),
        );
        let out = send(&mut engine, peer(1), &msg, t0);
        assert!(out.jobs.is_empty(), "served from the kept representation");
        let part = only_response(&out);
        assert_eq!(part.get_first_option(CoapOption::ETag), Some(&etag));
        assert_eq!(block(&part, opt::BLOCK2).map(|b| b.more), Some(num < 2));
        assembled.extend_from_slice(&part.payload);
    }
    assert_eq!(assembled, body.to_vec());
    let past = list(20).opt(
        opt::BLOCK2,
        Block {
            num: 9,
            more: false,
            szx: 6,
        }
        .encode(),
    );
    assert_eq!(
        code_of(&only_response(&send(&mut engine, peer(1), &past, t0))),
        "4.02"
    );

    // The same content gets the same ETag; smaller blocks when the client asks for them.
    let out = send(
        &mut engine,
        peer(1),
        &list(30).opt(
            opt::BLOCK2,
            Block {
                num: 0,
                more: false,
                szx: 2,
            }
            .encode(),
        ),
        t0,
    );
    let mut done = Output::default();
    engine.complete(out.jobs[0].id, Outcome::Listed(body), t0, &mut done);
    let again = only_response(&done);
    assert_eq!(again.get_first_option(CoapOption::ETag), Some(&etag));
    assert_eq!(again.payload.len(), 64);
}

fn observe(mid: u16, token: &[u8], value: u32) -> Msg {
    Msg::con(GET, mid)
        .token(token)
        .path("events/latest")
        .query("device=probe")
        .query("token=k")
        .opt(opt::OBSERVE, encode_uint(value))
}

fn latest_outcome() -> Outcome {
    Outcome::Latest {
        tenant: TenantId(1),
        device: "probe".into(),
        body: Bytes::from_static(b"null"),
    }
}

fn event(tenant: u32, device: &str, value: f64) -> Event {
    Event {
        id: EventId::parse("01JTEST").unwrap(),
        tenant: TenantId(tenant),
        device: device.into(),
        sensor: None,
        ts: Timestamp::from_micros(0),
        received: Timestamp::from_micros(0),
        kind: None,
        value: Some(value),
        data: None,
        payload: None,
    }
}

#[test]
fn observers_get_a_notification_per_event_of_their_device_until_they_leave() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let out = send(&mut engine, peer(1), &observe(1, b"ob", 0), t0);
    let mut done = Output::default();
    engine.complete(out.jobs[0].id, latest_outcome(), t0, &mut done);
    let registered = only_response(&done);
    assert_eq!(code_of(&registered), "2.05");
    let seq0 = uint(&registered, opt::OBSERVE).unwrap();
    assert_eq!(engine.observer_count(), 1);

    // Other devices and tenants do not notify.
    let mut out = Output::default();
    engine.notify(&event(1, "other", 1.0), t0, &mut out);
    engine.notify(&event(2, "probe", 1.0), t0, &mut out);
    assert!(out.transmits.is_empty());

    let mut out = Output::default();
    engine.notify(
        &event(1, "probe", 21.5),
        t0 + Duration::from_secs(1),
        &mut out,
    );
    let note = only_response(&out);
    assert_eq!(note.header.get_type(), MessageType::NonConfirmable);
    assert_eq!(note.get_token(), b"ob");
    assert_eq!(uint(&note, opt::OBSERVE), Some(seq0 + 1));
    let json: serde_json::Value = serde_json::from_slice(&note.payload).unwrap();
    assert_eq!(json["value"], 21.5);

    // At least one CON per observe_con_interval; its ACK settles it.
    let mut out = Output::default();
    engine.notify(
        &event(1, "probe", 22.0),
        t0 + Duration::from_secs(61),
        &mut out,
    );
    let con = only_response(&out);
    assert_eq!(con.header.get_type(), MessageType::Confirmable);
    assert_eq!(engine.stats().unacknowledged, 1);
    let mut ignored = Output::default();
    engine.handle_datagram(
        peer(1),
        &message::empty(Kind::Ack, con.header.message_id),
        t0,
        &mut ignored,
    );
    assert_eq!(engine.stats().unacknowledged, 0);

    // An RST to a notification ends the observation.
    let mut out = Output::default();
    engine.notify(
        &event(1, "probe", 23.0),
        t0 + Duration::from_secs(62),
        &mut out,
    );
    let last = only_response(&out);
    engine.handle_datagram(
        peer(1),
        &message::empty(Kind::Rst, last.header.message_id),
        t0,
        &mut ignored,
    );
    assert_eq!(engine.observer_count(), 0);
    let mut out = Output::default();
    engine.notify(&event(1, "probe", 24.0), t0, &mut out);
    assert!(out.transmits.is_empty());
}

#[test]
fn observe_1_deregisters_and_a_vanished_observer_is_dropped() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig {
        observe_con_interval: Duration::from_millis(1),
        ..CoapConfig::default()
    });
    for (mid, token) in [(1u16, &b"a"[..]), (2, &b"b"[..])] {
        let out = send(&mut engine, peer(1), &observe(mid, token, 0), t0);
        let mut done = Output::default();
        engine.complete(out.jobs[0].id, latest_outcome(), t0, &mut done);
    }
    assert_eq!(engine.observer_count(), 2);
    let out = send(&mut engine, peer(1), &observe(3, b"a", 1), t0);
    assert_eq!(engine.observer_count(), 1, "Observe=1 deregisters at once");
    let mut done = Output::default();
    engine.complete(out.jobs[0].id, latest_outcome(), t0, &mut done);
    assert_eq!(uint(&only_response(&done), opt::OBSERVE), None);

    // A CON notification never acknowledged: the observer is dropped after the retries.
    let mut out = Output::default();
    engine.notify(
        &event(1, "probe", 1.0),
        t0 + Duration::from_secs(1),
        &mut out,
    );
    assert_eq!(
        only_response(&out).header.get_type(),
        MessageType::Confirmable
    );
    let mut t = t0 + Duration::from_secs(1);
    for _ in 0..200 {
        t += Duration::from_secs(1);
        engine.on_timer(t, &mut Output::default());
    }
    assert_eq!(engine.observer_count(), 0);
}

#[test]
fn work_is_bounded_with_503_and_max_age() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig {
        max_in_flight_per_endpoint: 1,
        max_in_flight: 2,
        overload_max_age: Duration::from_secs(3),
        ..CoapConfig::default()
    });
    assert_eq!(send(&mut engine, peer(1), &post(1), t0).jobs.len(), 1);
    let busy = only_response(&send(&mut engine, peer(1), &post(2), t0));
    assert_eq!(code_of(&busy), "5.03");
    assert_eq!(uint(&busy, opt::MAX_AGE), Some(3));
    assert_eq!(send(&mut engine, peer(2), &post(1), t0).jobs.len(), 1);
    let full = only_response(&send(&mut engine, peer(3), &post(1), t0));
    assert_eq!(code_of(&full), "5.03");
    assert_eq!(engine.stats().in_flight, 2);
}

#[test]
fn errors_get_their_codes_and_diagnostics() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let cases: Vec<(Msg, &str, &str)> = vec![
        (
            Msg::con(GET, 1).path("nothing"),
            "4.04",
            "no resource at `/nothing`",
        ),
        (
            Msg::con(PUT, 2).path("events"),
            "4.05",
            "PUT is not allowed",
        ),
        (Msg::con(POST, 3).path("health"), "4.05", "use GET"),
        (
            list(4).opt(opt::ACCEPT, encode_uint(60)),
            "4.06",
            "Accept 60",
        ),
        (
            post(5)
                .opt(opt::CONTENT_FORMAT, vec![])
                .opt(opt::CONTENT_FORMAT, vec![]),
            "2.xx",
            "",
        ),
        (
            Msg::con(POST, 6)
                .path("events")
                .opt(opt::CONTENT_FORMAT, vec![0]),
            "4.15",
            "Content-Format 0 is not accepted",
        ),
        (post(7).opt(opt::IF_MATCH, vec![1]), "4.02", "If-Match"),
        (post(8).opt(opt::OSCORE, vec![]), "4.02", "OSCORE"),
        (
            list(9).query("limit=0"),
            "4.00",
            "query parameter `limit` must be a whole number from 1 to 1000",
        ),
        (
            list(10).query("q=x"),
            "4.00",
            "query parameter `q` is not supported",
        ),
        (
            post(11).query("device=x"),
            "4.00",
            "query parameter `device` is not accepted with a JSON body",
        ),
        (
            Msg::con(GET, 12).path("events/latest").query("device=a/b"),
            "4.00",
            "query parameter `device` may only contain",
        ),
        (
            post(13).query("token=again"),
            "4.00",
            "`token` is given more than once",
        ),
        (
            Msg::con(GET, 14)
                .path("events")
                .opt(opt::PROXY_URI, b"coap://x".to_vec()),
            "5.05",
            "not a proxy",
        ),
        (
            Msg::con(0x05, 15).path("events"),
            "4.05",
            "FETCH is not allowed",
        ),
    ];
    for (msg, expected, diagnostic) in cases {
        let out = send(&mut engine, peer(1), &msg, t0);
        if expected == "2.xx" {
            // Repeated elective options: the first wins, the request proceeds.
            assert_eq!(out.jobs.len(), 1);
            continue;
        }
        let response = only_response(&out);
        assert_eq!(code_of(&response), expected, "{}", payload_text(&response));
        assert!(
            payload_text(&response).contains(diagnostic),
            "{expected}: {}",
            payload_text(&response)
        );
        assert_eq!(
            response.get_first_option(CoapOption::ContentFormat),
            None,
            "diagnostics carry no Content-Format"
        );
    }
    let health = only_response(&send(
        &mut engine,
        peer(1),
        &Msg::con(GET, 30).path("health"),
        t0,
    ));
    assert_eq!(
        (code_of(&health), payload_text(&health).as_str()),
        ("2.05", "ok")
    );
}

#[test]
fn malformed_datagrams_are_ignored_or_reset() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let mut out = Output::default();
    for garbage in [
        &b""[..],
        b"\x40",
        b"\x80\x01\x00\x01",
        b"\xff\xff\xff\xff\xff",
    ] {
        engine.handle_datagram(peer(1), garbage, t0, &mut out);
    }
    assert!(out.is_empty(), "{out:?}");
    // Confirmable with a bad token length: RST echoing the id.
    engine.handle_datagram(peer(1), b"\x49\x01\x12\x34", t0, &mut out);
    // Confirmable with a truncated option: RST.
    engine.handle_datagram(peer(1), b"\x40\x01\x00\x07\xbd", t0, &mut out);
    // A CoAP ping (empty CON): RST.
    engine.handle_datagram(peer(1), &[0x40, 0, 0, 9], t0, &mut out);
    // A reserved code class: RST.
    engine.handle_datagram(peer(1), &[0x40, 0x21, 0, 10], t0, &mut out);
    let resets: Vec<(MessageType, u16)> = out
        .transmits
        .iter()
        .map(|t| {
            let p = decode(t);
            (p.header.get_type(), p.header.message_id)
        })
        .collect();
    assert_eq!(
        resets,
        [
            (MessageType::Reset, 0x1234),
            (MessageType::Reset, 7),
            (MessageType::Reset, 9),
            (MessageType::Reset, 10)
        ]
    );
    assert!(out.jobs.is_empty());
}

#[test]
fn shutdown_refuses_new_work_and_ends_observations() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let out = send(&mut engine, peer(1), &observe(1, b"o", 0), t0);
    engine.complete(out.jobs[0].id, latest_outcome(), t0, &mut Output::default());
    let running = send(&mut engine, peer(2), &post(1), t0);
    let mut out = Output::default();
    engine.begin_shutdown(&mut out);
    let goodbye = only_response(&out);
    assert_eq!(code_of(&goodbye), "5.03");
    assert_eq!(goodbye.get_token(), b"o");
    assert_eq!(engine.observer_count(), 0);
    assert_eq!(
        code_of(&only_response(&send(&mut engine, peer(3), &post(1), t0))),
        "5.03"
    );
    // What was running still completes.
    assert_eq!(engine.in_flight(), 1);
    let mut done = Output::default();
    engine.complete(running.jobs[0].id, created(1), t0, &mut done);
    assert_eq!(code_of(&only_response(&done)), "2.01");
    assert_eq!(engine.in_flight(), 0);
}

#[test]
fn state_stays_bounded_under_many_endpoints() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig {
        dedup_capacity: 100,
        max_endpoints: 50,
        exchange_lifetime: Duration::from_secs(10),
        ..CoapConfig::default()
    });
    for port in 0..200u16 {
        let t = t0 + Duration::from_millis(u64::from(port));
        let out = send(
            &mut engine,
            peer(1000 + port),
            &Msg::con(GET, port).path("health"),
            t,
        );
        if port < 50 {
            assert_eq!(code_of(&only_response(&out)), "2.05");
        }
    }
    let stats = engine.stats();
    assert!(stats.endpoints <= 50, "{stats:?}");
    assert!(stats.remembered_exchanges <= 100, "{stats:?}");
    // Once idle for an exchange lifetime, endpoints are swept and new ones are served.
    let later = t0 + Duration::from_secs(20);
    let out = send(
        &mut engine,
        peer(5000),
        &Msg::con(GET, 1).path("health"),
        later,
    );
    assert_eq!(code_of(&only_response(&out)), "2.05");
    assert!(engine.stats().endpoints <= 2);
}

#[test]
fn cbor_and_binary_bodies_become_the_right_jobs() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let cbor = Msg::con(POST, 1)
        .path("events")
        .opt(opt::CONTENT_FORMAT, vec![60])
        .payload(&[0xA0]);
    assert!(matches!(
        &send(&mut engine, peer(1), &cbor, t0).jobs[0].work,
        Work::Ingest {
            format: BodyFormat::Cbor,
            ..
        }
    ));
    let jpeg = Msg::con(POST, 2)
        .path("events")
        .query("device=cam")
        .query("kind=picture")
        .opt(opt::CONTENT_FORMAT, vec![42])
        .payload(b"\xff\xd8");
    let out = send(&mut engine, peer(1), &jpeg, t0);
    let Work::Ingest {
        format: BodyFormat::Binary { media_type, meta },
        credentials,
        ..
    } = &out.jobs[0].work
    else {
        panic!("{out:?}");
    };
    assert_eq!(*media_type, "application/octet-stream");
    assert_eq!(meta.len(), 2);
    assert_eq!(*credentials, None);
}

#[test]
fn ids_payload_shrinks_to_a_summary_when_large() {
    let ids: Vec<EventId> = (0..100)
        .map(|i| EventId::parse(&format!("01J{i:023}")).unwrap())
        .collect();
    let small: serde_json::Value = serde_json::from_slice(&ids_payload(&ids[..2], 1024)).unwrap();
    assert_eq!(small["ids"].as_array().map(Vec::len), Some(2));
    let large: serde_json::Value = serde_json::from_slice(&ids_payload(&ids, 1024)).unwrap();
    assert_eq!(large["count"], 100);
    assert_eq!(large["last"], ids[99].as_str());
}

#[test]
fn etags_depend_only_on_content() {
    assert_eq!(etag(b"abc"), etag(b"abc"));
    assert_ne!(etag(b"abc"), etag(b"abd"));
}

#[test]
fn refusals_before_ingest_are_counted_like_http() {
    let t0 = Instant::now();
    let mut engine = engine(CoapConfig::default());
    let mut registry = prometheus_client::registry::Registry::default();
    engine.count_refusals(IngestMetrics::register(&mut registry));
    let text_body = Msg::con(POST, 1)
        .path("events")
        .opt(opt::CONTENT_FORMAT, vec![0]);
    assert_eq!(
        code_of(&only_response(&send(&mut engine, peer(1), &text_body, t0))),
        "4.15"
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"ingot_events_refused_total{protocol="coap",reason="media_type"} 1"#),
        "{text}"
    );
}
