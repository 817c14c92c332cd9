//! SQL for each account's limits, part counters, numbers sent to and watched prefixes (the
//! rules are `crate::domain::spend`, applied by `crate::store::ops::spend`). Writers are
//! serialised by the writers' advisory lock, so a counter read and updated in one create
//! transaction is exact, as on SQLite.

use super::{PgTx, get, get_u32, get_u64};
use crate::store::tx::{LimitRows, PrefixRow};
use crate::store::{Millis, Result};

/// The limits' step (SQLite's version 13, `store::sqlite::spend`): the same tables.
pub const LIMITS_STEP: &str = r#"
CREATE TABLE account_limits (
    account_id  TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE TABLE account_usage (
    account_id  TEXT NOT NULL,
    counter     TEXT NOT NULL,
    parts       BIGINT NOT NULL,
    reached_at  BIGINT,
    PRIMARY KEY (account_id, counter)
);
CREATE TABLE account_numbers (
    account_id  TEXT NOT NULL,
    number      TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    first_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, number)
);
CREATE INDEX account_numbers_prefix ON account_numbers(account_id, prefix, first_at);
CREATE TABLE account_prefixes (
    account_id  TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    state       TEXT NOT NULL,
    new_numbers BIGINT NOT NULL,
    changed_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, prefix)
);
CREATE INDEX recipients_held ON recipients(mseq) WHERE state = 'held';
"#;

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl LimitRows for PgTx<'_> {
    fn account_limits(&mut self, account: &str) -> Result<Option<String>> {
        self.c
            .query_opt(
                "SELECT body FROM account_limits WHERE account_id = $1",
                &[&account],
            )?
            .map(|r| get(&r, 0))
            .transpose()
    }

    fn put_account_limits(&mut self, account: &str, body: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "INSERT INTO account_limits (account_id, body, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (account_id) DO UPDATE SET body = $2, updated_at = $3",
            &[&account, &body, &now],
        )?;
        Ok(())
    }

    fn usage_of(&mut self, account: &str, keys: &[String]) -> Result<Vec<u64>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.c.query(
            "SELECT counter, parts FROM account_usage WHERE account_id = $1 AND counter = ANY($2)",
            &[&account, &keys],
        )?;
        let mut found = std::collections::HashMap::new();
        for r in &rows {
            found.insert(get::<String>(r, 0)?, get_u64(r, 1)?);
        }
        Ok(keys
            .iter()
            .map(|k| found.get(k).copied().unwrap_or(0))
            .collect())
    }

    fn add_account_usage(&mut self, account: &str, adds: &[(String, u64)]) -> Result<()> {
        if adds.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = adds.iter().map(|(k, _)| k.as_str()).collect();
        let parts: Vec<i64> = adds.iter().map(|(_, n)| to_i64(*n)).collect();
        self.c.execute(
            "INSERT INTO account_usage (account_id, counter, parts)
             SELECT $1, k, n FROM unnest($2::text[], $3::bigint[]) AS t(k, n)
             ON CONFLICT (account_id, counter)
             DO UPDATE SET parts = account_usage.parts + excluded.parts",
            &[&account, &keys, &parts],
        )?;
        Ok(())
    }

    fn mark_limit_reached(&mut self, account: &str, key: &str, now: Millis) -> Result<bool> {
        self.c.execute(
            "INSERT INTO account_usage (account_id, counter, parts) VALUES ($1, $2, 0)
             ON CONFLICT DO NOTHING",
            &[&account, &key],
        )?;
        let n = self.c.execute(
            "UPDATE account_usage SET reached_at = $3
             WHERE account_id = $1 AND counter = $2 AND reached_at IS NULL",
            &[&account, &key, &now],
        )?;
        Ok(n > 0)
    }

    fn prune_account_usage(&mut self, before_day: &str, before_month: &str) -> Result<()> {
        self.c.execute(
            "DELETE FROM account_usage WHERE (counter LIKE 'day:%' AND counter < $1)
                OR (counter LIKE 'month:%' AND counter < $2)",
            &[
                &format!("day:{before_day}"),
                &format!("month:{before_month}"),
            ],
        )?;
        Ok(())
    }

    fn record_numbers(
        &mut self,
        account: &str,
        numbers: &[(&str, &str)],
        now: Millis,
    ) -> Result<Vec<bool>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let ns: Vec<&str> = numbers.iter().map(|(n, _)| *n).collect();
        let ps: Vec<&str> = numbers.iter().map(|(_, p)| *p).collect();
        let rows = self.c.query(
            "INSERT INTO account_numbers (account_id, number, prefix, first_at)
             SELECT $1, n, p, $4 FROM unnest($2::text[], $3::text[]) AS t(n, p)
             ON CONFLICT DO NOTHING RETURNING number",
            &[&account, &ns, &ps, &now],
        )?;
        let mut new = std::collections::HashSet::new();
        for r in &rows {
            new.insert(get::<String>(r, 0)?);
        }
        Ok(ns.iter().map(|n| new.contains(*n)).collect())
    }

    fn new_numbers_since(&mut self, account: &str, prefix: &str, since: Millis) -> Result<u64> {
        let r = self.c.query_one(
            "SELECT count(*) FROM account_numbers
             WHERE account_id = $1 AND prefix = $2 AND first_at > $3",
            &[&account, &prefix, &since],
        )?;
        get_u64(&r, 0)
    }

    fn prefix_rows(&mut self, account: &str) -> Result<Vec<PrefixRow>> {
        let rows = self.c.query(
            "SELECT prefix, state, new_numbers, changed_at FROM account_prefixes
             WHERE account_id = $1 ORDER BY prefix",
            &[&account],
        )?;
        rows.iter()
            .map(|r| {
                Ok(PrefixRow {
                    prefix: get(r, 0)?,
                    state: get(r, 1)?,
                    new_numbers: get_u64(r, 2)?,
                    changed_at: get(r, 3)?,
                })
            })
            .collect()
    }

    fn put_prefix(&mut self, account: &str, row: &PrefixRow) -> Result<()> {
        self.c.execute(
            "INSERT INTO account_prefixes (account_id, prefix, state, new_numbers, changed_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id, prefix) DO UPDATE
             SET state = $3, new_numbers = $4, changed_at = $5",
            &[
                &account,
                &row.prefix,
                &row.state,
                &to_i64(row.new_numbers),
                &row.changed_at,
            ],
        )?;
        Ok(())
    }

    fn held_in_prefix(&mut self, account: &str, prefix: &str) -> Result<Vec<(i64, u32)>> {
        let rows = self.c.query(
            "SELECT r.mseq, r.idx FROM recipients r JOIN messages m USING (mseq)
             WHERE r.state = 'held' AND m.account_id = $1
               AND left(r.to_number, length($2)) = $2
             ORDER BY r.mseq, r.idx",
            &[&account, &format!("+{prefix}")],
        )?;
        rows.iter()
            .map(|r| Ok((get(r, 0)?, get_u32(r, 1)?)))
            .collect()
    }

    fn held_past_validity(
        &mut self,
        now: Millis,
        default_validity: Millis,
        limit: u32,
    ) -> Result<Vec<(i64, u32, String)>> {
        let rows = self.c.query(
            "SELECT r.mseq, r.idx, m.account_id FROM recipients r JOIN messages m USING (mseq)
             WHERE r.state = 'held' AND coalesce(r.valid_until, r.created_at + $2) < $1
             ORDER BY r.mseq, r.idx LIMIT $3",
            &[&now, &default_validity, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| Ok((get(r, 0)?, get_u32(r, 1)?, get(r, 2)?)))
            .collect()
    }
}
