//! SQL for each account's opt-out settings, the auto-replies sent and messages' overrides
//! of the suppression list.

use super::{PgTx, get};
use crate::domain::auto_reply::OptOutSettings;
use crate::store::tx::{AutoReplyClaim, OptOutRows};
use crate::store::{Millis, Result, SuppressionOverride};

/// Step 6: opt-out settings, auto-replies sent, messages' overrides (SQLite's version 13,
/// `store::sqlite::opt_out`).
pub const STEP_OPT_OUT_REPLIES: &str = r#"
CREATE TABLE opt_out_settings (
    account_id      TEXT PRIMARY KEY,
    opt_out_reply   TEXT,
    opt_in_reply    TEXT,
    help_reply      TEXT,
    allow_override  BOOLEAN NOT NULL DEFAULT FALSE,
    help_keywords   TEXT NOT NULL DEFAULT '[]',
    updated_at      BIGINT NOT NULL
);
CREATE TABLE auto_replies (
    account_id  TEXT NOT NULL,
    number      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    day         BIGINT NOT NULL,
    message_id  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, number, kind, day)
);
ALTER TABLE messages ADD COLUMN suppression_override TEXT;
ALTER TABLE messages ADD COLUMN overrode_suppression BOOLEAN NOT NULL DEFAULT FALSE;
"#;

impl OptOutRows for PgTx<'_> {
    fn opt_out_settings(&mut self, account: &str) -> Result<Option<OptOutSettings>> {
        let Some(r) = self.c.query_opt(
            "SELECT opt_out_reply, opt_in_reply, help_reply, allow_override, help_keywords
             FROM opt_out_settings WHERE account_id = $1",
            &[&account],
        )?
        else {
            return Ok(None);
        };
        let keywords: String = get(&r, 4)?;
        Ok(Some(OptOutSettings {
            opt_out_reply: get(&r, 0)?,
            opt_in_reply: get(&r, 1)?,
            help_reply: get(&r, 2)?,
            allow_override: get(&r, 3)?,
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
        self.c.execute(
            "INSERT INTO opt_out_settings (account_id, opt_out_reply, opt_in_reply,
                 help_reply, allow_override, help_keywords, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (account_id) DO UPDATE SET
                 opt_out_reply = excluded.opt_out_reply,
                 opt_in_reply = excluded.opt_in_reply,
                 help_reply = excluded.help_reply,
                 allow_override = excluded.allow_override,
                 help_keywords = excluded.help_keywords,
                 updated_at = excluded.updated_at",
            &[
                &account,
                &s.opt_out_reply,
                &s.opt_in_reply,
                &s.help_reply,
                &s.allow_override,
                &keywords,
                &now,
            ],
        )?;
        Ok(())
    }

    fn claim_auto_reply(&mut self, c: &AutoReplyClaim<'_>) -> Result<bool> {
        self.c.execute(
            "DELETE FROM auto_replies WHERE account_id = $1 AND number = $2 AND day < $3",
            &[&c.account, &c.number, &c.day],
        )?;
        let n = self.c.execute(
            "INSERT INTO auto_replies (account_id, number, kind, day, message_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &c.account,
                &c.number,
                &c.kind,
                &c.day,
                &c.message_id,
                &c.now,
            ],
        )?;
        Ok(n > 0)
    }

    fn set_suppression_override(
        &mut self,
        mseq: i64,
        kind: SuppressionOverride,
        overrode: bool,
    ) -> Result<()> {
        self.c.execute(
            "UPDATE messages SET suppression_override = $2, overrode_suppression = $3
             WHERE mseq = $1",
            &[&mseq, &kind.as_str(), &overrode],
        )?;
        Ok(())
    }
}
