//! The frame: one `append` call on disk, the unit of atomicity and checksum.
//!
//! ```text
//! u32 LE  len              bytes after the crc field (frame size = 8 + len)
//! u32 LE  crc              CRC-32C (Castagnoli) of those `len` bytes
//! u64 LE  base_offset      offset of the frame's first message in its partition
//! u32 LE  count            messages in the frame, at least 1
//! i64 LE  appended_micros  when the log appended it (µs since the Unix epoch)
//! count × (u32 LE len, len bytes)
//! ```
//!
//! A frame is valid when `len` is within [`MIN_LEN`]..=[`MAX_FRAME_BYTES`]` - 8`, the whole
//! frame is present, the checksum matches, `count >= 1` and the message table fills the frame
//! exactly. Anything else is torn (at the tail of the active segment) or corrupt (anywhere
//! else); the caller decides which.

use bytes::{Buf, Bytes};

/// Bytes before the checksummed part: `len` and `crc`.
pub(crate) const PREFIX_LEN: usize = 8;
/// The fixed header: `len`, `crc`, `base_offset`, `count`, `appended_micros`.
pub(crate) const HEADER_LEN: usize = PREFIX_LEN + 8 + 4 + 8;
/// The smallest valid `len`: the rest of the header and one empty message.
pub(crate) const MIN_LEN: usize = HEADER_LEN - PREFIX_LEN + 4;
/// The largest frame, header included: one append may not exceed it.
pub(crate) const MAX_FRAME_BYTES: usize = 64 << 20;

/// The encoded size of a frame holding `messages`.
pub(crate) fn encoded_len(messages: &[Bytes]) -> usize {
    HEADER_LEN + messages.iter().map(|m| 4 + m.len()).sum::<usize>()
}

/// Appends the frame of `messages` to `out`.
///
/// # Panics
///
/// If the frame exceeds [`MAX_FRAME_BYTES`] or `messages` is empty: callers check both
/// before a request reaches the writer.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    base_offset: u64,
    appended_micros: i64,
    messages: &[Bytes],
) {
    assert!(!messages.is_empty(), "an empty frame reached the writer");
    let start = out.len();
    out.reserve(encoded_len(messages));
    out.extend_from_slice(&[0; PREFIX_LEN]);
    out.extend_from_slice(&base_offset.to_le_bytes());
    out.extend_from_slice(&(messages.len() as u32).to_le_bytes());
    out.extend_from_slice(&appended_micros.to_le_bytes());
    for message in messages {
        out.extend_from_slice(&(message.len() as u32).to_le_bytes());
        out.extend_from_slice(message);
    }
    let len = out.len() - start - PREFIX_LEN;
    assert!(
        len + PREFIX_LEN <= MAX_FRAME_BYTES,
        "an oversized frame reached the writer"
    );
    let crc = crc32c::crc32c(&out[start + PREFIX_LEN..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The `len` field of a frame starting with `prefix`, if it is within bounds.
pub(crate) fn checked_len(prefix: &[u8]) -> Result<usize, &'static str> {
    let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len < MIN_LEN {
        Err(if len == 0 {
            "zero length (a zero-filled tail)"
        } else {
            "length below the minimum"
        })
    } else if len > MAX_FRAME_BYTES - PREFIX_LEN {
        Err("length above the frame limit")
    } else {
        Ok(len)
    }
}

/// `base_offset` and `appended_micros` of a frame header, unchecked.
pub(crate) fn peek_header(head: &[u8; HEADER_LEN]) -> (u64, i64) {
    let mut rest = &head[PREFIX_LEN..];
    let base = rest.get_u64_le();
    rest.advance(4);
    (base, rest.get_i64_le())
}

/// A checked frame.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// Offset of the first message.
    pub(crate) base: u64,
    /// Number of messages.
    pub(crate) count: u32,
    /// When it was appended, µs since the epoch.
    pub(crate) appended_micros: i64,
    /// The whole frame, header included.
    data: Bytes,
}

impl Frame {
    /// Checks `data`, exactly one whole frame (as sized by [`checked_len`]).
    pub(crate) fn check(data: Bytes) -> Result<Frame, &'static str> {
        debug_assert!(data.len() >= HEADER_LEN);
        let mut head = &data[..HEADER_LEN];
        let len = head.get_u32_le() as usize;
        let crc = head.get_u32_le();
        if len + PREFIX_LEN != data.len() {
            return Err("length does not match the frame");
        }
        if crc32c::crc32c(&data[PREFIX_LEN..]) != crc {
            return Err("checksum mismatch");
        }
        let base = head.get_u64_le();
        let count = head.get_u32_le();
        let appended_micros = head.get_i64_le();
        if count == 0 {
            return Err("frame without messages");
        }
        let mut table = &data[HEADER_LEN..];
        for _ in 0..count {
            if table.len() < 4 {
                return Err("message table overruns the frame");
            }
            let n = table.get_u32_le() as usize;
            if table.len() < n {
                return Err("message overruns the frame");
            }
            table.advance(n);
        }
        if !table.is_empty() {
            return Err("bytes after the last message");
        }
        Ok(Frame {
            base,
            count,
            appended_micros,
            data,
        })
    }

    /// The offset after the frame's last message.
    pub(crate) fn end(&self) -> u64 {
        self.base + u64::from(self.count)
    }

    /// The frame's size on disk.
    pub(crate) fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// The messages, in order, sharing the frame's buffer.
    pub(crate) fn messages(&self) -> impl Iterator<Item = Bytes> + '_ {
        let mut at = HEADER_LEN;
        (0..self.count).map(move |_| {
            // `check` proved the table fits.
            let n = u32::from_le_bytes([
                self.data[at],
                self.data[at + 1],
                self.data[at + 2],
                self.data[at + 3],
            ]) as usize;
            let message = self.data.slice(at + 4..at + 4 + n);
            at += 4 + n;
            message
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(messages: &[&[u8]]) -> Vec<u8> {
        let messages: Vec<Bytes> = messages.iter().map(|m| Bytes::copy_from_slice(m)).collect();
        let mut out = Vec::new();
        encode(&mut out, 42, 1_700_000_000_000_000, &messages);
        assert_eq!(out.len(), encoded_len(&messages));
        out
    }

    #[test]
    fn round_trip() {
        let data = frame(&[b"one", b"", b"three"]);
        assert_eq!(checked_len(&data[..4]), Ok(data.len() - PREFIX_LEN));
        let f = Frame::check(Bytes::from(data)).unwrap();
        assert_eq!((f.base, f.count, f.end()), (42, 3, 45));
        assert_eq!(f.appended_micros, 1_700_000_000_000_000);
        let got: Vec<Bytes> = f.messages().collect();
        assert_eq!(got, vec![&b"one"[..], b"", b"three"]);
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let data = frame(&[b"hello", b"world"]);
        for byte in PREFIX_LEN..data.len() {
            let mut bad = data.clone();
            bad[byte] ^= 0x10;
            assert!(
                Frame::check(Bytes::from(bad)).is_err(),
                "flip at byte {byte}"
            );
        }
    }

    #[test]
    fn lengths_are_bounded() {
        assert_eq!(
            checked_len(&[0; 4]),
            Err("zero length (a zero-filled tail)")
        );
        assert_eq!(
            checked_len(&3u32.to_le_bytes()),
            Err("length below the minimum")
        );
        assert_eq!(
            checked_len(&u32::MAX.to_le_bytes()),
            Err("length above the frame limit")
        );
        assert_eq!(checked_len(&(MIN_LEN as u32).to_le_bytes()), Ok(MIN_LEN));
    }

    #[test]
    fn inconsistent_tables_are_refused() {
        // A valid checksum over a table that does not add up: count says 2, one message.
        let mut data = frame(&[b"abc"]);
        data[PREFIX_LEN + 8..PREFIX_LEN + 12].copy_from_slice(&2u32.to_le_bytes());
        let crc = crc32c::crc32c(&data[PREFIX_LEN..]);
        data[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            Frame::check(Bytes::from(data)).unwrap_err(),
            "message table overruns the frame"
        );
    }
}
