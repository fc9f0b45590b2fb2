//! The shared store conformance suite, each test on a fresh schema of the test server
//! (`INGOT_TEST_POSTGRES_URL`; see `support/mod.rs` for when tests skip or fail).

mod support;

use std::ops::Deref;

use ingot_store_postgres::{Layout, PostgresOptions, PostgresStore};
use support::TestDb;

/// A store with the schema it lives in; the store closes before the schema is dropped.
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
    let db = support::test_db().await?;
    let options = PostgresOptions {
        schema: Some(db.schema.clone()),
        pool_size: 4,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_with(&db.url, options)
        .await
        .expect("connect to the test server");
    // The suite runs the layout this machine can have; the hypertable path needs
    // TimescaleDB (see the crate docs).
    assert_eq!(store.layout(), Layout::Plain);
    Some(Fresh { store, _db: db })
}

ingot_store::store_conformance_tests!(optional maybe_fresh());
