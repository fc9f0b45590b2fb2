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

impl ListQuery {
    /// Refuses a page size outside `1..=MAX_PAGE`, before anything reaches a database.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.limit == 0 || self.limit > MAX_PAGE {
            return Err(StoreError::InvalidQuery(format!(
                "limit must be between 1 and {MAX_PAGE}, not {}",
                self.limit
            )));
        }
        Ok(())
    }

    /// The upper end of the listing's range, reduced to the stricter of `to` and the
    /// cursor. Backends send at most one bound to the database: given `ts < to` and the
    /// cursor's `(ts, id) < (…)`, an index scan ranges over one of them and only filters
    /// by the other, which would make each page of a deep listing rescan everything
    /// before it.
    pub fn upper(&self) -> Upper<'_> {
        let to = self.to.map(Timestamp::as_micros);
        let cursor = self
            .cursor
            .as_ref()
            .map(|c| (c.ts.as_micros(), c.id.as_str()));
        match (to, cursor) {
            (None, None) => Upper::None,
            (Some(to), None) => Upper::Before(to),
            // The cursor's ts is below `to`: everything after it is below `to` too.
            (None, Some((ts, id))) => Upper::After(ts, id),
            (Some(to), Some((ts, id))) if ts < to => Upper::After(ts, id),
            // Otherwise every row below `to` is also after the cursor.
            (Some(to), Some(_)) => Upper::Before(to),
        }
    }
}

/// The upper end of a listing's range, in microseconds ([`ListQuery::upper`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upper<'q> {
    /// No upper end.
    None,
    /// `ts < to`.
    Before(i64),
    /// `(ts, id) < (ts, id)`: strictly after the cursor in newest-first order.
    After(i64, &'q str),
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

/// A latitude/longitude grid for [`EventStore::geo_grid`]: where an event's position is
/// read from, and how fine the grid is.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoGrid {
    /// The data path of the latitude (`["location", "lat"]`).
    pub lat: Vec<String>,
    /// The data path of the longitude (`["location", "lon"]`).
    pub lon: Vec<String>,
    /// The side of a cell in degrees: finite and at least [`MIN_GEO_CELL`].
    pub cell: f64,
    /// The most cells an answer may hold, 1 to [`MAX_GEO_CELLS`]; more occupied cells is
    /// [`StoreError::InvalidQuery`].
    pub limit: usize,
}

impl GeoGrid {
    /// Refuses a grid no backend answers: a cell below [`MIN_GEO_CELL`] or not finite, a
    /// limit outside 1 to [`MAX_GEO_CELLS`], an empty path.
    pub fn check(&self) -> Result<(), StoreError> {
        if !(self.cell.is_finite() && self.cell >= MIN_GEO_CELL) {
            return Err(StoreError::InvalidQuery(format!(
                "a geo cell of {} degrees; it must be at least {MIN_GEO_CELL}",
                self.cell
            )));
        }
        if !(1..=MAX_GEO_CELLS).contains(&self.limit) {
            return Err(StoreError::InvalidQuery(format!(
                "a geo limit of {}; it must be from 1 to {MAX_GEO_CELLS}",
                self.limit
            )));
        }
        if self.lat.is_empty() || self.lon.is_empty() {
            return Err(StoreError::InvalidQuery(
                "a geo grid needs a latitude and a longitude path".into(),
            ));
        }
        Ok(())
    }

    /// The error for an answer with more than `limit` cells.
    pub fn too_many_cells(&self) -> StoreError {
        StoreError::InvalidQuery(format!(
            "more than {} occupied cells of {} degrees: choose a larger cell",
            self.limit, self.cell
        ))
    }
}

/// The finest [`GeoGrid::cell`], in degrees (about 11 m).
pub const MIN_GEO_CELL: f64 = 0.0001;

/// The most cells a [`GeoGrid`] answer may be asked to hold (a whole 1° world grid fits).
pub const MAX_GEO_CELLS: usize = 65_000;

/// One occupied cell of a [`GeoGrid`]: the cell `[row * cell, (row + 1) * cell)` of
/// latitude and `[col * cell, (col + 1) * cell)` of longitude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeoCell {
    /// `floor(lat / cell)`.
    pub row: i64,
    /// `floor(lon / cell)`.
    pub col: i64,
    /// The events positioned in it.
    pub count: u64,
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

    /// Counts the events `query` matches per cell of a latitude/longitude grid (its
    /// cursor, limit, total and histogram are ignored), for geo heat maps.
    ///
    /// An event has a position when both of `grid`'s paths hold JSON numbers, the latitude
    /// within ±90 and the longitude within ±180; events without one are not counted. The
    /// answer lists the occupied cells ordered by `(row, col)`; more than `grid.limit` of
    /// them, or a `cell` below [`MIN_GEO_CELL`] or not finite, is
    /// [`StoreError::InvalidQuery`].
    async fn geo_grid(
        &self,
        tenant: TenantId,
        query: &ListQuery,
        grid: &GeoGrid,
    ) -> Result<Vec<GeoCell>, StoreError>;

    /// For each device with events in `[from, to)`: how many, and the newest `ts`; by
    /// device name.
    async fn device_activity(
        &self,
        tenant: TenantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, u64, Timestamp)>, StoreError>;

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
    /// A disabled tenant's credentials are refused everywhere; its data stays.
    pub disabled: bool,
    /// Being deleted: refused everywhere, its data purged in the background.
    pub deleting: bool,
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
    /// A disabled device's token is refused; its events stay.
    pub enabled: bool,
    /// Free-form labels (`site=plant-7`).
    pub labels: std::collections::BTreeMap<String, String>,
    /// When its credentials were last used, if ever (recorded in batches: minutes late at
    /// worst).
    pub last_seen: Option<Timestamp>,
    /// During a token rotation: until when the previous token still works.
    pub previous_token_until: Option<Timestamp>,
}

/// A change to a device; `None` fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceUpdate {
    /// Enable or disable it.
    pub enabled: Option<bool>,
    /// Replace its labels.
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

/// A saved dashboard: a named document of widgets, kept per tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// Its tenant.
    pub tenant: TenantId,
    /// Identifier, unique in the tenant (`fleet-overview`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The widgets and layout, as the UI stores them (any JSON object).
    pub spec: ingot_core::JsonText,
    /// When it was last saved.
    pub updated: Timestamp,
}

/// How far [`Registry::purge_tenant`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purge {
    /// Events deleted by this call.
    pub events: u64,
    /// Whether the tenant is entirely gone.
    pub done: bool,
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
    /// After this instant the key no longer works; `None`: never expires.
    pub expires: Option<Timestamp>,
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

    /// The tenant with this id.
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError>;

    /// Disables or re-enables a tenant. False if there is no such tenant (or it is being
    /// deleted).
    async fn set_tenant_disabled(
        &self,
        tenant: TenantId,
        disabled: bool,
    ) -> Result<bool, StoreError>;

    /// Marks a tenant as being deleted (refused everywhere from now on); its data goes with
    /// [`Registry::purge_tenant`]. False if there is no such tenant.
    async fn mark_tenant_deleting(&self, tenant: TenantId) -> Result<bool, StoreError>;

    /// Deletes up to `limit` events (with payloads) of a tenant marked deleting; once none
    /// is left, deletes its devices, keys, dashboards and the tenant itself (`done`).
    /// Refuses ([`StoreError::InvalidQuery`]) a tenant not marked deleting.
    async fn purge_tenant(&self, tenant: TenantId, limit: usize) -> Result<Purge, StoreError>;

    /// Registers a device (enabled, no labels) with its token's hash;
    /// [`StoreError::AlreadyExists`] (`what`: `device <name>`) if the name is taken in the
    /// tenant, and also (without naming the token) if another device already has this
    /// token hash.
    async fn create_device(
        &self,
        tenant: TenantId,
        name: &str,
        token: &SecretHash,
    ) -> Result<Device, StoreError>;

    /// Removes a device (its token stops working; its events stay). False if there was none.
    async fn delete_device(&self, tenant: TenantId, name: &str) -> Result<bool, StoreError>;

    /// The device whose current token hashes to `token`, or whose previous token does while
    /// its rotation grace lasts (at `now`). Disabled devices are returned too (`enabled` is
    /// false): refusing them is the caller's decision.
    async fn device_by_token(
        &self,
        token: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<Device>, StoreError>;

    /// A tenant's devices, by name.
    async fn list_devices(&self, tenant: TenantId) -> Result<Vec<Device>, StoreError>;

    /// One device.
    async fn get_device(&self, tenant: TenantId, name: &str) -> Result<Option<Device>, StoreError>;

    /// Changes a device; `None` if there is no such device.
    async fn update_device(
        &self,
        tenant: TenantId,
        name: &str,
        update: &DeviceUpdate,
    ) -> Result<Option<Device>, StoreError>;

    /// Gives a device a new token; the current one keeps working until `previous_until`
    /// (an earlier rotation's previous token stops at once). False if there is no such
    /// device; [`StoreError::AlreadyExists`] if another device has this token hash.
    async fn rotate_device_token(
        &self,
        tenant: TenantId,
        name: &str,
        token: &SecretHash,
        previous_until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Records when devices were last seen (never moving a device's time backwards).
    /// Unknown names are ignored.
    async fn touch_devices(
        &self,
        tenant: TenantId,
        seen: &[(String, Timestamp)],
    ) -> Result<(), StoreError>;

    /// Stores an API key under the public `id`, expiring at `expires` if given;
    /// [`StoreError::AlreadyExists`] (`what`: `api key <id>`) if the id is taken (in any
    /// tenant), and also (without naming the secret) if another key already has this hash.
    async fn create_api_key(
        &self,
        tenant: TenantId,
        id: &str,
        role: Role,
        key: &SecretHash,
        expires: Option<Timestamp>,
    ) -> Result<ApiKey, StoreError>;

    /// The live API key whose secret hashes to `key`: not revoked, and not expired at `now`.
    async fn api_key_by_hash(
        &self,
        key: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError>;

    /// A tenant's keys that are not revoked (expired ones included, with their expiry), by
    /// creation time.
    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes a tenant's key by id. False if the tenant has no live key with that id.
    async fn revoke_api_key(&self, tenant: TenantId, id: &str) -> Result<bool, StoreError>;

    /// A tenant's dashboards, by id.
    async fn list_dashboards(&self, tenant: TenantId) -> Result<Vec<Dashboard>, StoreError>;

    /// One dashboard.
    async fn get_dashboard(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<Dashboard>, StoreError>;

    /// Creates or replaces a dashboard (by tenant and id).
    async fn put_dashboard(&self, dashboard: &Dashboard) -> Result<(), StoreError>;

    /// Deletes a dashboard. False if there was none.
    async fn delete_dashboard(&self, tenant: TenantId, id: &str) -> Result<bool, StoreError>;
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
