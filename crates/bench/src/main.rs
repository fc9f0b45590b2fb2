//! `ingot-bench`: measures the release `ingot` binary on this machine, beside a reference
//! measured in the same run, and writes the figures into `docs/benchmarks.md`.
//!
//! `store` (issue #3) measures the store writer and query latencies on 10 million events
//! (see `store.rs`); `postgres` runs the PostgreSQL store beside a raw `COPY`
//! (`postgres.rs`).
//!
//! `coap` (issue #4) and `mqtt` (issue #5) measure Ingot's protocol endpoints beside
//! libcoap and Mosquitto, driven by `ingot sim` (`protocols.rs`); `sim` (issue #7) measures
//! the generator itself against null peers (`capacity.rs`); `plots` draws PNG charts of
//! the protocol figures into `docs/bench/` (`plots.rs`).
//!
//! `scale` (issue #9) measures one replica of each scale-out part (NATS JetStream,
//! PostgreSQL) beside the embedded ones (`scale.rs`).
//!
//! `spine` (issue #2) measures:
//! - the disk's own `write + fdatasync` latency and throughput: the physical limit for
//!   single-record durability, and the ceiling for durable ingest (the reference);
//! - start-to-ready of `ingot serve` on an empty data directory;
//! - durable HTTP NDJSON ingest: concurrent clients posting pre-built batches, every 201
//!   received only after the events are fsynced in the log, with the store writer running.
//!
//! Every load loop is bounded in count and in time, and talks only to 127.0.0.1.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Parser;

mod capacity;
mod peers;
mod plots;
mod postgres;
mod protocols;
mod scale;
mod store;

#[derive(Debug, Parser)]
#[command(
    name = "ingot-bench",
    about = "Benchmarks Ingot against references in one run"
)]
struct Cli {
    /// Which benchmark: `spine`, `store`, `sim`, `coap`, `mqtt`, `plots` or `postgres`.
    suite: String,
    /// The `copy_vs_ingot` example binary (for `postgres`).
    #[arg(long)]
    example: Option<PathBuf>,
    /// The release `ingot` binary (for suites that run the server).
    #[arg(long, default_value = "target/release/ingot")]
    ingot: PathBuf,
    /// Shorter runs (for a quick look; the committed figures come from full runs).
    #[arg(long)]
    quick: bool,
    /// Replace this suite's section of this markdown file with the results.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A markdown table to include verbatim (e.g. the log append benchmark's output).
    #[arg(long)]
    include: Vec<PathBuf>,
    /// Where to put data directories (a real disk, not tmpfs).
    #[arg(long, default_value = "/var/tmp")]
    scratch: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = match cli.suite.as_str() {
        "spine" => rt.block_on(spine(&cli))?,
        "store" => rt.block_on(store::run(&cli.scratch, cli.quick))?,
        "sim" => capacity::run(&cli.ingot, cli.quick)?,
        "coap" => protocols::coap(&cli.ingot, &cli.scratch, cli.quick)?,
        "mqtt" => protocols::mqtt(&cli.ingot, &cli.scratch, cli.quick)?,
        "plots" => plots::run()?,
        "postgres" => {
            let url = std::env::var("INGOT_TEST_POSTGRES_URL")
                .context("INGOT_TEST_POSTGRES_URL is not set (eval \"$(.ci/postgres)\")")?;
            let example = cli
                .example
                .as_deref()
                .context("--example <path of the copy_vs_ingot binary> is needed")?;
            postgres::run(example, &url, cli.quick)?
        }
        "scale" => rt.block_on(scale::run(&cli.ingot, &cli.scratch, cli.quick))?,
        other => {
            bail!(
                "unknown suite `{other}` (known: spine, store, sim, coap, mqtt, plots, postgres, scale)"
            )
        }
    };
    print!("{report}");
    if let Some(out) = &cli.out {
        replace_section(out, &cli.suite, &report)?;
        eprintln!("wrote the {} section of {}", cli.suite, out.display());
    }
    Ok(())
}

/// min / median / max of three or more runs.
fn mmm(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[0],
        values[values.len() / 2],
        values[values.len() - 1],
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct DiskFigures {
    sync_p50_ms: f64,
    sync_p99_ms: f64,
    ceiling_events_per_s: f64,
}

/// The disk itself: 4 KiB write+fdatasync latency, and the events/s of appending the same
/// NDJSON bodies the ingest benchmark sends, one fdatasync per body (the durable ceiling).
fn disk(
    scratch: &Path,
    body: &[u8],
    events_per_body: usize,
    quick: bool,
) -> anyhow::Result<DiskFigures> {
    let dir = tempfile::tempdir_in(scratch)?;
    let mut file = std::fs::File::create(dir.path().join("probe"))?;
    let block = vec![b'x'; 4096];
    let mut lat = Vec::new();
    for _ in 0..if quick { 200 } else { 1000 } {
        file.write_all(&block)?;
        let t = Instant::now();
        file.sync_data()?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    let mut file = std::fs::File::create(dir.path().join("ceiling"))?;
    let started = Instant::now();
    let mut bodies = 0usize;
    while started.elapsed() < Duration::from_secs(if quick { 1 } else { 3 }) && bodies < 100_000 {
        file.write_all(body)?;
        file.sync_data()?;
        bodies += 1;
    }
    let ceiling = (bodies * events_per_body) as f64 / started.elapsed().as_secs_f64();
    Ok(DiskFigures {
        sync_p50_ms: percentile(&lat, 50.0),
        sync_p99_ms: percentile(&lat, 99.0),
        ceiling_events_per_s: ceiling,
    })
}

/// A running `ingot serve`.
struct Server {
    child: Child,
    base: String,
    /// The CoAP endpoint (from the banner).
    coap: Option<std::net::SocketAddr>,
    /// The MQTT endpoint (from the banner).
    mqtt: Option<std::net::SocketAddr>,
    _dir: tempfile::TempDir,
    data: PathBuf,
}

impl Server {
    fn start(ingot: &Path, scratch: &Path) -> anyhow::Result<(Server, Duration)> {
        let dir = tempfile::tempdir_in(scratch)?;
        let data = dir.path().join("data");
        let started = Instant::now();
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
            .arg(&data)
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
            if let Some(rest) = line?.trim().strip_prefix("UI and API") {
                break rest.trim().trim_end_matches('/').to_owned();
            }
        };
        let ready_after = started.elapsed();
        // The banner goes on with the other endpoints, then the data directory.
        let (mut coap, mut mqtt) = (None, None);
        for line in lines.by_ref() {
            let line = line?;
            let line = line.trim();
            let addr = |rest: &str, scheme: &str| {
                rest.trim()
                    .trim_start_matches(scheme)
                    .trim_end_matches("/events")
                    .parse::<std::net::SocketAddr>()
                    .ok()
            };
            if let Some(rest) = line.strip_prefix("CoAP") {
                coap = addr(rest, "coap://");
            } else if let Some(rest) = line.strip_prefix("MQTT ") {
                mqtt = addr(rest, "mqtt://");
            } else if line.starts_with("Data") {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok((
            Server {
                child,
                base,
                coap,
                mqtt,
                _dir: dir,
                data,
            },
            ready_after,
        ))
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

    /// Kills the server (SIGKILL): for measurements done with it, whose data directory is
    /// thrown away, so nobody waits for the store writer to catch up.
    fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// The server's process id.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first admin key.
    fn admin_key(&self) -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(self.data.join("admin.key"))?
            .trim()
            .to_owned())
    }

    /// CPU seconds (user + system) the server process has used so far.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
            f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
        });
        ticks / 100.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A measurement that failed half-way must not leave a server behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Builds an NDJSON body of `n` events of about 100 bytes each.
fn ndjson_body(n: usize, seed: usize) -> Bytes {
    let mut body = String::with_capacity(n * 110);
    for i in 0..n {
        let seq = seed * n + i;
        let _ = writeln!(
            body,
            r#"{{"sensor":"s{}","kind":"temperature","value":{}.{},"data":{{"seq":{seq},"unit":"C","site":"plant-07"}}}}"#,
            seq % 8,
            15 + seq % 20,
            seq % 10
        );
    }
    Bytes::from(body)
}

struct IngestFigures {
    events_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us_per_event: f64,
}

async fn ingest_run(
    ingot: &Path,
    scratch: &Path,
    body: &Bytes,
    per_body: usize,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<IngestFigures> {
    let (server, _) = Server::start(ingot, scratch)?;
    let key = std::fs::read_to_string(server.data.join("admin.key"))?
        .trim()
        .to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let created: serde_json::Value = http
        .post(format!("{}/api/v1/devices", server.base))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "name": "bench-device" }))
        .send()
        .await?
        .json()
        .await?;
    let token = created["token"].as_str().context("no token")?.to_owned();
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, token, body) = (
            http.clone(),
            format!("{}/api/v1/events", server.base),
            token.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            // Bounded in time and in count.
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
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds() - cpu_before;
    server.stop()?;
    latencies.sort_by(f64::total_cmp);
    let events = latencies.len() * per_body;
    Ok(IngestFigures {
        events_per_s: events as f64 / elapsed,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        cpu_us_per_event: cpu / events as f64 * 1e6,
    })
}

async fn spine(cli: &Cli) -> anyhow::Result<String> {
    let runs = 3;
    let per_body = 1000;
    let clients = 8;
    let seconds = if cli.quick { 3 } else { 10 };
    let body = ndjson_body(per_body, 0);

    eprintln!("disk: write + fdatasync ...");
    let disk = disk(&cli.scratch, &body, per_body, cli.quick)?;

    eprintln!("start to ready ...");
    let mut ready = Vec::new();
    for _ in 0..10 {
        let (server, after) = Server::start(&cli.ingot, &cli.scratch)?;
        ready.push(after.as_secs_f64() * 1e3);
        server.stop()?;
    }
    let (ready_min, ready_med, ready_max) = mmm(&mut ready);

    let mut rates = Vec::new();
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut cpu = Vec::new();
    for run in 0..runs {
        eprintln!(
            "durable HTTP NDJSON ingest, run {} of {runs} ({seconds} s) ...",
            run + 1
        );
        let f = ingest_run(&cli.ingot, &cli.scratch, &body, per_body, clients, seconds).await?;
        rates.push(f.events_per_s);
        p50.push(f.p50_ms);
        p99.push(f.p99_ms);
        cpu.push(f.cpu_us_per_event);
    }
    let (r_min, r_med, r_max) = mmm(&mut rates);
    let (_, p50_med, _) = mmm(&mut p50);
    let (_, p99_med, _) = mmm(&mut p99);
    let (_, cpu_med, _) = mmm(&mut cpu);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Spine: durable HTTP ingest, start-up, the disk (issue #2)\n"
    );
    let _ = writeln!(
        out,
        "Command: `bench/run{}` ({}, {} cores). Each ingest figure is min / median / max of {runs} runs of {seconds} s; \
         {clients} keep-alive clients post NDJSON bodies of {per_body} events (~{} bytes each); `fsync = per-batch`, \
         so every 201 follows an `fdatasync` of the log; the store writer runs at the same time.\n",
        if cli.quick { " --quick" } else { "" },
        machine(),
        std::thread::available_parallelism().map_or(0, usize::from),
        body.len() / per_body,
    );
    let _ = writeln!(
        out,
        "| measure | Ingot | reference (same run) | ratio | target |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| durable NDJSON ingest, events/s | {:.0} / **{:.0}** / {:.0} | raw `write`+`fdatasync` of the same bodies: {:.0} | {:.2} | ≥ 200,000 |",
        r_min,
        r_med,
        r_max,
        disk.ceiling_events_per_s,
        r_med / disk.ceiling_events_per_s
    );
    let _ = writeln!(
        out,
        "| ingest request latency (1000 events), p50 / p99 | {p50_med:.2} ms / {p99_med:.2} ms | one 4 KiB fdatasync: {:.2} ms / {:.2} ms | | |",
        disk.sync_p50_ms, disk.sync_p99_ms
    );
    let _ = writeln!(
        out,
        "| server CPU per event (ingest + store writer) | {cpu_med:.2} µs | | | |"
    );
    let _ = writeln!(
        out,
        "| start to ready, empty data dir | {ready_min:.1} / **{ready_med:.1}** / {ready_max:.1} ms | | | ≤ 100 ms |"
    );
    let _ = writeln!(
        out,
        "\nThe disk's `fdatasync` p50 of {:.2} ms bounds single-record durability at about {:.0} records/s per \
         partition; group commit is how Ingot gets past it.\n",
        disk.sync_p50_ms,
        1e3 / disk.sync_p50_ms
    );
    for path in &cli.include {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        out.push_str(text.trim_end());
        out.push_str("\n\n");
    }
    Ok(out)
}

fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` (appending the
/// markers if the file has none).
fn replace_section(path: &Path, name: &str, body: &str) -> anyhow::Result<()> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let text = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n\n".to_owned());
    let section = format!("{begin}\n{body}{end}");
    let new = match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &text[..b], &text[e + end.len()..]),
        _ => format!("{}\n{section}\n", text.trim_end()),
    };
    std::fs::write(path, new)?;
    Ok(())
}
