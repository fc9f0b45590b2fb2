//! Consumers: durable pull consumers, no-wait fetches, explicit acknowledgements.
//!
//! See the crate docs for the design. The state a consumer shares with its fetch task and
//! with the log ([`Shared`]) holds, per partition, the durable consumer's handle, the
//! acknowledgement subjects of every message handed to this consumer and not yet
//! acknowledged (by stream sequence), and the highest sequence handed out since the
//! consumer was last positioned; plus the messages fetched but not yet returned by a
//! `poll` (a cancelled poll leaves them there for the next one).
//!
//! Invariants:
//! - every message in `ready` also has its acknowledgement subject in its partition's
//!   `pending`; a commit acknowledges exactly the `pending` entries up to its position;
//! - a fetch never runs while the consumer seeks or repositions (both wait for it first),
//!   so nothing fetched from a consumer that was deleted meanwhile is handed out.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::Subject;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, ReplayPolicy, pull};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use ingot_core::Timestamp;
use ingot_log::{Consumer, Delivered, LogError, Position};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{api_code, is_not_found, unavailable};
use crate::{Inner, Topic, names};

type PullConsumer = consumer::Consumer<pull::Config>;

/// The first pause between two empty fetch rounds; it doubles up to [`MAX_PAUSE`].
const MIN_PAUSE: Duration = Duration::from_millis(2);
/// The longest pause between two empty fetch rounds while a poll waits.
const MAX_PAUSE: Duration = Duration::from_millis(50);
/// The most bytes one fetch asks for (at least twice the server's `max_payload`).
const FETCH_BYTES: usize = 32 << 20;

/// How often a consumer creation that was not answered is asked again.
const CREATE_TRIES: u32 = 4;

const ACK: &[u8] = b"+ACK";
const NAK: &[u8] = b"-NAK";

/// What a consumer shares with its fetch task and the log.
pub(crate) struct Shared {
    state: parking_lot::Mutex<State>,
}

struct State {
    ready: VecDeque<Delivered>,
    parts: Vec<PartState>,
}

struct PartState {
    handle: Option<PullConsumer>,
    /// Sequence → acknowledgement subject, of messages handed to us and not acknowledged.
    pending: BTreeMap<u64, Subject>,
    /// The highest sequence handed to us since the consumer was (re)positioned.
    delivered: u64,
}

impl Shared {
    /// Every acknowledgement subject not acknowledged yet (and forgets them and the
    /// messages not returned yet).
    pub(crate) fn take_all_pending(&self) -> Vec<Subject> {
        let mut state = self.state.lock();
        state.ready.clear();
        state
            .parts
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.pending).into_values())
            .collect()
    }

    fn take_ready(&self, max: usize) -> Vec<Delivered> {
        let mut state = self.state.lock();
        let n = max.min(state.ready.len());
        state.ready.drain(..n).collect()
    }
}

/// The ack floor of durable `durable` on `stream`: the group's next offset in that
/// partition (0 if the stream or the consumer does not exist). A consumer created at a
/// start sequence reports a floor of 0 until its first acknowledgement (nats-server 2.9),
/// so the floor is at least the sequence before its start.
pub(crate) async fn ack_floor(inner: &Inner, stream: &str, durable: &str) -> Result<u64, LogError> {
    match inner
        .js
        .get_consumer_from_stream::<pull::Config, _, _>(durable, stream)
        .await
    {
        Ok(consumer) => {
            let info = consumer.cached_info();
            let start = match info.config.deliver_policy {
                DeliverPolicy::ByStartSequence { start_sequence } => start_sequence,
                _ => 1,
            };
            Ok(info.ack_floor.stream_sequence.max(start.saturating_sub(1)))
        }
        Err(e) => {
            let code = match e.kind() {
                ConsumerErrorKind::JetStream(j) => api_code(Some(&j)),
                _ => None,
            };
            if is_not_found(code) {
                Ok(0)
            } else {
                Err(unavailable(&format!("consumer {durable} on {stream}"), e))
            }
        }
    }
}

/// Negatively acknowledges `subjects` so the engine redelivers them at once.
pub(crate) async fn nak_all(client: &async_nats::Client, subjects: Vec<Subject>) {
    if subjects.is_empty() {
        return;
    }
    let count = subjects.len();
    for subject in subjects {
        if client
            .publish(subject, Bytes::from_static(NAK))
            .await
            .is_err()
        {
            // The connection is gone: the engine redelivers after `ack_wait` instead.
            return;
        }
    }
    let _ = client.flush().await;
    tracing::debug!(
        messages = count,
        "nats: handed back uncommitted messages (-NAK)"
    );
}

/// One group member's view of a topic; see the module docs.
pub(crate) struct NatsConsumer {
    inner: Arc<Inner>,
    topic: Arc<Topic>,
    durable: String,
    shared: Arc<Shared>,
    /// The fetch round in progress, if a poll was cancelled while it ran.
    inflight: Option<JoinHandle<Result<(), LogError>>>,
    /// The partition the next fetch round starts with.
    rr: usize,
}

impl fmt::Debug for NatsConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConsumer")
            .field("topic", &self.topic.name)
            .field("durable", &self.durable)
            .finish()
    }
}

impl NatsConsumer {
    /// A consumer of `topic` as `group`, creating the durable consumers it lacks (they
    /// start at the beginning of their streams).
    pub(crate) async fn open(
        inner: Arc<Inner>,
        topic: Arc<Topic>,
        group: &str,
    ) -> Result<NatsConsumer, LogError> {
        let durable = names::consumer(group);
        let mut parts = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let handle = durable_consumer(&inner, &partition.stream, &durable, None).await?;
            parts.push(PartState {
                handle: Some(handle),
                pending: BTreeMap::new(),
                delivered: 0,
            });
        }
        let shared = Arc::new(Shared {
            state: parking_lot::Mutex::new(State {
                ready: VecDeque::new(),
                parts,
            }),
        });
        {
            let mut live = inner.consumers.lock();
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&shared));
        }
        Ok(NatsConsumer {
            inner,
            topic,
            durable,
            shared,
            inflight: None,
            rr: 0,
        })
    }

    /// Waits for a fetch round a cancelled poll left running.
    async fn settle(&mut self) -> Result<(), LogError> {
        if let Some(task) = self.inflight.as_mut() {
            let result = task.await;
            self.inflight = None;
            result.map_err(|e| unavailable("fetch task", e))??;
        }
        Ok(())
    }

    fn check_partition(&self, partition: u32) -> Result<(), LogError> {
        let n = self.topic.partitions.len();
        if (partition as usize) < n {
            Ok(())
        } else {
            Err(LogError::Invalid(format!(
                "partition {partition} of topic {} does not exist (it has {n})",
                self.topic.name
            )))
        }
    }

    /// The end (last sequence) of `partition`'s stream.
    async fn end(&self, partition: u32) -> Result<u64, LogError> {
        let stream = &self.topic.partitions[partition as usize].stream;
        Ok(self.inner.stream_last_sequence(stream).await?.unwrap_or(0))
    }

    /// Recreates the durable consumer of `partition` so that it delivers from `start`
    /// (a stream sequence); forgets what the old one handed out.
    async fn reposition(&self, partition: u32, start: u64) -> Result<(), LogError> {
        let stream = &self.topic.partitions[partition as usize].stream;
        let handle = durable_consumer(&self.inner, stream, &self.durable, Some(start)).await?;
        let mut state = self.shared.state.lock();
        state.ready.retain(|d| d.position.partition != partition);
        let part = &mut state.parts[partition as usize];
        part.handle = Some(handle);
        part.pending.clear();
        part.delivered = start.saturating_sub(1);
        tracing::debug!(stream = %stream, consumer = %self.durable, start, "nats: consumer repositioned");
        Ok(())
    }
}

/// The durable pull consumer `durable` of `stream`: the existing one (or a new one from
/// the start of the stream) when `start` is `None`, else a new one from sequence `start`
/// (replacing any existing one).
async fn durable_consumer(
    inner: &Inner,
    stream: &str,
    durable: &str,
    start: Option<u64>,
) -> Result<PullConsumer, LogError> {
    let js = &inner.js;
    match start {
        None => match js
            .get_consumer_from_stream::<pull::Config, _, _>(durable, stream)
            .await
        {
            Ok(consumer) => return Ok(consumer),
            Err(e) => {
                let code = match e.kind() {
                    ConsumerErrorKind::JetStream(j) => api_code(Some(&j)),
                    _ => None,
                };
                if !is_not_found(code) {
                    return Err(unavailable(&format!("consumer {durable} on {stream}"), e));
                }
            }
        },
        Some(_) => match js.delete_consumer_from_stream(durable, stream).await {
            Ok(_) => {}
            Err(e) => {
                let code = match e.kind() {
                    ConsumerErrorKind::JetStream(j) => api_code(Some(&j)),
                    _ => None,
                };
                if !is_not_found(code) {
                    return Err(unavailable(
                        &format!("cannot delete consumer {durable} on {stream}"),
                        e,
                    ));
                }
            }
        },
    }
    let c = &inner.config;
    let config = pull::Config {
        durable_name: Some(durable.to_owned()),
        description: Some("Ingot log consumer group".into()),
        deliver_policy: match start {
            None => DeliverPolicy::All,
            Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        },
        ack_policy: AckPolicy::Explicit,
        ack_wait: c.ack_wait,
        max_deliver: -1,
        max_ack_pending: c.max_ack_pending,
        replay_policy: ReplayPolicy::Instant,
        ..pull::Config::default()
    };
    // In a cluster the answer comes once the consumer's own RAFT group has a leader, which
    // takes a few seconds while a server is down: ask again (creating is idempotent).
    let mut tries = 0;
    loop {
        tries += 1;
        match js.create_consumer_on_stream(config.clone(), stream).await {
            Ok(consumer) => return Ok(consumer),
            Err(e)
                if tries < CREATE_TRIES
                    && matches!(
                        e.kind(),
                        ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request
                    ) =>
            {
                tracing::debug!(stream, durable, error = %e, "nats: consumer creation not answered yet; asking again");
            }
            Err(e) => {
                return Err(unavailable(
                    &format!("cannot create consumer {durable} on {stream}"),
                    e,
                ));
            }
        }
    }
}

/// One fetch round: no-wait fetches from the partitions in `order` until `max` messages
/// arrived; every message goes into `shared` as it arrives.
async fn fetch_round(
    inner: Arc<Inner>,
    shared: Arc<Shared>,
    streams: Vec<(u32, String)>,
    durable: String,
    max: usize,
) -> Result<(), LogError> {
    let mut got = 0usize;
    let mut failure = None;
    for (partition, stream) in streams {
        if got >= max {
            break;
        }
        let handle = shared.state.lock().parts[partition as usize].handle.clone();
        let handle = match handle {
            Some(handle) => handle,
            None => match durable_consumer(&inner, &stream, &durable, None).await {
                Ok(handle) => {
                    shared.state.lock().parts[partition as usize].handle = Some(handle.clone());
                    handle
                }
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            },
        };
        match fetch(&inner, &shared, partition, &handle, max - got).await {
            Ok(n) => got += n,
            Err(e) => {
                tracing::warn!(stream = %stream, consumer = %durable, error = %e, "nats: fetch failed");
                // Look the consumer up again next time (it may have been deleted).
                shared.state.lock().parts[partition as usize].handle = None;
                failure = Some(e);
            }
        }
    }
    match failure {
        Some(e) if got == 0 => Err(e),
        _ => Ok(()),
    }
}

/// Fetches up to `max` messages of `partition` without waiting for new ones; returns how
/// many arrived.
async fn fetch(
    inner: &Inner,
    shared: &Shared,
    partition: u32,
    handle: &PullConsumer,
    max: usize,
) -> Result<usize, LogError> {
    let stream = &handle.cached_info().stream_name;
    let mut batch = handle
        .fetch()
        .max_messages(max)
        .max_bytes(FETCH_BYTES.max(inner.client.max_payload() * 2))
        .messages()
        .await
        .map_err(|e| unavailable(&format!("fetch from {stream}"), e))?;
    let mut got = 0usize;
    let deadline = Instant::now() + inner.config.request_timeout;
    loop {
        let next = match tokio::time::timeout_at(deadline, batch.next()).await {
            Ok(next) => next,
            // The server did not end the fetch: keep what came, ask again next round.
            Err(_) => break,
        };
        let message = match next {
            None => break,
            Some(Ok(message)) => message,
            Some(Err(e)) if got > 0 => {
                tracing::debug!(stream = %stream, error = %e, "nats: fetch ended early");
                break;
            }
            Some(Err(e)) => return Err(unavailable(&format!("fetch from {stream}"), e)),
        };
        let (sequence, published) = match message.info() {
            Ok(info) => (info.stream_sequence, info.published),
            Err(e) => {
                tracing::warn!(stream = %stream, error = %e, "nats: skipping a message without JetStream metadata");
                continue;
            }
        };
        let Some(reply) = message.message.reply.clone() else {
            continue;
        };
        let micros = published.unix_timestamp_nanos() / 1000;
        let delivered = Delivered {
            position: Position {
                partition,
                offset: sequence.saturating_sub(1),
            },
            appended: Timestamp::from_micros(i64::try_from(micros).unwrap_or(i64::MAX)),
            payload: message.message.payload.clone(),
        };
        let mut state = shared.state.lock();
        let part = &mut state.parts[partition as usize];
        part.pending.insert(sequence, reply);
        part.delivered = part.delivered.max(sequence);
        state.ready.push_back(delivered);
        got += 1;
    }
    Ok(got)
}

#[async_trait]
impl Consumer for NatsConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError> {
        self.inner.check_open()?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        let mut pause = MIN_PAUSE;
        let mut fetched = false;
        loop {
            self.settle().await?;
            let batch = self.shared.take_ready(max);
            if !batch.is_empty() {
                return Ok(batch);
            }
            if fetched {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(batch);
                }
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = (pause * 2).min(MAX_PAUSE);
                self.inner.check_open()?;
            }
            fetched = true;
            let n = self.topic.partitions.len();
            let streams: Vec<(u32, String)> = (0..n)
                .map(|i| {
                    let p = (self.rr + i) % n;
                    (p as u32, self.topic.partitions[p].stream.clone())
                })
                .collect();
            self.rr = (self.rr + 1) % n.max(1);
            self.inflight = Some(tokio::spawn(fetch_round(
                self.inner.clone(),
                self.shared.clone(),
                streams,
                self.durable.clone(),
                max,
            )));
        }
    }

    async fn commit(&mut self, processed: &[Position]) -> Result<(), LogError> {
        self.inner.check_open()?;
        let mut targets: BTreeMap<u32, u64> = BTreeMap::new();
        for position in processed {
            self.check_partition(position.partition)?;
            let sequence = position.offset + 1;
            let target = targets.entry(position.partition).or_insert(0);
            *target = (*target).max(sequence);
        }
        self.settle().await?;
        for (partition, target) in targets {
            let (acks, beyond) = {
                let mut state = self.shared.state.lock();
                let part = &mut state.parts[partition as usize];
                let later = part.pending.split_off(&(target + 1));
                let acks = std::mem::replace(&mut part.pending, later);
                (acks, target > part.delivered)
            };
            let stream = self.topic.partitions[partition as usize].stream.clone();
            acknowledge(
                &self.inner.client,
                &stream,
                acks,
                self.inner.config.request_timeout,
            )
            .await?;
            if beyond {
                // Positions this consumer was never handed: move the group there if it
                // is behind (a commit never moves it backwards).
                let end = self.end(partition).await?;
                if target > end {
                    return Err(LogError::Invalid(format!(
                        "commit of {partition}@{} in topic {} is beyond the end {end} of the partition",
                        target - 1,
                        self.topic.name
                    )));
                }
                if ack_floor(&self.inner, &stream, &self.durable).await? < target {
                    self.reposition(partition, target + 1).await?;
                } else {
                    self.shared.state.lock().parts[partition as usize].delivered = target;
                }
            }
        }
        Ok(())
    }

    async fn seek(&mut self, partition: u32, offset: u64) -> Result<(), LogError> {
        self.inner.check_open()?;
        self.check_partition(partition)?;
        self.settle().await?;
        let end = self.end(partition).await?;
        if offset > end {
            return Err(LogError::Invalid(format!(
                "seek to {partition}@{offset} in topic {} is beyond the end {end} of the partition",
                self.topic.name
            )));
        }
        self.reposition(partition, offset + 1).await
    }
}

/// Acknowledges `acks` in order; the last one as a request, which the server answers once
/// it has processed it (and so every one before it, sent on the same connection).
async fn acknowledge(
    client: &async_nats::Client,
    stream: &str,
    acks: BTreeMap<u64, Subject>,
    timeout: Duration,
) -> Result<(), LogError> {
    let Some((&last_sequence, _)) = acks.last_key_value() else {
        return Ok(());
    };
    let mut subjects: Vec<Subject> = acks.into_values().collect();
    let last = subjects.pop();
    for subject in subjects {
        client
            .publish(subject, Bytes::from_static(ACK))
            .await
            .map_err(|e| unavailable(&format!("acknowledging messages of {stream}"), e))?;
    }
    if let Some(last) = last {
        let request = async_nats::Request::new()
            .payload(Bytes::from_static(ACK))
            .timeout(Some(timeout));
        client.send_request(last, request).await.map_err(|e| {
            unavailable(
                &format!("acknowledging {stream} up to sequence {last_sequence}"),
                e,
            )
        })?;
    }
    Ok(())
}

impl Drop for NatsConsumer {
    fn drop(&mut self) {
        // Hand back what was fetched and not committed, so the group gets it again at
        // once instead of after `ack_wait`. A fetch still running is waited for first.
        let inflight = self.inflight.take();
        let pending_now = {
            let state = self.shared.state.lock();
            state.parts.iter().any(|p| !p.pending.is_empty())
        };
        if inflight.is_none() && !pending_now {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (shared, client) = (self.shared.clone(), self.inner.client.clone());
        let task = runtime.spawn(async move {
            if let Some(task) = inflight {
                let _ = task.await;
            }
            nak_all(&client, shared.take_all_pending()).await;
        });
        let mut background = self.inner.background.lock();
        background.retain(|t| !t.is_finished());
        background.push(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_with(pending: &[(u32, u64)]) -> Shared {
        let mut parts: Vec<PartState> = (0..2)
            .map(|_| PartState {
                handle: None,
                pending: BTreeMap::new(),
                delivered: 0,
            })
            .collect();
        let mut ready = VecDeque::new();
        for &(partition, sequence) in pending {
            parts[partition as usize].pending.insert(
                sequence,
                Subject::from(format!("$JS.ACK.s.c.1.{sequence}.1.0.0")),
            );
            ready.push_back(Delivered {
                position: Position {
                    partition,
                    offset: sequence - 1,
                },
                appended: Timestamp::from_micros(1),
                payload: Bytes::from_static(b"x"),
            });
        }
        Shared {
            state: parking_lot::Mutex::new(State { ready, parts }),
        }
    }

    #[test]
    fn ready_is_handed_out_in_order_and_at_most_max() {
        let shared = shared_with(&[(0, 1), (0, 2), (1, 1)]);
        let first = shared.take_ready(2);
        assert_eq!(
            first.iter().map(|d| d.position).collect::<Vec<_>>(),
            [
                Position {
                    partition: 0,
                    offset: 0
                },
                Position {
                    partition: 0,
                    offset: 1
                }
            ]
        );
        assert_eq!(shared.take_ready(10).len(), 1);
        assert!(shared.take_ready(10).is_empty());
    }

    #[test]
    fn taking_all_pending_forgets_everything_once() {
        let shared = shared_with(&[(0, 1), (1, 5), (1, 6)]);
        let subjects = shared.take_all_pending();
        assert_eq!(subjects.len(), 3);
        assert!(shared.take_all_pending().is_empty());
        assert!(shared.take_ready(10).is_empty(), "ready went with pending");
    }
}
