//! `sim`: the load generator's own capacity on one core, against null peers that read
//! and drop (`ingot_sim::sink`, on the other core), so that every protocol figure can be
//! trusted not to be the generator's limit.
//!
//! `ingot sim` runs with `--threads 1` (one runtime thread); its CPU time comes from the
//! kernel's accounting of the child process, so "per CPU-second" is what one core of
//! generator does, whatever the sink costs.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use ingot_sim::report::group;
use ingot_sim::sink::{MqttSink, UdpSink};

use crate::peers;
use crate::protocols::quiet_machine;
use crate::{machine, mmm};

struct Line {
    label: &'static str,
    target: &'static str,
    rates: Vec<f64>,
    per_cpu: Vec<f64>,
    cpu_us: Vec<f64>,
    command: String,
    note: String,
}

/// The `sim` suite.
pub fn run(ingot: &Path, quick: bool) -> anyhow::Result<String> {
    let (secs, runs) = if quick { (1, 1) } else { (2, 3) };
    let load = quiet_machine(Duration::from_secs(if quick { 10 } else { 60 }));
    let d = format!("{secs}s");
    let mut lines = Vec::new();
    let cases: Vec<(&'static str, &'static str, Vec<&str>)> = vec![
        (
            "MQTT QoS 0 publishes → a TCP listener that reads and drops",
            "≥ 200,000/s",
            vec!["--protocol", "mqtt", "--qos", "0", "--devices", "4"],
        ),
        (
            "CoAP NON requests → a UDP socket that reads and drops",
            "≥ 100,000/s",
            vec![
                "--protocol",
                "coap",
                "--non",
                "--devices",
                "4",
                "--timeout",
                "1s",
            ],
        ),
        (
            "MQTT QoS 1 publishes → a listener answering PUBACK",
            "",
            vec![
                "--protocol",
                "mqtt",
                "--qos",
                "1",
                "--devices",
                "4",
                "--concurrency",
                "1024",
            ],
        ),
    ];
    for (label, target, extra) in cases {
        eprintln!("generator: {label} ...");
        let mut line = Line {
            label,
            target,
            rates: Vec::new(),
            per_cpu: Vec::new(),
            cpu_us: Vec::new(),
            command: String::new(),
            note: String::new(),
        };
        for run in 0..runs {
            // A fresh sink per run.
            let (addr, received) = sink(&extra)?;
            let mut args: Vec<String> = vec!["flat".into()];
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            args.extend(
                [
                    "--max",
                    "--duration",
                    &d,
                    "--threads",
                    "1",
                    "--target",
                    &addr,
                ]
                .iter()
                .map(|s| (*s).to_owned()),
            );
            if run == 0 {
                line.command = format!("ingot sim {}", args.join(" ").replace(&addr, "<sink>"));
            }
            let sim = peers::sim(ingot, &args, None)?;
            std::thread::sleep(Duration::from_millis(200));
            let seen = received();
            let r = &sim.report;
            line.rates.push(r.send_rate);
            line.per_cpu.push(r.sent as f64 / sim.sim_cpu_s.max(1e-3));
            line.cpu_us.push(sim.sim_cpu_s / r.sent.max(1) as f64 * 1e6);
            if run == 0 {
                line.note = format!(
                    "{} sent, {} read by the sink",
                    group(r.sent as f64),
                    group(seen as f64)
                );
            }
        }
        lines.push(line);
    }
    let mut out = String::new();
    let _ = writeln!(out, "### The load generator's own capacity (issue #7)\n");
    let _ = writeln!(
        out,
        "Command: `bench/run{}` ({}, {} cores; 1-minute load average {load} when the suite started). \
         `ingot sim flat` (100-byte events) with `--threads 1` — one core — against null peers \
         (`ingot_sim::sink`) on the other core; min / **median** / max of {runs} run{} of {secs} s. \
         \"Per CPU-second\" divides the messages by the generator process's own CPU time.\n",
        if quick { " --quick" } else { "" },
        machine(),
        std::thread::available_parallelism().map_or(0, usize::from),
        if runs == 1 { "" } else { "s" },
    );
    let _ = writeln!(
        out,
        "| load | messages/s | per CPU-second of the generator | CPU per message | target |\n|---|---|---|---|---|"
    );
    for line in &mut lines {
        let (a, b, c) = mmm(&mut line.rates);
        let (d, e, f) = mmm(&mut line.per_cpu);
        let (_, cpu, _) = mmm(&mut line.cpu_us);
        let _ = writeln!(
            out,
            "| {} | {} / **{}** / {} | {} / **{}** / {} | {cpu:.2} µs | {} |",
            line.label,
            group(a),
            group(b),
            group(c),
            group(d),
            group(e),
            group(f),
            line.target
        );
    }
    let _ = writeln!(out, "\nThe commands (first runs: {}):\n\n```sh", {
        lines
            .iter()
            .map(|l| l.note.clone())
            .collect::<Vec<_>>()
            .join("; ")
    });
    for line in &lines {
        let _ = writeln!(out, "{}", line.command);
    }
    let _ = writeln!(out, "```\n");
    Ok(out)
}

/// A null peer for a case: its address and its count of what it read.
fn sink(extra: &[&str]) -> anyhow::Result<(String, Box<dyn FnOnce() -> u64>)> {
    if extra.contains(&"coap") {
        let sink = UdpSink::start()?;
        let addr = sink.addr().to_string();
        return Ok((addr, Box::new(move || sink.received())));
    }
    let puback = extra.windows(2).any(|w| w == ["--qos", "1"]);
    let sink = MqttSink::start(puback)?;
    let addr = sink.addr().to_string();
    Ok((addr, Box::new(move || sink.packets())))
}
