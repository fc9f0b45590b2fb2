//! The end-of-run report (a table, or JSON with `--json`) and the live progress line.
//!
//! Rates are honest about what happened: the send rate divides the events sent by the
//! time the sends took (for a paced run, from the start to the last send plus one
//! period, so a run that kept its schedule reports exactly the asked rate and one that
//! fell behind reports less); the acknowledged rate divides the acknowledged events by
//! the time from the start to the last acknowledgement. Latency is measured from the
//! moment a request was handed to the socket to the moment its answer was read; how late
//! sends were against their schedule is reported separately (`lag`), so a generator
//! that cannot keep up is visible instead of hidden in the server's latency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::stats::Stats;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// 5th percentile.
    pub p5: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// From a histogram of microseconds; `None` when it is empty.
    pub fn from_micros(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Some(Percentiles {
            count: h.len(),
            p5: ms(0.05),
            p25: ms(0.25),
            p50: ms(0.50),
            p75: ms(0.75),
            p95: ms(0.95),
            p99: ms(0.99),
            max: h.max() as f64 / 1000.0,
            mean: h.mean() / 1000.0,
        })
    }
}

/// What a run was (the options that shape the figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The scenario.
    pub scenario: String,
    /// `http`, `coap` or `mqtt`.
    pub protocol: String,
    /// What the protocol options were (`QoS 1`, `CON`, `NDJSON batches of 100`).
    pub mode: String,
    /// Where.
    pub target: String,
    /// Simulated devices.
    pub devices: usize,
    /// Connections (UDP sockets for CoAP).
    pub connections: usize,
    /// Requests in flight at most, in total.
    pub concurrency: usize,
    /// Events per request.
    pub batch: usize,
    /// The asked rate, events/s; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Idle clients held open during the run.
    pub idle: usize,
    /// Whether requests get answers (false for MQTT QoS 0).
    pub answered: bool,
}

/// The final report of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What ran.
    pub run: RunInfo,
    /// Seconds from the start of the load to the end of the drain.
    pub elapsed_s: f64,
    /// Events sent.
    pub sent: u64,
    /// Requests sent.
    pub requests: u64,
    /// Events acknowledged with success.
    pub acked: u64,
    /// Events refused or lost.
    pub errors: u64,
    /// Errors by code (`coap 5.03`, `mqtt 0x99`, `http 401`, `timeout`, …), in events.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Events without an answer at the end (or non-confirmable ones never answered).
    pub unanswered: u64,
    /// CoAP retransmissions.
    pub retransmits: u64,
    /// Events sent per second (without acknowledgements: until the peer had read them).
    pub send_rate: f64,
    /// Events acknowledged per second.
    pub ack_rate: f64,
    /// Idle clients that could not be set up.
    pub idle_failed: u64,
    /// Connections of the load that could not be set up, by reason.
    pub connect_errors: BTreeMap<String, u64>,
    /// Answer latency, ms.
    pub latency_ms: Option<Percentiles>,
    /// How late sends were against their schedule (paced runs), ms.
    pub lag_ms: Option<Percentiles>,
}

impl Report {
    /// The report of a finished run.
    pub fn build(run: RunInfo, stats: &Stats, elapsed: Duration, idle_failed: u64) -> Report {
        let sent = stats.sent.load(Ordering::Relaxed);
        let acked = stats.acked.load(Ordering::Relaxed);
        // Without acknowledgements, the sends took until the peer confirmed it had read
        // them all (the end-of-run barrier), not only until the last write.
        let send_span = if run.answered {
            stats.send_span()
        } else {
            stats.send_span().max(stats.ack_span())
        }
        .as_secs_f64();
        let send_rate = match run.rate {
            Some(rate) if rate > 0.0 && sent > 0 => {
                sent as f64 / (send_span + run.batch as f64 / rate)
            }
            _ if sent > 0 => sent as f64 / send_span.max(1e-3),
            _ => 0.0,
        };
        let ack_span = stats.ack_span().as_secs_f64();
        let ack_rate = if acked > 0 {
            acked as f64 / ack_span.max(1e-3)
        } else {
            0.0
        };
        Report {
            run,
            elapsed_s: elapsed.as_secs_f64(),
            sent,
            requests: stats.requests.load(Ordering::Relaxed),
            acked,
            errors: stats.errors.load(Ordering::Relaxed),
            errors_by_code: stats.codes(),
            unanswered: stats.unanswered.load(Ordering::Relaxed),
            retransmits: stats.retransmits.load(Ordering::Relaxed),
            send_rate,
            ack_rate,
            idle_failed,
            connect_errors: stats.connect_errors(),
            latency_ms: Percentiles::from_micros(&stats.latency()),
            lag_ms: Percentiles::from_micros(&stats.lag()),
        }
    }

    /// The report as a table for people.
    pub fn table(&self) -> String {
        let r = &self.run;
        let mut out = String::new();
        let rate = match r.rate {
            Some(rate) => format!("paced at {} events/s", group(rate)),
            None => "as fast as possible".to_owned(),
        };
        let _ = writeln!(
            out,
            "ingot sim {} over {} ({}) → {}",
            r.scenario, r.protocol, r.mode, r.target
        );
        let _ = writeln!(
            out,
            "{} devices, {} connections, up to {} in flight, {rate}{}\n",
            r.devices,
            r.connections,
            r.concurrency,
            if r.idle > 0 {
                format!(", {} idle clients", r.idle)
            } else {
                String::new()
            }
        );
        let per_request = if r.batch > 1 {
            format!(" in {} requests", group(self.requests as f64))
        } else {
            String::new()
        };
        let rows: Vec<(&str, String, String)> = vec![
            (
                "sent",
                format!("{}{per_request}", group(self.sent as f64)),
                format!("{}/s", group(self.send_rate)),
            ),
            if r.answered {
                (
                    "acknowledged",
                    group(self.acked as f64),
                    format!("{}/s", group(self.ack_rate)),
                )
            } else {
                (
                    "acknowledged",
                    "— (no acknowledgements)".into(),
                    String::new(),
                )
            },
            ("errors", group(self.errors as f64), String::new()),
            ("unanswered", group(self.unanswered as f64), String::new()),
            (
                "duration",
                format!("{:.2} s", self.elapsed_s),
                String::new(),
            ),
        ];
        let _ = writeln!(out, "| measure | count | rate |");
        let _ = writeln!(out, "|---|---:|---:|");
        for (name, count, rate) in rows {
            let _ = writeln!(out, "| {name} | {count} | {rate} |");
        }
        if self.retransmits > 0 {
            let _ = writeln!(
                out,
                "| retransmissions | {} | |",
                group(self.retransmits as f64)
            );
        }
        if self.idle_failed > 0 {
            let _ = writeln!(
                out,
                "| idle clients that failed | {} | |",
                group(self.idle_failed as f64)
            );
        }
        for (reason, n) in &self.connect_errors {
            let _ = writeln!(
                out,
                "| connections failed: {reason} | {} | |",
                group(*n as f64)
            );
        }
        for (code, n) in &self.errors_by_code {
            let _ = writeln!(out, "| error `{code}` | {} | |", group(*n as f64));
        }
        for (name, p) in [
            ("latency", &self.latency_ms),
            ("schedule lag", &self.lag_ms),
        ] {
            if let Some(p) = p {
                let _ = writeln!(
                    out,
                    "\n| {name} (ms) | p5 | p25 | p50 | p75 | p95 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|\n| {} samples | {} | {} | {} | {} | {} | {} | {} |",
                    group(p.count as f64),
                    ms(p.p5),
                    ms(p.p25),
                    ms(p.p50),
                    ms(p.p75),
                    ms(p.p95),
                    ms(p.p99),
                    ms(p.max)
                );
            }
        }
        out
    }
}

/// Milliseconds with 3 significant digits.
fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A whole number with thousands separators.
pub fn group(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Prints a progress line to stderr every second while `done` is not cancelled, if stderr
/// is a terminal.
pub async fn progress(stats: Arc<Stats>, done: CancellationToken) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut last_sent, mut last_at) = (0u64, Instant::now());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = done.cancelled() => break,
        }
        let Some(start) = stats.start() else { continue };
        let now = Instant::now();
        let sent = stats.sent.load(Ordering::Relaxed);
        let rate = (sent - last_sent.min(sent)) as f64
            / now
                .saturating_duration_since(last_at)
                .as_secs_f64()
                .max(1e-3);
        (last_sent, last_at) = (sent, now);
        eprint!(
            "\r\x1b[2K{:>7.1} s  sent {} ({}/s)  acked {}  errors {}",
            now.saturating_duration_since(start).as_secs_f64(),
            group(sent as f64),
            group(rate),
            group(stats.acked.load(Ordering::Relaxed) as f64),
            group(stats.errors.load(Ordering::Relaxed) as f64),
        );
    }
    eprint!("\r\x1b[2K");
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            scenario: "flat".into(),
            protocol: "coap".into(),
            mode: "CON".into(),
            target: "127.0.0.1:5683".into(),
            devices: 1,
            connections: 1,
            concurrency: 1,
            batch: 1,
            rate: Some(1000.0),
            idle: 0,
            answered: true,
        }
    }

    #[test]
    fn percentiles_match_a_known_distribution() {
        let stats = Arc::new(Stats::default());
        let start = Instant::now();
        stats.set_start(start);
        // 1..=10000 µs once each, from several recorders (as several workers would).
        let mut recorders: Vec<_> = (0..4).map(|i| stats.recorder(i)).collect();
        for v in 1..=10_000u64 {
            let r = &mut recorders[(v % 4) as usize];
            r.sent(1, start, Some(Duration::from_micros(v % 100)));
            r.acked(
                1,
                start + Duration::from_millis(10),
                Duration::from_micros(v),
            );
        }
        drop(recorders);
        let report = Report::build(info(), &stats, Duration::from_secs(10), 0);
        let p = report.latency_ms.unwrap();
        assert_eq!(p.count, 10_000);
        // HDR histograms at 3 significant digits: within 0.1 % of the exact values.
        for (got, want) in [
            (p.p5, 0.5),
            (p.p25, 2.5),
            (p.p50, 5.0),
            (p.p75, 7.5),
            (p.p95, 9.5),
            (p.p99, 9.9),
            (p.max, 10.0),
            (p.mean, 5.0005),
        ] {
            assert!(
                (got - want).abs() <= want * 0.001 + 0.001,
                "{got} vs {want}"
            );
        }
        assert_eq!(report.sent, 10_000);
        assert_eq!(report.acked, 10_000);
        let lag = report.lag_ms.unwrap();
        assert!(lag.max <= 0.1);
        let table = report.table();
        assert!(table.contains("| sent | 10,000 |"), "{table}");
        assert!(table.contains("| p5 | p25 | p50 | p75 | p95 | p99 | max |"));
        // The JSON form round-trips.
        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn a_skewed_distribution_keeps_its_tail() {
        let stats = Arc::new(Stats::default());
        let start = Instant::now();
        stats.set_start(start);
        let mut r = stats.recorder(0);
        // 98 % at 0.2 ms, 2 % at 50 ms: p95 is fast, p99 is slow.
        for i in 0..100_000u64 {
            let lat = if i % 50 == 0 { 50_000 } else { 200 };
            r.sent(1, start, None);
            r.acked(1, start, Duration::from_micros(lat));
        }
        r.error("coap 5.03", 3);
        drop(r);
        let report = Report::build(info(), &stats, Duration::from_secs(1), 0);
        let p = report.latency_ms.unwrap();
        assert!((p.p95 - 0.2).abs() < 0.001, "{p:?}");
        assert!((p.p99 - 50.0).abs() < 0.05, "{p:?}");
        assert_eq!(report.errors, 3);
        assert_eq!(report.errors_by_code["coap 5.03"], 3);
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(0.0), "0");
        assert_eq!(group(999.0), "999");
        assert_eq!(group(1000.0), "1,000");
        assert_eq!(group(1_234_567.4), "1,234,567");
    }
}
