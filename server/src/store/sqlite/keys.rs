//! SQL for accounts and API keys (schema step 7).
//!
//! Keys are stored as SHA-256 hashes of the secret. Nothing here is cached: `key_by_hash` runs
//! on every request (one indexed read), so a key revoked by any process sharing the file is
//! refused on its next request.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteTx;
use crate::store::tx::KeyRows;
use crate::store::{AccountRow, KeyAuth, KeyRow, Millis, NewKey, Result};

/// What schema version 7 added: keys get an id, a name, a prefix, scopes, and revoked and
/// last-used times; accounts get a name. Keys of older versions keep working with the scopes
/// of a whole account (every scope but `admin`).
pub const V7_UPGRADE: &str = r#"
ALTER TABLE accounts ADD COLUMN name TEXT;
CREATE TABLE api_keys_v7 (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    name         TEXT NOT NULL,
    prefix       TEXT,
    key_hash     TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
INSERT INTO api_keys_v7 (id, account_id, name, prefix, key_hash, scopes, created_at)
    SELECT lower(hex(randomblob(16))), account_id, 'key from version 1', NULL, key_hash,
           'send,read,phones,webhooks', created_at
    FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_v7 RENAME TO api_keys;
CREATE INDEX api_keys_account ON api_keys(account_id);
"#;

const KEY_COLUMNS: &str =
    "id, account_id, name, prefix, scopes, created_at, revoked_at, last_used_at";

fn key_row(r: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        name: r.get(2)?,
        prefix: r.get(3)?,
        scopes: r.get(4)?,
        created_at: r.get(5)?,
        revoked_at: r.get(6)?,
        last_used_at: r.get(7)?,
    })
}

impl KeyRows for SqliteTx<'_> {
    fn key_by_hash(&mut self, key_hash: &str) -> Result<Option<KeyAuth>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT id, account_id, scopes, revoked_at IS NOT NULL, last_used_at
                 FROM api_keys WHERE key_hash = ?1",
            )?
            .query_row([key_hash], |r| {
                Ok(KeyAuth {
                    id: r.get(0)?,
                    account_id: r.get(1)?,
                    scopes: r.get(2)?,
                    revoked: r.get(3)?,
                    last_used_at: r.get(4)?,
                })
            })
            .optional()?)
    }

    fn list_keys(&mut self, account: Option<&str>) -> Result<Vec<KeyRow>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 IS NULL OR account_id = ?1
             ORDER BY created_at, id"
        );
        let mut st = self.c.prepare_cached(&sql)?;
        let rows = st.query_map([account], key_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn get_key(&mut self, account: Option<&str>, id: &str) -> Result<Option<KeyRow>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)"
        );
        Ok(self
            .c
            .prepare_cached(&sql)?
            .query_row(params![id, account], key_row)
            .optional()?)
    }

    fn has_admin_key(&mut self) -> Result<bool> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM api_keys
                 WHERE revoked_at IS NULL AND (',' || scopes || ',') LIKE '%,admin,%')",
            )?
            .query_row([], |r| r.get(0))?)
    }

    fn list_accounts(&mut self) -> Result<Vec<AccountRow>> {
        let mut st = self.c.prepare_cached(
            "SELECT a.id, a.name, a.created_at,
                    (SELECT count(*) FROM api_keys k
                     WHERE k.account_id = a.id AND k.revoked_at IS NULL)
             FROM accounts a ORDER BY a.created_at, a.id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(AccountRow {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                active_keys: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn insert_account(&mut self, id: &str, name: Option<&str>, now: Millis) -> Result<()> {
        self.c.execute(
            "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![id, name, now],
        )?;
        Ok(())
    }

    fn ensure_account(&mut self, id: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "INSERT OR IGNORE INTO accounts (id, created_at) VALUES (?1, ?2)",
            params![id, now],
        )?;
        Ok(())
    }

    fn insert_key(&mut self, key: &NewKey) -> Result<()> {
        self.c.execute(
            "INSERT INTO api_keys (id, account_id, name, prefix, key_hash, scopes, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key.id,
                key.account_id,
                key.name,
                key.prefix,
                key.key_hash,
                key.scopes,
                key.created_at
            ],
        )?;
        Ok(())
    }

    fn revoke_key(&mut self, account: Option<&str>, id: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "UPDATE api_keys SET revoked_at = ?3
             WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2) AND revoked_at IS NULL",
            params![id, account, now],
        )?;
        Ok(())
    }

    fn touch_key(&mut self, id: &str, now: Millis, min_gap: Millis) -> Result<bool> {
        let n = self.c.execute(
            "UPDATE api_keys SET last_used_at = ?2
             WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
            params![id, now, min_gap],
        )?;
        Ok(n > 0)
    }
}
