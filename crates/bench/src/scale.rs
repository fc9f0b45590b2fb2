//! `scale` (issue #9): what one replica of each scale-out part takes on this machine,
//! beside the embedded parts, in one run, and what each costs in CPU per event (the inputs
//! of the capacity model in `docs/scale-out.md`).
//!
//! - **Ingest**, through the real binary: 8 keep-alive clients post NDJSON bodies of 1000
//!   events, as in `spine`. Embedded: `ingot serve` (file log, fsync per batch, SQLite,
//!   its store writer running). Scale-out: an `ingot serve --roles ingest` replica on NATS
//!   JetStream (one `nats-server`, R1, file storage) and PostgreSQL (credentials only).
//!   The reference in the same run is JetStream itself: 8 clients publishing the same
//!   events straight to a stream, pipelined, every acknowledgement awaited.
//! - **Store writer**, the `StoreWriter` that `--roles store-writer` runs, in this process:
//!   the same events preloaded into the log, then moved into a fresh store, for each log
//!   (file, JetStream) and store (SQLite, PostgreSQL), and with two writers sharing the
//!   JetStream group.
//!
//! CPU is read from `/proc` for the `ingot` and `nats-server` processes (user + system).
//! Needs `nats-server` on the PATH and `INGOT_TEST_POSTGRES_URL` (`.ci/postgres`). Every
//! load loop is bounded in count and in time, and talks only to 127.0.0.1.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use ingot_core::{IdGenerator, record};
use ingot_log::file::{FileLog, FileLogConfig};
use ingot_log::{Log, LogMetrics, SyncPolicy};
use ingot_log_nats::testing::{NatsServer, nats_server_binary};
use ingot_log_nats::{NatsLog, NatsLogConfig};
use ingot_store::EventStore;
use ingot_store_postgres::{PostgresOptions, PostgresStore};
use ingot_store_sqlite::SqliteStore;
use ingot_writer::{StoreWriter, WriterMetrics};
use tokio_util::sync::CancellationToken;

use crate::{machine, mmm, ndjson_body, percentile};

/// A replica of the real binary.
struct Replica {
    child: Child,
    base: String,
    data: PathBuf,
}

impl Replica {
    fn start(ingot: &Path, data: &Path, extra: &[&str]) -> anyhow::Result<Replica> {
        let mut child = Command::new(ingot)
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--coap-addr",
                "127.0.0.1:0",
                "--mqtt-addr",
                "127.0.0.1:0",
                "--log-level",
                "warn",
                "--data-dir",
            ])
            .arg(data)
            .args(extra)
            .env_remove("INGOT_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot run {}", ingot.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let Some(line) = lines.next() else {
                bail!("ingot exited before it was ready")
            };
            let line = line?;
            let line = line.trim();
            if let Some(rest) = line
                .strip_prefix("UI and API")
                .or_else(|| line.strip_prefix("HTTP "))
                && let Some(url) = rest.split_whitespace().next()
            {
                break url.trim_end_matches('/').to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Replica {
            child,
            base,
            data: data.to_owned(),
        })
    }

    fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.child.id())
    }

    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!("ingot did not stop within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU seconds (user + system) process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>()
    }) / 100.0
}

/// What the clients send: `per_body` events per request, `clients` at once.
struct Load {
    body: Bytes,
    per_body: usize,
    clients: usize,
}

/// One ingest measurement.
struct Ingest {
    events_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    ingot_cpu_us: f64,
    nats_cpu_us: Option<f64>,
}

/// `clients` clients post `body` to `base` for `seconds`; returns (events, latencies ms, seconds).
async fn post_load(
    base: &str,
    token: &str,
    body: &Bytes,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, token, body) = (
            http.clone(),
            format!("{base}/api/v1/events"),
            token.to_owned(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline && latencies.len() < 1_000_000 {
                let t = Instant::now();
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/x-ndjson")
                    .body(body.clone())
                    .send()
                    .await?;
                if response.status() != 201 {
                    let status = response.status();
                    bail!(
                        "ingest answered {status}: {}",
                        response.text().await.unwrap_or_default()
                    );
                }
                response.bytes().await?;
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort_by(f64::total_cmp);
    Ok((latencies, started.elapsed().as_secs_f64()))
}

async fn device_token(base: &str, admin_key: &str) -> anyhow::Result<String> {
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/devices"))
        .bearer_auth(admin_key)
        .json(&serde_json::json!({ "name": "bench-device" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(created["token"].as_str().context("no token")?.to_owned())
}

fn read_key(dir: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(dir.join("admin.key"))
        .with_context(|| format!("no admin key in {}", dir.display()))?
        .trim()
        .to_owned())
}

/// Durable HTTP ingest into the embedded server.
async fn ingest_embedded(
    ingot: &Path,
    scratch: &Path,
    load: &Load,
    seconds: u64,
) -> anyhow::Result<Ingest> {
    let (body, per_body) = (&load.body, load.per_body);
    let dir = tempfile::tempdir_in(scratch)?;
    let server = Replica::start(ingot, &dir.path().join("data"), &[])?;
    let token = device_token(&server.base, &read_key(&server.data)?).await?;
    let cpu = server.cpu_seconds();
    let (latencies, elapsed) = post_load(&server.base, &token, body, load.clients, seconds).await?;
    let cpu = server.cpu_seconds() - cpu;
    server.stop()?;
    let events = (latencies.len() * per_body) as f64;
    Ok(Ingest {
        events_per_s: events / elapsed,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        ingot_cpu_us: cpu / events * 1e6,
        nats_cpu_us: None,
    })
}

/// A schema of its own on the benchmark's PostgreSQL, dropped at the end of the run.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(url: &str, tag: &str) -> Schema {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Schema {
            url: url.to_owned(),
            name: format!("ingot_t_{now}_{}_{tag}", std::process::id()),
        }
    }

    async fn store(&self) -> anyhow::Result<Arc<PostgresStore>> {
        let options = PostgresOptions {
            schema: Some(self.name.clone()),
            ..PostgresOptions::default()
        };
        Ok(Arc::new(
            PostgresStore::connect_with(&self.url, options).await?,
        ))
    }

    async fn drop_it(&self) {
        if let Ok((client, connection)) =
            tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await
        {
            tokio::spawn(connection);
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                .await;
        }
    }
}

/// Durable HTTP ingest into an `--roles ingest` replica on JetStream.
async fn ingest_nats(
    ingot: &Path,
    scratch: &Path,
    nats: &NatsServer,
    pg_url: &str,
    load: &Load,
    seconds: u64,
) -> anyhow::Result<Ingest> {
    let (body, per_body) = (&load.body, load.per_body);
    let dir = tempfile::tempdir_in(scratch)?;
    let schema = Schema::new(pg_url, "scale_ingest");
    let config = dir.path().join("ingot.toml");
    std::fs::write(
        &config,
        format!(
            "log_url = \"{}\"\nstore_url = \"{pg_url}\"\n[postgres]\nschema = \"{}\"\n",
            nats.url(),
            schema.name
        ),
    )?;
    let config = config.to_string_lossy().into_owned();
    // The query replica creates tenant `default` and its admin key, and registers the device.
    let query = Replica::start(
        ingot,
        &dir.path().join("query"),
        &["--config", &config, "--roles", "query"],
    )?;
    let token = device_token(&query.base, &read_key(&query.data)?).await?;
    let ingest = Replica::start(
        ingot,
        &dir.path().join("ingest"),
        &["--config", &config, "--roles", "ingest"],
    )?;
    let nats_pid = nats.pid().context("nats-server is not running")?;
    let (cpu, nats_cpu) = (ingest.cpu_seconds(), cpu_seconds(nats_pid));
    let (latencies, elapsed) = post_load(&ingest.base, &token, body, load.clients, seconds).await?;
    let (cpu, nats_cpu) = (ingest.cpu_seconds() - cpu, cpu_seconds(nats_pid) - nats_cpu);
    ingest.stop()?;
    query.stop()?;
    schema.drop_it().await;
    let events = (latencies.len() * per_body) as f64;
    Ok(Ingest {
        events_per_s: events / elapsed,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        ingot_cpu_us: cpu / events * 1e6,
        nats_cpu_us: Some(nats_cpu / events * 1e6),
    })
}

/// JetStream alone: `clients` clients publish the records of the ingest body, 1000
/// pipelined publishes at a time, each acknowledgement awaited. Returns (msgs/s, nats µs/msg).
async fn jetstream_raw(
    nats: &NatsServer,
    body: &Bytes,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(f64, f64)> {
    let client = async_nats::connect(nats.url()).await?;
    // Room for every client's 1000 publishes in flight at once.
    let js = async_nats::jetstream::ContextBuilder::new()
        .max_ack_inflight(clients * 1000 * 2)
        .build(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH_RAW".into(),
        subjects: vec!["bench.raw.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let lines: Vec<Bytes> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(Bytes::copy_from_slice)
        .collect();
    let nats_pid = nats.pid().context("nats-server is not running")?;
    let nats_cpu = cpu_seconds(nats_pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (js, lines) = (js.clone(), lines.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < deadline && sent < 50_000_000 {
                let mut acks = Vec::with_capacity(lines.len());
                for line in &lines {
                    acks.push(js.publish(format!("bench.raw.{c}"), line.clone()).await?);
                }
                for ack in acks {
                    ack.await?;
                }
                sent += lines.len() as u64;
            }
            Ok::<_, anyhow::Error>(sent)
        }));
    }
    let mut sent = 0u64;
    for task in tasks {
        sent += task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let nats_cpu = cpu_seconds(nats_pid) - nats_cpu;
    let _ = js.delete_stream("BENCH_RAW").await;
    Ok((sent as f64 / elapsed, nats_cpu / sent as f64 * 1e6))
}

/// Appends `n` events to `log` the way ingest does (per device key, batches of 500).
async fn preload(log: &Arc<dyn Log>, n: u64) -> anyhow::Result<()> {
    let ids = IdGenerator::new();
    let partitions = log.partitions();
    let mut groups: Vec<(Vec<u8>, Vec<Bytes>)> =
        (0..partitions).map(|_| (Vec::new(), Vec::new())).collect();
    let mut pending = Vec::new();
    for i in 0..n {
        let e = crate::store::event(i, n, &ids);
        let key = format!("{}/{}", e.tenant.0, e.device).into_bytes();
        let p = ingot_log::partition_for(&key, partitions) as usize;
        groups[p].0 = key;
        groups[p].1.push(record::to_bytes(&e));
        if groups[p].1.len() == 500 {
            let (key, messages) = std::mem::take(&mut groups[p]);
            let log = log.clone();
            pending.push(tokio::spawn(async move {
                log.append("events", &key, messages).await
            }));
            if pending.len() >= 16 {
                for task in pending.drain(..) {
                    task.await??;
                }
            }
        }
    }
    for task in pending {
        task.await??;
    }
    for (key, messages) in groups {
        if !messages.is_empty() {
            log.append("events", &key, messages).await?;
        }
    }
    Ok(())
}

/// Moves the `n` events of `log` into `store` with `writers` store writers; events/s from
/// their start until the last event is stored.
async fn writer_rate(
    log: Arc<dyn Log>,
    store: Arc<dyn EventStore>,
    writers: usize,
    n: u64,
) -> anyhow::Result<f64> {
    let shutdown = CancellationToken::new();
    let metrics: Vec<WriterMetrics> = (0..writers).map(|_| WriterMetrics::default()).collect();
    let started = Instant::now();
    let tasks: Vec<_> = metrics
        .iter()
        .map(|m| {
            let writer = StoreWriter::new(log.clone(), store.clone(), "events", 10_000, m.clone());
            tokio::spawn(writer.run(shutdown.clone()))
        })
        .collect();
    let deadline = started + Duration::from_secs(600);
    let elapsed = loop {
        let stored: u64 = metrics.iter().map(WriterMetrics::inserted).sum();
        if stored >= n {
            break started.elapsed().as_secs_f64();
        }
        if Instant::now() > deadline {
            bail!("only {stored} of {n} events stored after 10 minutes");
        }
        if let Some(i) = tasks.iter().position(|t| t.is_finished()) {
            let task = tasks.into_iter().nth(i).context("the finished writer")?;
            task.await??;
            bail!("a store writer stopped before storing every event");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    shutdown.cancel();
    for task in tasks {
        task.await??;
    }
    Ok(n as f64 / elapsed)
}

fn file_log(dir: &Path) -> anyhow::Result<Arc<dyn Log>> {
    let config = FileLogConfig {
        dir: dir.join("log"),
        sync: SyncPolicy::Never,
        ..FileLogConfig::default()
    };
    Ok(Arc::new(FileLog::open(config, LogMetrics::default())?))
}

async fn nats_log(nats: &NatsServer, prefix: &str) -> anyhow::Result<Arc<dyn Log>> {
    let config = NatsLogConfig {
        url: nats.url(),
        stream_prefix: prefix.to_owned(),
        subject_prefix: prefix.to_ascii_lowercase(),
        ..NatsLogConfig::default()
    };
    Ok(Arc::new(
        NatsLog::connect(config, LogMetrics::default()).await?,
    ))
}

/// One store-writer measurement: its label and events/s.
struct WriterRun {
    label: &'static str,
    rates: Vec<f64>,
}

pub async fn run(ingot: &Path, scratch: &Path, quick: bool) -> anyhow::Result<String> {
    let Some(binary) = nats_server_binary() else {
        bail!("the scale suite needs nats-server (apt-get install nats-server)");
    };
    let pg_url = std::env::var("INGOT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .context("the scale suite needs PostgreSQL: eval \"$(.ci/postgres)\" first")?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load_1m: f64 = load
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(f64::NAN);
    let runs = if quick { 1 } else { 3 };
    let seconds = if quick { 3 } else { 10 };
    let per_body = 1000;
    let body = ndjson_body(per_body, 0);
    let events: u64 = if quick { 50_000 } else { 200_000 };
    let batches = Load {
        body: body.clone(),
        per_body,
        clients: 8,
    };
    // Devices sending one small event each, as a fleet at one event per 10 s does.
    let singles = Load {
        body: ndjson_body(1, 7),
        per_body: 1,
        clients: 64,
    };

    let mut embedded = Vec::new();
    let mut scaled = Vec::new();
    let mut embedded_single = Vec::new();
    let mut scaled_single = Vec::new();
    let mut raw = Vec::new();
    for run in 0..runs {
        eprintln!(
            "scale: ingest, run {} of {runs} ({seconds} s each) ...",
            run + 1
        );
        embedded.push(ingest_embedded(ingot, scratch, &batches, seconds).await?);
        embedded_single.push(ingest_embedded(ingot, scratch, &singles, seconds).await?);
        let nats = NatsServer::start(&binary)
            .await
            .map_err(anyhow::Error::msg)?;
        scaled.push(ingest_nats(ingot, scratch, &nats, &pg_url, &batches, seconds).await?);
        scaled_single.push(ingest_nats(ingot, scratch, &nats, &pg_url, &singles, seconds).await?);
        raw.push(jetstream_raw(&nats, &body, 8, seconds).await?);
    }

    eprintln!("scale: store writers ({events} events each) ...");
    let mut writer_runs = vec![
        WriterRun {
            label: "file log → SQLite (embedded)",
            rates: Vec::new(),
        },
        WriterRun {
            label: "file log → PostgreSQL",
            rates: Vec::new(),
        },
        WriterRun {
            label: "JetStream → SQLite",
            rates: Vec::new(),
        },
        WriterRun {
            label: "JetStream → PostgreSQL (scale-out)",
            rates: Vec::new(),
        },
        WriterRun {
            label: "JetStream → PostgreSQL, 2 writers sharing the group (total)",
            rates: Vec::new(),
        },
    ];
    for run in 0..runs {
        let dir = tempfile::tempdir_in(scratch)?;
        let nats = NatsServer::start(&binary)
            .await
            .map_err(anyhow::Error::msg)?;
        for (i, writer) in writer_runs.iter_mut().enumerate() {
            eprintln!("scale: {} (run {} of {runs}) ...", writer.label, run + 1);
            let log = if i < 2 {
                file_log(&dir.path().join(format!("log-{i}")))?
            } else {
                nats_log(&nats, &format!("W{i}")).await?
            };
            preload(&log, events).await?;
            let schema = Schema::new(&pg_url, &format!("scale_w{i}"));
            let store: Arc<dyn EventStore> = if i % 2 == 0 && i != 4 {
                Arc::new(SqliteStore::open(
                    &dir.path().join(format!("store-{i}.db")),
                )?)
            } else {
                schema.store().await?
            };
            let writers = if i == 4 { 2 } else { 1 };
            writer
                .rates
                .push(writer_rate(log.clone(), store, writers, events).await?);
            log.close().await?;
            schema.drop_it().await;
        }
    }

    let med = |xs: Vec<f64>| {
        let mut xs = xs;
        if xs.is_empty() {
            return (f64::NAN, f64::NAN, f64::NAN);
        }
        mmm(&mut xs)
    };
    let (e_min, e_med, e_max) = med(embedded.iter().map(|f| f.events_per_s).collect());
    let (n_min, n_med, n_max) = med(scaled.iter().map(|f| f.events_per_s).collect());
    let (r_min, r_med, r_max) = med(raw.iter().map(|r| r.0).collect());
    let e_p = (
        med(embedded.iter().map(|f| f.p50_ms).collect()).1,
        med(embedded.iter().map(|f| f.p99_ms).collect()).1,
    );
    let n_p = (
        med(scaled.iter().map(|f| f.p50_ms).collect()).1,
        med(scaled.iter().map(|f| f.p99_ms).collect()).1,
    );
    let e_cpu = med(embedded.iter().map(|f| f.ingot_cpu_us).collect()).1;
    let n_cpu = med(scaled.iter().map(|f| f.ingot_cpu_us).collect()).1;
    let n_nats_cpu = med(scaled.iter().filter_map(|f| f.nats_cpu_us).collect()).1;
    let r_nats_cpu = med(raw.iter().map(|r| r.1).collect()).1;
    let single = |runs: &[Ingest]| {
        (
            med(runs.iter().map(|f| f.events_per_s).collect()),
            med(runs.iter().map(|f| f.p50_ms).collect()).1,
            med(runs.iter().map(|f| f.p99_ms).collect()).1,
            med(runs.iter().map(|f| f.ingot_cpu_us).collect()).1,
            med(runs.iter().filter_map(|f| f.nats_cpu_us).collect()).1,
        )
    };
    let es = single(&embedded_single);
    let ns = single(&scaled_single);

    let mut out = String::new();
    let _ = writeln!(out, "### Scale-out: one replica of each part (issue #9)\n");
    let _ = writeln!(
        out,
        "Command: `bench/run{}` ({}, {} cores; load average {load_1m:.2} when the suite started). \
         Figures are min / **median** / max of {runs} run(s). Ingest: 8 keep-alive clients post NDJSON \
         bodies of {per_body} events for {seconds} s. Embedded: `ingot serve` (file log, fsync per batch, \
         SQLite; its store writer runs meanwhile). Scale-out: `ingot serve --roles ingest` on one \
         `nats-server` {} (JetStream, R1, file storage) and PostgreSQL 15. Everything, the load \
         generator included, shares the same 2 cores.\n",
        if quick { " --quick" } else { "" },
        machine(),
        std::thread::available_parallelism().map_or(0, usize::from),
        nats_version(&binary),
    );
    let _ = writeln!(
        out,
        "| ingest (HTTP NDJSON, durable acknowledgements) | events/s | p50 / p99 per 1000-event request | ingot CPU per event | nats-server CPU per event |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| embedded (file log + SQLite, one process) | {e_min:.0} / **{e_med:.0}** / {e_max:.0} | {:.1} / {:.1} ms | {e_cpu:.2} µs (with its store writer) | |",
        e_p.0, e_p.1
    );
    let _ = writeln!(
        out,
        "| scale-out ingest replica (JetStream R1) | {n_min:.0} / **{n_med:.0}** / {n_max:.0} | {:.1} / {:.1} ms | {n_cpu:.2} µs | {n_nats_cpu:.2} µs |",
        n_p.0, n_p.1
    );
    let _ = writeln!(
        out,
        "| reference: JetStream alone (8 clients, 1000 pipelined publishes each, acks awaited) | {r_min:.0} / **{r_med:.0}** / {r_max:.0} | | | {r_nats_cpu:.2} µs |"
    );
    let _ = writeln!(
        out,
        "| embedded, one event per request (64 clients) | {:.0} / **{:.0}** / {:.0} | {:.2} / {:.2} ms | {:.2} µs | |",
        es.0.0, es.0.1, es.0.2, es.1, es.2, es.3
    );
    let _ = writeln!(
        out,
        "| scale-out ingest replica, one event per request (64 clients) | {:.0} / **{:.0}** / {:.0} | {:.2} / {:.2} ms | {:.2} µs | {:.2} µs |",
        ns.0.0, ns.0.1, ns.0.2, ns.1, ns.2, ns.3, ns.4
    );
    let _ = writeln!(
        out,
        "\nWith 1000-event bodies, Ingot on JetStream reaches {:.2} of JetStream's own rate on this machine, and {:.2} of the embedded log's.\n",
        n_med / r_med,
        n_med / e_med
    );
    let _ = writeln!(
        out,
        "| store writer (one replica unless said), {events} events preloaded | events/s |"
    );
    let _ = writeln!(out, "|---|---|");
    let mut writer_medians = Vec::new();
    for writer in writer_runs {
        let (lo, mid, hi) = med(writer.rates);
        writer_medians.push(mid);
        let _ = writeln!(
            out,
            "| {} | {lo:.0} / **{mid:.0}** / {hi:.0} |",
            writer.label
        );
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "Inputs of the capacity model (docs/scale-out.md): per event, an ingest replica spends \
         {n_cpu:.2} µs of CPU in batches of 1000 and {:.2} µs one event per request, nats-server \
         {n_nats_cpu:.2} µs and {:.2} µs; one store writer moves {:.0} events/s from JetStream into \
         PostgreSQL on this machine.\n",
        ns.3,
        ns.4,
        writer_medians.get(3).copied().unwrap_or(f64::NAN)
    );
    Ok(out)
}

fn nats_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches("nats-server: ")
                .to_owned()
        })
        .unwrap_or_default()
}
