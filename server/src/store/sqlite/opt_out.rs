//! SQL for each account's opt-out settings, the auto-replies sent and messages' overrides
//! of the suppression list (schema version 13).

use rusqlite::{OptionalExtension, params};

use super::SqliteTx;
use crate::domain::auto_reply::OptOutSettings;
use crate::store::tx::{AutoReplyClaim, OptOutRows};
use crate::store::{Millis, Result, SuppressionOverride};

/// Version 13: per-account opt-out settings (`help_keywords` a JSON array), one row per
/// auto-reply sent (at most one per account, number, kind and UTC day), and on each message
/// its override of the suppression list.
///
/// Self-contained: it only adds objects and columns no other step names, so it can be
/// renumbered when merged with other version-13 steps.
pub const V13_OPT_OUT_REPLIES: &str = r#"
CREATE TABLE opt_out_settings (
    account_id      TEXT PRIMARY KEY,
    opt_out_reply   TEXT,
    opt_in_reply    TEXT,
    help_reply      TEXT,
    allow_override  INTEGER NOT NULL DEFAULT 0,
    help_keywords   TEXT NOT NULL DEFAULT '[]',
    updated_at      INTEGER NOT NULL
);
CREATE TABLE auto_replies (
    account_id  TEXT NOT NULL,
    number      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    day         INTEGER NOT NULL,
    message_id  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, number, kind, day)
);
ALTER TABLE messages ADD COLUMN suppression_override TEXT;
ALTER TABLE messages ADD COLUMN overrode_suppression INTEGER NOT NULL DEFAULT 0;
"#;

impl OptOutRows for SqliteTx<'_> {
    fn opt_out_settings(&mut self, account: &str) -> Result<Option<OptOutSettings>> {
        let row = self
            .c
            .prepare_cached(
                "SELECT opt_out_reply, opt_in_reply, help_reply, allow_override, help_keywords
                 FROM opt_out_settings WHERE account_id = ?1",
            )?
            .query_row(params![account], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .optional()?;
        let Some((opt_out_reply, opt_in_reply, help_reply, allow_override, keywords)) = row else {
            return Ok(None);
        };
        Ok(Some(OptOutSettings {
            opt_out_reply,
            opt_in_reply,
            help_reply,
            allow_override,
            help_keywords: serde_json::from_str(&keywords)?,
        }))
    }

    fn put_opt_out_settings(
        &mut self,
        account: &str,
        s: &OptOutSettings,
        now: Millis,
    ) -> Result<()> {
        let keywords = serde_json::to_string(&s.help_keywords)?;
        self.c
            .prepare_cached(
                "INSERT INTO opt_out_settings (account_id, opt_out_reply, opt_in_reply,
                     help_reply, allow_override, help_keywords, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (account_id) DO UPDATE SET
                     opt_out_reply = excluded.opt_out_reply,
                     opt_in_reply = excluded.opt_in_reply,
                     help_reply = excluded.help_reply,
                     allow_override = excluded.allow_override,
                     help_keywords = excluded.help_keywords,
                     updated_at = excluded.updated_at",
            )?
            .execute(params![
                account,
                s.opt_out_reply,
                s.opt_in_reply,
                s.help_reply,
                s.allow_override,
                keywords,
                now
            ])?;
        Ok(())
    }

    fn claim_auto_reply(&mut self, c: &AutoReplyClaim<'_>) -> Result<bool> {
        self.c
            .prepare_cached(
                "DELETE FROM auto_replies WHERE account_id = ?1 AND number = ?2 AND day < ?3",
            )?
            .execute(params![c.account, c.number, c.day])?;
        let n = self
            .c
            .prepare_cached(
                "INSERT OR IGNORE INTO auto_replies
                     (account_id, number, kind, day, message_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                c.account,
                c.number,
                c.kind,
                c.day,
                c.message_id,
                c.now
            ])?;
        Ok(n > 0)
    }

    fn set_suppression_override(
        &mut self,
        mseq: i64,
        kind: SuppressionOverride,
        overrode: bool,
    ) -> Result<()> {
        self.c
            .prepare_cached(
                "UPDATE messages SET suppression_override = ?2, overrode_suppression = ?3
                 WHERE mseq = ?1",
            )?
            .execute(params![mseq, kind.as_str(), overrode])?;
        Ok(())
    }
}
