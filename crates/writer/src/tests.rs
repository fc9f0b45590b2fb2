use std::path::Path;

use bytes::Bytes;
use ingot_core::{Event, EventId, TenantId, Timestamp};
use ingot_log::file::{FileLog, FileLogConfig, LogMetrics};
use ingot_store::{EventStore, ListQuery, MAX_PAGE, Registry};
use ingot_store_sqlite::SqliteStore;

use super::*;

const TOPIC: &str = "events";
const TENANT: TenantId = TenantId(1);

fn open_log(dir: &Path) -> Arc<dyn Log> {
    let config = FileLogConfig {
        dir: dir.join("log"),
        ..FileLogConfig::default()
    };
    Arc::new(FileLog::open(config, LogMetrics::default()).unwrap())
}

fn open_store(dir: &Path, name: &str) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(&dir.join(name)).unwrap())
}

fn event(id: &str, device: &str, ts_ms: i64) -> Bytes {
    record::to_bytes(&Event {
        id: EventId::parse(id).unwrap(),
        tenant: TENANT,
        device: device.into(),
        sensor: None,
        ts: Timestamp::from_millis(ts_ms),
        received: Timestamp::from_millis(ts_ms),
        kind: Some("temperature".into()),
        value: Some(ts_ms as f64),
        data: None,
        payload: None,
    })
}

async fn append(log: &Arc<dyn Log>, ids: std::ops::Range<u32>) {
    for i in ids {
        let device = format!("d{}", i % 7);
        log.append(
            TOPIC,
            device.as_bytes(),
            vec![event(&format!("e{i}"), &device, i64::from(i))],
        )
        .await
        .unwrap();
    }
}

async fn stored_ids(store: &Arc<SqliteStore>) -> Vec<String> {
    let query = ListQuery {
        limit: MAX_PAGE,
        ..ListQuery::default()
    };
    let page = store.list_events(TENANT, &query).await.unwrap();
    let mut ids: Vec<String> = page.events.into_iter().map(|e| e.id.to_string()).collect();
    ids.sort();
    ids
}

fn expected(range: std::ops::Range<u32>) -> Vec<String> {
    let mut ids: Vec<String> = range.map(|i| format!("e{i}")).collect();
    ids.sort();
    ids
}

/// Runs a writer until it has caught up, as a clean shutdown does.
async fn run_to_end(log: &Arc<dyn Log>, store: Arc<SqliteStore>, metrics: WriterMetrics) {
    let writer = StoreWriter::new(log.clone(), store, TOPIC, 100, metrics);
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), writer.run(shutdown))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn moves_everything_and_resumes_after_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let store = open_store(dir.path(), "store.db");
    append(&log, 0..250).await;
    let metrics = WriterMetrics::default();
    run_to_end(&log, store.clone(), metrics.clone()).await;
    assert_eq!(stored_ids(&store).await, expected(0..250));
    assert_eq!(metrics.lag(), 0);
    assert_eq!(metrics.inserted.get(), 250);

    // A second run reads nothing again: its checkpoint is in the store.
    append(&log, 250..300).await;
    let metrics = WriterMetrics::default();
    run_to_end(&log, store.clone(), metrics.clone()).await;
    assert_eq!(stored_ids(&store).await, expected(0..300));
    assert_eq!(metrics.inserted.get(), 50);
    assert_eq!(metrics.duplicates.get(), 0);

    let checkpoint: u64 = store
        .checkpoint(WRITER_GROUP, TOPIC)
        .await
        .unwrap()
        .iter()
        .map(|(_, o)| o)
        .sum();
    let end: u64 = log.end_offsets(TOPIC).await.unwrap().iter().sum();
    assert_eq!(checkpoint, end);
    let committed: u64 = log
        .committed(TOPIC, WRITER_GROUP)
        .await
        .unwrap()
        .iter()
        .sum();
    assert_eq!(
        committed, end,
        "the log group follows the store for retention"
    );
}

#[tokio::test]
async fn an_empty_store_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    append(&log, 0..120).await;
    run_to_end(
        &log,
        open_store(dir.path(), "first.db"),
        WriterMetrics::default(),
    )
    .await;
    let rebuilt = open_store(dir.path(), "second.db");
    run_to_end(&log, rebuilt.clone(), WriterMetrics::default()).await;
    assert_eq!(stored_ids(&rebuilt).await, expected(0..120));
}

#[tokio::test]
async fn replayed_ids_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let store = open_store(dir.path(), "store.db");
    append(&log, 0..40).await;
    append(&log, 0..40).await; // a client retrying with the same ids
    let metrics = WriterMetrics::default();
    run_to_end(&log, store.clone(), metrics.clone()).await;
    assert_eq!(stored_ids(&store).await, expected(0..40));
    assert_eq!(metrics.inserted.get(), 40);
    assert_eq!(metrics.duplicates.get(), 40);
}

#[tokio::test]
async fn follows_new_appends_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path());
    let store = open_store(dir.path(), "store.db");
    let shutdown = CancellationToken::new();
    let writer = StoreWriter::new(
        log.clone(),
        store.clone(),
        TOPIC,
        100,
        WriterMetrics::default(),
    );
    let task = tokio::spawn(writer.run(shutdown.clone()));
    append(&log, 0..30).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored_ids(&store).await.len() < 30 {
        assert!(
            Instant::now() < deadline,
            "the running writer did not pick up new events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    append(&log, 30..60).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        stored_ids(&store).await,
        expected(0..60),
        "shutdown drains what was appended"
    );
}

#[tokio::test]
async fn retention_deletes_only_what_expired() {
    use retention::{RetentionConfig, RetentionMetrics, sweep};
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), "store.db");
    let kept = store.create_tenant("kept").await.unwrap();
    let short = store.create_tenant("short").await.unwrap();
    store
        .set_tenant_retention(short.id, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    let now = Timestamp::now().as_millis();
    let event_at = |tenant, id: &str, ms| Event {
        id: EventId::parse(id).unwrap(),
        tenant,
        device: "d".into(),
        sensor: None,
        ts: Timestamp::from_millis(ms),
        received: Timestamp::from_millis(ms),
        kind: None,
        value: Some(1.0),
        data: None,
        payload: None,
    };
    let mut events = Vec::new();
    for (i, age_hours) in [0, 2, 5, 48].iter().enumerate() {
        for tenant in [kept.id, short.id] {
            events.push(event_at(
                tenant,
                &format!("e{i}"),
                now - age_hours * 3_600_000,
            ));
        }
    }
    let checkpoint = ingot_store::Checkpoint {
        consumer: "t".into(),
        topic: "events".into(),
        offsets: vec![],
    };
    store.write_batch(events, &checkpoint).await.unwrap();
    let config = RetentionConfig {
        batch: 1,
        pause: Duration::ZERO,
        ..RetentionConfig::default()
    };
    let deleted = sweep(
        &*store,
        &config,
        &RetentionMetrics::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(deleted, 3, "the short tenant's events older than an hour");
    let left = |tenant| {
        let store = store.clone();
        async move {
            store
                .list_events(
                    tenant,
                    &ListQuery {
                        limit: 10,
                        ..ListQuery::default()
                    },
                )
                .await
                .unwrap()
                .events
                .len()
        }
    };
    assert_eq!((left(kept.id).await, left(short.id).await), (4, 1));
    // A server default applies to tenants without their own retention.
    let config = RetentionConfig {
        default: Some(Duration::from_secs(24 * 3600)),
        ..config
    };
    let deleted = sweep(
        &*store,
        &config,
        &RetentionMetrics::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(left(kept.id).await, 3);
}

/// The embedded log presented as a shared engine ([`Log::shared_groups`]), to check what
/// the writer does differently there (NATS JetStream's own runs are in ingot-log-nats and
/// the e2e tests).
#[derive(Debug)]
struct SharedEngine(Arc<dyn Log>);

#[async_trait::async_trait]
impl Log for SharedEngine {
    async fn append(
        &self,
        topic: &str,
        key: &[u8],
        messages: Vec<Bytes>,
    ) -> Result<ingot_log::AppendAck, LogError> {
        self.0.append(topic, key, messages).await
    }
    fn partitions(&self) -> u32 {
        self.0.partitions()
    }
    async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, LogError> {
        self.0.end_offsets(topic).await
    }
    async fn committed(&self, topic: &str, group: &str) -> Result<Vec<u64>, LogError> {
        self.0.committed(topic, group).await
    }
    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, LogError> {
        self.0.consumer(topic, group).await
    }
    fn shared_groups(&self) -> bool {
        true
    }
    async fn close(&self) -> Result<(), LogError> {
        self.0.close().await
    }
}

async fn wait_stored(store: &Arc<SqliteStore>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored_ids(store).await.len() < n {
        assert!(
            Instant::now() < deadline,
            "the writer did not store {n} events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn on_a_shared_engine_the_groups_position_is_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(SharedEngine(open_log(dir.path())));
    let store = open_store(dir.path(), "store.db");
    append(&log, 0..200).await;
    let metrics = WriterMetrics::default();
    let shutdown = CancellationToken::new();
    let writer = StoreWriter::new(log.clone(), store.clone(), TOPIC, 64, metrics.clone());
    let task = tokio::spawn(writer.run(shutdown.clone()));
    wait_stored(&store, 200).await;
    // The lag is the group's, measured about once a second while idle.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.lag() != 0 {
        assert!(Instant::now() < deadline, "lag stays at {}", metrics.lag());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops at once, without draining")
        .unwrap()
        .unwrap();
    assert_eq!(stored_ids(&store).await, expected(0..200));
    assert!(
        store
            .checkpoint(WRITER_GROUP, TOPIC)
            .await
            .unwrap()
            .is_empty(),
        "no checkpoint offsets: the engine keeps the position"
    );
    assert_eq!(
        log.committed(TOPIC, WRITER_GROUP).await.unwrap(),
        log.end_offsets(TOPIC).await.unwrap(),
        "everything stored is committed to the group"
    );

    // A writer started later continues from the group's position, not from the start.
    append(&log, 200..250).await;
    let metrics = WriterMetrics::default();
    let shutdown = CancellationToken::new();
    let writer = StoreWriter::new(log.clone(), store.clone(), TOPIC, 64, metrics.clone());
    let task = tokio::spawn(writer.run(shutdown.clone()));
    wait_stored(&store, 250).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(metrics.inserted.get(), 50);
    assert_eq!(metrics.duplicates.get(), 0, "nothing read twice");
}
