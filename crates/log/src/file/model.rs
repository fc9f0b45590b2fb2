//! Model-based property test: random operations on a [`FileLog`] over the in-memory storage,
//! checked against a plain model of what must be in the log.
//!
//! After every recovery the log holds exactly every acknowledged batch at its original
//! offsets; a batch whose append failed (its fsync was made to fail, then the machine
//! "crashed" with a torn tail) is there whole or not at all; committed offsets survive;
//! retention never deletes past what the group committed; offsets handed out after a
//! recovery continue where the log ends, so none repeats.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ingot_core::Timestamp;
use proptest::prelude::*;

use super::memfs::{MemStorage, Rng};
use super::{FileLog, FileLogConfig, LogMetrics, Retention};
use crate::{AppendAck, Consumer, Log, LogError, SyncPolicy, partition_for};

const TOPIC: &str = "events";
const GROUP: &str = "main";
const PARTITIONS: u32 = 2;

/// A batch: its key and the filler length of each message.
type Batch = (u8, Vec<u8>);

#[derive(Debug, Clone)]
enum Op {
    /// One append, awaited.
    Append(Batch),
    /// Several appends at once, so that the writer commits them as a group.
    Burst(Vec<Batch>),
    /// Poll up to `max` messages and check them; commit them if `commit`.
    Consume { max: u8, commit: bool },
    /// Make the `fail_after`-th next sync fail, run a burst, then crash and recover.
    TornBurst {
        batches: Vec<Batch>,
        fail_after: u8,
        seed: u64,
    },
    /// Power loss and recovery.
    Crash { seed: u64 },
    /// Clean close and reopen.
    Reopen,
    /// Apply retention, a day from now (`by_age`) or now (size only).
    Retention { by_age: bool },
}

fn batch() -> impl Strategy<Value = Batch> {
    (0u8..6, prop::collection::vec(0u8..40, 1..5))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => batch().prop_map(Op::Append),
        2 => prop::collection::vec(batch(), 2..6).prop_map(Op::Burst),
        3 => (1u8..20, any::<bool>()).prop_map(|(max, commit)| Op::Consume { max, commit }),
        2 => (prop::collection::vec(batch(), 1..5), 0u8..3, any::<u64>())
            .prop_map(|(batches, fail_after, seed)| Op::TornBurst { batches, fail_after, seed }),
        1 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
        1 => Just(Op::Reopen),
        1 => any::<bool>().prop_map(|by_age| Op::Retention { by_age }),
    ]
}

/// What the log must hold.
#[derive(Debug, Default)]
struct Model {
    /// Every message ever acknowledged, by partition and offset.
    data: Vec<Vec<Bytes>>,
    /// The oldest offset retention left, per partition.
    oldest: Vec<u64>,
    committed: Vec<u64>,
    /// The live consumer's next offset, per partition.
    next: Vec<u64>,
    /// Makes every payload unique.
    counter: u64,
}

impl Model {
    fn new() -> Model {
        let n = PARTITIONS as usize;
        Model {
            data: vec![Vec::new(); n],
            oldest: vec![0; n],
            committed: vec![0; n],
            next: vec![0; n],
            counter: 0,
        }
    }

    fn end(&self, p: usize) -> u64 {
        self.data[p].len() as u64
    }

    fn messages(&mut self, sizes: &[u8]) -> Vec<Bytes> {
        sizes
            .iter()
            .map(|&size| {
                self.counter += 1;
                let mut text = format!("{}:", self.counter).into_bytes();
                text.resize(text.len() + size as usize, b'x');
                Bytes::from(text)
            })
            .collect()
    }

    /// Takes acknowledged batches (in any order) into the model, checking that their
    /// offsets continue each partition densely.
    fn acknowledge(&mut self, mut acked: Vec<(AppendAck, Vec<Bytes>)>) {
        acked.sort_by_key(|(ack, _)| (ack.partition, ack.first_offset));
        for (ack, messages) in acked {
            let p = ack.partition as usize;
            assert_eq!(
                ack.first_offset,
                self.end(p),
                "offsets are dense and never repeat"
            );
            assert_eq!(ack.count as usize, messages.len());
            self.data[p].extend(messages);
        }
    }
}

fn config() -> FileLogConfig {
    FileLogConfig {
        dir: PathBuf::from("/var/lib/ingot/log"),
        partitions: PARTITIONS,
        segment_bytes: 150,
        sync: SyncPolicy::PerBatch,
        max_batch_bytes: 400,
        retention: Retention {
            max_age: Some(Duration::from_secs(3600)),
            max_bytes_per_partition: Some(300),
        },
        retention_check_interval: Duration::from_secs(3600),
    }
}

fn open(fs: &MemStorage) -> Arc<FileLog> {
    Arc::new(
        FileLog::open_on(Arc::new(fs.clone()), config(), LogMetrics::default())
            .expect("recovery succeeds"),
    )
}

async fn burst(
    log: &Arc<FileLog>,
    batches: Vec<(u8, Vec<Bytes>)>,
) -> Vec<(Result<AppendAck, LogError>, u32, Vec<Bytes>)> {
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|(key, messages)| {
            let log = log.clone();
            tokio::spawn(async move {
                let result = log.append(TOPIC, &[key], messages.clone()).await;
                (result, partition_for(&[key], PARTITIONS), messages)
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("append task"));
    }
    out
}

/// Reads the whole log and checks it against the model. `unacked` are batches whose append
/// failed: each may be there whole, after everything acknowledged, or not at all; those
/// found join the model.
async fn verify(log: &FileLog, model: &mut Model, unacked: Vec<(u32, Vec<Bytes>)>) {
    assert_eq!(
        log.committed(TOPIC, GROUP).await.expect("committed"),
        model.committed,
        "commits survive"
    );
    let ends = log.end_offsets(TOPIC).await.expect("end offsets");
    let mut reader = log.consumer(TOPIC, GROUP).await.expect("consumer");
    let mut got: Vec<Vec<(u64, Bytes)>> = vec![Vec::new(); PARTITIONS as usize];
    for p in 0..PARTITIONS {
        reader.seek(p, 0).await.expect("seek");
    }
    loop {
        let batch = reader.poll(1000, Duration::ZERO).await.expect("poll");
        if batch.is_empty() {
            break;
        }
        for d in batch {
            got[d.position.partition as usize].push((d.position.offset, d.payload));
        }
    }
    for p in 0..PARTITIONS as usize {
        let found = &got[p];
        let offsets: Vec<u64> = found.iter().map(|(o, _)| *o).collect();
        let expected: Vec<u64> = (model.oldest[p]..ends[p]).collect();
        assert_eq!(offsets, expected, "partition {p} holds exactly oldest..end");
        let mut suffix = Vec::new();
        for (offset, payload) in found {
            if *offset < model.end(p) {
                assert_eq!(
                    payload, &model.data[p][*offset as usize],
                    "{p}@{offset} keeps its message"
                );
            } else {
                suffix.push(payload.clone());
            }
        }
        assert!(
            ends[p] >= model.end(p),
            "partition {p} lost acknowledged messages"
        );
        // Whatever follows must be whole unacknowledged batches.
        let mut candidates: Vec<&Vec<Bytes>> = unacked
            .iter()
            .filter(|(q, _)| *q as usize == p)
            .map(|(_, m)| m)
            .collect();
        let mut at = 0;
        while at < suffix.len() {
            let Some(i) = candidates.iter().position(|m| m[0] == suffix[at]) else {
                panic!(
                    "partition {p} holds {:?}, which no append wrote",
                    suffix[at]
                );
            };
            let batch = candidates.remove(i);
            assert_eq!(
                &suffix[at..(at + batch.len()).min(suffix.len())],
                &batch[..],
                "a batch is all or nothing"
            );
            at += batch.len();
        }
        model.data[p].extend(suffix);
    }
    for p in 0..PARTITIONS as usize {
        model.next[p] = model.committed[p].max(model.oldest[p]);
    }
}

async fn run(ops: Vec<Op>) {
    let fs = MemStorage::default();
    let mut model = Model::new();
    let mut log = open(&fs);
    // Registering the group first makes retention answer to it from the start.
    let mut consumer: Box<dyn Consumer> = log.consumer(TOPIC, GROUP).await.expect("consumer");
    for op in ops {
        match op {
            Op::Append((key, sizes)) => {
                let messages = model.messages(&sizes);
                let ack = log
                    .append(TOPIC, &[key], messages.clone())
                    .await
                    .expect("append");
                assert_eq!(ack.partition, partition_for(&[key], PARTITIONS));
                model.acknowledge(vec![(ack, messages)]);
            }
            Op::Burst(batches) => {
                let batches = batches
                    .into_iter()
                    .map(|(key, sizes)| (key, model.messages(&sizes)))
                    .collect();
                let acked = burst(&log, batches)
                    .await
                    .into_iter()
                    .map(|(result, _, messages)| (result.expect("append"), messages))
                    .collect();
                model.acknowledge(acked);
            }
            Op::Consume { max, commit } => {
                let delivered = consumer
                    .poll(usize::from(max), Duration::ZERO)
                    .await
                    .expect("poll");
                assert!(delivered.len() <= usize::from(max));
                let available: u64 = (0..PARTITIONS as usize)
                    .map(|p| model.end(p) - model.next[p])
                    .sum();
                assert_eq!(
                    delivered.len() as u64,
                    available.min(u64::from(max)),
                    "poll returns what is there"
                );
                for d in &delivered {
                    let p = d.position.partition as usize;
                    assert_eq!(d.position.offset, model.next[p], "in order, none skipped");
                    assert_eq!(d.payload, model.data[p][d.position.offset as usize]);
                    model.next[p] += 1;
                }
                if commit && !delivered.is_empty() {
                    let positions: Vec<_> = delivered.iter().map(|d| d.position).collect();
                    consumer.commit(&positions).await.expect("commit");
                    for position in positions {
                        let slot = &mut model.committed[position.partition as usize];
                        *slot = (*slot).max(position.offset + 1);
                    }
                }
            }
            Op::TornBurst {
                batches,
                fail_after,
                seed,
            } => {
                let batches = batches
                    .into_iter()
                    .map(|(key, sizes)| (key, model.messages(&sizes)))
                    .collect();
                fs.fail_sync_after(u32::from(fail_after));
                let results = burst(&log, batches).await;
                fs.disarm();
                let mut acked = Vec::new();
                let mut unacked = Vec::new();
                for (result, partition, messages) in results {
                    match result {
                        Ok(ack) => acked.push((ack, messages)),
                        Err(_) => unacked.push((partition, messages)),
                    }
                }
                model.acknowledge(acked);
                drop(consumer);
                drop(log);
                fs.crash(&mut Rng::new(seed));
                log = open(&fs);
                verify(&log, &mut model, unacked).await;
                consumer = log.consumer(TOPIC, GROUP).await.expect("consumer");
            }
            Op::Crash { seed } => {
                drop(consumer);
                drop(log);
                fs.crash(&mut Rng::new(seed));
                log = open(&fs);
                verify(&log, &mut model, Vec::new()).await;
                consumer = log.consumer(TOPIC, GROUP).await.expect("consumer");
            }
            Op::Reopen => {
                drop(consumer);
                log.close().await.expect("close");
                log = open(&fs);
                verify(&log, &mut model, Vec::new()).await;
                consumer = log.consumer(TOPIC, GROUP).await.expect("consumer");
            }
            Op::Retention { by_age } => {
                let now = if by_age {
                    Timestamp::now().saturating_add_micros(86_400_000_000)
                } else {
                    Timestamp::now()
                };
                let report = log.enforce_retention(now).expect("retention");
                for deleted in report.deleted {
                    let p = deleted.partition as usize;
                    assert!(
                        deleted.end_offset <= model.committed[p],
                        "{deleted:?} was not consumed by the group"
                    );
                    assert_eq!(deleted.first_offset, model.oldest[p], "oldest first");
                    model.oldest[p] = deleted.end_offset;
                }
            }
        }
    }
    drop(consumer);
    log.close().await.expect("close");
    let log = open(&fs);
    verify(&log, &mut model, Vec::new()).await;
    log.close().await.expect("close");
}

proptest! {
    // 64 cases take about two seconds in a debug build; PROPTEST_CASES=5000 digs deeper.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn the_log_matches_its_model(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(run(ops));
    }
}
