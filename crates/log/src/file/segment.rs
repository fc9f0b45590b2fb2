//! Segment files: naming, buffered frame reading, and recovery of a partition on open.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::frame::{self, Frame, HEADER_LEN, PREFIX_LEN};
use super::storage::{Storage, StorageFile, read_up_to};
use crate::LogError;

/// What the log knows about one segment without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    /// Offset of its first message (also its file name).
    pub(crate) base: u64,
    /// Its size in bytes.
    pub(crate) bytes: u64,
    /// When its first frame was appended (µs), if it has one. Appended times never decrease
    /// within a partition, so the next segment's value bounds this segment's newest frame.
    pub(crate) first_appended: Option<i64>,
}

/// `00000000000000001234.log`.
pub(crate) fn segment_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The base offset in a segment file name, if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// What [`FrameReader::next_frame`] found.
#[derive(Debug)]
pub(crate) enum Read {
    /// A valid frame.
    Frame(Frame),
    /// The file ends exactly here.
    End,
    /// Bytes that are not a valid frame: torn at the tail of the active segment on recovery,
    /// corrupt anywhere else.
    Invalid(&'static str),
}

/// Reads a segment frame by frame through a buffer of whole chunks. Frames are handed out
/// as slices of the chunk, so messages reach consumers without a copy.
#[derive(Debug)]
pub(crate) struct FrameReader {
    file: Box<dyn StorageFile>,
    /// File position of the next frame.
    pos: u64,
    chunk: Bytes,
    chunk_start: u64,
    chunk_size: usize,
    /// Frames with a base offset below this were complete when `chunk` was read; anything
    /// later in the chunk may be a write that was still in progress.
    trusted_below: u64,
}

impl FrameReader {
    pub(crate) fn new(file: Box<dyn StorageFile>, chunk_size: usize) -> FrameReader {
        FrameReader {
            file,
            pos: 0,
            chunk: Bytes::new(),
            chunk_start: 0,
            chunk_size,
            trusted_below: 0,
        }
    }

    /// File position of the next frame.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Gives the file back (recovery goes on appending to it).
    pub(crate) fn into_file(self) -> Box<dyn StorageFile> {
        self.file
    }

    /// Reads the frame at the current position. `next` is the lowest offset the caller still
    /// wants and `end` the partition's durable end read before this call: when `next` is at
    /// or past what the buffer can be trusted for, the buffer is dropped and read again, so a
    /// reader never parses bytes of a write that was in progress when they were buffered.
    pub(crate) fn next_frame(&mut self, next: u64, end: u64) -> io::Result<Read> {
        if next >= self.trusted_below {
            self.chunk = Bytes::new();
            self.chunk_start = self.pos;
        }
        let available = self.fill(HEADER_LEN, end)?;
        if available == 0 {
            return Ok(Read::End);
        }
        if available < HEADER_LEN {
            return Ok(Read::Invalid("incomplete frame header"));
        }
        let at = (self.pos - self.chunk_start) as usize;
        let len = match frame::checked_len(&self.chunk[at..at + 4]) {
            Ok(len) => len,
            Err(reason) => return Ok(Read::Invalid(reason)),
        };
        let size = PREFIX_LEN + len;
        if self.fill(size, end)? < size {
            return Ok(Read::Invalid("frame extends past the end of the file"));
        }
        let at = (self.pos - self.chunk_start) as usize;
        match Frame::check(self.chunk.slice(at..at + size)) {
            Ok(frame) => {
                self.pos += size as u64;
                Ok(Read::Frame(frame))
            }
            Err(reason) => Ok(Read::Invalid(reason)),
        }
    }

    /// Makes at least `need` bytes from `pos` buffered if the file has them; returns how many
    /// are buffered from `pos`.
    fn fill(&mut self, need: usize, end: u64) -> io::Result<usize> {
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        let have = if self.chunk_start <= self.pos && self.pos <= chunk_end {
            (chunk_end - self.pos) as usize
        } else {
            0
        };
        if have >= need {
            return Ok(have);
        }
        let mut buf = vec![0u8; need.max(self.chunk_size)];
        if have > 0 {
            // Only ever part of the current frame, which was complete when it was read.
            let at = (self.pos - self.chunk_start) as usize;
            buf[..have].copy_from_slice(&self.chunk[at..]);
        }
        let read = read_up_to(self.file.as_ref(), &mut buf[have..], self.pos + have as u64)?;
        buf.truncate(have + read);
        self.chunk = Bytes::from(buf);
        self.chunk_start = self.pos;
        self.trusted_below = end;
        Ok(have + read)
    }
}

/// A partition as found on disk, ready for its writer.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Every segment, oldest first; the last is the active one.
    pub(crate) segments: Vec<SegmentInfo>,
    /// The offset after the last valid message.
    pub(crate) end: u64,
    /// The active segment, open for appending, cut after its last valid frame.
    pub(crate) active: Box<dyn StorageFile>,
    /// When the last frame was appended (µs), 0 if unknown.
    pub(crate) last_appended: i64,
}

/// Recovers the partition in `dir`: checks the header of every closed segment's first frame,
/// scans the active (last) segment completely and cuts it after its last valid frame.
pub(crate) fn recover_partition(storage: &dyn Storage, dir: &Path) -> Result<Recovered, LogError> {
    let mut bases = Vec::new();
    for entry in storage.list(dir).map_err(|e| LogError::io(dir, e))? {
        match parse_segment_name(&entry.name) {
            Some(base) if !entry.is_dir => bases.push(base),
            _ => {
                tracing::warn!(path = %dir.join(&entry.name).display(), "ignoring an unknown file in a log partition")
            }
        }
    }
    bases.sort_unstable();
    let Some((&last, closed)) = bases.split_last() else {
        return Err(LogError::corrupt(
            dir,
            0,
            "partition directory holds no segment file",
        ));
    };
    let mut segments = Vec::with_capacity(bases.len());
    for &base in closed {
        segments.push(check_closed_segment(
            storage,
            &dir.join(segment_name(base)),
            base,
        )?);
    }

    let path = dir.join(segment_name(last));
    let file = storage
        .open(&path, true)
        .map_err(|e| LogError::io(&path, e))?;
    let size = file.len().map_err(|e| LogError::io(&path, e))?;
    let mut reader = FrameReader::new(file, 1 << 20);
    let (mut end, mut first_appended, mut last_appended) = (last, None, 0);
    let torn = loop {
        match reader
            .next_frame(end, u64::MAX)
            .map_err(|e| LogError::io(&path, e))?
        {
            Read::Frame(frame) if frame.base == end => {
                first_appended.get_or_insert(frame.appended_micros);
                last_appended = frame.appended_micros;
                end = frame.end();
            }
            Read::Frame(frame) => {
                // A valid checksum at the wrong offset is no torn write.
                let reason = format!("frame holds offset {} where {end} was expected", frame.base);
                return Err(LogError::corrupt(
                    &path,
                    reader.pos() - frame.size(),
                    reason,
                ));
            }
            Read::End => break None,
            Read::Invalid(reason) => break Some(reason),
        }
    };
    let valid = reader.pos();
    let mut active = reader.into_file();
    if let Some(reason) = torn {
        tracing::warn!(
            path = %path.display(),
            at = valid,
            cut_bytes = size - valid,
            reason,
            "cutting a torn tail off the log: an append that was never acknowledged"
        );
        active.truncate(valid).map_err(|e| LogError::io(&path, e))?;
        active.sync_data().map_err(|e| LogError::io(&path, e))?;
    }
    segments.push(SegmentInfo {
        base: last,
        bytes: valid,
        first_appended,
    });
    Ok(Recovered {
        segments,
        end,
        active,
        last_appended,
    })
}

/// Checks a closed segment cheaply: its first frame header names its base offset.
fn check_closed_segment(
    storage: &dyn Storage,
    path: &Path,
    base: u64,
) -> Result<SegmentInfo, LogError> {
    let file = storage
        .open(path, false)
        .map_err(|e| LogError::io(path, e))?;
    let bytes = file.len().map_err(|e| LogError::io(path, e))?;
    let mut head = [0u8; HEADER_LEN];
    let read = read_up_to(file.as_ref(), &mut head, 0).map_err(|e| LogError::io(path, e))?;
    if read < HEADER_LEN {
        return Err(LogError::corrupt(
            path,
            0,
            "a closed segment without a whole frame",
        ));
    }
    frame::checked_len(&head).map_err(|reason| LogError::corrupt(path, 0, reason))?;
    let (first, first_appended) = frame::peek_header(&head);
    if first != base {
        return Err(LogError::corrupt(
            path,
            0,
            format!("first frame holds offset {first}, the name says {base}"),
        ));
    }
    Ok(SegmentInfo {
        base,
        bytes,
        first_appended: Some(first_appended),
    })
}

/// The path of the segment with `base` in partition directory `dir`.
pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(segment_name(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(1234), "00000000000000001234.log");
        assert_eq!(parse_segment_name("00000000000000001234.log"), Some(1234));
        assert_eq!(
            parse_segment_name("18446744073709551615.log"),
            Some(u64::MAX)
        );
        for bad in [
            "1234.log",
            "0000000000000000123x.log",
            "00000000000000001234.tmp",
            "99999999999999999999.log",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }
}
