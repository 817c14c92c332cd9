//! Schema migration from a frozen version-1 database: data survives, new tables work.
//! SQLite-only by nature (SQLite's migrations); PostgreSQL's are in `postgres_schema.rs`.

use rusqlite::Connection;
use simrelay_server::domain::auto_reply::OptOutSettings;
use simrelay_server::store::schema::{V1_SQL, VERSION};
use simrelay_server::store::{Store, Webhook};

#[test]
fn v1_database_upgrades_in_place() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("relay.sqlite");
    {
        let c = Connection::open(&path)?;
        c.execute_batch(V1_SQL)?;
        c.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO accounts VALUES ('acc', 1);
             INSERT INTO api_keys VALUES ('hash', 'acc', 1);
             INSERT INTO messages (account_id, id, body_hash, text, priority, delivery_report,
                 state, created_at, updated_at) VALUES ('acc', 'old-1', 'h', 'hi', 0, 1, 'pending', 1, 1);
             INSERT INTO recipients (mseq, idx, to_number, state, updated_at)
                 VALUES (1, 0, '+15551230001', 'pending', 1);
             INSERT INTO messages (account_id, id, body_hash, text, priority, delivery_report,
                 state, created_at, updated_at)
                 VALUES ('acc', 'old-2', 'h', printf('%.161c', 'a'), 1, 1, 'pending', 1, 1);
             INSERT INTO recipients (mseq, idx, to_number, state, updated_at)
                 VALUES (2, 0, '+15551230002', 'pending', 1);
             INSERT INTO phones (id, account_id, token_hash, created_at)
                 VALUES ('old-phone', 'acc', 'old-token-hash', 1);",
        )?;
    }
    let store = Store::open_sqlite(&path)?;
    assert_eq!(store.account_for_key("hash")?.as_deref(), Some("acc"));
    // A key from before v7 keeps the scopes of a whole account, with no prefix.
    let keys = store.list_keys(Some("acc"))?;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].scopes, "send,read,phones,webhooks");
    assert_eq!(
        (keys[0].prefix.as_deref(), keys[0].revoked_at),
        (None, None)
    );
    assert!(!store.has_admin_key()?);
    let m = store
        .get_message("acc", "old-1")?
        .expect("the old message survives");
    assert_eq!(m.recipients[0].to, "+15551230001");
    // Counts per state (kept by triggers since v4) start from what the old database held.
    assert_eq!(
        store.counts()?.messages_by_state,
        vec![("pending".to_string(), 2)]
    );
    // Part counts (stored since v8) were filled in for the messages still waiting: routing
    // reads them instead of counting the text on every pass.
    let parts: Vec<(String, u32)> = store
        .unrouted("acc", &[], 10)?
        .into_iter()
        .map(|u| (u.to, u.parts))
        .collect();
    assert_eq!(
        parts,
        [
            ("+15551230002".to_string(), 2),
            ("+15551230001".to_string(), 1)
        ]
    );
    // The history (since v9) starts with each old recipient's state at the upgrade.
    let h = store.message_history("acc", "old-1")?.expect("history");
    assert_eq!(
        h.iter()
            .map(|r| (r.idx, r.state.as_str(), r.at))
            .collect::<Vec<_>>(),
        [(0, "pending", 1)]
    );
    store.create_webhook(
        "acc",
        &Webhook {
            id: "w".into(),
            url: "http://127.0.0.1:9/".into(),
            events: vec!["message.sent".into()],
            secret: "s".repeat(16),
            created_at: 2,
        },
    )?;
    assert_eq!(store.list_webhooks("acc")?.len(), 1);
    store.create_pairing_code("acc", "code-hash", 2, 10)?;
    // A phone paired before removal existed (v5) still authenticates, and can be removed.
    assert!(store.phone_by_token("old-token-hash")?.is_some());
    assert!(store.remove_phone("acc", "old-phone", 3)?.is_some());
    assert!(store.phone_by_token("old-token-hash")?.is_none());
    drop(store);
    let c = Connection::open(&path)?;
    let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(v, VERSION);
    // Opening again is a no-op.
    let store = Store::open_sqlite(&path)?;
    assert_eq!(store.list_webhooks("acc")?.len(), 1);
    // The old recipients got their message's creation time (v11): they expire at the default
    // validity counted from it, not before.
    assert_eq!(store.expire_unrouted(1_001, 1_000)?, 0);
    assert_eq!(store.expire_unrouted(1_002, 1_000)?, 2);
    // The suppression list (v12) starts empty and takes numbers.
    assert!(store.list_suppressions("acc", None, 10)?.is_empty());
    assert!(store.add_suppression("acc", "+15551230001", 5)?);
    assert_eq!(store.list_suppressions("acc", None, 10)?.len(), 1);
    Ok(())
}

/// A version-11 database (the newest schema less the v12 step) gains the suppression list,
/// and its messages are kept.
#[test]
fn v11_database_gains_the_suppression_list() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("relay.sqlite");
    {
        let c = Connection::open(&path)?;
        c.execute_batch(V1_SQL)?;
        c.execute_batch("PRAGMA user_version = 1; INSERT INTO accounts VALUES ('acc', 1);")?;
    }
    drop(Store::open_sqlite(&path)?);
    {
        let c = Connection::open(&path)?;
        c.execute_batch(&format!(
            "{UNDO_V14} {DROP_LIMITS} DROP TABLE suppressions; PRAGMA user_version = 11;"
        ))?;
    }
    let store = Store::open_sqlite(&path)?;
    assert!(store.add_suppression("acc", "+15551230001", 5)?);
    assert!(
        !store.add_suppression("acc", "+15551230001", 6)?,
        "listed once"
    );
    let listed = store.list_suppressions("acc", None, 10)?;
    assert_eq!(
        listed
            .iter()
            .map(|s| (s.number.as_str(), s.keyword.as_str(), s.created_at))
            .collect::<Vec<_>>(),
        [("+15551230001", "manual", 5)]
    );
    assert!(store.remove_suppression("acc", "+15551230001")?);
    assert!(!store.remove_suppression("acc", "+15551230001")?);
    drop(store);
    let v: i64 = Connection::open(&path)?.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(v, VERSION);
    Ok(())
}

/// What the spend limits' step (version 13) adds.
const DROP_LIMITS: &str = "DROP TABLE account_limits; DROP TABLE account_usage;
    DROP TABLE account_numbers; DROP TABLE account_prefixes; DROP INDEX recipients_held;";

/// A version-12 database (the newest schema less the limits' step) gains the limits' tables;
/// its accounts have no limits until some are set.
#[test]
fn v12_database_gains_the_spend_limits() -> Result<(), Box<dyn std::error::Error>> {
    use simrelay_server::domain::spend::Limits;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("relay.sqlite");
    {
        let c = Connection::open(&path)?;
        c.execute_batch(V1_SQL)?;
        c.execute_batch("PRAGMA user_version = 1; INSERT INTO accounts VALUES ('acc', 1);")?;
    }
    drop(Store::open_sqlite(&path)?);
    {
        let c = Connection::open(&path)?;
        c.execute_batch(&format!(
            "{UNDO_V14} {DROP_LIMITS} PRAGMA user_version = 12;"
        ))?;
    }
    let store = Store::open_sqlite(&path)?;
    assert_eq!(store.account_limits("acc")?, None);
    let l = Limits {
        daily_parts: Some(5),
        ..Limits::default()
    };
    store.put_account_limits("acc", &l, 7)?;
    assert_eq!(store.account_limits("acc")?, Some(l));
    drop(store);
    let v: i64 = Connection::open(&path)?.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(v, VERSION);
    Ok(())
}

/// What takes a database of the current version back to version 13 (before the opt-out
/// settings, `store::sqlite::opt_out`).
const UNDO_V14: &str = "DROP TABLE opt_out_settings; DROP TABLE auto_replies;
    ALTER TABLE messages DROP COLUMN suppression_override;
    ALTER TABLE messages DROP COLUMN overrode_suppression;";

#[test]
fn v13_database_gains_the_opt_out_settings() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("relay.sqlite");
    {
        let c = Connection::open(&path)?;
        c.execute_batch(V1_SQL)?;
        c.execute_batch("PRAGMA user_version = 1; INSERT INTO accounts VALUES ('acc', 1);")?;
    }
    drop(Store::open_sqlite(&path)?);
    {
        let c = Connection::open(&path)?;
        c.execute_batch(&format!("{UNDO_V14} PRAGMA user_version = 13;"))?;
        c.execute_batch(
            "INSERT INTO messages (account_id, id, body_hash, text, priority, delivery_report,
                 state, created_at, updated_at, parts)
             VALUES ('acc', 'old', 'h', 'hi', 0, 1, 'pending', 1, 1, 1);",
        )?;
    }
    let store = Store::open_sqlite(&path)?;
    assert_eq!(store.opt_out_settings("acc")?, OptOutSettings::default());
    let s = OptOutSettings {
        help_reply: Some("help text".into()),
        allow_override: true,
        help_keywords: vec!["aide".into()],
        ..OptOutSettings::default()
    };
    store.put_opt_out_settings("acc", &s, 5)?;
    assert_eq!(store.opt_out_settings("acc")?, s);
    let old = store.get_message("acc", "old")?.expect("kept");
    assert_eq!(
        (old.suppression_override, old.overrode_suppression),
        (None, false)
    );
    drop(store);
    let v: i64 = Connection::open(&path)?.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(v, VERSION);
    Ok(())
}

/// What takes a database of the current version back to version 14: `account_usage` with a
/// rowid and `recipients_phone` over every recipient.
const UNDO_V15: &str = "
    CREATE TABLE account_usage_v14 (account_id TEXT NOT NULL, counter TEXT NOT NULL,
        parts INTEGER NOT NULL, reached_at INTEGER, PRIMARY KEY (account_id, counter));
    INSERT INTO account_usage_v14 SELECT * FROM account_usage;
    DROP TABLE account_usage;
    ALTER TABLE account_usage_v14 RENAME TO account_usage;
    DROP INDEX recipients_phone;
    CREATE INDEX recipients_phone ON recipients(phone_id, state);";

/// A version-14 database keeps its usage counts in the WITHOUT ROWID table, and its phones'
/// recipients are still found by the (now partial) index.
#[test]
fn v14_database_writes_fewer_pages_per_create() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("relay.sqlite");
    drop(Store::open_sqlite(&path)?);
    {
        let c = Connection::open(&path)?;
        c.execute_batch(&format!(
            "{UNDO_V15} PRAGMA user_version = 14;
             INSERT INTO accounts (id, created_at) VALUES ('acc', 1);
             INSERT INTO account_usage VALUES ('acc', 'day:2026-12-06', 7, NULL),
                                              ('acc', 'month:2026-12', 9, 5);"
        ))?;
    }
    drop(Store::open_sqlite(&path)?);
    let c = Connection::open(&path)?;
    let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(v, VERSION);
    let rows: Vec<(String, i64, Option<i64>)> = c
        .prepare("SELECT counter, parts, reached_at FROM account_usage ORDER BY counter")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(
        rows,
        vec![
            ("day:2026-12-06".to_string(), 7, None),
            ("month:2026-12".to_string(), 9, Some(5))
        ]
    );
    let sql = |name: &str| -> rusqlite::Result<String> {
        c.query_row(
            "SELECT sql FROM sqlite_master WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
    };
    assert!(sql("account_usage")?.contains("WITHOUT ROWID"));
    assert!(sql("recipients_phone")?.contains("WHERE phone_id IS NOT NULL"));
    // A phone's recipients are still looked up through the index, not by a scan.
    let plan: Vec<String> = c
        .prepare(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM recipients
             WHERE phone_id = ?1 AND state IN ('queued', 'sending')",
        )?
        .query_map(["p"], |r| r.get(3))?
        .collect::<rusqlite::Result<_>>()?;
    assert!(
        plan.iter().any(|d| d.contains("recipients_phone")),
        "{plan:?}"
    );
    Ok(())
}

#[test]
fn a_newer_schema_is_refused() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("relay.sqlite");
    Connection::open(&path)?.execute_batch("PRAGMA user_version = 99;")?;
    assert!(Store::open_sqlite(&path).is_err());
    Ok(())
}
