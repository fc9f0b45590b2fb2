//! The shared store conformance suite, on a fresh database file per test.

use std::ops::Deref;

use ingot_store_sqlite::SqliteStore;
use tempfile::TempDir;

/// A store with the temp dir it lives in; the store closes before the dir is removed.
struct Fresh {
    store: SqliteStore,
    _dir: TempDir,
}

impl Deref for Fresh {
    type Target = SqliteStore;

    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("store.db")).expect("open store");
    Fresh { store, _dir: dir }
}

ingot_store::store_conformance_tests!(fresh());
