//! The store on PostgreSQL, selected by `database_url = "postgres://..."` (`--database`).
//!
//! Durability: a write transaction returns only after PostgreSQL's `COMMIT` (with the
//! server's `synchronous_commit`, on by default: flushed to its WAL), and the group commit
//! (`store::committer`) batches message creations as it does on SQLite. Writers of one schema
//! are serialised by a transaction-level advisory lock (SQLite's one writer), so several
//! relays may share a database, and no transaction can lose a serialisation race; readers run
//! on a snapshot (`REPEATABLE READ READ ONLY`).
//!
//! `conn` holds the connections and maps errors, `schema` the versioned DDL; the SQL of the
//! rows lives in the other files of this module.

pub mod conn;
pub mod copy;
pub mod schema;
pub mod scratch;

use ::postgres::Config;

use crate::store::{Result, StoreError};
use conn::{Conn, Connections};

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PgStore {
    conns: Connections,
}

impl PgStore {
    /// Connects to `url`, creates or migrates the schema (in the URL's `search_path`, by
    /// default `public`), and keeps the connection as the writer.
    pub fn open(url: &str) -> Result<Self> {
        let config = conn::parse_url(url)?;
        Self::open_config(config)
    }

    pub fn open_config(config: Config) -> Result<Self> {
        let mut first = Conn::connect(&config)?;
        let lock_key = lock_key(&mut first)?;
        schema::migrate(first.client())?;
        Ok(Self {
            conns: Connections::new(config, first, lock_key),
        })
    }

    /// The connections (the row-level SQL runs through them).
    pub fn connections(&self) -> &Connections {
        &self.conns
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
