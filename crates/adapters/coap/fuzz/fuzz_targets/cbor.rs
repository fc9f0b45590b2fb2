//! CBOR bodies: any bytes give drafts or an error, never a panic or a hang.

#![no_main]

use ingot_adapter_coap::cbor::parse_cbor;
use ingot_core::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_event_bytes: 4096,
        max_batch_events: 64,
        ..Limits::default()
    };
    if let Ok(drafts) = parse_cbor(data, &limits) {
        assert!(!drafts.is_empty() && drafts.len() <= 64);
    }
});
