//! The conformance suite every [`Log`] backend passes (feature `testing`).
//!
//! Each public `async fn` here is one test taking a [`LogFactory`]; a backend runs them all
//! by stamping out one `#[tokio::test]` each with [`log_conformance_tests!`](crate::log_conformance_tests):
//!
//! ```text
//! // tests/conformance.rs of a backend
//! ingot_log::log_conformance_tests!(ingot_log::conformance::FileLogFactory::new());
//! ```
//!
//! The factory expression is evaluated once per test and must give an empty log the first
//! time it opens. Tests name their own topics, so a backend on a shared server only needs
//! fresh streams per factory. These functions panic on failure, as tests do.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::file::{FileLog, FileLogConfig};
use crate::{Consumer, Delivered, Log, LogError, LogMetrics, Position};

/// Opens the log under test, and opens it again to simulate a restart.
#[async_trait]
pub trait LogFactory: Send + Sync {
    /// Opens the log on this factory's storage (empty the first time).
    async fn open(&self) -> Arc<dyn Log>;

    /// Simulates a restart: closes `log` as a shutdown would and opens it again on the same
    /// storage.
    async fn reopen(&self, log: Arc<dyn Log>) -> Arc<dyn Log> {
        log.close().await.expect("close before reopening");
        drop(log);
        self.open().await
    }
}

/// A [`FileLog`] in a fresh temporary directory, with small segments so that tests also
/// cross segment boundaries.
#[derive(Debug)]
pub struct FileLogFactory {
    dir: tempfile::TempDir,
    config: FileLogConfig,
}

impl FileLogFactory {
    /// Four partitions, 64 KiB segments, fsync per batch.
    pub fn new() -> FileLogFactory {
        FileLogFactory::with_config(|_| {})
    }

    /// Like [`FileLogFactory::new`], then `change` adjusts the config (`dir` is overwritten).
    pub fn with_config(change: impl FnOnce(&mut FileLogConfig)) -> FileLogFactory {
        let dir = tempfile::Builder::new()
            .prefix("ingot-log-")
            .tempdir()
            .expect("a temporary directory");
        let mut config = FileLogConfig {
            segment_bytes: 64 << 10,
            ..FileLogConfig::default()
        };
        change(&mut config);
        config.dir = dir.path().join("log");
        FileLogFactory { dir, config }
    }

    /// The temporary directory (removed when the factory drops).
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Default for FileLogFactory {
    fn default() -> FileLogFactory {
        FileLogFactory::new()
    }
}

#[async_trait]
impl LogFactory for FileLogFactory {
    async fn open(&self) -> Arc<dyn Log> {
        let config = self.config.clone();
        let log = tokio::task::spawn_blocking(move || FileLog::open(config, LogMetrics::default()))
            .await
            .expect("open task")
            .expect("open the file log");
        Arc::new(log)
    }
}

/// Stamps out one `#[tokio::test]` per conformance test, each with a fresh `$factory`.
///
/// `log_conformance_tests!(optional $future)` takes a future giving `Option<factory>`
/// instead: `None` ends the test without running it (a backend whose server is not
/// available outside CI; the future says why, and fails instead in CI).
#[macro_export]
macro_rules! log_conformance_tests {
    (optional $factory:expr) => {
        $crate::log_conformance_tests!(@each (
            match $factory.await {
                Some(factory) => factory,
                None => return,
            }
        ));
    };
    // Every public test of this module must be listed here, or no backend runs it.
    (@each $factory:tt) => {
        $crate::log_conformance_tests!(@tests $factory;
            append_returns_dense_offsets,
            same_key_keeps_order,
            empty_batch_is_refused,
            consumer_reads_everything_once_in_order,
            commit_survives_reopen,
            seek_moves_the_consumer,
            groups_are_independent,
            end_offsets_and_committed,
            poll_waits_for_new_data,
            append_after_close_fails,
            concurrent_appenders,
        );
    };
    (@tests $factory:tt; $($test:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let factory = $factory;
                $crate::conformance::$test(&factory).await;
            }
        )+
    };
    ($factory:expr) => {
        $crate::log_conformance_tests!(@each ($factory));
    };
}

const WAIT: Duration = Duration::from_secs(10);

fn payloads(tag: &str, n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("{tag}/{i}"))).collect()
}

/// Polls until `expected` messages arrived (failing after a generous deadline), then checks
/// that nothing more comes.
async fn drain(consumer: &mut dyn Consumer, expected: usize, max: usize) -> Vec<Delivered> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} messages arrived",
            got.len()
        );
        let batch = consumer
            .poll(max, Duration::from_millis(200))
            .await
            .expect("poll");
        assert!(
            batch.len() <= max,
            "poll returned {} messages for max {max}",
            batch.len()
        );
        got.extend(batch);
    }
    let extra = consumer
        .poll(max, Duration::from_millis(50))
        .await
        .expect("poll");
    assert!(
        extra.is_empty(),
        "{} messages beyond the {expected} expected: {:?}",
        extra.len(),
        extra.first()
    );
    assert_eq!(got.len(), expected, "more messages than appended");
    got
}

/// Checks per-partition order (strictly increasing offsets) and returns payload by position.
fn by_position(delivered: &[Delivered]) -> BTreeMap<Position, Bytes> {
    let mut last: HashMap<u32, u64> = HashMap::new();
    let mut out = BTreeMap::new();
    for d in delivered {
        if let Some(&prev) = last.get(&d.position.partition) {
            assert!(
                d.position.offset > prev,
                "offset {} after {prev} in partition {}",
                d.position.offset,
                d.position.partition
            );
        }
        last.insert(d.position.partition, d.position.offset);
        assert!(
            out.insert(d.position, d.payload.clone()).is_none(),
            "{} delivered twice",
            d.position
        );
    }
    out
}

/// Appends `batches` (key, payloads) one after the other; returns what each position holds.
async fn append_all(
    log: &dyn Log,
    topic: &str,
    batches: &[(String, Vec<Bytes>)],
) -> BTreeMap<Position, Bytes> {
    let mut stored = BTreeMap::new();
    for (key, messages) in batches {
        let ack = log
            .append(topic, key.as_bytes(), messages.clone())
            .await
            .expect("append");
        for (i, message) in messages.iter().enumerate() {
            stored.insert(
                Position {
                    partition: ack.partition,
                    offset: ack.first_offset + i as u64,
                },
                message.clone(),
            );
        }
    }
    stored
}

/// Offsets start at 0 per partition and follow each other densely; `end_offsets` agrees.
pub async fn append_returns_dense_offsets(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-dense";
    let partitions = log.partitions();
    assert!(partitions >= 1);
    let mut expected = vec![0u64; partitions as usize];
    for round in 0..5 {
        for key in 0..8 {
            let n = 1 + (round + key) % 5;
            let ack = log
                .append(topic, format!("dev-{key}").as_bytes(), payloads("m", n))
                .await
                .expect("append");
            assert!(
                ack.partition < partitions,
                "partition {} of {partitions}",
                ack.partition
            );
            assert_eq!(ack.count, n as u32);
            assert_eq!(
                ack.first_offset, expected[ack.partition as usize],
                "dense offsets in partition {}",
                ack.partition
            );
            expected[ack.partition as usize] += n as u64;
        }
    }
    assert_eq!(log.end_offsets(topic).await.expect("end offsets"), expected);
    log.close().await.expect("close");
}

/// Appends of one key stay in one partition and are delivered in call order.
pub async fn same_key_keeps_order(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-order";
    let mut sent = Vec::new();
    let mut partition = None;
    for i in 0..50 {
        let messages = payloads(&format!("probe-7/{i}"), 1 + i % 3);
        sent.extend(messages.clone());
        let ack = log
            .append(topic, b"tenant-1/probe-7", messages)
            .await
            .expect("append");
        assert_eq!(
            *partition.get_or_insert(ack.partition),
            ack.partition,
            "one key, one partition"
        );
        // Another key in between must not disturb the order.
        log.append(topic, b"tenant-1/other", payloads("other", 1))
            .await
            .expect("append");
    }
    let mut consumer = log.consumer(topic, "order").await.expect("consumer");
    let total = sent.len() + 50;
    let delivered = drain(consumer.as_mut(), total, 64).await;
    let _ = by_position(&delivered);
    let got: Vec<Bytes> = delivered
        .iter()
        .filter(|d| d.payload.starts_with(b"probe-7/"))
        .map(|d| d.payload.clone())
        .collect();
    assert_eq!(got, sent);
    log.close().await.expect("close");
}

/// An append without messages is refused and changes nothing.
pub async fn empty_batch_is_refused(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-empty";
    match log.append(topic, b"k", Vec::new()).await {
        Err(LogError::Invalid(_)) => {}
        other => panic!("an empty append must be Invalid, got {other:?}"),
    }
    let ack = log
        .append(topic, b"k", payloads("x", 1))
        .await
        .expect("append");
    assert_eq!(ack.first_offset, 0, "the refused append took no offset");
    log.close().await.expect("close");
}

/// One consumer sees every message exactly once, in offset order per partition, with the
/// payload that was appended at that position.
pub async fn consumer_reads_everything_once_in_order(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-read";
    let batches: Vec<(String, Vec<Bytes>)> = (0..200)
        .map(|i| (format!("dev-{}", i % 20), payloads(&format!("b{i}"), 3)))
        .collect();
    let stored = append_all(log.as_ref(), topic, &batches).await;
    let mut consumer = log.consumer(topic, "reader").await.expect("consumer");
    let delivered = drain(consumer.as_mut(), stored.len(), 37).await;
    let got = by_position(&delivered);
    assert_eq!(got, stored);
    for d in &delivered {
        assert!(d.appended.as_micros() > 0, "appended time is set");
    }
    log.close().await.expect("close");
}

/// A restart resumes after the last commit; what was delivered but not committed comes
/// again (at-least-once), and new appends continue the offsets.
pub async fn commit_survives_reopen(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-commit";
    let batches: Vec<(String, Vec<Bytes>)> = (0..50)
        .map(|i| (format!("dev-{}", i % 10), payloads(&format!("c{i}"), 2)))
        .collect();
    let stored = append_all(log.as_ref(), topic, &batches).await;
    let mut consumer = log.consumer(topic, "resumer").await.expect("consumer");
    let delivered = drain(consumer.as_mut(), stored.len(), 1000).await;
    // Commit the first half of what each partition delivered.
    let mut per_partition: BTreeMap<u32, Vec<Position>> = BTreeMap::new();
    for d in &delivered {
        per_partition
            .entry(d.position.partition)
            .or_default()
            .push(d.position);
    }
    let mut committed = vec![0u64; log.partitions() as usize];
    let mut processed = Vec::new();
    for (partition, positions) in &per_partition {
        if let Some(last) = positions.get(positions.len() / 2) {
            processed.push(*last);
            committed[*partition as usize] = last.offset + 1;
        }
    }
    consumer.commit(&processed).await.expect("commit");
    drop(consumer);
    let ends = log.end_offsets(topic).await.expect("end offsets");

    let log = factory.reopen(log).await;
    assert_eq!(
        log.committed(topic, "resumer").await.expect("committed"),
        committed
    );
    assert_eq!(log.end_offsets(topic).await.expect("end offsets"), ends);
    let mut consumer = log.consumer(topic, "resumer").await.expect("consumer");
    let redelivered: Vec<Bytes> = stored
        .iter()
        .filter(|(position, _)| position.offset >= committed[position.partition as usize])
        .map(|(_, payload)| payload.clone())
        .collect();
    let again = drain(consumer.as_mut(), redelivered.len(), 1000).await;
    let again_set: HashSet<Bytes> = again.iter().map(|d| d.payload.clone()).collect();
    assert_eq!(again_set, redelivered.into_iter().collect::<HashSet<_>>());

    let ack = log
        .append(topic, b"dev-0", payloads("after", 1))
        .await
        .expect("append");
    assert_eq!(
        ack.first_offset, ends[ack.partition as usize],
        "offsets continue after a restart"
    );
    log.close().await.expect("close");
}

/// `seek` positions a consumer anywhere up to the end, also inside an appended batch.
pub async fn seek_moves_the_consumer(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-seek";
    let mut partition = 0;
    for i in 0..10 {
        partition = log
            .append(topic, b"one-key", payloads(&format!("s{i}"), 10))
            .await
            .expect("append")
            .partition;
    }
    let mut consumer = log.consumer(topic, "seeker").await.expect("consumer");
    consumer
        .seek(partition, 55)
        .await
        .expect("seek into a batch");
    let delivered = drain(consumer.as_mut(), 45, 100).await;
    assert_eq!(
        delivered[0].position,
        Position {
            partition,
            offset: 55
        }
    );
    assert_eq!(delivered[0].payload, Bytes::from("s5/5"));
    assert_eq!(delivered.last().map(|d| d.position.offset), Some(99));

    consumer.seek(partition, 0).await.expect("seek back");
    let again = drain(consumer.as_mut(), 100, 33).await;
    assert_eq!(again[0].payload, Bytes::from("s0/0"));

    consumer
        .seek(partition, 100)
        .await
        .expect("seek to the end");
    assert!(
        consumer
            .poll(10, Duration::from_millis(50))
            .await
            .expect("poll")
            .is_empty()
    );
    assert!(
        matches!(
            consumer.seek(partition, 101).await,
            Err(LogError::Invalid(_))
        ),
        "beyond the end"
    );
    assert!(
        matches!(
            consumer.seek(log.partitions(), 0).await,
            Err(LogError::Invalid(_))
        ),
        "no such partition"
    );
    log.close().await.expect("close");
}

/// Two groups read the same messages, and one's commits do not move the other.
pub async fn groups_are_independent(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-groups";
    let batches: Vec<(String, Vec<Bytes>)> = (0..30)
        .map(|i| (format!("dev-{i}"), payloads(&format!("g{i}"), 2)))
        .collect();
    let stored = append_all(log.as_ref(), topic, &batches).await;
    let mut a = log.consumer(topic, "group-a").await.expect("consumer a");
    let mut b = log.consumer(topic, "group-b").await.expect("consumer b");
    let from_a = drain(a.as_mut(), stored.len(), 500).await;
    let positions: Vec<Position> = from_a.iter().map(|d| d.position).collect();
    a.commit(&positions).await.expect("commit a");
    assert_eq!(
        log.committed(topic, "group-a").await.expect("committed"),
        log.end_offsets(topic).await.expect("ends")
    );
    assert_eq!(
        log.committed(topic, "group-b").await.expect("committed"),
        vec![0; log.partitions() as usize]
    );
    let from_b = drain(b.as_mut(), stored.len(), 7).await;
    assert_eq!(by_position(&from_b), stored);
    log.close().await.expect("close");
}

/// `end_offsets` and `committed` start at 0 and follow appends and commits; a commit never
/// moves a group backwards.
pub async fn end_offsets_and_committed(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-offsets";
    let zeros = vec![0u64; log.partitions() as usize];
    assert_eq!(log.end_offsets(topic).await.expect("ends"), zeros);
    assert_eq!(
        log.committed(topic, "watcher").await.expect("committed"),
        zeros
    );
    let ack = log
        .append(topic, b"key", payloads("e", 5))
        .await
        .expect("append");
    let mut ends = zeros.clone();
    ends[ack.partition as usize] = 5;
    assert_eq!(log.end_offsets(topic).await.expect("ends"), ends);

    let mut consumer = log.consumer(topic, "watcher").await.expect("consumer");
    let p = ack.partition;
    consumer
        .commit(&[Position {
            partition: p,
            offset: 3,
        }])
        .await
        .expect("commit");
    let mut committed = zeros.clone();
    committed[p as usize] = 4;
    assert_eq!(
        log.committed(topic, "watcher").await.expect("committed"),
        committed
    );
    consumer
        .commit(&[Position {
            partition: p,
            offset: 1,
        }])
        .await
        .expect("commit lower");
    assert_eq!(
        log.committed(topic, "watcher").await.expect("committed"),
        committed,
        "never backwards"
    );
    log.close().await.expect("close");
}

/// `poll` waits up to `wait` and returns empty; data appended meanwhile wakes it early.
pub async fn poll_waits_for_new_data(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-wait";
    let mut consumer = log.consumer(topic, "waiter").await.expect("consumer");
    let started = Instant::now();
    let batch = consumer
        .poll(10, Duration::from_millis(300))
        .await
        .expect("poll");
    assert!(batch.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "returned after {:?}",
        started.elapsed()
    );

    let appender = log.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        appender
            .append(topic, b"late", payloads("late", 1))
            .await
            .expect("append")
    });
    let started = Instant::now();
    let batch = consumer.poll(10, WAIT).await.expect("poll");
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].payload, Bytes::from("late/0"));
    assert!(
        started.elapsed() < WAIT / 2,
        "woke only after {:?}",
        started.elapsed()
    );
    task.await.expect("append task");
    log.close().await.expect("close");
}

/// After `close`, appends fail with `Closed`; a second close is harmless.
pub async fn append_after_close_fails(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-close";
    log.append(topic, b"k", payloads("before", 1))
        .await
        .expect("append");
    log.close().await.expect("close");
    match log.append(topic, b"k", payloads("after", 1)).await {
        Err(LogError::Closed) => {}
        other => panic!("append after close must fail with Closed, got {other:?}"),
    }
    log.close().await.expect("a second close");
}

/// Many concurrent appenders: every append is acknowledged with its own offsets, and every
/// message is consumed exactly once.
pub async fn concurrent_appenders(factory: &dyn LogFactory) {
    let log = factory.open().await;
    let topic = "conformance-concurrent";
    let mut tasks = Vec::new();
    for t in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut stored = Vec::new();
            for i in 0..200 {
                // Tasks share keys pairwise, so partitions see interleaved appenders.
                let key = format!("dev-{}", t / 2);
                let messages = payloads(&format!("t{t}/{i}"), 1 + i % 2);
                let ack = log
                    .append(topic, key.as_bytes(), messages.clone())
                    .await
                    .expect("append");
                for (j, m) in messages.into_iter().enumerate() {
                    stored.push((
                        Position {
                            partition: ack.partition,
                            offset: ack.first_offset + j as u64,
                        },
                        m,
                    ));
                }
            }
            stored
        }));
    }
    let mut stored = BTreeMap::new();
    for task in tasks {
        for (position, payload) in task.await.expect("appender") {
            assert!(
                stored.insert(position, payload).is_none(),
                "{position} acknowledged twice"
            );
        }
    }
    let ends = log.end_offsets(topic).await.expect("ends");
    for (partition, end) in ends.iter().enumerate() {
        let count = stored
            .keys()
            .filter(|p| p.partition as usize == partition)
            .count() as u64;
        assert_eq!(count, *end, "partition {partition} is dense");
    }
    let mut consumer = log.consumer(topic, "all").await.expect("consumer");
    let delivered = drain(consumer.as_mut(), stored.len(), 256).await;
    assert_eq!(by_position(&delivered), stored);
    log.close().await.expect("close");
}
