//! `flat`: the benchmark event — a canonical document of exactly `--size` bytes (100 by
//! default), generated as fast as a connection can send it.
//!
//! `{"device":"flat-00001","kind":"load","value":12345,"data":{"seq":1000000042,"pad":"…"}}`
//!
//! The document is built once per device with fixed-width number fields; each message
//! copies it and rewrites the digits of `value` and `seq` in place, so a message costs a
//! copy of `--size` bytes and no allocation. Both numbers never start with a 0 (JSON
//! forbids leading zeros): `value` runs over 10000..=99999 and `seq` over
//! 1000000000..=9999999999.

use super::Message;
use crate::error::SimError;

/// Options of the `flat` scenario.
#[derive(Debug, Clone)]
pub struct FlatOptions {
    /// Bytes per event document.
    pub size: usize,
}

impl Default for FlatOptions {
    fn default() -> Self {
        FlatOptions { size: 100 }
    }
}

/// The smallest document (device names of 10 characters, an empty pad).
const MIN_SIZE: usize = 86;
/// The largest document (the server's default `max_event_bytes` is 256 KiB).
const MAX_SIZE: usize = 256 << 10;

impl FlatOptions {
    pub(super) fn validate(&self) -> Result<(), SimError> {
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            return Err(SimError::option(
                "size",
                format!("must be between {MIN_SIZE} and {MAX_SIZE} bytes"),
            ));
        }
        Ok(())
    }
}

/// A flat device: its document and the positions of its number fields.
#[derive(Debug)]
pub struct Flat {
    name: String,
    template: Vec<u8>,
    value_at: usize,
    seq_at: usize,
    seq: u64,
}

impl Flat {
    pub(super) fn new(options: &FlatOptions, name: &str, index: usize) -> Flat {
        let head = format!(r#"{{"device":"{name}","kind":"load","value":"#);
        let value_at = head.len();
        let middle = r#"10000,"data":{"seq":"#;
        let seq_at = value_at + middle.len();
        let tail = r#"1000000000,"pad":""#;
        let mut template = format!("{head}{middle}{tail}").into_bytes();
        let end = br#""}}"#;
        let pad = options.size.saturating_sub(template.len() + end.len());
        template.resize(template.len() + pad, b'x');
        template.extend_from_slice(end);
        Flat {
            name: name.to_owned(),
            template,
            value_at,
            seq_at,
            // Devices start at different points, so their values differ.
            seq: (index as u64).wrapping_mul(7919),
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn next(&mut self, out: &mut Message) {
        let start = out.body.len();
        out.body.extend_from_slice(&self.template);
        let doc = &mut out.body[start..];
        put_digits(
            &mut doc[self.value_at..self.value_at + 5],
            10_000 + self.seq % 90_000,
        );
        put_digits(
            &mut doc[self.seq_at..self.seq_at + 10],
            1_000_000_000 + self.seq % 9_000_000_000,
        );
        self.seq = self.seq.wrapping_add(1);
    }
}

/// Writes `n` as exactly `out.len()` decimal digits (most significant first).
fn put_digits(out: &mut [u8], mut n: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}
