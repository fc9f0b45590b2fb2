//! How SQLite's errors become [`StoreError`]s.
//!
//! The backend has no error enum of its own: every operation answers with the contract's
//! [`StoreError`], so callers see the same errors from every backend.

use ingot_store::StoreError;
use rusqlite::ErrorCode;
use rusqlite::ffi;

/// Maps an SQLite failure: a busy or locked database and a full disk are
/// [`StoreError::Unavailable`] (retrying later can succeed), everything else is
/// [`StoreError::Backend`] with SQLite's message.
pub(crate) fn sqlite(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::DiskFull) => {
            StoreError::Unavailable(err.to_string())
        }
        _ => StoreError::Backend(err.to_string()),
    }
}

/// Which uniqueness rule an insert broke, if it broke one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// The table's primary key.
    PrimaryKey,
    /// A `UNIQUE` column or index; the message names the columns.
    Unique,
}

/// The uniqueness conflict `err` reports, and the message naming the columns.
pub(crate) fn conflict(err: &rusqlite::Error) -> Option<(Conflict, &str)> {
    match err {
        rusqlite::Error::SqliteFailure(e, msg) => {
            let kind = match e.extended_code {
                ffi::SQLITE_CONSTRAINT_PRIMARYKEY => Conflict::PrimaryKey,
                ffi::SQLITE_CONSTRAINT_UNIQUE => Conflict::Unique,
                _ => return None,
            };
            Some((kind, msg.as_deref().unwrap_or("")))
        }
        _ => None,
    }
}

/// Whether `err` is a foreign key violation (a tenant that does not exist).
pub(crate) fn is_foreign_key(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _) if e.extended_code == ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// A stored value that cannot be what the schema says (only if the file was changed by
/// something else, or by a bug).
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("corrupt row: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: ErrorCode, extended: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(
            ffi::Error {
                code,
                extended_code: extended,
            },
            Some("UNIQUE constraint failed: devices.token_hash".to_owned()),
        )
    }

    #[test]
    fn busy_and_full_are_unavailable_others_backend() {
        for (code, ext) in [
            (ErrorCode::DatabaseBusy, ffi::SQLITE_BUSY),
            (ErrorCode::DatabaseLocked, ffi::SQLITE_LOCKED),
            (ErrorCode::DiskFull, ffi::SQLITE_FULL),
        ] {
            assert!(
                matches!(sqlite(failure(code, ext)), StoreError::Unavailable(_)),
                "{code:?}"
            );
        }
        let err = sqlite(failure(ErrorCode::SystemIoFailure, ffi::SQLITE_IOERR));
        assert!(matches!(err, StoreError::Backend(m) if m.contains("devices.token_hash")));
    }

    #[test]
    fn conflicts_are_told_apart() {
        let unique = failure(
            ErrorCode::ConstraintViolation,
            ffi::SQLITE_CONSTRAINT_UNIQUE,
        );
        assert_eq!(
            conflict(&unique),
            Some((
                Conflict::Unique,
                "UNIQUE constraint failed: devices.token_hash"
            ))
        );
        let pk = failure(
            ErrorCode::ConstraintViolation,
            ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
        );
        assert_eq!(conflict(&pk).map(|c| c.0), Some(Conflict::PrimaryKey));
        let fk = failure(
            ErrorCode::ConstraintViolation,
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
        );
        assert_eq!(conflict(&fk), None);
        assert!(is_foreign_key(&fk));
        assert!(!is_foreign_key(&pk));
    }
}
