//! Consumers: sequential, buffered reads of durable frames, fair across partitions.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ingot_core::Timestamp;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::group::Group;
use super::segment::{FrameReader, Read, segment_path};
use super::storage::Storage;
use super::writer::PartitionShared;
use super::{Inner, Topic};
use crate::{Consumer, Delivered, LogError, Position};

/// How much a consumer reads from a segment at once.
const CHUNK: usize = 256 << 10;

/// A consumer of one topic as one group; see the module docs of [`super`].
pub(crate) struct FileConsumer {
    inner: Arc<Inner>,
    topic: Arc<Topic>,
    group: Arc<Group>,
    /// Shared with the blocking task of an in-flight poll, so a cancelled poll loses nothing.
    cursors: Arc<Mutex<Cursors>>,
    changes: watch::Receiver<()>,
}

impl fmt::Debug for FileConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileConsumer")
            .field("topic", &self.topic.name)
            .field("group", &self.group.name)
            .finish()
    }
}

impl FileConsumer {
    /// A consumer starting at the group's committed offsets (or the oldest retained ones).
    pub(crate) fn new(inner: Arc<Inner>, topic: Arc<Topic>, group: Arc<Group>) -> FileConsumer {
        let parts = topic
            .partitions
            .iter()
            .zip(group.committed())
            .map(|(p, committed)| PartCursor::at(committed.max(p.shared.oldest())))
            .collect();
        let cursors = Cursors {
            storage: inner.storage.clone(),
            topic: topic.clone(),
            parts,
            rr: 0,
            deferred: None,
            ready: Vec::new(),
        };
        let changes = topic.changed.subscribe();
        FileConsumer {
            inner,
            topic,
            group,
            cursors: Arc::new(Mutex::new(cursors)),
            changes,
        }
    }

    fn check_open(&self) -> Result<(), LogError> {
        if self.inner.is_closed() {
            Err(LogError::Closed)
        } else {
            Ok(())
        }
    }

    /// Reads on the blocking pool. The messages go through `Cursors::ready`, so a poll
    /// cancelled while its read runs loses nothing: the next poll hands them out.
    async fn read(&self, max: usize) -> Result<Vec<Delivered>, LogError> {
        if let Some(ready) = self.cursors.lock().take_ready(max) {
            return Ok(ready);
        }
        let cursors = self.cursors.clone();
        tokio::task::spawn_blocking(move || {
            let mut cursors = cursors.lock();
            let batch = cursors.read(max)?;
            cursors.ready.extend(batch);
            Ok::<_, LogError>(())
        })
        .await
        .map_err(|e| LogError::Unavailable(format!("log read task failed: {e}")))??;
        Ok(self.cursors.lock().take_ready(max).unwrap_or_default())
    }
}

#[async_trait]
impl Consumer for FileConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError> {
        self.check_open()?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Mark what we have seen before reading, so a publication during the read wakes us.
            self.changes.borrow_and_update();
            let batch = self.read(max).await?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            match tokio::time::timeout_at(deadline, self.changes.changed()).await {
                Err(_elapsed) => return Ok(batch),
                Ok(Err(_)) => return Err(LogError::Closed),
                Ok(Ok(())) => self.check_open()?,
            }
        }
    }

    async fn commit(&mut self, processed: &[Position]) -> Result<(), LogError> {
        self.check_open()?;
        let mut targets = vec![None; self.topic.partitions.len()];
        for position in processed {
            let Some(partition) = self.topic.partitions.get(position.partition as usize) else {
                return Err(LogError::Invalid(format!(
                    "commit names partition {} but topic {} has {}",
                    position.partition,
                    self.topic.name,
                    self.topic.partitions.len()
                )));
            };
            let end = partition.shared.end();
            if position.offset >= end {
                return Err(LogError::Invalid(format!(
                    "commit of {position} in topic {} is beyond the end {end} of the partition",
                    self.topic.name
                )));
            }
            let slot: &mut Option<u64> = &mut targets[position.partition as usize];
            *slot = Some(slot.unwrap_or(0).max(position.offset + 1));
        }
        let (group, storage) = (self.group.clone(), self.inner.storage.clone());
        tokio::task::spawn_blocking(move || group.commit(storage.as_ref(), &targets))
            .await
            .map_err(|e| LogError::Unavailable(format!("log commit task failed: {e}")))?
    }

    async fn seek(&mut self, partition: u32, offset: u64) -> Result<(), LogError> {
        self.check_open()?;
        let Some(p) = self.topic.partitions.get(partition as usize) else {
            return Err(LogError::Invalid(format!(
                "seek to partition {partition} but topic {} has {}",
                self.topic.name,
                self.topic.partitions.len()
            )));
        };
        let end = p.shared.end();
        if offset > end {
            return Err(LogError::Invalid(format!(
                "seek to {partition}@{offset} in topic {} is beyond the end {end} of the partition",
                self.topic.name
            )));
        }
        let offset = offset.max(p.shared.oldest());
        let mut cursors = self.cursors.lock();
        cursors.parts[partition as usize] = PartCursor::at(offset);
        cursors.ready.retain(|d| d.position.partition != partition);
        Ok(())
    }
}

/// The read state of a consumer.
#[derive(Debug)]
struct Cursors {
    storage: Arc<dyn Storage>,
    topic: Arc<Topic>,
    parts: Vec<PartCursor>,
    /// The partition served first by the next poll.
    rr: usize,
    /// An error met after other messages were already taken, returned by the next poll.
    deferred: Option<LogError>,
    /// Messages read but not yet returned by a poll.
    ready: Vec<Delivered>,
}

#[derive(Debug)]
struct PartCursor {
    /// The next offset to hand out.
    next: u64,
    segment: Option<OpenSegment>,
    /// Messages of a frame already read, not yet handed out; the first is at `next`.
    pending: VecDeque<Delivered>,
}

impl PartCursor {
    fn at(next: u64) -> PartCursor {
        PartCursor {
            next,
            segment: None,
            pending: VecDeque::new(),
        }
    }
}

#[derive(Debug)]
struct OpenSegment {
    base: u64,
    path: PathBuf,
    reader: FrameReader,
    /// The offset the next frame of this segment must start at.
    frame_next: u64,
}

impl Cursors {
    /// Up to `max` of the messages read earlier, if there are any.
    fn take_ready(&mut self, max: usize) -> Option<Vec<Delivered>> {
        if self.ready.is_empty() {
            return None;
        }
        if self.ready.len() <= max {
            return Some(std::mem::take(&mut self.ready));
        }
        Some(self.ready.drain(..max).collect())
    }

    /// Up to `max` messages, taking turns across partitions.
    fn read(&mut self, max: usize) -> Result<Vec<Delivered>, LogError> {
        if let Some(error) = self.deferred.take() {
            return Err(error);
        }
        let n = self.parts.len();
        let mut out = Vec::with_capacity(max.min(4096));
        let mut exhausted = vec![false; n];
        'rounds: while out.len() < max {
            let live = exhausted.iter().filter(|done| !**done).count();
            if live == 0 {
                break;
            }
            let quota = ((max - out.len()) / live).max(1);
            for k in 0..n {
                let p = (self.rr + k) % n;
                if exhausted[p] {
                    continue;
                }
                if out.len() >= max {
                    break 'rounds;
                }
                let want = quota.min(max - out.len());
                match self.read_partition(p, want, &mut out) {
                    Ok(got) if got < want => exhausted[p] = true,
                    Ok(_) => {}
                    Err(error) if out.is_empty() => return Err(error),
                    Err(error) => {
                        // Hand out what was read; the error comes with the next poll.
                        self.deferred = Some(error);
                        break 'rounds;
                    }
                }
            }
        }
        self.rr = (self.rr + 1) % n.max(1);
        Ok(out)
    }

    /// Moves up to `want` messages of partition `p` into `out`; returns how many.
    fn read_partition(
        &mut self,
        p: usize,
        want: usize,
        out: &mut Vec<Delivered>,
    ) -> Result<usize, LogError> {
        let shared = self.topic.partitions[p].shared.clone();
        let mut got = 0;
        while got < want {
            let cursor = &mut self.parts[p];
            if let Some(message) = cursor.pending.pop_front() {
                cursor.next = message.position.offset + 1;
                out.push(message);
                got += 1;
                continue;
            }
            let end = shared.end();
            if cursor.next >= end {
                break;
            }
            let Some(segment) = cursor.segment.as_mut() else {
                let segment = open_segment_for(self.storage.as_ref(), &shared, &mut cursor.next)?;
                cursor.segment = Some(segment);
                continue;
            };
            let read = segment
                .reader
                .next_frame(cursor.next, end)
                .map_err(|e| LogError::io(&segment.path, e))?;
            match read {
                Read::Frame(frame) => {
                    let at = segment.reader.pos() - frame.size();
                    if frame.base != segment.frame_next || frame.base > cursor.next {
                        let reason = format!(
                            "frame holds offset {} where {} was expected (reading from {})",
                            frame.base, segment.frame_next, cursor.next
                        );
                        return Err(LogError::corrupt(&segment.path, at, reason));
                    }
                    segment.frame_next = frame.end();
                    let appended = Timestamp::from_micros(frame.appended_micros);
                    for (offset, payload) in (frame.base..).zip(frame.messages()) {
                        if offset >= cursor.next {
                            let position = Position {
                                partition: p as u32,
                                offset,
                            };
                            cursor.pending.push_back(Delivered {
                                position,
                                appended,
                                payload,
                            });
                        }
                    }
                }
                Read::End => {
                    let (base, reached) = (segment.base, segment.frame_next);
                    let following = shared
                        .segments
                        .read()
                        .iter()
                        .find(|s| s.base > base)
                        .map(|s| s.base);
                    cursor.segment = None;
                    match following {
                        Some(next_base) if next_base == reached => {
                            let path = segment_path(&shared.dir, next_base);
                            let file = self
                                .storage
                                .open(&path, false)
                                .map_err(|e| LogError::io(&path, e))?;
                            let reader = FrameReader::new(file, CHUNK);
                            cursor.segment = Some(OpenSegment {
                                base: next_base,
                                path,
                                reader,
                                frame_next: next_base,
                            });
                        }
                        // Retention removed what comes next; reopening finds the oldest.
                        _ if cursor.next < shared.oldest() => {}
                        Some(next_base) => {
                            let path = segment_path(&shared.dir, base);
                            let reason = format!(
                                "segment ends at offset {reached} but the next one starts at {next_base}"
                            );
                            return Err(LogError::corrupt(&path, 0, reason));
                        }
                        None => {
                            let path = segment_path(&shared.dir, base);
                            let reason = format!(
                                "segment ends at offset {reached}, before the durable end {end}"
                            );
                            return Err(LogError::corrupt(&path, 0, reason));
                        }
                    }
                }
                Read::Invalid(reason) => {
                    return Err(LogError::corrupt(
                        &segment.path,
                        segment.reader.pos(),
                        reason,
                    ));
                }
            }
        }
        Ok(got)
    }
}

/// Opens the segment holding `next`; when retention already deleted it, warns and moves
/// `next` to the oldest offset left.
fn open_segment_for(
    storage: &dyn Storage,
    shared: &PartitionShared,
    next: &mut u64,
) -> Result<OpenSegment, LogError> {
    // A file can vanish between the lookup and the open; the list is updated before the
    // file is removed, so the second lookup sees it.
    for _ in 0..3 {
        let (base, oldest) = {
            let segments = shared.segments.read();
            let oldest = segments.first().map_or(0, |s| s.base);
            (
                segments
                    .iter()
                    .rev()
                    .find(|s| s.base <= *next)
                    .map(|s| s.base),
                oldest,
            )
        };
        let Some(base) = base.filter(|_| *next >= oldest) else {
            tracing::warn!(
                topic = %shared.topic,
                partition = shared.index,
                from = *next,
                to = oldest,
                "retention deleted messages before this consumer read them; skipping to the oldest retained offset"
            );
            *next = oldest;
            continue;
        };
        let path = segment_path(&shared.dir, base);
        match storage.open(&path, false) {
            Ok(file) => {
                return Ok(OpenSegment {
                    base,
                    path,
                    reader: FrameReader::new(file, CHUNK),
                    frame_next: base,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(LogError::io(&path, e)),
        }
    }
    Err(LogError::Unavailable(format!(
        "the segment holding {}@{next} of topic {} keeps disappearing",
        shared.index, shared.topic
    )))
}
