//! A fresh, isolated PostgreSQL schema per test.
//!
//! The server comes from `INGOT_TEST_POSTGRES_URL` (`.ci/postgres` starts one and prints
//! the line that sets it). When the variable is unset or the server does not answer, a
//! test prints a note and passes without running, except with `CI=true`, where that is a
//! failure: CI must never skip the PostgreSQL half of the suite.
//!
//! Each [`TestDb`] is a schema `ingot_t_<unix seconds>_<pid>_<n>`, dropped (with
//! everything in it) when the value drops. Schemas a killed run left behind are dropped
//! by the next run once they are an hour old. Also compiled into the crate's unit tests
//! (`src/lib.rs` includes this file), so it uses tokio-postgres only.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

/// The environment variable naming the test server.
pub const URL_VAR: &str = "INGOT_TEST_POSTGRES_URL";

/// Schemas older than this are leftovers of killed runs.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// A schema of its own on the test server; dropped on drop.
#[derive(Debug)]
pub struct TestDb {
    /// The server's URL.
    pub url: String,
    /// The schema's name (a plain identifier).
    pub schema: String,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips (returns `None`) or, in CI, fails.
fn unavailable(why: &str) -> Option<TestDb> {
    if in_ci() {
        panic!(
            "CI=true and the PostgreSQL tests cannot run: {why} (run `eval \"$(.ci/postgres)\"`)"
        );
    }
    eprintln!("note: skipping a PostgreSQL test: {why} (run `eval \"$(.ci/postgres)\"` to run it)");
    None
}

/// A new schema on the test server, or `None` when there is no server (see module docs).
pub async fn test_db() -> Option<TestDb> {
    let url = match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => return unavailable(&format!("{URL_VAR} is not set")),
    };
    let client = match connect(&url).await {
        Ok(client) => client,
        Err(err) => {
            let cause = std::error::Error::source(&err)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            return unavailable(&format!("{URL_VAR} does not answer: {err}{cause}"));
        }
    };
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let schema = format!(
        "ingot_t_{now}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    drop_stale(&client, now).await;
    Some(TestDb { url, schema })
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = url
        .parse::<tokio_postgres::Config>()?
        .connect(NoTls)
        .await?;
    tokio::spawn(async move {
        // Ends when the client is dropped; an error here has already failed a call.
        let _ = connection.await;
    });
    Ok(client)
}

/// Drops test schemas older than [`STALE_AFTER`]; best effort (another run may be doing
/// the same).
async fn drop_stale(client: &tokio_postgres::Client, now: u64) {
    let Ok(rows) = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'ingot\\_t\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<_, String>(0) else {
            continue;
        };
        let created = name
            .strip_prefix("ingot_t_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|c| now.saturating_sub(c) > STALE_AFTER.as_secs())
            && is_test_schema(&name)
        {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await;
        }
    }
}

/// Only names this module makes: `ingot_t_` and digits and `_`.
fn is_test_schema(name: &str) -> bool {
    name.strip_prefix("ingot_t_")
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
}

impl TestDb {
    /// Runs `sql` on a connection of its own (for tests that look behind the store).
    pub async fn client(&self) -> tokio_postgres::Client {
        let client = connect(&self.url)
            .await
            .expect("connect to the test server");
        client
            .batch_execute(&format!("SET search_path TO \"{}\"", self.schema))
            .await
            .expect("set search_path");
        client
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !is_test_schema(&self.schema) {
            return;
        }
        // Drop runs inside the test's runtime, which cannot block on another future:
        // a thread with a runtime of its own does the dropping.
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        let done = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(client) = connect(&url).await {
                    let _ = client.batch_execute(&sql).await;
                }
            });
        });
        let _ = done.join();
    }
}
