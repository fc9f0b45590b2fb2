//! How fast `write_batch` stores realistic events, and how long opening and listing take.
//!
//! ```text
//! cargo run --release -p ingot-store-sqlite --example write_rate -- [EVENTS] [BATCH] [DIR]
//! ```
//!
//! Writes `EVENTS` (default 1,000,000) events in batches of `BATCH` (default 5,000) into a
//! new database in `DIR` (default: a temp dir, removed at the end), as the store writer
//! would: time-ordered ids, 1,000 devices, a ~150-byte `data` document each, and a
//! checkpoint per batch. Only the `write_batch` calls are timed. A manual measurement, not
//! a test.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ingot_core::{Event, IdGenerator, JsonText, TenantId, Timestamp};
use ingot_store::{Checkpoint, EventStore, ListQuery, Registry};
use ingot_store_sqlite::SqliteStore;

const DEVICES: u64 = 1_000;
const CITIES: [&str; 5] = ["seville", "madrid", "lisbon", "porto", "valencia"];

fn arg<T: std::str::FromStr>(n: usize, default: T) -> Result<T, String> {
    match std::env::args().nth(n) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| format!("argument {n} ({text:?}) is not valid")),
    }
}

/// One weather-station reading; `seq` spreads devices, values and timestamps.
fn reading(ids: &IdGenerator, tenant: TenantId, start: Timestamp, seq: u64) -> Event {
    let device = seq * 7_919 % DEVICES;
    let city = CITIES[(device % CITIES.len() as u64) as usize];
    let ts = start.saturating_add_micros(i64::try_from(seq).unwrap_or(i64::MAX) * 100);
    let temperature = 10.0 + (seq % 250) as f64 / 10.0;
    let humidity = 30 + seq % 60;
    let data = format!(
        r#"{{"station":"ws-{device:04}","city":"{city}","temperature":{temperature:.1},"humidity":{humidity},"pressure":{},"wind":{{"speed":{:.1},"dir":{}}},"battery":{},"fw":"1.4.2","status":"ok"}}"#,
        990 + seq % 40,
        (seq % 120) as f64 / 10.0,
        seq % 360,
        70 + seq % 30,
    );
    Event {
        id: ids.next(ts),
        tenant,
        device: format!("ws-{device:04}"),
        sensor: Some("thermo1".to_owned()),
        ts,
        received: ts,
        kind: Some("temperature".to_owned()),
        value: Some(temperature),
        data: Some(JsonText::from_trusted(data)),
        payload: None,
    }
}

fn rate(events: u64, spent: Duration) -> f64 {
    events as f64 / spent.as_secs_f64().max(1e-9)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: u64 = arg(1, 1_000_000)?;
    let batch: u64 = arg(2, 5_000)?;
    if batch == 0 {
        return Err("the batch size must be at least 1".into());
    }
    let temp = tempfile::tempdir()?;
    let dir: PathBuf = arg(3, temp.path().to_owned())?;
    let path = dir.join("store.db");

    let opened = Instant::now();
    let store = SqliteStore::open(&path)?;
    println!(
        "open (new file, schema, {} readers): {:?}",
        ingot_store_sqlite::READERS,
        opened.elapsed()
    );
    let tenant = store.create_tenant("bench").await?.id;

    let ids = IdGenerator::new();
    let start = Timestamp::now();
    let mut spent = Duration::ZERO;
    let mut window = (0u64, Duration::ZERO);
    let mut data_bytes = 0usize;
    let mut seq = 0u64;
    let mut offset = 0u64;
    while seq < total {
        let n = batch.min(total - seq);
        let events: Vec<Event> = (seq..seq + n)
            .map(|s| reading(&ids, tenant, start, s))
            .collect();
        data_bytes += events
            .iter()
            .map(|e| e.data.as_ref().map_or(0, |d| d.as_str().len()))
            .sum::<usize>();
        seq += n;
        offset += n;
        let checkpoint = Checkpoint {
            consumer: "store-writer".to_owned(),
            topic: "events".to_owned(),
            offsets: vec![((seq / batch % 4) as u32, offset)],
        };
        let began = Instant::now();
        let outcome = store.write_batch(events, &checkpoint).await?;
        let took = began.elapsed();
        if outcome.inserted as u64 != n {
            return Err(format!("expected {n} inserts, got {outcome:?}").into());
        }
        spent += took;
        window = (window.0 + n, window.1 + took);
        if window.0 >= 250_000 || seq == total {
            println!(
                "  {seq:>10} events: {:>9.0} events/s over the last {}",
                rate(window.0, window.1),
                window.0
            );
            window = (0, Duration::ZERO);
        }
    }
    println!(
        "write_batch: {total} events in batches of {batch}: {:?}, {:.0} events/s (avg data {} bytes)",
        spent,
        rate(total, spent),
        data_bytes / usize::try_from(total.max(1)).unwrap_or(1),
    );

    // A few listings on the result, for a first idea of query latency.
    for (what, query) in [
        (
            "newest 100",
            ListQuery {
                limit: 100,
                ..ListQuery::default()
            },
        ),
        (
            "newest 100 of one device",
            ListQuery {
                limit: 100,
                device: Some("ws-0007".into()),
                ..ListQuery::default()
            },
        ),
        (
            "100 from the middle",
            ListQuery {
                limit: 100,
                to: Some(start.saturating_add_micros(i64::try_from(total / 2).unwrap_or(0) * 100)),
                ..ListQuery::default()
            },
        ),
    ] {
        let began = Instant::now();
        let page = store.list_events(tenant, &query).await?;
        println!(
            "list {what}: {} events in {:?}",
            page.events.len(),
            began.elapsed()
        );
    }

    store.close().await?;
    let size = std::fs::metadata(&path)?.len();
    println!(
        "database: {:.1} MB ({:.0} bytes/event)",
        size as f64 / 1e6,
        size as f64 / total.max(1) as f64
    );
    Ok(())
}
