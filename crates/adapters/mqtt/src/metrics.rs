//! The endpoint's Prometheus metrics.
//!
//! Counters on the per-packet path are resolved once (one per packet type, one per QoS)
//! so counting costs an atomic add, not a label lookup. Refusals and drops are rarer and
//! use label families directly.

use std::sync::Arc;

use ingot_codec_mqtt::{QoS, ReasonCode, packet_type};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PacketLabels {
    packet: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QosLabels {
    qos: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Why a message was not delivered to a subscriber (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drop {
    /// A QoS 0 message met a full session queue.
    QueueFull,
    /// A QoS 1/2 message met a full queue: the subscriber is a slow consumer.
    SlowConsumer,
    /// The message expired before it could be sent.
    Expired,
    /// The message is larger than the subscriber's Maximum Packet Size.
    TooLarge,
    /// A retained message could not be stored: the tenant's retained store is full.
    RetainedFull,
    /// A QoS 0 message for a session that is not connected.
    Offline,
}

impl Drop {
    fn label(self) -> &'static str {
        match self {
            Drop::QueueFull => "queue_full",
            Drop::SlowConsumer => "slow_consumer",
            Drop::Expired => "expired",
            Drop::TooLarge => "too_large_for_client",
            Drop::RetainedFull => "retained_full",
            Drop::Offline => "offline_qos0",
        }
    }
}

/// The MQTT endpoint's metrics (cheap to clone: every field shares its atomics).
#[derive(Debug, Clone)]
pub struct MqttMetrics {
    connections: Gauge,
    sessions: Gauge,
    retained: Gauge,
    packets_in: Family<PacketLabels, Counter>,
    packets_out: Family<PacketLabels, Counter>,
    publishes_in: Family<QosLabels, Counter>,
    refusals: Family<ReasonLabels, Counter>,
    dropped: Family<ReasonLabels, Counter>,
    ack_seconds: Histogram,
    cached: Arc<Cached>,
}

#[derive(Debug)]
struct Cached {
    packets_in: Vec<Counter>,
    packets_out: Vec<Counter>,
    publishes_in: Vec<Counter>,
}

impl Default for MqttMetrics {
    fn default() -> Self {
        let packets_in = Family::<PacketLabels, Counter>::default();
        let packets_out = Family::<PacketLabels, Counter>::default();
        let publishes_in = Family::<QosLabels, Counter>::default();
        let by_type = |family: &Family<PacketLabels, Counter>| {
            (0u8..16)
                .map(|t| {
                    let packet = packet_type::name(t);
                    family.get_or_create(&PacketLabels { packet }).clone()
                })
                .collect()
        };
        let cached = Cached {
            packets_in: by_type(&packets_in),
            packets_out: by_type(&packets_out),
            publishes_in: (0u8..3)
                .map(|qos| publishes_in.get_or_create(&QosLabels { qos }).clone())
                .collect(),
        };
        MqttMetrics {
            connections: Gauge::default(),
            sessions: Gauge::default(),
            retained: Gauge::default(),
            packets_in,
            packets_out,
            publishes_in,
            refusals: Family::default(),
            dropped: Family::default(),
            // 50 µs to ~3 s.
            ack_seconds: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
            cached: Arc::new(cached),
        }
    }
}

impl MqttMetrics {
    /// Registers `ingot_mqtt_*` in `registry`.
    pub fn register(registry: &mut Registry) -> MqttMetrics {
        let m = MqttMetrics::default();
        registry.register(
            "ingot_mqtt_connections",
            "Open MQTT connections",
            m.connections.clone(),
        );
        registry.register(
            "ingot_mqtt_sessions",
            "MQTT sessions held in memory (connected and stored)",
            m.sessions.clone(),
        );
        registry.register(
            "ingot_mqtt_retained_messages",
            "Retained MQTT messages held in memory",
            m.retained.clone(),
        );
        registry.register(
            "ingot_mqtt_packets_received",
            "MQTT packets received, by type",
            m.packets_in.clone(),
        );
        registry.register(
            "ingot_mqtt_packets_sent",
            "MQTT packets sent, by type",
            m.packets_out.clone(),
        );
        registry.register(
            "ingot_mqtt_publishes_received",
            "PUBLISH packets received, by QoS",
            m.publishes_in.clone(),
        );
        registry.register(
            "ingot_mqtt_refusals",
            "Connections, publishes and subscriptions refused, by MQTT 5 reason code name",
            m.refusals.clone(),
        );
        registry.register(
            "ingot_mqtt_dropped_messages",
            "Messages not delivered to a subscriber, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "ingot_mqtt_ack_seconds",
            "Time from reading a QoS 1/2 PUBLISH to queueing its PUBACK/PUBREC (durable), in seconds",
            m.ack_seconds.clone(),
        );
        m
    }

    pub(crate) fn packet_in(&self, kind: u8) {
        if let Some(c) = self.cached.packets_in.get(usize::from(kind)) {
            c.inc();
        }
    }

    pub(crate) fn packet_out(&self, kind: u8) {
        if let Some(c) = self.cached.packets_out.get(usize::from(kind)) {
            c.inc();
        }
    }

    pub(crate) fn publish_in(&self, qos: QoS) {
        if let Some(c) = self.cached.publishes_in.get(usize::from(qos.as_u8())) {
            c.inc();
        }
    }

    pub(crate) fn refused(&self, reason: ReasonCode) {
        self.refusals
            .get_or_create(&ReasonLabels {
                reason: reason.name(),
            })
            .inc();
    }

    pub(crate) fn dropped(&self, why: Drop) {
        self.dropped
            .get_or_create(&ReasonLabels {
                reason: why.label(),
            })
            .inc();
    }

    pub(crate) fn acked(&self, seconds: f64) {
        self.ack_seconds.observe(seconds);
    }

    pub(crate) fn connections(&self) -> &Gauge {
        &self.connections
    }

    pub(crate) fn sessions(&self) -> &Gauge {
        &self.sessions
    }

    pub(crate) fn retained(&self) -> &Gauge {
        &self.retained
    }

    /// Refusals counted so far with `reason` (for tests and diagnostics).
    pub fn refusals(&self, reason: ReasonCode) -> u64 {
        self.refusals
            .get_or_create(&ReasonLabels {
                reason: reason.name(),
            })
            .get()
    }

    /// Packets of type `packet` (`"subscribe"`, `"publish"`, ...) received so far.
    pub fn packets_received(&self, packet: &'static str) -> u64 {
        self.packets_in
            .get_or_create(&PacketLabels { packet })
            .get()
    }

    /// Open connections now.
    pub fn open_connections(&self) -> i64 {
        self.connections.get()
    }
}
