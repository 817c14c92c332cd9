//! SQL for phones: pairing, presence, the recipients a phone holds, and its frame log.

use rusqlite::{OptionalExtension, params};
use simrelay_protocol::PhoneStatus;

use super::SqliteTx;
use super::messages::{RECIPIENT_COLUMNS, recipient_row};
use crate::store::tx::{FrameInsert, HeldRow, PhoneRows, PhoneState};
use crate::store::{Millis, PhoneAuth, PhoneRow, Result};

/// Recipient states that still occupy a phone's queue, as SQL (the literals of the partial
/// index `recipients_unsent`).
const OUTSTANDING: &str = "('pending', 'queued', 'sending', 'cancelling')";

impl PhoneRows for SqliteTx<'_> {
    fn insert_pairing_code(
        &mut self,
        account: &str,
        code_hash: &str,
        now: Millis,
        expires: Millis,
    ) -> Result<()> {
        self.c.execute(
            "INSERT INTO pairing_codes (code_hash, account_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![code_hash, account, now, expires],
        )?;
        Ok(())
    }

    fn pairing_code_account(&mut self, code_hash: &str, now: Millis) -> Result<Option<String>> {
        Ok(self
            .c
            .query_row(
                "SELECT account_id FROM pairing_codes
                 WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![code_hash, now],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn use_pairing_code(&mut self, code_hash: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "UPDATE pairing_codes SET used_at = ?2 WHERE code_hash = ?1",
            params![code_hash, now],
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
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, account, name, token_hash, now],
        )?;
        Ok(())
    }

    fn phone_by_token(&mut self, token_hash: &str) -> Result<Option<PhoneAuth>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT id, account_id FROM phones WHERE token_hash = ?1 AND removed_at IS NULL",
            )?
            .query_row([token_hash], |r| {
                Ok(PhoneAuth {
                    id: r.get(0)?,
                    account_id: r.get(1)?,
                })
            })
            .optional()?)
    }

    fn list_phones(&mut self, account: &str) -> Result<Vec<PhoneRow>> {
        let mut rows: Vec<PhoneRow> = self
            .c
            .prepare(
                "SELECT id, name, status_json, last_seen, created_at FROM phones
                 WHERE account_id = ?1 AND removed_at IS NULL ORDER BY created_at, id",
            )?
            .query_map([account], |r| {
                let status: Option<String> = r.get(2)?;
                Ok(PhoneRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    status: status.and_then(|s| serde_json::from_str(&s).ok()),
                    last_seen: r.get(3)?,
                    created_at: r.get(4)?,
                    outstanding: 0,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        for row in &mut rows {
            row.outstanding = self.outstanding(&row.id)?;
        }
        Ok(rows)
    }

    fn phone_of_account(&mut self, account: &str, phone: &str) -> Result<bool> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT 1 FROM phones WHERE id = ?1 AND account_id = ?2 AND removed_at IS NULL",
            )?
            .exists(params![phone, account])?)
    }

    fn account_phones(&mut self, account: &str) -> Result<Vec<String>> {
        Ok(self
            .c
            .prepare_cached("SELECT id FROM phones WHERE account_id = ?1 AND removed_at IS NULL")?
            .query_map([account], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn phone_state(&mut self, phone: &str) -> Result<Option<PhoneState>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT account_id, online, event_seq, acked_seq, next_seq,
                     removed_at IS NOT NULL
                 FROM phones WHERE id = ?1",
            )?
            .query_row([phone], |r| {
                Ok(PhoneState {
                    account_id: r.get(0)?,
                    online: r.get(1)?,
                    event_seq: r.get(2)?,
                    acked_seq: r.get(3)?,
                    next_seq: r.get(4)?,
                    removed: r.get(5)?,
                })
            })
            .optional()?)
    }

    fn set_phone_status(
        &mut self,
        phone: &str,
        status: &PhoneStatus,
        online: Option<bool>,
        now: Millis,
    ) -> Result<()> {
        let json = serde_json::to_string(status)?;
        match online {
            Some(online) => self.c.execute(
                "UPDATE phones SET online = ?4, last_seen = ?2, status_json = ?3 WHERE id = ?1",
                params![phone, now, json, online],
            )?,
            None => self.c.execute(
                "UPDATE phones SET last_seen = ?2, status_json = ?3 WHERE id = ?1",
                params![phone, now, json],
            )?,
        };
        Ok(())
    }

    fn set_phone_online(&mut self, phone: &str, online: bool) -> Result<()> {
        self.c.execute(
            "UPDATE phones SET online = ?2 WHERE id = ?1",
            params![phone, online],
        )?;
        Ok(())
    }

    fn ack_frames(&mut self, phone: &str, upto: u64) -> Result<()> {
        self.c
            .prepare_cached("UPDATE phones SET acked_seq = max(acked_seq, ?2) WHERE id = ?1")?
            .execute(params![phone, upto])?;
        self.c
            .prepare_cached("DELETE FROM frames WHERE phone_id = ?1 AND seq <= ?2")?
            .execute(params![phone, upto])?;
        Ok(())
    }

    fn set_event_seq(&mut self, phone: &str, seq: u64, now: Millis) -> Result<()> {
        self.c
            .prepare_cached("UPDATE phones SET event_seq = ?2, last_seen = ?3 WHERE id = ?1")?
            .execute(params![phone, seq, now])?;
        Ok(())
    }

    fn online_phones(&mut self) -> Result<Vec<String>> {
        Ok(self
            .c
            .prepare("SELECT id FROM phones WHERE online = 1")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn outstanding(&mut self, phone: &str) -> Result<u32> {
        let sql = format!(
            "SELECT count(*) FROM recipients WHERE phone_id = ?1 AND state IN {OUTSTANDING}"
        );
        Ok(self
            .c
            .prepare_cached(&sql)?
            .query_row([phone], |r| r.get(0))?)
    }

    fn held_by(&mut self, phone: &str) -> Result<Vec<HeldRow>> {
        let sql = format!(
            "SELECT {RECIPIENT_COLUMNS} FROM recipients r JOIN messages m USING (mseq)
             WHERE r.phone_id = ?1 AND r.state IN {OUTSTANDING}"
        );
        Ok(self
            .c
            .prepare_cached(&sql)?
            .query_map([phone], |r| {
                let (mseq, idx, recipient) = recipient_row(r)?;
                Ok(HeldRow {
                    mseq,
                    idx,
                    recipient,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn remove_phone_row(&mut self, account: &str, phone: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "UPDATE phones SET token_hash = 'removed:' || id, removed_at = ?2, online = 0
             WHERE id = ?1",
            params![phone, now],
        )?;
        self.c
            .execute("DELETE FROM frames WHERE phone_id = ?1", [phone])?;
        for table in ["pool_members", "pool_prefixes"] {
            self.c.execute(
                &format!("DELETE FROM {table} WHERE account_id = ?1 AND phone_id = ?2"),
                params![account, phone],
            )?;
        }
        Ok(())
    }

    fn reserve_frame_seqs(&mut self, wants: &[(&str, u32)]) -> Result<Vec<u64>> {
        let mut st = self.c.prepare_cached(
            "UPDATE phones SET next_seq = next_seq + ?2 WHERE id = ?1 RETURNING next_seq",
        )?;
        let mut out = Vec::with_capacity(wants.len());
        for (phone, n) in wants {
            let last: u64 = st.query_row(params![phone, n], |r| r.get(0))?;
            out.push(last + 1 - u64::from(*n));
        }
        Ok(out)
    }

    fn insert_frames(&mut self, frames: &[FrameInsert<'_>], now: Millis) -> Result<()> {
        let mut st = self.c.prepare_cached(
            "INSERT INTO frames (phone_id, seq, body, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for f in frames {
            st.execute(params![f.phone, f.seq, f.body, now])?;
        }
        Ok(())
    }

    fn frames_after(&mut self, phone: &str, after: u64, limit: u32) -> Result<Vec<(u64, String)>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT seq, body FROM frames WHERE phone_id = ?1 AND seq > ?2
                 ORDER BY seq LIMIT ?3",
            )?
            .query_map(params![phone, after, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Frames are stored encoded by `simrelay_protocol::encode`, whose output starts with the
    /// `type` tag.
    fn last_cancel_after(&mut self, phone: &str, after: u64) -> Result<Option<u64>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT max(seq) FROM frames
                 WHERE phone_id = ?1 AND seq > ?2 AND body LIKE '{\"type\":\"cancel\"%'",
            )?
            .query_row(params![phone, after], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::sql_states;
    use super::*;
    use crate::domain::RecipientStatus;

    #[test]
    fn the_sql_queue_states_are_the_domains() {
        assert_eq!(OUTSTANDING, sql_states(RecipientStatus::IN_PHONE_QUEUE));
    }
}
