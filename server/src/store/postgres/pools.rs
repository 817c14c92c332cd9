//! SQL for SIM pools and per-SIM settings.

use std::collections::HashMap;

use super::{PgTx, get, get_i32, get_opt_u32};
use crate::pool_router::SimKey;
use crate::store::tx::PoolRows;
use crate::store::{Pool, Result, SimSettings, StoreError};

impl PoolRows for PgTx<'_> {
    fn pool_exists(&mut self, account: &str, name: &str) -> Result<bool> {
        Ok(self
            .c
            .query_opt(
                "SELECT 1 FROM pools WHERE account_id = $1 AND name = $2",
                &[&account, &name],
            )?
            .is_some())
    }

    fn insert_pool(&mut self, account: &str, pool: &Pool) -> Result<()> {
        self.c.execute(
            "INSERT INTO pools (account_id, name, sticky, created_at) VALUES ($1, $2, $3, $4)",
            &[&account, &pool.name, &pool.sticky, &pool.created_at],
        )?;
        let phones: Vec<&str> = pool.members.iter().map(|k| k.phone.as_str()).collect();
        let subs: Vec<i64> = pool.members.iter().map(|k| i64::from(k.sub_id)).collect();
        self.c.execute(
            "INSERT INTO pool_members (account_id, name, phone_id, sub_id)
             SELECT $1, $2, p, s FROM unnest($3::text[], $4::bigint[]) AS u(p, s)
             ON CONFLICT DO NOTHING",
            &[&account, &pool.name, &phones, &subs],
        )?;
        let mut prefixes = Vec::new();
        let mut phones = Vec::new();
        let mut subs = Vec::new();
        for (prefix, sims) in &pool.prefixes {
            for k in sims {
                prefixes.push(prefix.as_str());
                phones.push(k.phone.as_str());
                subs.push(i64::from(k.sub_id));
            }
        }
        self.c.execute(
            "INSERT INTO pool_prefixes (account_id, name, prefix, phone_id, sub_id)
             SELECT $1, $2, x, p, s FROM unnest($3::text[], $4::text[], $5::bigint[])
                    AS u(x, p, s)
             ON CONFLICT DO NOTHING",
            &[&account, &pool.name, &prefixes, &phones, &subs],
        )?;
        Ok(())
    }

    fn delete_pool(&mut self, account: &str, name: &str) -> Result<bool> {
        let n = self.c.execute(
            "DELETE FROM pools WHERE account_id = $1 AND name = $2",
            &[&account, &name],
        )?;
        self.c.execute(
            "DELETE FROM pool_members WHERE account_id = $1 AND name = $2",
            &[&account, &name],
        )?;
        self.c.execute(
            "DELETE FROM pool_prefixes WHERE account_id = $1 AND name = $2",
            &[&account, &name],
        )?;
        Ok(n > 0)
    }

    fn list_pools(&mut self, account: &str) -> Result<Vec<Pool>> {
        let mut pools: Vec<Pool> = self
            .c
            .query(
                "SELECT name, sticky, created_at FROM pools WHERE account_id = $1
                 ORDER BY name COLLATE \"C\"",
                &[&account],
            )?
            .iter()
            .map(|r| {
                Ok(Pool {
                    name: get(r, 0)?,
                    members: Vec::new(),
                    prefixes: Vec::new(),
                    sticky: get(r, 1)?,
                    created_at: get(r, 2)?,
                })
            })
            .collect::<Result<_>>()?;
        let at: HashMap<String, usize> = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        for r in &self.c.query(
            "SELECT name, phone_id, sub_id FROM pool_members WHERE account_id = $1
             ORDER BY name COLLATE \"C\", phone_id COLLATE \"C\", sub_id",
            &[&account],
        )? {
            let name: &str = get(r, 0)?;
            if let Some(&i) = at.get(name) {
                pools[i]
                    .members
                    .push(SimKey::new(get::<String>(r, 1)?, get_i32(r, 2)?));
            }
        }
        for r in &self.c.query(
            "SELECT name, prefix, phone_id, sub_id FROM pool_prefixes WHERE account_id = $1
             ORDER BY name COLLATE \"C\", prefix COLLATE \"C\", phone_id COLLATE \"C\", sub_id",
            &[&account],
        )? {
            let name: &str = get(r, 0)?;
            let Some(&i) = at.get(name) else { continue };
            let prefix: String = get(r, 1)?;
            let k = SimKey::new(get::<String>(r, 2)?, get_i32(r, 3)?);
            let p = &mut pools[i];
            match p.prefixes.last_mut() {
                Some((last, sims)) if *last == prefix => sims.push(k),
                _ => p.prefixes.push((prefix, vec![k])),
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
        get(
            &self.c.query_one(
                "SELECT EXISTS (SELECT 1 FROM pool_members
                 WHERE account_id = $1 AND name = $2 AND phone_id = $3
                   AND ($4::bigint IS NULL OR sub_id = $4::bigint))",
                &[&account, &pool, &phone, &sim.map(i64::from)],
            )?,
            0,
        )
    }

    fn pool_phones(&mut self, account: &str, pool: &str) -> Result<Vec<String>> {
        self.c
            .query(
                "SELECT DISTINCT phone_id COLLATE \"C\" FROM pool_members
                 WHERE account_id = $1 AND name = $2 ORDER BY 1",
                &[&account, &pool],
            )?
            .iter()
            .map(|r| get(r, 0))
            .collect()
    }

    fn upsert_sim_settings(&mut self, key: &SimKey, s: &SimSettings) -> Result<()> {
        self.c.execute(
            "INSERT INTO sim_settings (phone_id, sub_id, daily_cap, hours, utc_offset_min)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (phone_id, sub_id) DO UPDATE SET daily_cap = EXCLUDED.daily_cap,
                 hours = EXCLUDED.hours, utc_offset_min = EXCLUDED.utc_offset_min",
            &[
                &key.phone,
                &i64::from(key.sub_id),
                &s.daily_cap.map(i64::from),
                &s.hours,
                &i64::from(s.utc_offset_min),
            ],
        )?;
        Ok(())
    }

    fn sim_settings(&mut self, account: &str) -> Result<HashMap<SimKey, SimSettings>> {
        self.c
            .query(
                "SELECT s.phone_id, s.sub_id, s.daily_cap, s.hours, s.utc_offset_min
                 FROM sim_settings s JOIN phones p ON p.id = s.phone_id WHERE p.account_id = $1",
                &[&account],
            )?
            .iter()
            .map(|r| {
                let offset = i16::try_from(get::<i64>(r, 4)?)
                    .map_err(|_| StoreError::Postgres("a UTC offset out of range".into()))?;
                Ok((
                    SimKey::new(get::<String>(r, 0)?, get_i32(r, 1)?),
                    SimSettings {
                        daily_cap: get_opt_u32(r, 2)?,
                        hours: get(r, 3)?,
                        utc_offset_min: offset,
                    },
                ))
            })
            .collect()
    }
}
