//! SQL for phones: pairing, presence, the recipients a phone holds, and its frame log.
//!
//! Frame seqs of a batch are reserved with one `UPDATE ... FROM unnest` and the frames written
//! with one insert, whatever the number of phones and frames.

use std::collections::HashMap;

use simrelay_protocol::PhoneStatus;

use super::messages::recipient_row;
use super::{PgTx, big, big_seq, get, get_u32, get_u64};
use crate::store::tx::{FrameInsert, HeldRow, LinkPresence, PhoneRows, PhoneState};
use crate::store::{Millis, PhoneAuth, PhoneRow, Result, StoreError};

impl PhoneRows for PgTx<'_> {
    fn insert_pairing_code(
        &mut self,
        account: &str,
        code_hash: &str,
        now: Millis,
        expires: Millis,
    ) -> Result<()> {
        self.c.execute(
            "INSERT INTO pairing_codes (code_hash, account_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[&code_hash, &account, &now, &expires],
        )?;
        Ok(())
    }

    fn pairing_code_account(&mut self, code_hash: &str, now: Millis) -> Result<Option<String>> {
        self.c
            .query_opt(
                "SELECT account_id FROM pairing_codes
                 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
                &[&code_hash, &now],
            )?
            .map(|r| get(&r, 0))
            .transpose()
    }

    fn use_pairing_code(&mut self, code_hash: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "UPDATE pairing_codes SET used_at = $2 WHERE code_hash = $1",
            &[&code_hash, &now],
        )?;
        Ok(())
    }

    fn insert_phone(
        &mut self,
        id: &str,
        account: &str,
        name: Option<&str>,
        token_hash: &str,
        now: Millis,
    ) -> Result<()> {
        self.c.execute(
            "INSERT INTO phones (id, account_id, name, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&id, &account, &name, &token_hash, &now],
        )?;
        Ok(())
    }

    fn phone_by_token(&mut self, token_hash: &str) -> Result<Option<PhoneAuth>> {
        self.c
            .query_opt(
                "SELECT id, account_id FROM phones WHERE token_hash = $1 AND removed_at IS NULL",
                &[&token_hash],
            )?
            .map(|r| {
                Ok(PhoneAuth {
                    id: get(&r, 0)?,
                    account_id: get(&r, 1)?,
                })
            })
            .transpose()
    }

    fn list_phones(&mut self, account: &str) -> Result<Vec<PhoneRow>> {
        self.c
            .query(
                "SELECT p.id, p.name, p.status_json, p.last_seen, p.created_at,
                        (SELECT count(*) FROM recipients r WHERE r.phone_id = p.id
                           AND r.state IN ('pending', 'queued', 'sending', 'cancelling'))
                 FROM phones p WHERE p.account_id = $1 AND p.removed_at IS NULL
                 ORDER BY p.created_at, p.id COLLATE \"C\"",
                &[&account],
            )?
            .iter()
            .map(|r| {
                let status: Option<&str> = get(r, 2)?;
                Ok(PhoneRow {
                    id: get(r, 0)?,
                    name: get(r, 1)?,
                    status: status.and_then(|s| serde_json::from_str(s).ok()),
                    last_seen: get(r, 3)?,
                    created_at: get(r, 4)?,
                    outstanding: get_u32(r, 5)?,
                })
            })
            .collect()
    }

    fn phone_of_account(&mut self, account: &str, phone: &str) -> Result<bool> {
        Ok(self
            .c
            .query_opt(
                "SELECT 1 FROM phones WHERE id = $1 AND account_id = $2 AND removed_at IS NULL",
                &[&phone, &account],
            )?
            .is_some())
    }

    fn account_phones(&mut self, account: &str) -> Result<Vec<String>> {
        self.c
            .query(
                "SELECT id FROM phones WHERE account_id = $1 AND removed_at IS NULL
                 ORDER BY created_at, id COLLATE \"C\"",
                &[&account],
            )?
            .iter()
            .map(|r| get(r, 0))
            .collect()
    }

    fn phone_state(&mut self, phone: &str) -> Result<Option<PhoneState>> {
        self.c
            .query_opt(
                "SELECT account_id, online, event_seq, acked_seq, next_seq,
                        removed_at IS NOT NULL
                 FROM phones WHERE id = $1",
                &[&phone],
            )?
            .map(|r| {
                Ok(PhoneState {
                    account_id: get(&r, 0)?,
                    online: get(&r, 1)?,
                    event_seq: get_u64(&r, 2)?,
                    acked_seq: get_u64(&r, 3)?,
                    next_seq: get_u64(&r, 4)?,
                    removed: get(&r, 5)?,
                })
            })
            .transpose()
    }

    fn phone_state_locked(&mut self, phone: &str) -> Result<Option<PhoneState>> {
        self.c
            .query_opt(
                "SELECT account_id, online, event_seq, acked_seq, next_seq,
                        removed_at IS NOT NULL
                 FROM phones WHERE id = $1 FOR UPDATE",
                &[&phone],
            )?
            .map(|r| {
                Ok(PhoneState {
                    account_id: get(&r, 0)?,
                    online: get(&r, 1)?,
                    event_seq: get_u64(&r, 2)?,
                    acked_seq: get_u64(&r, 3)?,
                    next_seq: get_u64(&r, 4)?,
                    removed: get(&r, 5)?,
                })
            })
            .transpose()
    }

    fn link_up(&mut self, phone: &str, node: &str, link: u64) -> Result<()> {
        self.cluster_link_up(phone, node, link)
    }

    fn link_down(&mut self, phone: &str, node: &str, link: u64) -> Result<()> {
        self.cluster_link_down(phone, node, link)
    }

    fn link_presence(&mut self, phone: &str, stale_ms: i64) -> Result<LinkPresence> {
        self.cluster_link_presence(phone, stale_ms)
    }

    fn set_phone_status(
        &mut self,
        phone: &str,
        status: &PhoneStatus,
        online: Option<bool>,
        now: Millis,
    ) -> Result<()> {
        let json = serde_json::to_string(status)?;
        self.c.execute(
            "UPDATE phones SET online = coalesce($4, online), last_seen = $2, status_json = $3
             WHERE id = $1",
            &[&phone, &now, &json, &online],
        )?;
        Ok(())
    }

    fn set_phone_online(&mut self, phone: &str, online: bool) -> Result<()> {
        self.c.execute(
            "UPDATE phones SET online = $2 WHERE id = $1",
            &[&phone, &online],
        )?;
        Ok(())
    }

    fn ack_frames(&mut self, phone: &str, upto: u64) -> Result<()> {
        let upto = big_seq(upto)?;
        self.c.execute(
            "UPDATE phones SET acked_seq = greatest(acked_seq, $2) WHERE id = $1",
            &[&phone, &upto],
        )?;
        self.c.execute(
            "DELETE FROM frames WHERE phone_id = $1 AND seq <= $2",
            &[&phone, &upto],
        )?;
        Ok(())
    }

    fn set_event_seq(&mut self, phone: &str, seq: u64, now: Millis) -> Result<()> {
        self.c.execute(
            "UPDATE phones SET event_seq = $2, last_seen = $3 WHERE id = $1",
            &[&phone, &big_seq(seq)?, &now],
        )?;
        Ok(())
    }

    fn online_phones(&mut self) -> Result<Vec<String>> {
        self.c
            .query(
                "SELECT id FROM phones WHERE online ORDER BY created_at, id COLLATE \"C\"",
                &[],
            )?
            .iter()
            .map(|r| get(r, 0))
            .collect()
    }

    fn outstanding(&mut self, phone: &str) -> Result<u32> {
        get_u32(
            &self.c.query_one(
                "SELECT count(*) FROM recipients WHERE phone_id = $1
                   AND state IN ('pending', 'queued', 'sending', 'cancelling')",
                &[&phone],
            )?,
            0,
        )
    }

    fn held_by(&mut self, phone: &str) -> Result<Vec<HeldRow>> {
        self.c
            .query(
                "SELECT r.mseq, r.idx, r.state, r.phone_id, r.sim, r.accepted, r.parts_sent,
                        r.tried, m.phone_id, m.sim, m.pool
                 FROM recipients r JOIN messages m USING (mseq)
                 WHERE r.phone_id = $1
                   AND r.state IN ('pending', 'queued', 'sending', 'cancelling')
                 ORDER BY r.mseq, r.idx",
                &[&phone],
            )?
            .iter()
            .map(|r| {
                let (mseq, idx, recipient) = recipient_row(r)?;
                Ok(HeldRow {
                    mseq,
                    idx,
                    recipient,
                })
            })
            .collect()
    }

    fn remove_phone_row(&mut self, account: &str, phone: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "UPDATE phones SET token_hash = 'removed:' || id, removed_at = $2, online = false
             WHERE id = $1",
            &[&phone, &now],
        )?;
        self.c
            .execute("DELETE FROM frames WHERE phone_id = $1", &[&phone])?;
        self.c
            .execute("DELETE FROM phone_pings WHERE phone_id = $1", &[&phone])?;
        self.c.execute(
            "DELETE FROM pool_members WHERE account_id = $1 AND phone_id = $2",
            &[&account, &phone],
        )?;
        self.c.execute(
            "DELETE FROM pool_prefixes WHERE account_id = $1 AND phone_id = $2",
            &[&account, &phone],
        )?;
        Ok(())
    }

    fn reserve_frame_seqs(&mut self, wants: &[(&str, u32)]) -> Result<Vec<u64>> {
        if wants.is_empty() {
            return Ok(Vec::new());
        }
        // One update per phone however often it is named; blocks are then handed out in
        // order, as consecutive updates would have.
        let mut total: Vec<(&str, i64)> = Vec::new();
        for (phone, n) in wants {
            match total.iter_mut().find(|(p, _)| p == phone) {
                Some((_, t)) => *t += big(*n),
                None => total.push((phone, big(*n))),
            }
        }
        let phones: Vec<&str> = total.iter().map(|t| t.0).collect();
        let counts: Vec<i64> = total.iter().map(|t| t.1).collect();
        let rows = self.c.query(
            "UPDATE phones p SET next_seq = p.next_seq + u.n
             FROM unnest($1::text[], $2::bigint[]) AS u(id, n)
             WHERE p.id = u.id RETURNING p.id, p.next_seq",
            &[&phones, &counts],
        )?;
        let mut next: HashMap<String, u64> = HashMap::with_capacity(rows.len());
        for r in &rows {
            let id: String = get(r, 0)?;
            let last = get_u64(r, 1)?;
            let n = total.iter().find(|t| t.0 == id).map_or(0, |t| t.1);
            next.insert(id, last + 1 - u64::try_from(n).unwrap_or(0));
        }
        wants
            .iter()
            .map(|(phone, n)| {
                let first = next.get_mut(*phone).ok_or_else(|| {
                    StoreError::Postgres("frame seqs for an unknown phone".into())
                })?;
                let out = *first;
                *first += u64::from(*n);
                Ok(out)
            })
            .collect()
    }

    fn insert_frames(&mut self, frames: &[FrameInsert<'_>], now: Millis) -> Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        let phone: Vec<&str> = frames.iter().map(|f| f.phone).collect();
        let seq: Vec<i64> = frames
            .iter()
            .map(|f| big_seq(f.seq))
            .collect::<Result<_>>()?;
        let body: Vec<&str> = frames.iter().map(|f| f.body).collect();
        self.c.execute(
            "INSERT INTO frames (phone_id, seq, body, created_at)
             SELECT p, s, b, $4 FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(p, s, b)",
            &[&phone, &seq, &body, &now],
        )?;
        Ok(())
    }

    fn frames_after(&mut self, phone: &str, after: u64, limit: u32) -> Result<Vec<(u64, String)>> {
        self.c
            .query(
                "SELECT seq, body FROM frames WHERE phone_id = $1 AND seq > $2
                 ORDER BY seq LIMIT $3",
                &[&phone, &big_seq(after)?, &big(limit)],
            )?
            .iter()
            .map(|r| Ok((get_u64(r, 0)?, get(r, 1)?)))
            .collect()
    }

    /// Frames are stored encoded by `simrelay_protocol::encode`, whose output starts with the
    /// `type` tag.
    fn last_cancel_after(&mut self, phone: &str, after: u64) -> Result<Option<u64>> {
        let r = self.c.query_one(
            "SELECT max(seq) FROM frames
             WHERE phone_id = $1 AND seq > $2 AND starts_with(body, '{\"type\":\"cancel\"')",
            &[&phone, &big_seq(after)?],
        )?;
        get::<Option<i64>>(&r, 0)?
            .map(|v| u64::try_from(v).map_err(|_| StoreError::Postgres("a negative seq".into())))
            .transpose()
    }
}
