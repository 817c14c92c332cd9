//! SQL for webhook registrations, the durable webhook outbox and the delivery log, plus the
//! `/metrics` counts.
//!
//! Several relays may share the database, each running a webhook sender: a delivery is
//! claimed before it is sent ([`STEP_WEBHOOK_CLAIMS`]: `claimed_by`, `claim_until`), by a
//! `FOR UPDATE SKIP LOCKED` select of due, unclaimed (or lease-expired) rows, and its outcome
//! is stored only while the claim is still the sender's. So two relays never make one
//! delivery at the same time, and a relay that dies mid-attempt loses its claim when the
//! lease ends, after which any relay makes the delivery again (at least once to the
//! receiver, which dedups by the event id).

use ::postgres::Row;

use super::conn::Conn;
use super::{PgTx, big, get, get_opt_dstate, get_u32};
use crate::domain::DeliveryState;
use crate::store::tx::{OutboxInsert, Subscriber, WebhookRows};
use crate::store::{
    AttemptLog, AttemptView, Counts, Delivery, DeliveryOutcome, Millis, Result, StoreError, Webhook,
};

/// The webhook claims (a step of `schema::STEPS`): who holds a delivery in flight, and until
/// when. A claim whose `claim_until` has passed is void (its sender died or hung).
pub const STEP_WEBHOOK_CLAIMS: &str = r#"
ALTER TABLE webhook_outbox ADD COLUMN claimed_by TEXT, ADD COLUMN claim_until BIGINT;
"#;

/// The claim's columns, which SQLite (one relay) has not.
pub const CLAIM_COLUMNS: &[(&str, &str)] = &[
    ("webhook_outbox", "claimed_by"),
    ("webhook_outbox", "claim_until"),
];

fn delivery_row(r: &Row) -> Result<Delivery> {
    Ok(Delivery {
        id: get(r, 0)?,
        webhook_id: get(r, 1)?,
        event_id: get(r, 2)?,
        event: get(r, 3)?,
        url: get(r, 4)?,
        secret: get(r, 5)?,
        body: get(r, 6)?,
        attempts: get_u32(r, 7)?,
    })
}

fn split_events(events: &str) -> Vec<String> {
    events.split(',').map(str::to_string).collect()
}

impl WebhookRows for PgTx<'_> {
    fn insert_webhook(&mut self, account: &str, hook: &Webhook) -> Result<()> {
        self.c.execute(
            "INSERT INTO webhooks (id, account_id, url, events, secret, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &hook.id,
                &account,
                &hook.url,
                &hook.events.join(","),
                &hook.secret,
                &hook.created_at,
            ],
        )?;
        Ok(())
    }

    fn list_webhooks(&mut self, account: &str) -> Result<Vec<Webhook>> {
        self.c
            .query(
                "SELECT id, url, events, secret, created_at FROM webhooks
                 WHERE account_id = $1 ORDER BY created_at, id COLLATE \"C\"",
                &[&account],
            )?
            .iter()
            .map(|r| {
                Ok(Webhook {
                    id: get(r, 0)?,
                    url: get(r, 1)?,
                    events: split_events(get(r, 2)?),
                    secret: get(r, 3)?,
                    created_at: get(r, 4)?,
                })
            })
            .collect()
    }

    fn delete_webhook(&mut self, account: &str, id: &str) -> Result<bool> {
        let n = self.c.execute(
            "DELETE FROM webhooks WHERE id = $1 AND account_id = $2",
            &[&id, &account],
        )?;
        if n > 0 {
            self.c.execute(
                "UPDATE webhook_outbox SET state = 'dropped'
                 WHERE webhook_id = $1 AND state = 'pending'",
                &[&id],
            )?;
            self.c
                .execute("DELETE FROM webhook_attempts WHERE webhook_id = $1", &[&id])?;
        }
        Ok(n > 0)
    }

    fn subscribers(&mut self, account: &str) -> Result<Vec<Subscriber>> {
        self.c
            .query(
                "SELECT id, events FROM webhooks WHERE account_id = $1
                 ORDER BY created_at, id COLLATE \"C\"",
                &[&account],
            )?
            .iter()
            .map(|r| Ok((get(r, 0)?, split_events(get(r, 1)?))))
            .collect()
    }

    fn insert_outbox(&mut self, rows: &[OutboxInsert<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let event_id: Vec<&str> = rows.iter().map(|o| o.event_id).collect();
        let webhook_id: Vec<&str> = rows.iter().map(|o| o.webhook_id).collect();
        let event: Vec<&str> = rows.iter().map(|o| o.event).collect();
        let body: Vec<&str> = rows.iter().map(|o| o.body).collect();
        let at: Vec<i64> = rows.iter().map(|o| o.at).collect();
        self.c.execute(
            "INSERT INTO webhook_outbox (event_id, webhook_id, event, body, state, next_at,
                 created_at)
             SELECT e, w, ev, b, 'pending', a, a
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                  WITH ORDINALITY AS u(e, w, ev, b, a, ord)
             ORDER BY ord",
            &[&event_id, &webhook_id, &event, &body, &at],
        )?;
        Ok(())
    }

    fn due_deliveries(&mut self, now: Millis, limit: u32) -> Result<Vec<Delivery>> {
        self.c
            .query(
                "SELECT o.id, o.webhook_id, o.event_id, o.event, w.url, w.secret, o.body,
                        o.attempts
                 FROM webhook_outbox o JOIN webhooks w ON w.id = o.webhook_id
                 WHERE o.state = 'pending' AND o.next_at <= $1 ORDER BY o.next_at, o.id
                 LIMIT $2",
                &[&now, &big(limit)],
            )?
            .iter()
            .map(delivery_row)
            .collect()
    }

    fn pending_endpoints(&mut self) -> Result<Vec<String>> {
        self.c
            .query(
                "SELECT w.id FROM webhooks w WHERE EXISTS (SELECT 1 FROM webhook_outbox o
                     WHERE o.webhook_id = w.id AND o.state = 'pending')",
                &[],
            )?
            .iter()
            .map(|r| get(r, 0))
            .collect()
    }

    fn claim_deliveries(
        &mut self,
        webhook: &str,
        now: Millis,
        limit: u32,
        lease_until: Millis,
        claimer: &str,
    ) -> Result<Vec<Delivery>> {
        // SKIP LOCKED: rows another relay is claiming right now are left to it, not waited
        // for. `next_at` moves to the lease's end too, so every reader of the schedule
        // (`next_delivery_of`, the metrics) sees the delivery as not due while it is claimed.
        self.c
            .query(
                "WITH due AS (
                     SELECT o.id, o.next_at AS due_at FROM webhook_outbox o
                     WHERE o.webhook_id = $1 AND o.state = 'pending' AND o.next_at <= $2
                       AND (o.claim_until IS NULL OR o.claim_until <= $2)
                     ORDER BY o.next_at, o.id LIMIT $3
                     FOR UPDATE SKIP LOCKED),
                 claimed AS (
                     UPDATE webhook_outbox o SET claimed_by = $5, claim_until = $4, next_at = $4
                     FROM due WHERE o.id = due.id
                     RETURNING o.id, o.webhook_id, o.event_id, o.event, o.body, o.attempts,
                               due.due_at)
                 SELECT c.id, c.webhook_id, c.event_id, c.event, w.url, w.secret, c.body,
                        c.attempts
                 FROM claimed c JOIN webhooks w ON w.id = c.webhook_id
                 ORDER BY c.due_at, c.id",
                &[&webhook, &now, &big(limit), &lease_until, &claimer],
            )?
            .iter()
            .map(delivery_row)
            .collect()
    }

    fn next_delivery_of(&mut self, webhook: &str) -> Result<Option<Millis>> {
        get(
            &self.c.query_one(
                "SELECT min(next_at) FROM webhook_outbox
                 WHERE webhook_id = $1 AND state = 'pending'",
                &[&webhook],
            )?,
            0,
        )
    }

    fn next_delivery_at(&mut self) -> Result<Option<Millis>> {
        get(
            &self.c.query_one(
                "SELECT min(next_at) FROM webhook_outbox WHERE state = 'pending'",
                &[],
            )?,
            0,
        )
    }

    fn delivery_result(
        &mut self,
        id: i64,
        claimer: Option<&str>,
        outcome: &DeliveryOutcome,
    ) -> Result<bool> {
        // `$2` NULL: unconditional; else only the holder of a pending delivery's claim.
        let n = match outcome {
            DeliveryOutcome::Delivered => self.c.execute(
                "UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1,
                     last_error = NULL, claimed_by = NULL, claim_until = NULL
                 WHERE id = $1
                   AND ($2::text IS NULL OR (claimed_by = $2 AND state = 'pending'))",
                &[&id, &claimer],
            )?,
            DeliveryOutcome::Retry { at, error } => self.c.execute(
                "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = $3, last_error = $4,
                     claimed_by = NULL, claim_until = NULL
                 WHERE id = $1
                   AND ($2::text IS NULL OR (claimed_by = $2 AND state = 'pending'))",
                &[&id, &claimer, at, error],
            )?,
            DeliveryOutcome::Dead { error } => self.c.execute(
                "UPDATE webhook_outbox SET state = 'dead', attempts = attempts + 1,
                     last_error = $3, claimed_by = NULL, claim_until = NULL
                 WHERE id = $1
                   AND ($2::text IS NULL OR (claimed_by = $2 AND state = 'pending'))",
                &[&id, &claimer, error],
            )?,
        };
        Ok(n > 0)
    }

    fn log_attempt(&mut self, log: &AttemptLog, keep: i64) -> Result<()> {
        self.c.execute(
            "INSERT INTO webhook_attempts (webhook_id, event_id, event, at, status, duration_ms,
                 error)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &log.webhook_id,
                &log.event_id,
                &log.event,
                &log.at,
                &log.status.map(i64::from),
                &log.duration_ms,
                &log.error,
            ],
        )?;
        self.c.execute(
            "DELETE FROM webhook_attempts WHERE webhook_id = $1 AND id <= (
                 SELECT id FROM webhook_attempts WHERE webhook_id = $1
                 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            &[&log.webhook_id, &keep],
        )?;
        Ok(())
    }

    fn webhook_of_account(&mut self, account: &str, webhook: &str) -> Result<bool> {
        Ok(self
            .c
            .query_opt(
                "SELECT 1 FROM webhooks WHERE id = $1 AND account_id = $2",
                &[&webhook, &account],
            )?
            .is_some())
    }

    fn list_attempts(&mut self, webhook: &str, limit: u32) -> Result<Vec<AttemptView>> {
        self.c
            .query(
                "SELECT a.webhook_id, a.event_id, a.event, a.at, a.status, a.duration_ms,
                        a.error, o.state
                 FROM webhook_attempts a LEFT JOIN webhook_outbox o ON o.event_id = a.event_id
                 WHERE a.webhook_id = $1 ORDER BY a.id DESC LIMIT $2",
                &[&webhook, &big(limit)],
            )?
            .iter()
            .map(|r| {
                let status = get::<Option<i64>>(r, 4)?
                    .map(|s| {
                        u16::try_from(s)
                            .map_err(|_| StoreError::Postgres("an HTTP status out of range".into()))
                    })
                    .transpose()?;
                Ok(AttemptView {
                    log: AttemptLog {
                        webhook_id: get(r, 0)?,
                        event_id: get(r, 1)?,
                        event: get(r, 2)?,
                        at: get(r, 3)?,
                        status,
                        duration_ms: get(r, 5)?,
                        error: get(r, 6)?,
                    },
                    delivery_state: get_opt_dstate(r, 7)?,
                })
            })
            .collect()
    }

    fn delivery_state(&mut self, webhook: &str, event_id: &str) -> Result<Option<DeliveryState>> {
        match self.c.query_opt(
            "SELECT state FROM webhook_outbox WHERE event_id = $1 AND webhook_id = $2",
            &[&event_id, &webhook],
        )? {
            Some(r) => get_opt_dstate(&r, 0),
            None => Ok(None),
        }
    }

    fn requeue_delivery(&mut self, event_id: &str, now: Millis) -> Result<()> {
        self.c.execute(
            "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_at = $2,
                 claimed_by = NULL, claim_until = NULL
             WHERE event_id = $1",
            &[&event_id, &now],
        )?;
        Ok(())
    }

    fn prune_deliveries(&mut self, before: Millis) -> Result<usize> {
        let n = self.c.execute(
            "DELETE FROM webhook_outbox WHERE state IN ('delivered', 'dropped') AND created_at < $1",
            &[&before],
        )?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

/// Messages per state, kept by the triggers of `message_counts`; a state once seen stays, at
/// 0 when empty.
pub(super) fn counts(c: &mut Conn) -> Result<Counts> {
    let messages_by_state = c
        .query(
            "SELECT state, n FROM message_counts ORDER BY state COLLATE \"C\"",
            &[],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect::<Result<_>>()?;
    let r = c.query_one(
        "SELECT (SELECT count(*) FROM webhook_outbox WHERE state = 'pending'),
                (SELECT count(*) FROM webhook_outbox WHERE state = 'dead'),
                (SELECT count(*) FROM recipients WHERE phone_id IS NULL AND state = 'pending')",
        &[],
    )?;
    Ok(Counts {
        messages_by_state,
        webhooks_pending: get(&r, 0)?,
        webhooks_dead: get(&r, 1)?,
        unrouted: get(&r, 2)?,
    })
}
