//! SQL for accounts and API keys: schema step 7, key lookup on every request, the key
//! lifecycle (create, list, revoke) and accounts.
//!
//! Keys are stored as SHA-256 hashes of the secret (keys have at least 128 bits, so a fast
//! hash is enough); `prefix` is the start of a generated secret, shown afterwards so that a
//! person can tell keys apart. Nothing here is cached: [`key_by_hash`] runs on every request
//! (one indexed read), so a key revoked by any process sharing the file is refused on its next
//! request.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{Millis, Result};

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

/// The scopes of a whole account (every scope but `admin`), as stored.
pub const ACCOUNT_SCOPES: &str = "send,read,phones,webhooks";

/// A key as the authentication of a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAuth {
    pub id: String,
    pub account_id: String,
    /// Comma-separated scope names.
    pub scopes: String,
    pub revoked: bool,
    pub last_used_at: Option<Millis>,
}

/// A key as `GET /v1/keys` shows it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub prefix: Option<String>,
    pub scopes: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
}

/// A key to store: its hash, never the secret.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub prefix: Option<String>,
    pub key_hash: String,
    pub scopes: String,
    pub created_at: Millis,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: String,
    pub name: Option<String>,
    pub created_at: Millis,
    /// Keys not revoked.
    pub active_keys: u32,
}

/// What revoking did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// No such key (in that account).
    NotFound,
    /// Revoked now or before: the row as it is now.
    Done(KeyRow),
}

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

/// The key with this hash, revoked or not.
pub fn key_by_hash(c: &Connection, key_hash: &str) -> Result<Option<KeyAuth>> {
    Ok(c.prepare_cached(
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

/// The account of a key that is not revoked.
pub fn account_for_key(c: &Connection, key_hash: &str) -> Result<Option<String>> {
    Ok(key_by_hash(c, key_hash)?
        .filter(|k| !k.revoked)
        .map(|k| k.account_id))
}

/// Makes sure a key with this hash exists (a revoked one stays revoked); creates the account
/// `account` (or a new one when `None`) if needed. Returns the key's account.
pub fn ensure_key(
    tx: &Transaction<'_>,
    key_hash: &str,
    account: Option<&str>,
    name: &str,
    scopes: &str,
    now: Millis,
) -> Result<String> {
    if let Some(k) = key_by_hash(tx, key_hash)? {
        return Ok(k.account_id);
    }
    let account = match account {
        Some(a) => a.to_string(),
        None => create_account(tx, None, now)?,
    };
    tx.execute(
        "INSERT OR IGNORE INTO accounts (id, created_at) VALUES (?1, ?2)",
        params![account, now],
    )?;
    insert_key(
        tx,
        &NewKey {
            id: uuid::Uuid::now_v7().to_string(),
            account_id: account.clone(),
            name: name.to_string(),
            prefix: None,
            key_hash: key_hash.to_string(),
            scopes: scopes.to_string(),
            created_at: now,
        },
    )?;
    Ok(account)
}

/// Stores a new key.
pub fn insert_key(tx: &Transaction<'_>, key: &NewKey) -> Result<()> {
    tx.execute(
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

/// The keys of an account (or of every account), oldest first.
pub fn list_keys(c: &Connection, account: Option<&str>) -> Result<Vec<KeyRow>> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 IS NULL OR account_id = ?1
         ORDER BY created_at, id"
    );
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map([account], key_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One key, within `account` when given.
pub fn get_key(c: &Connection, account: Option<&str>, id: &str) -> Result<Option<KeyRow>> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)"
    );
    Ok(c.prepare_cached(&sql)?
        .query_row(params![id, account], key_row)
        .optional()?)
}

/// Revokes a key (within `account` when given); revoking twice keeps the first time.
pub fn revoke_key(
    tx: &Transaction<'_>,
    account: Option<&str>,
    id: &str,
    now: Millis,
) -> Result<Revoked> {
    tx.execute(
        "UPDATE api_keys SET revoked_at = ?3
         WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2) AND revoked_at IS NULL",
        params![id, account, now],
    )?;
    Ok(match get_key(tx, account, id)? {
        Some(k) => Revoked::Done(k),
        None => Revoked::NotFound,
    })
}

/// Records a use of the key unless one was recorded in the last `min_gap` ms.
pub fn touch_key(tx: &Transaction<'_>, id: &str, now: Millis, min_gap: Millis) -> Result<bool> {
    let n = tx.execute(
        "UPDATE api_keys SET last_used_at = ?2
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
        params![id, now, min_gap],
    )?;
    Ok(n > 0)
}

/// Whether a key with the `admin` scope that is not revoked exists.
pub fn has_admin_key(c: &Connection) -> Result<bool> {
    Ok(c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM api_keys
         WHERE revoked_at IS NULL AND (',' || scopes || ',') LIKE '%,admin,%')",
    )?
    .query_row([], |r| r.get(0))?)
}

/// Creates an account; returns its id.
pub fn create_account(tx: &Transaction<'_>, name: Option<&str>, now: Millis) -> Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    tx.execute(
        "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![id, name, now],
    )?;
    Ok(id)
}

/// Every account, oldest first, with its count of keys not revoked.
pub fn list_accounts(c: &Connection) -> Result<Vec<AccountRow>> {
    let mut st = c.prepare_cached(
        "SELECT a.id, a.name, a.created_at,
                (SELECT count(*) FROM api_keys k WHERE k.account_id = a.id AND k.revoked_at IS NULL)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("memory db");
        super::super::schema::migrate(&mut c).expect("migrates");
        c
    }

    #[test]
    fn revoked_keys_lose_their_account_and_touch_is_throttled() -> Result<()> {
        let mut c = db();
        let tx = c.transaction()?;
        let acc = ensure_key(&tx, "h1", None, "boot", ACCOUNT_SCOPES, 10)?;
        assert_eq!(
            ensure_key(&tx, "h1", None, "boot", ACCOUNT_SCOPES, 11)?,
            acc
        );
        let id = key_by_hash(&tx, "h1")?.expect("stored").id;
        assert!(touch_key(&tx, &id, 100, 60_000)?);
        assert!(!touch_key(&tx, &id, 100 + 59_999, 60_000)?);
        assert!(touch_key(&tx, &id, 100 + 60_000, 60_000)?);
        assert_eq!(revoke_key(&tx, Some("other"), &id, 5)?, Revoked::NotFound);
        assert!(
            matches!(revoke_key(&tx, Some(&acc), &id, 5)?, Revoked::Done(k) if k.revoked_at == Some(5))
        );
        // A second revoke keeps the first time; ensuring the key again does not revive it.
        assert!(
            matches!(revoke_key(&tx, None, &id, 9)?, Revoked::Done(k) if k.revoked_at == Some(5))
        );
        ensure_key(&tx, "h1", None, "boot", ACCOUNT_SCOPES, 12)?;
        assert_eq!(account_for_key(&tx, "h1")?, None);
        assert!(!has_admin_key(&tx)?);
        ensure_key(&tx, "h2", Some(&acc), "admin", "admin", 13)?;
        assert!(has_admin_key(&tx)?);
        assert_eq!(list_keys(&tx, Some(&acc))?.len(), 2);
        assert_eq!(list_accounts(&tx)?[0].active_keys, 1);
        Ok(())
    }
}
