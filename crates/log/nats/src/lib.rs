//! Ingot's scale-out log: the [`Log`] trait on NATS JetStream.
//!
//! Stateless `ingot` replicas share one JetStream (a single server or a cluster), so any
//! number of ingest replicas append and any number of store writers consume, and a replica
//! that goes away loses nothing the engine acknowledged. This backend passes the same
//! conformance suite as the embedded log (`ingot_log::conformance`).
//!
//! # Layout
//!
//! ```text
//! topic `events`, 4 partitions  →  streams INGOT_events_0 … INGOT_events_3
//!                                  on subjects ingot.events.0 … ingot.events.3
//! group `store-writer`          →  a durable pull consumer `store-writer` on each stream
//! ```
//!
//! (the naming and escaping rules are in `names.rs`; prefixes configurable.) **One stream per partition**
//! because JetStream sequences are per stream: a partition's offsets are then its stream's
//! sequences minus one, dense and increasing as the trait requires, and each partition
//! is its own RAFT group in a cluster, so partition leaders spread over the servers. The
//! partition of a key is [`ingot_log::partition_for`], exactly as for the embedded log.
//!
//! Streams are created on first use of a topic with **file storage**, the configured
//! **replicas** (R1 on a single server, R3 in a cluster), `Limits` retention by age and
//! size (the `[log]` retention settings) and a **duplicate window**. An existing stream
//! whose replicas, limits or window differ is updated; a topic found with more partition
//! streams than configured is refused (the partition of a device would change).
//!
//! # Appending: acknowledged after JetStream acknowledged
//!
//! An append publishes each message of the batch to its partition's subject and waits for
//! every `PubAck`, so [`Log::append`] returns only once JetStream has stored every message
//! (in a cluster: once a quorum of the stream's replicas has it). The publishes are
//! pipelined: all of a batch go out under the partition's lock, in order, before the first
//! acknowledgement is awaited, and the lock is released before the wait, so the batches of
//! concurrent appenders queue behind each other instead of waiting for each other's round
//! trips. Within one process a batch therefore gets consecutive sequences, and
//! [`ingot_log::AppendAck`] is exact; **batches from two processes may interleave**, in
//! which case the acknowledgement names the first message's offset (nothing in Ingot uses
//! the offsets of an append beyond that).
//!
//! **A batch is not atomic across a crash**: JetStream 2.9 has no multi-message
//! transaction, so a process that dies mid-batch may leave a prefix of it in the stream,
//! unacknowledged. The device then retries; the store is idempotent on event id, so the
//! events it retries are stored once. Every message carries a `Nats-Msg-Id` (a
//! per-process random prefix and a counter), and a publish whose acknowledgement did not
//! come (a leader election, a reconnect) is published again with the same id until the
//! append's deadline (`publish_timeout`): the stream's duplicate window drops the copy if
//! the first one had been stored, so retries inside one append never duplicate. A retried
//! message may land after messages published later (only during such a failover), the one
//! case where a device's events can leave the log out of order.
//!
//! # Consuming: durable pull consumers, explicit acknowledgements
//!
//! A [`Consumer`] of group `g` uses the durable pull consumer `g` of every partition
//! stream (created on first use, delivering from the start of the stream). [`Log::shared_groups`]
//! is `true`: consumers of one group in several processes share its messages, the engine
//! hands each message to one of them, and the group's position (the **ack floor**) lives
//! in JetStream, so a store writer resumes from there without a checkpoint of its own.
//!
//! - **poll** pulls with no-wait fetches, partition after partition (starting one further
//!   each time), up to `max` messages; when nothing is there it polls again with a
//!   growing pause (2 ms up to 50 ms) until `wait` runs out. Fetches run in a task of
//!   their own that hands messages over through the consumer's state, so a cancelled
//!   `poll` loses nothing.
//! - **commit** acknowledges every message this consumer was handed up to each position
//!   (`+ACK` per message, the last one of each partition as a request, answered once the
//!   server processed it and all before it). Acknowledgements are **explicit, not
//!   `AckAll`**: with `AckAll`, one writer's acknowledgement of sequence N would also
//!   acknowledge messages below N that the engine handed to *another* writer, which a
//!   crash of that writer would then lose. [`Log::committed`] is the consumer's ack
//!   floor (everything at or below it is acknowledged), which never moves backwards.
//! - **seek** deletes and recreates the durable consumer at the position (a JetStream
//!   consumer has one position, so this moves the whole group). Committing a position
//!   this consumer was never handed does the same if the group is behind it.
//! - Messages handed out and not committed are redelivered after `ack_wait` when their
//!   consumer dies; when it is dropped or the log closes they are negatively acknowledged
//!   (`-NAK`) so that they are redelivered at once.
//!
//! # Durability: what an acknowledgement survives
//!
//! JetStream writes a stored message to its file store and acknowledges; it does not
//! `fsync` per message. nats-server 2.9 (Debian 12's) syncs file-store blocks every two
//! minutes, fixed; 2.10 and later make that `jetstream { sync_interval }`, and
//! `sync_interval: always` syncs every write before acknowledging. So with one server an
//! acknowledged event survives a crash of Ingot and of `nats-server` (`tests/durability.rs`
//! kills it with SIGKILL right after the acknowledgements), but a power loss of that
//! machine may lose up to the sync interval. With R3 an acknowledgement means a
//! quorum (2 of 3 servers) stored the message, which survives losing any one server,
//! power included; losing power on two at once may lose the last interval. Ingot's
//! embedded log, by contrast, fsyncs before every acknowledgement (`fsync = "per-batch"`).
//! `docs/scale-out.md` has the details and the settings to use.
//!
//! # Connection
//!
//! `async-nats` over TCP or TLS (rustls with the `ring` provider, like the rest of Ingot),
//! reconnecting on its own with the seed servers of the URL ([`NatsUrl`]) and the ones the
//! cluster announces. JetStream API calls time out after `request_timeout`. Errors are
//! [`LogError`]s (see `error.rs`): anything the server did not answer is
//! [`LogError::Unavailable`], which callers retry.

mod consumer;
mod error;
mod names;
#[cfg(feature = "testing")]
pub mod testing;
mod url;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::context::{
    CreateStreamErrorKind, GetStreamErrorKind, PublishAckFuture, PublishErrorKind,
};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use async_nats::{ConnectOptions, ServerAddr};
use async_trait::async_trait;
use bytes::Bytes;
use ingot_log::{AppendAck, Consumer, Log, LogError, LogMetrics, partition_for, validate_name};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use url::NatsUrl;

use self::error::{api_code, is_not_found, unavailable};

/// The most partitions a topic may have (one stream each).
pub const MAX_PARTITIONS: u32 = 1000;
/// Bytes a message's headers (`Nats-Msg-Id`) take beyond its payload, counted against the
/// server's `max_payload`.
const HEADER_BYTES: usize = 64;
/// The most publishes of one append sent before their acknowledgements are awaited.
/// Publishes hold a permit of the client's in-flight limit until awaited, so that limit is
/// `partitions × PUBLISH_WINDOW × 2`: the appends still publishing (one per partition, under
/// its lock) can never take every permit while nobody awaits an acknowledgement.
const PUBLISH_WINDOW: usize = 1024;

/// How the NATS log is set up. Fields are public so the application can fill them from
/// its own configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsLogConfig {
    /// The servers, as in [`NatsUrl`]: `nats://[user:password@]host:port[,host:port...]`.
    pub url: String,
    /// Partitions (streams) of every topic, 1 to [`MAX_PARTITIONS`]. Fixed once a topic exists.
    pub partitions: u32,
    /// Replicas of every stream: 1 on a single server, 3 (or 5) in a cluster.
    pub replicas: usize,
    /// Streams are named `<stream_prefix>_<topic>_<partition>`.
    pub stream_prefix: String,
    /// Subjects are `<subject_prefix>.<topic>.<partition>`.
    pub subject_prefix: String,
    /// Messages older than this are deleted (`None`: kept until `max_bytes_per_partition`).
    pub max_age: Option<Duration>,
    /// The oldest messages are deleted while a partition holds more (`None`: no limit).
    pub max_bytes_per_partition: Option<u64>,
    /// How long JetStream remembers message ids to drop retried publishes. Must be longer
    /// than `publish_timeout`.
    pub duplicate_window: Duration,
    /// A message handed to a consumer and not acknowledged within this is redelivered
    /// (to any consumer of the group).
    pub ack_wait: Duration,
    /// At most this many messages per partition are handed out and not yet acknowledged,
    /// over all consumers of a group.
    pub max_ack_pending: i64,
    /// An append fails if JetStream has not acknowledged every message within this,
    /// retries included.
    pub publish_timeout: Duration,
    /// A JetStream API request (stream info, consumer creation...) fails after this.
    pub request_timeout: Duration,
    /// The connection's name, as the server shows it (`nats server report connections`).
    pub connection_name: String,
}

impl Default for NatsLogConfig {
    fn default() -> NatsLogConfig {
        NatsLogConfig {
            url: "nats://127.0.0.1:4222".into(),
            partitions: 4,
            replicas: 1,
            stream_prefix: "INGOT".into(),
            subject_prefix: "ingot".into(),
            max_age: None,
            max_bytes_per_partition: None,
            duplicate_window: Duration::from_secs(30),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 100_000,
            publish_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
            connection_name: "ingot".into(),
        }
    }
}

impl NatsLogConfig {
    /// Checks the values (not the servers): every problem, in one error.
    pub fn validate(&self) -> Result<NatsUrl, LogError> {
        let mut problems = Vec::new();
        let url = match NatsUrl::parse(&self.url) {
            Ok(url) => Some(url),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            problems.push(format!(
                "partitions must be 1 to {MAX_PARTITIONS}, not {}",
                self.partitions
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            problems.push(format!(
                "replicas must be 1 to 5 (JetStream's limit), not {}",
                self.replicas
            ));
        }
        for check in [
            names::check_stream_prefix(&self.stream_prefix),
            names::check_subject_prefix(&self.subject_prefix),
        ] {
            if let Err(e) = check {
                problems.push(e.to_string());
            }
        }
        if self.duplicate_window <= self.publish_timeout {
            problems.push(format!(
                "duplicate_window ({:?}) must be longer than publish_timeout ({:?}), or a retried publish could be stored twice",
                self.duplicate_window, self.publish_timeout
            ));
        }
        for (name, value) in [
            ("ack_wait", self.ack_wait),
            ("publish_timeout", self.publish_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if value < Duration::from_millis(100) {
                problems.push(format!("{name} must be at least 100ms, not {value:?}"));
            }
        }
        if self.max_ack_pending < 1 {
            problems.push(format!(
                "max_ack_pending must be at least 1, not {}",
                self.max_ack_pending
            ));
        }
        match (problems.is_empty(), url) {
            (true, Some(url)) => Ok(url),
            _ => Err(LogError::Invalid(format!(
                "nats log config: {}",
                problems.join("; ")
            ))),
        }
    }
}

/// The NATS JetStream [`Log`]; see the crate docs.
#[derive(Debug)]
pub struct NatsLog {
    inner: Arc<Inner>,
}

/// What the log, its consumers and their background tasks share.
pub(crate) struct Inner {
    pub(crate) config: NatsLogConfig,
    url: NatsUrl,
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    metrics: LogMetrics,
    topics: parking_lot::RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises topic creation.
    creating: tokio::sync::Mutex<()>,
    closed: AtomicBool,
    /// `Nats-Msg-Id` of this process: a random prefix and a counter.
    id_prefix: String,
    next_id: AtomicU64,
    /// Live consumers, so `close` can hand back what they were given.
    pub(crate) consumers: parking_lot::Mutex<Vec<Weak<consumer::Shared>>>,
    /// Tasks `close` waits for (negative acknowledgements of dropped consumers).
    pub(crate) background: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsLog")
            .field("servers", &self.url.redacted())
            .field("partitions", &self.config.partitions)
            .field("replicas", &self.config.replicas)
            .field("stream_prefix", &self.config.stream_prefix)
            .finish()
    }
}

/// One published message waiting for its acknowledgement.
struct Sent {
    /// Its `Nats-Msg-Id`, reused by retries.
    id: String,
    payload: Bytes,
    ack: Result<PublishAckFuture, async_nats::jetstream::context::PublishError>,
}

/// A topic's partitions, once their streams exist.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: String,
    pub(crate) partitions: Vec<Partition>,
}

/// One partition: its stream and subject.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) stream: String,
    subject: String,
    /// Held while a batch is published, so one process's batches stay contiguous.
    publishing: tokio::sync::Mutex<()>,
}

impl NatsLog {
    /// Connects to the servers of `config.url`, checks that JetStream answers, and returns
    /// the log. Streams are created when a topic is first used.
    pub async fn connect(config: NatsLogConfig, metrics: LogMetrics) -> Result<NatsLog, LogError> {
        let url = config.validate()?;
        let mut options = ConnectOptions::new()
            .name(&config.connection_name)
            .connection_timeout(config.request_timeout)
            .request_timeout(Some(config.request_timeout))
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("nats: connected"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("nats: disconnected; reconnecting")
                    }
                    // Our own close.
                    async_nats::Event::Draining | async_nats::Event::Closed => {
                        tracing::debug!(event = %event, "nats: connection event")
                    }
                    other => tracing::warn!(event = %other, "nats: connection event"),
                }
            });
        if let Some((user, password)) = &url.user {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &url.token {
            options = options.token(token.clone());
        }
        let servers = url
            .servers
            .iter()
            .map(|s| s.parse::<ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LogError::Invalid(format!("invalid NATS server address: {e}")))?;
        let client = options
            .connect(servers)
            .await
            .map_err(|e| unavailable(&format!("cannot connect to {}", url.redacted()), e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .max_ack_inflight(config.partitions as usize * PUBLISH_WINDOW * 2)
            .build(client.clone());
        // A cluster that just started may not have elected its JetStream leader yet.
        let deadline = Instant::now() + config.request_timeout * 2;
        loop {
            match jetstream_account(&client).await {
                Ok(()) => break,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "nats: JetStream not answering yet");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(unavailable(
                        &format!("JetStream at {} does not answer", url.redacted()),
                        e,
                    ));
                }
            }
        }
        let mut random = [0u8; 6];
        getrandom::fill(&mut random)
            .map_err(|e| unavailable("no random source for message ids", e))?;
        let id_prefix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        tracing::info!(
            servers = %url.redacted(),
            partitions = config.partitions,
            replicas = config.replicas,
            server_version = %client.server_info().version,
            "nats log connected"
        );
        Ok(NatsLog {
            inner: Arc::new(Inner {
                config,
                url,
                client,
                js,
                metrics,
                topics: parking_lot::RwLock::new(HashMap::new()),
                creating: tokio::sync::Mutex::new(()),
                closed: AtomicBool::new(false),
                id_prefix,
                next_id: AtomicU64::new(0),
                consumers: parking_lot::Mutex::new(Vec::new()),
                background: parking_lot::Mutex::new(Vec::new()),
            }),
        })
    }

    /// The configuration the log runs with.
    pub fn config(&self) -> &NatsLogConfig {
        &self.inner.config
    }

    /// The name of the stream holding `partition` of `topic` (for operators and tests).
    pub fn stream_name(&self, topic: &str, partition: u32) -> String {
        names::stream(&self.inner.config.stream_prefix, topic, partition)
    }
}

/// Asks JetStream for the account's information (`$JS.API.INFO`): an error unless
/// JetStream is enabled for the account and has a leader. (Raw, because async-nats' typed
/// account info expects fields nats-server 2.9 does not send.)
async fn jetstream_account(client: &async_nats::Client) -> Result<(), String> {
    let reply = client
        .request("$JS.API.INFO", Bytes::new())
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value =
        serde_json::from_slice(&reply.payload).map_err(|e| format!("unreadable answer: {e}"))?;
    match body.get("error") {
        None => Ok(()),
        Some(error) => Err(error.to_string()),
    }
}

impl Inner {
    pub(crate) fn check_open(&self) -> Result<(), LogError> {
        if self.closed.load(Ordering::Acquire) {
            Err(LogError::Closed)
        } else {
            Ok(())
        }
    }

    fn stream_config(&self, topic: &str, partition: u32) -> stream::Config {
        let c = &self.config;
        stream::Config {
            name: names::stream(&c.stream_prefix, topic, partition),
            subjects: vec![names::subject(&c.subject_prefix, topic, partition)],
            description: Some(format!("Ingot log: topic {topic}, partition {partition}")),
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            storage: stream::StorageType::File,
            num_replicas: c.replicas,
            max_age: c.max_age.unwrap_or(Duration::ZERO),
            max_bytes: c
                .max_bytes_per_partition
                .map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            max_messages: -1,
            max_messages_per_subject: -1,
            max_consumers: -1,
            max_message_size: -1,
            duplicate_window: c.duplicate_window,
            ..stream::Config::default()
        }
    }

    /// The topic `name`, its streams created (or brought up to date) on first use.
    pub(crate) async fn topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        self.check_open()?;
        if let Some(topic) = self.topics.read().get(name) {
            return Ok(topic.clone());
        }
        validate_name("topic", name)?;
        let _creating = self.creating.lock().await;
        if let Some(topic) = self.topics.read().get(name) {
            return Ok(topic.clone());
        }
        let partitions = self.config.partitions;
        let beyond = names::stream(&self.config.stream_prefix, name, partitions);
        if self.stream_last_sequence(&beyond).await?.is_some() {
            return Err(LogError::Invalid(format!(
                "topic {name} has more than {partitions} partition streams (found {beyond}); \
                 the partition count of an existing topic cannot change"
            )));
        }
        let mut parts = Vec::with_capacity(partitions as usize);
        for partition in 0..partitions {
            self.ensure_stream(name, partition).await?;
            parts.push(Partition {
                stream: names::stream(&self.config.stream_prefix, name, partition),
                subject: names::subject(&self.config.subject_prefix, name, partition),
                publishing: tokio::sync::Mutex::new(()),
            });
        }
        let topic = Arc::new(Topic {
            name: name.to_owned(),
            partitions: parts,
        });
        self.topics.write().insert(name.to_owned(), topic.clone());
        Ok(topic)
    }

    /// Creates the stream of `partition` of `topic`, or updates it if its settings differ.
    async fn ensure_stream(&self, topic: &str, partition: u32) -> Result<(), LogError> {
        let want = self.stream_config(topic, partition);
        let name = want.name.clone();
        match self.js.get_stream(&name).await {
            Ok(stream) => {
                let have = &stream.cached_info().config;
                if have.storage != stream::StorageType::File {
                    tracing::warn!(stream = %name, "nats: stream is not on file storage; acknowledged events do not survive a restart of nats-server");
                }
                let differs = have.num_replicas != want.num_replicas
                    || have.max_age != want.max_age
                    || have.max_bytes != want.max_bytes
                    || have.duplicate_window != want.duplicate_window;
                if differs {
                    match self.js.update_stream(&want).await {
                        Ok(_) => {
                            tracing::info!(stream = %name, replicas = want.num_replicas, "nats: stream settings updated")
                        }
                        Err(e) => {
                            tracing::warn!(stream = %name, error = %e, "nats: cannot update the stream's settings; keeping its own")
                        }
                    }
                }
                Ok(())
            }
            Err(e) => {
                let code = match e.kind() {
                    GetStreamErrorKind::JetStream(j) => api_code(Some(&j)),
                    _ => None,
                };
                if !is_not_found(code) {
                    return Err(unavailable(&format!("stream {name}"), e));
                }
                match self.js.create_stream(want).await {
                    Ok(_) => {
                        tracing::info!(stream = %name, replicas = self.config.replicas, "nats: stream created");
                        Ok(())
                    }
                    // Another replica created it meanwhile.
                    Err(e)
                        if matches!(e.kind(), CreateStreamErrorKind::JetStream(ref j)
                            if j.error_code() == jetstream::ErrorCode::STREAM_NAME_EXIST) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(unavailable(&format!("cannot create stream {name}"), e)),
                }
            }
        }
    }

    /// The last sequence of stream `name` (0 when empty), or `None` if it does not exist.
    pub(crate) async fn stream_last_sequence(&self, name: &str) -> Result<Option<u64>, LogError> {
        match self.js.get_stream(name).await {
            Ok(stream) => Ok(Some(stream.cached_info().state.last_sequence)),
            Err(e) => {
                let code = match e.kind() {
                    GetStreamErrorKind::JetStream(j) => api_code(Some(&j)),
                    _ => None,
                };
                if is_not_found(code) {
                    Ok(None)
                } else {
                    Err(unavailable(&format!("stream {name}"), e))
                }
            }
        }
    }

    fn next_message_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.id_prefix)
    }

    async fn publish(
        &self,
        subject: &str,
        id: &str,
        payload: Bytes,
    ) -> Result<PublishAckFuture, async_nats::jetstream::context::PublishError> {
        self.js
            .send_publish(
                subject.to_owned(),
                PublishMessage::build().payload(payload).message_id(id),
            )
            .await
    }

    /// Waits for the acknowledgement of one published message, publishing it again (same
    /// id) after a failure, until `deadline`. Returns its stream sequence.
    async fn confirm(
        &self,
        topic: &Topic,
        partition: u32,
        sent: Sent,
        deadline: Instant,
    ) -> Result<u64, LogError> {
        let part = &topic.partitions[partition as usize];
        let Sent { id, payload, ack } = sent;
        let mut attempt = ack;
        let mut pause = Duration::from_millis(25);
        let mut tries = 1u32;
        loop {
            let outcome = match attempt {
                Ok(ack) => match tokio::time::timeout_at(deadline, ack.into_future()).await {
                    Ok(result) => result,
                    Err(_) => Err(PublishErrorKind::TimedOut.into()),
                },
                Err(e) => Err(e),
            };
            let error = match outcome {
                Ok(ack) => return Ok(ack.sequence),
                Err(e) => e,
            };
            if error.kind() == PublishErrorKind::MaxPayloadExceeded {
                return Err(LogError::TooLarge {
                    bytes: (payload.len() + HEADER_BYTES) as u64,
                    limit: self.client.max_payload() as u64,
                });
            }
            if Instant::now() + pause >= deadline {
                return Err(unavailable(
                    &format!(
                        "JetStream did not acknowledge an append to stream {} within {:?} ({tries} tries)",
                        part.stream, self.config.publish_timeout
                    ),
                    error,
                ));
            }
            tracing::debug!(stream = %part.stream, %error, tries, "nats: publish not acknowledged; publishing again");
            if error.kind() == PublishErrorKind::StreamNotFound {
                // Deleted behind our back, or no leader yet: make sure it exists.
                if let Err(e) = self.ensure_stream(&topic.name, partition).await {
                    tracing::debug!(error = %e, "nats: stream check during retry failed");
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
            tries += 1;
            attempt = self.publish(&part.subject, &id, payload.clone()).await;
        }
    }
}

#[async_trait]
impl Log for NatsLog {
    async fn append(
        &self,
        topic: &str,
        key: &[u8],
        messages: Vec<Bytes>,
    ) -> Result<AppendAck, LogError> {
        let started = Instant::now();
        let inner = &self.inner;
        inner.check_open()?;
        if messages.is_empty() {
            return Err(LogError::Invalid(format!(
                "an append to topic {topic} needs at least one message"
            )));
        }
        let limit = inner.client.max_payload();
        if let Some(big) = messages.iter().find(|m| m.len() + HEADER_BYTES > limit) {
            return Err(LogError::TooLarge {
                bytes: (big.len() + HEADER_BYTES) as u64,
                limit: limit as u64,
            });
        }
        let topic = inner.topic(topic).await?;
        let partition = partition_for(key, inner.config.partitions);
        let part = &topic.partitions[partition as usize];
        let count = messages.len();
        let bytes: u64 = messages.iter().map(|m| m.len() as u64).sum();
        let deadline = started + inner.config.publish_timeout;
        let mut first = None;
        let mut waiting: VecDeque<Sent> = VecDeque::with_capacity(count.min(PUBLISH_WINDOW));
        {
            // Publish the batch in order before waiting for acknowledgements, at most
            // PUBLISH_WINDOW ahead of them (the client's in-flight limit is sized for that).
            let _turn = part.publishing.lock().await;
            for payload in messages {
                if waiting.len() >= PUBLISH_WINDOW
                    && let Some(oldest) = waiting.pop_front()
                {
                    let sequence = inner.confirm(&topic, partition, oldest, deadline).await?;
                    first.get_or_insert(sequence);
                }
                let id = inner.next_message_id();
                let ack = inner.publish(&part.subject, &id, payload.clone()).await;
                waiting.push_back(Sent { id, payload, ack });
            }
        }
        for one in waiting {
            let sequence = inner.confirm(&topic, partition, one, deadline).await?;
            first.get_or_insert(sequence);
        }
        let first = first.unwrap_or(1);
        inner
            .metrics
            .record_append(started.elapsed().as_secs_f64(), count as u64, bytes);
        Ok(AppendAck {
            partition,
            first_offset: first.saturating_sub(1),
            count: u32::try_from(count).unwrap_or(u32::MAX),
        })
    }

    fn partitions(&self) -> u32 {
        self.inner.config.partitions
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, LogError> {
        validate_name("topic", topic)?;
        let inner = &self.inner;
        let lookups = (0..inner.config.partitions).map(|p| async move {
            let name = names::stream(&inner.config.stream_prefix, topic, p);
            Ok::<_, LogError>(inner.stream_last_sequence(&name).await?.unwrap_or(0))
        });
        futures_util::future::try_join_all(lookups).await
    }

    async fn committed(&self, topic: &str, group: &str) -> Result<Vec<u64>, LogError> {
        validate_name("topic", topic)?;
        validate_name("group", group)?;
        let inner = &self.inner;
        let lookups = (0..inner.config.partitions).map(|p| async move {
            let stream = names::stream(&inner.config.stream_prefix, topic, p);
            consumer::ack_floor(inner, &stream, &names::consumer(group)).await
        });
        futures_util::future::try_join_all(lookups).await
    }

    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, LogError> {
        validate_name("group", group)?;
        let topic = self.inner.topic(topic).await?;
        let consumer = consumer::NatsConsumer::open(self.inner.clone(), topic, group).await?;
        Ok(Box::new(consumer))
    }

    fn shared_groups(&self) -> bool {
        true
    }

    async fn close(&self) -> Result<(), LogError> {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Hand back what live consumers were given and did not commit.
        let live: Vec<Arc<consumer::Shared>> = inner
            .consumers
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for shared in live {
            consumer::nak_all(&inner.client, shared.take_all_pending()).await;
        }
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *inner.background.lock());
        let wait = inner.config.request_timeout;
        for task in tasks {
            if tokio::time::timeout(wait, task).await.is_err() {
                tracing::warn!("nats: a negative acknowledgement task did not finish in time");
            }
        }
        let flushed = tokio::time::timeout(wait, inner.client.flush()).await;
        let drained = tokio::time::timeout(wait, inner.client.drain()).await;
        tracing::info!(servers = %inner.url.redacted(), "nats log closed");
        match (flushed, drained) {
            (Ok(Ok(())), Ok(Ok(()))) => Ok(()),
            (Ok(Err(e)), _) => Err(unavailable("flushing the connection on close", e)),
            (_, Ok(Err(e))) => Err(unavailable("draining the connection on close", e)),
            _ => Err(LogError::Unavailable(
                "nats: the connection did not flush and close in time".into(),
            )),
        }
    }
}
