//! The shared log conformance suite, run against the segment-file backend.

use ingot_log::SyncPolicy;
use ingot_log::conformance::FileLogFactory;

ingot_log::log_conformance_tests!(FileLogFactory::new());

/// The same suite with an unsynced log and one-frame segments, so every append rolls.
mod tiny_segments_no_fsync {
    use super::*;

    ingot_log::log_conformance_tests!(FileLogFactory::with_config(|c| {
        c.segment_bytes = 1;
        c.sync = SyncPolicy::Never;
    }));
}
