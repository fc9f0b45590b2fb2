//! The contracts of Ingot's storage: [`EventStore`] (events, queryable) and [`Registry`]
//! (tenants, devices, API keys), with a conformance suite every backend runs unchanged.
//!
//! Invariants every backend keeps:
//!
//! - Events are scoped to their tenant in storage: every read names a tenant and sees only
//!   that tenant's rows.
//! - Writes are idempotent on `(tenant, id)`: a second event with an id already stored is
//!   skipped, so replaying the log never duplicates.
//! - An event's `data` is kept whole as a JSON value, not byte for byte: a backend may
//!   reorder its keys and print its numbers differently (PostgreSQL's `jsonb` does; SQLite
//!   returns the text as written), and always returns valid, compact JSON text.
//! - [`EventStore::write_batch`] stores the events and the writer's checkpoint (the next log
//!   offset per partition) in one transaction, so a restart resumes exactly after what was
//!   stored.
//! - Listing is newest first by `(ts, id)`, with an opaque cursor that continues strictly
//!   after the last event of the previous page.
//! - Secrets (device tokens, API keys) are only ever stored as hashes.

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ingot_core::{Event, EventId, TenantId, Timestamp};
pub use ingot_query::{Agg, Field, Filter, Interval, SeriesQuery};

#[cfg(feature = "testing")]
pub mod conformance;
mod error;

pub use error::StoreError;

/// The most events one listing page may hold.
pub const MAX_PAGE: usize = 10_000;

/// The most buckets a histogram or a series may have.
pub const MAX_BUCKETS: u64 = 10_000;

/// A listing request; `from` is inclusive, `to` exclusive.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    /// Only this device.
    pub device: Option<String>,
    /// Only this sensor.
    pub sensor: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only events matching this filter (the `q=` language of `ingot-query`).
    pub filter: Filter,
    /// Events with `ts >= from`.
    pub from: Option<Timestamp>,
    /// Events with `ts < to`.
    pub to: Option<Timestamp>,
    /// Page size, 1 to [`MAX_PAGE`]; anything else is [`StoreError::InvalidQuery`].
    pub limit: usize,
    /// Continue after this position (from the previous page's `next`).
    pub cursor: Option<Cursor>,
    /// Also count every matching event (ignoring the cursor and the limit).
    pub total: bool,
    /// Also count matching events per bucket of this width over `[from, to)`, which must
    /// both be set ([`StoreError::InvalidQuery`] otherwise, or beyond [`MAX_BUCKETS`]).
    pub histogram: Option<Interval>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// Newest first.
    pub events: Vec<Event>,
    /// Where the next page starts: `Some` exactly when more events matched the query
    /// than this page holds, `None` on the last page (so a client never fetches an empty
    /// page to learn that it is done).
    pub next: Option<Cursor>,
    /// With [`ListQuery::total`]: how many events matched.
    pub total: Option<u64>,
    /// With [`ListQuery::histogram`]: `(bucket start, count)` for every bucket from
    /// `interval.floor(from)` to `to`, oldest first, empty buckets counted 0.
    pub histogram: Option<Vec<(Timestamp, u64)>>,
}

/// One series of a [`EventStore::series`] answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The group's value (text form), or `None` without `group_by`.
    pub group: Option<String>,
    /// Whether this is the aggregate of every group outside the top ones.
    pub other: bool,
    /// `(bucket start, aggregate)` for every bucket, oldest first; `None` for a bucket with
    /// no values.
    pub points: Vec<(Timestamp, Option<f64>)>,
}

/// A position in the newest-first order: strictly older than `(ts, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Timestamp of the last event returned.
    pub ts: Timestamp,
    /// Id of the last event returned.
    pub id: EventId,
}

impl Cursor {
    /// The cursor after `event`.
    pub fn after(event: &Event) -> Cursor {
        Cursor {
            ts: event.ts,
            id: event.id.clone(),
        }
    }

    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.ts.as_micros(), self.id))
    }

    /// Parses the text form; `None` if it is not one we produced.
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let (ts, id) = text.split_once(':')?;
        Some(Cursor {
            ts: Timestamp::from_micros(ts.parse().ok()?),
            id: EventId::parse(id).ok()?,
        })
    }
}

/// Where a log consumer resumes: for each partition, the next offset to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The consumer's name (`store-writer`).
    pub consumer: String,
    /// The log topic.
    pub topic: String,
    /// `(partition, next offset)` pairs; partitions not named keep their previous value.
    ///
    /// Offsets are at most `i64::MAX` (SQL backends store signed 64-bit integers); a
    /// larger one makes [`EventStore::write_batch`] fail with [`StoreError::InvalidQuery`]
    /// and store nothing.
    pub offsets: Vec<(u32, u64)>,
}

/// What [`EventStore::write_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    /// Events newly stored.
    pub inserted: usize,
    /// Events skipped because their `(tenant, id)` was already stored.
    pub duplicates: usize,
}

/// Queryable event storage.
#[async_trait]
pub trait EventStore: Send + Sync + fmt::Debug + 'static {
    /// Stores `events`, skipping any whose `(tenant, id)` exists (also within the batch),
    /// and advances `checkpoint`, all in one transaction.
    ///
    /// The first write of an id wins: a later event with the same `(tenant, id)` changes
    /// nothing, not even its payload. Binary payloads are stored only for newly inserted
    /// events. An empty `events` still stores the checkpoint. Once the call has started,
    /// dropping its future does not cancel it: the transaction may still commit.
    async fn write_batch(
        &self,
        events: Vec<Event>,
        checkpoint: &Checkpoint,
    ) -> Result<WriteOutcome, StoreError>;

    /// The stored checkpoint of `consumer` on `topic`: `(partition, next offset)` pairs in
    /// ascending partition order, empty if it never wrote.
    async fn checkpoint(&self, consumer: &str, topic: &str) -> Result<Vec<(u32, u64)>, StoreError>;

    /// One page of a tenant's events, newest first by `(ts, id)` (ids compared as bytes).
    ///
    /// Listed events carry no binary payload (`payload` is `None`; their `data` records the
    /// payload's media type and size); [`EventStore::get_event`] returns it. See
    /// [`EventPage::next`] for when a page has a continuation.
    async fn list_events(
        &self,
        tenant: TenantId,
        query: &ListQuery,
    ) -> Result<EventPage, StoreError>;

    /// One event with its binary payload, if stored.
    async fn get_event(&self, tenant: TenantId, id: &EventId) -> Result<Option<Event>, StoreError>;

    /// The oldest and newest `ts` of the events `query` matches (its cursor, limit, total
    /// and histogram are ignored); `None` when nothing matches.
    async fn bounds(
        &self,
        tenant: TenantId,
        query: &ListQuery,
    ) -> Result<Option<(Timestamp, Timestamp)>, StoreError>;

    /// Aggregates a tenant's events per time bucket and group.
    ///
    /// The events are those matching `query.filter` with `from <= ts < to`. Buckets run from
    /// `interval.floor(from)` to `to` ([`StoreError::InvalidQuery`] beyond [`MAX_BUCKETS`]).
    /// `count` counts events; the other aggregations take the numeric values of
    /// `query.field` (the `value` column, or JSON numbers at a data path; other JSON types
    /// are ignored) and give `None` for a bucket without any, as does `count` for a bucket
    /// without events. Percentiles are exact ([`ingot_query::percentile`]).
    ///
    /// Without `group_by`: one series, group `None`. With it: a group per distinct value of
    /// the field (strings as they are, numbers as their JSON text, booleans as `true` /
    /// `false`; events where it is missing, null, an object or an array belong to no group),
    /// the `top` groups with the most matching events first (ties: by value, bytewise), then
    /// with `other` one more series aggregating every matching event outside those groups.
    async fn series(
        &self,
        tenant: TenantId,
        query: &SeriesQuery,
    ) -> Result<Vec<Series>, StoreError>;

    /// Deletes up to `limit` of the tenant's events with `ts < before`, oldest first, with
    /// their payloads; returns how many. Retention calls it in a loop, so each call is a
    /// short transaction that never blocks ingest for long.
    async fn delete_before(
        &self,
        tenant: TenantId,
        before: Timestamp,
        limit: usize,
    ) -> Result<u64, StoreError>;
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Storage key.
    pub id: TenantId,
    /// Unique name (`default`, `acme`).
    pub name: String,
    /// When it was created.
    pub created: Timestamp,
    /// How long its events are kept; `None`: the server's default.
    pub retention: Option<std::time::Duration>,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Read its tenant's data.
    Reader,
    /// Read, and ingest for any device of its tenant (a gateway).
    Writer,
    /// Everything within its tenant, including devices and keys.
    Admin,
    /// Everything, including creating tenants.
    System,
}

impl Role {
    /// The name used in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
            Role::System => "system",
        }
    }

    /// Parses [`Role::as_str`]'s output.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "admin" => Some(Role::Admin),
            "system" => Some(Role::System),
            _ => None,
        }
    }
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its tenant.
    pub tenant: TenantId,
    /// Its name, unique in the tenant.
    pub name: String,
    /// When it was registered.
    pub created: Timestamp,
}

/// An API key's record (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public identifier, used to revoke it.
    pub id: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// What it may do.
    pub role: Role,
    /// When it was created.
    pub created: Timestamp,
}

/// The SHA-256 of a secret; the only form in which secrets are stored.
pub type SecretHash = [u8; 32];

/// Tenants, devices and API keys.
#[async_trait]
pub trait Registry: Send + Sync + fmt::Debug + 'static {
    /// Creates a tenant; [`StoreError::AlreadyExists`] (`what`: `tenant <name>`) if the name
    /// is taken. Tenant ids are never reused.
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError>;

    /// The tenant with this name.
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError>;

    /// Every tenant, by id.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Sets (or, with `None`, clears) how long a tenant's events are kept. False if there is
    /// no such tenant.
    async fn set_tenant_retention(
        &self,
        tenant: TenantId,
        retention: Option<std::time::Duration>,
    ) -> Result<bool, StoreError>;

    /// Registers a device with its token's hash; [`StoreError::AlreadyExists`] (`what`:
    /// `device <name>`) if the name is taken in the tenant, and also (without naming the
    /// token) if another device already has this token hash.
    async fn create_device(
        &self,
        tenant: TenantId,
        name: &str,
        token: &SecretHash,
    ) -> Result<Device, StoreError>;

    /// Removes a device (its token stops working; its events stay). False if there was none.
    async fn delete_device(&self, tenant: TenantId, name: &str) -> Result<bool, StoreError>;

    /// The device whose token hashes to `token`.
    async fn device_by_token(&self, token: &SecretHash) -> Result<Option<Device>, StoreError>;

    /// Stores an API key under the public `id`; [`StoreError::AlreadyExists`] (`what`:
    /// `api key <id>`) if the id is taken (in any tenant), and also (without naming the
    /// secret) if another key already has this hash.
    async fn create_api_key(
        &self,
        tenant: TenantId,
        id: &str,
        role: Role,
        key: &SecretHash,
    ) -> Result<ApiKey, StoreError>;

    /// The live (not revoked) API key whose secret hashes to `key`.
    async fn api_key_by_hash(&self, key: &SecretHash) -> Result<Option<ApiKey>, StoreError>;

    /// Revokes a tenant's key by id. False if the tenant has no live key with that id.
    async fn revoke_api_key(&self, tenant: TenantId, id: &str) -> Result<bool, StoreError>;
}

/// Both contracts, as one backend provides them.
pub trait Store: EventStore + Registry {}

impl<T: EventStore + Registry> Store for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_refuses_garbage() {
        let c = Cursor {
            ts: Timestamp::from_micros(-5),
            id: EventId::parse("a:b").unwrap(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "!!", "bm9jb2xvbg", "MTIz"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
