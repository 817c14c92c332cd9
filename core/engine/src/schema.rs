//! The engine's SQLite schema and its migrations (`PRAGMA user_version`).
//!
//! One writer connection, WAL mode, `synchronous = FULL`: a commit is on disk before the
//! engine answers, so an accepted message survives a power cut, not only an app kill.

use rusqlite::{Connection, Transaction};

use crate::error::{Error, Result};

/// The schema version this build writes.
pub const VERSION: i32 = 2;

const SCHEMA_V1: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    priority INTEGER NOT NULL,
    valid_until INTEGER NOT NULL,
    schedule_at INTEGER,
    sim INTEGER,
    delivery_report INTEGER NOT NULL,
    resend_unknown INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
-- One row per recipient: the unit handed to the radio (one sendMultipartTextMessage call).
CREATE TABLE recipients (
    message_id TEXT NOT NULL REFERENCES messages(id),
    idx INTEGER NOT NULL,
    dest TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL,
    -- Outbox seq of the `queued` event; the radio may have it once the relay acked that seq.
    accept_seq INTEGER,
    attempt INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    -- When the current non-final state ends (expired / unknown); NULL once settled.
    deadline INTEGER,
    sim INTEGER,
    parts INTEGER NOT NULL,
    parts_sent INTEGER NOT NULL DEFAULT 0,
    parts_delivered INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    code INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, idx)
);
CREATE INDEX recipients_queue ON recipients(state, priority DESC, next_at);
CREATE INDEX recipients_deadline ON recipients(deadline) WHERE deadline IS NOT NULL;
-- Results per part of an attempt; repeated and late reports update the same row.
CREATE TABLE parts (
    message_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    part INTEGER NOT NULL,
    sent_result INTEGER,
    error_code INTEGER,
    report_status INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, idx, attempt, part)
);
CREATE TABLE sims (
    sub_id INTEGER PRIMARY KEY,
    slot INTEGER NOT NULL,
    carrier TEXT,
    parts_per_minute INTEGER,
    daily_cap INTEGER,
    active INTEGER NOT NULL DEFAULT 1,
    next_free_at INTEGER NOT NULL DEFAULT 0,
    day INTEGER NOT NULL DEFAULT 0,
    sent_today INTEGER NOT NULL DEFAULT 0,
    expedited_today INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE incoming (
    id TEXT PRIMARY KEY,
    sim INTEGER,
    sender TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at INTEGER,
    received_at INTEGER NOT NULL
);
-- Events for the relay, kept until it acknowledges them. AUTOINCREMENT: a seq is never reused.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL
);
";

/// Version 2: a message may be a data SMS to an application port (`body` is then its base64
/// payload), and end-to-end encrypted (`body` and its recipients' `dest` are then
/// ciphertexts, decrypted only on the way to the radio).
const SCHEMA_V2: &str = "
ALTER TABLE messages ADD COLUMN data_port INTEGER;
ALTER TABLE messages ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
";

/// Opens (creating or upgrading) the store at `conn`.
pub fn init(conn: &mut Connection) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Without the query planner stability guarantee SQLite recompiles a cached statement
    // whenever a value bound to it could change which partial index applies (a fifth of the
    // simulated phones' CPU went to re-preparing statements).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > VERSION {
        return Err(Error::Corrupt(format!(
            "store has schema version {version}, newer than this build's {VERSION}"
        )));
    }
    if version < VERSION {
        let tx = conn.transaction()?;
        upgrade_from(&tx, version)?;
        tx.pragma_update(None, "user_version", VERSION)?;
        tx.commit()?;
    }
    Ok(())
}

fn upgrade_from(tx: &Transaction<'_>, version: i32) -> Result<()> {
    if version < 1 {
        tx.execute_batch(SCHEMA_V1)?;
    }
    if version < 2 {
        tx.execute_batch(SCHEMA_V2)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reopens_at_the_current_version() -> Result<()> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("core.db");
        for _ in 0..2 {
            let mut conn = Connection::open(&path)?;
            init(&mut conn)?;
            let v: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            assert_eq!(v, VERSION);
            let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
            assert_eq!(mode, "wal");
        }
        Ok(())
    }

    #[test]
    fn upgrades_a_v1_store_keeping_its_messages() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA_V1)?;
        conn.execute(
            "INSERT INTO messages (id, body, priority, valid_until, sim, delivery_report,
                resend_unknown, created_at) VALUES ('m1', 'hi', 0, 9, NULL, 1, 0, 1)",
            [],
        )?;
        conn.pragma_update(None, "user_version", 1)?;
        init(&mut conn)?;
        let v: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        assert_eq!(v, VERSION);
        let (body, port, encrypted): (String, Option<u16>, bool) = conn.query_row(
            "SELECT body, data_port, encrypted FROM messages WHERE id = 'm1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        assert_eq!((body.as_str(), port, encrypted), ("hi", None, false));
        Ok(())
    }

    #[test]
    fn refuses_a_store_from_a_newer_build() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "user_version", VERSION + 1)?;
        assert!(matches!(init(&mut conn), Err(Error::Corrupt(_))));
        Ok(())
    }
}
