//! A small pool of PostgreSQL connections, each with its own prepared-statement cache.
//!
//! Invariants:
//!
//! - At most `size` connections exist; a [`Lease`] holds one exclusively (a semaphore
//!   permit per connection), so a transaction never shares its connection.
//! - Connections are opened lazily: the first when the store connects (it migrates the
//!   schema), the others when concurrent calls need them.
//! - A connection the server or the network closed is never lent again: a lease checks
//!   [`Client::is_closed`] when it comes back and when it is taken, and a replacement is
//!   opened in its place. So after a server restart or a killed backend, each dead
//!   connection fails at most the one call that was using it, and later calls reconnect.
//! - Waiting for a connection is bounded ([`ACQUIRE_TIMEOUT`]), as is opening one (the
//!   connect timeout); both end in [`StoreError::Unavailable`].
//!
//! Why not deadpool-postgres or bb8: the pool needs exactly this (lend, check, reconnect,
//! cache statements), which is less code than adapting a general pool's hooks, and it
//! keeps the dependency tree to tokio-postgres alone (see docs/decisions/0004-postgres.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ingot_store::StoreError;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, GenericClient, NoTls, Statement};

use crate::error::{self, unavailable};

/// The longest a call waits for a free connection.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Prepared statements each connection keeps; past this the cache starts over (filters
/// make statement texts open-ended).
const STATEMENT_CACHE: usize = 256;

/// One connection and what this store keeps on it.
pub(crate) struct Conn {
    pub(crate) client: Client,
    statements: HashMap<String, Statement>,
    /// Whether this session's temporary staging table exists (see `events.rs`).
    pub(crate) staging: bool,
}

impl Conn {
    /// The prepared statement for `sql`, preparing it on first use.
    pub(crate) async fn prepare(&mut self, sql: &str) -> Result<Statement, StoreError> {
        prepare_cached(&mut self.statements, &self.client, sql).await
    }

    /// Splits the connection into its client (to open a transaction on) and its cache.
    pub(crate) fn parts(&mut self) -> (&mut Client, &mut StatementCache) {
        (&mut self.client, &mut self.statements)
    }
}

/// A connection's prepared statements, by SQL text.
pub(crate) type StatementCache = HashMap<String, Statement>;

/// The prepared statement for `sql` on `client` (a connection or a transaction on it).
pub(crate) async fn prepare_cached(
    cache: &mut StatementCache,
    client: &impl GenericClient,
    sql: &str,
) -> Result<Statement, StoreError> {
    if let Some(statement) = cache.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql).await.map_err(error::pg)?;
    if cache.len() >= STATEMENT_CACHE {
        cache.clear();
    }
    cache.insert(sql.to_owned(), statement.clone());
    Ok(statement)
}

/// The pool; cheap to share behind an `Arc`.
pub(crate) struct Pool {
    config: Config,
    connect_timeout: Duration,
    idle: Arc<Mutex<Vec<Conn>>>,
    permits: Arc<Semaphore>,
    size: usize,
}

/// A connection lent out; goes back to the pool when dropped, unless it is closed.
pub(crate) struct Lease {
    conn: Option<Conn>,
    home: Arc<Mutex<Vec<Conn>>>,
    /// The pool's semaphore, closed when the pool is.
    closed: Arc<Semaphore>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for Lease {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        // Only `Drop` takes the connection out.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("a lease holds its connection"))
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("a lease holds its connection"))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.client.is_closed()
            && !self.closed.is_closed()
        {
            self.home.lock().push(conn);
        }
        // `_permit` is released after this body: the connection is back first.
    }
}

impl Pool {
    /// A pool of up to `size` connections made from `config`.
    pub(crate) fn new(config: Config, size: usize, connect_timeout: Duration) -> Pool {
        let size = size.max(1);
        Pool {
            config,
            connect_timeout,
            idle: Arc::new(Mutex::new(Vec::with_capacity(size))),
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// How many connections the pool may hold.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Lends a connection: an idle open one, or a new one.
    pub(crate) async fn get(&self) -> Result<Lease, StoreError> {
        let permit =
            tokio::time::timeout(ACQUIRE_TIMEOUT, Arc::clone(&self.permits).acquire_owned())
                .await
                .map_err(|_| {
                    unavailable(format!(
                        "no free PostgreSQL connection within {ACQUIRE_TIMEOUT:?} (pool of {})",
                        self.size
                    ))
                })?
                .map_err(|_| unavailable("the store is closed"))?;
        let idle = loop {
            let Some(conn) = self.idle.lock().pop() else {
                break None;
            };
            if !conn.client.is_closed() {
                break Some(conn);
            }
        };
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        Ok(Lease {
            conn: Some(conn),
            home: Arc::clone(&self.idle),
            closed: Arc::clone(&self.permits),
            _permit: permit,
        })
    }

    /// Opens a new connection; its IO runs in a spawned task that ends when the client
    /// is dropped or the connection fails.
    async fn connect(&self) -> Result<Conn, StoreError> {
        let (client, connection) =
            tokio::time::timeout(self.connect_timeout, self.config.connect(NoTls))
                .await
                .map_err(|_| {
                    unavailable(format!(
                        "connecting to PostgreSQL took longer than {:?}",
                        self.connect_timeout
                    ))
                })?
                .map_err(error::pg)?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::warn!(error = %err, "postgres connection ended");
            }
        });
        Ok(Conn {
            client,
            statements: HashMap::new(),
            staging: false,
        })
    }

    /// Waits (up to [`ACQUIRE_TIMEOUT`]) until no connection is lent out, then refuses
    /// new leases and closes every connection.
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        let size = u32::try_from(self.size).unwrap_or(u32::MAX);
        let all = tokio::time::timeout(
            ACQUIRE_TIMEOUT,
            Arc::clone(&self.permits).acquire_many_owned(size),
        )
        .await;
        self.permits.close();
        self.idle.lock().clear();
        match all {
            Ok(_) => Ok(()),
            Err(_) => Err(unavailable(format!(
                "calls still running after {ACQUIRE_TIMEOUT:?}; closed anyway"
            ))),
        }
    }
}
