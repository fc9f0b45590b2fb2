//! Counting what a run did, from many workers at once, without slowing them down.
//!
//! Each worker owns a [`Recorder`]: it counts locally and buffers latency samples, and
//! flushes into the shared [`Stats`] every few hundred samples or 100 ms — atomic adds
//! for the counters (so the live progress line is current), a short lock of one of a few
//! histogram shards for the samples. Latencies go into HDR histograms (microseconds,
//! 3 significant digits, up to 10 minutes), so percentiles are exact to 0.1 % whatever
//! the number of samples, and memory does not grow with the run.
//!
//! Accounting invariant, per event: `sent = acked + errors + unanswered` at the end of a
//! run whose requests expect answers (QoS 0 publishes expect none: `acked` stays 0).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// Histogram shards: workers spread over them, so flushes rarely contend.
const SHARDS: usize = 8;
/// Samples a recorder buffers before flushing.
const BUFFER: usize = 512;
/// The longest a recorder keeps counts to itself.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// The largest latency recorded exactly, µs (longer ones count as this).
const MAX_MICROS: u64 = 600_000_000;

/// # Panics
///
/// Never: the bounds are constants that `hdrhistogram` accepts.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

/// Shared counters of a run.
#[derive(Debug)]
pub struct Stats {
    start: OnceLock<Instant>,
    /// Events sent.
    pub sent: AtomicU64,
    /// Requests (publishes, datagram exchanges, HTTP requests) sent.
    pub requests: AtomicU64,
    /// Events acknowledged with success.
    pub acked: AtomicU64,
    /// Events refused or lost (an error answer, a timeout, a closed connection).
    pub errors: AtomicU64,
    /// Events without an answer when the run ended (or non-confirmable ones never
    /// answered).
    pub unanswered: AtomicU64,
    /// CoAP retransmissions.
    pub retransmits: AtomicU64,
    last_send_ns: AtomicU64,
    last_ack_ns: AtomicU64,
    codes: Mutex<BTreeMap<String, u64>>,
    connect_errors: Mutex<BTreeMap<String, u64>>,
    latency: [Mutex<Histogram<u64>>; SHARDS],
    lag: Mutex<Histogram<u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            start: OnceLock::new(),
            sent: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
            retransmits: AtomicU64::new(0),
            last_send_ns: AtomicU64::new(0),
            last_ack_ns: AtomicU64::new(0),
            codes: Mutex::new(BTreeMap::new()),
            connect_errors: Mutex::new(BTreeMap::new()),
            latency: std::array::from_fn(|_| Mutex::new(histogram())),
            lag: Mutex::new(histogram()),
        }
    }
}

impl Stats {
    /// Sets the instant the load starts (once).
    pub fn set_start(&self, start: Instant) {
        let _ = self.start.set(start);
    }

    /// The start, if the load has started.
    pub fn start(&self) -> Option<Instant> {
        self.start.get().copied()
    }

    fn since_start(&self, at: Instant) -> u64 {
        self.start()
            .map_or(0, |s| at.saturating_duration_since(s).as_nanos() as u64)
    }

    /// Time from the start to the last send.
    pub fn send_span(&self) -> Duration {
        Duration::from_nanos(self.last_send_ns.load(Ordering::Relaxed))
    }

    /// Time from the start to the last acknowledgement.
    pub fn ack_span(&self) -> Duration {
        Duration::from_nanos(self.last_ack_ns.load(Ordering::Relaxed))
    }

    /// Errors by code.
    pub fn codes(&self) -> BTreeMap<String, u64> {
        self.codes.lock().clone()
    }

    /// Counts `events` events failed with `code` (outside any recorder: connection
    /// failures, idle clients).
    pub fn error(&self, code: &str, events: u64) {
        self.errors.fetch_add(events, Ordering::Relaxed);
        *self.codes.lock().entry(code.to_owned()).or_default() += events;
    }

    /// A connection (or socket) that could not be set up, by reason.
    pub fn connect_error(&self, reason: &str) {
        *self
            .connect_errors
            .lock()
            .entry(reason.to_owned())
            .or_default() += 1;
    }

    /// Connections that could not be set up, by reason.
    pub fn connect_errors(&self) -> BTreeMap<String, u64> {
        self.connect_errors.lock().clone()
    }

    /// All latency samples merged, µs.
    pub fn latency(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.latency {
            // Same bounds everywhere: adding cannot fail.
            let _ = all.add(&*shard.lock());
        }
        all
    }

    /// Schedule lag samples, µs.
    pub fn lag(&self) -> Histogram<u64> {
        self.lag.lock().clone()
    }

    /// A recorder for worker `index`.
    pub fn recorder(self: &std::sync::Arc<Self>, index: usize) -> Recorder {
        Recorder {
            stats: self.clone(),
            shard: index % SHARDS,
            latencies: Vec::new(),
            lags: Vec::new(),
            sent: 0,
            requests: 0,
            acked: 0,
            unanswered: 0,
            retransmits: 0,
            last_send: None,
            last_ack: None,
            last_flush: None,
        }
    }
}

/// A worker's view of the stats: counts locally, flushes now and then.
#[derive(Debug)]
pub struct Recorder {
    stats: std::sync::Arc<Stats>,
    shard: usize,
    latencies: Vec<u64>,
    lags: Vec<u64>,
    sent: u64,
    requests: u64,
    acked: u64,
    unanswered: u64,
    retransmits: u64,
    last_send: Option<Instant>,
    last_ack: Option<Instant>,
    last_flush: Option<Instant>,
}

fn micros(d: Duration) -> u64 {
    (d.as_nanos() / 1000).clamp(1, u128::from(MAX_MICROS)) as u64
}

impl Recorder {
    /// One request of `events` events sent at `at`, `lag` after its scheduled time.
    pub fn sent(&mut self, events: u64, at: Instant, lag: Option<Duration>) {
        self.sent += events;
        self.requests += 1;
        self.last_send = Some(at);
        if let Some(lag) = lag {
            self.lags.push(micros(lag));
        }
        if self.lags.len() >= BUFFER {
            self.flush();
        }
    }

    /// `events` acknowledged at `at`, `latency` after they were sent.
    pub fn acked(&mut self, events: u64, at: Instant, latency: Duration) {
        self.acked += events;
        self.last_ack = Some(at);
        self.latencies.push(micros(latency));
        if self.latencies.len() >= BUFFER {
            self.flush();
        }
    }

    /// The peer confirmed at `at` that it has read everything sent before (the QoS 0
    /// barrier): the run's traffic took until then.
    pub fn drained(&mut self, at: Instant) {
        self.last_ack = Some(self.last_ack.map_or(at, |a| a.max(at)));
    }

    /// `events` failed with `code` (rare: counted at once).
    pub fn error(&mut self, code: &str, events: u64) {
        self.stats.error(code, events);
    }

    /// `events` never answered.
    pub fn unanswered(&mut self, events: u64) {
        self.unanswered += events;
    }

    /// One retransmission.
    pub fn retransmit(&mut self) {
        self.retransmits += 1;
    }

    /// Flushes if the last flush is older than 100 ms.
    pub fn tick(&mut self, now: Instant) {
        match self.last_flush {
            Some(at) if now.saturating_duration_since(at) < FLUSH_EVERY => {}
            _ => {
                self.flush();
                self.last_flush = Some(now);
            }
        }
    }

    /// Moves everything counted so far into the shared stats.
    pub fn flush(&mut self) {
        let s = &self.stats;
        s.sent
            .fetch_add(std::mem::take(&mut self.sent), Ordering::Relaxed);
        s.requests
            .fetch_add(std::mem::take(&mut self.requests), Ordering::Relaxed);
        s.acked
            .fetch_add(std::mem::take(&mut self.acked), Ordering::Relaxed);
        s.unanswered
            .fetch_add(std::mem::take(&mut self.unanswered), Ordering::Relaxed);
        s.retransmits
            .fetch_add(std::mem::take(&mut self.retransmits), Ordering::Relaxed);
        if let Some(at) = self.last_send.take() {
            s.last_send_ns
                .fetch_max(s.since_start(at), Ordering::Relaxed);
        }
        if let Some(at) = self.last_ack.take() {
            s.last_ack_ns
                .fetch_max(s.since_start(at), Ordering::Relaxed);
        }
        if !self.latencies.is_empty() {
            let mut h = s.latency[self.shard].lock();
            for &v in &self.latencies {
                h.saturating_record(v);
            }
            drop(h);
            self.latencies.clear();
        }
        if !self.lags.is_empty() {
            let mut h = s.lag.lock();
            for &v in &self.lags {
                h.saturating_record(v);
            }
            drop(h);
            self.lags.clear();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}
