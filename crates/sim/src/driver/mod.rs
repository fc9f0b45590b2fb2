//! Running a simulation: devices split over workers, one task per connection, a common
//! start, pacing, draining, and the report.
//!
//! # Design
//!
//! - **One task per connection** (HTTP connection, MQTT connection, CoAP UDP socket),
//!   owning its socket, its devices' state machines, its requests in flight
//!   ([`crate::pending::Pending`]) and a [`Recorder`]. Nothing is shared on the hot path
//!   but a few atomic counters flushed every 100 ms.
//! - **Connect first, then start together.** Every worker connects (MQTT: through
//!   CONNACK), reports ready, and waits for the common start instant, so connection
//!   set-up never counts in rates or latencies, and paced workers start interleaved.
//! - **Each worker paces its share** ([`crate::pacing::Pacer`]): the rate and the count
//!   are split over workers in proportion to their devices.
//! - **Bounded.** A worker stops issuing at the count, the duration or an interruption,
//!   then waits up to `--timeout` for the answers in flight; what is still unanswered is
//!   reported as such.
//! - **Idle clients** (`--idle`) are set up before the load, each in its own small task,
//!   and closed after it.

pub(crate) mod coap;
pub(crate) mod http;
mod idle;
pub(crate) mod mqtt;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingot_core::Timestamp;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Protocol, Resolved, SimConfig};
use crate::error::SimError;
use crate::pacing::{Pacer, split};
use crate::report::{Report, RunInfo, progress};
use crate::scenario::{Device, Message};
use crate::stats::{Recorder, Stats};

/// How many connections are being set up at once (a server's accept backlog is finite).
const CONNECTS_AT_ONCE: usize = 256;
/// Sockets per local source address before the next one is used (loopback targets).
const PER_SOURCE_ADDR: usize = 16_000;

/// One device of a worker.
#[derive(Debug)]
pub(crate) struct Slot {
    pub device: Device,
    pub token: Option<String>,
}

/// How a batch of several events is framed in one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One object per line (HTTP, MQTT).
    Ndjson,
    /// A JSON array (CoAP, which has no NDJSON format).
    Array,
}

/// What a worker sends: its devices in turn, `batch` events per request, until its share
/// of the count is used up.
#[derive(Debug)]
pub(crate) struct Source {
    pub slots: Vec<Slot>,
    turn: usize,
    batch: u64,
    remaining: Option<u64>,
    framing: Framing,
    one: Message,
    /// The current request.
    pub request: Message,
}

impl Source {
    fn new(slots: Vec<Slot>, batch: usize, remaining: Option<u64>, framing: Framing) -> Source {
        Source {
            slots,
            turn: 0,
            batch: batch as u64,
            remaining,
            framing,
            one: Message::default(),
            request: Message::default(),
        }
    }

    /// Whether the share is used up.
    pub fn exhausted(&self) -> bool {
        self.remaining == Some(0) || self.slots.is_empty()
    }

    /// Generates the next request into `self.request`; returns the slot it is from and
    /// its number of events.
    pub fn next_request(&mut self, now: Timestamp) -> (usize, u64) {
        let slot = self.turn % self.slots.len().max(1);
        self.turn = self.turn.wrapping_add(1);
        let events = self
            .remaining
            .map_or(self.batch, |r| r.min(self.batch))
            .max(1);
        if let Some(r) = &mut self.remaining {
            *r = r.saturating_sub(events);
        }
        let device = &mut self.slots[slot].device;
        if events == 1 {
            device.next(now, &mut self.request);
            return (slot, 1);
        }
        self.request.clear();
        let body = &mut self.request.body;
        if self.framing == Framing::Array {
            body.push(b'[');
        }
        for i in 0..events {
            device.next(now, &mut self.one);
            if i > 0 {
                body.push(if self.framing == Framing::Array {
                    b','
                } else {
                    b'\n'
                });
            }
            body.extend_from_slice(&self.one.body);
        }
        if self.framing == Framing::Array {
            body.push(b']');
        }
        (slot, events)
    }
}

/// What every worker shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub run: Arc<Resolved>,
    pub stats: Arc<Stats>,
    pub start: watch::Receiver<Option<Instant>>,
    /// Cancelled to interrupt: stop issuing, drain, report.
    pub stop: CancellationToken,
    pub connects: Arc<Semaphore>,
}

impl Shared {
    /// Waits for the common start; `None` if the run was interrupted first.
    pub async fn started(&mut self) -> Option<Instant> {
        loop {
            if let Some(start) = *self.start.borrow() {
                return Some(start);
            }
            tokio::select! {
                changed = self.start.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = self.stop.cancelled() => return None,
            }
        }
    }
}

/// One worker's share of the run.
#[derive(Debug)]
pub(crate) struct Plan {
    pub index: usize,
    pub source: Source,
    /// Events per second for this worker.
    pub rate: Option<f64>,
    pub phase: f64,
    pub recorder: Recorder,
    pub ready: mpsc::Sender<Result<(), String>>,
}

impl Plan {
    /// The schedule of requests, from `start`.
    pub fn pacer(&self, run: &Resolved, start: Instant) -> Pacer {
        let batch = run.config.batch as f64;
        Pacer::new(
            start,
            self.rate.map(|r| r / batch),
            self.phase,
            None,
            run.config.duration.map(|d| start + d),
        )
    }
}

/// The local address to bind the `index`-th socket of `total` to, if one is needed: on
/// a loopback target with many sockets, they are spread over 127.0.0.x so that no source
/// address runs out of ports.
pub(crate) fn source_addr(target: SocketAddr, index: usize, total: usize) -> Option<SocketAddr> {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && total > PER_SOURCE_ADDR => {
            let n = (index / PER_SOURCE_ADDR) as u8;
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1u8.wrapping_add(n).max(1))),
                0,
            ))
        }
        _ => None,
    }
}

/// A UDP socket bound for talking to `target`.
pub(crate) fn udp_bind_addr(target: SocketAddr, index: usize, total: usize) -> SocketAddr {
    source_addr(target, index, total).unwrap_or(match target {
        SocketAddr::V4(a) if a.ip().is_loopback() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
        }
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0),
    })
}

/// A TCP connection to `target`, from a spread source address when there are many.
pub(crate) async fn tcp_connect(
    target: SocketAddr,
    index: usize,
    total: usize,
) -> std::io::Result<tokio::net::TcpStream> {
    let stream = match source_addr(target, index, total) {
        Some(local) => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(local)?;
            socket.connect(target).await?
        }
        None => tokio::net::TcpStream::connect(target).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Runs a simulation until its count, its duration or `stop`, and reports.
pub async fn run(config: SimConfig, stop: CancellationToken) -> Result<Report, SimError> {
    let run = Arc::new(config.resolve().await?);
    let stats = Arc::new(Stats::default());
    let (start_tx, start_rx) = watch::channel(None);
    let shared = Shared {
        run: run.clone(),
        stats: stats.clone(),
        start: start_rx,
        stop: stop.clone(),
        connects: Arc::new(Semaphore::new(CONNECTS_AT_ONCE)),
    };

    // Devices are dealt to workers round-robin; rate and count follow the devices.
    let c = &run.config;
    let mut per_worker: Vec<Vec<Slot>> = (0..run.connections).map(|_| Vec::new()).collect();
    for index in 0..run.devices {
        per_worker[index % run.connections].push(Slot {
            device: c.scenario.device(index, run.devices),
            token: c.credentials.for_device(index).map(str::to_owned),
        });
    }
    let weights: Vec<usize> = per_worker.iter().map(Vec::len).collect();
    let counts = run.count.map(|n| split(n, &weights));
    let framing = if c.protocol == Protocol::Coap {
        Framing::Array
    } else {
        Framing::Ndjson
    };
    let (ready_tx, mut ready_rx) = mpsc::channel(run.connections + 1);
    let mut workers = Vec::with_capacity(run.connections);
    for (index, slots) in per_worker.into_iter().enumerate() {
        let share = slots.len() as f64 / run.devices as f64;
        let plan = Plan {
            index,
            source: Source::new(
                slots,
                c.batch,
                counts.as_ref().map(|counts| counts[index]),
                framing,
            ),
            rate: run.rate.map(|r| r * share),
            phase: index as f64 / run.connections as f64,
            recorder: stats.recorder(index),
            ready: ready_tx.clone(),
        };
        let shared = shared.clone();
        workers.push(tokio::spawn(async move {
            match shared.run.config.protocol {
                Protocol::Http => http::worker(plan, shared).await,
                Protocol::Coap => coap::worker(plan, shared).await,
                Protocol::Mqtt => mqtt::worker(plan, shared).await,
            }
        }));
    }
    drop(ready_tx);

    let idle_stop = CancellationToken::new();
    let mut idle = idle::spawn(&shared, idle_stop.clone());

    // Wait until every worker is connected (or failed).
    let mut answered = 0usize;
    let mut failures = 0usize;
    let mut first_failure: Option<String> = None;
    while answered < run.connections {
        tokio::select! {
            message = ready_rx.recv() => match message {
                Some(Ok(())) => answered += 1,
                Some(Err(reason)) => {
                    stats.connect_error(&reason);
                    first_failure.get_or_insert(reason);
                    failures += 1;
                    answered += 1;
                }
                None => break,
            },
            () = stop.cancelled() => break,
        }
    }
    let idle_failed = idle.wait_ready(&stop).await;
    if failures == run.connections {
        idle_stop.cancel();
        for worker in workers {
            let _ = worker.await;
        }
        idle.join().await;
        return Err(SimError::Connect {
            target: run.target.addr.to_string(),
            reason: first_failure.unwrap_or_else(|| "no connection".into()),
        });
    }

    let start = Instant::now() + Duration::from_millis(5);
    stats.set_start(start);
    let _ = start_tx.send(Some(start));
    let progress_done = CancellationToken::new();
    let progress_task = c
        .progress
        .then(|| tokio::spawn(progress(stats.clone(), progress_done.clone())));
    for worker in workers {
        // A panicking worker would be a bug; its counts are lost, the rest is reported.
        if let Err(error) = worker.await {
            tracing::error!(%error, "a simulation worker failed");
        }
    }
    let elapsed = start.elapsed();
    progress_done.cancel();
    if let Some(task) = progress_task {
        let _ = task.await;
    }
    idle_stop.cancel();
    idle.join().await;
    let info = RunInfo {
        scenario: c.scenario.kind.name().to_owned(),
        protocol: c.protocol.name().to_owned(),
        mode: run.mode(),
        target: run.target.addr.to_string(),
        devices: run.devices,
        connections: run.connections,
        concurrency: run.concurrency(),
        batch: c.batch,
        rate: run.rate,
        idle: c.idle,
        answered: run.answered(),
    };
    Ok(Report::build(info, &stats, elapsed, idle_failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_loopback_sockets_spread_over_source_addresses() {
        let target: SocketAddr = "127.0.0.1:1883".parse().unwrap();
        assert_eq!(source_addr(target, 5, 10_000), None);
        let first = source_addr(target, 0, 40_000).unwrap();
        let last = source_addr(target, 39_999, 40_000).unwrap();
        assert_eq!(first.ip().to_string(), "127.0.0.1");
        assert_eq!(last.ip().to_string(), "127.0.0.3");
        assert_eq!(last.port(), 0);
        let remote: SocketAddr = "10.0.0.1:1883".parse().unwrap();
        assert_eq!(source_addr(remote, 39_999, 40_000), None);
        assert_eq!(udp_bind_addr(target, 0, 1).ip().to_string(), "127.0.0.1");
        assert_eq!(udp_bind_addr(remote, 0, 1).ip().to_string(), "0.0.0.0");
    }

    #[test]
    fn sources_batch_events_of_one_device_per_request() {
        let scenario = crate::scenario::ScenarioConfig::new(crate::scenario::ScenarioKind::Flat);
        let slots = vec![Slot {
            device: scenario.device(0, 1),
            token: None,
        }];
        let mut source = Source::new(slots, 3, Some(7), Framing::Array);
        let now = Timestamp::now();
        let mut sizes = Vec::new();
        while !source.exhausted() {
            let (_, events) = source.next_request(now);
            let body: serde_json::Value = serde_json::from_slice(&source.request.body).unwrap();
            // One event goes as itself, several as an array.
            let n = body.as_array().map_or(1, Vec::len);
            assert_eq!(n as u64, events);
            sizes.push(events);
        }
        assert_eq!(sizes, vec![3, 3, 1]);
    }
}
