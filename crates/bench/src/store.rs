//! `store` (issue #3): the store writer's rate and query latencies on 10 million events.
//!
//! The data set: 5,000 devices over 30 days, each reporting one of 4 kinds every ~22
//! minutes from one of 50 sensors in one of 20 cities, with a collector-format document
//! (~140 bytes of JSON) as `data`. The events are first appended to a real log (the way
//! ingest leaves them), then the real `StoreWriter` moves them into a fresh SQLite store;
//! its rate is the time from start until it has caught up. Queries then run through the
//! store API, each repeated, reporting the median and the 95th percentile.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ingot_core::{Event, IdGenerator, JsonText, TenantId, Timestamp, record};
use ingot_log::file::{FileLog, FileLogConfig};
use ingot_log::{Log, LogMetrics, SyncPolicy};
use ingot_query::{Agg, Field, Interval, IntervalSpec, SeriesQuery};
use ingot_store::{EventStore, ListQuery};
use ingot_store_sqlite::SqliteStore;
use ingot_writer::{StoreWriter, WriterMetrics};
use tokio_util::sync::CancellationToken;

pub const DEVICES: u64 = 5_000;
const KINDS: [&str; 4] = ["temperature", "humidity", "co2", "pressure"];
const CITIES: [&str; 20] = [
    "seville", "london", "sydney", "new-york", "madrid", "paris", "berlin", "rome", "tokyo",
    "lima", "oslo", "cairo", "delhi", "quito", "dakar", "perth", "miami", "denver", "osaka",
    "porto",
];
/// 2026-10-01T00:00:00Z.
pub const BASE: i64 = 1_790_812_800_000_000;
pub const DAY: i64 = 86_400_000_000;
pub const TENANT: TenantId = TenantId(1);

/// The `i`-th event of a data set of `n` spread evenly over 30 days.
pub fn event(i: u64, n: u64, ids: &IdGenerator) -> Event {
    let device = i % DEVICES;
    let kind = KINDS[(device % 4) as usize];
    let ts = BASE + (i as i64) * (30 * DAY / n as i64);
    let value = match kind {
        "temperature" => 10.0 + ((i * 7919) % 300) as f64 / 10.0,
        "humidity" => 30.0 + ((i * 104_729) % 600) as f64 / 10.0,
        "co2" => 400.0 + ((i * 31) % 800) as f64,
        _ => 990.0 + ((i * 13) % 400) as f64 / 10.0,
    };
    let city = CITIES[(device % 20) as usize];
    let data = format!(
        r#"{{"namespace":"default","sender":"dev-{device:04}","origin":"{city}","payload":{{"type":"{kind}","value":{value}}},"battery":{},"seq":{i}}}"#,
        90 - (i % 60)
    );
    Event {
        id: ids.next(Timestamp::from_micros(ts)),
        tenant: TENANT,
        device: format!("dev-{device:04}"),
        sensor: Some(format!("s{:02}", device % 50)),
        ts: Timestamp::from_micros(ts),
        received: Timestamp::from_micros(ts),
        kind: Some(kind.to_owned()),
        value: Some(value),
        data: Some(JsonText::from_trusted(data)),
        payload: None,
    }
}

/// Fills a log with `n` events the way ingest would (per device key), quickly (no fsync).
async fn fill_log(dir: &Path, n: u64) -> anyhow::Result<Arc<dyn Log>> {
    let config = FileLogConfig {
        dir: dir.join("log"),
        sync: SyncPolicy::Never,
        ..FileLogConfig::default()
    };
    let log: Arc<dyn Log> = Arc::new(FileLog::open(config, LogMetrics::default())?);
    let ids = IdGenerator::new();
    let partitions = log.partitions();
    let mut groups: Vec<(Vec<u8>, Vec<Bytes>)> =
        (0..partitions).map(|_| (Vec::new(), Vec::new())).collect();
    for i in 0..n {
        let e = event(i, n, &ids);
        let key = format!("{}/{}", e.tenant.0, e.device).into_bytes();
        let p = ingot_log::partition_for(&key, partitions) as usize;
        groups[p].0 = key;
        groups[p].1.push(record::to_bytes(&e));
        if groups[p].1.len() == 2_000 {
            let (key, messages) = std::mem::take(&mut groups[p]);
            log.append("events", &key, messages).await?;
        }
    }
    for (key, messages) in groups {
        if !messages.is_empty() {
            log.append("events", &key, messages).await?;
        }
    }
    Ok(log)
}

struct Timing {
    p50_ms: f64,
    p95_ms: f64,
}

async fn time<F, Fut, T>(runs: usize, mut f: F) -> anyhow::Result<Timing>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    f().await?; // warm-up
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok(Timing {
        p50_ms: ms[ms.len() / 2],
        p95_ms: ms[(ms.len() * 95 / 100).min(ms.len() - 1)],
    })
}

fn interval(text: &str) -> Interval {
    match Interval::parse_spec(text) {
        Ok(IntervalSpec::Fixed(i)) => i,
        _ => Interval::from_micros(3_600_000_000),
    }
}

pub async fn run(scratch: &Path, quick: bool) -> anyhow::Result<String> {
    let n: u64 = if quick { 1_000_000 } else { 10_000_000 };
    // The store writer's `store.writer_batch`: one SQLite transaction per batch. Each
    // transaction dirties one index leaf per active device, so larger batches amortise
    // that (50k: 84k events/s, 200k: 115k events/s on 3M events; see docs/store.md).
    let batch: usize = 200_000;
    let dir = tempfile::tempdir_in(scratch)?;
    eprintln!("store: appending {n} events to a log ...");
    let started = Instant::now();
    let log = fill_log(dir.path(), n).await?;
    let fill_s = started.elapsed().as_secs_f64();

    eprintln!("store: the store writer moves them into SQLite ...");
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db"))?);
    let writer = StoreWriter::new(
        log.clone(),
        store.clone(),
        "events",
        batch,
        WriterMetrics::default(),
    );
    let stop = CancellationToken::new();
    stop.cancel(); // drain mode: run until caught up with the log, then return
    let started = Instant::now();
    writer.run(stop).await?;
    let writer_s = started.elapsed().as_secs_f64();
    let writer_rate = n as f64 / writer_s;
    let db_bytes: u64 = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("store.db"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();

    eprintln!("store: queries ...");
    let runs = if quick { 5 } else { 20 };
    let device = format!("dev-{:04}", 42);
    let month = SeriesQuery {
        filter: ingot_query::parse(&format!("device:{device}"))?,
        field: Field::Value,
        agg: Agg::Avg,
        interval: interval("1h"),
        from: Timestamp::from_micros(BASE),
        to: Timestamp::from_micros(BASE + 30 * DAY),
        group_by: None,
        top: 10,
        other: false,
    };
    // A device reports every 30 days × 5,000 / n; 90% of the hours it could fill, at most 720.
    let busy_hours = (n / DEVICES).min(720) * 9 / 10;
    let hourly_avg = time(runs, || {
        let (store, q) = (store.clone(), month.clone());
        async move {
            let s = store.series(TENANT, &q).await?;
            let busy = s[0].points.iter().filter(|p| p.1.is_some()).count() as u64;
            anyhow::ensure!(
                s[0].points.len() == 720 && busy >= busy_hours,
                "only {busy} busy hours"
            );
            Ok(())
        }
    })
    .await?;
    let day = SeriesQuery {
        filter: ingot_query::Filter::All,
        field: Field::Value,
        agg: Agg::Percentile(99.0),
        interval: interval("1h"),
        from: Timestamp::from_micros(BASE + 14 * DAY),
        to: Timestamp::from_micros(BASE + 15 * DAY),
        group_by: Some(Field::Sensor),
        top: 10,
        other: false,
    };
    let p99_by_sensor = time(runs, || {
        let (store, q) = (store.clone(), day.clone());
        async move {
            let s = store.series(TENANT, &q).await?;
            anyhow::ensure!(s.len() == 10 && s[0].points.len() == 24);
            Ok(())
        }
    })
    .await?;
    let newest = ListQuery {
        filter: ingot_query::parse("kind:temperature and origin:seville")?,
        limit: 100,
        ..ListQuery::default()
    };
    let newest_filtered = time(runs, || {
        let (store, q) = (store.clone(), newest.clone());
        async move {
            let page = store.list_events(TENANT, &q).await?;
            anyhow::ensure!(page.events.len() == 100);
            Ok(())
        }
    })
    .await?;
    let data_range = ListQuery {
        filter: ingot_query::parse("origin:seville and payload.value > 30")?,
        from: Some(Timestamp::from_micros(BASE + 20 * DAY)),
        to: Some(Timestamp::from_micros(BASE + 21 * DAY)),
        limit: 100,
        total: true,
        histogram: Some(interval("1h")),
        ..ListQuery::default()
    };
    let day_total = time(runs, || {
        let (store, q) = (store.clone(), data_range.clone());
        async move {
            let page = store.list_events(TENANT, &q).await?;
            anyhow::ensure!(page.total.unwrap_or(0) > 0);
            Ok(())
        }
    })
    .await?;
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await?;
    }

    let mut out = String::new();
    let _ = writeln!(out, "### Store and query on SQLite (issue #3)\n");
    let _ = writeln!(
        out,
        "Command: `bench/run{}`. {n} events (5,000 devices, 4 kinds, 50 sensors, 20 cities, 30 days, \
         collector-format `data` of ~140 bytes) appended to a log in {fill_s:.0} s, then moved into a fresh \
         SQLite store by the real store writer (batches of {batch}). Queries go through the store API \
         (in process, no HTTP), each run {runs} times after a warm-up: median / p95.\n",
        if quick { " --quick" } else { "" },
    );
    let _ = writeln!(out, "| measure | Ingot | target |");
    let _ = writeln!(out, "|---|---|---|");
    let _ = writeln!(
        out,
        "| store writer, log → SQLite, events/s | **{writer_rate:.0}** ({writer_s:.1} s) | ≥ 150,000 |"
    );
    let _ = writeln!(
        out,
        "| store size on disk | {:.0} bytes/event ({:.2} GB) | |",
        db_bytes as f64 / n as f64,
        db_bytes as f64 / 1e9
    );
    let _ = writeln!(
        out,
        "| hourly average over 30 days, one device (`device:{device}`, 720 buckets) | **{:.1}** / {:.1} ms | ≤ 50 ms |",
        hourly_avg.p50_ms, hourly_avg.p95_ms
    );
    let _ = writeln!(
        out,
        "| p99 per hour, grouped by sensor (top 10), one day | **{:.1}** / {:.1} ms | ≤ 300 ms |",
        p99_by_sensor.p50_ms, p99_by_sensor.p95_ms
    );
    let _ = writeln!(
        out,
        "| newest 100 matching `kind:temperature and origin:seville` | **{:.1}** / {:.1} ms | ≤ 20 ms |",
        newest_filtered.p50_ms, newest_filtered.p95_ms
    );
    let _ = writeln!(
        out,
        "| one day, `origin:seville and payload.value > 30`: page + total + hourly histogram | {:.1} / {:.1} ms | |",
        day_total.p50_ms, day_total.p95_ms
    );
    out.push('\n');
    drop(log);
    Ok(out)
}
