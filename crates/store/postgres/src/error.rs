//! How PostgreSQL's errors become [`StoreError`]s: the one place that decides.
//!
//! The backend has no error enum of its own: every operation answers with the contract's
//! [`StoreError`], so callers see the same errors from every backend.
//!
//! - [`StoreError::Unavailable`] (retrying later can succeed): no connection (refused,
//!   reset, closed, timed out), the server shutting down or starting, too many
//!   connections, a full disk or out of memory, a deadlock or serialization failure
//!   (the transaction rolled back whole), a read-only server (a replica during a
//!   failover).
//! - Everything else is [`StoreError::Backend`], with the server's SQLSTATE and message.
//!
//! Uniqueness and foreign key violations are told apart by constraint name
//! ([`unique_violation`], [`is_foreign_key`]) so the registry can answer
//! [`StoreError::AlreadyExists`] with the same `what` texts as the SQLite backend.

use std::error::Error as _;

use ingot_store::StoreError;
use tokio_postgres::error::SqlState;

/// Maps a PostgreSQL failure (see the module docs).
pub(crate) fn pg(err: tokio_postgres::Error) -> StoreError {
    let text = describe(&err);
    if is_transient(&err) {
        StoreError::Unavailable(text)
    } else {
        StoreError::Backend(text)
    }
}

/// Whether retrying later can succeed.
fn is_transient(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        Some(code) => {
            let class = code.code().get(..2).unwrap_or("");
            // 08: connection exception; 53: insufficient resources (disk full, out of
            // memory, too many connections); 57P0x: shutting down or starting up.
            matches!(class, "08" | "53")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    SqlState::T_R_DEADLOCK_DETECTED,
                    SqlState::READ_ONLY_SQL_TRANSACTION,
                    SqlState::LOCK_NOT_AVAILABLE,
                ]
                .contains(code)
        }
        // No server error: an IO failure (connect, read, write) is transient; a value
        // that cannot be encoded or decoded is not.
        None => err
            .source()
            .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some()),
    }
}

/// A one-line description: the server's SQLSTATE, message and detail, or the client's
/// error with its cause. Never includes connection secrets (tokio-postgres errors carry
/// none).
fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    match err.source() {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    }
}

/// The constraint a unique violation names, if `err` is one.
pub(crate) fn unique_violation(err: &tokio_postgres::Error) -> Option<&str> {
    let db = err.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or(""))
}

/// Whether `err` is a foreign key violation (a tenant that does not exist).
pub(crate) fn is_foreign_key(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
}

/// A stored value that cannot be what the schema says (only if the database was changed
/// by something else, or by a bug).
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("corrupt row: {what}"))
}

/// No connection could be made or lent in time.
pub(crate) fn unavailable(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(what.to_string())
}
