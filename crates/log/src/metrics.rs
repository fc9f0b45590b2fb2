//! The log's Prometheus metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Metrics of a log backend. Clones share the same series; [`Default`] makes series that
/// are not registered anywhere (tests, tools).
#[derive(Debug, Clone)]
pub struct LogMetrics {
    /// From an `append` call to its durable acknowledgement.
    pub(crate) append_seconds: Histogram,
    /// One `fdatasync` of a segment.
    pub(crate) fsync_seconds: Histogram,
    /// Messages acknowledged.
    pub(crate) appended_messages: Counter,
    /// Bytes written to segments (frames, headers included).
    pub(crate) appended_bytes: Counter,
    /// Frames written (one per acknowledged append).
    pub(crate) frames: Counter,
}

/// 10 µs doubling up to 1.3 s: an fdatasync is ~0.1–10 ms, an append ack adds queueing.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(10e-6, 2.0, 18)
}

impl Default for LogMetrics {
    fn default() -> LogMetrics {
        LogMetrics {
            append_seconds: Histogram::new(latency_buckets()),
            fsync_seconds: Histogram::new(latency_buckets()),
            appended_messages: Counter::default(),
            appended_bytes: Counter::default(),
            frames: Counter::default(),
        }
    }
}

impl LogMetrics {
    /// Records one acknowledged append of `messages` messages and `bytes` bytes that took
    /// `seconds` from the call to its acknowledgement, for backends outside this crate
    /// (they have no frames or fsyncs of their own: one append counts as one frame).
    pub fn record_append(&self, seconds: f64, messages: u64, bytes: u64) {
        self.append_seconds.observe(seconds);
        self.appended_messages.inc_by(messages);
        self.appended_bytes.inc_by(bytes);
        self.frames.inc();
    }

    /// Creates the metrics and registers them in `registry` as `ingot_log_append_seconds`,
    /// `ingot_log_fsync_seconds`, `ingot_log_appended_messages_total`,
    /// `ingot_log_appended_bytes_total` and `ingot_log_frames_total`.
    pub fn register(registry: &mut Registry) -> LogMetrics {
        let metrics = LogMetrics::default();
        registry.register(
            "ingot_log_append_seconds",
            "Time from a log append call to its durable acknowledgement",
            metrics.append_seconds.clone(),
        );
        registry.register(
            "ingot_log_fsync_seconds",
            "Time of one fdatasync of a log segment",
            metrics.fsync_seconds.clone(),
        );
        registry.register(
            "ingot_log_appended_messages",
            "Messages appended to the log and acknowledged",
            metrics.appended_messages.clone(),
        );
        registry.register(
            "ingot_log_appended_bytes",
            "Bytes written to log segments, frame headers included",
            metrics.appended_bytes.clone(),
        );
        registry.register(
            "ingot_log_frames",
            "Frames written to the log (one per acknowledged append)",
            metrics.frames.clone(),
        );
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn registers_the_documented_names() {
        let mut registry = Registry::default();
        let metrics = LogMetrics::register(&mut registry);
        metrics.appended_messages.inc_by(3);
        metrics.fsync_seconds.observe(0.0003);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for name in [
            "ingot_log_append_seconds_bucket{le=\"0.00001\"}",
            "ingot_log_fsync_seconds_count 1",
            "ingot_log_appended_messages_total 3",
            "ingot_log_appended_bytes_total 0",
            "ingot_log_frames_total 0",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
