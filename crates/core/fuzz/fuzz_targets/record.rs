//! The log record codec: any bytes decode to an event or an error, never a panic, and a
//! decoded event survives encoding and decoding again unchanged.
#![no_main]

use bytes::Bytes;
use ingot_core::record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    if let Ok(event) = record::decode(&input) {
        // Compared as bytes: a NaN value is not equal to itself.
        let once = record::to_bytes(&event);
        let again = record::decode(&once).map(|e| record::to_bytes(&e));
        assert_eq!(again.ok(), Some(once));
    }
});
