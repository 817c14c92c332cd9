//! SQL for accounts and API keys.
//!
//! Keys are stored as SHA-256 hashes of the secret. `key_by_hash` runs on every request (one
//! indexed read on a pooled reader: one round trip), so a key revoked by any relay sharing
//! the database is refused on its next request.

use ::postgres::Row;

use super::{PgTx, get, get_u32};
use crate::store::tx::KeyRows;
use crate::store::{AccountRow, KeyAuth, KeyRow, Millis, NewKey, Result};

fn key_row(r: &Row) -> Result<KeyRow> {
    Ok(KeyRow {
        id: get(r, 0)?,
        account_id: get(r, 1)?,
        name: get(r, 2)?,
        prefix: get(r, 3)?,
        scopes: get(r, 4)?,
        created_at: get(r, 5)?,
        revoked_at: get(r, 6)?,
        last_used_at: get(r, 7)?,
    })
}

impl KeyRows for PgTx<'_> {
    fn key_by_hash(&mut self, key_hash: &str) -> Result<Option<KeyAuth>> {
        self.c
            .query_opt(
                "SELECT id, account_id, scopes, revoked_at IS NOT NULL, last_used_at
                 FROM api_keys WHERE key_hash = $1",
                &[&key_hash],
            )?
            .map(|r| {
                Ok(KeyAuth {
                    id: get(&r, 0)?,
                    account_id: get(&r, 1)?,
                    scopes: get(&r, 2)?,
                    revoked: get(&r, 3)?,
                    last_used_at: get(&r, 4)?,
                })
            })
            .transpose()
    }

    fn list_keys(&mut self, account: Option<&str>) -> Result<Vec<KeyRow>> {
        self.c
            .query(
                "SELECT id, account_id, name, prefix, scopes, created_at, revoked_at, last_used_at
                 FROM api_keys WHERE $1::text IS NULL OR account_id = $1::text
                 ORDER BY created_at, id COLLATE \"C\"",
                &[&account],
            )?
            .iter()
            .map(key_row)
            .collect()
    }

    fn get_key(&mut self, account: Option<&str>, id: &str) -> Result<Option<KeyRow>> {
        self.c
            .query_opt(
                "SELECT id, account_id, name, prefix, scopes, created_at, revoked_at, last_used_at
                 FROM api_keys WHERE id = $1 AND ($2::text IS NULL OR account_id = $2::text)",
                &[&id, &account],
            )?
            .as_ref()
            .map(key_row)
            .transpose()
    }

    fn has_admin_key(&mut self) -> Result<bool> {
        get(
            &self.c.query_one(
                "SELECT EXISTS (SELECT 1 FROM api_keys
                 WHERE revoked_at IS NULL AND (',' || scopes || ',') LIKE '%,admin,%')",
                &[],
            )?,
            0,
        )
    }

    fn list_accounts(&mut self) -> Result<Vec<AccountRow>> {
        self.c
            .query(
                "SELECT a.id, a.name, a.created_at,
                        (SELECT count(*) FROM api_keys k
                         WHERE k.account_id = a.id AND k.revoked_at IS NULL)
                 FROM accounts a ORDER BY a.created_at, a.id COLLATE \"C\"",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(AccountRow {
                    id: get(r, 0)?,
                    name: get(r, 1)?,
                    created_at: get(r, 2)?,
                    active_keys: get_u32(r, 3)?,
                })
            })
            .collect()
    }

    fn insert_account(&mut self, id: &str, name: Option<&str>, now: Millis) -> Result<()> {
        self.c.execute(
            "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)",
            &[&id, &name, &now],
        )?;
        Ok(())
    }

    fn ensure_account(&mut self, id: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "INSERT INTO accounts (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, &now],
        )?;
        Ok(())
    }

    fn insert_key(&mut self, key: &NewKey) -> Result<()> {
        self.c.execute(
            "INSERT INTO api_keys (id, account_id, name, prefix, key_hash, scopes, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &key.id,
                &key.account_id,
                &key.name,
                &key.prefix,
                &key.key_hash,
                &key.scopes,
                &key.created_at,
            ],
        )?;
        Ok(())
    }

    fn revoke_key(&mut self, account: Option<&str>, id: &str, now: Millis) -> Result<()> {
        let n = self.c.execute(
            "UPDATE api_keys SET revoked_at = $3
             WHERE id = $1 AND ($2::text IS NULL OR account_id = $2::text)
               AND revoked_at IS NULL",
            &[&id, &account, &now],
        )?;
        if n > 0 {
            // Delivered to every listener when this transaction commits (`store::key_cache`).
            self.c.query(
                "SELECT pg_notify($1, '')",
                &[&crate::store::key_cache::CHANNEL],
            )?;
        }
        Ok(())
    }

    fn touch_key(&mut self, id: &str, now: Millis, min_gap: Millis) -> Result<bool> {
        let n = self.c.execute(
            "UPDATE api_keys SET last_used_at = $2
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2::bigint - $3::bigint)",
            &[&id, &now, &min_gap],
        )?;
        Ok(n > 0)
    }
}
