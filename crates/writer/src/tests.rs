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
