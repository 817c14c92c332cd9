//! SQL for routing: the recipients waiting for a SIM, what the router reads about SIMs
//! (usage per local day, unsent parts, parts sent per minute), and what `send` frames carry.
//!
//! The queries of every routing pass carry the literals of their partial index
//! (`recipients_unrouted`, `recipients_unsent`), which PostgreSQL's planner matches against
//! the index predicate; the per-message reads of a pass are one query over an array.

use std::collections::HashMap;

use super::{PgTx, big, get, get_i32, get_opt_i32, get_rstatus, get_u32};
use crate::pool_router::SimKey;
use crate::store::sqlite::parse_tried;
use crate::store::tx::{BoundRow, FrameMessage, OutcomeRow, RoutingRows, UnroutedRow, UsageAdd};
use crate::store::{Millis, Result, StoreError};

fn sim_key(r: &::postgres::Row, phone: usize, sub: usize) -> Result<SimKey> {
    Ok(SimKey::new(get::<String>(r, phone)?, get_i32(r, sub)?))
}

/// The waiting recipients of `unrouted`, before their order.
macro_rules! unrouted_sql {
    () => {
        "SELECT r.mseq, r.idx, m.priority, m.phone_id, m.sim, m.pool, r.to_number, m.parts,
            r.tried
         FROM recipients r JOIN messages m USING (mseq)
         WHERE r.phone_id IS NULL AND r.state = 'pending' AND m.account_id = $1
           AND (m.phone_id IS NULL OR m.phone_id = ANY($3))"
    };
}

impl RoutingRows for PgTx<'_> {
    fn unrouted(
        &mut self,
        account: &str,
        online: &[String],
        limit: u32,
        newest_first: bool,
    ) -> Result<Vec<UnroutedRow>> {
        self.c
            .query(
                if newest_first {
                    concat!(
                        unrouted_sql!(),
                        " ORDER BY m.priority DESC, r.mseq DESC, r.idx LIMIT $2"
                    )
                } else {
                    concat!(
                        unrouted_sql!(),
                        " ORDER BY m.priority DESC, r.mseq, r.idx LIMIT $2"
                    )
                },
                &[&account, &big(limit), &online],
            )?
            .iter()
            .map(|r| {
                let tried: Option<&str> = get(r, 8)?;
                Ok(UnroutedRow {
                    mseq: get(r, 0)?,
                    idx: get_u32(r, 1)?,
                    priority: get_i32(r, 2)?,
                    phone: get(r, 3)?,
                    sim: get_opt_i32(r, 4)?,
                    pool: get(r, 5)?,
                    to: get(r, 6)?,
                    parts: get_u32(r, 7)?,
                    tried: parse_tried(tried),
                })
            })
            .collect()
    }

    fn bound_rows(&mut self, mseqs: &[i64]) -> Result<Vec<BoundRow>> {
        self.c
            .query(
                "SELECT mseq, phone_id, sim, tried FROM recipients
                 WHERE mseq = ANY($1)
                   AND ((phone_id IS NOT NULL AND sim IS NOT NULL) OR tried IS NOT NULL)",
                &[&mseqs],
            )?
            .iter()
            .map(|r| {
                let tried: Option<&str> = get(r, 3)?;
                Ok(BoundRow {
                    mseq: get(r, 0)?,
                    phone: get(r, 1)?,
                    sim: get_opt_i32(r, 2)?,
                    tried: parse_tried(tried),
                })
            })
            .collect()
    }

    fn frame_messages(&mut self, mseqs: &[i64]) -> Result<Vec<FrameMessage>> {
        let rows = self.c.query(
            "SELECT mseq, id, text, priority, valid_until, schedule_at, sim, delivery_report,
                    parts, encrypted, data_port
             FROM messages WHERE mseq = ANY($1)",
            &[&mseqs],
        )?;
        let mut by_mseq: HashMap<i64, FrameMessage> = HashMap::with_capacity(rows.len());
        for r in &rows {
            let mseq: i64 = get(r, 0)?;
            by_mseq.insert(
                mseq,
                FrameMessage {
                    mseq,
                    id: get(r, 1)?,
                    text: get(r, 2)?,
                    priority: get_i32(r, 3)?,
                    valid_until: get(r, 4)?,
                    schedule_at: get(r, 5)?,
                    sim: get_opt_i32(r, 6)?,
                    delivery_report: get(r, 7)?,
                    parts: get_u32(r, 8)?,
                    encrypted: get(r, 9)?,
                    data_port: super::get_opt_u16(r, 10)?,
                },
            );
        }
        mseqs
            .iter()
            .map(|m| {
                by_mseq
                    .get(m)
                    .cloned()
                    .ok_or_else(|| StoreError::Postgres("a routed message is gone".into()))
            })
            .collect()
    }

    fn sim_offsets(&mut self, keys: &[SimKey]) -> Result<Vec<Option<i16>>> {
        let phones: Vec<&str> = keys.iter().map(|k| k.phone.as_str()).collect();
        let subs: Vec<i64> = keys.iter().map(|k| i64::from(k.sub_id)).collect();
        let rows = self.c.query(
            "SELECT k.ord, s.utc_offset_min
             FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS k(phone_id, sub_id, ord)
             JOIN sim_settings s ON s.phone_id = k.phone_id AND s.sub_id = k.sub_id",
            &[&phones, &subs],
        )?;
        let mut out = vec![None; keys.len()];
        for r in &rows {
            let ord: i64 = get(r, 0)?;
            let offset = i16::try_from(get::<i64>(r, 1)?)
                .map_err(|_| StoreError::Postgres("a UTC offset out of range".into()))?;
            if let Some(slot) = usize::try_from(ord - 1).ok().and_then(|i| out.get_mut(i)) {
                *slot = Some(offset);
            }
        }
        Ok(out)
    }

    fn add_usage(&mut self, adds: &[UsageAdd<'_>]) -> Result<()> {
        if adds.is_empty() {
            return Ok(());
        }
        let phones: Vec<&str> = adds.iter().map(|a| a.key.phone.as_str()).collect();
        let subs: Vec<i64> = adds.iter().map(|a| i64::from(a.key.sub_id)).collect();
        let days: Vec<i64> = adds.iter().map(|a| a.day).collect();
        let parts: Vec<i64> = adds.iter().map(|a| big(a.parts)).collect();
        // Summed per key first: one INSERT ... ON CONFLICT may not touch a row twice.
        self.c.execute(
            "INSERT INTO sim_usage AS s (phone_id, sub_id, day, parts)
             SELECT p, k, d, sum(n) FROM unnest($1::text[], $2::bigint[], $3::bigint[],
                                                $4::bigint[]) AS u(p, k, d, n)
             GROUP BY p, k, d
             ON CONFLICT (phone_id, sub_id, day) DO UPDATE SET parts = s.parts + EXCLUDED.parts",
            &[&phones, &subs, &days, &parts],
        )?;
        Ok(())
    }

    fn prune_usage(&mut self, before_day: i64) -> Result<()> {
        self.c
            .execute("DELETE FROM sim_usage WHERE day < $1", &[&before_day])?;
        Ok(())
    }

    fn count_sent(&mut self, key: &SimKey, minute: i64, parts: u32, keep_from: i64) -> Result<()> {
        let sub = i64::from(key.sub_id);
        self.c.execute(
            "INSERT INTO sim_sent AS s (phone_id, sub_id, minute, parts) VALUES ($1, $2, $3, $4)
             ON CONFLICT (phone_id, sub_id, minute) DO UPDATE SET parts = s.parts + EXCLUDED.parts",
            &[&key.phone, &sub, &minute, &big(parts)],
        )?;
        self.c.execute(
            "DELETE FROM sim_sent WHERE phone_id = $1 AND sub_id = $2 AND minute < $3",
            &[&key.phone, &sub, &keep_from],
        )?;
        Ok(())
    }

    fn sent_since(&mut self, account: &str, minute: i64) -> Result<HashMap<SimKey, u32>> {
        self.c
            .query(
                "SELECT s.phone_id, s.sub_id, sum(s.parts)::bigint
                 FROM phones p JOIN sim_sent s ON s.phone_id = p.id
                 WHERE p.account_id = $1 AND s.minute > $2
                 GROUP BY s.phone_id, s.sub_id",
                &[&account, &minute],
            )?
            .iter()
            .map(|r| Ok((sim_key(r, 0, 1)?, get_u32(r, 2)?)))
            .collect()
    }

    fn unsent_rows(&mut self, account: &str) -> Result<Vec<(SimKey, u32, u32)>> {
        self.c
            .query(
                "SELECT r.phone_id, r.sim, m.parts, r.parts_sent
                 FROM recipients r JOIN messages m USING (mseq)
                 WHERE m.account_id = $1 AND r.phone_id IS NOT NULL AND r.sim IS NOT NULL
                   AND r.state IN ('pending', 'queued', 'sending', 'cancelling')",
                &[&account],
            )?
            .iter()
            .map(|r| Ok((sim_key(r, 0, 1)?, get_u32(r, 2)?, get_u32(r, 3)?)))
            .collect()
    }

    fn outcomes_since(&mut self, account: &str, since: Millis) -> Result<Vec<OutcomeRow>> {
        self.c
            .query(
                "SELECT (r.updated_at / 3600000) * 3600000 AS hour, r.phone_id, r.sim, r.state,
                        count(*)
                 FROM messages m JOIN recipients r USING (mseq)
                 WHERE m.account_id = $1 AND r.updated_at >= $2
                   AND r.state IN ('sent', 'delivered', 'failed', 'expired', 'unknown')
                 GROUP BY hour, r.phone_id, r.sim, r.state",
                &[&account, &since],
            )?
            .iter()
            .map(|r| {
                Ok(OutcomeRow {
                    hour: get(r, 0)?,
                    phone: get(r, 1)?,
                    sim: get_opt_i32(r, 2)?,
                    state: get_rstatus(r, 3)?,
                    count: get_u32(r, 4)?,
                })
            })
            .collect()
    }

    fn unrouted_parts(&mut self, account: &str) -> Result<Vec<(Option<String>, u32)>> {
        self.c
            .query(
                "SELECT m.pool, m.parts
                 FROM recipients r JOIN messages m USING (mseq)
                 WHERE m.account_id = $1 AND r.phone_id IS NULL AND r.state = 'pending'",
                &[&account],
            )?
            .iter()
            .map(|r| Ok((get(r, 0)?, get_u32(r, 1)?)))
            .collect()
    }

    fn usage_rows(&mut self, account: &str) -> Result<Vec<(SimKey, i64, u32)>> {
        self.c
            .query(
                "SELECT u.phone_id, u.sub_id, u.day, u.parts FROM sim_usage u
                 JOIN phones p ON p.id = u.phone_id WHERE p.account_id = $1",
                &[&account],
            )?
            .iter()
            .map(|r| Ok((sim_key(r, 0, 1)?, get(r, 2)?, get_u32(r, 3)?)))
            .collect()
    }
}
