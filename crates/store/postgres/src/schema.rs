//! Creating and migrating the schema.
//!
//! Migrations are numbered by `ingot_schema.version`: migration `n` (1-based) takes the
//! schema from version `n - 1` to `n`. All pending migrations and the version update run
//! in one transaction that first takes a transaction-scoped advisory lock keyed on the
//! schema name, so replicas starting at once migrate exactly once (the others wait on the
//! lock, then find the schema current), and a crash mid-migration leaves the old version
//! intact (PostgreSQL's DDL is transactional). A schema written by a newer build is
//! refused rather than guessed at.
//!
//! The layout ([`Layout`]) is chosen once, when the schema is created, and recorded in
//! `ingot_schema.layout`: installing or removing TimescaleDB later does not change how an
//! existing store writes.

use ingot_store::StoreError;
use tokio_postgres::Client;

use crate::error;

/// How `events` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A plain table; `events_by_id` (a unique index) makes writes idempotent.
    Plain,
    /// A TimescaleDB hypertable on `ts`; a hypertable's unique indexes must include
    /// `ts`, so idempotency is the primary key of a separate `event_ids (tenant, id)`.
    Hypertable,
}

impl Layout {
    fn as_str(self) -> &'static str {
        match self {
            Layout::Plain => "plain",
            Layout::Hypertable => "hypertable",
        }
    }

    fn parse(text: &str) -> Option<Layout> {
        match text {
            "plain" => Some(Layout::Plain),
            "hypertable" => Some(Layout::Hypertable),
            _ => None,
        }
    }
}

/// The oldest server this backend runs on (`MATERIALIZED` CTEs, `jsonb` casts to
/// `float8`, identity columns).
const MIN_SERVER_VERSION: i32 = 120_000;

/// Chunks of one day, in the microseconds `ts` counts.
const CHUNK_MICROS: i64 = 86_400_000_000;

/// The version table: one row.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS ingot_schema (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   integer NOT NULL,
    layout    text NOT NULL CHECK (layout IN ('plain', 'hypertable'))
)";

/// Migration 1, the tables every layout has. See the crate docs for the reasoning.
const TABLES: &str = r#"
CREATE TABLE tenants (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text COLLATE "C" NOT NULL CONSTRAINT tenants_name_key UNIQUE,
    created   bigint NOT NULL,
    retention bigint
);

CREATE TABLE events (
    tenant    bigint NOT NULL,
    ts        bigint NOT NULL,
    received  bigint NOT NULL,
    value     double precision,
    id        text COLLATE "C" NOT NULL,
    device    text COLLATE "C" NOT NULL,
    sensor    text COLLATE "C",
    kind      text COLLATE "C",
    data      jsonb,
    data_text text,
    CONSTRAINT events_pkey PRIMARY KEY (tenant, ts, id)
);

CREATE INDEX events_by_device ON events (tenant, device, ts, id);

CREATE TABLE payloads (
    tenant       bigint NOT NULL,
    id           text COLLATE "C" NOT NULL,
    content_type text NOT NULL,
    bytes        bytea NOT NULL,
    CONSTRAINT payloads_pkey PRIMARY KEY (tenant, id)
);
-- Pictures are already compressed: store them out of line without trying again.
ALTER TABLE payloads ALTER COLUMN bytes SET STORAGE EXTERNAL;

CREATE TABLE checkpoints (
    consumer    text NOT NULL,
    topic       text NOT NULL,
    partition   bigint NOT NULL,
    next_offset bigint NOT NULL,
    CONSTRAINT checkpoints_pkey PRIMARY KEY (consumer, topic, partition)
);

CREATE TABLE devices (
    tenant     bigint NOT NULL REFERENCES tenants (id),
    name       text COLLATE "C" NOT NULL,
    token_hash bytea NOT NULL CONSTRAINT devices_token_hash_key UNIQUE,
    created    bigint NOT NULL,
    CONSTRAINT devices_pkey PRIMARY KEY (tenant, name)
);

CREATE TABLE api_keys (
    id       text COLLATE "C" NOT NULL CONSTRAINT api_keys_pkey PRIMARY KEY,
    tenant   bigint NOT NULL REFERENCES tenants (id),
    role     text NOT NULL CHECK (role IN ('reader', 'writer', 'admin', 'system')),
    key_hash bytea NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,
    created  bigint NOT NULL,
    revoked  bigint
);
"#;

/// Migration 1, plain layout: idempotency by a unique index on the table itself.
const PLAIN: &str = "CREATE UNIQUE INDEX events_by_id ON events (tenant, id);";

/// Migration 1, hypertable layout (untested here: TimescaleDB is not installed on the
/// development machine). `event_ids` holds every stored `(tenant, id)`; `integer_now`
/// lets TimescaleDB policies work with microsecond `ts`.
const HYPERTABLE: &str = r#"
CREATE TABLE event_ids (
    tenant bigint NOT NULL,
    id     text COLLATE "C" NOT NULL,
    ts     bigint NOT NULL,
    CONSTRAINT event_ids_pkey PRIMARY KEY (tenant, id)
);
CREATE FUNCTION ingot_now_micros() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM now()) * 1000000)::bigint $$;
"#;

/// Every migration after the first, in order; entry `i` takes the schema to version
/// `i + 2`.
const LATER: &[&str] = &[
    // 2: tenant lifecycle, the device registry, key expiry, dashboards.
    r#"
    ALTER TABLE tenants ADD COLUMN disabled boolean NOT NULL DEFAULT false;
    ALTER TABLE tenants ADD COLUMN deleting boolean NOT NULL DEFAULT false;
    ALTER TABLE devices ADD COLUMN enabled boolean NOT NULL DEFAULT true;
    ALTER TABLE devices ADD COLUMN labels text NOT NULL DEFAULT '{}';
    ALTER TABLE devices ADD COLUMN last_seen bigint;
    ALTER TABLE devices ADD COLUMN previous_token_hash bytea;
    ALTER TABLE devices ADD COLUMN previous_token_until bigint;
    CREATE INDEX devices_by_previous_token ON devices (previous_token_hash)
        WHERE previous_token_hash IS NOT NULL;
    ALTER TABLE api_keys ADD COLUMN expires bigint;
    CREATE TABLE dashboards (
        tenant  bigint NOT NULL REFERENCES tenants (id),
        id      text COLLATE "C" NOT NULL,
        name    text NOT NULL,
        spec    text NOT NULL,
        updated bigint NOT NULL,
        CONSTRAINT dashboards_pkey PRIMARY KEY (tenant, id)
    );
    "#,
];

/// The schema version this build writes.
pub(crate) const VERSION: i32 = 1 + LATER.len() as i32;

/// The advisory lock key of migrations of `schema` (`""`: the connection's default
/// schema): FNV-1a of a fixed prefix and the name, so stores in different schemas of one
/// database migrate independently.
fn lock_key(schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "ingot-store-migrate:".bytes().chain(schema.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// How a new schema's layout is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setup {
    /// A hypertable if `timescale` and the extension can be created, else plain.
    Auto {
        /// Whether TimescaleDB may be used.
        timescale: bool,
    },
    /// Tests only: the hypertable layout's tables and statements (`event_ids`) on a plain
    /// `events` table, so the suite exercises that write path without TimescaleDB.
    #[cfg(test)]
    EventIdsWithoutTimescale,
}

/// Checks the server, then creates or migrates the schema; returns its layout.
///
/// `schema` must already be validated as a plain identifier (it is spliced into
/// `CREATE SCHEMA`, the only place a name is).
pub(crate) async fn migrate(
    client: &mut Client,
    schema: Option<&str>,
    setup: Setup,
) -> Result<Layout, StoreError> {
    check_server(client).await?;
    let mut tx = client.transaction().await.map_err(error::pg)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&lock_key(schema.unwrap_or(""))],
    )
    .await
    .map_err(error::pg)?;
    if let Some(schema) = schema {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await
            .map_err(error::pg)?;
    }
    tx.batch_execute(VERSION_TABLE).await.map_err(error::pg)?;
    let row = tx
        .query_opt("SELECT version, layout FROM ingot_schema", &[])
        .await
        .map_err(error::pg)?;
    // `hypertable`: whether a new schema's `events` becomes one (only ever false with
    // the hypertable layout in tests).
    let (current, layout, hypertable) = match row {
        Some(row) => {
            let version: i32 = row.try_get(0).map_err(error::pg)?;
            let layout: String = row.try_get(1).map_err(error::pg)?;
            let layout = Layout::parse(&layout)
                .ok_or_else(|| error::corrupt(format!("ingot_schema.layout {layout:?}")))?;
            (version, layout, layout == Layout::Hypertable)
        }
        None => match setup {
            Setup::Auto { timescale } => {
                let layout = choose_layout(&mut tx, timescale).await?;
                (0, layout, layout == Layout::Hypertable)
            }
            #[cfg(test)]
            Setup::EventIdsWithoutTimescale => (0, Layout::Hypertable, false),
        },
    };
    if current > VERSION {
        return Err(StoreError::Backend(format!(
            "the database has schema version {current}, newer than this build's {VERSION}; \
             run a newer Ingot"
        )));
    }
    if current < 1 {
        create(&tx, layout, hypertable)
            .await
            .map_err(|e| in_migration(1, e))?;
    }
    let done = usize::try_from(current.max(1) - 1).unwrap_or(0);
    for (step, sql) in LATER.iter().enumerate().skip(done) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| in_migration(step as i32 + 2, error::pg(e)))?;
    }
    if current != VERSION {
        tx.execute(
            "INSERT INTO ingot_schema (version, layout) VALUES ($1, $2) \
             ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
            &[&VERSION, &layout.as_str()],
        )
        .await
        .map_err(error::pg)?;
        tracing::info!(
            from = current,
            to = VERSION,
            layout = layout.as_str(),
            "postgres schema migrated"
        );
    }
    tx.commit().await.map_err(error::pg)?;
    Ok(layout)
}

fn in_migration(to: i32, err: StoreError) -> StoreError {
    match err {
        StoreError::Backend(msg) => {
            StoreError::Backend(format!("schema migration to version {to} failed: {msg}"))
        }
        other => other,
    }
}

/// Refuses servers this backend cannot work with: too old, or not UTF-8 (text columns
/// and `jsonb` must hold any Unicode a device sends).
async fn check_server(client: &Client) -> Result<(), StoreError> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int, \
             current_setting('server_encoding')",
            &[],
        )
        .await
        .map_err(error::pg)?;
    let version: i32 = row.try_get(0).map_err(error::pg)?;
    let encoding: String = row.try_get(1).map_err(error::pg)?;
    if version < MIN_SERVER_VERSION {
        return Err(StoreError::Backend(format!(
            "PostgreSQL {version} is too old; Ingot needs 12 or newer"
        )));
    }
    if encoding != "UTF8" {
        return Err(StoreError::Backend(format!(
            "the database's encoding is {encoding}; Ingot needs UTF8"
        )));
    }
    Ok(())
}

/// The layout of a new schema: a hypertable if allowed and TimescaleDB can be created.
async fn choose_layout(
    tx: &mut tokio_postgres::Transaction<'_>,
    timescale: bool,
) -> Result<Layout, StoreError> {
    if !timescale {
        return Ok(Layout::Plain);
    }
    let available: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')",
            &[],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(error::pg)?;
    if !available {
        return Ok(Layout::Plain);
    }
    // The extension may be installed but not loadable (it needs shared_preload_libraries)
    // or the role may lack the right to create it: then the plain layout, not a failure.
    let savepoint = tx.savepoint("timescaledb").await.map_err(error::pg)?;
    match savepoint
        .batch_execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        .await
    {
        Ok(()) => {
            savepoint.commit().await.map_err(error::pg)?;
            Ok(Layout::Hypertable)
        }
        Err(err) => {
            tracing::warn!(error = %err, "timescaledb is available but cannot be created; using a plain events table");
            savepoint.rollback().await.map_err(error::pg)?;
            Ok(Layout::Plain)
        }
    }
}

/// Migration 1 for `layout`; `hypertable`: convert `events` with TimescaleDB.
async fn create(
    tx: &tokio_postgres::Transaction<'_>,
    layout: Layout,
    hypertable: bool,
) -> Result<(), StoreError> {
    tx.batch_execute(TABLES).await.map_err(error::pg)?;
    match layout {
        Layout::Plain => tx.batch_execute(PLAIN).await.map_err(error::pg),
        Layout::Hypertable => {
            tx.batch_execute(HYPERTABLE).await.map_err(error::pg)?;
            if !hypertable {
                return Ok(());
            }
            tx.execute(
                "SELECT create_hypertable('events', 'ts', chunk_time_interval => $1::bigint)",
                &[&CHUNK_MICROS],
            )
            .await
            .map_err(error::pg)?;
            tx.execute(
                "SELECT set_integer_now_func('events', 'ingot_now_micros')",
                &[],
            )
            .await
            .map_err(error::pg)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_per_schema_and_are_stable() {
        assert_eq!(lock_key("a"), lock_key("a"));
        assert_ne!(lock_key(""), lock_key("a"));
        assert_ne!(lock_key("ingot_t_1"), lock_key("ingot_t_2"));
    }

    #[test]
    fn layouts_round_trip() {
        for layout in [Layout::Plain, Layout::Hypertable] {
            assert_eq!(Layout::parse(layout.as_str()), Some(layout));
        }
        assert_eq!(Layout::parse("columnar"), None);
    }
}
