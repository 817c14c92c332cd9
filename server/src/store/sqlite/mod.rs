//! The SQLite backend: one writer connection, a few readers, WAL.
//!
//! Durability: WAL with `synchronous=FULL`, so a committed transaction survives a power cut,
//! not only a crash of the process (with NORMAL, WAL commits since the last checkpoint can be
//! lost on power loss). Nothing is acknowledged before its commit, and group commit
//! ([`super::committer`]) keeps the fsync cost per message low.
//!
//! This file owns the connections and runs [`Backend`]'s transactions; the SQL of [`Tx`] is
//! in one file per area (`keys`, `messages`, `phones`, `routing`, `pools`, `webhooks`), each
//! implementing its sub-trait on [`SqliteTx`]. Statements are prepared once per connection
//! (`prepare_cached`), and the hot ones name their partial index (see [`configure_common`]).

mod compat;
mod expiry;
mod history;
mod keys;
mod messages;
mod opt_out;
mod phones;
mod pools;
mod routing;
#[cfg(test)]
mod scaling_tests;
pub mod schema;
mod spend;
mod suppressions;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::tx::{Backend, Tx};
use super::{Counts, Result, StoreError};
use crate::domain::{DeliveryState, MessageStatus, RecipientStatus};
use crate::pool_router::SimKey;

const MAX_IDLE_READERS: usize = 8;
/// Page cache per connection, in KiB: SQLite's own default. The relay holds one writer and up
/// to [`MAX_IDLE_READERS`] idle readers, so the caches together stay under 9 × this.
pub const DEFAULT_CACHE_KIB: u32 = 2000;

/// The SQLite backend.
#[derive(Debug)]
pub struct SqliteBackend {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    cache_kib: u32,
}

/// What every connection needs, readers included.
pub(crate) fn configure_common(conn: &Connection, cache_kib: u32) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "cache_size", -i64::from(cache_kib))?;
    // Without the query planner stability guarantee, SQLite compares the values bound to a
    // statement with the conditions of partial indexes and recompiles the statement whenever
    // such a value changes: a quarter of the relay's CPU went to re-preparing cached
    // statements. The hot queries name their partial index with literals (INDEXED BY).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn configure(conn: &Connection, cache_kib: u32) -> rusqlite::Result<()> {
    configure_common(conn, cache_kib)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl SqliteBackend {
    /// Opens (creating or migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_KIB)
    }

    /// [`Self::open`] with a page cache of `cache_kib` KiB per connection.
    pub fn open_with_cache(path: &Path, cache_kib: u32) -> Result<Self> {
        let mut writer = Connection::open(path).map_err(StoreError::from_sqlite)?;
        configure(&writer, cache_kib)?;
        schema::migrate(&mut writer).map_err(StoreError::from_sqlite)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            cache_kib,
        })
    }
}

impl Backend for SqliteBackend {
    /// One immediate write transaction on the writer connection.
    fn write(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let mut conn = self.writer.lock().expect("writer lock is not poisoned");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from_sqlite)?;
        f(&mut SqliteTx { c: &tx })?;
        tx.commit().map_err(StoreError::from_sqlite)
    }

    /// On a pooled read-only connection (a consistent snapshot per statement).
    fn read(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        let pooled = self.readers.lock().expect("reader pool lock").pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure_common(&c, self.cache_kib)?;
                c
            }
        };
        let out = f(&mut SqliteTx { c: &conn });
        let mut pool = self.readers.lock().expect("reader pool lock");
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        out
    }
}

/// A transaction (or a read) on one connection.
#[derive(Debug)]
pub struct SqliteTx<'c> {
    pub(crate) c: &'c Connection,
}

impl Tx for SqliteTx<'_> {
    fn savepoint(&mut self) -> Result<()> {
        Ok(self.c.execute_batch("SAVEPOINT phone_batch")?)
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        Ok(self
            .c
            .execute_batch("ROLLBACK TO phone_batch; RELEASE phone_batch")?)
    }

    fn release_savepoint(&mut self) -> Result<()> {
        Ok(self.c.execute_batch("RELEASE phone_batch")?)
    }

    fn counts(&mut self) -> Result<Counts> {
        webhooks::counts(self.c)
    }
}

/// States are stored by name.
macro_rules! by_name {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                <$t>::parse(s).ok_or_else(|| FromSqlError::Other(format!("state {s:?}").into()))
            }
        }
    )*};
}

by_name!(RecipientStatus, MessageStatus, DeliveryState);

/// `tried` is stored as JSON: `[[phone, sub_id], ...]`.
pub(crate) fn parse_tried(json: Option<&str>) -> Vec<SimKey> {
    json.and_then(|j| serde_json::from_str::<Vec<(String, i32)>>(j).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(p, s)| SimKey::new(p, s))
        .collect()
}

pub(crate) fn tried_json(tried: &[SimKey]) -> String {
    let v: Vec<(&str, i32)> = tried.iter().map(|k| (k.phone.as_str(), k.sub_id)).collect();
    serde_json::to_string(&v).expect("a list of pairs serialises")
}

/// The SQL list of states, for `state IN ...` (the same literals as the partial indexes).
#[cfg(test)]
pub(crate) fn sql_states(states: &[RecipientStatus]) -> String {
    let names: Vec<String> = states.iter().map(|s| format!("'{s}'")).collect();
    format!("({})", names.join(", "))
}
