//! Ingot's durable log: topics of partitions of ordered messages.
//!
//! Ingest appends every accepted event here and acknowledges the device only once the
//! append is durable; the store writer (and later functions) consume from here. The
//! [`Log`] trait is what callers see, so that the embedded segment-file backend
//! ([`file::FileLog`]) and a NATS JetStream backend are interchangeable:
//!
//! - **Append** a batch of messages to the partition chosen by a key (tenant and device),
//!   as one atomic unit: after a crash either the whole batch is there or none of it. The
//!   call returns the batch's offsets once the batch is durable under the log's sync policy.
//! - **Consume** as a named group from the group's committed position, with at-least-once
//!   delivery: messages after the last commit are delivered again after a restart. Offsets
//!   are per partition, dense and increasing; messages of one key keep their order.
//!
//! Every backend passes the suite in [`conformance`] (feature `testing`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use ingot_core::Timestamp;

#[cfg(feature = "testing")]
pub mod conformance;
mod error;
pub mod file;
mod metrics;

pub use error::LogError;
pub use metrics::LogMetrics;

/// Where a message is: its partition and its offset in that partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Partition number, `0..partitions`.
    pub partition: u32,
    /// Offset within the partition, starting at 0.
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.partition, self.offset)
    }
}

/// What a durable append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendAck {
    /// The partition the batch went to.
    pub partition: u32,
    /// The offset of the batch's first message; the others follow densely.
    pub first_offset: u64,
    /// How many messages the batch held.
    pub count: u32,
}

/// A message handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Where it is in the log.
    pub position: Position,
    /// When the log appended it.
    pub appended: Timestamp,
    /// The bytes as appended.
    pub payload: Bytes,
}

/// A durable, partitioned, ordered log.
#[async_trait]
pub trait Log: Send + Sync + fmt::Debug + 'static {
    /// Appends `messages` as one atomic batch to the partition of `key` in `topic`
    /// (created on first use), returning once the batch is durable under the sync policy.
    ///
    /// An empty batch is an error. Appends of one key are delivered in call order.
    async fn append(
        &self,
        topic: &str,
        key: &[u8],
        messages: Vec<Bytes>,
    ) -> Result<AppendAck, LogError>;

    /// Number of partitions of every topic of this log.
    fn partitions(&self) -> u32;

    /// For each partition of `topic`, the offset one past its last durable message.
    async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, LogError>;

    /// For each partition of `topic`, the next offset `group` will read (0 if it never
    /// committed).
    async fn committed(&self, topic: &str, group: &str) -> Result<Vec<u64>, LogError>;

    /// A consumer reading `topic` as `group`, from the group's committed offsets.
    async fn consumer(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, LogError>;

    /// Whether the engine keeps each group's position and shares a group's messages among
    /// its consumers, in this process and in others (NATS JetStream: `true`). A consumer of
    /// such a log resumes from the group's committed position, and several processes may
    /// consume one group at once, each getting a share of the messages. It must then not
    /// [`Consumer::seek`] to a position it keeps elsewhere: a seek re-positions the whole
    /// group. The embedded log answers `false`: a group has one consumer at a time, and a
    /// seek moves only that consumer.
    fn shared_groups(&self) -> bool {
        false
    }

    /// Makes everything appended so far durable and stops background work. Appends after
    /// `close` fail with [`LogError::Closed`].
    async fn close(&self) -> Result<(), LogError>;
}

/// One group member's view of a topic.
#[async_trait]
pub trait Consumer: Send + fmt::Debug {
    /// Up to `max` messages after this consumer's position, in offset order within each
    /// partition. Waits up to `wait` when none are available yet, then returns an empty batch.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError>;

    /// Durably records that every message up to and including each of `processed` (in its
    /// partition) is done: the group resumes after them.
    async fn commit(&mut self, processed: &[Position]) -> Result<(), LogError>;

    /// Moves this consumer to `offset` in `partition`: the next poll starts there. Used by
    /// consumers that keep their own position (the store writer keeps it in the store).
    async fn seek(&mut self, partition: u32, offset: u64) -> Result<(), LogError>;
}

/// Checks a topic or group name: `[a-z0-9._-]{1,64}`, not starting with a dot. Every
/// backend accepts exactly these names (they become directory names, stream names...).
pub fn validate_name(what: &str, name: &str) -> Result<(), LogError> {
    let allowed =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-');
    if name.is_empty() || name.len() > 64 || !name.bytes().all(allowed) || name.starts_with('.') {
        return Err(LogError::Invalid(format!(
            "{what} name {name:?} must be 1 to 64 of a-z, 0-9, '.', '_', '-', not starting with '.'"
        )));
    }
    Ok(())
}

/// The partition of `key`: FNV-1a, stable across versions because it decides where
/// data already on disk lives.
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(partitions.max(1))) as u32
}

/// How appends are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` after every group commit, before any of its appends returns (default):
    /// an acknowledged append survives power loss.
    PerBatch,
    /// Appends return once written to the OS; `fdatasync` runs every interval. Survives a
    /// process crash; a power loss may lose up to one interval.
    Interval(Duration),
    /// Never sync (tests and benchmarks of everything else). Survives a process crash only.
    Never,
}

#[cfg(test)]
mod tests {
    use super::partition_for;

    #[test]
    fn partitioning_is_stable() {
        // These values pin the on-disk layout: changing the hash would move devices.
        assert_eq!(partition_for(b"", 4), (0xcbf2_9ce4_8422_2325u64 % 4) as u32);
        assert_eq!(partition_for(b"1/probe-7", 1), 0);
        let spread: std::collections::HashSet<u32> = (0..100)
            .map(|i| partition_for(format!("1/dev-{i}").as_bytes(), 4))
            .collect();
        assert_eq!(spread.len(), 4);
    }
}
