//! One writer thread per partition: group commit, fsync, segment roll, publication of the
//! durable end.

use std::io;
use std::mem;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use ingot_core::Timestamp;
use parking_lot::RwLock;
use tokio::sync::{oneshot, watch};

use super::frame;
use super::segment::{SegmentInfo, segment_path};
use super::storage::{Storage, StorageFile, StorageLock};
use crate::metrics::LogMetrics;
use crate::{AppendAck, LogError, SyncPolicy};

/// What readers and housekeeping share with a partition's writer.
#[derive(Debug)]
pub(crate) struct PartitionShared {
    pub(crate) topic: String,
    pub(crate) index: u32,
    pub(crate) dir: PathBuf,
    /// Oldest first; the last is the active segment. The writer pushes, retention removes
    /// from the front (never the last).
    pub(crate) segments: RwLock<Vec<SegmentInfo>>,
    /// The offset after the last durable message. Only grows; stored after the segment list
    /// and the file hold everything below it.
    end: AtomicU64,
    /// Bumped after every publication, for consumers waiting on any partition of the topic.
    changed: watch::Sender<()>,
}

impl PartitionShared {
    pub(crate) fn new(
        topic: &str,
        index: u32,
        dir: PathBuf,
        segments: Vec<SegmentInfo>,
        end: u64,
        changed: watch::Sender<()>,
    ) -> PartitionShared {
        PartitionShared {
            topic: topic.to_string(),
            index,
            dir,
            segments: RwLock::new(segments),
            end: AtomicU64::new(end),
            changed,
        }
    }

    /// The offset after the last durable message.
    pub(crate) fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    /// The oldest offset still on disk.
    pub(crate) fn oldest(&self) -> u64 {
        self.segments.read().first().map_or(0, |s| s.base)
    }

    fn failed(&self, reason: &str) -> LogError {
        LogError::Failed {
            topic: self.topic.clone(),
            partition: self.index,
            reason: reason.to_string(),
        }
    }
}

/// What appenders and `close` send to a writer.
#[derive(Debug)]
pub(crate) enum Command {
    Append(AppendRequest),
    /// Finish what is queued before this, sync, and stop.
    Close(oneshot::Sender<Result<(), LogError>>),
}

/// One `append` call waiting for its acknowledgement.
#[derive(Debug)]
pub(crate) struct AppendRequest {
    pub(crate) messages: Vec<Bytes>,
    /// The encoded frame size.
    pub(crate) frame_len: usize,
    pub(crate) started: Instant,
    pub(crate) reply: oneshot::Sender<Result<AppendAck, LogError>>,
}

/// The writer's share of the log configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterConfig {
    pub(crate) sync: SyncPolicy,
    pub(crate) segment_bytes: u64,
    pub(crate) max_batch_bytes: usize,
}

/// The state owned by a partition's writer thread.
#[derive(Debug)]
pub(crate) struct Writer {
    shared: Arc<PartitionShared>,
    storage: Arc<dyn Storage>,
    config: WriterConfig,
    metrics: LogMetrics,
    file: Box<dyn StorageFile>,
    active_base: u64,
    active_len: u64,
    /// The offset the next frame gets.
    next: u64,
    last_appended: i64,
    /// Set after a failure that leaves durability unknown; every later append is refused.
    failed: Option<String>,
    unsynced: bool,
    last_sync: Instant,
    buf: Vec<u8>,
    batch: Vec<AppendRequest>,
    /// A command taken off the channel that belongs to the next round.
    carry: Option<Command>,
    /// Keeps the log directory locked while this thread may still write.
    _lock: Arc<dyn StorageLock>,
}

impl Writer {
    #[allow(clippy::too_many_arguments)] // one constructor, called from one place
    pub(crate) fn new(
        shared: Arc<PartitionShared>,
        storage: Arc<dyn Storage>,
        config: WriterConfig,
        metrics: LogMetrics,
        file: Box<dyn StorageFile>,
        active_len: u64,
        last_appended: i64,
        lock: Arc<dyn StorageLock>,
    ) -> Writer {
        let next = shared.end();
        let active_base = shared.segments.read().last().map_or(0, |s| s.base);
        Writer {
            shared,
            storage,
            config,
            metrics,
            file,
            active_base,
            active_len,
            next,
            last_appended,
            failed: None,
            unsynced: false,
            last_sync: Instant::now(),
            buf: Vec::new(),
            batch: Vec::new(),
            carry: None,
            _lock: lock,
        }
    }

    /// Starts the thread; it runs until `Close` or until every sender is gone.
    pub(crate) fn spawn(self) -> io::Result<(mpsc::Sender<Command>, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel();
        let name = format!("ingot-log-w{}", self.shared.index);
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || self.run(rx))?;
        Ok((tx, handle))
    }

    fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            let Some(command) = self.next_command(&rx) else {
                break;
            };
            match command {
                Command::Append(request) => {
                    let mut bytes = request.frame_len;
                    self.batch.push(request);
                    // Group commit: take whatever else is queued, up to the batch cap.
                    while let Ok(command) = rx.try_recv() {
                        match command {
                            Command::Append(r)
                                if bytes + r.frame_len <= self.config.max_batch_bytes =>
                            {
                                bytes += r.frame_len;
                                self.batch.push(r);
                            }
                            other => {
                                self.carry = Some(other);
                                break;
                            }
                        }
                    }
                    self.commit();
                }
                Command::Close(reply) => {
                    let _ = reply.send(self.final_sync());
                    return;
                }
            }
        }
        // Every sender is gone (the log was dropped without `close`).
        if let Err(e) = self.final_sync() {
            tracing::error!(error = %e, "log writer could not sync on shutdown");
        }
    }

    /// The next command; under `SyncPolicy::Interval` syncs once the interval is up while
    /// waiting.
    fn next_command(&mut self, rx: &mpsc::Receiver<Command>) -> Option<Command> {
        if let Some(command) = self.carry.take() {
            return Some(command);
        }
        if let (SyncPolicy::Interval(every), true) = (self.config.sync, self.unsynced) {
            let wait = (self.last_sync + every).saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(command) => return Some(command),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = self.sync() {
                        self.fail(format!("fsync failed: {e}"));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
        rx.recv().ok()
    }

    /// Writes the batch as one write, makes it durable, publishes it, and answers.
    fn commit(&mut self) {
        let batch = mem::take(&mut self.batch);
        if let Some(reason) = &self.failed {
            for request in batch {
                let _ = request.reply.send(Err(self.shared.failed(reason)));
            }
            return;
        }
        if let Err(e) = self.roll_if_full() {
            let reason = format!("rolling to a new segment failed: {e}");
            self.fail(reason.clone());
            for request in batch {
                let _ = request.reply.send(Err(self.shared.failed(&reason)));
            }
            return;
        }

        let appended = Timestamp::now().as_micros().max(self.last_appended);
        let first = self.next;
        let mut next = first;
        self.buf.clear();
        for request in &batch {
            frame::encode(&mut self.buf, next, appended, &request.messages);
            next += request.messages.len() as u64;
        }
        let path = segment_path(&self.shared.dir, self.active_base);
        if let Err(e) = self.file.append(&self.buf) {
            // Undo a partial write so the file stays a sequence of valid frames.
            if let Err(cut) = self.file.truncate(self.active_len) {
                self.fail(format!(
                    "a write failed ({e}) and cutting it off failed too ({cut})"
                ));
            }
            for request in batch {
                let _ = request.reply.send(Err(LogError::io(
                    &path,
                    io::Error::new(e.kind(), e.to_string()),
                )));
            }
            return;
        }
        self.active_len += self.buf.len() as u64;
        let durable = match self.config.sync {
            SyncPolicy::PerBatch => self.sync(),
            SyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync(),
            SyncPolicy::Interval(_) | SyncPolicy::Never => {
                self.unsynced = true;
                Ok(())
            }
        };
        if let Err(e) = durable {
            let reason = format!("fsync of {} failed: {e}", path.display());
            self.fail(reason.clone());
            for request in batch {
                let _ = request.reply.send(Err(self.shared.failed(&reason)));
            }
            return;
        }

        self.next = next;
        self.last_appended = appended;
        self.publish(appended);
        self.metrics.frames.inc_by(batch.len() as u64);
        self.metrics.appended_messages.inc_by(next - first);
        self.metrics.appended_bytes.inc_by(self.buf.len() as u64);
        let mut offset = first;
        for request in batch {
            let count = request.messages.len() as u32;
            self.metrics
                .append_seconds
                .observe(request.started.elapsed().as_secs_f64());
            let ack = AppendAck {
                partition: self.shared.index,
                first_offset: offset,
                count,
            };
            offset += u64::from(count);
            // A caller that stopped waiting still has its batch appended.
            let _ = request.reply.send(Ok(ack));
        }
    }

    /// Makes what was written visible to readers.
    fn publish(&mut self, appended: i64) {
        {
            let mut segments = self.shared.segments.write();
            if let Some(active) = segments.last_mut() {
                active.bytes = self.active_len;
                active.first_appended.get_or_insert(appended);
            }
        }
        self.shared.end.store(self.next, Ordering::Release);
        self.shared.changed.send_replace(());
    }

    /// Starts a new segment when the active one is full: the old one is synced, the new one
    /// created and its directory entry made durable before anything is written to it.
    fn roll_if_full(&mut self) -> io::Result<()> {
        if self.active_len < self.config.segment_bytes || self.active_len == 0 {
            return Ok(());
        }
        if self.unsynced {
            self.sync()?;
        }
        let path = segment_path(&self.shared.dir, self.next);
        let file = self.storage.create(&path, false)?;
        self.storage.sync_dir(&self.shared.dir)?;
        self.file = file;
        self.active_base = self.next;
        self.active_len = 0;
        self.shared.segments.write().push(SegmentInfo {
            base: self.next,
            bytes: 0,
            first_appended: None,
        });
        tracing::debug!(path = %path.display(), "log rolled to a new segment");
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let started = Instant::now();
        self.file.sync_data()?;
        self.metrics
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
        self.last_sync = Instant::now();
        self.unsynced = false;
        Ok(())
    }

    fn final_sync(&mut self) -> Result<(), LogError> {
        if !self.unsynced || self.failed.is_some() {
            return Ok(());
        }
        let path = segment_path(&self.shared.dir, self.active_base);
        self.sync().map_err(|e| LogError::io(&path, e))
    }

    fn fail(&mut self, reason: String) {
        tracing::error!(
            topic = %self.shared.topic,
            partition = self.shared.index,
            reason = %reason,
            "log partition refuses appends until the log is reopened"
        );
        self.failed.get_or_insert(reason);
        // Nothing is synced any more: the state of the file is for recovery to judge.
        self.unsynced = false;
    }
}
