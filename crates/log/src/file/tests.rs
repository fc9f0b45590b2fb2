//! Unit tests of the segment-file log, mostly on the in-memory storage so that damage and
//! crashes can be planted precisely.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ingot_core::Timestamp;

use super::memfs::{MemStorage, Rng};
use super::segment::segment_name;
use super::*;
use crate::{Delivered, Log, LogError, Position, SyncPolicy, partition_for};

fn config() -> FileLogConfig {
    FileLogConfig {
        dir: PathBuf::from("/data/log"),
        partitions: 2,
        segment_bytes: 200,
        ..FileLogConfig::default()
    }
}

fn open(fs: &MemStorage, config: &FileLogConfig) -> Result<FileLog, LogError> {
    FileLog::open_on(Arc::new(fs.clone()), config.clone(), LogMetrics::default())
}

fn segment(config: &FileLogConfig, topic: &str, partition: u32, base: u64) -> PathBuf {
    config
        .dir
        .join(topic)
        .join(format!("{partition:03}"))
        .join(segment_name(base))
}

fn msgs(tag: &str, n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("{tag}-{i}"))).collect()
}

/// A key whose partition is `p` under `partitions`.
fn key_for(p: u32, partitions: u32) -> Vec<u8> {
    (0..)
        .map(|i| format!("key-{i}").into_bytes())
        .find(|k| partition_for(k, partitions) == p)
        .unwrap_or_default()
}

async fn read_all(log: &FileLog, topic: &str, group: &str) -> Result<Vec<Delivered>, LogError> {
    let mut consumer = log.consumer(topic, group).await?;
    let mut out = Vec::new();
    loop {
        let batch = consumer.poll(1000, Duration::ZERO).await?;
        if batch.is_empty() {
            return Ok(out);
        }
        out.extend(batch);
    }
}

#[tokio::test]
async fn names_are_validated() {
    let fs = MemStorage::default();
    let log = open(&fs, &config()).unwrap();
    let long = "x".repeat(65);
    for bad in [
        "",
        "Events",
        "a/b",
        "..",
        ".hidden",
        "ümlaut",
        long.as_str(),
    ] {
        match log.append(bad, b"k", msgs("m", 1)).await {
            Err(LogError::Invalid(message)) => {
                assert!(message.contains(&format!("{bad:?}")), "{message}")
            }
            other => panic!("topic {bad:?}: {other:?}"),
        }
    }
    assert!(matches!(
        log.consumer("events", "Bad Group").await,
        Err(LogError::Invalid(_))
    ));
    assert!(
        log.append("events.v1_x-2", b"k", msgs("m", 1))
            .await
            .is_ok()
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn layout_on_disk_is_as_documented() {
    let fs = MemStorage::default();
    let config = config();
    let log = open(&fs, &config).unwrap();
    let key = key_for(1, 2);
    log.append("events", &key, msgs("m", 3)).await.unwrap();
    let _consumer = log.consumer("events", "store-writer").await.unwrap();
    let data = fs.read(&segment(&config, "events", 1, 0)).unwrap();
    assert_eq!(
        u64::from_le_bytes(data[8..16].try_into().unwrap()),
        0,
        "base offset"
    );
    assert_eq!(
        u32::from_le_bytes(data[16..20].try_into().unwrap()),
        3,
        "count"
    );
    assert!(
        fs.read(&config.dir.join("events/groups/store-writer.offsets"))
            .is_ok()
    );
    assert!(
        fs.read(&segment(&config, "events", 0, 0))
            .unwrap()
            .is_empty()
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn partition_count_of_a_topic_cannot_change() {
    let fs = MemStorage::default();
    let log = open(&fs, &config()).unwrap();
    log.append("events", b"k", msgs("m", 1)).await.unwrap();
    log.close().await.unwrap();
    let err = open(
        &fs,
        &FileLogConfig {
            partitions: 3,
            ..config()
        },
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("topic events") && text.contains("2 partitions") && text.contains("with 3"),
        "{text}"
    );
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let fs = MemStorage::default();
    let log = open(&fs, &config()).unwrap();
    assert!(matches!(
        open(&fs, &config()),
        Err(LogError::Unavailable(_))
    ));
    log.close().await.unwrap();
    // `close` releases the directory even while the first handle is still around.
    let again = open(&fs, &config()).unwrap();
    again.close().await.unwrap();
}

#[tokio::test]
async fn oversized_appends_are_refused() {
    let fs = MemStorage::default();
    let log = open(&fs, &config()).unwrap();
    let big = Bytes::from(vec![0u8; MAX_APPEND_BYTES]);
    match log.append("events", b"k", vec![big]).await {
        Err(LogError::TooLarge { bytes, limit }) => {
            assert!(bytes > limit && limit == MAX_APPEND_BYTES as u64)
        }
        other => panic!("{other:?}"),
    }
    log.close().await.unwrap();
}

#[tokio::test]
async fn torn_and_zero_filled_tails_are_cut_on_open() {
    for tail in [
        vec![0u8; 100],
        vec![0x55; 3],
        b"\x30\x00\x00\x00garbage-after-a-plausible-length".to_vec(),
    ] {
        let fs = MemStorage::default();
        let config = config();
        let log = open(&fs, &config).unwrap();
        let key = key_for(0, 2);
        log.append("events", &key, msgs("a", 2)).await.unwrap();
        log.append("events", &key, msgs("b", 1)).await.unwrap();
        log.close().await.unwrap();
        let path = segment(&config, "events", 0, 0);
        let good = fs.read(&path).unwrap().len();
        fs.modify(&path, |data| data.extend_from_slice(&tail))
            .unwrap();

        let log = open(&fs, &config).unwrap();
        assert_eq!(fs.read(&path).unwrap().len(), good, "the tail was cut");
        assert_eq!(log.end_offsets("events").await.unwrap()[0], 3);
        let ack = log.append("events", &key, msgs("c", 1)).await.unwrap();
        assert_eq!(ack.first_offset, 3);
        let got: Vec<Bytes> = read_all(&log, "events", "g")
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.payload)
            .collect();
        assert_eq!(got, vec!["a-0", "a-1", "b-0", "c-0"]);
        log.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_frame_cut_in_the_middle_is_dropped_whole() {
    let fs = MemStorage::default();
    let config = FileLogConfig {
        segment_bytes: 1 << 20,
        ..config()
    };
    let log = open(&fs, &config).unwrap();
    let key = key_for(0, 2);
    log.append("events", &key, msgs("kept", 3)).await.unwrap();
    let path = segment(&config, "events", 0, 0);
    let kept = fs.read(&path).unwrap().len();
    log.append("events", &key, msgs("torn", 3)).await.unwrap();
    log.close().await.unwrap();
    let full = fs.read(&path).unwrap();
    for cut in kept + 1..full.len() {
        fs.modify(&path, |data| *data = full[..cut].to_vec())
            .unwrap();
        let log = open(&fs, &config).unwrap();
        assert_eq!(
            log.end_offsets("events").await.unwrap()[0],
            3,
            "cut at {cut}"
        );
        log.close().await.unwrap();
        assert_eq!(fs.read(&path).unwrap().len(), kept);
    }
}

#[tokio::test]
async fn a_valid_frame_at_the_wrong_offset_is_corruption() {
    let fs = MemStorage::default();
    let config = FileLogConfig {
        segment_bytes: 1 << 20,
        ..config()
    };
    let log = open(&fs, &config).unwrap();
    let key = key_for(0, 2);
    log.append("events", &key, msgs("a", 1)).await.unwrap();
    log.close().await.unwrap();
    let path = segment(&config, "events", 0, 0);
    // Append a copy of the first frame: valid checksum, offset 0 again.
    fs.modify(&path, |data| {
        let copy = data.clone();
        data.extend_from_slice(&copy);
    })
    .unwrap();
    match open(&fs, &config) {
        Err(LogError::Corrupt { reason, .. }) => {
            assert!(reason.contains("offset 0 where 1 was expected"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// Fills partition 0 of `events` with `n` one-message appends of ~40 bytes (several
/// segments at 200 bytes per segment); returns the segment bases.
async fn fill(log: &FileLog, n: usize) -> Vec<u64> {
    let key = key_for(0, 2);
    for i in 0..n {
        log.append("events", &key, vec![Bytes::from(format!("message-{i:04}"))])
            .await
            .unwrap();
    }
    let topic = log.inner.existing_topic("events").unwrap();
    topic.partitions[0]
        .shared
        .segments
        .read()
        .iter()
        .map(|s| s.base)
        .collect()
}

#[tokio::test]
async fn damaged_closed_segments_are_reported() {
    let fs = MemStorage::default();
    let config = config();
    let log = open(&fs, &config).unwrap();
    let bases = fill(&log, 20).await;
    assert!(bases.len() >= 4, "{bases:?}");
    log.close().await.unwrap();

    // A flipped byte inside a closed segment: open is fine (closed segments are not read),
    // the consumer reports it.
    let path = segment(&config, "events", 0, bases[1]);
    fs.modify(&path, |data| data[40] ^= 1).unwrap();
    let log = open(&fs, &config).unwrap();
    match read_all(&log, "events", "g").await {
        Err(LogError::Corrupt {
            path: p, reason, ..
        }) => {
            assert!(
                p.ends_with(&segment_name(bases[1])) && reason.contains("checksum"),
                "{p}: {reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    log.close().await.unwrap();
    fs.modify(&path, |data| data[40] ^= 1).unwrap();

    // A missing middle segment: the gap is found where the reader crosses it.
    fs.remove_file(&segment(&config, "events", 0, bases[2]))
        .unwrap();
    let log = open(&fs, &config).unwrap();
    match read_all(&log, "events", "g").await {
        Err(LogError::Corrupt { reason, .. }) => {
            assert!(reason.contains("next one starts at"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    log.close().await.unwrap();

    // A closed segment whose first frame disagrees with its name fails the open.
    let renamed = segment(&config, "events", 0, bases[3] + 1);
    fs.rename(&segment(&config, "events", 0, bases[3]), &renamed)
        .unwrap();
    assert!(matches!(open(&fs, &config), Err(LogError::Corrupt { .. })));
}

#[tokio::test]
async fn a_failed_fsync_is_never_acknowledged_nor_visible() {
    let fs = MemStorage::default();
    let config = config();
    let log = open(&fs, &config).unwrap();
    let key = key_for(0, 2);
    log.append("events", &key, msgs("ok", 1)).await.unwrap();
    let mut consumer = log.consumer("events", "g").await.unwrap();
    assert_eq!(consumer.poll(10, Duration::ZERO).await.unwrap().len(), 1);
    fs.fail_sync_after(0);
    assert!(matches!(
        log.append("events", &key, msgs("lost", 1)).await,
        Err(LogError::Failed { .. })
    ));
    fs.disarm();
    // The partition refuses appends now; the other one works.
    assert!(matches!(
        log.append("events", &key, msgs("after", 1)).await,
        Err(LogError::Failed { .. })
    ));
    assert!(
        log.append("events", &key_for(1, 2), msgs("other", 1))
            .await
            .is_ok()
    );
    // The written but unsynced frame is never handed to a consumer.
    let seen = consumer.poll(10, Duration::from_millis(50)).await.unwrap();
    assert!(seen.iter().all(|d| d.position.partition == 1), "{seen:?}");
    assert_eq!(log.end_offsets("events").await.unwrap()[0], 1);
    drop(consumer);
    drop(log);

    // After a crash the partition recovers, with or without the unacknowledged frame.
    fs.crash(&mut Rng::new(7));
    let log = open(&fs, &config).unwrap();
    let end = log.end_offsets("events").await.unwrap()[0];
    assert!(end == 1 || end == 2, "{end}");
    assert_eq!(
        log.append("events", &key, msgs("again", 1))
            .await
            .unwrap()
            .first_offset,
        end
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn commits_survive_a_crash() {
    let fs = MemStorage::default();
    let config = config();
    let log = open(&fs, &config).unwrap();
    fill(&log, 10).await;
    let mut consumer = log.consumer("events", "g").await.unwrap();
    let got = consumer.poll(4, Duration::ZERO).await.unwrap();
    consumer.commit(&[got[3].position]).await.unwrap();
    fs.crash(&mut Rng::new(3));
    drop(consumer);
    drop(log);
    let log = open(&fs, &config).unwrap();
    assert_eq!(log.committed("events", "g").await.unwrap(), vec![4, 0]);
    let mut consumer = log.consumer("events", "g").await.unwrap();
    let next = consumer.poll(1, Duration::ZERO).await.unwrap();
    assert_eq!(
        next[0].position,
        Position {
            partition: 0,
            offset: 4
        }
    );
    assert!(matches!(
        consumer
            .commit(&[Position {
                partition: 0,
                offset: 10
            }])
            .await,
        Err(LogError::Invalid(_))
    ));
    log.close().await.unwrap();
}

#[tokio::test]
async fn dropping_without_close_keeps_what_interval_sync_acknowledged() {
    let fs = MemStorage::default();
    let config = FileLogConfig {
        sync: SyncPolicy::Interval(Duration::from_secs(3600)),
        ..config()
    };
    let log = open(&fs, &config).unwrap();
    let key = key_for(0, 2);
    log.append("events", &key, msgs("m", 2)).await.unwrap();
    drop(log);
    // The writer threads sync on their way out and release the directory when done.
    let reopened = loop {
        match open(&fs, &config) {
            Ok(log) => break log,
            Err(LogError::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(e) => panic!("{e}"),
        }
    };
    drop(reopened);
    tokio::time::sleep(Duration::from_millis(50)).await;
    fs.crash(&mut Rng::new(11));
    let log = open(&fs, &config).unwrap();
    assert_eq!(log.end_offsets("events").await.unwrap()[0], 2);
    log.close().await.unwrap();
}

#[tokio::test]
async fn interval_sync_makes_data_durable_within_the_interval() {
    let fs = MemStorage::default();
    let config = FileLogConfig {
        sync: SyncPolicy::Interval(Duration::from_millis(20)),
        ..config()
    };
    let log = open(&fs, &config).unwrap();
    let key = key_for(0, 2);
    log.append("events", &key, msgs("m", 1)).await.unwrap();
    log.append("events", &key, msgs("m", 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    fs.crash(&mut Rng::new(5));
    drop(log);
    let log = open(&fs, &config).unwrap();
    assert_eq!(log.end_offsets("events").await.unwrap()[0], 2);
    log.close().await.unwrap();
}

#[test]
fn expired_prefix_respects_groups_age_and_size() {
    let seg = |base, bytes, first| SegmentInfo {
        base,
        bytes,
        first_appended: Some(first),
    };
    let segments = [
        seg(0, 100, 10),
        seg(5, 100, 20),
        seg(9, 100, 30),
        seg(12, 50, 40),
    ];
    // Nothing is configured to expire.
    assert_eq!(expired_prefix(&segments, u64::MAX, None, None), 0);
    // By age: a segment goes when the next one's first frame is older than the cutoff.
    assert_eq!(expired_prefix(&segments, u64::MAX, Some(21), None), 1);
    assert_eq!(expired_prefix(&segments, u64::MAX, Some(31), None), 2);
    // The active segment never goes.
    assert_eq!(expired_prefix(&segments, u64::MAX, Some(i64::MAX), None), 3);
    // By size: oldest first while above the limit (350 bytes in all).
    assert_eq!(expired_prefix(&segments, u64::MAX, None, Some(250)), 1);
    assert_eq!(expired_prefix(&segments, u64::MAX, None, Some(0)), 3);
    // A group at offset 9 holds segment 5..9 only if it has not committed past it.
    assert_eq!(expired_prefix(&segments, 9, None, Some(0)), 2);
    assert_eq!(expired_prefix(&segments, 8, None, Some(0)), 1);
    assert_eq!(expired_prefix(&segments, 0, Some(i64::MAX), Some(0)), 0);
}

#[tokio::test]
async fn retention_deletes_only_what_every_group_consumed() {
    let fs = MemStorage::default();
    let config = FileLogConfig {
        retention: Retention {
            max_age: None,
            max_bytes_per_partition: Some(250),
        },
        ..config()
    };
    let log = open(&fs, &config).unwrap();
    let mut slow = log.consumer("events", "slow").await.unwrap();
    let bases = fill(&log, 30).await;
    assert!(bases.len() >= 5, "{bases:?}");
    let now = Timestamp::now();
    assert!(
        log.enforce_retention(now).unwrap().deleted.is_empty(),
        "group slow holds everything"
    );

    let got = slow.poll(12, Duration::ZERO).await.unwrap();
    slow.commit(&[got[11].position]).await.unwrap();
    let report = log.enforce_retention(now).unwrap();
    assert!(!report.deleted.is_empty());
    for deleted in &report.deleted {
        assert!(
            deleted.end_offset <= 12,
            "{deleted:?} holds unconsumed messages"
        );
        assert!(
            fs.read(&segment(&config, "events", 0, deleted.first_offset))
                .is_err()
        );
    }
    let oldest = report.deleted.last().unwrap().end_offset;
    let rest = read_all(&log, "events", "late").await.unwrap();
    assert_eq!(
        rest.first().map(|d| d.position.offset),
        Some(oldest),
        "a new group starts at the oldest"
    );
    assert_eq!(rest.len() as u64, 30 - oldest);
    log.close().await.unwrap();
}

#[tokio::test]
async fn retention_by_age_and_readers_behind_it() {
    let fs = MemStorage::default();
    let config = FileLogConfig {
        retention: Retention {
            max_age: Some(Duration::from_secs(60)),
            max_bytes_per_partition: None,
        },
        ..config()
    };
    let log = open(&fs, &config).unwrap();
    let bases = fill(&log, 20).await;
    let mut reader = log.consumer("events", "reader").await.unwrap();
    let all = reader.poll(100, Duration::ZERO).await.unwrap();
    assert_eq!(all.len(), 20);
    reader.commit(&[all[19].position]).await.unwrap();
    // Nothing is a minute old yet.
    assert!(
        log.enforce_retention(Timestamp::now())
            .unwrap()
            .deleted
            .is_empty()
    );

    // Read back from the start, one message, then let retention run an hour later.
    reader.seek(0, 0).await.unwrap();
    assert_eq!(
        reader.poll(1, Duration::ZERO).await.unwrap()[0]
            .position
            .offset,
        0
    );
    let later = Timestamp::now().saturating_add_micros(3_600_000_000);
    let report = log.enforce_retention(later).unwrap();
    assert_eq!(
        report.deleted.len(),
        bases.len() - 1,
        "every closed segment is old"
    );
    let oldest = *bases.last().unwrap();
    // The reader still holds the first segment open and finishes it, then jumps the gap.
    let rest = reader.poll(100, Duration::ZERO).await.unwrap();
    let offsets: Vec<u64> = rest.iter().map(|d| d.position.offset).collect();
    assert!(
        offsets.contains(&oldest) && offsets.windows(2).all(|w| w[0] < w[1]),
        "{offsets:?}"
    );
    reader.seek(0, 0).await.unwrap();
    assert_eq!(
        reader.poll(1, Duration::ZERO).await.unwrap()[0]
            .position
            .offset,
        oldest
    );
    log.close().await.unwrap();

    // Reopening knows the new start.
    let log = open(&fs, &config).unwrap();
    let topic = log.inner.existing_topic("events").unwrap();
    assert_eq!(topic.partitions[0].shared.oldest(), oldest);
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_consumer_keeps_its_place_when_a_poll_is_cancelled() {
    let fs = MemStorage::default();
    let log = open(&fs, &config()).unwrap();
    let mut consumer = log.consumer("events", "g").await.unwrap();
    // A poll abandoned while waiting loses nothing.
    let waiting = consumer.poll(10, Duration::from_secs(5));
    assert!(
        tokio::time::timeout(Duration::from_millis(20), waiting)
            .await
            .is_err()
    );
    fill(&log, 3).await;
    // A poll abandoned while its read runs loses nothing either: the next one returns it.
    // Poll the future exactly once (the read is then on the blocking pool) and drop it.
    let mut offsets: Vec<u64> = {
        let mut abandoned = std::pin::pin!(consumer.poll(10, Duration::ZERO));
        match std::future::poll_fn(|cx| std::task::Poll::Ready(abandoned.as_mut().poll(cx))).await {
            std::task::Poll::Ready(batch) => {
                batch.unwrap().iter().map(|d| d.position.offset).collect()
            }
            std::task::Poll::Pending => Vec::new(),
        }
    };
    while offsets.len() < 3 {
        let batch = consumer.poll(10, Duration::from_secs(5)).await.unwrap();
        assert!(!batch.is_empty(), "lost messages after {offsets:?}");
        offsets.extend(batch.iter().map(|d| d.position.offset));
    }
    assert_eq!(offsets, vec![0, 1, 2]);
    assert!(consumer.poll(10, Duration::ZERO).await.unwrap().is_empty());
    log.close().await.unwrap();
    assert!(matches!(
        consumer.poll(10, Duration::ZERO).await,
        Err(LogError::Closed)
    ));
}

#[tokio::test]
async fn an_interrupted_topic_creation_leaves_no_trace() {
    let fs = MemStorage::default();
    let config = config();
    let log = open(&fs, &config).unwrap();
    // The rename into place is the commit point; fail the sync just before it.
    fs.fail_sync_after(2);
    assert!(log.append("events", b"k", msgs("m", 1)).await.is_err());
    drop(log);
    fs.crash(&mut Rng::new(1));
    let log = open(&fs, &config).unwrap();
    assert_eq!(log.end_offsets("events").await.unwrap(), vec![0, 0]);
    assert!(
        fs.list(&config.dir)
            .unwrap()
            .iter()
            .all(|e| !e.name.starts_with(".tmp-"))
    );
    log.append("events", b"k", msgs("m", 1)).await.unwrap();
    log.close().await.unwrap();
}

#[tokio::test]
async fn metrics_count_appends() {
    let fs = MemStorage::default();
    let metrics = LogMetrics::default();
    let log = FileLog::open_on(Arc::new(fs.clone()), config(), metrics.clone()).unwrap();
    log.append("events", b"k", msgs("m", 3)).await.unwrap();
    log.append("events", b"k", msgs("m", 2)).await.unwrap();
    assert_eq!(metrics.appended_messages.get(), 5);
    assert_eq!(metrics.frames.get(), 2);
    assert!(metrics.appended_bytes.get() > 5 * 3);
    log.close().await.unwrap();
}

#[tokio::test]
async fn opening_an_empty_directory_on_disk_is_quick() {
    let dir = tempfile::tempdir().unwrap();
    let config = FileLogConfig {
        dir: dir.path().join("a/b/log"),
        ..FileLogConfig::default()
    };
    let started = std::time::Instant::now();
    let log = FileLog::open(config.clone(), LogMetrics::default()).unwrap();
    let elapsed = started.elapsed();
    log.close().await.unwrap();
    // Generous for a loaded test machine; the benchmark reports the real figure.
    assert!(
        elapsed < Duration::from_millis(500),
        "open took {elapsed:?}"
    );
    assert!(config.dir.join("LOCK").exists());
}

#[tokio::test]
async fn a_failed_interval_sync_fails_the_partition() {
    let fs = MemStorage::default();
    let config = FileLogConfig {
        sync: SyncPolicy::Interval(Duration::from_millis(50)),
        ..config()
    };
    let log = open(&fs, &config).unwrap();
    let key = key_for(0, 2);
    // Past the first interval, so this append is synced in line and the next one is not.
    tokio::time::sleep(Duration::from_millis(60)).await;
    log.append("events", &key, msgs("m", 1)).await.unwrap();
    fs.fail_sync_after(0);
    log.append("events", &key, msgs("m", 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        log.append("events", &key, msgs("m", 1)).await,
        Err(LogError::Failed { .. })
    ));
    log.close().await.unwrap();
}
