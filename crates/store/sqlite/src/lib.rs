//! Ingot's embedded store: events and the registry (tenants, devices, API keys) in one
//! SQLite file in the data directory. [`SqliteStore`] implements [`EventStore`] and
//! [`Registry`] and passes the shared suite in `ingot_store::conformance`.
//!
//! # Schema (version 1, `PRAGMA user_version`)
//!
//! ```text
//! tenants     (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, created)
//! events      (tenant, ts, id, device, sensor, kind, value REAL, received, data TEXT)
//!             PRIMARY KEY (tenant, ts, id)                               WITHOUT ROWID
//!             UNIQUE INDEX events_by_id     (tenant, id)
//!             INDEX        events_by_device (tenant, device, ts, id)
//! payloads    (tenant, id, content_type, bytes BLOB)  PRIMARY KEY (tenant, id)
//! checkpoints (consumer, topic, partition, next_offset)
//!             PRIMARY KEY (consumer, topic, partition)                   WITHOUT ROWID
//! devices     (tenant → tenants, name, token_hash BLOB UNIQUE, created)
//!             PRIMARY KEY (tenant, name)                                 WITHOUT ROWID
//! api_keys    (id PRIMARY KEY, tenant → tenants, role, key_hash BLOB UNIQUE, created,
//!              revoked NULL | µs)                                        WITHOUT ROWID
//! ```
//!
//! Every table is `STRICT`, so a wrongly typed value is an error rather than a silent
//! conversion. Times are microseconds since the epoch (`INTEGER`).
//!
//! - **`events` is clustered on `(tenant, ts, id)`**: a `WITHOUT ROWID` table whose
//!   primary key is the listing order. Newest-first listing, time ranges and, later,
//!   histograms and per-bucket aggregations are range scans of the table itself, with
//!   every column at hand and no per-row lookup, whatever order events arrived in (an
//!   edge gateway forwarding hours of buffered events included). An insert updates three
//!   b-trees; a rowid table needs four (table, `(tenant, id)`, `(tenant, ts, id)`, device).
//!   Measured on 1M events (`examples/write_rate.rs`): both layouts insert at the same
//!   rate within this machine's noise, the rowid one takes 8% more space, answers a
//!   per-device page faster (0.7 vs 1.4 ms: an integer lookup per row instead of a key
//!   lookup) and needs a lookup per row for anything but counts in a time range. The cost
//!   of this layout: rows above ~1 KB (large `data` documents) spill into overflow pages,
//!   where a rowid table would only spill above ~4 KB; sensor events are far smaller.
//! - **`events_by_id`** makes writes idempotent: inserts are `ON CONFLICT DO NOTHING`, and
//!   the statement's change count tells inserted from duplicate with no extra lookup.
//!   Generated ids are time-ordered ULIDs, so its inserts append at the right edge.
//! - **`events_by_device`** serves per-device listing newest first without sorting (`id`
//!   is named so the index order covers the whole `ORDER BY`; the primary key columns
//!   are appended to the entries anyway, so naming it costs nothing). It is also the
//!   main cost of a write: a batch dirties one of its leaf pages per active device. Sensor
//!   and kind filters are checked while scanning one of the two orders; indexes for them
//!   are left to the query work, once its plans are known.
//! - **Binary payloads live in `payloads`**, a rowid table (large blobs are what rowid
//!   tables are for), so scans of `events` never read picture bytes. Listing never
//!   touches it; [`EventStore::get_event`] joins it.
//! - **`tenants` uses `AUTOINCREMENT`** so a tenant id is never reused: events are keyed by
//!   the number, and a reused number would hand old events to a new tenant.
//! - `events` has no foreign key to `tenants`: the writer only ever stores events whose
//!   tenant ingest resolved from credentials, and a per-row check would cost insert speed.
//!   Devices and API keys do reference their tenant (a create for a tenant that does not
//!   exist is [`StoreError::InvalidQuery`]).
//! - SQLite stores a NaN `REAL` as `NULL` and reads `-0.0` back as `0.0`; readings never
//!   carry NaN (JSON cannot express it) and `-0.0 == 0.0`.
//!
//! # Listing
//!
//! Keyset pagination: the cursor is the last `(ts, id)` returned, and the next page is
//! `(ts, id) < (cursor.ts, cursor.id) ORDER BY ts DESC, id DESC LIMIT n + 1` (the extra row
//! only tells whether a next page exists). Filters are bound parameters; the SQL text is
//! chosen from 48 fixed shapes and never contains a value. Two details keep every page a
//! single index range (`EXPLAIN QUERY PLAN`, asserted for all shapes by a unit test):
//!
//! - Of `ts < to` and the cursor, only the stricter reaches SQLite, which would otherwise
//!   range by one and filter by the other, so a deep page would rescan all before it:
//!   `SEARCH events USING PRIMARY KEY (tenant=? AND ts>? AND (ts,id)<(?,?))`.
//! - With a device, the statement says `INDEXED BY events_by_device`: without statistics
//!   SQLite assumes `tenant = ?` is selective and would scan the tenant's whole primary
//!   key range filtering on device. The device index is never worse (the same ts range
//!   plus the device, in the same order):
//!   `SEARCH events USING INDEX events_by_device (tenant=? AND device=? AND (ts,id)<(?,?))`.
//!
//! # Durability: no loss, no duplicates
//!
//! The store writer reads a batch from the log and calls [`EventStore::write_batch`] with
//! the events and the log offsets that follow them. The events, their payloads and the
//! checkpoint are written in **one transaction**, and the database runs in WAL mode with
//! `synchronous = FULL`: the commit returns only after the WAL is fsynced. So after a
//! crash or power loss the file holds either the whole batch *and* its checkpoint, or
//! neither. On restart the writer reads the checkpoint and resumes from it:
//!
//! - nothing is lost, because the checkpoint never gets ahead of the stored events;
//! - nothing is duplicated, because the checkpoint never lags the events it covers, and
//!   should the writer replay something anyway (it crashed after the commit but before
//!   it learned of it), `events_by_id` skips the events already stored.
//!
//! One fsync per commit is cheap because the writer commits batches of thousands of
//! events. Registry writes commit one statement each and are durable before they return,
//! which matters because the caller shows the new secret to a user right after. The WAL
//! is copied into the database every 16,384 pages rather than SQLite's default 1,000 (see
//! `schema.rs`), so opening after a crash may replay up to ~64 MB of WAL; a clean
//! [`SqliteStore::close`] leaves none.
//!
//! # Concurrency
//!
//! One read-write connection (a pool of one) and [`READERS`] read-only connections. Every
//! SQLite call runs in `tokio::task::spawn_blocking` on a connection lent by the pool; a
//! caller waits for a connection asynchronously, never on a runtime thread. Writes (event
//! batches, registry changes) are serialized on the writer, which SQLite would do anyway
//! (one writer per database); in WAL mode reads never wait for the writer and see the
//! last committed state when their statement starts, so listings run while a large batch
//! commits. Connections use a 5 s busy timeout for locks held by other processes; a lock
//! that outlasts it is [`StoreError::Unavailable`], as is a full disk.
//!
//! Once a call has handed its work to a blocking task, dropping the call's future does not
//! cancel the work: a `write_batch` may still commit, which is safe because the batch and
//! its checkpoint commit together.
//!
//! # Opening
//!
//! [`SqliteStore::open`] creates the file (and its directory), switches it to WAL, and
//! applies pending migrations in one transaction keyed on `PRAGMA user_version`; a file
//! written by a newer build is refused. On an empty directory this takes about 5 ms on
//! the development machine (`examples/write_rate.rs` prints it).

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ingot_core::{Event, EventId, TenantId, Timestamp};
use ingot_store::{
    ApiKey, Checkpoint, Dashboard, Device, DeviceUpdate, EventPage, EventStore, GeoCell, GeoGrid,
    ListQuery, Purge, Registry, Role, SecretHash, Series, SeriesQuery, StoreError, Tenant,
    WriteOutcome,
};

mod error;
mod events;
mod pool;
mod query;
mod registry;
mod schema;

use pool::Pool;

/// How many read-only connections a store keeps: enough for the API's concurrent
/// queries on a small machine, while the writer commits.
pub const READERS: usize = 4;

/// Events and registry in one SQLite file; see the [crate docs](crate) for the design.
pub struct SqliteStore {
    path: PathBuf,
    writer: Pool,
    readers: Pool,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the location and the pool sizes: a store holds no secrets, and connections
        // are not worth printing.
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("writers", &self.writer.size())
            .field("readers", &self.readers.size())
            .finish()
    }
}

impl SqliteStore {
    /// Opens the store at `path` (a file, created with its directory if missing) and
    /// brings its schema up to date.
    ///
    /// This blocks for a few milliseconds on a new or current file; a migration of a large
    /// file can take longer, so async callers that cannot afford that should run it in
    /// `spawn_blocking`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let in_context = |err: StoreError| match err {
            StoreError::Backend(msg) => StoreError::Backend(format!("{}: {msg}", path.display())),
            StoreError::Unavailable(msg) => {
                StoreError::Unavailable(format!("{}: {msg}", path.display()))
            }
            other => other,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let writer = schema::open_writer(path).map_err(in_context)?;
        let readers = (0..READERS)
            .map(|_| schema::open_reader(path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(in_context)?;
        tracing::debug!(path = %path.display(), schema = schema::VERSION, "sqlite store opened");
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Pool::new(vec![writer]),
            readers: Pool::new(readers),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for running calls to finish, then closes every connection (the last one
    /// checkpoints and removes the WAL). Later calls fail with
    /// [`StoreError::Unavailable`]. Dropping the store also closes the connections, but
    /// on the dropping thread and without reporting errors.
    pub async fn close(&self) -> Result<(), StoreError> {
        let readers = self.readers.close().await;
        let writer = self.writer.close().await;
        readers.and(writer)
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn write_batch(
        &self,
        events: Vec<Event>,
        checkpoint: &Checkpoint,
    ) -> Result<WriteOutcome, StoreError> {
        let offsets = events::checkpoint_offsets(checkpoint)?;
        let consumer = checkpoint.consumer.clone();
        let topic = checkpoint.topic.clone();
        self.writer
            .run(move |conn| events::write_batch(conn, &events, &consumer, &topic, &offsets))
            .await
    }

    async fn checkpoint(&self, consumer: &str, topic: &str) -> Result<Vec<(u32, u64)>, StoreError> {
        let (consumer, topic) = (consumer.to_owned(), topic.to_owned());
        self.readers
            .run(move |conn| events::checkpoint(conn, &consumer, &topic))
            .await
    }

    async fn list_events(
        &self,
        tenant: TenantId,
        query: &ListQuery,
    ) -> Result<EventPage, StoreError> {
        query.check()?;
        let query = query.clone();
        self.readers
            .run(move |conn| events::list(conn, tenant, &query))
            .await
    }

    async fn get_event(&self, tenant: TenantId, id: &EventId) -> Result<Option<Event>, StoreError> {
        let id = id.clone();
        self.readers
            .run(move |conn| events::get(conn, tenant, &id))
            .await
    }

    async fn bounds(
        &self,
        tenant: TenantId,
        query: &ListQuery,
    ) -> Result<Option<(Timestamp, Timestamp)>, StoreError> {
        let query = query.clone();
        self.readers
            .run(move |conn| query::bounds(conn, tenant, &query))
            .await
    }

    async fn series(
        &self,
        tenant: TenantId,
        query: &SeriesQuery,
    ) -> Result<Vec<Series>, StoreError> {
        let query = query.clone();
        self.readers
            .run(move |conn| query::series(conn, tenant, &query))
            .await
    }

    async fn geo_grid(
        &self,
        tenant: TenantId,
        query: &ListQuery,
        grid: &GeoGrid,
    ) -> Result<Vec<GeoCell>, StoreError> {
        grid.check()?;
        let (query, grid) = (query.clone(), grid.clone());
        self.readers
            .run(move |conn| query::geo_grid(conn, tenant, &query, &grid))
            .await
    }

    async fn device_activity(
        &self,
        tenant: TenantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, u64, Timestamp)>, StoreError> {
        self.readers
            .run(move |conn| query::device_activity(conn, tenant, from, to))
            .await
    }

    async fn delete_before(
        &self,
        tenant: TenantId,
        before: Timestamp,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.writer
            .run(move |conn| query::delete_before(conn, tenant, before, limit))
            .await
    }
}

#[async_trait]
impl Registry for SqliteStore {
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let name = name.to_owned();
        self.writer
            .run(move |conn| registry::create_tenant(conn, &name))
            .await
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let name = name.to_owned();
        self.readers
            .run(move |conn| registry::tenant_by_name(conn, &name))
            .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.readers.run(|conn| registry::list_tenants(conn)).await
    }

    async fn set_tenant_retention(
        &self,
        tenant: TenantId,
        retention: Option<std::time::Duration>,
    ) -> Result<bool, StoreError> {
        self.writer
            .run(move |conn| registry::set_tenant_retention(conn, tenant, retention))
            .await
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        self.readers
            .run(move |conn| registry::tenant(conn, id))
            .await
    }

    async fn set_tenant_disabled(
        &self,
        tenant: TenantId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        self.writer
            .run(move |conn| registry::set_tenant_disabled(conn, tenant, disabled))
            .await
    }

    async fn mark_tenant_deleting(&self, tenant: TenantId) -> Result<bool, StoreError> {
        self.writer
            .run(move |conn| registry::mark_tenant_deleting(conn, tenant))
            .await
    }

    async fn purge_tenant(&self, tenant: TenantId, limit: usize) -> Result<Purge, StoreError> {
        self.writer
            .run(move |conn| registry::purge_tenant(conn, tenant, limit))
            .await
    }

    async fn create_device(
        &self,
        tenant: TenantId,
        name: &str,
        token: &SecretHash,
    ) -> Result<Device, StoreError> {
        let (name, token) = (name.to_owned(), *token);
        self.writer
            .run(move |conn| registry::create_device(conn, tenant, &name, &token))
            .await
    }

    async fn delete_device(&self, tenant: TenantId, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.writer
            .run(move |conn| registry::delete_device(conn, tenant, &name))
            .await
    }

    async fn device_by_token(
        &self,
        token: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<Device>, StoreError> {
        let token = *token;
        self.readers
            .run(move |conn| registry::device_by_token(conn, &token, now))
            .await
    }

    async fn list_devices(&self, tenant: TenantId) -> Result<Vec<Device>, StoreError> {
        self.readers
            .run(move |conn| registry::list_devices(conn, tenant))
            .await
    }

    async fn get_device(&self, tenant: TenantId, name: &str) -> Result<Option<Device>, StoreError> {
        let name = name.to_owned();
        self.readers
            .run(move |conn| registry::get_device(conn, tenant, &name))
            .await
    }

    async fn update_device(
        &self,
        tenant: TenantId,
        name: &str,
        update: &DeviceUpdate,
    ) -> Result<Option<Device>, StoreError> {
        let (name, update) = (name.to_owned(), update.clone());
        self.writer
            .run(move |conn| registry::update_device(conn, tenant, &name, &update))
            .await
    }

    async fn rotate_device_token(
        &self,
        tenant: TenantId,
        name: &str,
        token: &SecretHash,
        previous_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let (name, token) = (name.to_owned(), *token);
        self.writer
            .run(move |conn| {
                registry::rotate_device_token(conn, tenant, &name, &token, previous_until)
            })
            .await
    }

    async fn touch_devices(
        &self,
        tenant: TenantId,
        seen: &[(String, Timestamp)],
    ) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        let seen = seen.to_vec();
        self.writer
            .run(move |conn| registry::touch_devices(conn, tenant, &seen))
            .await
    }

    async fn create_api_key(
        &self,
        tenant: TenantId,
        id: &str,
        role: Role,
        key: &SecretHash,
        expires: Option<Timestamp>,
    ) -> Result<ApiKey, StoreError> {
        let (id, key) = (id.to_owned(), *key);
        self.writer
            .run(move |conn| registry::create_api_key(conn, tenant, &id, role, &key, expires))
            .await
    }

    async fn api_key_by_hash(
        &self,
        key: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError> {
        let key = *key;
        self.readers
            .run(move |conn| registry::api_key_by_hash(conn, &key, now))
            .await
    }

    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.readers
            .run(move |conn| registry::list_api_keys(conn, tenant))
            .await
    }

    async fn revoke_api_key(&self, tenant: TenantId, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer
            .run(move |conn| registry::revoke_api_key(conn, tenant, &id))
            .await
    }

    async fn list_dashboards(&self, tenant: TenantId) -> Result<Vec<Dashboard>, StoreError> {
        self.readers
            .run(move |conn| registry::list_dashboards(conn, tenant))
            .await
    }

    async fn get_dashboard(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<Dashboard>, StoreError> {
        let id = id.to_owned();
        self.readers
            .run(move |conn| registry::get_dashboard(conn, tenant, &id))
            .await
    }

    async fn put_dashboard(&self, dashboard: &Dashboard) -> Result<(), StoreError> {
        let dashboard = dashboard.clone();
        self.writer
            .run(move |conn| registry::put_dashboard(conn, &dashboard))
            .await
    }

    async fn delete_dashboard(&self, tenant: TenantId, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer
            .run(move |conn| registry::delete_dashboard(conn, tenant, &id))
            .await
    }
}
