//! Size limits on what devices send, shared by every protocol.

use serde::{Deserialize, Serialize};

/// Size limits, configurable under `[limits]`; defaults suit sensors and cameras alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_event_bytes: 256 << 10,
            max_binary_bytes: 4 << 20,
            max_batch_events: 50_000,
        }
    }
}
