//! The MQTT data representations (§1.5 of both specifications): big-endian integers,
//! variable byte integers, length-prefixed UTF-8 strings and binary data.
//!
//! [`Reader`] reads them from a packet body without copying binary data (slices of the
//! frame's [`Bytes`]); every read is bounds-checked and reports a truncated packet as
//! [`DecodeError::Malformed`]. [`Out`] writes them either into a [`BytesMut`] or into a
//! [`Counter`] that only adds up lengths, so one body function both sizes and writes a
//! packet and the two can never disagree.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};

/// The largest value a variable byte integer holds (four bytes of seven bits).
pub const MAX_VARINT: u32 = 268_435_455;

/// The longest string or binary field (a two-byte length prefix).
pub const MAX_FIELD: usize = u16::MAX as usize;

const ENDS_EARLY: DecodeError = DecodeError::Malformed("the packet ends in the middle of a field");

/// A cursor over one packet's body.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.buf.is_empty() {
            return Err(ENDS_EARLY);
        }
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        if self.buf.len() < 2 {
            return Err(ENDS_EARLY);
        }
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        if self.buf.len() < 4 {
            return Err(ENDS_EARLY);
        }
        Ok(self.buf.get_u32())
    }

    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let byte = self.u8()?;
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed(
            "a variable byte integer is longer than four bytes",
        ))
    }

    /// `n` bytes, without copying.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.buf.len() < n {
            return Err(ENDS_EARLY);
        }
        Ok(self.buf.split_to(n))
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }

    /// A UTF-8 string: well-formed UTF-8 without U+0000 (MQTT-1.5.4-1, -2).
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let bytes = self.binary()?;
        if bytes.contains(&0) {
            return Err(DecodeError::Malformed("a string contains U+0000"));
        }
        String::from_utf8(bytes.to_vec())
            .map_err(|_| DecodeError::Malformed("a string is not valid UTF-8"))
    }
}

/// How many bytes the variable byte integer `value` takes.
pub(crate) fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Where encoded bytes go: a buffer, or a counter that only measures.
pub(crate) trait Out {
    fn put(&mut self, bytes: &[u8]);

    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    /// A variable byte integer; `v` must be at most [`MAX_VARINT`] (callers check).
    fn varint(&mut self, v: u32) {
        let mut v = v.min(MAX_VARINT);
        let mut bytes = [0u8; 4];
        let mut n = 0;
        for slot in bytes.iter_mut() {
            let mut byte = (v & 0x7F) as u8;
            v >>= 7;
            if v > 0 {
                byte |= 0x80;
            }
            *slot = byte;
            n += 1;
            if v == 0 {
                break;
            }
        }
        self.put(bytes.get(..n).unwrap_or(&bytes));
    }

    fn binary(&mut self, what: &'static str, b: &[u8]) -> Result<(), EncodeError> {
        let len =
            u16::try_from(b.len()).map_err(|_| EncodeError::FieldTooLong { what, len: b.len() })?;
        self.u16(len);
        self.put(b);
        Ok(())
    }

    fn string(&mut self, what: &'static str, s: &str) -> Result<(), EncodeError> {
        self.binary(what, s.as_bytes())
    }
}

impl Out for BytesMut {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// An [`Out`] that measures instead of writing.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Out for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length_boundary() {
        for v in [
            0u32, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, MAX_VARINT,
        ] {
            let mut out = BytesMut::new();
            out.varint(v);
            assert_eq!(out.len(), varint_len(v as usize), "{v}");
            let mut r = Reader::new(out.freeze());
            assert_eq!(r.varint(), Ok(v));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn a_five_byte_varint_is_malformed() {
        let mut r = Reader::new(Bytes::from_static(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]));
        assert!(matches!(r.varint(), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn strings_refuse_nul_and_bad_utf8_and_truncation() {
        let mut r = Reader::new(Bytes::from_static(&[0, 2, b'a', 0]));
        assert!(r.string().is_err());
        let mut r = Reader::new(Bytes::from_static(&[0, 2, 0xC3, 0x28]));
        assert!(r.string().is_err());
        let mut r = Reader::new(Bytes::from_static(&[0, 5, b'a']));
        assert_eq!(r.string(), Err(ENDS_EARLY));
        let mut r = Reader::new(Bytes::from_static(&[0, 2, 0xC3, 0xA9]));
        assert_eq!(r.string().as_deref(), Ok("é"));
    }

    #[test]
    fn counter_measures_what_the_buffer_gets() {
        let mut buf = BytesMut::new();
        let mut count = Counter::default();
        for out in [&mut buf as &mut dyn OutDyn, &mut count] {
            out.write_sample();
        }
        assert_eq!(buf.len(), count.0);
    }

    trait OutDyn {
        fn write_sample(&mut self);
    }

    impl<T: Out> OutDyn for T {
        fn write_sample(&mut self) {
            self.u8(1);
            self.u16(2);
            self.u32(3);
            self.varint(300);
            self.string("s", "hello").unwrap();
            self.binary("b", &[1, 2, 3]).unwrap();
        }
    }
}
