//! Ingot's scale-out store: events and the registry (tenants, devices, API keys) in
//! PostgreSQL, shared by any number of stateless `ingot` replicas. [`PostgresStore`]
//! implements [`EventStore`] and [`Registry`] and passes the shared suite in
//! `ingot_store::conformance`, the same one the SQLite backend passes.
//!
//! # Schema (version 1, table `ingot_schema`)
//!
//! ```text
//! tenants      (id bigint IDENTITY PRIMARY KEY, name text UNIQUE, created, retention)
//! events       (tenant, ts, received bigint; value float8;
//!               id, device, sensor, kind text COLLATE "C"; data jsonb; data_text text)
//!              PRIMARY KEY  events_pkey      (tenant, ts, id)
//!              UNIQUE INDEX events_by_id     (tenant, id)          plain layout only
//!              INDEX        events_by_device (tenant, device, ts, id)
//! payloads     (tenant, id, content_type, bytes bytea STORAGE EXTERNAL)
//!              PRIMARY KEY (tenant, id)
//! checkpoints  (consumer, topic, partition, next_offset)
//!              PRIMARY KEY (consumer, topic, partition)
//! devices      (tenant → tenants, name, token_hash bytea UNIQUE, created)
//!              PRIMARY KEY (tenant, name)
//! api_keys     (id PRIMARY KEY, tenant → tenants, role, key_hash bytea UNIQUE,
//!               created, revoked NULL | µs)
//! ingot_schema (version, layout 'plain' | 'hypertable')   one row
//! event_ids    (tenant, id, ts)  PRIMARY KEY (tenant, id)  hypertable layout only
//! ```
//!
//! The tables, columns and meanings of the SQLite backend's schema, so the two are one
//! design in two dialects. Times are microseconds since the epoch (`bigint`), so buckets
//! are the same integer arithmetic in both: `(ts - origin) / width`.
//!
//! - **`(tenant, ts, id)` is the primary key**, the listing order: newest-first pages,
//!   time ranges, histograms and per-bucket aggregations are ranges of one B-tree. (A
//!   PostgreSQL table is a heap, so unlike SQLite's `WITHOUT ROWID` table each row found
//!   is one more heap read; rows arrive roughly in `ts` order, so those reads are mostly
//!   sequential.)
//! - **`events_by_id`** makes writes idempotent (`ON CONFLICT DO NOTHING`); ids are
//!   time-ordered, so its inserts append at the right edge. **`events_by_device`** serves
//!   per-device listing newest first without sorting. Sensor and kind filters are checked
//!   while scanning one of the two orders, as in SQLite.
//! - **Text columns are `COLLATE "C"`**: ids, names and text comparisons order bytewise,
//!   as the contract says, whatever the database's locale (and `C` compares fastest).
//! - **`data` is `jsonb`**: parsed once at write, so filters and aggregations read paths
//!   from the binary form (`data #> $path`) instead of re-parsing text per row.
//! - **Tenant ids are `bigint`**: a `TenantId` is a `u32`, which `integer` cannot hold;
//!   index entries are the same size either way (alignment). Identity values are never
//!   reused (sequences never go back), so old events never reach a new tenant.
//! - **Binary payloads live in `payloads`**, out of the way of scans of `events`,
//!   `STORAGE EXTERNAL` because pictures are already compressed. Listing never reads it.
//! - `events` has no foreign key to `tenants` (the writer only stores events whose tenant
//!   ingest resolved, and a per-row check costs insert speed); devices and keys have one.
//!
//! ## TimescaleDB (the hypertable layout)
//!
//! When a new schema is created, the `timescaledb` extension is available and can be
//! created, and [`PostgresOptions::timescale`] allows it (the default), `events` becomes
//! a hypertable on `ts` (integer time, 1-day chunks in µs, an `integer_now` function for
//! policies). A hypertable's unique indexes must contain the time column, so
//! `events_by_id` cannot exist there: `event_ids (tenant, id)` decides what is new
//! instead (its primary key is the idempotency check, taken first in the write
//! statement), and lookups by id take `ts` from it to reach one chunk. The choice is
//! recorded in `ingot_schema.layout` and never changes for an existing schema
//! ([`Layout`]).
//!
//! TimescaleDB cannot be installed on the development machine, so the hypertable
//! conversion itself (`create_hypertable`, `set_integer_now_func` in `schema.rs`) is
//! untested here. Everything else of that layout is: the unit tests run the whole
//! conformance suite on the `event_ids` tables and statements over a plain `events`
//! table. The suite proper (`tests/conformance.rs`) runs the plain layout.
//!
//! # Writes
//!
//! [`EventStore::write_batch`] sends the batch with a binary `COPY` into a session-local
//! temporary staging table and moves it into `events` with one `INSERT … SELECT … ON
//! CONFLICT DO NOTHING`, payloads of the inserted rows with it, then upserts the
//! checkpoint, all in one transaction (details, and why concurrent writers cannot
//! deadlock, in `events.rs`). COPY is the fastest way into PostgreSQL, and COPY has no
//! conflict handling: staging is what keeps it idempotent. The call runs in a task of its
//! own, so once started, dropping its future does not cut it short. Measured with
//! `examples/copy_vs_ingot.rs` against a raw binary COPY of the same rows into a table
//! with the same indexes: about 0.7 of the raw rate (target: at least 0.5).
//!
//! # Queries
//!
//! Filters compile to SQL with `$n` parameters only, predicate for predicate the same as
//! the SQLite backend's (`query.rs`); the only name ever written into SQL text is the
//! validated schema name in `CREATE SCHEMA`. Statements are prepared once per connection
//! and cached. Listing is keyset pagination: `(ts, id) < ($ts, $id) ORDER BY ts DESC, id
//! DESC LIMIT n + 1` (the extra row only tells whether a next page exists), with only the
//! stricter of `to` and the cursor as the upper end, so every page is one backward range
//! of `events_pkey` or, with a device, `events_by_device`: a unit test checks all 48
//! statement shapes with `EXPLAIN`, for custom and generic plans, on an analyzed table
//! (no sort, no sequential scan, time bounds and cursor in the index condition).
//! Totals, histograms, bounds and series are single statements; percentiles are
//! `percentile_cont(q) WITHIN GROUP (ORDER BY v)`, exactly the reference's interpolation,
//! and the top groups and `other` are chosen in SQL, so even `other`'s percentile is
//! exact.
//!
//! # What differs from SQLite
//!
//! - **`data` comes back as the same JSON value, not the same text**: `jsonb` reorders
//!   keys (by length, then bytewise), keeps the last of duplicate keys, and prints numbers
//!   as `numeric` does (`1e3` reads back as `1000`, `-0` as `0`); the text is compact
//!   again when read. The contract says so (`ingot-store`'s crate docs), and the suite
//!   compares documents as JSON values.
//! - **Group names of numbers** are the number as `jsonb` prints it (`4.2e1` groups as
//!   `42`), and grouping by `value` uses `float8`'s text (`15`, where SQLite says `15.0`).
//! - **What `jsonb` or `text` cannot hold does not fail a batch** (a failing batch would
//!   stop the writer for good, since it retries until the store accepts): a document with
//!   `\u0000` or an unpaired surrogate escape is also kept verbatim in `data_text`, which
//!   reading prefers, and filters see U+FFFD in place of the refused escape; a NUL
//!   character in a name or content type (ingest never lets one through) is stored as
//!   U+FFFD.
//! - **Concurrency**: any number of writers and readers on any number of replicas (MVCC),
//!   where SQLite has one writer per file.
//!
//! # Durability: no loss, no duplicates
//!
//! The events, their payloads and the writer's checkpoint commit in one transaction, and
//! every session sets `synchronous_commit = on` (a server default of `off` does not
//! weaken it), so a commit returns after its WAL is flushed: after a crash the database
//! holds a batch and its checkpoint, or neither. The writer resumes from the checkpoint,
//! so nothing is lost; should it replay a batch that did commit (it crashed before
//! learning so), the unique `(tenant, id)` skips what is stored, so nothing is doubled.
//! Replicas writing at once are safe too: `ON CONFLICT DO NOTHING` waits for a concurrent
//! insert of the same id to commit or roll back, then skips or inserts. A deadlock or
//! serialization failure rolls the transaction back whole and is
//! [`StoreError::Unavailable`], which the writer retries. Registry writes are single
//! statements, durable before they return (the caller shows a new secret right after).
//! All of this relies on the server's own guarantees: `fsync = on` (the default) and
//! storage that honours it.
//!
//! # Connections
//!
//! `tokio-postgres` (pure Rust, no libpq) with a small pool of its own (`pool.rs`):
//! connections open lazily up to [`PostgresOptions::pool_size`], a connection the server
//! closed is replaced on the next call, and each keeps its prepared statements and its
//! staging table. Connections are not encrypted yet (`NoTls`): a URL with
//! `sslmode=require` is refused at connect, and until TLS support comes (see
//! `docs/decisions/0004-postgres.md`), the database belongs on a loopback, a private
//! network or behind a TLS sidecar. Errors map in one place (`error.rs`): connection
//! failures, shutdowns, full disks and deadlocks are [`StoreError::Unavailable`]; unique
//! violations are [`StoreError::AlreadyExists`] with the SQLite backend's texts; an
//! unknown tenant is [`StoreError::InvalidQuery`].
//!
//! # Connecting
//!
//! [`PostgresStore::connect`] checks the server (PostgreSQL 12 or newer, UTF8), then
//! creates or migrates the schema in one transaction under an advisory lock, so replicas
//! starting together migrate once (`schema.rs`). [`PostgresOptions::schema`] keeps every
//! table in a schema of its own, which the tests use for isolation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ingot_core::{Event, EventId, TenantId, Timestamp};
use ingot_store::{
    ApiKey, Checkpoint, Dashboard, Device, DeviceUpdate, EventPage, EventStore, GeoCell, GeoGrid,
    ListQuery, Purge, Registry, Role, SecretHash, Series, SeriesQuery, StoreError, Tenant,
    WriteOutcome,
};

mod error;
mod events;
mod json;
mod pool;
mod query;
mod registry;
mod schema;
#[cfg(test)]
#[path = "../tests/support/mod.rs"]
mod support;

pub use schema::Layout;

use pool::Pool;

/// How a [`PostgresStore`] connects; [`Default`] suits one server process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The most connections the store opens (at least 1; default 8). Each concurrent
    /// call holds one; the store writer holds one while it commits a batch.
    pub pool_size: usize,
    /// Keep every table in this schema (created if missing) instead of the connection's
    /// default (`public`): several stores can share a database. Lowercase ASCII letters,
    /// digits and `_`, starting with a letter or `_`, at most 63 bytes.
    pub schema: Option<String>,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// Make `events` a TimescaleDB hypertable when a new schema is created and the
    /// extension can be created (default true; see the crate docs).
    pub timescale: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 8,
            schema: None,
            connect_timeout: Duration::from_secs(10),
            timescale: true,
        }
    }
}

/// Events and registry in PostgreSQL; see the [crate docs](crate) for the design.
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    layout: Layout,
    /// `host:port/dbname`, for `Debug` (never the password).
    target: String,
    schema: Option<String>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Where, not how: no credentials, no connections.
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .field("schema", &self.inner.schema)
            .field("layout", &self.inner.layout)
            .field("pool_size", &self.inner.pool.size())
            .finish()
    }
}

/// Checks a schema name (see [`PostgresOptions::schema`]); it is the only name this
/// crate ever writes into SQL text.
fn check_schema_name(name: &str) -> Result<(), StoreError> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if first_ok && rest_ok && name.len() <= 63 && !name.starts_with("pg_") {
        Ok(())
    } else {
        Err(StoreError::InvalidQuery(format!(
            "schema name {name:?}: use lowercase ASCII letters, digits and _, starting with a \
             letter or _, at most 63 bytes, not starting with pg_"
        )))
    }
}

/// `host:port/dbname` of a configuration, for messages.
fn target(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{}",
        config.get_dbname().unwrap_or("(default database)")
    )
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`,
    /// or `key=value` settings) with [`PostgresOptions::default`] and brings its schema up
    /// to date.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects with explicit options.
    pub async fn connect_with(
        url: &str,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        let setup = schema::Setup::Auto {
            timescale: options.timescale,
        };
        PostgresStore::connect_setup(url, options, setup).await
    }

    async fn connect_setup(
        url: &str,
        options: PostgresOptions,
        setup: schema::Setup,
    ) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::InvalidQuery(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(schema) = &options.schema {
            check_schema_name(schema)?;
        }
        if config.get_application_name().is_none() {
            config.application_name("ingot");
        }
        // Settings of every session: commits wait for the WAL flush (see "Durability"),
        // and tables resolve in the store's schema.
        let mut settings = config.get_options().unwrap_or("").to_owned();
        settings.push_str(" -c synchronous_commit=on");
        if let Some(schema) = &options.schema {
            settings.push_str(&format!(" -c search_path={schema},public"));
        }
        config.options(settings.trim_start());
        let target = target(&config);
        let pool = Pool::new(config, options.pool_size, options.connect_timeout);
        let in_context = |err: StoreError| match err {
            StoreError::Backend(msg) => StoreError::Backend(format!("{target}: {msg}")),
            StoreError::Unavailable(msg) => StoreError::Unavailable(format!("{target}: {msg}")),
            other => other,
        };
        let layout = {
            let mut conn = pool.get().await.map_err(in_context)?;
            schema::migrate(&mut conn.client, options.schema.as_deref(), setup)
                .await
                .map_err(in_context)?
        };
        tracing::debug!(%target, schema = ?options.schema, ?layout, "postgres store connected");
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                layout,
                target,
                schema: options.schema,
            }),
        })
    }

    /// How `events` is stored in this database.
    pub fn layout(&self) -> Layout {
        self.inner.layout
    }

    /// Waits (up to 30 s) for running calls to finish, then closes every connection.
    /// Later calls fail with [`StoreError::Unavailable`]. Dropping the store also closes
    /// the connections, without waiting.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.inner.pool.close().await
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn write_batch(
        &self,
        events: Vec<Event>,
        checkpoint: &Checkpoint,
    ) -> Result<WriteOutcome, StoreError> {
        let offsets = events::checkpoint_offsets(checkpoint)?;
        let consumer = checkpoint.consumer.clone();
        let topic = checkpoint.topic.clone();
        let inner = Arc::clone(&self.inner);
        // Its own task: dropping the caller's future does not cut a COPY or a commit
        // short (the batch and its checkpoint commit together, or not at all).
        let task = tokio::spawn(async move {
            let mut conn = inner.pool.get().await?;
            events::write_batch(
                &mut conn,
                inner.layout,
                &events,
                &consumer,
                &topic,
                &offsets,
            )
            .await
        });
        match task.await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(StoreError::Unavailable(
                "the runtime is shutting down".to_owned(),
            )),
        }
    }

    async fn checkpoint(&self, consumer: &str, topic: &str) -> Result<Vec<(u32, u64)>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        events::checkpoint(&mut conn, consumer, topic).await
    }

    async fn list_events(
        &self,
        tenant: TenantId,
        query: &ListQuery,
    ) -> Result<EventPage, StoreError> {
        query.check()?;
        let mut conn = self.inner.pool.get().await?;
        events::list(&mut conn, tenant, query).await
    }

    async fn get_event(&self, tenant: TenantId, id: &EventId) -> Result<Option<Event>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        events::get(&mut conn, self.inner.layout, tenant, id).await
    }

    async fn bounds(
        &self,
        tenant: TenantId,
        query: &ListQuery,
    ) -> Result<Option<(Timestamp, Timestamp)>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        query::bounds(&mut conn, tenant, query).await
    }

    async fn series(
        &self,
        tenant: TenantId,
        query: &SeriesQuery,
    ) -> Result<Vec<Series>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        query::series(&mut conn, tenant, query).await
    }

    async fn geo_grid(
        &self,
        tenant: TenantId,
        query: &ListQuery,
        grid: &GeoGrid,
    ) -> Result<Vec<GeoCell>, StoreError> {
        grid.check()?;
        let mut conn = self.inner.pool.get().await?;
        query::geo_grid(&mut conn, tenant, query, grid).await
    }

    async fn device_activity(
        &self,
        tenant: TenantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, u64, Timestamp)>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        query::device_activity(&mut conn, tenant, from, to).await
    }

    async fn delete_before(
        &self,
        tenant: TenantId,
        before: Timestamp,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        query::delete_before(&mut conn, self.inner.layout, tenant, before, limit).await
    }
}

#[async_trait]
impl Registry for PostgresStore {
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::create_tenant(&mut conn, name).await
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::tenant_by_name(&mut conn, name).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::list_tenants(&mut conn).await
    }

    async fn set_tenant_retention(
        &self,
        tenant: TenantId,
        retention: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::set_tenant_retention(&mut conn, tenant, retention).await
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::tenant(&mut conn, id).await
    }

    async fn set_tenant_disabled(
        &self,
        tenant: TenantId,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::set_tenant_disabled(&mut conn, tenant, disabled).await
    }

    async fn mark_tenant_deleting(&self, tenant: TenantId) -> Result<bool, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::mark_tenant_deleting(&mut conn, tenant).await
    }

    async fn purge_tenant(&self, tenant: TenantId, limit: usize) -> Result<Purge, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::purge_tenant(&mut conn, self.inner.layout, tenant, limit).await
    }

    async fn create_device(
        &self,
        tenant: TenantId,
        name: &str,
        token: &SecretHash,
    ) -> Result<Device, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::create_device(&mut conn, tenant, name, token).await
    }

    async fn delete_device(&self, tenant: TenantId, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::delete_device(&mut conn, tenant, name).await
    }

    async fn device_by_token(
        &self,
        token: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<Device>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::device_by_token(&mut conn, token, now).await
    }

    async fn list_devices(&self, tenant: TenantId) -> Result<Vec<Device>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::list_devices(&mut conn, tenant).await
    }

    async fn get_device(&self, tenant: TenantId, name: &str) -> Result<Option<Device>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::get_device(&mut conn, tenant, name).await
    }

    async fn update_device(
        &self,
        tenant: TenantId,
        name: &str,
        update: &DeviceUpdate,
    ) -> Result<Option<Device>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::update_device(&mut conn, tenant, name, update).await
    }

    async fn rotate_device_token(
        &self,
        tenant: TenantId,
        name: &str,
        token: &SecretHash,
        previous_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::rotate_device_token(&mut conn, tenant, name, token, previous_until).await
    }

    async fn touch_devices(
        &self,
        tenant: TenantId,
        seen: &[(String, Timestamp)],
    ) -> Result<(), StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::touch_devices(&mut conn, tenant, seen).await
    }

    async fn create_api_key(
        &self,
        tenant: TenantId,
        id: &str,
        role: Role,
        key: &SecretHash,
        expires: Option<Timestamp>,
    ) -> Result<ApiKey, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::create_api_key(&mut conn, tenant, id, role, key, expires).await
    }

    async fn api_key_by_hash(
        &self,
        key: &SecretHash,
        now: Timestamp,
    ) -> Result<Option<ApiKey>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::api_key_by_hash(&mut conn, key, now).await
    }

    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::list_api_keys(&mut conn, tenant).await
    }

    async fn revoke_api_key(&self, tenant: TenantId, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::revoke_api_key(&mut conn, tenant, id).await
    }

    async fn list_dashboards(&self, tenant: TenantId) -> Result<Vec<Dashboard>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::list_dashboards(&mut conn, tenant).await
    }

    async fn get_dashboard(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<Dashboard>, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::get_dashboard(&mut conn, tenant, id).await
    }

    async fn put_dashboard(&self, dashboard: &Dashboard) -> Result<(), StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::put_dashboard(&mut conn, dashboard).await
    }

    async fn delete_dashboard(&self, tenant: TenantId, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.inner.pool.get().await?;
        registry::delete_dashboard(&mut conn, tenant, id).await
    }
}

/// The whole conformance suite on the hypertable layout's write and lookup path
/// (`event_ids`), on a plain `events` table: everything of that layout but TimescaleDB
/// itself, which the development machine cannot install.
#[cfg(test)]
mod event_ids_conformance {
    use std::ops::Deref;

    use crate::support::TestDb;
    use crate::{Layout, PostgresOptions, PostgresStore, schema};

    struct Fresh {
        store: PostgresStore,
        _db: TestDb,
    }

    impl Deref for Fresh {
        type Target = PostgresStore;

        fn deref(&self) -> &PostgresStore {
            &self.store
        }
    }

    async fn maybe_fresh() -> Option<Fresh> {
        let db = crate::support::test_db().await?;
        let options = PostgresOptions {
            schema: Some(db.schema.clone()),
            pool_size: 4,
            ..PostgresOptions::default()
        };
        let store =
            PostgresStore::connect_setup(&db.url, options, schema::Setup::EventIdsWithoutTimescale)
                .await
                .expect("connect to the test server");
        assert_eq!(store.layout(), Layout::Hypertable);
        Some(Fresh { store, _db: db })
    }

    ingot_store::store_conformance_tests!(optional maybe_fresh());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["ingot", "_x", "ingot_t_1732270000_12_3", &"a".repeat(63)] {
            assert!(check_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Ingot",
            "1x",
            "a-b",
            "a b",
            "a\"b",
            "pg_temp",
            &"a".repeat(64),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let config: tokio_postgres::Config = "postgres://u:secret@db.example:6543/ingot"
            .parse()
            .expect("url");
        assert_eq!(target(&config), "db.example:6543/ingot");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let err = PostgresStore::connect("postgres://u:p@127.0.0.1:1/db")
            .await
            .expect_err("nothing listens on port 1");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains("127.0.0.1:1/db"), "{err}");
        let err = PostgresStore::connect("postgres://u:p@127.0.0.1:notaport/db")
            .await
            .expect_err("bad url");
        assert!(matches!(err, StoreError::InvalidQuery(_)), "{err:?}");
        let options = PostgresOptions {
            schema: Some("Bad-Name".into()),
            ..PostgresOptions::default()
        };
        let err = PostgresStore::connect_with("postgres://u:p@127.0.0.1:1/db", options)
            .await
            .expect_err("bad schema");
        assert!(matches!(err, StoreError::InvalidQuery(_)), "{err:?}");
    }
}
