//! SQL for messages, recipients, deadlines and the inbox.
//!
//! The group commit's statements take arrays: `find_messages` is one query over `unnest` of
//! the (account, id) pairs, `insert_messages` one statement that inserts every message and
//! every recipient and returns the new mseqs, whatever the batch's size.

use std::collections::HashMap;

use ::postgres::Row;
use simrelay_protocol::IncomingSms;

use super::{
    PgTx, big, big_opt, get, get_i32, get_mstatus, get_opt_i32, get_opt_u16, get_rstatus, get_u32,
};
use crate::domain::{MessageStatus, Recipient, RecipientStatus, Target};
use crate::pool_router::SimKey;
use crate::store::sqlite::{parse_tried, tried_json};
use crate::store::tx::{
    DeadlineRow, MessageInsert, MessageRows, RecipientEventRow, ReportWrite, StateWrite,
};
use crate::store::{
    Assignment, InboxFilter, InboxItem, MessageFilter, MessageView, Millis, RecipientView, Result,
    StoreError, SuppressionOverride,
};

pub(super) fn message_row(r: &Row) -> Result<MessageView> {
    Ok(MessageView {
        cursor: get(r, 0)?,
        id: get(r, 1)?,
        state: get_mstatus(r, 2)?,
        priority: get_i32(r, 3)?,
        valid_until: get(r, 4)?,
        schedule_at: get(r, 5)?,
        phone: get(r, 6)?,
        sim: get_opt_i32(r, 7)?,
        delivery_report: get(r, 8)?,
        created_at: get(r, 9)?,
        updated_at: get(r, 10)?,
        encrypted: get(r, 11)?,
        data_port: get_opt_u16(r, 12)?,
        text: get(r, 13)?,
        recipients: Vec::new(),
        suppression_override: get::<Option<String>>(r, 14)?
            .as_deref()
            .and_then(SuppressionOverride::parse),
        overrode_suppression: get(r, 15)?,
    })
}

/// Fills in the recipients of `views` with one query.
pub(super) fn inbox_row(r: &Row) -> Result<InboxItem> {
    Ok(InboxItem {
        cursor: get(r, 0)?,
        id: get(r, 1)?,
        phone: get(r, 2)?,
        sim: get_opt_i32(r, 3)?,
        from: get(r, 4)?,
        text: get(r, 5)?,
        sent_at: get(r, 6)?,
        received_at: get(r, 7)?,
        stored_at: get(r, 8)?,
        encrypted: get(r, 9)?,
        data_port: get_opt_u16(r, 10)?,
    })
}

pub(super) fn load_recipients(tx: &mut PgTx<'_>, views: &mut [MessageView]) -> Result<()> {
    if views.is_empty() {
        return Ok(());
    }
    let mseqs: Vec<i64> = views.iter().map(|v| v.cursor).collect();
    let rows = tx.c.query(
        "SELECT mseq, idx, to_number, state, parts, parts_sent, parts_delivered, error, code,
                phone_id, sim, updated_at
         FROM recipients WHERE mseq = ANY($1) ORDER BY mseq, idx",
        &[&mseqs],
    )?;
    let at: HashMap<i64, usize> = views
        .iter()
        .enumerate()
        .map(|(i, v)| (v.cursor, i))
        .collect();
    for r in &rows {
        let mseq: i64 = get(r, 0)?;
        let Some(&i) = at.get(&mseq) else { continue };
        views[i].recipients.push(RecipientView {
            idx: get_u32(r, 1)?,
            to: get(r, 2)?,
            state: get_rstatus(r, 3)?,
            parts: get_u32(r, 4)?,
            parts_sent: get_u32(r, 5)?,
            parts_delivered: get_u32(r, 6)?,
            error: get(r, 7)?,
            code: get_opt_i32(r, 8)?,
            phone: get(r, 9)?,
            sim: get_opt_i32(r, 10)?,
            updated_at: get(r, 11)?,
        });
    }
    Ok(())
}

fn one_view(tx: &mut PgTx<'_>, row: Option<Row>) -> Result<Option<MessageView>> {
    let Some(row) = row else { return Ok(None) };
    let mut views = [message_row(&row)?];
    load_recipients(tx, &mut views)?;
    let [view] = views;
    Ok(Some(view))
}

/// (mseq, idx, recipient) of a row of `r.mseq, r.idx, r.state, r.phone_id, r.sim,
/// r.accepted, r.parts_sent, r.tried, m.phone_id, m.sim, m.pool`.
pub(super) fn recipient_row(r: &Row) -> Result<(i64, u32, Recipient)> {
    let tried: Option<&str> = get(r, 7)?;
    Ok((
        get(r, 0)?,
        get_u32(r, 1)?,
        Recipient {
            status: get_rstatus(r, 2)?,
            phone: get(r, 3)?,
            sim: get_opt_i32(r, 4)?,
            accepted: get(r, 5)?,
            parts_sent: get_u32(r, 6)?,
            tried: parse_tried(tried),
            target: Target {
                phone: get(r, 8)?,
                sim: get_opt_i32(r, 9)?,
                pool: get(r, 10)?,
            },
        },
    ))
}

fn deadline_row(r: &Row) -> Result<DeadlineRow> {
    Ok(DeadlineRow {
        mseq: get(r, 0)?,
        idx: get_u32(r, 1)?,
        account_id: get(r, 2)?,
        status: get_rstatus(r, 3)?,
        valid_until: get(r, 4)?,
        created_at: get(r, 5)?,
        updated_at: get(r, 6)?,
    })
}

/// Keeps the last write of each (mseq, idx): one `UPDATE ... FROM unnest` changes a row once,
/// where SQLite's statement per write would apply them in order.
fn last_per_key<T>(items: &[T], key: impl Fn(&T) -> (i64, u32)) -> Vec<&T> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<&T> = items.iter().rev().filter(|w| seen.insert(key(w))).collect();
    out.reverse();
    out
}

impl MessageRows for PgTx<'_> {
    fn find_messages(&mut self, keys: &[(&str, &str)]) -> Result<Vec<Option<(i64, String)>>> {
        let accounts: Vec<&str> = keys.iter().map(|k| k.0).collect();
        let ids: Vec<&str> = keys.iter().map(|k| k.1).collect();
        let rows = self.c.query_planned(
            "SELECT k.ord, m.mseq, m.body_hash
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(account_id, id, ord)
             JOIN messages m ON m.account_id = k.account_id AND m.id = k.id",
            &[&accounts, &ids],
        )?;
        let mut out = vec![None; keys.len()];
        for r in &rows {
            let ord: i64 = get(r, 0)?;
            if let Some(slot) = usize::try_from(ord - 1).ok().and_then(|i| out.get_mut(i)) {
                *slot = Some((get(r, 1)?, get(r, 2)?));
            }
        }
        Ok(out)
    }

    fn insert_messages(&mut self, rows: &[MessageInsert<'_>], _now: Millis) -> Result<Vec<i64>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let n = rows.len();
        let (mut account, mut id, mut hash, mut text) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut prio, mut valid, mut sched, mut phone) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut sim, mut report, mut state, mut created, mut pool, mut parts) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut encrypted: Vec<bool> = Vec::with_capacity(n);
        let mut data_port: Vec<Option<i64>> = Vec::with_capacity(n);
        for row in rows {
            let m = row.message;
            account.push(m.account_id.as_str());
            id.push(m.id.as_str());
            hash.push(m.body_hash.as_str());
            text.push(m.text.as_str());
            prio.push(i64::from(m.priority));
            valid.push(m.valid_until);
            sched.push(m.schedule_at);
            phone.push(m.phone_id.as_deref());
            sim.push(big_opt(m.sim));
            report.push(m.delivery_report);
            state.push(row.state.as_str());
            created.push(m.created_at);
            pool.push(m.pool.as_deref());
            parts.push(big(row.parts));
            encrypted.push(m.encrypted);
            data_port.push(m.data_port.map(i64::from));
        }
        // Recipients name their message by (account, id): one statement inserts both and
        // returns the new mseqs, one round trip for the whole batch.
        let (mut r_account, mut r_id, mut r_idx, mut r_to, mut r_state) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            let m = row.message;
            for (idx, to) in m.to.iter().enumerate() {
                r_account.push(m.account_id.as_str());
                r_id.push(m.id.as_str());
                r_idx.push(i64::try_from(idx).expect("recipient count is bounded by validation"));
                r_to.push(to.as_str());
                r_state.push(row.recipient_state.as_str());
            }
        }
        let inserted = self.c.query(
            "WITH m AS (
                 INSERT INTO messages (account_id, id, body_hash, text, priority, valid_until,
                     schedule_at, phone_id, sim, delivery_report, state, created_at, updated_at,
                     pool, parts, encrypted, data_port)
                 SELECT a, i, h, t, p, v, s, ph, sm, d, st, c, c, pl, n, e, dp
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                             $6::bigint[], $7::bigint[], $8::text[], $9::bigint[], $10::bool[],
                             $11::text[], $12::bigint[], $13::text[], $14::bigint[],
                             $20::bool[], $21::bigint[])
                      WITH ORDINALITY AS u(a, i, h, t, p, v, s, ph, sm, d, st, c, pl, n, e, dp, ord)
                 ORDER BY ord
                 RETURNING mseq, account_id, id, created_at, valid_until),
             r AS (
                 INSERT INTO recipients (mseq, idx, to_number, state, updated_at, created_at,
                     valid_until)
                 SELECT m.mseq, u.idx, u.to_number, u.state, m.created_at, m.created_at,
                     m.valid_until
                 FROM unnest($15::text[], $16::text[], $17::bigint[], $18::text[], $19::text[])
                      AS u(account_id, id, idx, to_number, state)
                 JOIN m ON m.account_id = u.account_id AND m.id = u.id)
             SELECT mseq, account_id, id FROM m",
            &[
                &account, &id, &hash, &text, &prio, &valid, &sched, &phone, &sim, &report, &state,
                &created, &pool, &parts, &r_account, &r_id, &r_idx, &r_to, &r_state, &encrypted,
                &data_port,
            ],
        )?;
        let mut by_key: HashMap<(&str, &str), i64> = HashMap::with_capacity(n);
        for r in &inserted {
            let a: &str = get(r, 1)?;
            let i: &str = get(r, 2)?;
            by_key.insert((a, i), get(r, 0)?);
        }
        let mseqs = rows
            .iter()
            .map(|row| {
                let m = row.message;
                by_key
                    .get(&(m.account_id.as_str(), m.id.as_str()))
                    .copied()
                    .ok_or_else(|| {
                        StoreError::Postgres("an inserted message was not returned".into())
                    })
            })
            .collect::<Result<Vec<i64>>>()?;
        Ok(mseqs)
    }

    fn message_by_mseq(&mut self, mseq: i64) -> Result<Option<MessageView>> {
        let row = self.c.query_opt(
            "SELECT mseq, id, state, priority, valid_until, schedule_at, phone_id, sim,
                    delivery_report, created_at, updated_at, encrypted, data_port, text,
                    suppression_override, overrode_suppression
             FROM messages WHERE mseq = $1",
            &[&mseq],
        )?;
        one_view(self, row)
    }

    fn message_by_id(&mut self, account: &str, id: &str) -> Result<Option<MessageView>> {
        let row = self.c.query_opt(
            "SELECT mseq, id, state, priority, valid_until, schedule_at, phone_id, sim,
                    delivery_report, created_at, updated_at, encrypted, data_port, text,
                    suppression_override, overrode_suppression
             FROM messages WHERE account_id = $1 AND id = $2",
            &[&account, &id],
        )?;
        one_view(self, row)
    }

    fn list_messages(&mut self, account: &str, f: &MessageFilter) -> Result<Vec<MessageView>> {
        let state = f.state.map(MessageStatus::as_str);
        let rows = self.c.query(
            "SELECT mseq, id, state, priority, valid_until, schedule_at, phone_id, sim,
                    delivery_report, created_at, updated_at, encrypted, data_port, text,
                    suppression_override, overrode_suppression
             FROM messages
             WHERE account_id = $1 AND ($2::text IS NULL OR state = $2::text)
               AND ($3::bigint IS NULL OR created_at >= $3::bigint) AND mseq > $4
               AND ($6::text IS NULL OR EXISTS (SELECT 1 FROM recipients r
                                               WHERE r.mseq = messages.mseq
                                                 AND r.to_number = $6::text))
             ORDER BY mseq LIMIT $5",
            &[
                &account,
                &state,
                &f.since,
                &f.after_cursor.unwrap_or(0),
                &big(f.limit),
                &f.to,
            ],
        )?;
        let mut views = rows.iter().map(message_row).collect::<Result<Vec<_>>>()?;
        load_recipients(self, &mut views)?;
        Ok(views)
    }

    fn recipient_states(&mut self, mseq: i64) -> Result<Vec<RecipientStatus>> {
        self.c
            .query(
                "SELECT state FROM recipients WHERE mseq = $1 ORDER BY idx",
                &[&mseq],
            )?
            .iter()
            .map(|r| get_rstatus(r, 0))
            .collect()
    }

    fn set_message_state(&mut self, mseq: i64, state: MessageStatus, now: Millis) -> Result<()> {
        self.c.execute(
            "UPDATE messages SET state = $2, updated_at = $3 WHERE mseq = $1 AND state != $2",
            &[&mseq, &state.as_str(), &now],
        )?;
        Ok(())
    }

    fn recipient_for_update(
        &mut self,
        account: &str,
        message_id: &str,
        idx: u32,
    ) -> Result<Option<(i64, Recipient)>> {
        self.c
            .query_opt(
                "SELECT r.mseq, r.idx, r.state, r.phone_id, r.sim, r.accepted, r.parts_sent,
                        r.tried, m.phone_id, m.sim, m.pool
                 FROM recipients r JOIN messages m USING (mseq)
                 WHERE m.account_id = $1 AND m.id = $2 AND r.idx = $3",
                &[&account, &message_id, &big(idx)],
            )?
            .as_ref()
            .map(|r| recipient_row(r).map(|(mseq, _, rcpt)| (mseq, rcpt)))
            .transpose()
    }

    fn set_recipient_states(&mut self, writes: &[StateWrite<'_>], now: Millis) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let writes = last_per_key(writes, |w| (w.mseq, w.idx));
        let mseq: Vec<i64> = writes.iter().map(|w| w.mseq).collect();
        let idx: Vec<i64> = writes.iter().map(|w| big(w.idx)).collect();
        let state: Vec<&str> = writes.iter().map(|w| w.state.as_str()).collect();
        let error: Vec<Option<&str>> = writes.iter().map(|w| w.error).collect();
        self.c.execute(
            "UPDATE recipients r SET state = u.state, error = coalesce(u.error, r.error),
                 updated_at = $5
             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[])
                  AS u(mseq, idx, state, error)
             WHERE r.mseq = u.mseq AND r.idx = u.idx",
            &[&mseq, &idx, &state, &error, &now],
        )?;
        Ok(())
    }

    fn record_report(&mut self, w: &ReportWrite<'_>, now: Millis) -> Result<()> {
        self.c.execute(
            "UPDATE recipients SET state = $3, accepted = true, parts = $4, parts_sent = $5,
                 parts_delivered = $6, error = coalesce($7, error), code = coalesce($8, code),
                 sim = coalesce($9, sim), updated_at = $10
             WHERE mseq = $1 AND idx = $2",
            &[
                &w.mseq,
                &big(w.idx),
                &w.state.as_str(),
                &big(w.parts),
                &big(w.parts_sent),
                &big(w.parts_delivered),
                &w.error,
                &big_opt(w.code),
                &big_opt(w.sim),
                &now,
            ],
        )?;
        Ok(())
    }

    fn set_tried(&mut self, mseq: i64, idx: u32, tried: &[SimKey]) -> Result<()> {
        self.c.execute(
            "UPDATE recipients SET tried = $3 WHERE mseq = $1 AND idx = $2",
            &[&mseq, &big(idx), &tried_json(tried)],
        )?;
        Ok(())
    }

    fn unroute_recipient(
        &mut self,
        mseq: i64,
        idx: u32,
        state: RecipientStatus,
        error: Option<&str>,
        code: Option<i32>,
        now: Millis,
    ) -> Result<()> {
        self.c.execute(
            "UPDATE recipients SET phone_id = NULL, sim = NULL, state = $3, accepted = false,
                 error = $4, code = $5, updated_at = $6
             WHERE mseq = $1 AND idx = $2",
            &[
                &mseq,
                &big(idx),
                &state.as_str(),
                &error,
                &big_opt(code),
                &now,
            ],
        )?;
        Ok(())
    }

    fn release_recipients(&mut self, keys: &[(i64, u32)], now: Millis) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mseq: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let idx: Vec<i64> = keys.iter().map(|k| big(k.1)).collect();
        self.c.execute(
            "UPDATE recipients r SET phone_id = NULL, updated_at = $3
             FROM unnest($1::bigint[], $2::bigint[]) AS u(mseq, idx)
             WHERE r.mseq = u.mseq AND r.idx = u.idx",
            &[&mseq, &idx, &now],
        )?;
        Ok(())
    }

    fn route_recipients(
        &mut self,
        routes: &[Assignment],
        now: Millis,
    ) -> Result<Vec<Option<String>>> {
        if routes.is_empty() {
            return Ok(Vec::new());
        }
        // A recipient named twice is routed by its first assignment (the second would find
        // it routed already).
        let mut seen = std::collections::HashSet::new();
        let firsts: Vec<(usize, &Assignment)> = routes
            .iter()
            .enumerate()
            .filter(|(_, a)| seen.insert((a.mseq, a.idx)))
            .collect();
        let ord: Vec<i64> = firsts.iter().map(|(i, _)| *i as i64).collect();
        let mseq: Vec<i64> = firsts.iter().map(|(_, a)| a.mseq).collect();
        let idx: Vec<i64> = firsts.iter().map(|(_, a)| big(a.idx)).collect();
        let phone: Vec<&str> = firsts.iter().map(|(_, a)| a.phone.as_str()).collect();
        let sim: Vec<Option<i64>> = firsts.iter().map(|(_, a)| big_opt(a.sim)).collect();
        let rows = self.c.query(
            "UPDATE recipients r SET phone_id = u.phone, sim = coalesce(u.sim, r.sim),
                 updated_at = $6, error = NULL, code = NULL
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[])
                  AS u(ord, mseq, idx, phone, sim)
             WHERE r.mseq = u.mseq AND r.idx = u.idx AND r.phone_id IS NULL
               AND r.state = 'pending'
             RETURNING u.ord, r.to_number",
            &[&ord, &mseq, &idx, &phone, &sim, &now],
        )?;
        let mut out = vec![None; routes.len()];
        for r in &rows {
            let i: i64 = get(r, 0)?;
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                *slot = Some(get(r, 1)?);
            }
        }
        Ok(out)
    }

    fn recipient_event(&mut self, mseq: i64, idx: u32) -> Result<RecipientEventRow> {
        let r = self.c.query_one(
            "SELECT m.id, r.to_number, r.state, r.phone_id, r.sim, r.parts, r.error, r.code
             FROM recipients r JOIN messages m USING (mseq) WHERE r.mseq = $1 AND r.idx = $2",
            &[&mseq, &big(idx)],
        )?;
        Ok(RecipientEventRow {
            message_id: get(&r, 0)?,
            to: get(&r, 1)?,
            state: get_rstatus(&r, 2)?,
            phone: get(&r, 3)?,
            sim: get_opt_i32(&r, 4)?,
            parts: get_u32(&r, 5)?,
            error: get(&r, 6)?,
            code: get_opt_i32(&r, 7)?,
        })
    }

    fn unrouted_past_validity(
        &mut self,
        now: Millis,
        default_validity: Millis,
        limit: u32,
    ) -> Result<Vec<DeadlineRow>> {
        self.c
            .query_planned(
                super::expiry::END_UNROUTED_SQL,
                &[&now, &now.saturating_sub(default_validity), &big(limit)],
            )?
            .iter()
            .map(deadline_row)
            .collect()
    }

    fn routed_silent(
        &mut self,
        now: Millis,
        default_validity: Millis,
        silence: Millis,
        limit: u32,
    ) -> Result<Vec<DeadlineRow>> {
        self.c
            .query(
                "SELECT r.mseq, r.idx, m.account_id, r.state, m.valid_until, m.created_at,
                        r.updated_at
                 FROM recipients r JOIN messages m USING (mseq)
                 WHERE r.phone_id IS NOT NULL
                   AND r.state IN ('pending', 'queued', 'sending', 'sent', 'cancelling')
                   AND r.updated_at < $1::bigint - $3::bigint
                   AND greatest(coalesce(m.valid_until, m.created_at + $2), r.updated_at) + $3
                       < $1
                 LIMIT $4",
                &[&now, &default_validity, &silence, &big(limit)],
            )?
            .iter()
            .map(deadline_row)
            .collect()
    }

    fn insert_incoming(
        &mut self,
        account: &str,
        phone: &str,
        sms: &IncomingSms,
        now: Millis,
    ) -> Result<bool> {
        let n = self.c.execute(
            "INSERT INTO inbox (account_id, phone_id, sms_id, sim, from_number, text, sent_at,
                 received_at, stored_at, encrypted, data_port)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
            &[
                &account,
                &phone,
                &sms.id,
                &big_opt(sms.sim),
                &sms.from,
                &sms.text,
                &sms.sent_at,
                &sms.received_at,
                &now,
                &sms.encrypted,
                &sms.data_port.map(i64::from),
            ],
        )?;
        Ok(n > 0)
    }

    fn list_inbox(&mut self, account: &str, f: &InboxFilter) -> Result<Vec<InboxItem>> {
        let params: [&(dyn ::postgres::types::ToSql + Sync); 6] = [
            &account,
            &f.from,
            &f.contains,
            &f.since,
            &f.after_cursor,
            &big(f.limit),
        ];
        let rows = if f.newest_first {
            self.c.query(
                "SELECT rowid_, sms_id, phone_id, sim, from_number, text, sent_at, received_at,
                        stored_at, encrypted, data_port
                 FROM inbox
                 WHERE account_id = $1 AND ($2::text IS NULL OR from_number = $2::text)
                   AND ($3::text IS NULL OR strpos(text, $3::text) > 0)
                   AND ($4::bigint IS NULL OR stored_at >= $4::bigint)
                   AND ($5::bigint IS NULL OR rowid_ > $5::bigint)
                 ORDER BY rowid_ DESC LIMIT $6",
                &params,
            )?
        } else {
            self.c.query(
                "SELECT rowid_, sms_id, phone_id, sim, from_number, text, sent_at, received_at,
                        stored_at, encrypted, data_port
                 FROM inbox
                 WHERE account_id = $1 AND ($2::text IS NULL OR from_number = $2::text)
                   AND ($3::text IS NULL OR strpos(text, $3::text) > 0)
                   AND ($4::bigint IS NULL OR stored_at >= $4::bigint)
                   AND ($5::bigint IS NULL OR rowid_ > $5::bigint)
                 ORDER BY rowid_ ASC LIMIT $6",
                &params,
            )?
        };
        rows.iter().map(inbox_row).collect()
    }
}
