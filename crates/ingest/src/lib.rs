//! The one ingest path every protocol calls: parse → validate → authorise → append → ack.
//!
//! HTTP, CoAP and MQTT adapters own only their protocol: they turn a request into a body
//! (or drafts) and an [`Identity`], call [`Ingest`], and map the result or the
//! [`IngestError`]'s [`ErrorKind`] to their own status codes. Everything else is here, once:
//!
//! - **Authorisation.** A device writes only as itself (a body naming another device is
//!   refused); writer, admin and system keys write for any device of their tenant (each event
//!   must name its device); readers never write; anonymous callers (only with
//!   `--allow-anonymous`) write into the default tenant. The tenant always comes from the
//!   credentials.
//! - **Completion.** Each event gets its id (a time-ordered ULID unless the client chose one),
//!   `ts` defaults to the arrival time, and `received` is the arrival time.
//! - **Durability before acknowledgement.** Events are grouped by log partition (tenant and
//!   device decide it, so a device's events stay in order) and each group is appended as one
//!   atomic batch; [`Ingest::ingest`] returns only when every group is durable. A crash
//!   before that acknowledges nothing; a retry with the same client ids is stored once.
//! - **Accounting.** Accepted and refused events are counted by protocol and reason.
//! - **Live feed.** Once durable, accepted events are offered to live subscribers (CoAP
//!   Observe, MQTT live telemetry, dashboards) through [`LiveFeed`]. It is best effort by
//!   design: a subscriber that falls behind skips events (the store has them all), and
//!   publishing costs nothing while nobody subscribes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use ingot_auth::Identity;
use ingot_core::error::{ErrorExt, ErrorKind};
use ingot_core::format::{self, BodyError, BodyFormat};
use ingot_core::{Draft, Event, EventId, IdGenerator, Limits, Timestamp, record};
use ingot_log::{Log, LogError, partition_for};
use ingot_store::Role;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The log topic every accepted event goes to.
pub const EVENTS_TOPIC: &str = "events";

/// The protocol an event arrived over (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values are lowercase on the wire
pub enum Protocol {
    /// HTTP `POST /api/v1/events`.
    http,
    /// CoAP `POST /events`.
    coap,
    /// MQTT `ingot/<device>/events`.
    mqtt,
    /// Events the server makes itself (the demo fleet).
    internal,
}

/// Why events were refused (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RefusalReason {
    /// Malformed body or invalid event.
    invalid,
    /// Over a size limit.
    too_large,
    /// Unsupported media type.
    media_type,
    /// No or invalid credentials.
    unauthenticated,
    /// Credentials that may not write this.
    forbidden,
    /// The log could not take it now.
    unavailable,
    /// Over a device's or the tenant's rate limit.
    rate_limited,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AcceptedLabels {
    protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusedLabels {
    protocol: Protocol,
    reason: RefusalReason,
}

/// Counters of accepted and refused events.
#[derive(Debug, Clone, Default)]
pub struct IngestMetrics {
    accepted: Family<AcceptedLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
}

impl IngestMetrics {
    /// Registers the counters (`ingot_events_accepted_total`, `ingot_events_refused_total`).
    pub fn register(registry: &mut Registry) -> IngestMetrics {
        let metrics = IngestMetrics::default();
        registry.register(
            "ingot_events_accepted",
            "Events durably appended to the log, by protocol",
            metrics.accepted.clone(),
        );
        registry.register(
            "ingot_events_refused",
            "Requests or events refused before the log, by protocol and reason (a refused batch counts once per request)",
            metrics.refused.clone(),
        );
        metrics
    }

    /// Counts a refusal that happened outside [`Ingest`] (e.g. the adapter's authentication).
    pub fn refused(&self, protocol: Protocol, reason: RefusalReason) {
        self.refused
            .get_or_create(&RefusedLabels { protocol, reason })
            .inc();
    }

    fn accepted(&self, protocol: Protocol, count: usize) {
        self.accepted
            .get_or_create(&AcceptedLabels { protocol })
            .inc_by(count as u64);
    }
}

/// Why an ingest was refused. Nothing of a refused request is kept.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is malformed, invalid or too large.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// An event names no device and the credentials name none either.
    #[error(
        "event {index}: no device: name it with `device` (or `sender`, `vin`, `device_id`) or send with the device's token"
    )]
    MissingDevice {
        /// 0-based position in the batch.
        index: usize,
    },
    /// A device tried to write as another device.
    #[error(
        "event {index} names device `{named}` but the credentials are those of device `{actual}`"
    )]
    WrongDevice {
        /// 0-based position in the batch.
        index: usize,
        /// The device the event names.
        named: String,
        /// The device of the credentials.
        actual: String,
    },
    /// The credentials may not ingest at all.
    #[error("{0}")]
    Forbidden(String),
    /// Over a rate limit.
    #[error("{whose} is over its rate limit: retry after {retry_after_ms} ms")]
    RateLimited {
        /// `device probe-7` or `tenant`.
        whose: String,
        /// When the batch would fit.
        retry_after_ms: u64,
    },
    /// A batch larger than a rate limit's burst: it can never fit.
    #[error(
        "the batch of {events} events is more than {whose}'s burst allows: send smaller batches"
    )]
    OverBurst {
        /// `device probe-7` or `tenant`.
        whose: String,
        /// The batch's size.
        events: usize,
    },
    /// The durable log refused or failed.
    #[error("the event log could not take the events: {0}")]
    Log(#[from] LogError),
}

impl ErrorExt for IngestError {
    fn kind(&self) -> ErrorKind {
        match self {
            IngestError::Body(e) => e.kind(),
            IngestError::MissingDevice { .. } => ErrorKind::InvalidInput,
            IngestError::WrongDevice { .. } | IngestError::Forbidden(_) => {
                ErrorKind::PermissionDenied
            }
            IngestError::RateLimited { .. } => ErrorKind::RateLimited,
            IngestError::OverBurst { .. } => ErrorKind::TooLarge,
            IngestError::Log(e) => match e.kind() {
                ErrorKind::InvalidInput => ErrorKind::InvalidInput,
                // A closing or failing log is the server's problem, not the client's: retry.
                _ => ErrorKind::Unavailable,
            },
        }
    }
}

impl IngestError {
    /// When a rate-limited request may succeed, if it was rate-limited.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            IngestError::RateLimited { retry_after_ms, .. } => {
                Some(std::time::Duration::from_millis(*retry_after_ms))
            }
            _ => None,
        }
    }

    fn reason(&self) -> RefusalReason {
        match self.kind() {
            ErrorKind::RateLimited => RefusalReason::rate_limited,
            ErrorKind::TooLarge => RefusalReason::too_large,
            ErrorKind::PermissionDenied => RefusalReason::forbidden,
            ErrorKind::Unavailable | ErrorKind::Internal => RefusalReason::unavailable,
            _ => RefusalReason::invalid,
        }
    }
}

/// How many events a live subscriber may fall behind before it skips some.
const LIVE_CAPACITY: usize = 4096;

/// Accepted events as they become durable, for live consumers in this process.
#[derive(Debug, Clone)]
pub struct LiveFeed {
    tx: tokio::sync::broadcast::Sender<Arc<Event>>,
}

impl Default for LiveFeed {
    fn default() -> Self {
        LiveFeed {
            tx: tokio::sync::broadcast::channel(LIVE_CAPACITY).0,
        }
    }
}

impl LiveFeed {
    /// Every event accepted from now on (of every tenant: filter on `event.tenant`). A
    /// receiver that falls more than a few thousand events behind gets
    /// `RecvError::Lagged` and continues with newer ones.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Offers events to current subscribers.
    pub fn publish(&self, events: impl IntoIterator<Item = Event>) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        for event in events {
            // An error only means every receiver went away meanwhile.
            let _ = self.tx.send(Arc::new(event));
        }
    }
}

/// The ingest service, shared by every adapter.
pub struct Ingest {
    log: Arc<dyn Log>,
    ids: IdGenerator,
    limits: Limits,
    metrics: IngestMetrics,
    live: LiveFeed,
    limiter: Limiter,
}

impl fmt::Debug for Ingest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingest")
            .field("log", &self.log)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Ingest {
    /// An ingest service appending to `log`.
    pub fn new(log: Arc<dyn Log>, limits: Limits, metrics: IngestMetrics) -> Ingest {
        let limiter = Limiter::new(&limits);
        Ingest {
            log,
            ids: IdGenerator::new(),
            limits,
            metrics,
            live: LiveFeed::default(),
            limiter,
        }
    }

    /// Accepted events as they become durable.
    pub fn live(&self) -> &LiveFeed {
        &self.live
    }

    /// The size limits adapters must enforce before calling.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The counters, for adapters to count their own refusals.
    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    /// Parses a JSON or NDJSON body and ingests it (see [`Ingest::ingest`]).
    pub async fn ingest_body(
        &self,
        identity: &Identity,
        protocol: Protocol,
        body: &[u8],
        body_format: BodyFormat,
    ) -> Result<Vec<EventId>, IngestError> {
        let drafts = format::parse_body(body, body_format, &self.limits).map_err(IngestError::from);
        match drafts {
            Ok(drafts) => self.ingest(identity, protocol, drafts).await,
            Err(e) => {
                self.metrics.refused(protocol, e.reason());
                Err(e)
            }
        }
    }

    /// Authorises and completes `drafts` for `identity`, appends them durably, and returns
    /// their ids in order. All or nothing: any invalid event refuses the whole batch.
    pub async fn ingest(
        &self,
        identity: &Identity,
        protocol: Protocol,
        drafts: Vec<Draft>,
    ) -> Result<Vec<EventId>, IngestError> {
        let result = self.ingest_inner(identity, drafts).await;
        match &result {
            Ok(ids) => self.metrics.accepted(protocol, ids.len()),
            Err(e) => self.metrics.refused(protocol, e.reason()),
        }
        result
    }

    async fn ingest_inner(
        &self,
        identity: &Identity,
        drafts: Vec<Draft>,
    ) -> Result<Vec<EventId>, IngestError> {
        if drafts.is_empty() {
            return Err(BodyError::Empty.into());
        }
        if drafts.len() > self.limits.max_batch_events {
            return Err(BodyError::TooManyEvents {
                max: self.limits.max_batch_events,
            }
            .into());
        }
        let own_device = match identity {
            Identity::Device { device, .. } => Some(device.as_str()),
            Identity::Key { role, .. } if *role < Role::Writer => {
                return Err(IngestError::Forbidden(
                    "a reader key may not ingest events; use a device token or a writer key".into(),
                ));
            }
            Identity::Key { .. } | Identity::Anonymous { .. } => None,
        };
        let tenant = identity.tenant();
        let now = Timestamp::now();
        let partitions = self.log.partitions();
        // Partition → (a key of that partition, encoded events). BTreeMap: deterministic order.
        let mut groups: BTreeMap<u32, (Vec<u8>, Vec<Bytes>)> = BTreeMap::new();
        let mut ids = Vec::with_capacity(drafts.len());
        let keep = self.live.tx.receiver_count() > 0;
        let mut per_device: Vec<(String, usize)> = Vec::new();
        let mut accepted = Vec::with_capacity(if keep { drafts.len() } else { 0 });
        for (index, draft) in drafts.into_iter().enumerate() {
            let device = match (draft.device, own_device) {
                (Some(named), Some(actual)) if named != actual => {
                    return Err(IngestError::WrongDevice {
                        index,
                        named,
                        actual: actual.to_owned(),
                    });
                }
                (Some(named), _) => named,
                (None, Some(actual)) => actual.to_owned(),
                (None, None) => return Err(IngestError::MissingDevice { index }),
            };
            let id = draft.id.unwrap_or_else(|| self.ids.next(now));
            let event = Event {
                id,
                tenant,
                device,
                sensor: draft.sensor,
                ts: draft.ts.unwrap_or(now),
                received: now,
                kind: draft.kind,
                value: draft.value,
                data: draft.data,
                payload: draft.payload,
            };
            let key = partition_key(&event);
            let group = groups
                .entry(partition_for(&key, partitions))
                .or_insert_with(|| (key, Vec::new()));
            group.1.push(record::to_bytes(&event));
            ids.push(event.id.clone());
            if self.limiter.is_active() {
                match per_device.iter_mut().find(|(d, _)| *d == event.device) {
                    Some((_, n)) => *n += 1,
                    None => per_device.push((event.device.clone(), 1)),
                }
            }
            if keep {
                accepted.push(event);
            }
        }
        if self.limiter.is_active() {
            let devices: Vec<(&str, usize)> =
                per_device.iter().map(|(d, n)| (d.as_str(), *n)).collect();
            let now = std::time::Instant::now();
            if let Err(limited) = self.limiter.take(tenant, &devices, ids.len(), now) {
                return Err(if limited.too_big {
                    IngestError::OverBurst {
                        whose: limited.whose,
                        events: ids.len(),
                    }
                } else {
                    let ms = limited.retry_after.as_millis().max(1);
                    IngestError::RateLimited {
                        whose: limited.whose,
                        retry_after_ms: u64::try_from(ms).unwrap_or(u64::MAX),
                    }
                });
            }
        }
        let appends = groups.into_values().map(|(key, messages)| async move {
            self.log.append(EVENTS_TOPIC, &key, messages).await
        });
        futures_util::future::try_join_all(appends).await?;
        self.live.publish(accepted);
        Ok(ids)
    }
}

/// The log key of an event: its tenant and device, so each device's events keep their order.
pub fn partition_key(event: &Event) -> Vec<u8> {
    format!("{}/{}", event.tenant.0, event.device).into_bytes()
}

mod limiter;
pub use limiter::{Limited, Limiter, Rate};

#[cfg(test)]
mod tests;
