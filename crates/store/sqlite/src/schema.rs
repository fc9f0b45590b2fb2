//! Opening connections and migrating the schema.
//!
//! Migrations are numbered by `PRAGMA user_version`: migration `n` (1-based) takes the
//! database from version `n - 1` to `n`. All pending migrations and the version bump run in
//! one `IMMEDIATE` transaction, so a crash mid-migration leaves the old version intact and
//! two processes opening the same file never migrate twice. A file with a newer version
//! than this binary knows is refused rather than guessed at.

use std::path::Path;
use std::time::Duration;

use ingot_store::StoreError;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error;

/// How long a connection waits for a lock held by another process before `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page cache of the writer, in KiB (negative `cache_size` is KiB): the insertion points
/// of the indexes stay hot even for tens of millions of events. It is an upper bound:
/// pages are only cached once read, so a small database uses little. Measured on 3M
/// events over 5,000 devices: 32 MiB → 84k events/s, 256 MiB → 88k (batch 50k), and
/// with 200k-event batches 115k → 131k.
const WRITER_CACHE_KIB: i64 = 128 * 1024;

/// Page cache of each reader, in KiB.
const READER_CACHE_KIB: i64 = 8 * 1024;

/// WAL pages after which a commit checkpoints them into the database file (SQLite's
/// default is 1,000). Each batch dirties a leaf of `events_by_device` per active device;
/// checkpointing less often copies each such page once for many batches instead of once
/// per batch or two (measured: about +25% events/s with 1,000 devices). The price is a
/// WAL of up to ~64 MB to replay when opening after a crash; a clean close removes it.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 16_384;

/// Size the WAL file is truncated to after a checkpoint, should it have grown further
/// (a long read can hold back a checkpoint).
const WAL_SIZE_LIMIT_BYTES: i64 = 64 << 20;

/// Prepared statements each connection keeps; listing alone has 48 shapes (one per
/// combination of its filters and upper end; see `events::Conditions::sql`).
const STATEMENT_CACHE: usize = 96;

/// Every migration, in order; entry `i` takes the database to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema. See the crate docs for the reasoning behind each table.
    "
    CREATE TABLE tenants (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        name    TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE events (
        tenant   INTEGER NOT NULL,
        ts       INTEGER NOT NULL,
        id       TEXT NOT NULL,
        device   TEXT NOT NULL,
        sensor   TEXT,
        kind     TEXT,
        value    REAL,
        received INTEGER NOT NULL,
        data     TEXT,
        PRIMARY KEY (tenant, ts, id)
    ) STRICT, WITHOUT ROWID;

    CREATE UNIQUE INDEX events_by_id ON events (tenant, id);
    CREATE INDEX events_by_device ON events (tenant, device, ts, id);

    CREATE TABLE payloads (
        tenant       INTEGER NOT NULL,
        id           TEXT NOT NULL,
        content_type TEXT NOT NULL,
        bytes        BLOB NOT NULL,
        PRIMARY KEY (tenant, id)
    ) STRICT;

    CREATE TABLE checkpoints (
        consumer    TEXT NOT NULL,
        topic       TEXT NOT NULL,
        partition   INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (consumer, topic, partition)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE devices (
        tenant     INTEGER NOT NULL REFERENCES tenants (id),
        name       TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        created    INTEGER NOT NULL,
        PRIMARY KEY (tenant, name)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE api_keys (
        id       TEXT NOT NULL PRIMARY KEY,
        tenant   INTEGER NOT NULL REFERENCES tenants (id),
        role     TEXT NOT NULL CHECK (role IN ('reader', 'writer', 'admin', 'system')),
        key_hash BLOB NOT NULL UNIQUE,
        created  INTEGER NOT NULL,
        revoked  INTEGER
    ) STRICT, WITHOUT ROWID;
    ",
    // 2: how long each tenant's events are kept (seconds; NULL: the server's default).
    "ALTER TABLE tenants ADD COLUMN retention INTEGER;",
    // 3: tenant lifecycle, the device registry, key expiry, dashboards.
    "
    ALTER TABLE tenants ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tenants ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE devices ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE devices ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE devices ADD COLUMN last_seen INTEGER;
    ALTER TABLE devices ADD COLUMN previous_token_hash BLOB;
    ALTER TABLE devices ADD COLUMN previous_token_until INTEGER;
    CREATE INDEX devices_by_previous_token ON devices (previous_token_hash)
        WHERE previous_token_hash IS NOT NULL;
    ALTER TABLE api_keys ADD COLUMN expires INTEGER;
    CREATE TABLE dashboards (
        tenant  INTEGER NOT NULL REFERENCES tenants (id),
        id      TEXT NOT NULL,
        name    TEXT NOT NULL,
        spec    TEXT NOT NULL,
        updated INTEGER NOT NULL,
        PRIMARY KEY (tenant, id)
    ) STRICT, WITHOUT ROWID;
    ",
];

/// The schema version this binary writes.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens the read-write connection, switches the file to WAL and migrates it.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(error::sqlite)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(error::sqlite)?;
    // WAL: readers never block the writer nor the writer readers, and a commit is one
    // sequential append to the WAL. The mode is persistent in the file.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(error::sqlite)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "could not enable WAL (journal_mode is {mode})"
        )));
    }
    // FULL: the WAL is fsynced at every commit, so a committed batch (and its checkpoint)
    // or a returned credential survives power loss. NORMAL would only sync at WAL
    // checkpoints and could lose the last commits.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(error::sqlite)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(error::sqlite)?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .map_err(error::sqlite)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(error::sqlite)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(error::sqlite)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)
        .map_err(error::sqlite)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens a read-only connection to a file [`open_writer`] has prepared.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(error::sqlite)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(error::sqlite)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
        .map_err(error::sqlite)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(error::sqlite)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Applies the pending migrations and sets `user_version`, in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(error::sqlite)?;
    let current: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(error::sqlite)?;
    if current > VERSION {
        return Err(StoreError::Backend(format!(
            "the database has schema version {current}, newer than this build's {VERSION}; \
             run a newer Ingot"
        )));
    }
    let pending = MIGRATIONS
        .iter()
        .skip(usize::try_from(current).unwrap_or(0));
    for (step, sql) in pending.enumerate() {
        tx.execute_batch(sql).map_err(|e| {
            let to = current + step as i64 + 1;
            StoreError::Backend(format!("schema migration to version {to} failed: {e}"))
        })?;
    }
    if current != VERSION {
        tx.pragma_update(None, "user_version", VERSION)
            .map_err(error::sqlite)?;
    }
    tx.commit().map_err(error::sqlite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");
        let conn = open_writer(&path).expect("open");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("v");
        assert_eq!(version, VERSION);
        drop(conn);

        // Reopening finds the schema in place and changes nothing.
        let conn = open_writer(&path).expect("reopen");
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        // tenants, events, payloads, checkpoints, devices, api_keys, dashboards,
        // sqlite_sequence.
        assert_eq!(tables, 8);
        conn.pragma_update(None, "user_version", VERSION + 1)
            .expect("bump");
        drop(conn);

        let err = open_writer(&path).expect_err("newer schema");
        assert!(err.to_string().contains("newer than this build"), "{err}");
    }

    #[test]
    fn writer_settings_are_in_effect() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_writer(&dir.path().join("s.db")).expect("open");
        let get = |name: &str| -> i64 {
            conn.pragma_query_value(None, name, |r| r.get(0))
                .expect("pragma")
        };
        assert_eq!(get("synchronous"), 2, "FULL");
        assert_eq!(get("foreign_keys"), 1);
        assert_eq!(get("wal_autocheckpoint"), WAL_AUTOCHECKPOINT_PAGES);
        assert_eq!(get("journal_size_limit"), WAL_SIZE_LIMIT_BYTES);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("pragma");
        assert_eq!(mode, "wal");
    }
}
