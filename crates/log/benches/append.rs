//! Append throughput and latency of the segment-file log on the real disk, next to the
//! disk's own `fdatasync` latency.
//!
//! ```text
//! cargo bench -p ingot-log --bench append
//! ```
//!
//! 100-byte records, `SyncPolicy::PerBatch` (every acknowledgement waited for an fdatasync),
//! batches of 1, 100 and 1000 records from 1, 4 and 64 concurrent appenders, each with its own
//! key (so 4 and more appenders spread over the 4 partitions). Each configuration runs on a
//! fresh log under /var/tmp until it wrote 2 million records or for 3 seconds. Prints a
//! markdown table.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ingot_log::file::{FileLog, FileLogConfig};
use ingot_log::{Log, LogMetrics, SyncPolicy};

const RECORD_BYTES: usize = 100;
const MAX_RECORDS: u64 = 2_000_000;
const MAX_TIME: Duration = Duration::from_secs(3);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// p50 and p99 of a 4 KiB write followed by fdatasync, for one second.
fn fdatasync_latency(dir: &Path) -> std::io::Result<(Duration, Duration, usize)> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("fsync-probe"))?;
    let block = [0x5au8; 4096];
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) && samples.len() < 20_000 {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    Ok((
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.len(),
    ))
}

struct Outcome {
    records: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn run(log: Arc<FileLog>, batch: usize, appenders: usize) -> Outcome {
    let records: Vec<Bytes> = (0..batch)
        .map(|i| Bytes::from(vec![b'a' + (i % 26) as u8; RECORD_BYTES]))
        .collect();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..appenders {
        let (log, records, done) = (log.clone(), records.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let key = format!("device-{a}");
            let mut latencies = Vec::new();
            while done.load(Ordering::Relaxed) < MAX_RECORDS && started.elapsed() < MAX_TIME {
                let t = Instant::now();
                log.append("bench", key.as_bytes(), records.clone())
                    .await
                    .expect("append");
                latencies.push(t.elapsed());
                done.fetch_add(records.len() as u64, Ordering::Relaxed);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("appender"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Outcome {
        records: done.load(Ordering::Relaxed),
        elapsed,
        latencies,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = tempfile::Builder::new()
        .prefix("ingot-log-bench-")
        .tempdir_in("/var/tmp")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let (p50, p99, n) = fdatasync_latency(base.path())?;
    println!("#### Raw log append (`cargo bench -p ingot-log --bench append`)\n");
    println!(
        "Disk: 4 KiB write + fdatasync, {n} samples: p50 {} ms, p99 {} ms\n",
        ms(p50),
        ms(p99)
    );

    let started = Instant::now();
    let empty = FileLog::open(
        FileLogConfig {
            dir: base.path().join("open-empty"),
            ..FileLogConfig::default()
        },
        LogMetrics::default(),
    )?;
    let open_empty = started.elapsed();
    runtime.block_on(empty.close())?;
    println!("Open of an empty log directory: {} ms\n", ms(open_empty));

    println!(
        "| batch | appenders | records | seconds | records/s | MB/s | append p50 ms | append p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut best = 0.0f64;
    let mut reopen = None;
    for batch in [1usize, 100, 1000] {
        for appenders in [1usize, 4, 64] {
            let dir = base.path().join(format!("b{batch}-a{appenders}"));
            let config = FileLogConfig {
                dir: dir.clone(),
                sync: SyncPolicy::PerBatch,
                ..FileLogConfig::default()
            };
            let log = Arc::new(FileLog::open(config.clone(), LogMetrics::default())?);
            let outcome = runtime.block_on(run(log.clone(), batch, appenders));
            runtime.block_on(log.close())?;
            let secs = outcome.elapsed.as_secs_f64();
            let rate = outcome.records as f64 / secs;
            best = best.max(rate);
            println!(
                "| {batch} | {appenders} | {} | {secs:.2} | {rate:.0} | {:.1} | {} | {} |",
                outcome.records,
                rate * RECORD_BYTES as f64 / 1e6,
                ms(percentile(&outcome.latencies, 0.5)),
                ms(percentile(&outcome.latencies, 0.99)),
            );
            drop(log);
            if batch == 1000 && appenders == 64 {
                let started = Instant::now();
                let reopened = FileLog::open(config, LogMetrics::default())?;
                reopen = Some((started.elapsed(), outcome.records));
                runtime.block_on(reopened.close())?;
            }
            // Keep the disk as empty as at the start for the next configuration.
            std::fs::remove_dir_all(&dir)?;
        }
    }
    if let Some((elapsed, records)) = reopen {
        println!(
            "\nReopen (recovery) of the 1000×64 log, {records} records: {} ms",
            ms(elapsed)
        );
    }
    println!("\nBest: {best:.0} records/s (target ≥ 500000 with fsync per batch)");
    Ok(())
}
