//! SQL for SIM-level routing: the recipients waiting for a SIM (with what the router needs:
//! target, parts, SIMs tried, SIMs the message is bound to per phone), storing the router's
//! (phone, SIM) decisions as `send` frames, and failover of a recipient a SIM reported
//! definitively unsent (`failed` + `unsent`).
//!
//! Failover rule: only `failed` with `unsent: true` moves a recipient (no part left the phone,
//! so no duplicate is possible); it goes back to the router with the SIM recorded in `tried`,
//! and the router never returns it to a phone in `tried` (that phone keeps the message id). A
//! recipient pinned to a phone, or that has tried [`crate::rack::MAX_SIMS`] SIMs, stays
//! `failed`. Any other state (`sending`, `sent`, `unknown`, failed without `unsent`) never
//! moves.
//!
//! Late acceptance: a phone may accept a recipient from a `send` frame after the relay took it
//! back (the phone was offline past the grace). If the recipient still waits for a SIM and the
//! router could have routed it to that phone, it is the phone's ([`adopt`]); otherwise, or if
//! it has gone elsewhere, the phone gets a `cancel` for it and goes
//! into `tried` with [`UNKNOWN_SIM`] ([`avoid_phone`]), so the recipient never returns to a
//! phone whose copy is cancelled (there a second `send` would be a duplicate the phone ignores,
//! and its `cancelled` would be taken for the owner's word).

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use simrelay_protocol::{OutboundMessage, Recipient, RecipientUpdate, RelayFrame};

use super::sqlite_messages::recompute_state;
use super::sqlite_phones::insert_frame;
use super::sqlite_pools::add_usage;
use super::{Applied, Assignment, Millis, Result, Unrouted};
use crate::pool_router::SimKey;
use crate::sim_health::Outcome;

/// (mseq, phone_id, sim, tried) of a recipient already placed or tried somewhere.
type BoundRow = (i64, Option<String>, Option<i32>, Option<String>);

/// The SIM of a `tried` entry for a phone that had the recipient taken away before it sent.
pub const UNKNOWN_SIM: i32 = -1;

fn parse_tried(json: Option<&str>) -> Vec<SimKey> {
    json.and_then(|j| serde_json::from_str::<Vec<(String, i32)>>(j).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(p, s)| SimKey::new(p, s))
        .collect()
}

fn tried_json(tried: &[SimKey]) -> String {
    let v: Vec<(&str, i32)> = tried.iter().map(|k| (k.phone.as_str(), k.sub_id)).collect();
    serde_json::to_string(&v).expect("a list of pairs serialises")
}

/// Waiting recipients of an account that one of the `online` phones could take (not pinned to
/// another phone), highest priority first.
pub fn unrouted(
    c: &Connection,
    account: &str,
    online: &[String],
    limit: u32,
) -> Result<Vec<Unrouted>> {
    // Recipients pinned to an offline phone are left out, so they cannot crowd out the rest.
    let online = serde_json::to_string(online)?;
    let mut out: Vec<Unrouted> = c
        .prepare_cached(
            "SELECT r.mseq, r.idx, m.priority, m.phone_id, m.sim, m.pool, r.to_number, m.text,
                r.tried
             FROM recipients r JOIN messages m USING (mseq)
             WHERE r.phone_id IS NULL AND r.state = 'pending' AND m.account_id = ?1
               AND (m.phone_id IS NULL OR m.phone_id IN (SELECT value FROM json_each(?3)))
             ORDER BY m.priority DESC, r.mseq, r.idx LIMIT ?2",
        )?
        .query_map(params![account, limit, online], |r| {
            let text: String = r.get(7)?;
            let tried: Option<String> = r.get(8)?;
            Ok(Unrouted {
                mseq: r.get(0)?,
                idx: r.get(1)?,
                priority: r.get(2)?,
                phone: r.get(3)?,
                sim: r.get(4)?,
                pool: r.get(5)?,
                to: r.get(6)?,
                parts: simrelay_core::segment::count_parts(&text),
                tried: parse_tried(tried.as_deref()),
                bound: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // SIMs each message is on already (routed or tried), in one query for the whole page.
    let mut mseqs: Vec<i64> = out.iter().map(|u| u.mseq).collect();
    mseqs.dedup();
    let rows: Vec<BoundRow> = c
        .prepare_cached(
            "SELECT mseq, phone_id, sim, tried FROM recipients
             WHERE mseq IN (SELECT value FROM json_each(?1))
               AND ((phone_id IS NOT NULL AND sim IS NOT NULL) OR tried IS NOT NULL)",
        )?
        .query_map([serde_json::to_string(&mseqs)?], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut bound: HashMap<i64, Vec<SimKey>> = HashMap::new();
    for (mseq, phone, sim, tried) in rows {
        let keys = bound.entry(mseq).or_default();
        if let (Some(p), Some(s)) = (phone, sim) {
            keys.push(SimKey::new(p, s));
        }
        let tried = parse_tried(tried.as_deref());
        keys.extend(tried.into_iter().filter(|k| k.sub_id != UNKNOWN_SIM));
    }
    for keys in bound.values_mut() {
        keys.sort();
        keys.dedup_by(|a, b| a.phone == b.phone);
    }
    for u in &mut out {
        u.bound = bound.get(&u.mseq).cloned().unwrap_or_default();
    }
    Ok(out)
}

/// Stores routing decisions as `send` frames (one per phone, message and SIM, with the SIM in
/// the frame's message); returns the phones that got frames. Recipients no longer waiting
/// (cancelled meanwhile) are skipped.
pub fn commit_routes(
    tx: &Transaction<'_>,
    routes: &[Assignment],
    now: Millis,
) -> Result<Vec<String>> {
    let mut groups: BTreeMap<(&str, i64, Option<i32>), Vec<u32>> = BTreeMap::new();
    for a in routes {
        groups
            .entry((a.phone.as_str(), a.mseq, a.sim))
            .or_default()
            .push(a.idx);
    }
    let mut phones: Vec<String> = Vec::new();
    for ((phone, mseq, sim), idxs) in groups {
        let mut recipients = Vec::new();
        for idx in idxs {
            let to: Option<String> = tx
                .prepare_cached(
                    "UPDATE recipients SET phone_id = ?3, sim = coalesce(?5, sim), updated_at = ?4
                     WHERE mseq = ?1 AND idx = ?2 AND phone_id IS NULL AND state = 'pending'
                     RETURNING to_number",
                )?
                .query_row(params![mseq, idx, phone, now, sim], |r| r.get(0))
                .optional()?;
            if let Some(to) = to {
                recipients.push(Recipient { idx, to });
            }
        }
        if recipients.is_empty() {
            continue;
        }
        let mut message = tx
            .prepare_cached(
                "SELECT id, text, priority, valid_until, schedule_at, sim, delivery_report
                 FROM messages WHERE mseq = ?1",
            )?
            .query_row([mseq], |r| {
                Ok(OutboundMessage {
                    id: r.get(0)?,
                    recipients: Vec::new(),
                    text: r.get(1)?,
                    priority: r.get(2)?,
                    valid_until: r.get(3)?,
                    schedule_at: r.get(4)?,
                    sim: r.get(5)?,
                    delivery_report: r.get(6)?,
                    resend_unknown: false,
                })
            })?;
        if let Some(s) = sim {
            message.sim = Some(s);
            let parts = simrelay_core::segment::count_parts(&message.text);
            let offset: i16 = tx
                .prepare_cached(
                    "SELECT utc_offset_min FROM sim_settings WHERE phone_id = ?1 AND sub_id = ?2",
                )?
                .query_row(params![phone, s], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let n = u32::try_from(recipients.len()).unwrap_or(u32::MAX);
            add_usage(
                tx,
                &SimKey::new(phone, s),
                parts.saturating_mul(n),
                offset,
                now,
            )?;
        }
        message.recipients = recipients;
        insert_frame(tx, phone, now, |seq| RelayFrame::Send { seq, message })?;
        if !phones.iter().any(|p| p == phone) {
            phones.push(phone.to_string());
        }
    }
    if !phones.is_empty() {
        // Usage older than yesterday (in any time zone) is never read again.
        let old = crate::pool_router::local_day(now, 0) - 2;
        tx.prepare_cached("DELETE FROM sim_usage WHERE day < ?1")?
            .execute([old])?;
    }
    Ok(phones)
}

/// Records the SIM outcome of an update from the owning phone and, for `failed` + `unsent`,
/// hands the recipient back to the router when failover is allowed. Returns true when the
/// recipient was handed back (the caller then stores nothing else for this update).
/// Whether a phone that has not had the recipient could take it: in its pool, or else any
/// other paired phone of the account. Without one the failure stands, rather than
/// the recipient waiting in `pending` for a SIM that does not exist (a one-phone account).
fn has_alternative(tx: &Transaction<'_>, mseq: i64, tried: &[SimKey]) -> Result<bool> {
    let (account, pool): (String, Option<String>) = tx
        .prepare_cached("SELECT account_id, pool FROM messages WHERE mseq = ?1")?
        .query_row([mseq], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let phones: Vec<String> = match &pool {
        Some(pool) => tx
            .prepare_cached(
                "SELECT DISTINCT phone_id FROM pool_members WHERE account_id = ?1 AND name = ?2",
            )?
            .query_map(params![account, pool], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        None => tx
            .prepare_cached("SELECT id FROM phones WHERE account_id = ?1 AND removed_at IS NULL")?
            .query_map([&account], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok(phones.iter().any(|p| !tried.iter().any(|t| &t.phone == p)))
}

pub fn failover(
    tx: &Transaction<'_>,
    mseq: i64,
    phone: &str,
    current: &str,
    u: &RecipientUpdate,
    now: Millis,
    out: &mut Applied,
) -> Result<bool> {
    use simrelay_protocol::RecipientState as S;
    let (sim, tried, pinned): (Option<i32>, Option<String>, Option<String>) = tx
        .prepare_cached(
            "SELECT r.sim, r.tried, m.phone_id FROM recipients r JOIN messages m USING (mseq)
             WHERE r.mseq = ?1 AND r.idx = ?2",
        )?
        .query_row(params![mseq, u.idx], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let Some(sub) = u.sim.or(sim) else {
        return Ok(false);
    };
    let key = SimKey::new(phone, sub);
    let left = matches!(u.state, S::Sent | S::Delivered);
    if left && !matches!(current, "sent" | "delivered") {
        out.sim_outcomes.push((key, Outcome::Sent));
        return Ok(false);
    }
    if !(u.state == S::Failed && u.unsent) {
        return Ok(false);
    }
    out.sim_outcomes
        .push((key.clone(), Outcome::SimBound(u.code)));
    let mut tried = parse_tried(tried.as_deref());
    tried.push(key);
    let again = pinned.is_none()
        && tried.len() < crate::rack::MAX_SIMS
        && has_alternative(tx, mseq, &tried)?;
    tx.prepare_cached("UPDATE recipients SET tried = ?3 WHERE mseq = ?1 AND idx = ?2")?
        .execute(params![mseq, u.idx, tried_json(&tried)])?;
    if !again {
        return Ok(false);
    }
    tx.prepare_cached(
        "UPDATE recipients SET phone_id = NULL, sim = NULL, state = 'pending', accepted = 0,
             error = ?3, code = ?4, updated_at = ?5
         WHERE mseq = ?1 AND idx = ?2",
    )?
    .execute(params![mseq, u.idx, u.reason, u.code, now])?;
    recompute_state(tx, mseq, now)?;
    out.changed = true;
    out.freed = true;
    Ok(true)
}

/// Gives a recipient waiting for a SIM to `phone`, which reports it accepted (on SIM `sim`,
/// when it says), if the router could have routed it there; returns whether it did.
///
/// The router could not have when the phone is in the recipient's `tried`, the message is
/// pinned to another phone or to another SIM, or the message targets a pool that holds no SIM
/// of this phone (or not the SIM it names). Anything else a phone reports stays a claim: it
/// gets a `cancel`, so no phone sends a recipient it was never offered. (The account is
/// checked by the caller: a recipient of another account is never found.)
pub fn adopt(
    tx: &Transaction<'_>,
    mseq: i64,
    idx: u32,
    phone: &str,
    sim: Option<i32>,
    now: Millis,
) -> Result<bool> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<i32>,
        Option<String>,
        String,
    );
    let (tried, pinned, pinned_sim, pool, account): Row = tx
        .prepare_cached(
            "SELECT r.tried, m.phone_id, m.sim, m.pool, m.account_id
             FROM recipients r JOIN messages m USING (mseq)
             WHERE r.mseq = ?1 AND r.idx = ?2",
        )?
        .query_row(params![mseq, idx], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    let had = parse_tried(tried.as_deref())
        .iter()
        .any(|k| k.phone == phone);
    let other_sim = matches!((pinned_sim, sim), (Some(want), Some(got)) if want != got);
    if had || other_sim || pinned.is_some_and(|p| p != phone) {
        return Ok(false);
    }
    if let Some(pool) = pool {
        let member: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM pool_members
                 WHERE account_id = ?1 AND name = ?2 AND phone_id = ?3
                   AND (?4 IS NULL OR sub_id = ?4))",
            )?
            .query_row(params![account, pool, phone, sim], |r| r.get(0))?;
        if !member {
            return Ok(false);
        }
    }
    let n = tx
        .prepare_cached(
            "UPDATE recipients SET phone_id = ?3, updated_at = ?4
             WHERE mseq = ?1 AND idx = ?2 AND phone_id IS NULL AND state = 'pending'",
        )?
        .execute(params![mseq, idx, phone, now])?;
    Ok(n == 1)
}

/// Adds `phone` to the recipient's `tried` (with [`UNKNOWN_SIM`]) unless it is there.
pub fn avoid_phone(tx: &Transaction<'_>, mseq: i64, idx: u32, phone: &str) -> Result<()> {
    let tried: Option<String> = tx
        .prepare_cached("SELECT tried FROM recipients WHERE mseq = ?1 AND idx = ?2")?
        .query_row(params![mseq, idx], |r| r.get(0))?;
    let mut tried = parse_tried(tried.as_deref());
    if tried.iter().any(|k| k.phone == phone) {
        return Ok(());
    }
    tried.push(SimKey::new(phone, UNKNOWN_SIM));
    tx.prepare_cached("UPDATE recipients SET tried = ?3 WHERE mseq = ?1 AND idx = ?2")?
        .execute(params![mseq, idx, tried_json(&tried)])?;
    Ok(())
}
