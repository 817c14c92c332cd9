//! SQL for SIM pools and per-SIM settings (schema version 3).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::SqliteTx;
use crate::pool_router::SimKey;
use crate::store::tx::PoolRows;
use crate::store::{Pool, Result, SimSettings};

/// Version 3: pools, their members and prefix rules, SIM settings and usage, a message's pool,
/// and the phones a recipient failed over from.
pub const V3_UPGRADE: &str = r#"
CREATE TABLE pools (
    account_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    sticky      INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE TABLE pool_members (
    account_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    phone_id    TEXT NOT NULL,
    sub_id      INTEGER NOT NULL,
    PRIMARY KEY (account_id, name, phone_id, sub_id)
);
CREATE TABLE pool_prefixes (
    account_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    phone_id    TEXT NOT NULL,
    sub_id      INTEGER NOT NULL,
    PRIMARY KEY (account_id, name, prefix, phone_id, sub_id)
);
CREATE TABLE sim_settings (
    phone_id        TEXT NOT NULL,
    sub_id          INTEGER NOT NULL,
    daily_cap       INTEGER,
    hours           TEXT,
    utc_offset_min  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (phone_id, sub_id)
);
CREATE TABLE sim_usage (
    phone_id    TEXT NOT NULL,
    sub_id      INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    parts       INTEGER NOT NULL,
    PRIMARY KEY (phone_id, sub_id, day)
);
ALTER TABLE messages ADD COLUMN pool TEXT;
ALTER TABLE recipients ADD COLUMN tried TEXT;
"#;

impl PoolRows for SqliteTx<'_> {
    fn pool_exists(&mut self, account: &str, name: &str) -> Result<bool> {
        Ok(self
            .c
            .prepare_cached("SELECT 1 FROM pools WHERE account_id = ?1 AND name = ?2")?
            .query_row(params![account, name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn insert_pool(&mut self, account: &str, pool: &Pool) -> Result<()> {
        self.c.execute(
            "INSERT INTO pools (account_id, name, sticky, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![account, pool.name, pool.sticky, pool.created_at],
        )?;
        for k in &pool.members {
            self.c.execute(
                "INSERT OR IGNORE INTO pool_members (account_id, name, phone_id, sub_id)
                 VALUES (?1, ?2, ?3, ?4)",
                params![account, pool.name, k.phone, k.sub_id],
            )?;
        }
        for (prefix, sims) in &pool.prefixes {
            for k in sims {
                self.c.execute(
                    "INSERT OR IGNORE INTO pool_prefixes (account_id, name, prefix, phone_id,
                         sub_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![account, pool.name, prefix, k.phone, k.sub_id],
                )?;
            }
        }
        Ok(())
    }

    fn delete_pool(&mut self, account: &str, name: &str) -> Result<bool> {
        let n = self.c.execute(
            "DELETE FROM pools WHERE account_id = ?1 AND name = ?2",
            params![account, name],
        )?;
        for table in ["pool_members", "pool_prefixes"] {
            self.c.execute(
                &format!("DELETE FROM {table} WHERE account_id = ?1 AND name = ?2"),
                params![account, name],
            )?;
        }
        Ok(n > 0)
    }

    fn list_pools(&mut self, account: &str) -> Result<Vec<Pool>> {
        let c = self.c;
        let mut pools: Vec<Pool> = c
            .prepare(
                "SELECT name, sticky, created_at FROM pools WHERE account_id = ?1 ORDER BY name",
            )?
            .query_map([account], |r| {
                Ok(Pool {
                    name: r.get(0)?,
                    members: Vec::new(),
                    prefixes: Vec::new(),
                    sticky: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        for p in &mut pools {
            p.members = c
                .prepare_cached(
                    "SELECT phone_id, sub_id FROM pool_members WHERE account_id = ?1 AND name = ?2
                     ORDER BY phone_id, sub_id",
                )?
                .query_map(params![account, p.name], |r| {
                    Ok(SimKey::new(r.get::<_, String>(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let rows: Vec<(String, SimKey)> = c
                .prepare_cached(
                    "SELECT prefix, phone_id, sub_id FROM pool_prefixes
                     WHERE account_id = ?1 AND name = ?2 ORDER BY prefix, phone_id, sub_id",
                )?
                .query_map(params![account, p.name], |r| {
                    Ok((r.get(0)?, SimKey::new(r.get::<_, String>(1)?, r.get(2)?)))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for (prefix, k) in rows {
                match p.prefixes.last_mut() {
                    Some((last, sims)) if *last == prefix => sims.push(k),
                    _ => p.prefixes.push((prefix, vec![k])),
                }
            }
        }
        Ok(pools)
    }

    fn pool_has(
        &mut self,
        account: &str,
        pool: &str,
        phone: &str,
        sim: Option<i32>,
    ) -> Result<bool> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM pool_members
                 WHERE account_id = ?1 AND name = ?2 AND phone_id = ?3
                   AND (?4 IS NULL OR sub_id = ?4))",
            )?
            .query_row(params![account, pool, phone, sim], |r| r.get(0))?)
    }

    fn pool_phones(&mut self, account: &str, pool: &str) -> Result<Vec<String>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT DISTINCT phone_id FROM pool_members WHERE account_id = ?1 AND name = ?2",
            )?
            .query_map(params![account, pool], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn upsert_sim_settings(&mut self, key: &SimKey, s: &SimSettings) -> Result<()> {
        self.c.execute(
            "INSERT INTO sim_settings (phone_id, sub_id, daily_cap, hours, utc_offset_min)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(phone_id, sub_id) DO UPDATE SET daily_cap = ?3, hours = ?4,
                 utc_offset_min = ?5",
            params![
                key.phone,
                key.sub_id,
                s.daily_cap,
                s.hours,
                s.utc_offset_min
            ],
        )?;
        Ok(())
    }

    fn sim_settings(&mut self, account: &str) -> Result<HashMap<SimKey, SimSettings>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT s.phone_id, s.sub_id, s.daily_cap, s.hours, s.utc_offset_min
                 FROM sim_settings s JOIN phones p ON p.id = s.phone_id WHERE p.account_id = ?1",
            )?
            .query_map([account], |r| {
                Ok((
                    SimKey::new(r.get::<_, String>(0)?, r.get(1)?),
                    SimSettings {
                        daily_cap: r.get(2)?,
                        hours: r.get(3)?,
                        utc_offset_min: r.get(4)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?)
    }
}
