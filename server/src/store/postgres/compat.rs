//! SQL for the SMS Gateway for Android compatible API (step 3): its users, each account's
//! settings document, the tokens it issued, the relay's secrets; and the message and inbox
//! columns of end-to-end encrypted and data SMS.

use ::postgres::Row;

use super::messages::{inbox_row, load_recipients, message_row};
use super::{PgTx, big, get, get_opt_i32, get_rstatus, get_u32};
use crate::store::tx::{CompatRows, history_seq};
use crate::store::{
    AccountHistoryRow, CompatUser, HistoryRow, InboxItem, InboxQuery, MessageQuery, MessageView,
    Millis, Result, TokenRow, Webhook,
};

/// The conditions of [`CompatRows::query_messages`].
macro_rules! message_where {
    () => {
        "account_id = $1 AND ($2::bigint IS NULL OR created_at >= $2::bigint)
         AND ($3::bigint IS NULL OR created_at < $3::bigint)
         AND ($4::text[] IS NULL OR state = ANY($4::text[]))
         AND ($5::text IS NULL OR phone_id = $5::text
              OR EXISTS (SELECT 1 FROM recipients r
                         WHERE r.mseq = messages.mseq AND r.phone_id = $5::text))"
    };
}

/// The conditions of [`CompatRows::query_inbox`].
macro_rules! inbox_where {
    () => {
        "account_id = $1 AND ($2::bigint IS NULL OR received_at >= $2::bigint)
         AND ($3::bigint IS NULL OR received_at < $3::bigint)
         AND ($4::text IS NULL OR phone_id = $4::text)
         AND ($5::bool IS NULL OR (data_port IS NOT NULL) = $5::bool)"
    };
}

/// Step 3, the same tables and columns as SQLite's version 10.
pub const STEP_3: &str = r#"
ALTER TABLE messages ADD COLUMN encrypted BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN data_port BIGINT;
ALTER TABLE inbox ADD COLUMN encrypted BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE inbox ADD COLUMN data_port BIGINT;
CREATE TABLE compat_users (
    login         TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX compat_users_account ON compat_users(account_id);
CREATE TABLE compat_settings (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE compat_tokens (
    jti        TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    kind       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE TABLE relay_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

fn user_row(r: &Row) -> Result<CompatUser> {
    Ok(CompatUser {
        login: get(r, 0)?,
        account_id: get(r, 1)?,
        password_hash: get(r, 2)?,
        created_at: get(r, 3)?,
    })
}

impl CompatRows for PgTx<'_> {
    fn insert_compat_user(&mut self, u: &CompatUser) -> Result<bool> {
        let n = self.c.execute(
            "INSERT INTO compat_users (login, account_id, password_hash, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (login) DO NOTHING",
            &[&u.login, &u.account_id, &u.password_hash, &u.created_at],
        )?;
        Ok(n > 0)
    }

    fn compat_user(&mut self, login: &str) -> Result<Option<CompatUser>> {
        self.c
            .query_opt(
                "SELECT login, account_id, password_hash, created_at FROM compat_users
                 WHERE login = $1",
                &[&login],
            )?
            .as_ref()
            .map(user_row)
            .transpose()
    }

    fn list_compat_users(&mut self, account: &str) -> Result<Vec<CompatUser>> {
        self.c
            .query(
                "SELECT login, account_id, password_hash, created_at FROM compat_users
                 WHERE account_id = $1 ORDER BY login COLLATE \"C\"",
                &[&account],
            )?
            .iter()
            .map(user_row)
            .collect()
    }

    fn delete_compat_user(&mut self, account: &str, login: &str) -> Result<bool> {
        let n = self.c.execute(
            "DELETE FROM compat_users WHERE account_id = $1 AND login = $2",
            &[&account, &login],
        )?;
        Ok(n > 0)
    }

    fn compat_settings(&mut self, account: &str) -> Result<Option<String>> {
        self.c
            .query_opt(
                "SELECT body FROM compat_settings WHERE account_id = $1",
                &[&account],
            )?
            .map(|r| get(&r, 0))
            .transpose()
    }

    fn put_compat_settings(&mut self, account: &str, body: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "INSERT INTO compat_settings (account_id, body, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (account_id) DO UPDATE SET body = excluded.body,
                 updated_at = excluded.updated_at",
            &[&account, &body, &now],
        )?;
        Ok(())
    }

    fn insert_token(&mut self, t: &TokenRow) -> Result<()> {
        self.c.execute(
            "INSERT INTO compat_tokens
                 (jti, account_id, kind, scopes, expires_at, revoked_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &t.jti,
                &t.account_id,
                &t.kind,
                &t.scopes,
                &t.expires_at,
                &t.revoked_at,
                &t.created_at,
            ],
        )?;
        Ok(())
    }

    fn token(&mut self, jti: &str) -> Result<Option<TokenRow>> {
        self.c
            .query_opt(
                "SELECT jti, account_id, kind, scopes, expires_at, revoked_at, created_at
                 FROM compat_tokens WHERE jti = $1",
                &[&jti],
            )?
            .map(|r| {
                Ok(TokenRow {
                    jti: get(&r, 0)?,
                    account_id: get(&r, 1)?,
                    kind: get(&r, 2)?,
                    scopes: get(&r, 3)?,
                    expires_at: get(&r, 4)?,
                    revoked_at: get(&r, 5)?,
                    created_at: get(&r, 6)?,
                })
            })
            .transpose()
    }

    fn revoke_token(&mut self, account: &str, jti: &str, now: Millis) -> Result<bool> {
        let n = self.c.execute(
            "UPDATE compat_tokens SET revoked_at = coalesce(revoked_at, $3)
             WHERE account_id = $1 AND jti = $2",
            &[&account, &jti, &now],
        )?;
        Ok(n > 0)
    }

    fn relay_secret(&mut self, name: &str, candidate: &str) -> Result<String> {
        self.c.execute(
            "INSERT INTO relay_secrets (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING",
            &[&name, &candidate],
        )?;
        get(
            &self
                .c
                .query_one("SELECT value FROM relay_secrets WHERE name = $1", &[&name])?,
            0,
        )
    }

    fn webhook_account(&mut self, id: &str) -> Result<Option<String>> {
        self.c
            .query_opt("SELECT account_id FROM webhooks WHERE id = $1", &[&id])?
            .map(|r| get(&r, 0))
            .transpose()
    }

    fn update_webhook(&mut self, account: &str, h: &Webhook) -> Result<()> {
        self.c.execute(
            "UPDATE webhooks SET url = $3, events = $4, secret = $5
             WHERE account_id = $1 AND id = $2",
            &[&account, &h.id, &h.url, &h.events.join(","), &h.secret],
        )?;
        Ok(())
    }

    fn set_smsgate_webhook_secret(&mut self, account: &str, secret: &str) -> Result<()> {
        self.c.execute(
            "UPDATE webhooks SET secret = $2
             WHERE account_id = $1 AND events LIKE '%:%'",
            &[&account, &secret],
        )?;
        Ok(())
    }

    fn query_messages(
        &mut self,
        account: &str,
        q: &MessageQuery,
    ) -> Result<(Vec<MessageView>, u64)> {
        let states: Option<Vec<&str>> = (!q.states.is_empty()).then(|| q.states.clone());
        let (limit, offset) = (big(q.limit), big(q.offset));
        let params: [&(dyn ::postgres::types::ToSql + Sync); 7] =
            [&account, &q.from, &q.to, &states, &q.phone, &limit, &offset];
        let rows = if q.newest_first {
            self.c.query(
                concat!(
                    "SELECT mseq, id, state, priority, valid_until, schedule_at, phone_id, sim,
                         delivery_report, created_at, updated_at, encrypted, data_port, text,
                         suppression_override, overrode_suppression
                     FROM messages WHERE ",
                    message_where!(),
                    " ORDER BY mseq DESC LIMIT $6 OFFSET $7"
                ),
                &params,
            )?
        } else {
            self.c.query(
                concat!(
                    "SELECT mseq, id, state, priority, valid_until, schedule_at, phone_id, sim,
                         delivery_report, created_at, updated_at, encrypted, data_port, text,
                         suppression_override, overrode_suppression
                     FROM messages WHERE ",
                    message_where!(),
                    " ORDER BY mseq ASC LIMIT $6 OFFSET $7"
                ),
                &params,
            )?
        };
        let mut views = rows.iter().map(message_row).collect::<Result<Vec<_>>>()?;
        load_recipients(self, &mut views)?;
        let total: i64 = get(
            &self.c.query_one(
                concat!("SELECT count(*) FROM messages WHERE ", message_where!()),
                &params[..5],
            )?,
            0,
        )?;
        Ok((views, u64::try_from(total).unwrap_or(0)))
    }

    fn account_history(
        &mut self,
        account: &str,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<AccountHistoryRow>> {
        self.c
            .query(
                "SELECT h.mseq, m.id, h.idx, h.n, h.at, h.state, h.phone_id, h.sim, h.parts_sent,
                     h.parts_delivered, h.error, h.code
                 FROM messages m JOIN recipient_history h ON h.mseq = m.mseq
                 WHERE m.account_id = $1 AND m.updated_at >= $2 AND m.created_at <= $3
                   AND h.at BETWEEN $2 AND $3
                 ORDER BY h.at DESC, h.mseq DESC, h.idx DESC, h.n DESC LIMIT $4",
                &[&account, &from, &to, &big(limit)],
            )?
            .iter()
            .map(|r| {
                let (mseq, idx, n): (i64, u32, i64) = (get(r, 0)?, get_u32(r, 2)?, get(r, 3)?);
                Ok(AccountHistoryRow {
                    seq: history_seq(mseq, idx, n),
                    message_id: get(r, 1)?,
                    change: HistoryRow {
                        idx,
                        at: get(r, 4)?,
                        state: get_rstatus(r, 5)?,
                        phone: get(r, 6)?,
                        sim: get_opt_i32(r, 7)?,
                        parts_sent: get_u32(r, 8)?,
                        parts_delivered: get_u32(r, 9)?,
                        error: get(r, 10)?,
                        code: get_opt_i32(r, 11)?,
                    },
                })
            })
            .collect()
    }

    fn query_inbox(&mut self, account: &str, q: &InboxQuery) -> Result<(Vec<InboxItem>, u64)> {
        let (limit, offset) = (big(q.limit), big(q.offset));
        let params: [&(dyn ::postgres::types::ToSql + Sync); 7] =
            [&account, &q.from, &q.to, &q.phone, &q.data, &limit, &offset];
        let rows = self.c.query(
            concat!(
                "SELECT rowid_, sms_id, phone_id, sim, from_number, text, sent_at, received_at,
                     stored_at, encrypted, data_port
                 FROM inbox WHERE ",
                inbox_where!(),
                " ORDER BY rowid_ DESC LIMIT $6 OFFSET $7"
            ),
            &params,
        )?;
        let items = rows.iter().map(inbox_row).collect::<Result<Vec<_>>>()?;
        let total: i64 = get(
            &self.c.query_one(
                concat!("SELECT count(*) FROM inbox WHERE ", inbox_where!()),
                &params[..5],
            )?,
            0,
        )?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }
}
