//! Consumer group offsets: `<topic>/groups/<group>.offsets`.
//!
//! ```text
//! b"IGOF" | u32 LE version (1) | u32 LE partitions | partitions × u64 LE next offset | u32 LE crc32c
//! ```
//!
//! The checksum covers everything before it. A commit writes `<group>.offsets.tmp`, syncs it,
//! renames it over the old file and syncs the directory, so the file is always either the
//! previous or the new commit, never a mix.

use std::path::{Path, PathBuf};

use bytes::Buf;
use parking_lot::Mutex;

use super::storage::{Storage, read_up_to};
use crate::LogError;

const MAGIC: &[u8; 4] = b"IGOF";
const VERSION: u32 = 1;
/// More than any group file we write (1000 partitions).
const MAX_FILE: usize = 16 + 8 * 1000;

/// One consumer group of one topic.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) name: String,
    dir: PathBuf,
    /// Next offset per partition, as durably committed.
    committed: Mutex<Vec<u64>>,
    /// Serialises commits, so the file only moves forward.
    writing: Mutex<()>,
}

impl Group {
    /// A group never committed: every partition at 0.
    pub(crate) fn new(dir: &Path, name: &str, partitions: u32) -> Group {
        Group::with_offsets(dir, name, vec![0; partitions as usize])
    }

    fn with_offsets(dir: &Path, name: &str, offsets: Vec<u64>) -> Group {
        Group {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            committed: Mutex::new(offsets),
            writing: Mutex::new(()),
        }
    }

    /// Reads `<dir>/<name>.offsets`.
    pub(crate) fn load(
        storage: &dyn Storage,
        dir: &Path,
        name: &str,
        partitions: u32,
    ) -> Result<Group, LogError> {
        let path = file_path(dir, name);
        let file = storage
            .open(&path, false)
            .map_err(|e| LogError::io(&path, e))?;
        let mut buf = vec![0u8; MAX_FILE + 1];
        let len = read_up_to(file.as_ref(), &mut buf, 0).map_err(|e| LogError::io(&path, e))?;
        let offsets = decode(&buf[..len]).map_err(|reason| LogError::corrupt(&path, 0, reason))?;
        if offsets.len() != partitions as usize {
            let reason = format!(
                "holds {} partitions, the topic has {partitions}",
                offsets.len()
            );
            return Err(LogError::corrupt(&path, 0, reason));
        }
        Ok(Group::with_offsets(dir, name, offsets))
    }

    /// The committed next offset per partition.
    pub(crate) fn committed(&self) -> Vec<u64> {
        self.committed.lock().clone()
    }

    /// Raises the committed offsets to `targets` (never lowering any) and writes the file
    /// durably before the new offsets become visible.
    pub(crate) fn commit(
        &self,
        storage: &dyn Storage,
        targets: &[Option<u64>],
    ) -> Result<(), LogError> {
        let _writing = self.writing.lock();
        let current = self.committed();
        let mut next = current.clone();
        for (slot, target) in next.iter_mut().zip(targets) {
            if let Some(target) = *target {
                *slot = (*slot).max(target);
            }
        }
        if next == current {
            return Ok(());
        }
        self.write(storage, &next)?;
        *self.committed.lock() = next;
        Ok(())
    }

    /// Writes the file with the current offsets (registers a new group on disk).
    pub(crate) fn persist(&self, storage: &dyn Storage) -> Result<(), LogError> {
        let _writing = self.writing.lock();
        self.write(storage, &self.committed())
    }

    fn write(&self, storage: &dyn Storage, offsets: &[u64]) -> Result<(), LogError> {
        let path = file_path(&self.dir, &self.name);
        let tmp = path.with_extension("offsets.tmp");
        let mut file = storage
            .create(&tmp, true)
            .map_err(|e| LogError::io(&tmp, e))?;
        file.append(&encode(offsets))
            .map_err(|e| LogError::io(&tmp, e))?;
        file.sync_data().map_err(|e| LogError::io(&tmp, e))?;
        drop(file);
        storage
            .rename(&tmp, &path)
            .map_err(|e| LogError::io(&path, e))?;
        storage
            .sync_dir(&self.dir)
            .map_err(|e| LogError::io(&self.dir, e))
    }
}

/// `<dir>/<group>.offsets`.
pub(crate) fn file_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.offsets"))
}

fn encode(offsets: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 8 * offsets.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
    for offset in offsets {
        out.extend_from_slice(&offset.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(data: &[u8]) -> Result<Vec<u64>, &'static str> {
    if data.len() < 16 || &data[..4] != MAGIC {
        return Err("not a group offsets file");
    }
    let (body, mut crc) = data.split_at(data.len() - 4);
    if crc32c::crc32c(body) != crc.get_u32_le() {
        return Err("checksum mismatch");
    }
    let mut rest = &body[4..];
    if rest.get_u32_le() != VERSION {
        return Err("unknown group offsets version");
    }
    let count = rest.get_u32_le() as usize;
    if rest.len() != count * 8 {
        return Err("length does not match the partition count");
    }
    Ok((0..count).map(|_| rest.get_u64_le()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_round_trip_and_damage() {
        let data = encode(&[0, 7, u64::MAX]);
        assert_eq!(decode(&data), Ok(vec![0, 7, u64::MAX]));
        for byte in 0..data.len() {
            let mut bad = data.clone();
            bad[byte] ^= 1;
            assert!(decode(&bad).is_err(), "flip at {byte}");
        }
        assert!(decode(&data[..data.len() - 1]).is_err());
        assert!(decode(b"").is_err());
    }
}
