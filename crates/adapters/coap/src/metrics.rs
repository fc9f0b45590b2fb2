//! The endpoint's Prometheus metrics (`ingot_coap_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

/// Counters and gauges of the CoAP endpoint. Cloning shares them.
#[derive(Debug, Clone)]
pub struct CoapMetrics {
    requests: Family<MethodLabels, Counter>,
    responses: Family<CodeLabels, Counter>,
    duplicates: Counter,
    malformed: Counter,
    retransmissions: Counter,
    notifications: Counter,
    block_transfers: Gauge,
    observers: Gauge,
    in_flight: Gauge,
    endpoints: Gauge,
    request_seconds: Histogram,
}

impl Default for CoapMetrics {
    fn default() -> Self {
        CoapMetrics {
            requests: Family::default(),
            responses: Family::default(),
            duplicates: Counter::default(),
            malformed: Counter::default(),
            retransmissions: Counter::default(),
            notifications: Counter::default(),
            block_transfers: Gauge::default(),
            observers: Gauge::default(),
            in_flight: Gauge::default(),
            endpoints: Gauge::default(),
            request_seconds: Histogram::new(exponential_buckets(0.0001, 2.5, 14)),
        }
    }
}

impl CoapMetrics {
    /// Registers every `ingot_coap_*` metric.
    pub fn register(registry: &mut Registry) -> CoapMetrics {
        let m = CoapMetrics::default();
        registry.register(
            "ingot_coap_requests",
            "CoAP requests by method (retransmissions excluded)",
            m.requests.clone(),
        );
        registry.register(
            "ingot_coap_responses",
            "CoAP responses by code (2.01, 4.00, 5.03, ...); resent cached responses excluded",
            m.responses.clone(),
        );
        registry.register(
            "ingot_coap_duplicates",
            "Retransmitted or duplicated requests answered from the deduplication state, never processed again",
            m.duplicates.clone(),
        );
        registry.register(
            "ingot_coap_malformed",
            "Datagrams that were not valid CoAP (ignored or answered with RST)",
            m.malformed.clone(),
        );
        registry.register(
            "ingot_coap_retransmissions",
            "Retransmissions of the server's own confirmable messages (separate responses, notifications)",
            m.retransmissions.clone(),
        );
        registry.register(
            "ingot_coap_notifications",
            "Observe notifications sent",
            m.notifications.clone(),
        );
        registry.register(
            "ingot_coap_block_transfers",
            "Block1 uploads in progress",
            m.block_transfers.clone(),
        );
        registry.register(
            "ingot_coap_observers",
            "Observe registrations",
            m.observers.clone(),
        );
        registry.register(
            "ingot_coap_in_flight",
            "Requests being processed (authentication, ingest, listing)",
            m.in_flight.clone(),
        );
        registry.register(
            "ingot_coap_endpoints",
            "Client endpoints the server keeps state for",
            m.endpoints.clone(),
        );
        registry.register(
            "ingot_coap_request_seconds",
            "Time from a processed request's arrival to its response, in seconds",
            m.request_seconds.clone(),
        );
        m
    }

    pub(crate) fn request(&self, method: &'static str) {
        self.requests.get_or_create(&MethodLabels { method }).inc();
    }

    pub(crate) fn response(&self, code: &'static str) {
        self.responses.get_or_create(&CodeLabels { code }).inc();
    }

    pub(crate) fn duplicate(&self) {
        self.duplicates.inc();
    }

    pub(crate) fn malformed(&self) {
        self.malformed.inc();
    }

    pub(crate) fn retransmission(&self) {
        self.retransmissions.inc();
    }

    pub(crate) fn notification(&self) {
        self.notifications.inc();
    }

    pub(crate) fn set_block_transfers(&self, n: usize) {
        self.block_transfers.set(gauge_value(n));
    }

    pub(crate) fn set_observers(&self, n: usize) {
        self.observers.set(gauge_value(n));
    }

    pub(crate) fn set_in_flight(&self, n: usize) {
        self.in_flight.set(gauge_value(n));
    }

    pub(crate) fn set_endpoints(&self, n: usize) {
        self.endpoints.set(gauge_value(n));
    }

    pub(crate) fn observe_seconds(&self, seconds: f64) {
        self.request_seconds.observe(seconds);
    }

    /// Responses sent so far with `code` (`"2.01"`).
    pub fn responses(&self, code: &'static str) -> u64 {
        self.responses.get_or_create(&CodeLabels { code }).get()
    }

    /// Duplicates detected so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.get()
    }

    /// Current Observe registrations.
    pub fn observers(&self) -> i64 {
        self.observers.get()
    }

    /// Block1 uploads in progress.
    pub fn block_transfers(&self) -> i64 {
        self.block_transfers.get()
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
