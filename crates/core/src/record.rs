//! The binary encoding of an [`Event`] inside the durable log.
//!
//! ```text
//! u8      version (1)
//! u8      flags: 1 sensor, 2 kind, 4 value, 8 data, 16 payload
//! varint  tenant
//! str     id
//! str     device
//! [str    sensor]
//! i64 LE  ts (µs)
//! i64 LE  received (µs)
//! [str    kind]
//! [f64 LE value]
//! [str    data, JSON text]
//! [str    payload content type, bytes payload]
//! ```
//!
//! `str` and `bytes` are a varint length and that many bytes. The log checksums every frame,
//! so decoding only has to refuse what a different version or a bug could produce; it never
//! panics on any input.

use bytes::{BufMut, Bytes};

use crate::event::{Event, JsonText, Payload, TenantId};
use crate::id::EventId;
use crate::time::Timestamp;

const VERSION: u8 = 1;
const SENSOR: u8 = 1;
const KIND: u8 = 2;
const VALUE: u8 = 4;
const DATA: u8 = 8;
const PAYLOAD: u8 = 16;

/// Why a log record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt event record at byte {at}: {reason}")]
pub struct DecodeError {
    /// Byte offset in the record.
    pub at: usize,
    /// What was wrong.
    pub reason: &'static str,
}

/// Encodes `event`, appending to `out`.
pub fn encode(event: &Event, out: &mut Vec<u8>) {
    let mut flags = 0;
    flags |= if event.sensor.is_some() { SENSOR } else { 0 };
    flags |= if event.kind.is_some() { KIND } else { 0 };
    flags |= if event.value.is_some() { VALUE } else { 0 };
    flags |= if event.data.is_some() { DATA } else { 0 };
    flags |= if event.payload.is_some() { PAYLOAD } else { 0 };
    out.reserve(64 + event.data.as_ref().map_or(0, |d| d.as_str().len()));
    out.put_u8(VERSION);
    out.put_u8(flags);
    put_varint(out, u64::from(event.tenant.0));
    put_str(out, event.id.as_str().as_bytes());
    put_str(out, event.device.as_bytes());
    if let Some(sensor) = &event.sensor {
        put_str(out, sensor.as_bytes());
    }
    out.put_i64_le(event.ts.as_micros());
    out.put_i64_le(event.received.as_micros());
    if let Some(kind) = &event.kind {
        put_str(out, kind.as_bytes());
    }
    if let Some(value) = event.value {
        out.put_f64_le(value);
    }
    if let Some(data) = &event.data {
        put_str(out, data.as_str().as_bytes());
    }
    if let Some(payload) = &event.payload {
        put_str(out, payload.content_type.as_bytes());
        put_str(out, &payload.bytes);
    }
}

/// Encodes `event` into a fresh buffer.
pub fn to_bytes(event: &Event) -> Bytes {
    let mut out = Vec::new();
    encode(event, &mut out);
    Bytes::from(out)
}

/// Decodes one record. Binary payloads share the input's buffer.
pub fn decode(input: &Bytes) -> Result<Event, DecodeError> {
    let mut r = Reader { b: input, i: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return r.fail("unknown record version");
    }
    let flags = r.u8()?;
    if flags & !(SENSOR | KIND | VALUE | DATA | PAYLOAD) != 0 {
        // A flag this version does not know: a format from the future, not to be half-read.
        return r.fail("unknown flags");
    }
    let tenant = u32::try_from(r.varint()?).map_err(|_| r.err("tenant out of range"))?;
    let id = EventId::parse(r.str()?).map_err(|_| r.err("invalid id"))?;
    let device = r.str()?.to_owned();
    let sensor = if flags & SENSOR != 0 {
        Some(r.str()?.to_owned())
    } else {
        None
    };
    let ts = Timestamp::from_micros(r.i64()?);
    let received = Timestamp::from_micros(r.i64()?);
    let kind = if flags & KIND != 0 {
        Some(r.str()?.to_owned())
    } else {
        None
    };
    let value = if flags & VALUE != 0 {
        Some(f64::from_bits(r.i64()? as u64))
    } else {
        None
    };
    let data = if flags & DATA != 0 {
        Some(JsonText::from_trusted(r.str()?))
    } else {
        None
    };
    let payload = if flags & PAYLOAD != 0 {
        let content_type = r.str()?.to_owned();
        let (start, end) = r.span()?;
        Some(Payload {
            content_type,
            bytes: input.slice(start..end),
        })
    } else {
        None
    };
    if r.i != input.len() {
        return r.fail("trailing bytes");
    }
    Ok(Event {
        id,
        tenant: TenantId(tenant),
        device,
        sensor,
        ts,
        received,
        kind,
        value,
        data,
        payload,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError { at: self.i, reason }
    }

    fn fail<T>(&self, reason: &'static str) -> Result<T, DecodeError> {
        Err(self.err(reason))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let v = *self.b.get(self.i).ok_or_else(|| self.err("truncated"))?;
        self.i += 1;
        Ok(v)
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let bytes = self
            .b
            .get(self.i..self.i + 8)
            .ok_or_else(|| self.err("truncated"))?;
        self.i += 8;
        let mut arr = [0u8; 8];
        arr.copy_from_slice(bytes);
        Ok(i64::from_le_bytes(arr))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.fail("varint too long")
    }

    fn span(&mut self) -> Result<(usize, usize), DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| self.err("length overflow"))?;
        let end = self.i.checked_add(len).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| self.err("length past the end"))?;
        let start = self.i;
        self.i = end;
        Ok((start, end))
    }

    fn str(&mut self) -> Result<&str, DecodeError> {
        let (start, end) = self.span()?;
        std::str::from_utf8(&self.b[start..end]).map_err(|_| DecodeError {
            at: start,
            reason: "invalid UTF-8",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_event() -> impl Strategy<Value = Event> {
        (
            any::<u32>(),
            "[A-Za-z0-9]{1,64}",
            "[a-z0-9-]{1,20}",
            proptest::option::of("[a-z0-9]{1,10}"),
            any::<i64>(),
            proptest::option::of("[a-z]{1,12}"),
            proptest::option::of(-1e12f64..1e12),
            proptest::option::of(r#"\{"k":[0-9]{1,5}\}"#),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        )
            .prop_map(
                |(t, id, device, sensor, ts, kind, value, data, payload)| Event {
                    id: EventId::parse(&id).unwrap(),
                    tenant: TenantId(t),
                    device,
                    sensor,
                    ts: Timestamp::from_micros(ts),
                    received: Timestamp::from_micros(ts / 2),
                    kind,
                    value,
                    data: data.map(JsonText::from_trusted),
                    payload: payload.map(|b| Payload {
                        content_type: "image/jpeg".into(),
                        bytes: Bytes::from(b),
                    }),
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(event in arb_event()) {
            let bytes = to_bytes(&event);
            prop_assert_eq!(decode(&bytes).unwrap(), event);
        }

        #[test]
        fn truncations_are_errors_not_panics(event in arb_event(), cut in any::<prop::sample::Index>()) {
            let bytes = to_bytes(&event);
            let cut = cut.index(bytes.len());
            prop_assert!(decode(&bytes.slice(..cut)).is_err());
        }

        #[test]
        fn unknown_flags_are_refused(event in arb_event(), flag in 5u32..8) {
            let mut bytes = to_bytes(&event).to_vec();
            bytes[1] |= 1 << flag;
            prop_assert!(decode(&Bytes::from(bytes)).is_err());
        }

        #[test]
        fn garbage_never_panics(garbage in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&Bytes::from(garbage));
        }
    }
}
