//! SQL for SIM pools and per-SIM settings (schema version 3), and the routing inputs built from
//! them: pool membership by (phone id, sub_id), destination-prefix rules, stickiness, the
//! relay-side daily cap and working hours of each SIM, parts routed per SIM and local day, and
//! parts routed but not yet sent per SIM (the router's pace headroom).

use std::collections::{BTreeSet, HashMap};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Millis, Result};
use crate::pool_router::{Hours, PrefixRule, SimKey, SimLimits, local_day};

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

/// A pool as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub members: Vec<SimKey>,
    /// (prefix, SIMs preferred for it).
    pub prefixes: Vec<(String, Vec<SimKey>)>,
    pub sticky: bool,
    pub created_at: Millis,
}

/// What creating a pool did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolOutcome {
    Created,
    Exists,
    /// A member or prefix SIM names a phone that is not the account's.
    UnknownPhone,
}

/// Relay-side settings of one SIM as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimSettings {
    pub daily_cap: Option<u32>,
    /// `"HH:MM-HH:MM"` (validated by the API).
    pub hours: Option<String>,
    pub utc_offset_min: i16,
}

impl SimSettings {
    pub fn limits(&self) -> SimLimits {
        SimLimits {
            daily_cap: self.daily_cap,
            hours: self
                .hours
                .as_deref()
                .and_then(|h| Hours::parse(h, self.utc_offset_min)),
        }
    }
}

/// Everything the router needs from the store for one account.
#[derive(Debug, Clone, Default)]
pub struct RoutingInput {
    pub pools: HashMap<String, BTreeSet<SimKey>>,
    pub sticky_pools: BTreeSet<String>,
    pub prefixes: Vec<PrefixRule>,
    pub settings: HashMap<SimKey, SimSettings>,
    /// Parts routed today (the SIM's local day) per SIM.
    pub routed_today: HashMap<SimKey, u32>,
    /// Parts routed and not yet sent per SIM.
    pub unsent: HashMap<SimKey, u32>,
}

fn phone_of_account(c: &Connection, account: &str, phone: &str) -> Result<bool> {
    Ok(c.prepare_cached(
        "SELECT 1 FROM phones WHERE id = ?1 AND account_id = ?2 AND removed_at IS NULL",
    )?
    .query_row(params![phone, account], |_| Ok(()))
    .optional()?
    .is_some())
}

pub fn create_pool(tx: &Transaction<'_>, account: &str, pool: &Pool) -> Result<PoolOutcome> {
    let exists = tx
        .query_row(
            "SELECT 1 FROM pools WHERE account_id = ?1 AND name = ?2",
            params![account, pool.name],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if exists {
        return Ok(PoolOutcome::Exists);
    }
    let all = pool
        .members
        .iter()
        .chain(pool.prefixes.iter().flat_map(|(_, s)| s.iter()));
    for k in all {
        if !phone_of_account(tx, account, &k.phone)? {
            return Ok(PoolOutcome::UnknownPhone);
        }
    }
    tx.execute(
        "INSERT INTO pools (account_id, name, sticky, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![account, pool.name, pool.sticky, pool.created_at],
    )?;
    for k in &pool.members {
        tx.execute(
            "INSERT OR IGNORE INTO pool_members (account_id, name, phone_id, sub_id)
             VALUES (?1, ?2, ?3, ?4)",
            params![account, pool.name, k.phone, k.sub_id],
        )?;
    }
    for (prefix, sims) in &pool.prefixes {
        for k in sims {
            tx.execute(
                "INSERT OR IGNORE INTO pool_prefixes (account_id, name, prefix, phone_id, sub_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![account, pool.name, prefix, k.phone, k.sub_id],
            )?;
        }
    }
    Ok(PoolOutcome::Created)
}

pub fn delete_pool(tx: &Transaction<'_>, account: &str, name: &str) -> Result<bool> {
    let n = tx.execute(
        "DELETE FROM pools WHERE account_id = ?1 AND name = ?2",
        params![account, name],
    )?;
    for table in ["pool_members", "pool_prefixes"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE account_id = ?1 AND name = ?2"),
            params![account, name],
        )?;
    }
    Ok(n > 0)
}

pub fn list_pools(c: &Connection, account: &str) -> Result<Vec<Pool>> {
    let mut pools: Vec<Pool> = c
        .prepare("SELECT name, sticky, created_at FROM pools WHERE account_id = ?1 ORDER BY name")?
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

/// Whether the account has a pool of that name.
pub fn pool_exists(c: &Connection, account: &str, name: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM pools WHERE account_id = ?1 AND name = ?2")?
            .query_row(params![account, name], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// Stores a SIM's settings; false when the phone is not the account's.
pub fn set_sim_settings(
    tx: &Transaction<'_>,
    account: &str,
    key: &SimKey,
    s: &SimSettings,
) -> Result<bool> {
    if !phone_of_account(tx, account, &key.phone)? {
        return Ok(false);
    }
    tx.execute(
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
    Ok(true)
}

/// Settings of every SIM of the account's phones that has some.
pub fn sim_settings(c: &Connection, account: &str) -> Result<HashMap<SimKey, SimSettings>> {
    Ok(c.prepare_cached(
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

/// Counts `parts` routed to `key` on its local day.
pub fn add_usage(
    tx: &Transaction<'_>,
    key: &SimKey,
    parts: u32,
    utc_offset_min: i16,
    now: Millis,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO sim_usage (phone_id, sub_id, day, parts) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(phone_id, sub_id, day) DO UPDATE SET parts = parts + ?4",
    )?
    .execute(params![
        key.phone,
        key.sub_id,
        local_day(now, utc_offset_min),
        parts
    ])?;
    Ok(())
}

// INDEXED BY here and below: without it the planner walks the account's whole history.
pub(crate) const UNSENT_SQL: &str = "SELECT r.phone_id, r.sim, m.text, r.parts_sent
     FROM recipients r INDEXED BY recipients_unsent CROSS JOIN messages m USING (mseq)
     WHERE m.account_id = ?1 AND r.phone_id IS NOT NULL AND r.sim IS NOT NULL
       AND r.state IN ('pending', 'queued', 'sending', 'cancelling')";

/// Parts routed and not yet sent, per SIM of the account (recipients still in a phone's
/// queue: their parts minus those sent).
pub fn unsent_parts(c: &Connection, account: &str) -> Result<HashMap<SimKey, u32>> {
    let rows: Vec<(String, i32, String, u32)> = c
        .prepare_cached(UNSENT_SQL)?
        .query_map([account], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out: HashMap<SimKey, u32> = HashMap::new();
    for (phone, sim, text, sent) in rows {
        let parts = simrelay_core::segment::count_parts(&text).saturating_sub(sent);
        let e = out.entry(SimKey::new(phone, sim)).or_default();
        *e = e.saturating_add(parts);
    }
    Ok(out)
}

/// The router's inputs for one account at `now`.
pub fn routing_input(c: &Connection, account: &str, now: Millis) -> Result<RoutingInput> {
    let mut input = RoutingInput {
        settings: sim_settings(c, account)?,
        unsent: unsent_parts(c, account)?,
        ..RoutingInput::default()
    };
    for p in list_pools(c, account)? {
        if p.sticky {
            input.sticky_pools.insert(p.name.clone());
        }
        for (prefix, sims) in p.prefixes {
            input.prefixes.push(PrefixRule {
                prefix,
                sims: sims.into_iter().collect(),
                pool: Some(p.name.clone()),
            });
        }
        input
            .pools
            .insert(p.name, p.members.into_iter().collect::<BTreeSet<_>>());
    }
    let usage: Vec<(String, i32, i64, u32)> = c
        .prepare_cached(
            "SELECT u.phone_id, u.sub_id, u.day, u.parts FROM sim_usage u
             JOIN phones p ON p.id = u.phone_id WHERE p.account_id = ?1",
        )?
        .query_map([account], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (phone, sub, day, parts) in usage {
        let key = SimKey::new(phone, sub);
        let offset = input.settings.get(&key).map_or(0, |s| s.utc_offset_min);
        if day == local_day(now, offset) {
            input.routed_today.insert(key, parts);
        }
    }
    Ok(input)
}

pub(crate) const SENT_SINCE_SQL: &str = "SELECT s.phone_id, s.sub_id, sum(s.parts)
     FROM phones p JOIN sim_sent s ON s.phone_id = p.id
     WHERE p.account_id = ?1 AND s.minute > ?2
     GROUP BY s.phone_id, s.sub_id";

/// Minutes of `sim_sent` kept per SIM: the ten minutes `sent_since` reads, and the current one.
const SENT_MINUTES_KEPT: i64 = 11;

/// Counts `parts` that just left SIM `sub_id` of `phone`, in the bucket of the minute `now`,
/// and drops that SIM's buckets older than the window (a seek on the key, no scan).
pub fn count_sent(
    tx: &Transaction<'_>,
    phone: &str,
    sub_id: i32,
    parts: u32,
    now: Millis,
) -> Result<()> {
    let minute = now.div_euclid(60_000);
    tx.prepare_cached(
        "INSERT INTO sim_sent (phone_id, sub_id, minute, parts) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (phone_id, sub_id, minute) DO UPDATE SET parts = parts + excluded.parts",
    )?
    .execute(params![phone, sub_id, minute, parts])?;
    tx.prepare_cached("DELETE FROM sim_sent WHERE phone_id = ?1 AND sub_id = ?2 AND minute <= ?3")?
        .execute(params![phone, sub_id, minute - SENT_MINUTES_KEPT])?;
    Ok(())
}

/// Parts that left each SIM of the account in the minutes after the one holding `since` (the
/// minute buckets of [`count_sent`]: throughput over a short window).
pub fn sent_since(c: &Connection, account: &str, since: Millis) -> Result<HashMap<SimKey, u32>> {
    Ok(c.prepare_cached(SENT_SINCE_SQL)?
        .query_map(params![account, since.div_euclid(60_000)], |r| {
            Ok((SimKey::new(r.get::<_, String>(0)?, r.get(1)?), r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?)
}

pub(crate) const UNROUTED_BY_POOL_SQL: &str = "SELECT m.pool, m.text
     FROM recipients r INDEXED BY recipients_unrouted CROSS JOIN messages m USING (mseq)
     WHERE m.account_id = ?1 AND r.phone_id IS NULL AND r.state = 'pending'";

/// Recipients waiting for a SIM and their parts, by the pool they target (`None`: no pool).
pub fn unrouted_by_pool(
    c: &Connection,
    account: &str,
) -> Result<HashMap<Option<String>, (u32, u32)>> {
    let rows: Vec<(Option<String>, String)> = c
        .prepare_cached(UNROUTED_BY_POOL_SQL)?
        .query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out: HashMap<Option<String>, (u32, u32)> = HashMap::new();
    for (pool, text) in rows {
        let e = out.entry(pool).or_default();
        e.0 = e.0.saturating_add(1);
        e.1 =
            e.1.saturating_add(simrelay_core::segment::count_parts(&text));
    }
    Ok(out)
}

/// Queues a webhook event for the account that owns `phone`.
pub fn phone_event(
    tx: &Transaction<'_>,
    phone: &str,
    event: &str,
    data: serde_json::Value,
    now: Millis,
) -> Result<usize> {
    let account: Option<String> = tx
        .query_row(
            "SELECT account_id FROM phones WHERE id = ?1",
            [phone],
            |r| r.get(0),
        )
        .optional()?;
    match account {
        Some(a) => super::sqlite_webhooks::enqueue_event(tx, &a, event, data, now),
        None => Ok(0),
    }
}
