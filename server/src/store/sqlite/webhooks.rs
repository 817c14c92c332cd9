//! SQL for webhook registrations, the durable webhook outbox and the delivery log, plus the
//! `/metrics` counts.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteTx;
use crate::domain::DeliveryState;
use crate::store::tx::{OutboxInsert, Subscriber, WebhookRows};
use crate::store::{
    AttemptLog, AttemptView, Counts, Delivery, DeliveryOutcome, Millis, Result, Webhook,
};

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

fn split_events(events: &str) -> Vec<String> {
    events.split(',').map(str::to_string).collect()
}

impl WebhookRows for SqliteTx<'_> {
    fn insert_webhook(&mut self, account: &str, hook: &Webhook) -> Result<()> {
        self.c.execute(
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

    fn list_webhooks(&mut self, account: &str) -> Result<Vec<Webhook>> {
        Ok(self
            .c
            .prepare(
                "SELECT id, url, events, secret, created_at FROM webhooks
                 WHERE account_id = ?1 ORDER BY created_at, id",
            )?
            .query_map([account], |r| {
                let events: String = r.get(2)?;
                Ok(Webhook {
                    id: r.get(0)?,
                    url: r.get(1)?,
                    events: split_events(&events),
                    secret: r.get(3)?,
                    created_at: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn delete_webhook(&mut self, account: &str, id: &str) -> Result<bool> {
        let n = self.c.execute(
            "DELETE FROM webhooks WHERE id = ?1 AND account_id = ?2",
            params![id, account],
        )?;
        if n > 0 {
            self.c.execute(
                "UPDATE webhook_outbox SET state = 'dropped'
                 WHERE webhook_id = ?1 AND state = 'pending'",
                [id],
            )?;
            self.c
                .execute("DELETE FROM webhook_attempts WHERE webhook_id = ?1", [id])?;
        }
        Ok(n > 0)
    }

    fn subscribers(&mut self, account: &str) -> Result<Vec<Subscriber>> {
        Ok(self
            .c
            .prepare_cached("SELECT id, events FROM webhooks WHERE account_id = ?1")?
            .query_map([account], |r| {
                let events: String = r.get(1)?;
                Ok((r.get(0)?, split_events(&events)))
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn insert_outbox(&mut self, rows: &[OutboxInsert<'_>]) -> Result<()> {
        let mut st = self.c.prepare_cached(
            "INSERT INTO webhook_outbox (event_id, webhook_id, event, body, state, next_at,
                 created_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
        )?;
        for o in rows {
            st.execute(params![o.event_id, o.webhook_id, o.event, o.body, o.at])?;
        }
        Ok(())
    }

    fn due_deliveries(&mut self, now: Millis, limit: u32) -> Result<Vec<Delivery>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT o.id, o.webhook_id, o.event_id, o.event, w.url, w.secret, o.body,
                     o.attempts
                 FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
                 WHERE o.state = 'pending' AND o.next_at <= ?1 ORDER BY o.next_at, o.id
                 LIMIT ?2",
            )?
            .query_map(params![now, limit], delivery_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn pending_endpoints(&mut self) -> Result<Vec<String>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT w.id FROM webhooks w WHERE EXISTS (SELECT 1 FROM webhook_outbox o
                     INDEXED BY webhook_outbox_endpoint
                     WHERE o.webhook_id = w.id AND o.state = 'pending')",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn claim_deliveries(
        &mut self,
        webhook: &str,
        now: Millis,
        limit: u32,
        lease_until: Millis,
        _claimer: &str,
    ) -> Result<Vec<Delivery>> {
        // One relay per SQLite file: the `next_at` lease is the whole claim.
        let due: Vec<Delivery> = self
            .c
            .prepare_cached(
                "SELECT o.id, o.webhook_id, o.event_id, o.event, w.url, w.secret, o.body,
                     o.attempts
                 FROM webhook_outbox o INDEXED BY webhook_outbox_endpoint
                 JOIN webhooks w ON w.id = o.webhook_id
                 WHERE o.webhook_id = ?1 AND o.state = 'pending' AND o.next_at <= ?2
                 ORDER BY o.next_at, o.id LIMIT ?3",
            )?
            .query_map(params![webhook, now, limit], delivery_row)?
            .collect::<rusqlite::Result<_>>()?;
        let mut lease = self
            .c
            .prepare_cached("UPDATE webhook_outbox SET next_at = ?2 WHERE id = ?1")?;
        for d in &due {
            lease.execute(params![d.id, lease_until])?;
        }
        Ok(due)
    }

    fn next_delivery_of(&mut self, webhook: &str) -> Result<Option<Millis>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT min(next_at) FROM webhook_outbox INDEXED BY webhook_outbox_endpoint
                 WHERE webhook_id = ?1 AND state = 'pending'",
            )?
            .query_row([webhook], |r| r.get(0))
            .optional()?
            .flatten())
    }

    fn next_delivery_at(&mut self) -> Result<Option<Millis>> {
        Ok(self
            .c
            .prepare_cached("SELECT min(next_at) FROM webhook_outbox WHERE state = 'pending'")?
            .query_row([], |r| r.get(0))
            .optional()?
            .flatten())
    }

    fn delivery_result(
        &mut self,
        id: i64,
        _claimer: Option<&str>,
        outcome: &DeliveryOutcome,
    ) -> Result<bool> {
        match outcome {
            DeliveryOutcome::Delivered => self.c.execute(
                "UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1,
                     last_error = NULL WHERE id = ?1",
                [id],
            )?,
            DeliveryOutcome::Retry { at, error } => self.c.execute(
                "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?2, last_error = ?3
                 WHERE id = ?1",
                params![id, at, error],
            )?,
            DeliveryOutcome::Dead { error } => self.c.execute(
                "UPDATE webhook_outbox SET state = 'dead', attempts = attempts + 1,
                     last_error = ?2
                 WHERE id = ?1",
                params![id, error],
            )?,
        };
        Ok(true)
    }

    fn log_attempt(&mut self, log: &AttemptLog, keep: i64) -> Result<()> {
        self.c
            .prepare_cached(
                "INSERT INTO webhook_attempts (webhook_id, event_id, event, at, status,
                     duration_ms, error)
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
        self.c
            .prepare_cached(
                "DELETE FROM webhook_attempts WHERE webhook_id = ?1 AND id <= (
                     SELECT id FROM webhook_attempts WHERE webhook_id = ?1
                     ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            )?
            .execute(params![log.webhook_id, keep])?;
        Ok(())
    }

    fn webhook_of_account(&mut self, account: &str, webhook: &str) -> Result<bool> {
        Ok(self
            .c
            .prepare_cached("SELECT 1 FROM webhooks WHERE id = ?1 AND account_id = ?2")?
            .exists(params![webhook, account])?)
    }

    fn list_attempts(&mut self, webhook: &str, limit: u32) -> Result<Vec<AttemptView>> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT a.webhook_id, a.event_id, a.event, a.at, a.status, a.duration_ms,
                     a.error, o.state
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
            .collect::<rusqlite::Result<_>>()?)
    }

    fn delivery_state(&mut self, webhook: &str, event_id: &str) -> Result<Option<DeliveryState>> {
        Ok(self
            .c
            .query_row(
                "SELECT state FROM webhook_outbox WHERE event_id = ?1 AND webhook_id = ?2",
                params![event_id, webhook],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn requeue_delivery(&mut self, event_id: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_at = ?2
             WHERE event_id = ?1",
            params![event_id, now],
        )?;
        Ok(())
    }

    fn prune_deliveries(&mut self, before: Millis) -> Result<usize> {
        Ok(self.c.execute(
            "DELETE FROM webhook_outbox WHERE state IN ('delivered', 'dropped') AND created_at < ?1",
            [before],
        )?)
    }
}

/// Messages per state, kept by triggers (schema v4); a state once seen stays, at 0 when empty.
pub(crate) const COUNTS_SQL: &str = "SELECT state, n FROM message_counts ORDER BY state";

pub(super) fn counts(c: &Connection) -> Result<Counts> {
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
