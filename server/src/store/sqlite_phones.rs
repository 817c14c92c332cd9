//! SQL for phones: pairing, presence, the per-phone frame log, applying phone events, and
//! storing routing decisions.
//!
//! Ownership rule (docs/protocol.md, "acceptance"): a recipient's events are applied only from
//! the phone it is routed to (`recipients.phone_id`). A `queued` event from any other phone
//! makes the relay queue a `cancel` frame for that phone, which the hub writes before the ack
//! covering the event, so that phone never hands the recipient to its radio.
//!
//! An incoming SMS outside `crate::limits` (text, sender, id, time stamps) is not stored; its
//! seq is consumed and the link tells the phone.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::json;
use simrelay_protocol::{
    Event, IncomingSms, PhoneStatus, RecipientState, RecipientUpdate, RelayFrame, encode,
};

use super::sqlite_messages::recompute_state;
use super::sqlite_webhooks::{enqueue_event, recipient_webhook};
use super::{Applied, Connected, Millis, PhoneAuth, PhoneRow, Result};

/// Recipient states that still occupy a phone's queue (keep in sync with `apply_recipient`).
const OUTSTANDING: &str = "('pending', 'queued', 'sending', 'cancelling')";

/// Appends a frame to the phone's log with the next sequence number.
pub fn insert_frame(
    tx: &Transaction<'_>,
    phone: &str,
    now: Millis,
    make: impl FnOnce(u64) -> RelayFrame,
) -> Result<u64> {
    let seq: u64 = tx
        .prepare_cached(
            "UPDATE phones SET next_seq = next_seq + 1 WHERE id = ?1 RETURNING next_seq",
        )?
        .query_row([phone], |r| r.get(0))?;
    let body = encode(&make(seq));
    tx.prepare_cached(
        "INSERT INTO frames (phone_id, seq, body, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![phone, seq, body, now])?;
    Ok(seq)
}

pub fn create_pairing_code(
    tx: &Transaction<'_>,
    account: &str,
    code_hash: &str,
    now: Millis,
    expires: Millis,
) -> Result<()> {
    tx.execute(
        "INSERT INTO pairing_codes (code_hash, account_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![code_hash, account, now, expires],
    )?;
    Ok(())
}

pub fn pair_phone(
    tx: &Transaction<'_>,
    code_hash: &str,
    phone_id: &str,
    token_hash: &str,
    name: Option<&str>,
    now: Millis,
) -> Result<Option<String>> {
    let account: Option<String> = tx
        .query_row(
            "SELECT account_id FROM pairing_codes
             WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![code_hash, now],
            |r| r.get(0),
        )
        .optional()?;
    let Some(account) = account else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE pairing_codes SET used_at = ?2 WHERE code_hash = ?1",
        params![code_hash, now],
    )?;
    tx.execute(
        "INSERT INTO phones (id, account_id, name, token_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![phone_id, account, name, token_hash, now],
    )?;
    Ok(Some(account))
}

pub fn phone_by_token(c: &Connection, token_hash: &str) -> Result<Option<PhoneAuth>> {
    Ok(c.prepare_cached(
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

pub fn phone_connected(
    tx: &Transaction<'_>,
    phone: &str,
    status: &PhoneStatus,
    now: Millis,
) -> Result<Connected> {
    let (account, online, event_seq, acked_seq): (String, bool, u64, u64) = tx.query_row(
        "SELECT account_id, online, event_seq, acked_seq FROM phones
         WHERE id = ?1 AND removed_at IS NULL",
        [phone],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    tx.execute(
        "UPDATE phones SET online = 1, last_seen = ?2, status_json = ?3 WHERE id = ?1",
        params![phone, now, serde_json::to_string(status)?],
    )?;
    if !online {
        enqueue_event(tx, &account, "phone.online", json!({ "phone": phone }), now)?;
    }
    Ok(Connected {
        event_seq,
        acked_seq,
        came_online: !online,
    })
}

pub fn phone_status(
    tx: &Transaction<'_>,
    phone: &str,
    status: &PhoneStatus,
    now: Millis,
) -> Result<()> {
    tx.execute(
        "UPDATE phones SET last_seen = ?2, status_json = ?3 WHERE id = ?1",
        params![phone, now, serde_json::to_string(status)?],
    )?;
    Ok(())
}

pub fn phone_offline(tx: &Transaction<'_>, phone: &str, now: Millis) -> Result<bool> {
    let row: Option<(String, bool)> = tx
        .query_row(
            "SELECT account_id, online FROM phones WHERE id = ?1",
            [phone],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((account, true)) = row else {
        return Ok(false);
    };
    tx.execute("UPDATE phones SET online = 0 WHERE id = ?1", [phone])?;
    enqueue_event(
        tx,
        &account,
        "phone.offline",
        json!({ "phone": phone }),
        now,
    )?;
    // Not accepted yet (no `queued` event seen): hand back to the router, unless the client
    // pinned the message to this phone.
    tx.execute(
        "UPDATE recipients SET phone_id = NULL, updated_at = ?2
         WHERE phone_id = ?1 AND state = 'pending' AND accepted = 0
           AND (SELECT m.phone_id FROM messages m WHERE m.mseq = recipients.mseq) IS NULL",
        params![phone, now],
    )?;
    Ok(true)
}

pub fn online_phones(c: &Connection) -> Result<Vec<String>> {
    Ok(c.prepare("SELECT id FROM phones WHERE online = 1")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

pub fn list_phones(c: &Connection, account: &str) -> Result<Vec<PhoneRow>> {
    let mut rows: Vec<PhoneRow> = c
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
        row.outstanding = outstanding(c, &row.id)?;
    }
    Ok(rows)
}

pub fn frames_after(
    c: &Connection,
    phone: &str,
    after: u64,
    limit: u32,
) -> Result<Vec<(u64, String)>> {
    Ok(c.prepare_cached(
        "SELECT seq, body FROM frames WHERE phone_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?
    .query_map(params![phone, after, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect::<rusqlite::Result<_>>()?)
}

/// Highest seq of a `cancel` frame for the phone after `after`. Frames are stored encoded by
/// `simrelay_protocol::encode`, whose output starts with the `type` tag.
pub fn last_cancel_after(c: &Connection, phone: &str, after: u64) -> Result<Option<u64>> {
    Ok(c.prepare_cached(
        "SELECT max(seq) FROM frames
         WHERE phone_id = ?1 AND seq > ?2 AND body LIKE '{\"type\":\"cancel\"%'",
    )?
    .query_row(params![phone, after], |r| r.get(0))?)
}

pub fn apply_from_phone(
    tx: &Transaction<'_>,
    phone: &str,
    acked: Option<u64>,
    events: &[(u64, Event)],
    now: Millis,
) -> Result<Applied> {
    let (account, mut event_seq, next_seq): (String, u64, u64) = tx
        .prepare_cached("SELECT account_id, event_seq, next_seq FROM phones WHERE id = ?1")?
        .query_row([phone], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let mut out = Applied::default();
    if let Some(a) = acked {
        let a = a.min(next_seq);
        tx.prepare_cached("UPDATE phones SET acked_seq = max(acked_seq, ?2) WHERE id = ?1")?
            .execute(params![phone, a])?;
        tx.prepare_cached("DELETE FROM frames WHERE phone_id = ?1 AND seq <= ?2")?
            .execute(params![phone, a])?;
    }
    // Per message, the recipients this phone reported accepted but no longer owns.
    let mut cancels: Vec<(&str, Vec<u32>)> = Vec::new();
    for (seq, event) in events {
        if *seq <= event_seq {
            continue; // already stored: idempotent
        }
        if *seq != event_seq + 1 {
            break; // a gap: store nothing beyond it, the phone resends after reconnect
        }
        match event {
            Event::Recipient(u) => {
                if apply_recipient(tx, &account, phone, u, now, &mut cancels, &mut out)? {
                    out.changed = true;
                }
            }
            // Refused for good: resending can never make it valid, so its seq is consumed
            // (acknowledged) and the phone's later events are not held up behind it.
            Event::Incoming(sms) => match crate::limits::check_incoming(sms) {
                Err(fault) => out.incoming_refused.push(fault.as_str()),
                Ok(()) => {
                    let retimed = crate::limits::retimed(sms, now);
                    if retimed.is_some() {
                        tracing::info!(
                            phone,
                            "incoming SMS with an impossible time stamp: stored with the relay's clock"
                        );
                    }
                    let sms = retimed.as_ref().unwrap_or(sms);
                    if store_incoming(tx, &account, phone, sms, now, &mut out)? {
                        out.incoming = true;
                    }
                }
            },
        }
        event_seq = *seq;
    }
    tx.prepare_cached("UPDATE phones SET event_seq = ?2, last_seen = ?3 WHERE id = ?1")?
        .execute(params![phone, event_seq, now])?;
    for (message_id, recipients) in cancels {
        let seq = insert_frame(tx, phone, now, |seq| RelayFrame::Cancel {
            seq,
            message_id: message_id.to_string(),
            recipients: Some(recipients),
        })?;
        out.cancel_upto = Some(seq);
    }
    out.event_seq = event_seq;
    Ok(out)
}

/// Applies one recipient update; returns whether the recipient's state changed.
fn apply_recipient<'e>(
    tx: &Transaction<'_>,
    account: &str,
    phone: &str,
    u: &'e RecipientUpdate,
    now: Millis,
    cancels: &mut Vec<(&'e str, Vec<u32>)>,
    out: &mut Applied,
) -> Result<bool> {
    type Row = (i64, String, Option<String>, u32, Option<i32>);
    let row: Option<Row> = tx
        .prepare_cached(
            "SELECT r.mseq, r.state, r.phone_id, r.parts_sent, r.sim
             FROM recipients r JOIN messages m USING (mseq)
             WHERE m.account_id = ?1 AND m.id = ?2 AND r.idx = ?3",
        )?
        .query_row(params![account, u.message_id, u.idx], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((mseq, current, owner, was_sent, was_sim)) = row else {
        return Ok(false);
    };
    if owner.as_deref() != Some(phone) {
        if u.state != RecipientState::Queued {
            return Ok(false);
        }
        // A late acceptance of a recipient still waiting for a SIM makes it this phone's.
        let adopted = owner.is_none()
            && current == "pending"
            && super::sqlite_routing::adopt(tx, mseq, u.idx, phone, u.sim, now)?;
        if !adopted {
            if !RecipientState::parse(&current).is_some_and(RecipientState::is_final) {
                // Never routed back here: this phone's copy is about to be cancelled.
                super::sqlite_routing::avoid_phone(tx, mseq, u.idx, phone)?;
            }
            // Only this recipient: the phone may still own others of the same message.
            match cancels.iter_mut().find(|(id, _)| *id == u.message_id) {
                Some((_, idxs)) if !idxs.contains(&u.idx) => idxs.push(u.idx),
                Some(_) => {}
                None => cancels.push((&u.message_id, vec![u.idx])),
            }
            return Ok(false);
        }
    }
    if RecipientState::parse(&current).is_some_and(RecipientState::is_final) {
        return Ok(false);
    }
    if super::sqlite_routing::failover(tx, mseq, phone, &current, u, now, out)? {
        return Ok(true);
    }
    let new = if current == "cancelling" && u.state == RecipientState::Queued {
        "cancelling"
    } else {
        u.state.as_str()
    };
    tx.prepare_cached(
        "UPDATE recipients SET state = ?3, accepted = 1, parts = ?4, parts_sent = ?5,
             parts_delivered = ?6, error = coalesce(?7, error), code = coalesce(?8, code),
             sim = coalesce(?9, sim), updated_at = ?10
         WHERE mseq = ?1 AND idx = ?2",
    )?
    .execute(params![
        mseq,
        u.idx,
        new,
        u.parts,
        u.parts_sent,
        u.parts_delivered,
        u.reason,
        u.code,
        u.sim,
        now
    ])?;
    let newly_sent = u.parts_sent.saturating_sub(was_sent);
    if let (true, Some(sim)) = (newly_sent > 0, u.sim.or(was_sim)) {
        super::sqlite_pools::count_sent(tx, phone, sim, newly_sent, now)?;
    }
    if new == current {
        return Ok(false);
    }
    let queued_states = ["pending", "queued", "sending", "cancelling"];
    if queued_states.contains(&current.as_str()) && !queued_states.contains(&new) {
        out.freed = true;
    }
    recompute_state(tx, mseq, now)?;
    out.webhooks += recipient_webhook(tx, account, mseq, u.idx, new, now)?;
    Ok(true)
}

/// Stores an incoming SMS once per (phone, id); returns whether it was new.
fn store_incoming(
    tx: &Transaction<'_>,
    account: &str,
    phone: &str,
    sms: &IncomingSms,
    now: Millis,
    out: &mut Applied,
) -> Result<bool> {
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO inbox (account_id, phone_id, sms_id, sim, from_number, text,
                 sent_at, received_at, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
            now
        ])?;
    if n == 0 {
        return Ok(false);
    }
    let data = json!({
        "id": sms.id,
        "phone": phone,
        "sim": sms.sim,
        "from": sms.from,
        "text": sms.text,
        "sent_at": sms.sent_at.map(crate::time_fmt::fmt_ms),
        "received_at": crate::time_fmt::fmt_ms(sms.received_at),
    });
    out.webhooks += enqueue_event(tx, account, "message.received", data, now)?;
    Ok(true)
}

pub fn outstanding(c: &Connection, phone: &str) -> Result<u32> {
    let sql =
        format!("SELECT count(*) FROM recipients WHERE phone_id = ?1 AND state IN {OUTSTANDING}");
    Ok(c.prepare_cached(&sql)?.query_row([phone], |r| r.get(0))?)
}
