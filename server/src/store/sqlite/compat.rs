//! SQL for the SMS Gateway for Android compatible API (schema version 10): its users, each
//! account's settings document, the tokens it issued, the relay's secrets; and the message
//! and inbox columns of end-to-end encrypted and data SMS.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteTx;
use super::messages::{INBOX_COLUMNS, MESSAGE_COLUMNS, inbox_row, load_recipients, message_row};
use crate::store::tx::{CompatRows, history_seq};
use crate::store::{
    AccountHistoryRow, CompatUser, HistoryRow, InboxItem, InboxQuery, MessageQuery, MessageView,
    Millis, Result, TokenRow, Webhook,
};

/// The conditions of [`CompatRows::query_messages`] (`?1` account, `?2`/`?3` created range,
/// `?4` JSON array of states or NULL, `?5` phone).
const MESSAGE_WHERE: &str = "account_id = ?1 AND (?2 IS NULL OR created_at >= ?2)
    AND (?3 IS NULL OR created_at < ?3)
    AND (?4 IS NULL OR state IN (SELECT value FROM json_each(?4)))
    AND (?5 IS NULL OR phone_id = ?5
         OR EXISTS (SELECT 1 FROM recipients r WHERE r.mseq = messages.mseq AND r.phone_id = ?5))";

/// The conditions of [`CompatRows::query_inbox`] (`?1` account, `?2`/`?3` received range,
/// `?4` phone, `?5` data SMS or not).
const INBOX_WHERE: &str = "account_id = ?1 AND (?2 IS NULL OR received_at >= ?2)
    AND (?3 IS NULL OR received_at < ?3) AND (?4 IS NULL OR phone_id = ?4)
    AND (?5 IS NULL OR (data_port IS NOT NULL) = ?5)";

/// Version 10. Messages and incoming SMS say whether they are end-to-end encrypted and, for a
/// data SMS, its port.
pub const V10_UPGRADE: &str = r#"
ALTER TABLE messages ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN data_port INTEGER;
ALTER TABLE inbox ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN data_port INTEGER;
CREATE TABLE compat_users (
    login         TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX compat_users_account ON compat_users(account_id);
CREATE TABLE compat_settings (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    body       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE compat_tokens (
    jti        TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kind       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE TABLE relay_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

fn user_row(r: &Row<'_>) -> rusqlite::Result<CompatUser> {
    Ok(CompatUser {
        login: r.get(0)?,
        account_id: r.get(1)?,
        password_hash: r.get(2)?,
        created_at: r.get(3)?,
    })
}

impl CompatRows for SqliteTx<'_> {
    fn insert_compat_user(&mut self, u: &CompatUser) -> Result<bool> {
        let n = self
            .c
            .prepare_cached(
                "INSERT OR IGNORE INTO compat_users (login, account_id, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                u.login,
                u.account_id,
                u.password_hash,
                u.created_at
            ])?;
        Ok(n > 0)
    }

    fn compat_user(&mut self, login: &str) -> Result<Option<CompatUser>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT login, account_id, password_hash, created_at FROM compat_users
                 WHERE login = ?1",
            )?
            .query_row([login], user_row)
            .optional()?)
    }

    fn list_compat_users(&mut self, account: &str) -> Result<Vec<CompatUser>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT login, account_id, password_hash, created_at FROM compat_users
                 WHERE account_id = ?1 ORDER BY login",
            )?
            .query_map([account], user_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn delete_compat_user(&mut self, account: &str, login: &str) -> Result<bool> {
        let n = self
            .c
            .prepare_cached("DELETE FROM compat_users WHERE account_id = ?1 AND login = ?2")?
            .execute([account, login])?;
        Ok(n > 0)
    }

    fn compat_settings(&mut self, account: &str) -> Result<Option<String>> {
        Ok(self
            .c
            .prepare_cached("SELECT body FROM compat_settings WHERE account_id = ?1")?
            .query_row([account], |r| r.get(0))
            .optional()?)
    }

    fn put_compat_settings(&mut self, account: &str, body: &str, now: Millis) -> Result<()> {
        self.c
            .prepare_cached(
                "INSERT INTO compat_settings (account_id, body, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account_id) DO UPDATE SET body = excluded.body,
                     updated_at = excluded.updated_at",
            )?
            .execute(params![account, body, now])?;
        Ok(())
    }

    fn insert_token(&mut self, t: &TokenRow) -> Result<()> {
        self.c
            .prepare_cached(
                "INSERT INTO compat_tokens
                     (jti, account_id, kind, scopes, expires_at, revoked_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                t.jti,
                t.account_id,
                t.kind,
                t.scopes,
                t.expires_at,
                t.revoked_at,
                t.created_at
            ])?;
        Ok(())
    }

    fn token(&mut self, jti: &str) -> Result<Option<TokenRow>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT jti, account_id, kind, scopes, expires_at, revoked_at, created_at
                 FROM compat_tokens WHERE jti = ?1",
            )?
            .query_row([jti], |r| {
                Ok(TokenRow {
                    jti: r.get(0)?,
                    account_id: r.get(1)?,
                    kind: r.get(2)?,
                    scopes: r.get(3)?,
                    expires_at: r.get(4)?,
                    revoked_at: r.get(5)?,
                    created_at: r.get(6)?,
                })
            })
            .optional()?)
    }

    fn revoke_token(&mut self, account: &str, jti: &str, now: Millis) -> Result<bool> {
        let n = self
            .c
            .prepare_cached(
                "UPDATE compat_tokens SET revoked_at = coalesce(revoked_at, ?3)
                 WHERE account_id = ?1 AND jti = ?2",
            )?
            .execute(params![account, jti, now])?;
        Ok(n > 0)
    }

    fn relay_secret(&mut self, name: &str, candidate: &str) -> Result<String> {
        self.c
            .prepare_cached("INSERT OR IGNORE INTO relay_secrets (name, value) VALUES (?1, ?2)")?
            .execute([name, candidate])?;
        Ok(self
            .c
            .prepare_cached("SELECT value FROM relay_secrets WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?)
    }

    fn webhook_account(&mut self, id: &str) -> Result<Option<String>> {
        Ok(self
            .c
            .prepare_cached("SELECT account_id FROM webhooks WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    fn update_webhook(&mut self, account: &str, h: &Webhook) -> Result<()> {
        self.c
            .prepare_cached(
                "UPDATE webhooks SET url = ?3, events = ?4, secret = ?5
                 WHERE account_id = ?1 AND id = ?2",
            )?
            .execute(params![account, h.id, h.url, h.events.join(","), h.secret])?;
        Ok(())
    }

    fn set_smsgate_webhook_secret(&mut self, account: &str, secret: &str) -> Result<()> {
        self.c
            .prepare_cached(
                "UPDATE webhooks SET secret = ?2
                 WHERE account_id = ?1 AND events LIKE '%:%'",
            )?
            .execute([account, secret])?;
        Ok(())
    }

    fn query_messages(
        &mut self,
        account: &str,
        q: &MessageQuery,
    ) -> Result<(Vec<MessageView>, u64)> {
        let states = (!q.states.is_empty()).then(|| serde_json::json!(q.states).to_string());
        let order = if q.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE {MESSAGE_WHERE}
             ORDER BY mseq {order} LIMIT ?6 OFFSET ?7"
        );
        let mut views: Vec<MessageView> = self
            .c
            .prepare_cached(&sql)?
            .query_map(
                params![account, q.from, q.to, states, q.phone, q.limit, q.offset],
                message_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        for v in &mut views {
            load_recipients(self.c, v)?;
        }
        let total: i64 = self
            .c
            .prepare_cached(&format!(
                "SELECT count(*) FROM messages WHERE {MESSAGE_WHERE}"
            ))?
            .query_row(params![account, q.from, q.to, states, q.phone], |r| {
                r.get(0)
            })?;
        Ok((views, u64::try_from(total).unwrap_or(0)))
    }

    fn account_history(
        &mut self,
        account: &str,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<AccountHistoryRow>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT h.mseq, m.id, h.idx, h.n, h.at, h.state, h.phone_id, h.sim, h.parts_sent,
                     h.parts_delivered, h.error, h.code
                 FROM messages m JOIN recipient_history h ON h.mseq = m.mseq
                 WHERE m.account_id = ?1 AND m.updated_at >= ?2 AND m.created_at <= ?3
                   AND h.at BETWEEN ?2 AND ?3
                 ORDER BY h.at DESC, h.mseq DESC, h.idx DESC, h.n DESC LIMIT ?4",
            )?
            .query_map(params![account, from, to, limit], |r| {
                let (mseq, idx, n): (i64, u32, i64) = (r.get(0)?, r.get(2)?, r.get(3)?);
                Ok(AccountHistoryRow {
                    seq: history_seq(mseq, idx, n),
                    message_id: r.get(1)?,
                    change: HistoryRow {
                        idx,
                        at: r.get(4)?,
                        state: r.get(5)?,
                        phone: r.get(6)?,
                        sim: r.get(7)?,
                        parts_sent: r.get(8)?,
                        parts_delivered: r.get(9)?,
                        error: r.get(10)?,
                        code: r.get(11)?,
                    },
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn query_inbox(&mut self, account: &str, q: &InboxQuery) -> Result<(Vec<InboxItem>, u64)> {
        let sql = format!(
            "SELECT {INBOX_COLUMNS}
             FROM inbox WHERE {INBOX_WHERE} ORDER BY rowid_ DESC LIMIT ?6 OFFSET ?7"
        );
        let items = self
            .c
            .prepare_cached(&sql)?
            .query_map(
                params![account, q.from, q.to, q.phone, q.data, q.limit, q.offset],
                inbox_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        let total: i64 = self
            .c
            .prepare_cached(&format!("SELECT count(*) FROM inbox WHERE {INBOX_WHERE}"))?
            .query_row(params![account, q.from, q.to, q.phone, q.data], |r| {
                r.get(0)
            })?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }
}
