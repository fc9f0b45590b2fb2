//! A fixed set of connections, each lent to one blocking task at a time.
//!
//! A caller first waits (asynchronously) for a permit, so waiting never occupies a thread
//! of the blocking pool; the permit guarantees an idle connection, which moves into
//! `spawn_blocking` inside a [`Lease`] that puts it back when dropped, also when the closure
//! panics (a panic is then propagated to the caller; an open transaction has already rolled
//! back while unwinding, since rusqlite's `Transaction` rolls back on drop).

use std::sync::Arc;

use ingot_store::StoreError;
use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error;

pub(crate) struct Pool {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
    size: u32,
}

/// One connection lent out; returns it to the pool on drop, then frees the permit.
struct Lease {
    conn: Option<Connection>,
    home: Arc<Mutex<Vec<Connection>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.home.lock().push(conn);
        }
        // `_permit` is dropped after this body: the connection is back before anyone can
        // take the freed permit.
    }
}

impl Pool {
    pub(crate) fn new(conns: Vec<Connection>) -> Pool {
        // Pools hold a handful of connections; u32 is what the semaphore counts in.
        let size = u32::try_from(conns.len()).unwrap_or(u32::MAX);
        Pool {
            permits: Arc::new(Semaphore::new(conns.len())),
            idle: Arc::new(Mutex::new(conns)),
            size,
        }
    }

    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// Runs `f` on one of the pool's connections in a blocking task.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".to_owned()))?;
        let Some(conn) = self.idle.lock().pop() else {
            // Every permit stands for an idle connection; this would be a bug in this file.
            return Err(StoreError::Backend(
                "connection pool has no idle connection".to_owned(),
            ));
        };
        let mut lease = Lease {
            conn: Some(conn),
            home: Arc::clone(&self.idle),
            _permit: permit,
        };
        let task = tokio::task::spawn_blocking(move || match lease.conn.as_mut() {
            Some(conn) => f(conn),
            None => Err(StoreError::Backend("connection lease is empty".to_owned())),
        });
        match task.await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(StoreError::Unavailable(
                "the runtime is shutting down".to_owned(),
            )),
        }
    }

    /// Waits until every connection is idle, refuses new work, and closes them all in a
    /// blocking task. Reports the first close error.
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        let all = Arc::clone(&self.permits)
            .acquire_many_owned(self.size)
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".to_owned()))?;
        self.permits.close();
        let conns = std::mem::take(&mut *self.idle.lock());
        let task = tokio::task::spawn_blocking(move || {
            let mut first = Ok(());
            for conn in conns {
                if let Err((_conn, err)) = conn.close()
                    && first.is_ok()
                {
                    first = Err(error::sqlite(err));
                }
            }
            drop(all);
            first
        });
        match task.await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(StoreError::Unavailable(
                "the runtime is shutting down".to_owned(),
            )),
        }
    }
}
