//! SQL for each account's limits, part counters, numbers sent to and watched prefixes (the
//! rules are `crate::domain::spend`, applied by `crate::store::ops::spend`).

use rusqlite::{OptionalExtension, params};

use super::SqliteTx;
use crate::store::tx::{LimitRows, PrefixRow};
use crate::store::{Millis, Result};

/// The limits' schema step (SQLite version 13). Self-contained: it only adds objects no other
/// step names, so it can be renumbered when merged with other steps.
///
/// * `account_limits`: the operator's limits, one JSON document per account.
/// * `account_usage`: parts counted per account and counter (`day:2026-12-04`,
///   `month:2026-12`, `day:2026-12-04:44`), updated in the create transaction; `reached_at`
///   when `account.limit_reached` was queued for it.
/// * `account_numbers`: every number the account sent to (when pumping protection is on),
///   with its prefix and first use: what "new number" means.
/// * `account_prefixes`: prefixes a burst paused (and their later state).
/// * `recipients_held`: the few `held` recipients, found without a scan.
pub const LIMITS_UPGRADE: &str = r#"
CREATE TABLE account_limits (
    account_id  TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE account_usage (
    account_id  TEXT NOT NULL,
    counter     TEXT NOT NULL,
    parts       INTEGER NOT NULL,
    reached_at  INTEGER,
    PRIMARY KEY (account_id, counter)
);
CREATE TABLE account_numbers (
    account_id  TEXT NOT NULL,
    number      TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    first_at    INTEGER NOT NULL,
    PRIMARY KEY (account_id, number)
);
CREATE INDEX account_numbers_prefix ON account_numbers(account_id, prefix, first_at);
CREATE TABLE account_prefixes (
    account_id  TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    state       TEXT NOT NULL,
    new_numbers INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, prefix)
);
CREATE INDEX recipients_held ON recipients(mseq) WHERE state = 'held';
"#;

impl LimitRows for SqliteTx<'_> {
    fn account_limits(&mut self, account: &str) -> Result<Option<String>> {
        Ok(self
            .c
            .prepare_cached("SELECT body FROM account_limits WHERE account_id = ?1")?
            .query_row(params![account], |r| r.get(0))
            .optional()?)
    }

    fn put_account_limits(&mut self, account: &str, body: &str, now: Millis) -> Result<()> {
        self.c
            .prepare_cached(
                "INSERT INTO account_limits (account_id, body, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account_id) DO UPDATE SET body = ?2, updated_at = ?3",
            )?
            .execute(params![account, body, now])?;
        Ok(())
    }

    fn usage_of(&mut self, account: &str, keys: &[String]) -> Result<Vec<u64>> {
        let mut st = self.c.prepare_cached(
            "SELECT parts FROM account_usage WHERE account_id = ?1 AND counter = ?2",
        )?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let n: Option<i64> = st.query_row(params![account, k], |r| r.get(0)).optional()?;
            out.push(u64::try_from(n.unwrap_or(0)).unwrap_or(0));
        }
        Ok(out)
    }

    fn add_account_usage(&mut self, account: &str, adds: &[(String, u64)]) -> Result<()> {
        let mut st = self.c.prepare_cached(
            "INSERT INTO account_usage (account_id, counter, parts) VALUES (?1, ?2, ?3)
             ON CONFLICT (account_id, counter) DO UPDATE SET parts = parts + ?3",
        )?;
        for (k, n) in adds {
            st.execute(params![account, k, i64::try_from(*n).unwrap_or(i64::MAX)])?;
        }
        Ok(())
    }

    fn mark_limit_reached(&mut self, account: &str, key: &str, now: Millis) -> Result<bool> {
        self.c
            .prepare_cached(
                "INSERT INTO account_usage (account_id, counter, parts) VALUES (?1, ?2, 0)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![account, key])?;
        let n = self
            .c
            .prepare_cached(
                "UPDATE account_usage SET reached_at = ?3
                 WHERE account_id = ?1 AND counter = ?2 AND reached_at IS NULL",
            )?
            .execute(params![account, key, now])?;
        Ok(n > 0)
    }

    fn prune_account_usage(&mut self, before_day: &str, before_month: &str) -> Result<()> {
        self.c
            .prepare_cached(
                "DELETE FROM account_usage WHERE (counter LIKE 'day:%' AND counter < ?1)
                    OR (counter LIKE 'month:%' AND counter < ?2)",
            )?
            .execute(params![
                format!("day:{before_day}"),
                format!("month:{before_month}")
            ])?;
        Ok(())
    }

    fn record_numbers(
        &mut self,
        account: &str,
        numbers: &[(&str, &str)],
        now: Millis,
    ) -> Result<Vec<bool>> {
        let mut st = self.c.prepare_cached(
            "INSERT OR IGNORE INTO account_numbers (account_id, number, prefix, first_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut out = Vec::with_capacity(numbers.len());
        for (n, p) in numbers {
            out.push(st.execute(params![account, n, p, now])? > 0);
        }
        Ok(out)
    }

    fn new_numbers_since(&mut self, account: &str, prefix: &str, since: Millis) -> Result<u64> {
        let n: i64 = self
            .c
            .prepare_cached(
                "SELECT count(*) FROM account_numbers
                 WHERE account_id = ?1 AND prefix = ?2 AND first_at > ?3",
            )?
            .query_row(params![account, prefix, since], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn prefix_rows(&mut self, account: &str) -> Result<Vec<PrefixRow>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT prefix, state, new_numbers, changed_at FROM account_prefixes
                 WHERE account_id = ?1 ORDER BY prefix",
            )?
            .query_map(params![account], |r| {
                Ok(PrefixRow {
                    prefix: r.get(0)?,
                    state: r.get(1)?,
                    new_numbers: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    changed_at: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn put_prefix(&mut self, account: &str, row: &PrefixRow) -> Result<()> {
        self.c
            .prepare_cached(
                "INSERT OR REPLACE INTO account_prefixes
                     (account_id, prefix, state, new_numbers, changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                account,
                row.prefix,
                row.state,
                i64::try_from(row.new_numbers).unwrap_or(i64::MAX),
                row.changed_at
            ])?;
        Ok(())
    }

    fn held_in_prefix(&mut self, account: &str, prefix: &str) -> Result<Vec<(i64, u32)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT r.mseq, r.idx
                 FROM recipients r INDEXED BY recipients_held CROSS JOIN messages m USING (mseq)
                 WHERE r.state = 'held' AND m.account_id = ?1
                   AND substr(r.to_number, 1, ?3) = ?2
                 ORDER BY r.mseq, r.idx",
            )?
            .query_map(
                params![account, format!("+{prefix}"), prefix.len() + 1],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn held_past_validity(
        &mut self,
        now: Millis,
        default_validity: Millis,
        limit: u32,
    ) -> Result<Vec<(i64, u32, String)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT r.mseq, r.idx, m.account_id
                 FROM recipients r INDEXED BY recipients_held CROSS JOIN messages m USING (mseq)
                 WHERE r.state = 'held'
                   AND coalesce(r.valid_until, r.created_at + ?2) < ?1
                 ORDER BY r.mseq, r.idx LIMIT ?3",
            )?
            .query_map(params![now, default_validity, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?)
    }
}
