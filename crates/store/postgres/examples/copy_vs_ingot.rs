//! PostgreSQL ingest through Ingot against a raw binary COPY of the same rows, in one run.
//!
//! ```text
//! eval "$(.ci/postgres)"
//! cargo run --release -p ingot-store-postgres --example copy_vs_ingot -- "$INGOT_TEST_POSTGRES_URL" [EVENTS]
//! ```
//!
//! Generates `EVENTS` (default 1,000,000) realistic events — time-ordered ids, 5,000
//! devices, 4 kinds, a ~150-byte `data` document each — and writes every batch of 10,000
//! twice, alternating which goes first:
//!
//! - **peer**: one `COPY … FROM STDIN (FORMAT binary)` of the batch straight into a table
//!   created `LIKE events INCLUDING ALL` (the same columns, collations, primary key and
//!   indexes), in its own transaction: the fastest way rows get into PostgreSQL, with no
//!   idempotency and no checkpoint;
//! - **ingot**: `PostgresStore::write_batch` of the same events with a checkpoint, into a
//!   fresh store: COPY into staging, `INSERT … ON CONFLICT DO NOTHING`, checkpoint, one
//!   transaction.
//!
//! Only the writes are timed. Prints rows/s of both and the ratio (target: Ingot ≥ 0.5×
//! the peer). Everything lives in a schema of its own (`ingot_bench_<pid>`), dropped at
//! the end. A manual measurement, not a test.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use ingot_core::{Event, IdGenerator, JsonText, TenantId, Timestamp};
use ingot_store::{Checkpoint, EventStore, Registry};
use ingot_store_postgres::{PostgresOptions, PostgresStore};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

const DEVICES: u64 = 5_000;
const BATCH: u64 = 10_000;
const KINDS: [&str; 4] = ["temperature", "humidity", "co2", "pressure"];
const CITIES: [&str; 5] = ["seville", "madrid", "lisbon", "porto", "valencia"];

/// JSON text as a binary `jsonb` COPY field (version byte, then the text).
#[derive(Debug)]
struct Jsonb<'a>(&'a str);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

/// Reading `seq` of the fleet: one of 5,000 stations, one of 4 kinds.
fn reading(ids: &IdGenerator, tenant: TenantId, start: Timestamp, seq: u64) -> Event {
    let device = seq * 7_919 % DEVICES;
    let kind = KINDS[(seq % KINDS.len() as u64) as usize];
    let city = CITIES[(device % CITIES.len() as u64) as usize];
    let ts = start.saturating_add_micros(i64::try_from(seq).unwrap_or(i64::MAX) * 100);
    let value = 10.0 + (seq % 250) as f64 / 10.0;
    let data = format!(
        r#"{{"station":"ws-{device:04}","city":"{city}","{kind}":{value:.1},"humidity":{},"wind":{{"speed":{:.1},"dir":{}}},"battery":{},"fw":"1.4.2","status":"ok","seq":{seq}}}"#,
        30 + seq % 60,
        (seq % 120) as f64 / 10.0,
        seq % 360,
        70 + seq % 30,
    );
    Event {
        id: ids.next(ts),
        tenant,
        device: format!("ws-{device:04}"),
        sensor: Some("s1".to_owned()),
        ts,
        received: ts,
        kind: Some(kind.to_owned()),
        value: Some(value),
        data: Some(JsonText::from_trusted(data)),
        payload: None,
    }
}

/// The peer: one binary COPY of `events` into `peer.events`, autocommitted.
async fn copy_batch(client: &tokio_postgres::Client, events: &[Event]) -> anyhow::Result<u64> {
    let sink = client
        .copy_in(
            "COPY peer_events (tenant, ts, received, value, id, device, sensor, kind, data) \
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::FLOAT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::JSONB,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    for e in events {
        let (tenant, ts, received) = (
            i64::from(e.tenant.0),
            e.ts.as_micros(),
            e.received.as_micros(),
        );
        let (id, device) = (e.id.as_str(), e.device.as_str());
        let data = e.data.as_ref().map(|d| Jsonb(d.as_str()));
        writer
            .as_mut()
            .write(&[
                &tenant,
                &ts,
                &received,
                &e.value,
                &id,
                &device,
                &e.sensor.as_deref(),
                &e.kind.as_deref(),
                &data,
            ])
            .await?;
    }
    Ok(writer.as_mut().finish().await?)
}

fn rate(rows: u64, spent: Duration) -> f64 {
    rows as f64 / spent.as_secs_f64().max(1e-9)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        anyhow::bail!("usage: copy_vs_ingot <postgres-url> [events]");
    };
    let total: u64 = match args.next() {
        Some(text) => text.parse()?,
        None => 1_000_000,
    };
    let schema = format!("ingot_bench_{}", std::process::id());

    // The store first: it creates `events` in the bench schema, which the peer copies.
    let store = PostgresStore::connect_with(
        &url,
        PostgresOptions {
            schema: Some(schema.clone()),
            pool_size: 2,
            ..PostgresOptions::default()
        },
    )
    .await?;
    let tenant = store.create_tenant("bench").await?.id;

    let config: tokio_postgres::Config = url.parse()?;
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "SET search_path TO {schema}; \
             CREATE TABLE peer_events (LIKE events INCLUDING ALL)"
        ))
        .await?;
    let settings = client
        .query_one(
            "SELECT version(), current_setting('fsync'), current_setting('synchronous_commit'), \
             current_setting('shared_buffers')",
            &[],
        )
        .await?;
    println!(
        "server: {}\nfsync={} synchronous_commit={} shared_buffers={}",
        settings.get::<_, String>(0),
        settings.get::<_, String>(1),
        settings.get::<_, String>(2),
        settings.get::<_, String>(3),
    );
    println!(
        "{total} events, batches of {BATCH}, {DEVICES} devices, {} kinds; peer and ingot alternate per batch",
        KINDS.len()
    );

    let ids = IdGenerator::new();
    let start = Timestamp::now();
    let (mut peer_time, mut ingot_time) = (Duration::ZERO, Duration::ZERO);
    let (mut seq, mut batch_no, mut data_bytes) = (0u64, 0u64, 0usize);
    while seq < total {
        let n = BATCH.min(total - seq);
        let events: Vec<Event> = (seq..seq + n)
            .map(|s| reading(&ids, tenant, start, s))
            .collect();
        data_bytes += events
            .iter()
            .map(|e| e.data.as_ref().map_or(0, |d| d.as_str().len()))
            .sum::<usize>();
        seq += n;
        let checkpoint = Checkpoint {
            consumer: "store-writer".to_owned(),
            topic: "events".to_owned(),
            offsets: vec![((batch_no % 4) as u32, seq)],
        };
        let peer_first = batch_no % 2 == 0;
        for turn in 0..2 {
            if (turn == 0) == peer_first {
                let began = Instant::now();
                let copied = copy_batch(&client, &events).await?;
                peer_time += began.elapsed();
                anyhow::ensure!(copied == n, "peer copied {copied} of {n}");
            } else {
                let began = Instant::now();
                let outcome = store.write_batch(events.clone(), &checkpoint).await?;
                ingot_time += began.elapsed();
                anyhow::ensure!(outcome.inserted as u64 == n, "ingot: {outcome:?} of {n}");
            }
        }
        batch_no += 1;
        if seq % 200_000 == 0 || seq == total {
            println!(
                "  {seq:>9} events: peer {:>8.0} rows/s, ingot {:>8.0} rows/s",
                rate(seq, peer_time),
                rate(seq, ingot_time)
            );
        }
    }

    let counts = client
        .query_one(
            "SELECT (SELECT count(*) FROM peer_events), (SELECT count(*) FROM events), \
             pg_total_relation_size('peer_events'), pg_total_relation_size('events')",
            &[],
        )
        .await?;
    let (peer_rows, ingot_rows): (i64, i64) = (counts.get(0), counts.get(1));
    anyhow::ensure!(
        peer_rows == ingot_rows && u64::try_from(peer_rows)? == total,
        "row counts differ: peer {peer_rows}, ingot {ingot_rows}"
    );
    let (peer_rate, ingot_rate) = (rate(total, peer_time), rate(total, ingot_time));
    println!(
        "average data document: {} bytes; table + indexes: peer {} MB, ingot {} MB",
        data_bytes / usize::try_from(total.max(1))?,
        counts.get::<_, i64>(2) >> 20,
        counts.get::<_, i64>(3) >> 20,
    );
    println!("raw binary COPY (peer): {peer_rate:>9.0} rows/s ({peer_time:.2?})");
    println!("ingot write_batch:      {ingot_rate:>9.0} rows/s ({ingot_time:.2?})");
    println!(
        "ratio ingot / peer: {:.2} (target >= 0.50)",
        ingot_rate / peer_rate
    );

    store.close().await?;
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await?;
    Ok(())
}
