//! The datagram handler: a script of datagrams from a few peers, with time passing, jobs
//! completing and events arriving, must never panic, must keep every bound, and must only
//! ever send well-formed CoAP.
//!
//! Input format, repeated: `[control, length, datagram bytes...]`. `control` picks the
//! peer (2 bits), whether pending jobs complete now (1 bit), whether an event for the
//! observed device arrives (1 bit) and how far the clock moves (4 bits, in 250 ms steps).
//! `length` counts 8-byte units when the event bit is set, so Block1-sized datagrams are
//! reachable too.

#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::Packet;
use ingot_adapter_coap::engine::{Engine, Job, Outcome, Output, Work};
use ingot_adapter_coap::{CoapConfig, CoapMetrics, RequestError};
use ingot_core::{Event, EventId, TenantId, Timestamp};
use libfuzzer_sys::fuzz_target;

fn config() -> CoapConfig {
    CoapConfig {
        max_body_bytes: 8192,
        max_in_flight: 8,
        max_in_flight_per_endpoint: 4,
        dedup_capacity: 64,
        max_block_transfers: 2,
        max_block_transfers_per_endpoint: 1,
        block2_cache_bytes: 4096,
        max_observers: 4,
        max_observers_per_endpoint: 2,
        max_endpoints: 3,
        exchange_lifetime: Duration::from_secs(20),
        non_lifetime: Duration::from_secs(10),
        observe_con_interval: Duration::from_secs(2),
        ..CoapConfig::default()
    }
}

fn outcome(work: &Work, n: usize) -> Outcome {
    match work {
        Work::Ingest { .. } if n % 5 == 4 => {
            Outcome::Failed(RequestError::Overloaded { max_age: 1 })
        }
        Work::Ingest { .. } => {
            Outcome::Created(vec![EventId::parse("01JFUZZ").unwrap(); n % 3 + 1])
        }
        Work::Authorize { .. } => Outcome::Authorized,
        Work::List { .. } => Outcome::Listed(vec![b'x'; 100 + n * 97 % 3000].into()),
        Work::Latest { .. } => Outcome::Latest {
            tenant: TenantId(1),
            device: "d".into(),
            body: vec![b'y'; n * 131 % 2500].into(),
        },
    }
}

fn event(value: f64) -> Event {
    Event {
        id: EventId::parse("01JFUZZ").unwrap(),
        tenant: TenantId(1),
        device: "d".into(),
        sensor: None,
        ts: Timestamp::from_micros(0),
        received: Timestamp::from_micros(0),
        kind: None,
        value: Some(value),
        data: None,
        payload: None,
    }
}

fn check(engine: &Engine, out: &mut Output, pending: &mut Vec<Job>) {
    for transmit in out.transmits.drain(..) {
        assert!(
            Packet::from_bytes(&transmit.bytes).is_ok(),
            "the server sent malformed CoAP"
        );
    }
    pending.append(&mut out.jobs);
    let stats = engine.stats();
    assert!(stats.in_flight <= 8, "{stats:?}");
    assert!(stats.endpoints <= 3, "{stats:?}");
    assert!(stats.remembered_exchanges <= 64, "{stats:?}");
    assert!(stats.uploads <= 2, "{stats:?}");
    assert!(stats.representation_bytes <= 4096, "{stats:?}");
    assert!(stats.observers <= 4, "{stats:?}");
    assert_eq!(stats.in_flight, pending.len(), "{stats:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut engine) = Engine::new(config(), CoapMetrics::default(), 7) else {
        return;
    };
    let mut now = Instant::now();
    let mut out = Output::default();
    let mut pending: Vec<Job> = Vec::new();
    let mut completed = 0usize;
    let mut rest = data;
    while let [control, length, tail @ ..] = rest {
        let unit = if control & 0x08 != 0 { 8 } else { 1 };
        let len = (usize::from(*length) * unit).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        let peer = SocketAddr::from(([127, 0, 0, 1], 40_000 + u16::from(control & 0x03)));
        now += Duration::from_millis(u64::from(control >> 4) * 250);
        engine.handle_datagram(peer, datagram, now, &mut out);
        check(&engine, &mut out, &mut pending);
        if control & 0x04 != 0 {
            for job in pending.drain(..) {
                completed += 1;
                let outcome = outcome(&job.work, completed);
                engine.complete(job.id, outcome, now, &mut out);
            }
            check(&engine, &mut out, &mut pending);
        }
        if control & 0x08 != 0 {
            engine.notify(&event(completed as f64), now, &mut out);
        }
        engine.on_timer(now, &mut out);
        check(&engine, &mut out, &mut pending);
    }
    engine.begin_shutdown(&mut out);
    for job in pending.drain(..) {
        engine.complete(job.id, Outcome::Authorized, now, &mut out);
    }
    check(&engine, &mut out, &mut pending);
    assert_eq!(engine.in_flight(), 0);
});
