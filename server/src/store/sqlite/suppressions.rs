//! SQL for each account's suppression list (schema version 12).

use rusqlite::params;

use super::SqliteTx;
use crate::store::tx::SuppressionRows;
use crate::store::{Result, Suppression};

/// Version 12: the suppression list. One row per (account, number); `keyword` is what added
/// it (`manual` for the API), `phone_id` and `sim` where the keyword came in.
///
/// Self-contained: it only adds objects no other step names, so it can be renumbered when
/// merged with other version-12 steps.
pub const V12_UPGRADE: &str = r#"
CREATE TABLE suppressions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL,
    number      TEXT NOT NULL,
    keyword     TEXT NOT NULL,
    phone_id    TEXT,
    sim         INTEGER,
    created_at  INTEGER NOT NULL,
    UNIQUE (account_id, number)
);
"#;

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Suppression> {
    Ok(Suppression {
        cursor: r.get(0)?,
        number: r.get(1)?,
        keyword: r.get(2)?,
        phone: r.get(3)?,
        sim: r.get(4)?,
        created_at: r.get(5)?,
    })
}

impl SuppressionRows for SqliteTx<'_> {
    fn insert_suppression(&mut self, account: &str, s: &Suppression) -> Result<bool> {
        let n = self
            .c
            .prepare_cached(
                "INSERT OR IGNORE INTO suppressions
                     (account_id, number, keyword, phone_id, sim, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                account,
                s.number,
                s.keyword,
                s.phone,
                s.sim,
                s.created_at
            ])?;
        Ok(n > 0)
    }

    fn delete_suppression(&mut self, account: &str, number: &str) -> Result<bool> {
        let n = self
            .c
            .prepare_cached("DELETE FROM suppressions WHERE account_id = ?1 AND number = ?2")?
            .execute(params![account, number])?;
        Ok(n > 0)
    }

    fn suppressed_among(&mut self, account: &str, numbers: &[&str]) -> Result<Vec<String>> {
        let mut stmt = self
            .c
            .prepare_cached("SELECT 1 FROM suppressions WHERE account_id = ?1 AND number = ?2")?;
        let mut out = Vec::new();
        for n in numbers {
            if stmt.exists(params![account, n])? {
                out.push((*n).to_string());
            }
        }
        Ok(out)
    }

    fn unrouted_to(&mut self, account: &str, number: &str) -> Result<Vec<(i64, u32)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT r.mseq, r.idx
                 FROM recipients r INDEXED BY recipients_unrouted CROSS JOIN messages m USING (mseq)
                 WHERE r.phone_id IS NULL AND r.state = 'pending'
                   AND m.account_id = ?1 AND r.to_number = ?2 AND m.suppression_override IS NULL
                 ORDER BY r.mseq, r.idx",
            )?
            .query_map(params![account, number], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn list_suppressions(
        &mut self,
        account: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Suppression>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT id, number, keyword, phone_id, sim, created_at FROM suppressions
                 WHERE account_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )?
            .query_map(params![account, after.unwrap_or(0), limit], row)?
            .collect::<rusqlite::Result<_>>()?)
    }
}
