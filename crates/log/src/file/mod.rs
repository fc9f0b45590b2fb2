//! The embedded log: segment files in the data directory.
//!
//! # Layout
//!
//! ```text
//! <dir>/LOCK                                   flock'ed while a process has the log open
//! <dir>/<topic>/<partition:03>/<base:020>.log  segments; the name is the first offset inside
//! <dir>/<topic>/groups/<group>.offsets          committed offsets of a consumer group
//! ```
//!
//! A segment is a sequence of frames, one per `append` call:
//!
//! ```text
//! len u32 | crc32c u32 | base_offset u64 | count u32 | appended_micros i64 | count × (len u32, bytes)
//! ```
//!
//! little-endian, the checksum covering everything after the crc field.
//!
//! # Invariants
//!
//! - Offsets are per partition, dense, from 0. The frames of a partition, read across its
//!   segments in name order, hold consecutive offsets; a segment's name is the base offset of
//!   its first frame and the end offset of the segment before it.
//! - A frame is the unit of atomicity: after any crash each append is in the log whole or not
//!   at all. Only the tail of the last (active) segment can hold a torn frame, because
//!   closed segments were synced before the next one was created.
//! - Appended times never decrease within a partition (the writer takes the maximum of the
//!   clock and the previous frame's time), so the first frame of a segment bounds the newest
//!   frame of the segment before it; retention by age relies on this.
//! - Readers see a message only once the writer published the partition's end past it; under
//!   [`SyncPolicy::PerBatch`] that happens after the `fdatasync`, so no consumer ever sees
//!   data that a crash could take back. Under `Interval` and `Never` the end is published
//!   after the write and is "acknowledged" rather than durable.
//! - Retention deletes only whole closed segments, oldest first, and never a segment holding
//!   a message some registered group has not committed past. A group is registered by its
//!   offsets file, written when its first consumer is created; delete the file to stop a
//!   retired group from holding data back.
//!
//! # Writing: one thread per partition, group commit
//!
//! Appenders send their batch over a channel to the partition's writer thread and await a
//! oneshot. The thread takes the first request, drains whatever else is queued (up to
//! `max_batch_bytes`), encodes every request as its own frame into one buffer, writes it with
//! one `write`, and under `PerBatch` calls `fdatasync` once for all of them; then it publishes
//! the new end and answers every waiter. A dedicated thread (rather than tokio tasks and
//! `spawn_blocking`) keeps the file handle and the batching state in one place and makes the
//! fsync cost per batch, not per append. A failed write is cut off again and fails only its
//! batch; a failed fsync or segment roll leaves the durability of the file unknown, so the
//! partition then refuses appends ([`LogError::Failed`]) until the log is reopened and
//! recovery decides what is on disk.
//!
//! Under `Interval(d)` an append is acknowledged after the write, and the writer syncs once
//! `d` has passed since its last sync: in line when a batch arrives later than that, or from
//! a timer while idle. So there is at most one sync per `d`, and unsynced data waits at most
//! about `d`. Under `Never` only `close` (or dropping the log) syncs.
//!
//! # Reading
//!
//! Each consumer has its own file handles and reads each partition sequentially in 256 KiB
//! chunks, handing out messages as slices of the chunk (no copy). Polls take turns across
//! partitions, starting one partition further each time. A consumer positioned inside a frame
//! (after a seek, or a commit in the middle of a batch) skips the frame's first messages.
//! There is no offset index: positioning a consumer reads its segment from the start up to
//! the position, at most one segment. Reads run on tokio's blocking pool and hand their
//! messages over through the consumer's state, so a cancelled `poll` loses nothing.
//!
//! # Recovery
//!
//! Opening lists topics, partitions and segments. Every closed segment only has its first
//! frame header checked (offset equals its name), so a large log opens without reading it;
//! the active segment is scanned frame by frame (length bounds, checksum, offset sequence)
//! and cut after the last valid frame: a torn tail, zero-filled or not, is repaired with a
//! warning. A valid frame at the wrong offset is corruption, not a torn write, and fails the
//! open. Consumers check the rest lazily: every frame's checksum and that each segment starts
//! where the previous one ended ([`LogError::Corrupt`] otherwise).
//!
//! Topics are created atomically: the partition directories and first segments are made in
//! `<dir>/.tmp-<topic>`, synced, and renamed into place, so a crash never leaves a topic with
//! fewer partitions than configured. Platform: Unix (positional reads, directory fsync,
//! `flock`).
//!
//! # Testing
//!
//! Every file operation goes through a small `Storage` trait. Tests swap the disk for an
//! in-memory one that models what survives a power loss (torn unsynced writes, undone
//! directory entries) and check the log against a model with random operations and crashes
//! (`model.rs`).

mod consumer;
mod frame;
mod group;
#[cfg(test)]
mod memfs;
#[cfg(test)]
mod model;
mod segment;
mod storage;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use ingot_core::Timestamp;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{oneshot, watch};

use self::consumer::FileConsumer;
use self::group::Group;
use self::segment::{SegmentInfo, recover_partition, segment_path};
use self::storage::{StdStorage, Storage, StorageLock};
use self::writer::{AppendRequest, Command, PartitionShared, Writer, WriterConfig};
pub use crate::metrics::LogMetrics;
use crate::{AppendAck, Consumer, Log, LogError, SyncPolicy, partition_for, validate_name};

/// The most bytes one append may hold, frame header included.
pub const MAX_APPEND_BYTES: usize = frame::MAX_FRAME_BYTES;
/// The most partitions a topic may have (directory names have three digits).
pub const MAX_PARTITIONS: u32 = 1000;

/// How the embedded log is set up. Fields are public so the application can fill them from
/// its own configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct FileLogConfig {
    /// The log directory.
    pub dir: PathBuf,
    /// Partitions of every topic, 1 to [`MAX_PARTITIONS`]. Fixed once a topic exists.
    pub partitions: u32,
    /// A segment is closed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// When an append is acknowledged.
    pub sync: SyncPolicy,
    /// The most bytes one group commit writes (a single larger append still goes alone).
    pub max_batch_bytes: usize,
    /// What is deleted, and when.
    pub retention: Retention,
    /// How often the housekeeping thread applies retention.
    pub retention_check_interval: Duration,
}

impl Default for FileLogConfig {
    fn default() -> FileLogConfig {
        FileLogConfig {
            dir: PathBuf::from("ingot-data/log"),
            partitions: 4,
            segment_bytes: 64 << 20,
            sync: SyncPolicy::PerBatch,
            max_batch_bytes: 8 << 20,
            retention: Retention::default(),
            retention_check_interval: Duration::from_secs(60),
        }
    }
}

impl FileLogConfig {
    fn validate(&self) -> Result<(), LogError> {
        let mut problems = Vec::new();
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            problems.push(format!(
                "partitions must be 1 to {MAX_PARTITIONS}, not {}",
                self.partitions
            ));
        }
        if self.segment_bytes == 0 {
            problems.push("segment_bytes must be above 0".to_string());
        }
        if self.max_batch_bytes == 0 {
            problems.push("max_batch_bytes must be above 0".to_string());
        }
        if self.retention_check_interval.is_zero() {
            problems.push("retention_check_interval must be above 0".to_string());
        }
        if let SyncPolicy::Interval(every) = self.sync
            && every.is_zero()
        {
            problems.push("a sync interval must be above 0".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LogError::Invalid(format!(
                "log config: {}",
                problems.join("; ")
            )))
        }
    }
}

/// What retention deletes. Whole closed segments go; unconsumed data of a registered group
/// never does (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Delete segments whose newest message is older than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest segments while a partition is larger than this.
    pub max_bytes_per_partition: Option<u64>,
}

/// What one retention pass deleted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// The deleted segments, oldest first per partition.
    pub deleted: Vec<DeletedSegment>,
}

impl RetentionReport {
    /// Bytes freed.
    pub fn bytes(&self) -> u64 {
        self.deleted.iter().map(|d| d.bytes).sum()
    }
}

/// A segment removed by retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSegment {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// Its first offset.
    pub first_offset: u64,
    /// The offset after its last message (the partition's oldest offset now).
    pub end_offset: u64,
    /// Its size.
    pub bytes: u64,
}

/// The embedded, segment-file [`Log`]; see the module docs.
#[derive(Debug)]
pub struct FileLog {
    inner: Arc<Inner>,
}

impl FileLog {
    /// Opens (creating if needed) the log in `config.dir`, recovering every topic found there,
    /// and starts its writer and housekeeping threads.
    pub fn open(config: FileLogConfig, metrics: LogMetrics) -> Result<FileLog, LogError> {
        FileLog::open_on(Arc::new(StdStorage), config, metrics)
    }

    /// [`FileLog::open`] on any storage (tests use an in-memory one).
    fn open_on(
        storage: Arc<dyn Storage>,
        config: FileLogConfig,
        metrics: LogMetrics,
    ) -> Result<FileLog, LogError> {
        let started = Instant::now();
        config.validate()?;
        create_dir_durable(storage.as_ref(), &config.dir)?;
        let lock_path = config.dir.join("LOCK");
        let lock: Arc<dyn StorageLock> = match storage.lock(&lock_path) {
            Ok(lock) => Arc::from(lock),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(LogError::Unavailable(format!(
                    "log directory {} is in use by another process",
                    config.dir.display()
                )));
            }
            Err(e) => return Err(LogError::io(&lock_path, e)),
        };
        let inner = Arc::new(Inner {
            config,
            storage,
            metrics,
            topics: RwLock::new(HashMap::new()),
            creating: Mutex::new(()),
            closed: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
            housekeeper: Mutex::new(None),
        });
        inner.recover_topics()?;
        Housekeeper::start(&inner)?;
        tracing::info!(
            dir = %inner.config.dir.display(),
            topics = inner.topics.read().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "log opened"
        );
        Ok(FileLog { inner })
    }

    /// Applies retention now, as the housekeeping thread does every
    /// `retention_check_interval`, taking `now` as the current time.
    pub fn enforce_retention(&self, now: Timestamp) -> Result<RetentionReport, LogError> {
        self.inner.enforce_retention(now)
    }

    /// The configuration the log runs with.
    pub fn config(&self) -> &FileLogConfig {
        &self.inner.config
    }
}

#[async_trait]
impl Log for FileLog {
    async fn append(
        &self,
        topic: &str,
        key: &[u8],
        messages: Vec<Bytes>,
    ) -> Result<AppendAck, LogError> {
        let started = Instant::now();
        if messages.is_empty() {
            return Err(LogError::Invalid(format!(
                "an append to topic {topic} needs at least one message"
            )));
        }
        let frame_len = frame::encoded_len(&messages);
        if frame_len > MAX_APPEND_BYTES {
            return Err(LogError::TooLarge {
                bytes: frame_len as u64,
                limit: MAX_APPEND_BYTES as u64,
            });
        }
        let topic = self.inner.topic(topic).await?;
        let partition =
            &topic.partitions[partition_for(key, self.inner.config.partitions) as usize];
        let (reply, ack) = oneshot::channel();
        let request = AppendRequest {
            messages,
            frame_len,
            started,
            reply,
        };
        partition
            .sender
            .send(Command::Append(request))
            .map_err(|_| LogError::Closed)?;
        // A dropped reply means the writer stopped (close) before taking the request.
        ack.await.map_err(|_| LogError::Closed)?
    }

    fn partitions(&self) -> u32 {
        self.inner.config.partitions
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, LogError> {
        validate_name("topic", topic)?;
        Ok(match self.inner.existing_topic(topic) {
            Some(topic) => topic.partitions.iter().map(|p| p.shared.end()).collect(),
            None => vec![0; self.inner.config.partitions as usize],
        })
    }

    async fn committed(&self, topic: &str, group: &str) -> Result<Vec<u64>, LogError> {
        validate_name("topic", topic)?;
        validate_name("group", group)?;
        let group = self
            .inner
            .existing_topic(topic)
            .and_then(|t| t.groups.lock().get(group).cloned());
        Ok(match group {
            Some(group) => group.committed(),
            None => vec![0; self.inner.config.partitions as usize],
        })
    }

    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, LogError> {
        validate_name("group", group)?;
        let topic = self.inner.topic(topic).await?;
        let existing = topic.groups.lock().get(group).cloned();
        let group = match existing {
            Some(group) => group,
            None => {
                let (inner, topic, name) = (self.inner.clone(), topic.clone(), group.to_string());
                tokio::task::spawn_blocking(move || inner.register_group(&topic, &name))
                    .await
                    .map_err(|e| {
                        LogError::Unavailable(format!("group registration failed: {e}"))
                    })??
            }
        };
        Ok(Box::new(FileConsumer::new(
            self.inner.clone(),
            topic,
            group,
        )))
    }

    async fn close(&self) -> Result<(), LogError> {
        self.inner.close().await
    }
}

/// The state shared by the log, its consumers and its housekeeping thread.
#[derive(Debug)]
struct Inner {
    config: FileLogConfig,
    storage: Arc<dyn Storage>,
    metrics: LogMetrics,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises topic creation and `close`.
    creating: Mutex<()>,
    closed: AtomicBool,
    /// Released by `close` (writer threads hold clones until they stop).
    lock: Mutex<Option<Arc<dyn StorageLock>>>,
    housekeeper: Mutex<Option<Housekeeper>>,
}

/// A topic: its partitions and consumer groups.
#[derive(Debug)]
struct Topic {
    name: String,
    dir: PathBuf,
    partitions: Vec<Partition>,
    groups: Mutex<HashMap<String, Arc<Group>>>,
    /// Bumped by every partition's writer after a publication.
    changed: watch::Sender<()>,
}

impl Topic {
    fn groups_dir(&self) -> PathBuf {
        self.dir.join("groups")
    }
}

#[derive(Debug)]
struct Partition {
    shared: Arc<PartitionShared>,
    sender: mpsc::Sender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn existing_topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// The topic `name`, created on first use.
    async fn topic(self: &Arc<Self>, name: &str) -> Result<Arc<Topic>, LogError> {
        if self.is_closed() {
            return Err(LogError::Closed);
        }
        if let Some(topic) = self.existing_topic(name) {
            return Ok(topic);
        }
        validate_name("topic", name)?;
        let (inner, name) = (self.clone(), name.to_string());
        tokio::task::spawn_blocking(move || inner.create_topic(&name))
            .await
            .map_err(|e| LogError::Unavailable(format!("topic creation failed: {e}")))?
    }

    fn create_topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        let _creating = self.creating.lock();
        if self.is_closed() {
            return Err(LogError::Closed);
        }
        if let Some(topic) = self.existing_topic(name) {
            return Ok(topic);
        }
        let storage = self.storage.as_ref();
        let root = &self.config.dir;
        let staging = root.join(format!(".tmp-{name}"));
        remove_dir_if_present(storage, &staging)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| LogError::io(&path, e)
        };
        storage.create_dir(&staging).map_err(io(&staging))?;
        for p in 0..self.config.partitions {
            let dir = staging.join(format!("{p:03}"));
            storage.create_dir(&dir).map_err(io(&dir))?;
            let first = segment_path(&dir, 0);
            storage.create(&first, false).map_err(io(&first))?;
            storage.sync_dir(&dir).map_err(io(&dir))?;
        }
        let groups = staging.join("groups");
        storage.create_dir(&groups).map_err(io(&groups))?;
        storage.sync_dir(&staging).map_err(io(&staging))?;
        let dir = root.join(name);
        storage.rename(&staging, &dir).map_err(io(&dir))?;
        storage.sync_dir(root).map_err(io(root))?;
        tracing::info!(
            topic = name,
            partitions = self.config.partitions,
            "log topic created"
        );
        let topic = self.recover_topic(name)?;
        self.topics.write().insert(name.to_string(), topic.clone());
        Ok(topic)
    }

    /// Discovers and recovers every topic in the log directory.
    fn recover_topics(&self) -> Result<(), LogError> {
        let root = &self.config.dir;
        let mut entries = self.storage.list(root).map_err(|e| LogError::io(root, e))?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for entry in entries {
            let path = root.join(&entry.name);
            if entry.name == "LOCK" && !entry.is_dir {
                continue;
            }
            if entry.is_dir && entry.name.starts_with(".tmp-") {
                // A topic whose creation a crash interrupted: it never held data.
                remove_dir_if_present(self.storage.as_ref(), &path)?;
                self.storage
                    .sync_dir(root)
                    .map_err(|e| LogError::io(root, e))?;
                continue;
            }
            if !entry.is_dir || validate_name("topic", &entry.name).is_err() {
                tracing::warn!(path = %path.display(), "ignoring an unknown entry in the log directory");
                continue;
            }
            let topic = self.recover_topic(&entry.name)?;
            self.topics.write().insert(entry.name.clone(), topic);
        }
        Ok(())
    }

    /// Recovers one topic directory and starts its writers.
    fn recover_topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        let storage = self.storage.as_ref();
        let dir = self.config.dir.join(name);
        let mut partition_dirs = Vec::new();
        let mut has_groups = false;
        for entry in storage.list(&dir).map_err(|e| LogError::io(&dir, e))? {
            match (entry.is_dir, entry.name.as_str()) {
                (true, "groups") => has_groups = true,
                (true, n) if n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()) => {
                    partition_dirs.push(n.parse::<u32>().unwrap_or(u32::MAX));
                }
                _ => {
                    tracing::warn!(path = %dir.join(&entry.name).display(), "ignoring an unknown entry in a log topic")
                }
            }
        }
        partition_dirs.sort_unstable();
        let count = partition_dirs.len() as u32;
        if partition_dirs.iter().copied().ne(0..count) {
            let reason = format!(
                "partition directories are not numbered 000 to {:03}",
                count.saturating_sub(1)
            );
            return Err(LogError::corrupt(&dir, 0, reason));
        }
        if count != self.config.partitions {
            return Err(LogError::Invalid(format!(
                "topic {name} in {} has {count} partitions but the log is configured with {}; \
                 the partition count of an existing topic cannot change",
                self.config.dir.display(),
                self.config.partitions
            )));
        }
        let groups_dir = dir.join("groups");
        if !has_groups {
            storage
                .create_dir(&groups_dir)
                .map_err(|e| LogError::io(&groups_dir, e))?;
            storage.sync_dir(&dir).map_err(|e| LogError::io(&dir, e))?;
        }
        let groups = self.load_groups(&groups_dir)?;

        let lock = self.lock.lock().clone().ok_or(LogError::Closed)?;
        let (changed, _) = watch::channel(());
        let writer_config = WriterConfig {
            sync: self.config.sync,
            segment_bytes: self.config.segment_bytes,
            max_batch_bytes: self.config.max_batch_bytes,
        };
        let mut partitions = Vec::with_capacity(count as usize);
        for index in 0..count {
            let pdir = dir.join(format!("{index:03}"));
            let recovered = recover_partition(storage, &pdir)?;
            let active_len = recovered
                .segments
                .last()
                .map_or(0, |s: &SegmentInfo| s.bytes);
            let shared = Arc::new(PartitionShared::new(
                name,
                index,
                pdir.clone(),
                recovered.segments,
                recovered.end,
                changed.clone(),
            ));
            let writer = Writer::new(
                shared.clone(),
                self.storage.clone(),
                writer_config,
                self.metrics.clone(),
                recovered.active,
                active_len,
                recovered.last_appended,
                lock.clone(),
            );
            let (sender, thread) = writer.spawn().map_err(|e| LogError::io(&pdir, e))?;
            partitions.push(Partition {
                shared,
                sender,
                thread: Mutex::new(Some(thread)),
            });
        }
        Ok(Arc::new(Topic {
            name: name.to_string(),
            dir,
            partitions,
            groups: Mutex::new(groups),
            changed,
        }))
    }

    fn load_groups(&self, dir: &Path) -> Result<HashMap<String, Arc<Group>>, LogError> {
        let storage = self.storage.as_ref();
        let mut groups = HashMap::new();
        let mut removed = false;
        for entry in storage.list(dir).map_err(|e| LogError::io(dir, e))? {
            let path = dir.join(&entry.name);
            if let Some(name) = entry.name.strip_suffix(".offsets")
                && !entry.is_dir
                && validate_name("group", name).is_ok()
            {
                let group = Group::load(storage, dir, name, self.config.partitions)?;
                groups.insert(name.to_string(), Arc::new(group));
            } else if entry.name.ends_with(".offsets.tmp") && !entry.is_dir {
                // A commit a crash interrupted before its rename: never acknowledged.
                storage
                    .remove_file(&path)
                    .map_err(|e| LogError::io(&path, e))?;
                removed = true;
            } else {
                tracing::warn!(path = %path.display(), "ignoring an unknown entry among consumer groups");
            }
        }
        if removed {
            storage.sync_dir(dir).map_err(|e| LogError::io(dir, e))?;
        }
        Ok(groups)
    }

    /// The group `name` of `topic`, written to disk when new so retention respects it.
    fn register_group(&self, topic: &Topic, name: &str) -> Result<Arc<Group>, LogError> {
        let mut groups = topic.groups.lock();
        if let Some(group) = groups.get(name) {
            return Ok(group.clone());
        }
        if self.is_closed() {
            return Err(LogError::Closed);
        }
        let group = Arc::new(Group::new(
            &topic.groups_dir(),
            name,
            self.config.partitions,
        ));
        group.persist(self.storage.as_ref())?;
        groups.insert(name.to_string(), group.clone());
        tracing::info!(topic = %topic.name, group = name, "log consumer group registered");
        Ok(group)
    }

    fn enforce_retention(&self, now: Timestamp) -> Result<RetentionReport, LogError> {
        if self.is_closed() {
            return Err(LogError::Closed);
        }
        let retention = self.config.retention;
        let cutoff = retention.max_age.map(|age| {
            now.as_micros()
                .saturating_sub(i64::try_from(age.as_micros()).unwrap_or(i64::MAX))
        });
        let mut report = RetentionReport::default();
        if cutoff.is_none() && retention.max_bytes_per_partition.is_none() {
            return Ok(report);
        }
        let topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        for topic in topics {
            // Groups registered from here on start at the oldest retained offset anyway.
            let groups: Vec<Vec<u64>> = topic
                .groups
                .lock()
                .values()
                .map(|g| g.committed())
                .collect();
            for (index, partition) in topic.partitions.iter().enumerate() {
                let floor = groups
                    .iter()
                    .map(|offsets| offsets[index])
                    .min()
                    .unwrap_or(u64::MAX);
                let shared = &partition.shared;
                let doomed: Vec<SegmentInfo> = {
                    let mut segments = shared.segments.write();
                    let n =
                        expired_prefix(&segments, floor, cutoff, retention.max_bytes_per_partition);
                    segments.drain(..n).collect()
                };
                if doomed.is_empty() {
                    continue;
                }
                let end_offset = shared.oldest();
                for (i, segment) in doomed.iter().enumerate() {
                    let path = segment_path(&shared.dir, segment.base);
                    match self.storage.remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(LogError::io(&path, e)),
                    }
                    report.deleted.push(DeletedSegment {
                        topic: topic.name.clone(),
                        partition: index as u32,
                        first_offset: segment.base,
                        end_offset: doomed.get(i + 1).map_or(end_offset, |s| s.base),
                        bytes: segment.bytes,
                    });
                }
                self.storage
                    .sync_dir(&shared.dir)
                    .map_err(|e| LogError::io(&shared.dir, e))?;
            }
        }
        if !report.deleted.is_empty() {
            tracing::info!(
                segments = report.deleted.len(),
                bytes = report.bytes(),
                "log retention deleted segments"
            );
        }
        Ok(report)
    }

    async fn close(&self) -> Result<(), LogError> {
        {
            let _creating = self.creating.lock();
            if self.closed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
        }
        let topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        let mut replies = Vec::new();
        for topic in &topics {
            for partition in &topic.partitions {
                let (reply, done) = oneshot::channel();
                if partition.sender.send(Command::Close(reply)).is_ok() {
                    replies.push(done);
                }
            }
        }
        let mut result = Ok(());
        for done in replies {
            // A writer that is already gone has nothing left to sync.
            if let Ok(Err(e)) = done.await
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        let mut threads: Vec<JoinHandle<()>> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().filter_map(|p| p.thread.lock().take()))
            .collect();
        if let Some(housekeeper) = self.housekeeper.lock().take() {
            drop(housekeeper.stop);
            threads.push(housekeeper.thread);
        }
        tokio::task::spawn_blocking(move || {
            for thread in threads {
                if thread.join().is_err() {
                    tracing::error!("a log thread panicked");
                }
            }
        })
        .await
        .map_err(|e| LogError::Unavailable(format!("joining log threads failed: {e}")))?;
        for topic in &topics {
            topic.changed.send_replace(());
        }
        self.lock.lock().take();
        tracing::info!(dir = %self.config.dir.display(), "log closed");
        result
    }
}

/// How many segments from the front of `segments` retention deletes: closed ones only,
/// oldest first, none holding an offset at or above `floor` (the lowest committed offset of
/// any group), while the next segment's first frame is older than `cutoff` or the partition
/// is larger than `max_bytes`.
fn expired_prefix(
    segments: &[SegmentInfo],
    floor: u64,
    cutoff: Option<i64>,
    max_bytes: Option<u64>,
) -> usize {
    let mut total: u64 = segments.iter().map(|s| s.bytes).sum();
    let mut n = 0;
    while n + 1 < segments.len() {
        let following = segments[n + 1];
        if following.base > floor {
            break;
        }
        let old = cutoff.is_some_and(|cutoff| following.first_appended.is_some_and(|t| t < cutoff));
        let big = max_bytes.is_some_and(|max| total > max);
        if !old && !big {
            break;
        }
        total -= segments[n].bytes;
        n += 1;
    }
    n
}

/// The thread applying retention every `retention_check_interval`.
#[derive(Debug)]
struct Housekeeper {
    /// Dropping it stops the thread.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Housekeeper {
    fn start(inner: &Arc<Inner>) -> Result<(), LogError> {
        let retention = inner.config.retention;
        if retention.max_age.is_none() && retention.max_bytes_per_partition.is_none() {
            return Ok(());
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let weak: Weak<Inner> = Arc::downgrade(inner);
        let every = inner.config.retention_check_interval;
        let thread = std::thread::Builder::new()
            .name("ingot-log-retention".to_string())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let Some(inner) = weak.upgrade() else { break };
                    if let Err(e) = inner.enforce_retention(Timestamp::now()) {
                        tracing::warn!(error = %e, "log retention failed");
                    }
                }
            })
            .map_err(|e| LogError::io(&inner.config.dir, e))?;
        *inner.housekeeper.lock() = Some(Housekeeper { stop, thread });
        Ok(())
    }
}

/// Creates `dir` and any missing parents, syncing each parent so the new entries are durable.
fn create_dir_durable(storage: &dyn Storage, dir: &Path) -> Result<(), LogError> {
    let mut missing = Vec::new();
    for ancestor in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        if storage.list(ancestor).is_ok() {
            break;
        }
        missing.push(ancestor);
    }
    for path in missing.into_iter().rev() {
        match storage.create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(LogError::io(path, e)),
        }
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        storage
            .sync_dir(parent)
            .map_err(|e| LogError::io(parent, e))?;
    }
    Ok(())
}

fn remove_dir_if_present(storage: &dyn Storage, path: &Path) -> Result<(), LogError> {
    match storage.remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, e)),
    }
}
