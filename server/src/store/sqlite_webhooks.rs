//! SQL for webhook registrations and the durable webhook outbox, plus the `/metrics` counts.
//!
//! Events are fanned out when they happen, in the same transaction as the change that caused
//! them: one outbox row per matching registration, each with its own event id. The delivery
//! worker (`crate::webhooks`) drains the outbox, one webhook at a time per worker, and keeps
//! the last [`ATTEMPTS_KEPT`] attempts of each webhook in its delivery log.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Value, json};

use super::{
    AttemptLog, AttemptView, Counts, Delivery, DeliveryOutcome, Millis, Redeliver, Result, Webhook,
};
use crate::time_fmt::fmt_ms;

/// Registrations of the account that subscribe to `event`: (id).
fn subscribers(tx: &Transaction<'_>, account: &str, event: &str) -> Result<Vec<String>> {
    let rows: Vec<(String, String)> = tx
        .prepare_cached("SELECT id, events FROM webhooks WHERE account_id = ?1")?
        .query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows
        .into_iter()
        .filter(|(_, events)| events.split(',').any(|e| e == event))
        .map(|(id, _)| id)
        .collect())
}

/// Queues `event` with `data` for every registration of the account that wants it; returns
/// how many deliveries were queued.
pub fn enqueue_event(
    tx: &Transaction<'_>,
    account: &str,
    event: &str,
    data: Value,
    now: Millis,
) -> Result<usize> {
    let hooks = subscribers(tx, account, event)?;
    for hook in &hooks {
        let event_id = uuid::Uuid::now_v7().to_string();
        let body = json!({
            "id": event_id,
            "event": event,
            "webhook_id": hook,
            "created_at": fmt_ms(now),
            "data": data,
        });
        tx.prepare_cached(
            "INSERT INTO webhook_outbox (event_id, webhook_id, event, body, state, next_at,
                 created_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
        )?
        .execute(params![event_id, hook, event, body.to_string(), now])?;
    }
    Ok(hooks.len())
}

/// Queues the webhook for a recipient that just entered `state`, if that state has one;
/// returns how many deliveries were queued.
pub fn recipient_webhook(
    tx: &Transaction<'_>,
    account: &str,
    mseq: i64,
    idx: u32,
    state: &str,
    now: Millis,
) -> Result<usize> {
    let event = match state {
        "sent" => "message.sent",
        "delivered" => "message.delivered",
        "failed" | "expired" => "message.failed",
        "unknown" => "message.unknown",
        _ => return Ok(0),
    };
    if subscribers(tx, account, event)?.is_empty() {
        return Ok(0);
    }
    let data = tx
        .prepare_cached(
            "SELECT m.id, r.to_number, r.state, r.phone_id, r.sim, r.parts, r.error, r.code
             FROM recipients r JOIN messages m USING (mseq) WHERE r.mseq = ?1 AND r.idx = ?2",
        )?
        .query_row(params![mseq, idx], |r| {
            Ok(json!({
                "message_id": r.get::<_, String>(0)?,
                "idx": idx,
                "to": r.get::<_, String>(1)?,
                "state": r.get::<_, String>(2)?,
                "phone": r.get::<_, Option<String>>(3)?,
                "sim": r.get::<_, Option<i32>>(4)?,
                "parts": r.get::<_, u32>(5)?,
                "error": r.get::<_, Option<String>>(6)?,
                "code": r.get::<_, Option<i32>>(7)?,
            }))
        })?;
    enqueue_event(tx, account, event, data, now)
}

pub fn create_webhook(tx: &Transaction<'_>, account: &str, hook: &Webhook) -> Result<()> {
    tx.execute(
        "INSERT INTO webhooks (id, account_id, url, events, secret, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            hook.id,
            account,
            hook.url,
            hook.events.join(","),
            hook.secret,
            hook.created_at
        ],
    )?;
    Ok(())
}

pub fn list_webhooks(c: &Connection, account: &str) -> Result<Vec<Webhook>> {
    Ok(c.prepare(
        "SELECT id, url, events, secret, created_at FROM webhooks
         WHERE account_id = ?1 ORDER BY created_at, id",
    )?
    .query_map([account], |r| {
        let events: String = r.get(2)?;
        Ok(Webhook {
            id: r.get(0)?,
            url: r.get(1)?,
            events: events.split(',').map(str::to_string).collect(),
            secret: r.get(3)?,
            created_at: r.get(4)?,
        })
    })?
    .collect::<rusqlite::Result<_>>()?)
}

pub fn delete_webhook(tx: &Transaction<'_>, account: &str, id: &str) -> Result<bool> {
    let n = tx.execute(
        "DELETE FROM webhooks WHERE id = ?1 AND account_id = ?2",
        params![id, account],
    )?;
    if n > 0 {
        tx.execute(
            "UPDATE webhook_outbox SET state = 'dropped' WHERE webhook_id = ?1 AND state = 'pending'",
            [id],
        )?;
        tx.execute("DELETE FROM webhook_attempts WHERE webhook_id = ?1", [id])?;
    }
    Ok(n > 0)
}

pub fn due_deliveries(c: &Connection, now: Millis, limit: u32) -> Result<Vec<Delivery>> {
    Ok(c.prepare_cached(
        "SELECT o.id, o.webhook_id, o.event_id, o.event, w.url, w.secret, o.body, o.attempts
         FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
         WHERE o.state = 'pending' AND o.next_at <= ?1 ORDER BY o.next_at, o.id LIMIT ?2",
    )?
    .query_map(params![now, limit], delivery_row)?
    .collect::<rusqlite::Result<_>>()?)
}

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        event_id: r.get(2)?,
        event: r.get(3)?,
        url: r.get(4)?,
        secret: r.get(5)?,
        body: r.get(6)?,
        attempts: r.get(7)?,
    })
}

/// Webhooks with pending deliveries.
pub fn pending_endpoints(c: &Connection) -> Result<Vec<String>> {
    Ok(c.prepare_cached(
        "SELECT w.id FROM webhooks w WHERE EXISTS (SELECT 1 FROM webhook_outbox o
             INDEXED BY webhook_outbox_endpoint
             WHERE o.webhook_id = w.id AND o.state = 'pending')",
    )?
    .query_map([], |r| r.get(0))?
    .collect::<rusqlite::Result<_>>()?)
}

/// Takes up to `limit` due deliveries of `webhook` and leases them until `lease_until`.
pub fn claim_deliveries(
    tx: &Transaction<'_>,
    webhook: &str,
    now: Millis,
    limit: u32,
    lease_until: Millis,
) -> Result<Vec<Delivery>> {
    let due: Vec<Delivery> = tx
        .prepare_cached(
            "SELECT o.id, o.webhook_id, o.event_id, o.event, w.url, w.secret, o.body, o.attempts
             FROM webhook_outbox o INDEXED BY webhook_outbox_endpoint
             JOIN webhooks w ON w.id = o.webhook_id
             WHERE o.webhook_id = ?1 AND o.state = 'pending' AND o.next_at <= ?2
             ORDER BY o.next_at, o.id LIMIT ?3",
        )?
        .query_map(params![webhook, now, limit], delivery_row)?
        .collect::<rusqlite::Result<_>>()?;
    for d in &due {
        tx.prepare_cached("UPDATE webhook_outbox SET next_at = ?2 WHERE id = ?1")?
            .execute(params![d.id, lease_until])?;
    }
    Ok(due)
}

pub fn next_delivery_of(c: &Connection, webhook: &str) -> Result<Option<Millis>> {
    Ok(c.prepare_cached(
        "SELECT min(next_at) FROM webhook_outbox INDEXED BY webhook_outbox_endpoint
         WHERE webhook_id = ?1 AND state = 'pending'",
    )?
    .query_row([webhook], |r| r.get(0))
    .optional()?
    .flatten())
}

/// Attempts kept per webhook in its delivery log.
pub const ATTEMPTS_KEPT: i64 = 50;

/// Adds an attempt to the webhook's log and forgets the ones beyond [`ATTEMPTS_KEPT`].
pub fn log_attempt(tx: &Transaction<'_>, log: &AttemptLog) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO webhook_attempts (webhook_id, event_id, event, at, status, duration_ms, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        log.webhook_id,
        log.event_id,
        log.event,
        log.at,
        log.status,
        log.duration_ms,
        log.error
    ])?;
    tx.prepare_cached(
        "DELETE FROM webhook_attempts WHERE webhook_id = ?1 AND id <= (
             SELECT id FROM webhook_attempts WHERE webhook_id = ?1
             ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![log.webhook_id, ATTEMPTS_KEPT])?;
    Ok(())
}

fn owns(c: &Connection, account: &str, webhook: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM webhooks WHERE id = ?1 AND account_id = ?2")?
            .exists(params![webhook, account])?,
    )
}

pub fn list_attempts(
    c: &Connection,
    account: &str,
    webhook: &str,
    limit: u32,
) -> Result<Option<Vec<AttemptView>>> {
    if !owns(c, account, webhook)? {
        return Ok(None);
    }
    let items = c
        .prepare_cached(
            "SELECT a.webhook_id, a.event_id, a.event, a.at, a.status, a.duration_ms, a.error,
                 o.state
             FROM webhook_attempts a LEFT JOIN webhook_outbox o ON o.event_id = a.event_id
             WHERE a.webhook_id = ?1 ORDER BY a.id DESC LIMIT ?2",
        )?
        .query_map(params![webhook, limit], |r| {
            Ok(AttemptView {
                log: AttemptLog {
                    webhook_id: r.get(0)?,
                    event_id: r.get(1)?,
                    event: r.get(2)?,
                    at: r.get(3)?,
                    status: r.get(4)?,
                    duration_ms: r.get(5)?,
                    error: r.get(6)?,
                },
                delivery_state: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(items))
}

pub fn redeliver(
    tx: &Transaction<'_>,
    account: &str,
    webhook: &str,
    event_id: &str,
    now: Millis,
) -> Result<Redeliver> {
    if !owns(tx, account, webhook)? {
        return Ok(Redeliver::NotFound);
    }
    let state: Option<String> = tx
        .query_row(
            "SELECT state FROM webhook_outbox WHERE event_id = ?1 AND webhook_id = ?2",
            params![event_id, webhook],
            |r| r.get(0),
        )
        .optional()?;
    match state.as_deref() {
        None => Ok(Redeliver::NotFound),
        Some("dead") => {
            tx.execute(
                "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_at = ?2
                 WHERE event_id = ?1",
                params![event_id, now],
            )?;
            Ok(Redeliver::Queued)
        }
        Some(other) => Ok(Redeliver::NotDead(other.to_string())),
    }
}

pub fn delivery_result(
    tx: &Transaction<'_>,
    id: i64,
    outcome: &DeliveryOutcome,
    _now: Millis,
) -> Result<()> {
    match outcome {
        DeliveryOutcome::Delivered => tx.execute(
            "UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1,
                 last_error = NULL WHERE id = ?1",
            [id],
        )?,
        DeliveryOutcome::Retry { at, error } => tx.execute(
            "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?2, last_error = ?3
             WHERE id = ?1",
            params![id, at, error],
        )?,
        DeliveryOutcome::Dead { error } => tx.execute(
            "UPDATE webhook_outbox SET state = 'dead', attempts = attempts + 1, last_error = ?2
             WHERE id = ?1",
            params![id, error],
        )?,
    };
    Ok(())
}

pub fn next_delivery_at(c: &Connection) -> Result<Option<Millis>> {
    Ok(
        c.prepare_cached("SELECT min(next_at) FROM webhook_outbox WHERE state = 'pending'")?
            .query_row([], |r| r.get(0))
            .optional()?
            .flatten(),
    )
}

pub fn prune_deliveries(tx: &Transaction<'_>, before: Millis) -> Result<usize> {
    Ok(tx.execute(
        "DELETE FROM webhook_outbox WHERE state IN ('delivered', 'dropped') AND created_at < ?1",
        [before],
    )?)
}

/// Messages per state, kept by triggers (schema v4); a state once seen stays, at 0 when empty.
pub(crate) const COUNTS_SQL: &str = "SELECT state, n FROM message_counts ORDER BY state";

pub fn counts(c: &Connection) -> Result<Counts> {
    let messages_by_state = c
        .prepare_cached(COUNTS_SQL)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let count = |sql: &str| -> rusqlite::Result<i64> { c.query_row(sql, [], |r| r.get(0)) };
    Ok(Counts {
        messages_by_state,
        webhooks_pending: count("SELECT count(*) FROM webhook_outbox WHERE state = 'pending'")?,
        webhooks_dead: count("SELECT count(*) FROM webhook_outbox WHERE state = 'dead'")?,
        unrouted: count(
            "SELECT count(*) FROM recipients WHERE phone_id IS NULL AND state = 'pending'",
        )?,
    })
}
