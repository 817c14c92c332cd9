//! SQL for routing: the recipients waiting for a SIM, what the router reads about SIMs
//! (usage per local day, unsent parts, parts sent per minute), and what `send` frames carry.
//!
//! The queries that run on every routing pass name their partial index (`INDEXED BY`):
//! without it the planner walks the account's whole history (`scaling_tests`).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::{SqliteTx, parse_tried};
use crate::pool_router::SimKey;
use crate::store::tx::{BoundRow, FrameMessage, OutcomeRow, RoutingRows, UnroutedRow, UsageAdd};
use crate::store::{Millis, Result};

pub(crate) const UNSENT_SQL: &str = "SELECT r.phone_id, r.sim, m.parts, r.parts_sent
     FROM recipients r INDEXED BY recipients_unsent CROSS JOIN messages m USING (mseq)
     WHERE m.account_id = ?1 AND r.phone_id IS NOT NULL AND r.sim IS NOT NULL
       AND r.state IN ('pending', 'queued', 'sending', 'cancelling')";

pub(crate) const SENT_SINCE_SQL: &str = "SELECT s.phone_id, s.sub_id, sum(s.parts)
     FROM phones p JOIN sim_sent s ON s.phone_id = p.id
     WHERE p.account_id = ?1 AND s.minute > ?2
     GROUP BY s.phone_id, s.sub_id";

const OUTCOMES_SQL: &str = "SELECT (r.updated_at / 3600000) * 3600000 AS hour, r.phone_id,
        r.sim, r.state, count(*)
     FROM messages m JOIN recipients r USING (mseq)
     WHERE m.account_id = ?1 AND r.updated_at >= ?2
       AND r.state IN ('sent', 'delivered', 'failed', 'expired', 'unknown')
     GROUP BY hour, r.phone_id, r.sim, r.state";

pub(crate) const UNROUTED_BY_POOL_SQL: &str = "SELECT m.pool, m.parts
     FROM recipients r INDEXED BY recipients_unrouted CROSS JOIN messages m USING (mseq)
     WHERE m.account_id = ?1 AND r.phone_id IS NULL AND r.state = 'pending'";

/// The waiting recipients of `unrouted`, before their order.
macro_rules! unrouted_sql {
    () => {
        "SELECT r.mseq, r.idx, m.priority, m.phone_id, m.sim, m.pool, r.to_number, m.parts,
            r.tried
         FROM recipients r JOIN messages m USING (mseq)
         WHERE r.phone_id IS NULL AND r.state = 'pending' AND m.account_id = ?1
           AND (m.phone_id IS NULL OR m.phone_id IN (SELECT value FROM json_each(?3)))"
    };
}

impl RoutingRows for SqliteTx<'_> {
    fn unrouted(
        &mut self,
        account: &str,
        online: &[String],
        limit: u32,
        newest_first: bool,
    ) -> Result<Vec<UnroutedRow>> {
        let online = serde_json::to_string(online)?;
        Ok(self
            .c
            .prepare_cached(if newest_first {
                concat!(
                    unrouted_sql!(),
                    " ORDER BY m.priority DESC, r.mseq DESC, r.idx LIMIT ?2"
                )
            } else {
                concat!(
                    unrouted_sql!(),
                    " ORDER BY m.priority DESC, r.mseq, r.idx LIMIT ?2"
                )
            })?
            .query_map(params![account, limit, online], |r| {
                let tried: Option<String> = r.get(8)?;
                Ok(UnroutedRow {
                    mseq: r.get(0)?,
                    idx: r.get(1)?,
                    priority: r.get(2)?,
                    phone: r.get(3)?,
                    sim: r.get(4)?,
                    pool: r.get(5)?,
                    to: r.get(6)?,
                    parts: r.get(7)?,
                    tried: parse_tried(tried.as_deref()),
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn bound_rows(&mut self, mseqs: &[i64]) -> Result<Vec<BoundRow>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT mseq, phone_id, sim, tried FROM recipients
                 WHERE mseq IN (SELECT value FROM json_each(?1))
                   AND ((phone_id IS NOT NULL AND sim IS NOT NULL) OR tried IS NOT NULL)",
            )?
            .query_map([serde_json::to_string(mseqs)?], |r| {
                let tried: Option<String> = r.get(3)?;
                Ok(BoundRow {
                    mseq: r.get(0)?,
                    phone: r.get(1)?,
                    sim: r.get(2)?,
                    tried: parse_tried(tried.as_deref()),
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn frame_messages(&mut self, mseqs: &[i64]) -> Result<Vec<FrameMessage>> {
        let mut st = self.c.prepare_cached(
            "SELECT id, text, priority, valid_until, schedule_at, sim, delivery_report, parts,
                    encrypted, data_port
             FROM messages WHERE mseq = ?1",
        )?;
        let mut out = Vec::with_capacity(mseqs.len());
        for mseq in mseqs {
            out.push(st.query_row([mseq], |r| {
                Ok(FrameMessage {
                    mseq: *mseq,
                    id: r.get(0)?,
                    text: r.get(1)?,
                    priority: r.get(2)?,
                    valid_until: r.get(3)?,
                    schedule_at: r.get(4)?,
                    sim: r.get(5)?,
                    delivery_report: r.get(6)?,
                    parts: r.get(7)?,
                    encrypted: r.get(8)?,
                    data_port: r.get(9)?,
                })
            })?);
        }
        Ok(out)
    }

    fn sim_offsets(&mut self, keys: &[SimKey]) -> Result<Vec<Option<i16>>> {
        let mut st = self.c.prepare_cached(
            "SELECT utc_offset_min FROM sim_settings WHERE phone_id = ?1 AND sub_id = ?2",
        )?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(
                st.query_row(params![k.phone, k.sub_id], |r| r.get(0))
                    .optional()?,
            );
        }
        Ok(out)
    }

    fn add_usage(&mut self, adds: &[UsageAdd<'_>]) -> Result<()> {
        let mut st = self.c.prepare_cached(
            "INSERT INTO sim_usage (phone_id, sub_id, day, parts) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(phone_id, sub_id, day) DO UPDATE SET parts = parts + ?4",
        )?;
        for a in adds {
            st.execute(params![a.key.phone, a.key.sub_id, a.day, a.parts])?;
        }
        Ok(())
    }

    fn prune_usage(&mut self, before_day: i64) -> Result<()> {
        self.c
            .prepare_cached("DELETE FROM sim_usage WHERE day < ?1")?
            .execute([before_day])?;
        Ok(())
    }

    fn count_sent(&mut self, key: &SimKey, minute: i64, parts: u32, keep_from: i64) -> Result<()> {
        self.c
            .prepare_cached(
                "INSERT INTO sim_sent (phone_id, sub_id, minute, parts) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (phone_id, sub_id, minute) DO UPDATE SET parts = parts + excluded.parts",
            )?
            .execute(params![key.phone, key.sub_id, minute, parts])?;
        self.c
            .prepare_cached(
                "DELETE FROM sim_sent WHERE phone_id = ?1 AND sub_id = ?2 AND minute < ?3",
            )?
            .execute(params![key.phone, key.sub_id, keep_from])?;
        Ok(())
    }

    fn sent_since(&mut self, account: &str, minute: i64) -> Result<HashMap<SimKey, u32>> {
        Ok(self
            .c
            .prepare_cached(SENT_SINCE_SQL)?
            .query_map(params![account, minute], |r| {
                Ok((SimKey::new(r.get::<_, String>(0)?, r.get(1)?), r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn unsent_rows(&mut self, account: &str) -> Result<Vec<(SimKey, u32, u32)>> {
        Ok(self
            .c
            .prepare_cached(UNSENT_SQL)?
            .query_map([account], |r| {
                Ok((
                    SimKey::new(r.get::<_, String>(0)?, r.get(1)?),
                    r.get(2)?,
                    r.get(3)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn outcomes_since(&mut self, account: &str, since: Millis) -> Result<Vec<OutcomeRow>> {
        Ok(self
            .c
            .prepare_cached(OUTCOMES_SQL)?
            .query_map(params![account, since], |r| {
                Ok(OutcomeRow {
                    hour: r.get(0)?,
                    phone: r.get(1)?,
                    sim: r.get(2)?,
                    state: r.get(3)?,
                    count: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn unrouted_parts(&mut self, account: &str) -> Result<Vec<(Option<String>, u32)>> {
        Ok(self
            .c
            .prepare_cached(UNROUTED_BY_POOL_SQL)?
            .query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn usage_rows(&mut self, account: &str) -> Result<Vec<(SimKey, i64, u32)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT u.phone_id, u.sub_id, u.day, u.parts FROM sim_usage u
                 JOIN phones p ON p.id = u.phone_id WHERE p.account_id = ?1",
            )?
            .query_map([account], |r| {
                Ok((
                    SimKey::new(r.get::<_, String>(0)?, r.get(1)?),
                    r.get(2)?,
                    r.get(3)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?)
    }
}
