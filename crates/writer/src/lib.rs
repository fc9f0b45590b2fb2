//! The store writer: moves events from the durable log into the event store.
//!
//! It reads the `events` topic in large batches and writes each batch with
//! [`EventStore::write_batch`], which stores the events and the writer's checkpoint (the next
//! log offset of each partition) in one transaction. On start it seeks the log to the
//! store's checkpoint, so:
//!
//! - nothing is lost: an event leaves the writer's view only when its transaction committed;
//! - nothing is duplicated: a batch that was committed is never read again, and a batch
//!   re-read after a crash between commit and checkpoint cannot happen because both are one
//!   transaction (and writes are idempotent on event id anyway, which is what a shared log
//!   engine with several writers relies on);
//! - a store rebuilt from scratch (an empty database next to a full log) replays the log
//!   from its oldest retained offset.
//!
//! After each committed batch the writer also commits the position to the log's consumer
//! group, which lets retention know what it may delete; that commit may lag, never lead.
//!
//! On shutdown the writer keeps going until it has caught up with the end of the log (the
//! caller bounds how long), so a clean stop leaves the store complete.
//!
//! # On a shared log engine (several writers)
//!
//! When the log keeps group positions itself and shares a group's messages among its
//! consumers ([`Log::shared_groups`], NATS JetStream), any number of writers run at once
//! on as many replicas, and the engine hands each message to one of them. The writer then
//! changes three things, and only these:
//!
//! - **It does not seek to the store's checkpoint.** A seek re-positions the whole group,
//!   so a writer starting next to running ones would move them; and the engine's position
//!   is as good: a message is acknowledged to the engine only after the transaction that
//!   stored it committed, so the group's committed position never passes an event that is
//!   not stored. A batch stored whose acknowledgement was lost (a crash between the two)
//!   comes again, to this or another writer, and is skipped by id.
//! - **It writes no checkpoint offsets.** With several writers, a partition's offsets
//!   reach the store out of order, and no single "next offset" would be true; the
//!   checkpoint rows would also make concurrent writers wait for each other's locks.
//! - **On shutdown it finishes the batch in hand, commits it, and stops**, instead of
//!   draining the log: the other writers (or the next one to start) continue from the
//!   group's position; what this writer was handed and did not commit is handed back.
//!
//! Its lag metric is then the group's (messages not yet committed by any writer), the
//! same value on every writer, which is what an autoscaler should look at.
//!
//! A poll the log answers with [`LogError::Unavailable`] (a remote engine unreachable for
//! a moment) is retried after a pause, as a failed store write is; other log errors stop
//! the writer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingot_core::record;
use ingot_log::{Consumer, Log, LogError, Position};
use ingot_store::{Checkpoint, EventStore, StoreError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

pub mod retention;

/// The writer's name, as a log consumer group and as a store checkpoint.
pub const WRITER_GROUP: &str = "store-writer";

/// Why the writer stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The log failed in a way retrying cannot fix.
    #[error("store writer: log failed: {0}")]
    Log(#[from] LogError),
    /// The store failed in a way retrying cannot fix.
    #[error("store writer: store failed: {0}")]
    Store(#[from] StoreError),
}

/// The writer's metrics.
#[derive(Debug, Clone)]
pub struct WriterMetrics {
    lag: Gauge,
    inserted: Counter,
    duplicates: Counter,
    undecodable: Counter,
    batch_seconds: Histogram,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        WriterMetrics {
            lag: Gauge::default(),
            inserted: Counter::default(),
            duplicates: Counter::default(),
            undecodable: Counter::default(),
            batch_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        }
    }
}

impl WriterMetrics {
    /// Registers `ingot_store_writer_*`.
    pub fn register(registry: &mut Registry) -> WriterMetrics {
        let m = WriterMetrics::default();
        registry.register(
            "ingot_store_writer_lag_messages",
            "Messages in the log not yet in the store",
            m.lag.clone(),
        );
        registry.register(
            "ingot_store_writer_inserted",
            "Events newly stored",
            m.inserted.clone(),
        );
        registry.register(
            "ingot_store_writer_duplicates",
            "Events skipped because their id was already stored",
            m.duplicates.clone(),
        );
        registry.register(
            "ingot_store_writer_undecodable",
            "Log records that could not be decoded as events (skipped)",
            m.undecodable.clone(),
        );
        registry.register(
            "ingot_store_writer_batch_seconds",
            "Time to store one batch, in seconds",
            m.batch_seconds.clone(),
        );
        m
    }

    /// The last measured lag, in messages.
    pub fn lag(&self) -> i64 {
        self.lag.get()
    }

    /// Events newly stored so far (benchmarks watch it).
    pub fn inserted(&self) -> u64 {
        self.inserted.get()
    }
}

/// The store writer of one topic.
#[derive(Debug)]
pub struct StoreWriter {
    log: Arc<dyn Log>,
    store: Arc<dyn EventStore>,
    topic: String,
    batch: usize,
    metrics: WriterMetrics,
}

/// How long to wait before retrying a failed store write.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How long a poll waits for new messages when the writer is idle.
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// On a shared engine, how often the lag is measured (it costs requests to the engine).
const SHARED_LAG_EVERY: Duration = Duration::from_secs(1);

impl StoreWriter {
    /// A writer moving `topic` from `log` to `store` in batches of up to `batch` events.
    pub fn new(
        log: Arc<dyn Log>,
        store: Arc<dyn EventStore>,
        topic: &str,
        batch: usize,
        metrics: WriterMetrics,
    ) -> StoreWriter {
        StoreWriter {
            log,
            store,
            topic: topic.to_owned(),
            batch: batch.max(1),
            metrics,
        }
    }

    /// Runs until `shutdown` is cancelled and the log is drained (on a shared engine: until
    /// `shutdown` is cancelled and the batch in hand is stored; see the module docs).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WriterError> {
        let shared = self.log.shared_groups();
        let mut consumer = self.log.consumer(&self.topic, WRITER_GROUP).await?;
        let mut positions = BTreeMap::new();
        let mut lag_measured = Instant::now();
        if shared {
            self.update_shared_lag().await;
            tracing::info!(topic = %self.topic, "store writer started; the log engine keeps its position and shares the work");
        } else {
            let checkpoint: BTreeMap<u32, u64> = self
                .store
                .checkpoint(WRITER_GROUP, &self.topic)
                .await?
                .into_iter()
                .collect();
            // The store's checkpoint is the truth: a partition it never wrote starts from the
            // oldest retained offset, even if the log's group is further along.
            for partition in 0..self.log.partitions() {
                consumer
                    .seek(partition, checkpoint.get(&partition).copied().unwrap_or(0))
                    .await?;
            }
            self.update_lag(&checkpoint).await;
            positions = checkpoint;
            tracing::info!(topic = %self.topic, "store writer started");
        }
        loop {
            let draining = shutdown.is_cancelled();
            if draining && shared {
                tracing::info!(topic = %self.topic, "store writer stopped; the other writers continue from the group's position");
                return Ok(());
            }
            let wait = if draining { Duration::ZERO } else { IDLE_WAIT };
            let polled = tokio::select! {
                batch = consumer.poll(self.batch, wait) => batch,
                () = shutdown.cancelled(), if !draining => continue,
            };
            let batch = match polled {
                Ok(batch) => batch,
                Err(LogError::Unavailable(reason)) => {
                    tracing::warn!(%reason, "store writer cannot read the log; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                        () = shutdown.cancelled(), if !draining => {}
                    }
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            if batch.is_empty() {
                if draining {
                    tracing::info!(topic = %self.topic, "store writer drained the log");
                    return Ok(());
                }
                if shared && lag_measured.elapsed() >= SHARED_LAG_EVERY {
                    self.update_shared_lag().await;
                    lag_measured = Instant::now();
                }
                continue;
            }
            self.write(&mut *consumer, batch, &mut positions, shared)
                .await?;
            if shared && lag_measured.elapsed() >= SHARED_LAG_EVERY {
                self.update_shared_lag().await;
                lag_measured = Instant::now();
            }
        }
    }

    async fn write(
        &self,
        consumer: &mut dyn Consumer,
        batch: Vec<ingot_log::Delivered>,
        positions: &mut BTreeMap<u32, u64>,
        shared: bool,
    ) -> Result<(), WriterError> {
        let started = Instant::now();
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for delivered in &batch {
            // Redeliveries on a shared engine may come after later offsets: keep the highest.
            let offset = last.entry(delivered.position.partition).or_insert(0);
            *offset = (*offset).max(delivered.position.offset);
        }
        let checkpoint = Checkpoint {
            consumer: WRITER_GROUP.to_owned(),
            topic: self.topic.clone(),
            // On a shared engine the engine keeps the position (see the module docs).
            offsets: if shared {
                Vec::new()
            } else {
                last.iter().map(|(&p, &o)| (p, o + 1)).collect()
            },
        };
        let mut attempt = 0u32;
        let outcome = loop {
            // Decoding again on a retry is cheaper than cloning every batch up front.
            let events = self.decode(&batch, attempt == 0);
            match self.store.write_batch(events, &checkpoint).await {
                Ok(outcome) => break outcome,
                Err(error) => {
                    // Never skip a batch: wait for the store to come back.
                    attempt += 1;
                    tracing::warn!(%error, attempt, events = batch.len(), "store write failed; retrying");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        };
        self.metrics.inserted.inc_by(outcome.inserted as u64);
        self.metrics.duplicates.inc_by(outcome.duplicates as u64);
        self.metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
        for (&p, &o) in &last {
            positions.insert(p, o + 1);
        }
        let processed: Vec<Position> = last
            .iter()
            .map(|(&partition, &offset)| Position { partition, offset })
            .collect();
        if let Err(error) = consumer.commit(&processed).await {
            // Only retention reads this; the store's checkpoint is what the writer resumes
            // from. On a shared engine the messages come again and are skipped by id.
            tracing::warn!(%error, "could not commit the store writer's log position");
        }
        if !shared {
            self.update_lag(positions).await;
        }
        Ok(())
    }

    /// The group's lag on a shared engine: messages no writer has committed yet.
    async fn update_shared_lag(&self) {
        let (ends, committed) = match (
            self.log.end_offsets(&self.topic).await,
            self.log.committed(&self.topic, WRITER_GROUP).await,
        ) {
            (Ok(ends), Ok(committed)) => (ends, committed),
            _ => return,
        };
        let lag: u64 = ends
            .iter()
            .zip(committed.iter().chain(std::iter::repeat(&0)))
            .map(|(end, next)| end.saturating_sub(*next))
            .sum();
        self.metrics.lag.set(i64::try_from(lag).unwrap_or(i64::MAX));
    }

    fn decode(&self, batch: &[ingot_log::Delivered], report: bool) -> Vec<ingot_core::Event> {
        let mut events = Vec::with_capacity(batch.len());
        for delivered in batch {
            match record::decode(&delivered.payload) {
                Ok(event) => events.push(event),
                Err(error) if report => {
                    // The frame passed its checksum, so this is a bug or a format from the
                    // future; keeping the writer stuck on it would stop every tenant.
                    self.metrics.undecodable.inc();
                    tracing::error!(position = %delivered.position, %error, "skipping undecodable log record");
                }
                Err(_) => {}
            }
        }
        events
    }

    async fn update_lag(&self, positions: &BTreeMap<u32, u64>) {
        if let Ok(ends) = self.log.end_offsets(&self.topic).await {
            let lag: u64 = ends
                .iter()
                .enumerate()
                .map(|(p, end)| {
                    end.saturating_sub(positions.get(&(p as u32)).copied().unwrap_or(0))
                })
                .sum();
            self.metrics.lag.set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests;
