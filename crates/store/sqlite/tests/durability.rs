//! What only the SQLite backend can show: the file keeps everything across reopening and
//! across a crash, a batch and its checkpoint commit together, reads proceed while a write
//! transaction is open, and closing is orderly.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use ingot_core::{Event, EventId, JsonText, Payload, TenantId, Timestamp};
use ingot_store::{
    Checkpoint, EventStore, ListQuery, MAX_PAGE, Registry, Role, StoreError, WriteOutcome,
};
use ingot_store_sqlite::SqliteStore;

fn event(tenant: TenantId, n: u32) -> Event {
    Event {
        id: EventId::parse(&format!("ev-{n:04}")).expect("id"),
        tenant,
        device: format!("probe-{}", n % 3),
        sensor: n.is_multiple_of(2).then(|| "probe1".to_owned()),
        ts: Timestamp::from_micros(i64::from(n) * 1_000 - 3_000),
        received: Timestamp::from_micros(i64::from(n) * 1_000),
        kind: Some("temperature".to_owned()),
        value: Some(f64::from(n) / 4.0),
        data: Some(JsonText::parse(&format!(r#"{{"n": {n}, "s": "x"}}"#)).expect("json")),
        payload: n.is_multiple_of(5).then(|| Payload {
            content_type: "image/jpeg".to_owned(),
            bytes: Bytes::from(vec![n as u8; 1000 + n as usize]),
        }),
    }
}

fn checkpoint(offsets: &[(u32, u64)]) -> Checkpoint {
    Checkpoint {
        consumer: "store-writer".to_owned(),
        topic: "events".to_owned(),
        offsets: offsets.to_vec(),
    }
}

fn all() -> ListQuery {
    ListQuery {
        limit: MAX_PAGE,
        ..ListQuery::default()
    }
}

/// Everything a store can hold, written to `path`: returns what to expect back.
struct Written {
    tenant: TenantId,
    events: Vec<Event>,
    offsets: Vec<(u32, u64)>,
    token: [u8; 32],
    live_key: [u8; 32],
    revoked_key: [u8; 32],
}

async fn fill(store: &SqliteStore) -> Written {
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    let events: Vec<Event> = (0..40).map(|n| event(tenant, n)).collect();
    let (first, second) = events.split_at(25);
    store
        .write_batch(first.to_vec(), &checkpoint(&[(0, 25), (1, 3)]))
        .await
        .expect("write");
    store
        .write_batch(second.to_vec(), &checkpoint(&[(0, 40)]))
        .await
        .expect("write");
    let token = [7u8; 32];
    store
        .create_device(tenant, "probe-7", &token)
        .await
        .expect("device");
    let (live_key, revoked_key) = ([8u8; 32], [9u8; 32]);
    store
        .create_api_key(tenant, "k-live", Role::Admin, &live_key, None)
        .await
        .expect("key");
    store
        .create_api_key(tenant, "k-old", Role::Reader, &revoked_key, None)
        .await
        .expect("key");
    assert!(store.revoke_api_key(tenant, "k-old").await.expect("revoke"));
    Written {
        tenant,
        events,
        offsets: vec![(0, 40), (1, 3)],
        token,
        live_key,
        revoked_key,
    }
}

async fn check(store: &SqliteStore, w: &Written) {
    let listed = store
        .list_events(w.tenant, &all())
        .await
        .expect("list")
        .events;
    let mut expected: Vec<Event> = w
        .events
        .iter()
        .map(|e| Event {
            payload: None,
            ..e.clone()
        })
        .collect();
    expected.sort_by(|a, b| (b.ts, &b.id).cmp(&(a.ts, &a.id)));
    assert_eq!(listed, expected);
    for e in &w.events {
        assert_eq!(
            store
                .get_event(w.tenant, &e.id)
                .await
                .expect("get")
                .as_ref(),
            Some(e)
        );
    }
    assert_eq!(
        store
            .checkpoint("store-writer", "events")
            .await
            .expect("checkpoint"),
        w.offsets
    );
    let tenant = store
        .tenant_by_name("acme")
        .await
        .expect("tenant")
        .expect("kept");
    assert_eq!(tenant.id, w.tenant);
    let device = store
        .device_by_token(&w.token, Timestamp::EPOCH)
        .await
        .expect("device")
        .expect("kept");
    assert_eq!((device.tenant, device.name.as_str()), (w.tenant, "probe-7"));
    let key = store
        .api_key_by_hash(&w.live_key, Timestamp::EPOCH)
        .await
        .expect("key")
        .expect("kept");
    assert_eq!((key.id.as_str(), key.role), ("k-live", Role::Admin));
    assert_eq!(
        store
            .api_key_by_hash(&w.revoked_key, Timestamp::EPOCH)
            .await
            .expect("key"),
        None
    );
    // A second write of the same events is all duplicates: idempotency survives too.
    let again = store
        .write_batch(w.events.clone(), &checkpoint(&[]))
        .await
        .expect("write");
    assert_eq!(
        again,
        WriteOutcome {
            inserted: 0,
            duplicates: w.events.len()
        }
    );
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data").join("store.db");
    let store = SqliteStore::open(&path).expect("open creates the directory and file");
    let written = fill(&store).await;
    store.close().await.expect("close");
    drop(store);
    assert!(
        !wal(&path).exists(),
        "a clean close checkpoints and removes the WAL"
    );

    let store = SqliteStore::open(&path).expect("reopen");
    check(&store, &written).await;
    // New tenants never reuse an id.
    let next = store.create_tenant("globex").await.expect("tenant");
    assert!(next.id > written.tenant);
    drop(store);

    // Dropping without close also leaves a complete file.
    let store = SqliteStore::open(&path).expect("reopen after drop");
    check(&store, &written).await;
}

fn wal(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// The files as a crash leaves them (copied while the store is open, with the last commits
/// only in the WAL) open to every committed batch, checkpoint and credential.
#[tokio::test]
async fn a_crash_keeps_every_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).expect("open");
    let written = fill(&store).await;
    assert!(wal(&path).exists(), "commits are in the WAL");

    let crashed = tempfile::tempdir().expect("temp dir");
    let copy = crashed.path().join("store.db");
    std::fs::copy(&path, &copy).expect("copy db");
    std::fs::copy(wal(&path), wal(&copy)).expect("copy wal");
    let recovered = SqliteStore::open(&copy).expect("open the crash copy");
    check(&recovered, &written).await;
    drop(store);
}

/// A batch whose checkpoint cannot be stored stores none of its events either, and the
/// writer stays usable.
#[tokio::test]
async fn a_failed_checkpoint_rolls_back_the_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).expect("open");
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    {
        // Make storing partition 99's offset fail, from outside the store.
        let conn = rusqlite::Connection::open(&path).expect("side connection");
        conn.execute_batch(
            "CREATE TRIGGER refuse_99 BEFORE INSERT ON checkpoints WHEN NEW.partition = 99 \
             BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;",
        )
        .expect("trigger");
    }
    let events: Vec<Event> = (0..10).map(|n| event(tenant, n)).collect();
    let err = store
        .write_batch(events.clone(), &checkpoint(&[(0, 10), (99, 1)]))
        .await
        .expect_err("the checkpoint fails");
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("refused for the test")),
        "{err}"
    );
    assert_eq!(
        store
            .list_events(tenant, &all())
            .await
            .expect("list")
            .events,
        vec![]
    );
    assert_eq!(
        store.get_event(tenant, &events[0].id).await.expect("get"),
        None
    );
    assert_eq!(
        store
            .checkpoint("store-writer", "events")
            .await
            .expect("cp"),
        vec![]
    );

    let ok = store
        .write_batch(events.clone(), &checkpoint(&[(0, 10)]))
        .await
        .expect("retry");
    assert_eq!(
        ok,
        WriteOutcome {
            inserted: events.len(),
            duplicates: 0
        }
    );
    assert_eq!(
        store
            .checkpoint("store-writer", "events")
            .await
            .expect("cp"),
        vec![(0, 10)]
    );
}

/// While another connection holds the write lock, reads answer at once from the last
/// commit, and a write waits for the lock (busy timeout) instead of failing.
#[tokio::test]
async fn reads_do_not_wait_for_a_writer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).expect("open");
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    let before: Vec<Event> = (0..5).map(|n| event(tenant, n)).collect();
    store
        .write_batch(before.clone(), &checkpoint(&[(0, 5)]))
        .await
        .expect("write");

    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let side_path = path.clone();
    let holder = std::thread::spawn(move || {
        let mut conn = rusqlite::Connection::open(&side_path).expect("side connection");
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("write lock");
        tx.execute(
            "INSERT INTO checkpoints VALUES ('side', 'events', 0, 1)",
            [],
        )
        .expect("insert");
        locked_tx.send(()).expect("signal");
        release_rx.recv().expect("wait");
        tx.commit().expect("commit");
    });
    locked_rx
        .recv()
        .expect("the side connection holds the lock");

    let reads = async {
        let page = store.list_events(tenant, &all()).await.expect("list");
        assert_eq!(page.events.len(), before.len());
        assert_eq!(
            store.checkpoint("side", "events").await.expect("cp"),
            vec![],
            "uncommitted"
        );
    };
    tokio::time::timeout(Duration::from_secs(2), reads)
        .await
        .expect("reads did not wait");

    let more: Vec<Event> = (5..10).map(|n| event(tenant, n)).collect();
    let cp = checkpoint(&[(0, 10)]);
    let write = store.write_batch(more.clone(), &cp);
    let release = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        release_tx.send(()).expect("release");
    };
    let (outcome, ()) = tokio::join!(write, release);
    assert_eq!(
        outcome.expect("the write waited for the lock").inserted,
        more.len()
    );
    holder.join().expect("holder thread");
    assert_eq!(
        store.checkpoint("side", "events").await.expect("cp"),
        vec![(0, 1)]
    );
    assert_eq!(
        store
            .list_events(tenant, &all())
            .await
            .expect("list")
            .events
            .len(),
        10
    );
}

#[tokio::test]
async fn closed_store_refuses_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("store.db")).expect("open");
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    store.close().await.expect("close");
    let err = store.list_events(tenant, &all()).await.expect_err("closed");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    let err = store
        .write_batch(vec![event(tenant, 1)], &checkpoint(&[]))
        .await
        .expect_err("closed");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn credentials_need_an_existing_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("store.db")).expect("open");
    let ghost = TenantId(4242);
    let err = store
        .create_device(ghost, "probe-7", &[1; 32])
        .await
        .expect_err("no tenant");
    assert!(
        matches!(&err, StoreError::InvalidQuery(m) if m.contains("4242")),
        "{err}"
    );
    let err = store
        .create_api_key(ghost, "k", Role::Admin, &[2; 32], None)
        .await
        .expect_err("no tenant");
    assert!(
        matches!(&err, StoreError::InvalidQuery(m) if m.contains("4242")),
        "{err}"
    );
}

#[test]
fn open_reports_the_path_and_debug_shows_no_internals() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A directory where the file should be: SQLite cannot open it.
    let path = dir.path().join("store.db");
    std::fs::create_dir(&path).expect("dir");
    let err = SqliteStore::open(&path).expect_err("a directory is not a database");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    let path = dir.path().join("ok.db");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.path(), path);
    let debug = format!("{store:?}");
    assert!(
        debug.starts_with("SqliteStore {") && debug.contains("ok.db"),
        "{debug}"
    );
    assert!(debug.contains("readers: 4"), "{debug}");
}
