//! The PostgreSQL backend, selected by `database_url = "postgres://..."` (`--database`).
//!
//! Durability: a write transaction returns only after PostgreSQL's `COMMIT` (with the
//! server's `synchronous_commit`, on by default: flushed to its WAL), and the group commit
//! (`store::committer`) batches message creations as it does on SQLite. Writers of one schema
//! are serialised by a transaction-level advisory lock (SQLite's one writer), so several
//! relays may share a database and no transaction can lose a serialisation race. Reads run
//! on pooled read-only connections, one snapshot per statement (as SQLite's readers).
//!
//! `conn` holds the connections and maps errors, `schema` the versioned DDL; the SQL of
//! [`Tx`] is in one file per area (`keys`, `messages`, `phones`, `routing`, `pools`,
//! `webhooks`), each implementing its sub-trait on [`PgTx`]. Every statement is a constant
//! prepared once per connection; the hot paths over slices are one statement over arrays
//! (`unnest`), so a group commit of N messages costs a few round trips, not N.

pub mod cluster;
mod compat;
pub mod conn;
pub mod copy;
mod expiry;
mod history;
mod keys;
mod listen;
mod messages;
pub mod notify;
mod opt_out;
mod phones;
mod pools;
mod routing;
pub mod schema;
pub mod scratch;
mod spend;
mod suppressions;
mod sweep;
mod webhooks;

use ::postgres::Row;
use ::postgres::types::FromSql;

use super::tx::{Backend, Tx};
use super::{Counts, Result, StoreError};
use crate::domain::{DeliveryState, MessageStatus, RecipientStatus};
pub use cluster::CLUSTER_STEP;
use conn::{Conn, Connections};
pub use opt_out::STEP_OPT_OUT_REPLIES;
pub use spend::LIMITS_STEP;
pub use sweep::STEP_PHONE_PINGS;
pub use webhooks::STEP_WEBHOOK_CLAIMS;

/// The PostgreSQL backend.
#[derive(Debug)]
pub struct PgBackend {
    conns: Connections,
    keys: std::sync::Arc<crate::store::key_cache::KeyCache>,
}

impl PgBackend {
    /// Connects to `url`, creates or migrates the schema (in the URL's `search_path`, by
    /// default `public`), and keeps the connection as the writer.
    pub fn open(url: &str) -> Result<Self> {
        let config = conn::parse_url(url)?;
        let mut first = Conn::connect_writer(&config)?;
        let lock_key = lock_key(&mut first)?;
        schema::migrate(first.client())?;
        let keys = std::sync::Arc::default();
        listen::spawn(config.clone(), &keys);
        Ok(Self {
            conns: Connections::new(config, first, lock_key),
            keys,
        })
    }

    /// The connections (the copier runs its transaction through them).
    pub fn connections(&self) -> &Connections {
        &self.conns
    }
}

impl Backend for PgBackend {
    fn write(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.conns.write(|c| f(&mut PgTx { c }))
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        self.conns.read(|c| f(&mut PgTx { c }))
    }

    fn key_cache(&self) -> Option<std::sync::Arc<crate::store::key_cache::KeyCache>> {
        Some(self.keys.clone())
    }
}

impl super::Store {
    /// Connects to the PostgreSQL database at `url` (creating or migrating its schema).
    pub fn open_postgres(url: &str) -> Result<Self> {
        Ok(Self::new(Box::new(PgBackend::open(url)?)))
    }
}

/// The advisory-lock key of the writers of the connection's schema: one per database and
/// schema, so that stores in other schemas of the same server (the tests' ones) do not wait
/// for each other.
fn lock_key(conn: &mut Conn) -> Result<i64> {
    let row = conn.query_one(
        "SELECT current_schema(), \
                hashtextextended(current_database() || '.' || current_schema(), 0)",
        &[],
    )?;
    let schema: Option<String> = row.get(0);
    if schema.is_none() {
        return Err(StoreError::Postgres(
            "the connection's search_path names no schema that exists".into(),
        ));
    }
    Ok(row.get(1))
}

/// A transaction (or a read) on one connection.
#[derive(Debug)]
pub struct PgTx<'c> {
    pub(crate) c: &'c mut Conn,
}

impl Tx for PgTx<'_> {
    fn savepoint(&mut self) -> Result<()> {
        self.c.batch("SAVEPOINT phone_batch")
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.c
            .batch("ROLLBACK TO SAVEPOINT phone_batch; RELEASE SAVEPOINT phone_batch")
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.c.batch("RELEASE SAVEPOINT phone_batch")
    }

    fn counts(&mut self) -> Result<Counts> {
        webhooks::counts(self.c)
    }

    fn try_sweep_lock(&mut self, name: &str) -> Result<bool> {
        sweep::try_lock(self.c, name)
    }

    fn claim_pings(
        &mut self,
        phones: &[&str],
        now: crate::store::Millis,
        every: crate::store::Millis,
    ) -> Result<Vec<String>> {
        sweep::claim_pings(self.c, phones, now, every)
    }
}

// ---- reading rows: every integer column is BIGINT, narrowed here with a check ----

fn out_of_range(i: usize) -> StoreError {
    StoreError::Postgres(format!("column {i} holds a value out of range"))
}

pub(crate) fn get<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(StoreError::from_pg)
}

pub(crate) fn get_u32(r: &Row, i: usize) -> Result<u32> {
    u32::try_from(get::<i64>(r, i)?).map_err(|_| out_of_range(i))
}

pub(crate) fn get_u64(r: &Row, i: usize) -> Result<u64> {
    u64::try_from(get::<i64>(r, i)?).map_err(|_| out_of_range(i))
}

pub(crate) fn get_i32(r: &Row, i: usize) -> Result<i32> {
    i32::try_from(get::<i64>(r, i)?).map_err(|_| out_of_range(i))
}

pub(crate) fn get_opt_i32(r: &Row, i: usize) -> Result<Option<i32>> {
    get::<Option<i64>>(r, i)?
        .map(|v| i32::try_from(v).map_err(|_| out_of_range(i)))
        .transpose()
}

pub(crate) fn get_opt_u32(r: &Row, i: usize) -> Result<Option<u32>> {
    get::<Option<i64>>(r, i)?
        .map(|v| u32::try_from(v).map_err(|_| out_of_range(i)))
        .transpose()
}

pub(crate) fn get_opt_u16(r: &Row, i: usize) -> Result<Option<u16>> {
    get::<Option<i64>>(r, i)?
        .map(|v| u16::try_from(v).map_err(|_| out_of_range(i)))
        .transpose()
}

fn unknown_state(s: &str) -> StoreError {
    // A state name is no secret (one of a fixed set, or a corrupt value of that column).
    StoreError::Corrupt(format!("state {s:?}"))
}

pub(crate) fn get_rstatus(r: &Row, i: usize) -> Result<RecipientStatus> {
    let s: &str = get(r, i)?;
    RecipientStatus::parse(s).ok_or_else(|| unknown_state(s))
}

pub(crate) fn get_mstatus(r: &Row, i: usize) -> Result<MessageStatus> {
    let s: &str = get(r, i)?;
    MessageStatus::parse(s).ok_or_else(|| unknown_state(s))
}

pub(crate) fn get_opt_dstate(r: &Row, i: usize) -> Result<Option<DeliveryState>> {
    get::<Option<&str>>(r, i)?
        .map(|s| DeliveryState::parse(s).ok_or_else(|| unknown_state(s)))
        .transpose()
}

/// A count or an index as the BIGINT it is stored as.
pub(crate) fn big(v: u32) -> i64 {
    i64::from(v)
}

/// A frame or event seq as BIGINT (seqs count frames of one phone: far below 2^63).
pub(crate) fn big_seq(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Postgres("a seq beyond 2^63".into()))
}

pub(crate) fn big_opt(v: Option<i32>) -> Option<i64> {
    v.map(i64::from)
}
