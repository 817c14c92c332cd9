//! The relay's SQLite schema and its migrations.
//!
//! The version lives in `PRAGMA user_version`. A fresh database gets [`V1_SQL`] and every
//! upgrade after it; an older one is upgraded step by step by [`upgrade_from`], all in the
//! same transaction as the version bump. `V1_SQL` is frozen: it is what version 1 of the relay
//! created, and the migration test starts from it.

use rusqlite::{Connection, Transaction};

/// The version [`migrate`] brings a database to.
pub const VERSION: i64 = 15;

/// Version 1 (frozen: never edit, the migration test opens databases made by it).
pub const V1_SQL: &str = r#"
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
);
CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    created_at  INTEGER NOT NULL
);
CREATE TABLE phones (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    name        TEXT,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER,
    online      INTEGER NOT NULL DEFAULT 0,
    status_json TEXT,
    next_seq    INTEGER NOT NULL DEFAULT 0,
    acked_seq   INTEGER NOT NULL DEFAULT 0,
    event_seq   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX phones_account ON phones(account_id);
CREATE TABLE messages (
    mseq            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      TEXT NOT NULL,
    id              TEXT NOT NULL,
    body_hash       TEXT NOT NULL,
    text            TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    valid_until     INTEGER,
    schedule_at     INTEGER,
    phone_id        TEXT,
    sim             INTEGER,
    delivery_report INTEGER NOT NULL,
    state           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (account_id, id)
);
CREATE INDEX messages_state ON messages(account_id, state, mseq);
CREATE TABLE recipients (
    mseq            INTEGER NOT NULL REFERENCES messages(mseq),
    idx             INTEGER NOT NULL,
    to_number       TEXT NOT NULL,
    state           TEXT NOT NULL,
    phone_id        TEXT,
    sim             INTEGER,
    accepted        INTEGER NOT NULL DEFAULT 0,
    parts           INTEGER NOT NULL DEFAULT 0,
    parts_sent      INTEGER NOT NULL DEFAULT 0,
    parts_delivered INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    code            INTEGER,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (mseq, idx)
);
CREATE INDEX recipients_unrouted ON recipients(mseq, idx)
    WHERE phone_id IS NULL AND state = 'pending';
CREATE INDEX recipients_phone ON recipients(phone_id, state);
CREATE TABLE frames (
    phone_id    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (phone_id, seq)
);
CREATE TABLE inbox (
    rowid_      INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL,
    phone_id    TEXT NOT NULL,
    sms_id      TEXT NOT NULL,
    sim         INTEGER,
    from_number TEXT NOT NULL,
    text        TEXT NOT NULL,
    sent_at     INTEGER,
    received_at INTEGER NOT NULL,
    stored_at   INTEGER NOT NULL,
    UNIQUE (phone_id, sms_id)
);
CREATE INDEX inbox_account ON inbox(account_id, rowid_);
"#;

/// What version 2 added: pairing codes and webhooks with their durable outbox.
const V2_UPGRADE: &str = r#"
CREATE TABLE pairing_codes (
    code_hash   TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX webhooks_account ON webhooks(account_id);
CREATE TABLE webhook_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    webhook_id  TEXT NOT NULL,
    event       TEXT NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    last_error  TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox(next_at) WHERE state = 'pending';
"#;

/// What version 4 added: partial indexes so that what runs on every routing pass and every
/// deadline tick reads the recipients still in flight, not the whole history (the router's
/// per-SIM backlog scanned every message of the account: relay CPU grew with the store), and
/// message counts per state kept by triggers so `/metrics` does not count the history on
/// every scrape.
const V4_UPGRADE: &str = r#"
CREATE INDEX recipients_unsent ON recipients(mseq)
    WHERE phone_id IS NOT NULL AND state IN ('pending', 'queued', 'sending', 'cancelling');
CREATE INDEX recipients_waiting ON recipients(updated_at)
    WHERE phone_id IS NOT NULL AND state IN ('pending', 'queued', 'sending', 'sent', 'cancelling');
CREATE INDEX recipients_done ON recipients(updated_at) WHERE state IN ('sent', 'delivered');
CREATE TABLE message_counts (
    state   TEXT PRIMARY KEY,
    n       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO message_counts SELECT state, count(*) FROM messages GROUP BY state;
CREATE TRIGGER message_counts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_counts VALUES (NEW.state, 1) ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER message_counts_update AFTER UPDATE OF state ON messages
WHEN OLD.state IS NOT NEW.state BEGIN
    UPDATE message_counts SET n = n - 1 WHERE state = OLD.state;
    INSERT INTO message_counts VALUES (NEW.state, 1) ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER message_counts_delete AFTER DELETE ON messages BEGIN
    UPDATE message_counts SET n = n - 1 WHERE state = OLD.state;
END;
"#;

/// What version 5 added: phones can be removed (`DELETE /v1/phones/{id}`; the row stays, so
/// that the messages it sent still name it, and its token hash is replaced by a value no
/// token hashes to), and parts sent per SIM and minute, kept for the last ten minutes, so
/// that `/metrics` and the pools view read a few rows per SIM instead of every recipient
/// sent in the last ten minutes (the index v4 added for that, `recipients_done`, held every
/// sent and delivered recipient ever and cost every write; it is dropped).
const V5_UPGRADE: &str = r#"
ALTER TABLE phones ADD COLUMN removed_at INTEGER;
DROP INDEX recipients_done;
CREATE TABLE sim_sent (
    phone_id    TEXT NOT NULL,
    sub_id      INTEGER NOT NULL,
    minute      INTEGER NOT NULL,
    parts       INTEGER NOT NULL,
    PRIMARY KEY (phone_id, sub_id, minute)
) WITHOUT ROWID;
"#;

/// What version 6 added for webhooks: a per-webhook index of pending deliveries (each
/// endpoint is drained by its own worker, so one that hangs delays no other) and the
/// per-webhook delivery log (`GET /v1/webhooks/{id}/deliveries`).
///
/// Self-contained: it only adds objects no other step names, so it can be renumbered when
/// merged with other version-6 steps.
const V6_WEBHOOKS_UPGRADE: &str = r#"
CREATE INDEX webhook_outbox_endpoint ON webhook_outbox(webhook_id, next_at)
    WHERE state = 'pending';
CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event       TEXT NOT NULL,
    at          INTEGER NOT NULL,
    status      INTEGER,
    duration_ms INTEGER NOT NULL,
    error       TEXT
);
CREATE INDEX webhook_attempts_hook ON webhook_attempts(webhook_id, id);
"#;

/// What version 8 added: a message's SMS part count, computed once at creation (routing read
/// every waiting message's text and counted its parts on every pass).
const V8_UPGRADE: &str = "ALTER TABLE messages ADD COLUMN parts INTEGER NOT NULL DEFAULT 0;";

/// Adds `messages.parts` and fills it in for the messages routing still reads: those with a
/// recipient waiting for a SIM or in a phone's queue. Finished messages keep 0, which nothing
/// reads (no recipient of theirs is ever routed again).
fn v8_parts(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(V8_UPGRADE)?;
    let live: Vec<(i64, String)> = tx
        .prepare(
            "SELECT mseq, text FROM messages WHERE mseq IN (SELECT mseq FROM recipients
                 WHERE state IN ('pending', 'queued', 'sending', 'cancelling'))",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut set = tx.prepare("UPDATE messages SET parts = ?2 WHERE mseq = ?1")?;
    for (mseq, text) in live {
        set.execute(rusqlite::params![
            mseq,
            simrelay_protocol::segment::count_parts(&text)
        ])?;
    }
    Ok(())
}

/// What version 15 changed: fewer b-tree pages written by every create (a one-message commit
/// wrote 13.2 WAL frames, 12.05 after; a one-client commit pays for each). `account_usage` is keyed by its primary key alone
/// (WITHOUT ROWID: it had a rowid table and an index of the key), and `recipients_phone`
/// leaves out the recipients no phone holds yet (every query of it names a phone, which
/// implies `phone_id IS NOT NULL`). Safe to run on either form of both.
const V15_UPGRADE: &str = r#"
CREATE TABLE account_usage_v15 (
    account_id  TEXT NOT NULL,
    counter     TEXT NOT NULL,
    parts       INTEGER NOT NULL,
    reached_at  INTEGER,
    PRIMARY KEY (account_id, counter)
) WITHOUT ROWID;
INSERT INTO account_usage_v15 (account_id, counter, parts, reached_at)
    SELECT account_id, counter, parts, reached_at FROM account_usage;
DROP TABLE account_usage;
ALTER TABLE account_usage_v15 RENAME TO account_usage;
DROP INDEX recipients_phone;
CREATE INDEX recipients_phone ON recipients(phone_id, state) WHERE phone_id IS NOT NULL;
"#;

/// Brings `conn` to [`VERSION`], creating or upgrading as needed.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 0 {
        tx.execute_batch(V1_SQL)?;
        upgrade_from(&tx, 1)?;
    } else if version < VERSION {
        upgrade_from(&tx, version)?;
    } else if version > VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "database schema version {version} is newer than this relay ({VERSION})"
        )));
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()
}

/// Runs every upgrade step after `version`.
pub fn upgrade_from(tx: &Transaction<'_>, version: i64) -> rusqlite::Result<()> {
    if version < 2 {
        tx.execute_batch(V2_UPGRADE)?;
    }
    if version < 3 {
        tx.execute_batch(super::pools::V3_UPGRADE)?;
    }
    if version < 4 {
        tx.execute_batch(V4_UPGRADE)?;
    }
    if version < 5 {
        tx.execute_batch(V5_UPGRADE)?;
    }
    if version < 6 {
        tx.execute_batch(V6_WEBHOOKS_UPGRADE)?;
    }
    if version < 7 {
        tx.execute_batch(super::keys::V7_UPGRADE)?;
    }
    if version < 8 {
        v8_parts(tx)?;
    }
    if version < 9 {
        tx.execute_batch(super::history::V9_UPGRADE)?;
    }
    if version < 10 {
        tx.execute_batch(super::compat::V10_UPGRADE)?;
    }
    if version < 11 {
        tx.execute_batch(super::expiry::V11_UPGRADE)?;
    }
    if version < 12 {
        tx.execute_batch(super::suppressions::V12_UPGRADE)?;
    }
    if version < 13 {
        tx.execute_batch(super::spend::LIMITS_UPGRADE)?;
    }
    if version < 14 {
        tx.execute_batch(super::opt_out::V13_OPT_OUT_REPLIES)?;
    }
    if version < 15 {
        tx.execute_batch(V15_UPGRADE)?;
    }
    Ok(())
}
