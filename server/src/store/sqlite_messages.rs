//! SQL for messages, recipients, cancellation and the inbox.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use simrelay_protocol::RelayFrame;

use super::sqlite_phones::insert_frame;
use super::sqlite_webhooks::recipient_webhook;
use super::{
    CancelOutcome, CreateOutcome, InboxFilter, InboxItem, MessageFilter, MessageView, Millis,
    NewMessage, RecipientView, Result,
};

/// The state of a message from the states of its recipients.
///
/// Anything still waiting on the relay wins (`pending`, then `cancelling`), then anything in
/// progress on a phone (`queued`, `sending`); when all recipients agree, that state; otherwise
/// `sent` if any recipient reached the network, else `failed`.
pub fn aggregate<'a>(states: impl IntoIterator<Item = &'a str>) -> &'static str {
    let all: Vec<&str> = states.into_iter().collect();
    for s in ["pending", "cancelling", "queued", "sending"] {
        if all.contains(&s) {
            return s;
        }
    }
    let known = [
        "sent",
        "delivered",
        "failed",
        "expired",
        "cancelled",
        "unknown",
    ];
    if let Some(first) = all.first()
        && all.iter().all(|s| s == first)
        && let Some(k) = known.iter().find(|k| *k == first)
    {
        return k;
    }
    if all
        .iter()
        .any(|s| matches!(*s, "sent" | "delivered" | "unknown"))
    {
        "sent"
    } else {
        "failed"
    }
}

/// Recomputes and stores a message's state from its recipients.
pub fn recompute_state(tx: &Transaction<'_>, mseq: i64, now: Millis) -> Result<()> {
    let states: Vec<String> = tx
        .prepare_cached("SELECT state FROM recipients WHERE mseq = ?1")?
        .query_map([mseq], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let state = aggregate(states.iter().map(String::as_str));
    tx.prepare_cached(
        "UPDATE messages SET state = ?2, updated_at = ?3 WHERE mseq = ?1 AND state != ?2",
    )?
    .execute(params![mseq, state, now])?;
    Ok(())
}

pub fn create_message(tx: &Transaction<'_>, m: &NewMessage) -> Result<CreateOutcome> {
    let existing: Option<(i64, String)> = tx
        .prepare_cached("SELECT mseq, body_hash FROM messages WHERE account_id = ?1 AND id = ?2")?
        .query_row(params![m.account_id, m.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((mseq, hash)) = existing {
        if hash != m.body_hash {
            return Ok(CreateOutcome::Conflict);
        }
        let view = load_by_mseq(tx, mseq)?.expect("the row was just read in this transaction");
        return Ok(CreateOutcome::Existing(view));
    }
    if let Some(phone) = &m.phone_id {
        let known: Option<i64> = tx
            .prepare_cached(
                "SELECT 1 FROM phones WHERE id = ?1 AND account_id = ?2 AND removed_at IS NULL",
            )?
            .query_row(params![phone, m.account_id], |r| r.get(0))
            .optional()?;
        if known.is_none() {
            return Ok(CreateOutcome::UnknownPhone);
        }
    }
    if let Some(pool) = &m.pool
        && !super::sqlite_pools::pool_exists(tx, &m.account_id, pool)?
    {
        return Ok(CreateOutcome::UnknownPool);
    }
    tx.prepare_cached(
        "INSERT INTO messages (account_id, id, body_hash, text, priority, valid_until,
             schedule_at, phone_id, sim, delivery_report, state, created_at, updated_at, pool)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?11, ?12)",
    )?
    .execute(params![
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
        m.created_at,
        m.pool
    ])?;
    let mseq = tx.last_insert_rowid();
    let mut ins = tx.prepare_cached(
        "INSERT INTO recipients (mseq, idx, to_number, state, updated_at)
         VALUES (?1, ?2, ?3, 'pending', ?4)",
    )?;
    let mut recipients = Vec::with_capacity(m.to.len());
    for (idx, to) in m.to.iter().enumerate() {
        let idx = u32::try_from(idx).expect("recipient count is bounded by validation");
        ins.execute(params![mseq, idx, to, m.created_at])?;
        recipients.push(RecipientView {
            idx,
            to: to.clone(),
            state: "pending".into(),
            parts: 0,
            parts_sent: 0,
            parts_delivered: 0,
            error: None,
            code: None,
            phone: None,
            sim: None,
            updated_at: m.created_at,
        });
    }
    Ok(CreateOutcome::Created(MessageView {
        cursor: mseq,
        id: m.id.clone(),
        state: "pending".into(),
        priority: m.priority,
        valid_until: m.valid_until,
        schedule_at: m.schedule_at,
        phone: m.phone_id.clone(),
        sim: m.sim,
        delivery_report: m.delivery_report,
        recipients,
        created_at: m.created_at,
        updated_at: m.created_at,
    }))
}

const MESSAGE_COLUMNS: &str = "mseq, id, state, priority, valid_until, schedule_at, phone_id, sim,
    delivery_report, created_at, updated_at";

fn message_row(r: &Row<'_>) -> rusqlite::Result<MessageView> {
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
        recipients: Vec::new(),
    })
}

fn load_recipients(c: &Connection, view: &mut MessageView) -> Result<()> {
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

pub fn load_by_mseq(c: &Connection, mseq: i64) -> Result<Option<MessageView>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE mseq = ?1");
    let Some(mut view) = c
        .prepare_cached(&sql)?
        .query_row([mseq], message_row)
        .optional()?
    else {
        return Ok(None);
    };
    load_recipients(c, &mut view)?;
    Ok(Some(view))
}

pub fn get_message(c: &Connection, account: &str, id: &str) -> Result<Option<MessageView>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE account_id = ?1 AND id = ?2");
    let Some(mut view) = c
        .prepare_cached(&sql)?
        .query_row(params![account, id], message_row)
        .optional()?
    else {
        return Ok(None);
    };
    load_recipients(c, &mut view)?;
    Ok(Some(view))
}

pub fn list_messages(c: &Connection, account: &str, f: &MessageFilter) -> Result<Vec<MessageView>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages
         WHERE account_id = ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR created_at >= ?3)
           AND mseq > ?4
         ORDER BY mseq LIMIT ?5"
    );
    let mut views: Vec<MessageView> = c
        .prepare_cached(&sql)?
        .query_map(
            params![
                account,
                f.state,
                f.since,
                f.after_cursor.unwrap_or(0),
                f.limit
            ],
            message_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    for v in &mut views {
        load_recipients(c, v)?;
    }
    Ok(views)
}

pub fn cancel_message(
    tx: &Transaction<'_>,
    account: &str,
    id: &str,
    now: Millis,
) -> Result<CancelOutcome> {
    let Some(mseq): Option<i64> = tx
        .query_row(
            "SELECT mseq FROM messages WHERE account_id = ?1 AND id = ?2",
            params![account, id],
            |r| r.get(0),
        )
        .optional()?
    else {
        return Ok(CancelOutcome::NotFound);
    };
    let local = tx.execute(
        "UPDATE recipients SET state = 'cancelled', error = 'cancelled', updated_at = ?2
         WHERE mseq = ?1 AND phone_id IS NULL AND state = 'pending'",
        params![mseq, now],
    )?;
    let phones: Vec<String> = tx
        .prepare(
            "SELECT DISTINCT phone_id FROM recipients
             WHERE mseq = ?1 AND phone_id IS NOT NULL AND state IN ('pending', 'queued')",
        )?
        .query_map([mseq], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    tx.execute(
        "UPDATE recipients SET state = 'cancelling', updated_at = ?2
         WHERE mseq = ?1 AND phone_id IS NOT NULL AND state IN ('pending', 'queued')",
        params![mseq, now],
    )?;
    for phone in &phones {
        insert_frame(tx, phone, now, |seq| RelayFrame::Cancel {
            seq,
            message_id: id.to_string(),
            recipients: None,
        })?;
    }
    recompute_state(tx, mseq, now)?;
    let view = load_by_mseq(tx, mseq)?.expect("the message exists in this transaction");
    if local == 0 && phones.is_empty() {
        return Ok(CancelOutcome::NotCancellable(view));
    }
    Ok(CancelOutcome::Cancelled { view, phones })
}

pub fn expire_unrouted(tx: &Transaction<'_>, now: Millis, default_validity: Millis) -> Result<u32> {
    let rows: Vec<(i64, u32, String)> = tx
        .prepare_cached(
            "SELECT r.mseq, r.idx, m.account_id FROM recipients r JOIN messages m USING (mseq)
             WHERE r.phone_id IS NULL AND r.state = 'pending'
               AND coalesce(m.valid_until, m.created_at + ?2) < ?1 LIMIT 10000",
        )?
        .query_map([now, default_validity], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (mseq, idx, account) in &rows {
        tx.execute(
            "UPDATE recipients SET state = 'expired', error = 'valid_until_passed', updated_at = ?3
             WHERE mseq = ?1 AND idx = ?2",
            params![mseq, idx, now],
        )?;
        recompute_state(tx, *mseq, now)?;
        recipient_webhook(tx, account, *mseq, *idx, "expired", now)?;
    }
    let silent = end_silent(tx, now, default_validity)?;
    Ok(u32::try_from(rows.len())
        .unwrap_or(u32::MAX)
        .saturating_add(silent))
}

/// How long after a routed recipient's validity (or its last change, if later) the relay
/// still waits for its phone: longer than every deadline the phone keeps itself (10 min for a
/// sent result, 78 h for delivery reports), so a phone that is only offline for a while ends
/// the recipient itself and reports it.
pub const PHONE_SILENCE_MS: Millis = 80 * 3_600_000;

pub(crate) const END_SILENT_SQL: &str = "SELECT r.mseq, r.idx, m.account_id
     FROM recipients r INDEXED BY recipients_waiting CROSS JOIN messages m USING (mseq)
     WHERE r.phone_id IS NOT NULL
       AND r.state IN ('pending', 'queued', 'sending', 'sent', 'cancelling')
       AND r.updated_at < ?1 - ?3
       AND max(coalesce(m.valid_until, m.created_at + ?2), r.updated_at) + ?3 < ?1
       LIMIT 10000";

/// Ends `unknown` (error `phone_silent`) the routed recipients whose phone never reported
/// an end: nothing waits forever. A late report from the phone still applies (`unknown` is
/// not final).
fn end_silent(tx: &Transaction<'_>, now: Millis, default_validity: Millis) -> Result<u32> {
    let rows: Vec<(i64, u32, String)> = tx
        .prepare_cached(END_SILENT_SQL)?
        .query_map(params![now, default_validity, PHONE_SILENCE_MS], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (mseq, idx, account) in &rows {
        tx.prepare_cached(
            "UPDATE recipients SET state = 'unknown', error = 'phone_silent', updated_at = ?3
             WHERE mseq = ?1 AND idx = ?2",
        )?
        .execute(params![mseq, idx, now])?;
        recompute_state(tx, *mseq, now)?;
        recipient_webhook(tx, account, *mseq, *idx, "unknown", now)?;
    }
    Ok(u32::try_from(rows.len()).unwrap_or(u32::MAX))
}

pub fn list_inbox(c: &Connection, account: &str, f: &InboxFilter) -> Result<Vec<InboxItem>> {
    let order = if f.newest_first { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT rowid_, sms_id, phone_id, sim, from_number, text, sent_at, received_at, stored_at
         FROM inbox
         WHERE account_id = ?1 AND (?2 IS NULL OR from_number = ?2)
           AND (?3 IS NULL OR instr(text, ?3) > 0) AND (?4 IS NULL OR stored_at >= ?4)
           AND (?5 IS NULL OR rowid_ > ?5)
         ORDER BY rowid_ {order} LIMIT ?6"
    );
    let items = c
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
            |r| {
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
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::aggregate;

    #[test]
    fn aggregate_prefers_waiting_then_agreement_then_sent() {
        assert_eq!(aggregate(["pending", "delivered"]), "pending");
        assert_eq!(aggregate(["queued", "cancelling"]), "cancelling");
        assert_eq!(aggregate(["delivered", "delivered"]), "delivered");
        assert_eq!(aggregate(["delivered", "failed"]), "sent");
        assert_eq!(aggregate(["cancelled", "expired"]), "failed");
        assert_eq!(aggregate(["cancelled"]), "cancelled");
    }
}
