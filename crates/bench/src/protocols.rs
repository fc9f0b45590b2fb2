//! `coap` (issue #4) and `mqtt` (issue #5): Ingot beside a real peer in the same run,
//! both driven by `ingot sim`.
//!
//! - CoAP: libcoap's example server (`coap-server`, `-d` so that a POST creates a
//!   resource and later POSTs update it: 2.01 then 2.04, in memory). Ingot answers 2.01
//!   only after the event is fsynced in its log.
//! - MQTT: Mosquitto with persistence off (no fsync at all). Ingot's PUBACK comes after
//!   the fsync.
//!
//! Every figure is min / median / max of 3 runs; Ingot and the peer alternate, each run
//! on a fresh server (Ingot: a fresh data directory, devices provisioned with their own
//! tokens before the clock starts). Server CPU is the process's user + system time from
//! `/proc/<pid>/stat` over the generator's run, divided by the requests acknowledged;
//! Ingot's includes its store writer, which runs meanwhile. The generator shares the
//! machine's two cores with the server in both cases.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ingot_sim::Report;
use ingot_sim::scenario::{ScenarioConfig, ScenarioKind};
use serde::{Deserialize, Serialize};

use crate::peers::{self, Libcoap, Mosquitto, cpu_seconds, rss_kib};
use crate::{Server, machine, mmm};

/// Seconds of load per run (full runs).
const SECONDS: u64 = 3;

/// One comparison for the throughput plot: min, median, max of each side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bars {
    /// What was measured.
    pub label: String,
    /// Ingot's figures.
    pub ingot: [f64; 3],
    /// The peer's figures.
    pub peer: [f64; 3],
    /// The peer's name.
    pub peer_name: String,
}

/// One latency distribution for the latency plot (ms at p5, p25, p50, p75, p95, p99).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Curve {
    /// Whose and of what.
    pub label: String,
    /// The percentiles.
    pub ms: [f64; 6],
}

/// What a suite leaves for the plots.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Figures {
    /// Throughput comparisons.
    pub bars: Vec<Bars>,
    /// Latency distributions.
    pub curves: Vec<Curve>,
}

/// One measured run.
#[derive(Debug, Clone)]
struct Sample {
    report: Report,
    /// Acknowledged per second (sent per second for QoS 0).
    rate: f64,
    /// Server CPU per request, µs.
    cpu_us: f64,
    /// Server memory before the load and at its peak, KiB.
    rss_base: u64,
    rss_peak: u64,
    /// Generator CPU per request, µs.
    sim_cpu_us: f64,
    /// Events the server says it accepted (Ingot, unacknowledged QoS 0 only).
    accepted: Option<u64>,
}

impl Sample {
    fn p(&self, which: fn(&ingot_sim::report::Percentiles) -> f64) -> f64 {
        self.report.latency_ms.as_ref().map_or(f64::NAN, which)
    }

    fn curve(&self) -> [f64; 6] {
        [
            self.p(|p| p.p5),
            self.p(|p| p.p25),
            self.p(|p| p.p50),
            self.p(|p| p.p75),
            self.p(|p| p.p95),
            self.p(|p| p.p99),
        ]
    }
}

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Ingot,
    Peer,
}

/// A protocol benchmark's setting.
struct Bench<'a> {
    ingot: &'a Path,
    scratch: &'a Path,
    protocol: &'static str,
    /// The exact commands, for the report.
    commands: Vec<String>,
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Bench<'_> {
    /// Runs the load `load` (`ingot sim` arguments without target and credentials)
    /// against a fresh server of `side`; `devices` are provisioned on Ingot.
    fn run(&mut self, side: Side, load: &[String], devices: usize) -> anyhow::Result<Sample> {
        let shown = format!(
            "ingot sim {} --target <{}>{}",
            load.join(" "),
            if side == Side::Ingot { "ingot" } else { "peer" },
            if side == Side::Ingot {
                " --tokens-file <provisioned> --idle-token <admin key>"
            } else {
                ""
            }
        );
        if !self.commands.contains(&shown) {
            self.commands.push(shown);
        }
        match side {
            Side::Ingot => self.run_ingot(load, devices),
            Side::Peer => self.run_peer(load),
        }
    }

    fn run_ingot(&self, load: &[String], devices: usize) -> anyhow::Result<Sample> {
        let (server, _) = Server::start(self.ingot, self.scratch)?;
        let key = server.admin_key()?;
        let target = match self.protocol {
            "coap" => server.coap.context("the banner names no CoAP endpoint")?,
            _ => server
                .mqtt
                .context("the banner names no MQTT endpoint (is MQTT served?)")?,
        };
        let scenario = ScenarioConfig::new(ScenarioKind::Flat);
        let names: Vec<String> = (0..devices)
            .map(|i| scenario.device_name(i, devices))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let tokens = rt.block_on(ingot_sim::provision::provision(&server.base, &key, &names))?;
        let dir = tempfile::tempdir()?;
        let tokens_file = dir.path().join("tokens");
        std::fs::write(&tokens_file, tokens.join("\n"))?;
        let mut all = load.to_vec();
        all.extend([
            "--target".into(),
            target.to_string(),
            "--tokens-file".into(),
            tokens_file.display().to_string(),
            "--idle-token".into(),
            key,
        ]);
        let pid = server.pid();
        let rss_base = rss_kib(pid);
        let cpu_before = cpu_seconds(pid);
        let run = peers::sim(self.ingot, &all, Some(pid))?;
        let cpu = cpu_seconds(pid) - cpu_before;
        // Without acknowledgements, ask the server what it ingested (once it settles).
        let accepted = if run.report.run.answered {
            None
        } else {
            let mut last = None;
            let settle = Instant::now() + Duration::from_secs(5);
            loop {
                let now = rt.block_on(accepted_mqtt(&server.base));
                if (now.is_some() && now == last) || Instant::now() > settle {
                    break now;
                }
                last = now;
                std::thread::sleep(Duration::from_millis(300));
            }
        };
        // The data directory is thrown away: no need to wait for the store writer.
        server.kill()?;
        let mut sample = sample(run, cpu, rss_base);
        sample.accepted = accepted;
        Ok(sample)
    }

    fn run_peer(&self, load: &[String]) -> anyhow::Result<Sample> {
        let (pid, target, stop): (u32, String, Box<dyn FnOnce() -> anyhow::Result<()>>) =
            match self.protocol {
                "coap" => {
                    let peer = Libcoap::start()?;
                    (
                        peer.pid(),
                        format!("coap://{}/events", peer.addr),
                        Box::new(move || peer.stop()),
                    )
                }
                _ => {
                    let peer = Mosquitto::start()?;
                    (
                        peer.pid(),
                        peer.addr.to_string(),
                        Box::new(move || peer.stop()),
                    )
                }
            };
        let mut all = load.to_vec();
        all.extend(["--target".into(), target]);
        let rss_base = rss_kib(pid);
        let cpu_before = cpu_seconds(pid);
        let run = peers::sim(self.ingot, &all, Some(pid));
        let cpu = cpu_seconds(pid) - cpu_before;
        stop()?;
        Ok(sample(run?, cpu, rss_base))
    }

    /// `runs` runs of Ingot and `peer_runs` of the peer, alternating.
    fn compare(
        &mut self,
        load: &[String],
        devices: usize,
        runs: usize,
        peer_runs: usize,
    ) -> anyhow::Result<(Vec<Sample>, Vec<Sample>)> {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for run in 0..runs.max(peer_runs) {
            eprintln!(
                "  run {} of {}: {}",
                run + 1,
                runs.max(peer_runs),
                load.iter()
                    .filter(|a| !a.starts_with("--timeout"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            if run < runs {
                ours.push(self.run(Side::Ingot, load, devices)?);
            }
            if run < peer_runs {
                theirs.push(self.run(Side::Peer, load, devices)?);
            }
        }
        Ok((ours, theirs))
    }
}

fn sample(run: peers::SimRun, server_cpu_s: f64, rss_base: u64) -> Sample {
    let r = &run.report;
    let answered = r.run.answered;
    let done = if answered { r.acked } else { r.sent };
    let rate = if answered { r.ack_rate } else { r.send_rate };
    Sample {
        rate,
        cpu_us: server_cpu_s / done.max(1) as f64 * 1e6,
        rss_base,
        rss_peak: run.peak_rss_kib,
        sim_cpu_us: run.sim_cpu_s / r.sent.max(1) as f64 * 1e6,
        accepted: None,
        report: run.report,
    }
}

/// min / median / max of a figure over samples.
fn stat(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> (f64, f64, f64) {
    let mut v: Vec<f64> = samples.iter().map(f).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    mmm(&mut v)
}

fn fmt_rate((a, b, c): (f64, f64, f64)) -> String {
    if a.is_nan() {
        return "—".into();
    }
    format!(
        "{} / **{}** / {}",
        ingot_sim::report::group(a),
        ingot_sim::report::group(b),
        ingot_sim::report::group(c)
    )
}

fn fmt3((a, b, c): (f64, f64, f64), unit: &str) -> String {
    if a.is_nan() {
        return "—".into();
    }
    format!("{a:.2} / **{b:.2}** / {c:.2} {unit}")
}

fn ratio(ours: f64, theirs: f64) -> String {
    if ours.is_finite() && theirs.is_finite() && theirs > 0.0 {
        format!("{:.2}", ours / theirs)
    } else {
        "—".into()
    }
}

/// Errors seen across samples, for the notes (they should be none).
fn errors(samples: &[Sample]) -> String {
    let mut total = std::collections::BTreeMap::new();
    for s in samples {
        for (code, n) in &s.report.errors_by_code {
            *total.entry(code.clone()).or_insert(0u64) += n;
        }
        for (code, n) in &s.report.connect_errors {
            *total.entry(format!("connect: {code}")).or_insert(0u64) += n;
        }
        if s.report.unanswered > 0 {
            *total.entry("unanswered".into()).or_insert(0u64) += s.report.unanswered;
        }
    }
    if total.is_empty() {
        "none".into()
    } else {
        total
            .iter()
            .map(|(k, v)| format!("`{k}` × {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The 1-minute load average, waiting (up to `wait`) for it to fall below 1.5 so that
/// figures are not taken beside another job.
pub fn quiet_machine(wait: Duration) -> String {
    let deadline = Instant::now() + wait;
    loop {
        let load = load_average();
        if load.parse::<f64>().is_ok_and(|l| l < 1.5) || Instant::now() > deadline {
            return load;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn header(out: &mut String, title: &str, quick: bool, secs: u64, runs: usize, load: &str) {
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(
        out,
        "Command: `bench/run{}` ({}, {} cores; 1-minute load average {load} when the suite started). \
         Each figure is min / **median** / max of {runs} run{} of {secs} s, Ingot and the peer alternating, \
         each on a fresh server; the load is `ingot sim` on the same machine (loopback).\n",
        if quick { " --quick" } else { "" },
        machine(),
        std::thread::available_parallelism().map_or(0, usize::from),
        if runs == 1 { "" } else { "s" },
    );
}

fn commands(out: &mut String, bench: &Bench) {
    let _ = writeln!(out, "\nThe load, exactly:\n\n```sh");
    for c in &bench.commands {
        let _ = writeln!(out, "{c}");
    }
    let _ = writeln!(out, "```\n");
}

fn save(figures: &Figures, name: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all("bench/out")?;
    std::fs::write(
        format!("bench/out/{name}.json"),
        serde_json::to_string_pretty(figures)?,
    )?;
    Ok(())
}

/// The CoAP suite.
pub fn coap(ingot: &Path, scratch: &Path, quick: bool) -> anyhow::Result<String> {
    let (secs, runs) = if quick { (1, 1) } else { (SECONDS, 3) };
    let load = quiet_machine(Duration::from_secs(if quick { 10 } else { 60 }));
    let peer_binary = Libcoap::binary();
    let peer = peer_binary.is_some();
    if !peer {
        eprintln!("libcoap's coap-server is not installed: measuring Ingot alone");
    }
    let peer_name = peer_binary
        .as_deref()
        .map(|b| format!("libcoap `{}` 4.3", b.rsplit('/').next().unwrap_or(b)))
        .unwrap_or_else(|| "libcoap (not installed)".into());
    let mut bench = Bench {
        ingot,
        scratch,
        protocol: "coap",
        commands: Vec::new(),
    };
    let d = format!("{secs}s");
    let clients = 256;
    eprintln!("CoAP: CON POST, {clients} clients, as fast as possible ...");
    let max = args(&[
        "flat",
        "--protocol",
        "coap",
        "--con",
        "--devices",
        "256",
        "--max",
        "--duration",
        &d,
    ]);
    let peer_runs = if peer { runs } else { 0 };
    let (max_i, max_p) = bench.compare(&max, clients, runs, peer_runs)?;
    eprintln!("CoAP: paced at 20,000 requests/s ...");
    let paced = args(&[
        "flat",
        "--protocol",
        "coap",
        "--con",
        "--devices",
        "256",
        "--rate",
        "20000",
        "--duration",
        &d,
    ]);
    let (paced_i, paced_p) = bench.compare(&paced, clients, runs, peer_runs)?;
    eprintln!("CoAP: with 10,000 idle endpoints ...");
    let idle = args(&[
        "flat",
        "--protocol",
        "coap",
        "--con",
        "--devices",
        "256",
        "--max",
        "--duration",
        &d,
        "--idle",
        "10000",
    ]);
    // libcoap slows down so much with 10,000 sessions that setting them up takes tens of
    // seconds: one run of it is enough to show it (none with --quick).
    let idle_peer_runs = if peer && !quick { 1 } else { 0 };
    let (idle_i, idle_p) = bench.compare(&idle, clients, runs, idle_peer_runs)?;

    let mut out = String::new();
    header(
        &mut out,
        "CoAP: Ingot beside libcoap (issue #4)",
        quick,
        secs,
        runs,
        &load,
    );
    let _ = writeln!(
        out,
        "Requests: confirmable `POST /events` of a 100-byte JSON event (`ingot sim flat`), one UDP socket per \
         client, each waiting for its answer (NSTART = 1). Ingot answers 2.01 after the event is fsynced in its \
         log; {peer_name} (`-d`: a POST creates a resource, later ones update it in memory) answers 2.01/2.04 \
         with no disk at all.\n"
    );
    let _ = writeln!(
        out,
        "| measure | Ingot | {peer_name} | ratio Ingot/peer | target |\n|---|---|---|---|---|"
    );
    let (i, p) = (stat(&max_i, |s| s.rate), stat(&max_p, |s| s.rate));
    let _ = writeln!(
        out,
        "| CON POST, {clients} clients, requests/s | {} | {} | {} | ≥ 1× (aim 2×) |",
        fmt_rate(i),
        fmt_rate(p),
        ratio(i.1, p.1)
    );
    let (ci, cp) = (stat(&max_i, |s| s.cpu_us), stat(&max_p, |s| s.cpu_us));
    let _ = writeln!(
        out,
        "| server CPU per request (at that load) | {} | {} | {} | |",
        fmt3(ci, "µs"),
        fmt3(cp, "µs"),
        ratio(ci.1, cp.1)
    );
    let lat = |s: &[Sample]| {
        let (_, p50, _) = stat(s, |x| x.p(|p| p.p50));
        let (_, p99, _) = stat(s, |x| x.p(|p| p.p99));
        if p50.is_nan() {
            "—".to_owned()
        } else {
            format!("{p50:.2} / {p99:.2} ms")
        }
    };
    let _ = writeln!(
        out,
        "| latency at that load, p50 / p99 (medians) | {} | {} | | |",
        lat(&max_i),
        lat(&max_p)
    );
    let (ri, rp) = (
        stat(&paced_i, |s| s.report.send_rate),
        stat(&paced_p, |s| s.report.send_rate),
    );
    let _ = writeln!(
        out,
        "| paced 20,000 requests/s: achieved send rate | {} | {} | | |",
        fmt_rate(ri),
        fmt_rate(rp)
    );
    let (pi, pp) = (
        stat(&paced_i, |s| s.p(|p| p.p99)),
        stat(&paced_p, |s| s.p(|p| p.p99)),
    );
    let _ = writeln!(
        out,
        "| paced 20,000 requests/s: p99 latency | {} | {} | {} | ≤ 5 ms |",
        fmt3(pi, "ms"),
        fmt3(pp, "ms"),
        ratio(pi.1, pp.1)
    );
    let (ii, ip) = (stat(&idle_i, |s| s.rate), stat(&idle_p, |s| s.rate));
    let _ = writeln!(
        out,
        "| with 10,000 idle endpoints known to the server, requests/s | {} | {} | {} | Ingot ≥ 0.8× its own: **{}** |",
        fmt_rate(ii),
        fmt_rate(ip),
        ratio(ii.1, ip.1),
        ratio(ii.1, i.1)
    );
    let (ri, rp) = (
        stat(&idle_i, |s| s.rss_peak as f64 / 1024.0),
        stat(&idle_p, |s| s.rss_peak as f64 / 1024.0),
    );
    let _ = writeln!(
        out,
        "| server memory (VmRSS) with them, peak | {} | {} | | |",
        fmt3(ri, "MiB"),
        fmt3(rp, "MiB")
    );
    let (gi, _) = (stat(&max_i, |s| s.sim_cpu_us), ());
    let _ = writeln!(
        out,
        "\nErrors and unanswered requests — Ingot: {}; peer: {}. The generator spent {:.2} µs of CPU per request \
         (median) at the fastest load, on the same two cores as the server.",
        errors(&[max_i.clone(), paced_i.clone(), idle_i.clone()].concat()),
        errors(&[max_p.clone(), paced_p.clone(), idle_p.clone()].concat()),
        gi.1
    );
    commands(&mut out, &bench);
    let mut figures = Figures::default();
    if peer {
        figures.bars.push(Bars {
            label: format!("CoAP CON, {clients} clients"),
            ingot: [i.0, i.1, i.2],
            peer: [p.0, p.1, p.2],
            peer_name: "libcoap".into(),
        });
    }
    if let Some(s) = paced_i.get(1) {
        figures.curves.push(Curve {
            label: "Ingot CoAP (20k/s)".into(),
            ms: median_curve(&paced_i).unwrap_or(s.curve()),
        });
    }
    if let Some(s) = paced_p.get(1) {
        figures.curves.push(Curve {
            label: "libcoap (20k/s)".into(),
            ms: median_curve(&paced_p).unwrap_or(s.curve()),
        });
    }
    save(&figures, "coap")?;
    Ok(out)
}

/// Each percentile's median over the samples.
fn median_curve(samples: &[Sample]) -> Option<[f64; 6]> {
    if samples.is_empty() {
        return None;
    }
    let curves: Vec<[f64; 6]> = samples.iter().map(Sample::curve).collect();
    let mut out = [0.0; 6];
    for (k, slot) in out.iter_mut().enumerate() {
        let mut v: Vec<f64> = curves.iter().map(|c| c[k]).collect();
        *slot = mmm(&mut v).1;
    }
    Some(out)
}

/// Events Ingot accepted over MQTT, from `/metrics`.
async fn accepted_mqtt(base: &str) -> Option<u64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("ingot_events_accepted_total{protocol=\"mqtt\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// The MQTT suite.
pub fn mqtt(ingot: &Path, scratch: &Path, quick: bool) -> anyhow::Result<String> {
    let (secs, runs) = if quick { (1, 1) } else { (SECONDS, 3) };
    let load = quiet_machine(Duration::from_secs(if quick { 10 } else { 60 }));
    let peer = Mosquitto::available();
    if !peer {
        eprintln!("mosquitto is not installed: measuring Ingot alone");
    }
    // Is MQTT served by this binary?
    {
        let (server, _) = Server::start(ingot, scratch)?;
        let served = server.mqtt.is_some();
        server.kill()?;
        if !served {
            bail!("this ingot binary does not serve MQTT (no MQTT line in its banner)");
        }
    }
    let peer_name = if peer {
        Mosquitto::version()
            .split(" version ")
            .nth(1)
            .map(|v| format!("Mosquitto {}", v.split_whitespace().next().unwrap_or(v)))
            .unwrap_or_else(|| "Mosquitto".into())
    } else {
        "Mosquitto (not installed)".into()
    };
    let mut bench = Bench {
        ingot,
        scratch,
        protocol: "mqtt",
        commands: Vec::new(),
    };
    let d = format!("{secs}s");
    let publishers = 64;
    eprintln!("MQTT: QoS 1, {publishers} publishers, as fast as possible ...");
    let q1 = args(&[
        "flat",
        "--protocol",
        "mqtt",
        "--qos",
        "1",
        "--devices",
        "64",
        "--concurrency",
        "4096",
        "--max",
        "--duration",
        &d,
    ]);
    let peer_runs = if peer { runs } else { 0 };
    let (q1_i, q1_p) = bench.compare(&q1, publishers, runs, peer_runs)?;
    eprintln!("MQTT: QoS 1 paced at 20,000 messages/s ...");
    let paced = args(&[
        "flat",
        "--protocol",
        "mqtt",
        "--qos",
        "1",
        "--devices",
        "64",
        "--concurrency",
        "4096",
        "--rate",
        "20000",
        "--duration",
        &d,
    ]);
    let (paced_i, paced_p) = bench.compare(&paced, publishers, runs, peer_runs)?;
    eprintln!("MQTT: QoS 0, {publishers} publishers, as fast as possible ...");
    let q0 = args(&[
        "flat",
        "--protocol",
        "mqtt",
        "--qos",
        "0",
        "--devices",
        "64",
        "--max",
        "--duration",
        &d,
    ]);
    let (q0_i, q0_p) = bench.compare(&q0, publishers, runs, peer_runs)?;
    eprintln!("MQTT: 10,000 idle connections ...");
    let idle = args(&[
        "flat",
        "--protocol",
        "mqtt",
        "--qos",
        "1",
        "--devices",
        "64",
        "--rate",
        "1000",
        "--duration",
        &d,
        "--idle",
        "10000",
    ]);
    // Mosquitto's memory hardly varies from run to run: once is enough.
    let (idle_i, idle_p) = bench.compare(&idle, publishers, runs, peer_runs.min(1))?;

    let mut out = String::new();
    header(
        &mut out,
        "MQTT: Ingot beside Mosquitto (issue #5)",
        quick,
        secs,
        runs,
        &load,
    );
    let _ = writeln!(
        out,
        "Publishes: 100-byte JSON events (`ingot sim flat`), MQTT 3.1.1, {publishers} publishers (one connection \
         each, up to 64 unacknowledged QoS 1 publishes each). Ingot's PUBACK follows the fsync of the event in \
         its log; {peer_name} runs with `persistence false` and writes nothing to disk.\n"
    );
    let _ = writeln!(
        out,
        "| measure | Ingot | {peer_name} | ratio Ingot/peer | target |\n|---|---|---|---|---|"
    );
    let (i, p) = (stat(&q1_i, |s| s.rate), stat(&q1_p, |s| s.rate));
    let _ = writeln!(
        out,
        "| QoS 1, {publishers} publishers, acknowledged messages/s | {} | {} | {} | |",
        fmt_rate(i),
        fmt_rate(p),
        ratio(i.1, p.1)
    );
    let (ci, cp) = (stat(&q1_i, |s| s.cpu_us), stat(&q1_p, |s| s.cpu_us));
    let _ = writeln!(
        out,
        "| server CPU per message (QoS 1, at that load) | {} | {} | {} | |",
        fmt3(ci, "µs"),
        fmt3(cp, "µs"),
        ratio(ci.1, cp.1)
    );
    let (ri, rp) = (
        stat(&paced_i, |s| s.report.send_rate),
        stat(&paced_p, |s| s.report.send_rate),
    );
    let _ = writeln!(
        out,
        "| QoS 1 paced at 20,000 messages/s: achieved send rate | {} | {} | | |",
        fmt_rate(ri),
        fmt_rate(rp)
    );
    let (pi, pp) = (
        stat(&paced_i, |s| s.p(|p| p.p99)),
        stat(&paced_p, |s| s.p(|p| p.p99)),
    );
    let _ = writeln!(
        out,
        "| QoS 1 paced at 20,000 messages/s: p99 PUBACK latency | {} | {} | {} | ≤ 5 ms |",
        fmt3(pi, "ms"),
        fmt3(pp, "ms"),
        ratio(pi.1, pp.1)
    );
    let (zi, zp) = (stat(&q0_i, |s| s.rate), stat(&q0_p, |s| s.rate));
    let _ = writeln!(
        out,
        "| QoS 0, {publishers} publishers, messages/s | {} | {} | {} | |",
        fmt_rate(zi),
        fmt_rate(zp),
        ratio(zi.1, zp.1)
    );
    let (mi, mp) = (
        stat(&idle_i, |s| s.rss_peak as f64 / 1024.0),
        stat(&idle_p, |s| s.rss_peak as f64 / 1024.0),
    );
    let (bi, bp) = (
        stat(&idle_i, |s| s.rss_base as f64 / 1024.0),
        stat(&idle_p, |s| s.rss_base as f64 / 1024.0),
    );
    let _ = writeln!(
        out,
        "| resident memory (VmRSS) with 10,000 idle connections (+ 64 publishing 1,000/s), peak | {} | {} | {} | ≤ 150 MB |",
        fmt3(mi, "MiB"),
        fmt3(mp, "MiB"),
        ratio(mi.1, mp.1)
    );
    let _ = writeln!(
        out,
        "| … before the connections (after start-up) | {} | {} | | |",
        fmt3(bi, "MiB"),
        fmt3(bp, "MiB")
    );
    let (sent, accepted) = q0_i.iter().fold((0, 0), |(s, a), x| {
        (s + x.report.sent, a + x.accepted.unwrap_or(0))
    });
    let _ = writeln!(
        out,
        "\nQoS 0 has no acknowledgement: its rate is messages sent until the broker had read them all (each \
         connection ends with a PINGREQ/PINGRESP round trip; TCP pushes back on a broker that does not read). \
         Over its QoS 0 runs Ingot ingested {} of the {} messages sent ({:.1} %, from its \
         `ingot_events_accepted_total` counter).",
        ingot_sim::report::group(accepted as f64),
        ingot_sim::report::group(sent as f64),
        accepted as f64 / sent.max(1) as f64 * 100.0
    );
    let _ = writeln!(
        out,
        "\nErrors and unanswered messages — Ingot: {}; peer: {}.",
        errors(&[q1_i.clone(), paced_i.clone(), idle_i.clone()].concat()),
        errors(&[q1_p.clone(), paced_p.clone(), idle_p.clone()].concat()),
    );
    commands(&mut out, &bench);
    let mut figures = Figures::default();
    if peer {
        figures.bars.push(Bars {
            label: format!("MQTT QoS 1, {publishers} pub."),
            ingot: [i.0, i.1, i.2],
            peer: [p.0, p.1, p.2],
            peer_name: "Mosquitto".into(),
        });
        figures.bars.push(Bars {
            label: format!("MQTT QoS 0, {publishers} pub."),
            ingot: [zi.0, zi.1, zi.2],
            peer: [zp.0, zp.1, zp.2],
            peer_name: "Mosquitto".into(),
        });
    }
    if let Some(c) = median_curve(&paced_i) {
        figures.curves.push(Curve {
            label: "Ingot MQTT QoS 1 (20k/s)".into(),
            ms: c,
        });
    }
    if let Some(c) = median_curve(&paced_p) {
        figures.curves.push(Curve {
            label: "Mosquitto QoS 1 (20k/s)".into(),
            ms: c,
        });
    }
    save(&figures, "mqtt")?;
    Ok(out)
}
