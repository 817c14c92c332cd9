//! Webhooks: queueing events (which ones, with which payload: `crate::domain::webhooks`),
//! registrations, and the durable outbox the delivery workers (`crate::webhooks`) drain, one
//! webhook at a time per worker. The last [`ATTEMPTS_KEPT`] attempts of each webhook stay in
//! its delivery log.

use serde::Serialize;

use crate::domain::smsgate::{self, Rendered};
use crate::domain::webhooks::{Envelope, Event, ReceivedData, RecipientData, recipient_event};
use crate::domain::{DeliveryState, RecipientStatus};
use crate::store::tx::{OutboxInsert, Subscriber, Tx};
use crate::store::{
    AttemptLog, AttemptView, Counts, Delivery, DeliveryOutcome, InboxItem, Millis, Redeliver,
    Redelivery, Result, Store, Webhook,
};
use crate::time_fmt::fmt_ms;

/// Attempts kept per webhook in its delivery log.
pub const ATTEMPTS_KEPT: i64 = 50;

/// The account's webhooks that want `event`.
fn wanting(tx: &mut dyn Tx, account: &str, event: Event) -> Result<Vec<String>> {
    Ok(tx
        .subscribers(account)?
        .into_iter()
        .filter(|(_, events)| event.wanted_by(events))
        .map(|(id, _)| id)
        .collect())
}

/// Queues one delivery of `event` with `data` per webhook in `hooks`, each with its own event
/// id; returns how many.
fn queue<T: Serialize>(
    tx: &mut dyn Tx,
    hooks: &[String],
    event: Event,
    data: &T,
    now: Millis,
) -> Result<usize> {
    let mut rows = Vec::with_capacity(hooks.len());
    for hook in hooks {
        let event_id = uuid::Uuid::now_v7().to_string();
        let body = serde_json::to_string(&Envelope {
            created_at: fmt_ms(now),
            data,
            event,
            id: &event_id,
            webhook_id: hook,
        })?;
        rows.push((event_id, body));
    }
    let inserts: Vec<OutboxInsert<'_>> = rows
        .iter()
        .zip(hooks)
        .map(|((event_id, body), hook)| OutboxInsert {
            event_id,
            webhook_id: hook,
            event: event.as_str(),
            body,
            at: now,
        })
        .collect();
    tx.insert_outbox(&inserts)?;
    Ok(hooks.len())
}

/// Queues one SMS Gateway delivery of `r` per webhook of `subs` that wants it (its body is
/// the Android app's, `crate::domain::smsgate`); returns how many.
fn queue_smsgate(tx: &mut dyn Tx, subs: &[Subscriber], r: &Rendered, now: Millis) -> Result<usize> {
    let hooks: Vec<&str> = subs
        .iter()
        .filter(|(_, events)| smsgate::wants(events, r.name, r.phone.as_deref()))
        .map(|(id, _)| id.as_str())
        .collect();
    if hooks.is_empty() {
        return Ok(0);
    }
    let mut rows = Vec::with_capacity(hooks.len());
    for hook in &hooks {
        let event_id = uuid::Uuid::now_v7().to_string();
        let body = serde_json::to_string(&smsgate::Envelope {
            id: &event_id,
            webhook_id: hook,
            event: r.name,
            device_id: r.phone.as_deref(),
            payload: &r.payload,
        })?;
        rows.push((event_id, body));
    }
    let inserts: Vec<OutboxInsert<'_>> = rows
        .iter()
        .zip(&hooks)
        .map(|((event_id, body), hook)| OutboxInsert {
            event_id,
            webhook_id: hook,
            event: r.name,
            body,
            at: now,
        })
        .collect();
    tx.insert_outbox(&inserts)?;
    Ok(hooks.len())
}

/// Queues a received SMS for the account's webhooks: `message.received` for the relay's
/// own, `sms:received` / `sms:data-received` for SMS Gateway ones.
pub(crate) fn enqueue_received(
    tx: &mut dyn Tx,
    account: &str,
    data: &ReceivedData,
    now: Millis,
) -> Result<usize> {
    let subs = tx.subscribers(account)?;
    if subs.is_empty() {
        return Ok(0);
    }
    let event = Event::MessageReceived;
    let native: Vec<String> = subs
        .iter()
        .filter(|(_, events)| event.wanted_by(events))
        .map(|(id, _)| id.clone())
        .collect();
    let mut n = 0;
    if !native.is_empty() {
        n += queue(tx, &native, event, data, now)?;
    }
    n += queue_smsgate(tx, &subs, &smsgate::received(data), now)?;
    Ok(n)
}

/// The account's SMS Gateway webhooks.
fn smsgate_subscribers(tx: &mut dyn Tx, account: &str) -> Result<Vec<Subscriber>> {
    Ok(tx
        .subscribers(account)?
        .into_iter()
        .filter(|(_, events)| smsgate::is_smsgate(events))
        .collect())
}

/// Queues stored SMS for the account's SMS Gateway webhooks again (`POST /inbox/refresh`):
/// one event per SMS, or one batch event per phone and kind.
pub(crate) fn redeliver_received(
    tx: &mut dyn Tx,
    account: &str,
    items: &[InboxItem],
    mode: Redelivery,
    now: Millis,
) -> Result<usize> {
    let subs = smsgate_subscribers(tx, account)?;
    if subs.is_empty() {
        return Ok(0);
    }
    let rendered = items.iter().map(|i| {
        smsgate::received(&ReceivedData {
            from: i.from.clone(),
            id: i.id.clone(),
            phone: i.phone.clone(),
            received_at: fmt_ms(i.received_at),
            sent_at: i.sent_at.map(fmt_ms),
            sim: i.sim,
            text: i.text.clone(),
            data_port: i.data_port,
            encrypted: i.encrypted,
        })
    });
    let mut n = 0;
    match mode {
        Redelivery::Individual => {
            for r in rendered {
                n += queue_smsgate(tx, &subs, &r, now)?;
            }
        }
        Redelivery::Batch => {
            let mut batches: Vec<Rendered> = Vec::new();
            for r in rendered {
                let name = smsgate::batch_name(r.name);
                match batches
                    .iter_mut()
                    .find(|b| b.name == name && b.phone == r.phone)
                {
                    Some(b) => b.payload["messages"]
                        .as_array_mut()
                        .expect("a batch holds an array")
                        .push(r.payload),
                    None => batches.push(Rendered {
                        name,
                        phone: r.phone,
                        payload: serde_json::json!({ "messages": [r.payload] }),
                    }),
                }
            }
            for b in &batches {
                n += queue_smsgate(tx, &subs, b, now)?;
            }
        }
    }
    Ok(n)
}

/// Queues a `system:ping` per (phone, health) of `pings` for the account's SMS Gateway
/// webhooks that want it.
pub(crate) fn queue_pings(
    tx: &mut dyn Tx,
    account: &str,
    pings: &[(String, serde_json::Value)],
    now: Millis,
    every: Millis,
) -> Result<usize> {
    let subs = smsgate_subscribers(tx, account)?;
    // Another relay the phone is linked to may have pinged it within the interval.
    let phones: Vec<&str> = pings.iter().map(|(p, _)| p.as_str()).collect();
    let due = tx.claim_pings(&phones, now, every)?;
    let mut n = 0;
    for (phone, health) in pings.iter().filter(|(p, _)| due.contains(p)) {
        let r = Rendered {
            name: "system:ping",
            phone: Some(phone.clone()),
            payload: serde_json::json!({ "health": health }),
        };
        n += queue_smsgate(tx, &subs, &r, now)?;
    }
    Ok(n)
}

/// Queues `event` for every webhook of the account that wants it; returns how many
/// deliveries were queued.
pub(crate) fn enqueue_event<T: Serialize>(
    tx: &mut dyn Tx,
    account: &str,
    event: Event,
    data: &T,
    now: Millis,
) -> Result<usize> {
    let hooks = wanting(tx, account, event)?;
    if hooks.is_empty() {
        return Ok(0);
    }
    queue(tx, &hooks, event, data, now)
}

/// Queues the webhook of a recipient that just entered `state`, if that state has one;
/// returns how many deliveries were queued.
pub(crate) fn recipient_webhook(
    tx: &mut dyn Tx,
    account: &str,
    mseq: i64,
    idx: u32,
    state: RecipientStatus,
    now: Millis,
) -> Result<usize> {
    let event = recipient_event(state);
    let subs = tx.subscribers(account)?;
    let hooks: Vec<String> = match event {
        Some(e) => subs
            .iter()
            .filter(|(_, events)| e.wanted_by(events))
            .map(|(id, _)| id.clone())
            .collect(),
        None => Vec::new(),
    };
    let gate: Vec<Subscriber> = subs
        .into_iter()
        .filter(|(_, events)| smsgate::is_smsgate(events))
        .collect();
    if hooks.is_empty() && gate.is_empty() {
        return Ok(0);
    }
    let r = tx.recipient_event(mseq, idx)?;
    let data = RecipientData {
        code: r.code,
        error: r.error,
        idx,
        message_id: r.message_id,
        parts: r.parts,
        phone: r.phone,
        sim: r.sim,
        state: r.state,
        to: r.to,
    };
    let mut n = 0;
    if let Some(e) = event
        && !hooks.is_empty()
    {
        n += queue(tx, &hooks, e, &data, now)?;
    }
    if !gate.is_empty()
        && let Some(rendered) = smsgate::recipient(state, &data, &fmt_ms(now))
    {
        n += queue_smsgate(tx, &gate, &rendered, now)?;
    }
    Ok(n)
}

impl Store {
    pub fn create_webhook(&self, account: &str, hook: &Webhook) -> Result<()> {
        self.write(|tx| tx.insert_webhook(account, hook))
    }

    pub fn list_webhooks(&self, account: &str) -> Result<Vec<Webhook>> {
        self.read(|tx| tx.list_webhooks(account))
    }

    /// Deletes the webhook; its pending deliveries are dropped and its log forgotten.
    pub fn delete_webhook(&self, account: &str, id: &str) -> Result<bool> {
        self.write(|tx| tx.delete_webhook(account, id))
    }

    pub fn due_deliveries(&self, now: Millis, limit: u32) -> Result<Vec<Delivery>> {
        self.read(|tx| tx.due_deliveries(now, limit))
    }

    /// Records one delivery attempt: delivered, retry at `retry_at`, or dead.
    pub fn delivery_result(&self, id: i64, outcome: DeliveryOutcome, _now: Millis) -> Result<()> {
        self.write(|tx| tx.delivery_result(id, None, &outcome).map(drop))
    }

    /// Earliest `next_at` of a pending delivery.
    pub fn next_delivery_at(&self) -> Result<Option<Millis>> {
        self.read(|tx| tx.next_delivery_at())
    }

    /// Forgets delivered (and dropped) webhook deliveries created before `before`.
    pub fn prune_deliveries(&self, before: Millis) -> Result<usize> {
        self.write(|tx| tx.prune_deliveries(before))
    }

    /// Webhooks with pending deliveries (due or not).
    pub fn pending_endpoints(&self) -> Result<Vec<String>> {
        self.read(|tx| tx.pending_endpoints())
    }

    /// Takes up to `limit` due deliveries of one webhook, oldest first, and leases them to
    /// `claimer` (the sender's random id): their `next_at` becomes `lease_until`, so that they
    /// are not due again while in flight, neither here nor on another relay of the cluster
    /// (and are made again, by any relay, after a crash once the lease ends).
    pub fn claim_deliveries(
        &self,
        webhook: &str,
        now: Millis,
        limit: u32,
        lease_until: Millis,
        claimer: &str,
    ) -> Result<Vec<Delivery>> {
        self.write(|tx| tx.claim_deliveries(webhook, now, limit, lease_until, claimer))
    }

    /// Earliest `next_at` of a pending delivery of one webhook.
    pub fn next_delivery_of(&self, webhook: &str) -> Result<Option<Millis>> {
        self.read(|tx| tx.next_delivery_of(webhook))
    }

    /// Records one attempt of delivery `id` in the webhook's log and applies its outcome if
    /// `claimer` still holds the delivery (see [`crate::store::tx::WebhookRows::delivery_result`]); returns whether the
    /// outcome applied. The attempt is logged either way: the receiver saw it.
    pub fn record_attempt(
        &self,
        id: i64,
        claimer: &str,
        outcome: DeliveryOutcome,
        log: &AttemptLog,
    ) -> Result<bool> {
        self.write(|tx| {
            let applied = tx.delivery_result(id, Some(claimer), &outcome)?;
            tx.log_attempt(log, ATTEMPTS_KEPT)?;
            Ok(applied)
        })
    }

    /// Adds an attempt that belongs to no queued delivery (a test ping) to the log.
    pub fn log_attempt(&self, log: &AttemptLog) -> Result<()> {
        self.write(|tx| tx.log_attempt(log, ATTEMPTS_KEPT))
    }

    /// The newest attempts of an account's webhook, newest first; `None` for a webhook of
    /// another account.
    pub fn list_attempts(
        &self,
        account: &str,
        webhook: &str,
        limit: u32,
    ) -> Result<Option<Vec<AttemptView>>> {
        self.read(|tx| {
            if !tx.webhook_of_account(account, webhook)? {
                return Ok(None);
            }
            Ok(Some(tx.list_attempts(webhook, limit)?))
        })
    }

    /// Queues a dead delivery again (attempts restart from 0).
    pub fn redeliver(
        &self,
        account: &str,
        webhook: &str,
        event_id: &str,
        now: Millis,
    ) -> Result<Redeliver> {
        self.write(|tx| {
            if !tx.webhook_of_account(account, webhook)? {
                return Ok(Redeliver::NotFound);
            }
            match tx.delivery_state(webhook, event_id)? {
                None => Ok(Redeliver::NotFound),
                Some(DeliveryState::Dead) => {
                    tx.requeue_delivery(event_id, now)?;
                    Ok(Redeliver::Queued)
                }
                Some(other) => Ok(Redeliver::NotDead(other)),
            }
        })
    }

    /// Counters for `/metrics`.
    pub fn counts(&self) -> Result<Counts> {
        self.read(|tx| tx.counts())
    }
}
