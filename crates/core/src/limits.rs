//! Size limits on what devices send, shared by every protocol.

use serde::{Deserialize, Serialize};

/// Size limits, configurable under `[limits]`; defaults suit sensors and cameras alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body (one HTTP request, one reassembled CoAP body, one MQTT payload).
    pub max_body_bytes: usize,
    /// Largest single JSON event document.
    pub max_event_bytes: usize,
    /// Largest binary payload (a camera picture).
    pub max_binary_bytes: usize,
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Sustained events per second one device may send; 0: no limit.
    pub device_events_per_second: f64,
    /// Events a device may send at once above its rate (the bucket's size).
    pub device_burst: u64,
    /// Sustained events per second of a whole tenant; 0: no limit.
    pub tenant_events_per_second: f64,
    /// Events a tenant may send at once above its rate.
    pub tenant_burst: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_event_bytes: 256 << 10,
            max_binary_bytes: 4 << 20,
            max_batch_events: 50_000,
            device_events_per_second: 0.0,
            device_burst: 10_000,
            tenant_events_per_second: 0.0,
            tenant_burst: 100_000,
        }
    }
}
