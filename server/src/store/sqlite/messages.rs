//! SQL for messages, recipients, deadlines and the inbox.

use rusqlite::{Connection, OptionalExtension, Row, params};
use simrelay_protocol::IncomingSms;

use super::{SqliteTx, parse_tried, tried_json};
use crate::domain::{MessageStatus, Recipient, RecipientStatus, Target};
use crate::pool_router::SimKey;
use crate::store::tx::{
    DeadlineRow, MessageInsert, MessageRows, RecipientEventRow, ReportWrite, StateWrite,
};
use crate::store::{
    Assignment, InboxFilter, InboxItem, MessageFilter, MessageView, Millis, RecipientView, Result,
    SuppressionOverride,
};

pub(super) const MESSAGE_COLUMNS: &str =
    "mseq, id, state, priority, valid_until, schedule_at, phone_id, sim,
    delivery_report, created_at, updated_at, encrypted, data_port, text, suppression_override,
    overrode_suppression";

pub(super) fn message_row(r: &Row<'_>) -> rusqlite::Result<MessageView> {
    Ok(MessageView {
        cursor: r.get(0)?,
        id: r.get(1)?,
        state: r.get(2)?,
        priority: r.get(3)?,
        valid_until: r.get(4)?,
        schedule_at: r.get(5)?,
        phone: r.get(6)?,
        sim: r.get(7)?,
        delivery_report: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        encrypted: r.get(11)?,
        data_port: r.get(12)?,
        text: r.get(13)?,
        recipients: Vec::new(),
        suppression_override: r
            .get::<_, Option<String>>(14)?
            .as_deref()
            .and_then(SuppressionOverride::parse),
        overrode_suppression: r.get(15)?,
    })
}

/// The inbox columns, in the order [`inbox_row`] reads them.
pub(super) const INBOX_COLUMNS: &str = "rowid_, sms_id, phone_id, sim, from_number, text, sent_at,
    received_at, stored_at, encrypted, data_port";

pub(super) fn inbox_row(r: &Row<'_>) -> rusqlite::Result<InboxItem> {
    Ok(InboxItem {
        cursor: r.get(0)?,
        id: r.get(1)?,
        phone: r.get(2)?,
        sim: r.get(3)?,
        from: r.get(4)?,
        text: r.get(5)?,
        sent_at: r.get(6)?,
        received_at: r.get(7)?,
        stored_at: r.get(8)?,
        encrypted: r.get(9)?,
        data_port: r.get(10)?,
    })
}

pub(super) fn load_recipients(c: &Connection, view: &mut MessageView) -> Result<()> {
    let mut st = c.prepare_cached(
        "SELECT idx, to_number, state, parts, parts_sent, parts_delivered, error, code,
                phone_id, sim, updated_at
         FROM recipients WHERE mseq = ?1 ORDER BY idx",
    )?;
    view.recipients = st
        .query_map([view.cursor], |r| {
            Ok(RecipientView {
                idx: r.get(0)?,
                to: r.get(1)?,
                state: r.get(2)?,
                parts: r.get(3)?,
                parts_sent: r.get(4)?,
                parts_delivered: r.get(5)?,
                error: r.get(6)?,
                code: r.get(7)?,
                phone: r.get(8)?,
                sim: r.get(9)?,
                updated_at: r.get(10)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(())
}

/// The columns [`recipient_row`] reads, from `recipients r JOIN messages m`.
pub(super) const RECIPIENT_COLUMNS: &str = "r.mseq, r.idx, r.state, r.phone_id, r.sim,
    r.accepted, r.parts_sent, r.tried, m.phone_id, m.sim, m.pool";

/// (mseq, idx, recipient) of a row of [`RECIPIENT_COLUMNS`].
pub(super) fn recipient_row(r: &Row<'_>) -> rusqlite::Result<(i64, u32, Recipient)> {
    let tried: Option<String> = r.get(7)?;
    Ok((
        r.get(0)?,
        r.get(1)?,
        Recipient {
            status: r.get(2)?,
            phone: r.get(3)?,
            sim: r.get(4)?,
            accepted: r.get(5)?,
            parts_sent: r.get(6)?,
            tried: parse_tried(tried.as_deref()),
            target: Target {
                phone: r.get(8)?,
                sim: r.get(9)?,
                pool: r.get(10)?,
            },
        },
    ))
}

pub(crate) const END_SILENT_SQL: &str = "SELECT r.mseq, r.idx, m.account_id, r.state,
         m.valid_until, m.created_at, r.updated_at
     FROM recipients r INDEXED BY recipients_waiting CROSS JOIN messages m USING (mseq)
     WHERE r.phone_id IS NOT NULL
       AND r.state IN ('pending', 'queued', 'sending', 'sent', 'cancelling')
       AND r.updated_at < ?1 - ?3
       AND max(coalesce(m.valid_until, m.created_at + ?2), r.updated_at) + ?3 < ?1
       LIMIT ?4";

fn deadline_row(r: &Row<'_>) -> rusqlite::Result<DeadlineRow> {
    Ok(DeadlineRow {
        mseq: r.get(0)?,
        idx: r.get(1)?,
        account_id: r.get(2)?,
        status: r.get(3)?,
        valid_until: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

fn load(c: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Option<MessageView>> {
    let Some(mut view) = c
        .prepare_cached(sql)?
        .query_row(args, message_row)
        .optional()?
    else {
        return Ok(None);
    };
    load_recipients(c, &mut view)?;
    Ok(Some(view))
}

impl MessageRows for SqliteTx<'_> {
    fn find_messages(&mut self, keys: &[(&str, &str)]) -> Result<Vec<Option<(i64, String)>>> {
        let mut st = self.c.prepare_cached(
            "SELECT mseq, body_hash FROM messages WHERE account_id = ?1 AND id = ?2",
        )?;
        let mut out = Vec::with_capacity(keys.len());
        for (account, id) in keys {
            out.push(
                st.query_row(params![account, id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
            );
        }
        Ok(out)
    }

    fn insert_messages(&mut self, rows: &[MessageInsert<'_>], now: Millis) -> Result<Vec<i64>> {
        let _ = now;
        let mut msg = self.c.prepare_cached(
            "INSERT INTO messages (account_id, id, body_hash, text, priority, valid_until,
                 schedule_at, phone_id, sim, delivery_report, state, created_at, updated_at, pool,
                 parts, encrypted, data_port)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16)",
        )?;
        let mut rcpt = self.c.prepare_cached(
            "INSERT INTO recipients (mseq, idx, to_number, state, updated_at, created_at,
                 valid_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let m = row.message;
            msg.execute(params![
                m.account_id,
                m.id,
                m.body_hash,
                m.text,
                m.priority,
                m.valid_until,
                m.schedule_at,
                m.phone_id,
                m.sim,
                m.delivery_report,
                row.state,
                m.created_at,
                m.pool,
                row.parts,
                m.encrypted,
                m.data_port
            ])?;
            let mseq = self.c.last_insert_rowid();
            for (idx, to) in m.to.iter().enumerate() {
                let idx = u32::try_from(idx).expect("recipient count is bounded by validation");
                rcpt.execute(params![
                    mseq,
                    idx,
                    to,
                    row.recipient_state,
                    m.created_at,
                    m.valid_until
                ])?;
            }
            out.push(mseq);
        }
        Ok(out)
    }

    fn message_by_mseq(&mut self, mseq: i64) -> Result<Option<MessageView>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE mseq = ?1");
        load(self.c, &sql, &[&mseq])
    }

    fn message_by_id(&mut self, account: &str, id: &str) -> Result<Option<MessageView>> {
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE account_id = ?1 AND id = ?2");
        load(self.c, &sql, &[&account, &id])
    }

    fn list_messages(&mut self, account: &str, f: &MessageFilter) -> Result<Vec<MessageView>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE account_id = ?1 AND (?2 IS NULL OR state = ?2)
               AND (?3 IS NULL OR created_at >= ?3) AND mseq > ?4
               AND (?6 IS NULL OR EXISTS (SELECT 1 FROM recipients r
                                          WHERE r.mseq = messages.mseq AND r.to_number = ?6))
             ORDER BY mseq LIMIT ?5"
        );
        let mut views: Vec<MessageView> = self
            .c
            .prepare_cached(&sql)?
            .query_map(
                params![
                    account,
                    f.state,
                    f.since,
                    f.after_cursor.unwrap_or(0),
                    f.limit,
                    f.to
                ],
                message_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        for v in &mut views {
            load_recipients(self.c, v)?;
        }
        Ok(views)
    }

    fn recipient_states(&mut self, mseq: i64) -> Result<Vec<RecipientStatus>> {
        Ok(self
            .c
            .prepare_cached("SELECT state FROM recipients WHERE mseq = ?1")?
            .query_map([mseq], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn set_message_state(&mut self, mseq: i64, state: MessageStatus, now: Millis) -> Result<()> {
        self.c
            .prepare_cached(
                "UPDATE messages SET state = ?2, updated_at = ?3 WHERE mseq = ?1 AND state != ?2",
            )?
            .execute(params![mseq, state, now])?;
        Ok(())
    }

    fn recipient_for_update(
        &mut self,
        account: &str,
        message_id: &str,
        idx: u32,
    ) -> Result<Option<(i64, Recipient)>> {
        let sql = format!(
            "SELECT {RECIPIENT_COLUMNS} FROM recipients r JOIN messages m USING (mseq)
             WHERE m.account_id = ?1 AND m.id = ?2 AND r.idx = ?3"
        );
        Ok(self
            .c
            .prepare_cached(&sql)?
            .query_row(params![account, message_id, idx], recipient_row)
            .optional()?
            .map(|(mseq, _, r)| (mseq, r)))
    }

    fn set_recipient_states(&mut self, writes: &[StateWrite<'_>], now: Millis) -> Result<()> {
        let mut st = self.c.prepare_cached(
            "UPDATE recipients SET state = ?3, error = coalesce(?4, error), updated_at = ?5
             WHERE mseq = ?1 AND idx = ?2",
        )?;
        for w in writes {
            st.execute(params![w.mseq, w.idx, w.state, w.error, now])?;
        }
        Ok(())
    }

    fn record_report(&mut self, w: &ReportWrite<'_>, now: Millis) -> Result<()> {
        self.c
            .prepare_cached(
                "UPDATE recipients SET state = ?3, accepted = 1, parts = ?4, parts_sent = ?5,
                     parts_delivered = ?6, error = coalesce(?7, error), code = coalesce(?8, code),
                     sim = coalesce(?9, sim), updated_at = ?10
                 WHERE mseq = ?1 AND idx = ?2",
            )?
            .execute(params![
                w.mseq,
                w.idx,
                w.state,
                w.parts,
                w.parts_sent,
                w.parts_delivered,
                w.error,
                w.code,
                w.sim,
                now
            ])?;
        Ok(())
    }

    fn set_tried(&mut self, mseq: i64, idx: u32, tried: &[SimKey]) -> Result<()> {
        self.c
            .prepare_cached("UPDATE recipients SET tried = ?3 WHERE mseq = ?1 AND idx = ?2")?
            .execute(params![mseq, idx, tried_json(tried)])?;
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
        self.c
            .prepare_cached(
                "UPDATE recipients SET phone_id = NULL, sim = NULL, state = ?3, accepted = 0,
                     error = ?4, code = ?5, updated_at = ?6
                 WHERE mseq = ?1 AND idx = ?2",
            )?
            .execute(params![mseq, idx, state, error, code, now])?;
        Ok(())
    }

    fn release_recipients(&mut self, keys: &[(i64, u32)], now: Millis) -> Result<()> {
        let mut st = self.c.prepare_cached(
            "UPDATE recipients SET phone_id = NULL, updated_at = ?3 WHERE mseq = ?1 AND idx = ?2",
        )?;
        for (mseq, idx) in keys {
            st.execute(params![mseq, idx, now])?;
        }
        Ok(())
    }

    fn route_recipients(
        &mut self,
        routes: &[Assignment],
        now: Millis,
    ) -> Result<Vec<Option<String>>> {
        let mut st = self.c.prepare_cached(
            "UPDATE recipients SET phone_id = ?3, sim = coalesce(?5, sim), updated_at = ?4,
                 error = NULL, code = NULL
             WHERE mseq = ?1 AND idx = ?2 AND phone_id IS NULL AND state = 'pending'
             RETURNING to_number",
        )?;
        let mut out = Vec::with_capacity(routes.len());
        for a in routes {
            out.push(
                st.query_row(params![a.mseq, a.idx, a.phone, now, a.sim], |r| r.get(0))
                    .optional()?,
            );
        }
        Ok(out)
    }

    fn recipient_event(&mut self, mseq: i64, idx: u32) -> Result<RecipientEventRow> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT m.id, r.to_number, r.state, r.phone_id, r.sim, r.parts, r.error, r.code
                 FROM recipients r JOIN messages m USING (mseq) WHERE r.mseq = ?1 AND r.idx = ?2",
            )?
            .query_row(params![mseq, idx], |r| {
                Ok(RecipientEventRow {
                    message_id: r.get(0)?,
                    to: r.get(1)?,
                    state: r.get(2)?,
                    phone: r.get(3)?,
                    sim: r.get(4)?,
                    parts: r.get(5)?,
                    error: r.get(6)?,
                    code: r.get(7)?,
                })
            })?)
    }

    fn unrouted_past_validity(
        &mut self,
        now: Millis,
        default_validity: Millis,
        limit: u32,
    ) -> Result<Vec<DeadlineRow>> {
        Ok(self
            .c
            .prepare_cached(super::expiry::END_UNROUTED_SQL)?
            .query_map(
                params![now, now.saturating_sub(default_validity), limit],
                deadline_row,
            )?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn routed_silent(
        &mut self,
        now: Millis,
        default_validity: Millis,
        silence: Millis,
        limit: u32,
    ) -> Result<Vec<DeadlineRow>> {
        Ok(self
            .c
            .prepare_cached(END_SILENT_SQL)?
            .query_map(params![now, default_validity, silence, limit], deadline_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn insert_incoming(
        &mut self,
        account: &str,
        phone: &str,
        sms: &IncomingSms,
        now: Millis,
    ) -> Result<bool> {
        let n = self
            .c
            .prepare_cached(
                "INSERT OR IGNORE INTO inbox (account_id, phone_id, sms_id, sim, from_number,
                     text, sent_at, received_at, stored_at, encrypted, data_port)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                account,
                phone,
                sms.id,
                sms.sim,
                sms.from,
                sms.text,
                sms.sent_at,
                sms.received_at,
                now,
                sms.encrypted,
                sms.data_port
            ])?;
        Ok(n > 0)
    }

    fn list_inbox(&mut self, account: &str, f: &InboxFilter) -> Result<Vec<InboxItem>> {
        let order = if f.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {INBOX_COLUMNS}
             FROM inbox
             WHERE account_id = ?1 AND (?2 IS NULL OR from_number = ?2)
               AND (?3 IS NULL OR instr(text, ?3) > 0) AND (?4 IS NULL OR stored_at >= ?4)
               AND (?5 IS NULL OR rowid_ > ?5)
             ORDER BY rowid_ {order} LIMIT ?6"
        );
        let items = self
            .c
            .prepare_cached(&sql)?
            .query_map(
                params![
                    account,
                    f.from,
                    f.contains,
                    f.since,
                    f.after_cursor,
                    f.limit
                ],
                inbox_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(items)
    }
}
