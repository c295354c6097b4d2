//! A small pool of read connections. Reads run on tokio's blocking threads, each on its own
//! connection; in WAL mode they see their transaction's snapshot and never wait for the writer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::schema::open_connection;
use crate::{Error, Result};

/// Read connections to one database file, opened lazily, at most `size` at a time.
pub(super) struct ReadPool {
    path: PathBuf,
    /// Connections not in use; `None` once the store is closed.
    idle: Mutex<Option<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub fn new(path: PathBuf, size: usize) -> Self {
        Self {
            path,
            idle: Mutex::new(Some(Vec::new())),
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    /// Runs `read` on a pooled connection on a blocking thread.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let result = read(&conn);
            pool.put(conn);
            drop(permit);
            result
        })
        .await
        .map_err(|e| Error::Internal(format!("a read task failed: {e}")))?
    }

    /// Runs a short `read` (a point lookup) on a pooled connection on the calling thread: a
    /// hand-off to a blocking thread costs more than the read itself.
    pub fn run_inline<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.take()?;
        let result = read(&conn);
        self.put(conn);
        result
    }

    /// Closes idle connections and refuses further reads.
    pub fn close(&self) {
        self.permits.close();
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn take(&self) -> Result<Connection> {
        let pooled = match self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            Some(idle) => idle.pop(),
            None => return Err(closed()),
        };
        match pooled {
            Some(conn) => Ok(conn),
            None => open_connection(&self.path, true),
        }
    }

    fn put(&self, conn: Connection) {
        // A connection whose last read left a transaction open (an error between BEGIN and the
        // end) is dropped rather than handed to the next reader with a stale snapshot.
        if !conn.is_autocommit() {
            return;
        }
        if let Some(idle) = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            idle.push(conn);
        }
    }
}

/// The error every operation returns after the store is closed.
pub(super) fn closed() -> Error {
    Error::Unavailable("the store is closed".to_owned())
}
