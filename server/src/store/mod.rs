//! The relay's durable state: one [`Store`] over a storage [`Backend`].
//!
//! [`Store`] is synchronous and knows nothing of HTTP or sockets. Its operations are written
//! once, in [`ops`]: read rows through a [`Tx`], ask the relay's rules (`crate::domain`), write
//! rows. A backend only runs transactions and row-level statements: SQLite
//! ([`sqlite::SqliteBackend`], the embedded default). Async code reaches the store through
//! [`Db`], which runs calls on tokio's blocking pool, and through [`committer`], which batches
//! message creations from many concurrent requests into one transaction (group commit) and
//! answers each request only after that commit.

pub mod committer;
pub mod key_cache;
pub mod ops;
pub mod postgres;
pub mod sqlite;
pub mod tx;
mod types;

pub use crate::domain::deadline::PHONE_SILENCE_MS;
pub use ops::webhooks::ATTEMPTS_KEPT;
pub use sqlite::schema;
pub use tx::{Backend, Tx};
pub use types::*;

use std::path::Path;
use std::sync::Arc;

/// Unix time in milliseconds.
pub use simrelay_protocol::Millis;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    #[error("the disk is full")]
    Full,
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("blocking task failed")]
    Join,
    #[error("batch commit failed: {0}")]
    Batch(String),
    /// A row the operation needs is not there (a phone that was removed meanwhile).
    #[error("not found: {0}")]
    Missing(&'static str),
    /// A stored value the relay cannot read (a state name it does not know).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A PostgreSQL error, named by its SQLSTATE (never the server's message, which may quote
    /// values).
    #[error("postgres: {0}")]
    Postgres(String),
    /// The database cannot be reached now (PostgreSQL down, restarting, the connection cut);
    /// nothing of the operation was acknowledged. The pool reconnects on the next operation.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    pub(crate) fn from_sqlite(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Self::Full,
            _ => Self::Sqlite(e),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::from_sqlite(e)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The relay's durable state. Its methods are in [`ops`].
pub struct Store {
    backend: Box<dyn Backend>,
    /// The backend's key cache, when it has one.
    keys: Option<Arc<key_cache::KeyCache>>,
    /// The opt-out and opt-in keywords incoming SMS are matched against.
    keywords: crate::domain::optout::Keywords,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    pub fn new(backend: Box<dyn Backend>) -> Self {
        let keys = backend.key_cache();
        Self {
            backend,
            keys,
            keywords: crate::domain::optout::Keywords::default(),
        }
    }

    /// This store with the relay's opt-out and opt-in keywords (the defaults otherwise).
    pub fn with_keywords(mut self, keywords: crate::domain::optout::Keywords) -> Self {
        self.keywords = keywords;
        self
    }

    /// The key cache, when the backend has one (PostgreSQL).
    pub fn key_cache(&self) -> Option<&key_cache::KeyCache> {
        self.keys.as_deref()
    }

    /// Opens (creating or migrating) the SQLite database at `path`.
    pub fn open_sqlite(path: &Path) -> Result<Self> {
        Ok(Self::new(Box::new(sqlite::SqliteBackend::open(path)?)))
    }

    /// [`Self::open_sqlite`] with a page cache of `cache_kib` KiB per connection.
    pub fn open_sqlite_with_cache(path: &Path, cache_kib: u32) -> Result<Self> {
        Ok(Self::new(Box::new(sqlite::SqliteBackend::open_with_cache(
            path, cache_kib,
        )?)))
    }

    /// Runs `f` in one write transaction and commits it.
    pub(crate) fn write<T>(&self, mut f: impl FnMut(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.backend.write(&mut |tx| {
            out = Some(f(tx)?);
            Ok(())
        })?;
        Ok(out.expect("a committed transaction ran its closure"))
    }

    /// Runs `f` on a read-only view.
    pub(crate) fn read<T>(&self, mut f: impl FnMut(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.backend.read(&mut |tx| {
            out = Some(f(tx)?);
            Ok(())
        })?;
        Ok(out.expect("a read ran its closure"))
    }
}

/// Async access to a [`Store`] on the blocking pool.
#[derive(Clone)]
pub struct Db {
    store: Arc<Store>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Runs `f` against the store on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|_| StoreError::Join)?
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> Millis {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(d.as_millis()).expect("milliseconds fit in i64 until the year 292 million")
}
