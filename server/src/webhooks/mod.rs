//! Webhook delivery from the durable outbox.
//!
//! Each delivery is a `POST` of the stored JSON body with
//! `X-Simrelay-Event-Id`, `X-Simrelay-Timestamp` (Unix seconds) and
//! `X-Simrelay-Signature` = lowercase hex HMAC-SHA256(secret, timestamp + "." + body).
//! A 2xx answer completes it; anything else is retried with exponential backoff (base delay
//! doubling per attempt, at most six hours apart) until the attempt limit, then it is `dead`.
//! With the defaults (10 s, 20 attempts) that is about two and a half days.
//!
//! Endpoints are isolated: each webhook with pending deliveries has its own worker task that
//! makes at most [`PER_ENDPOINT`] attempts at once (one at a time after a failure, until one
//! succeeds), so an endpoint that fails or never answers backs off alone while every other
//! endpoint's deliveries keep flowing. There is no batch barrier. A delivery is leased while
//! in flight (its `next_at` moves past the attempt timeout), so a crash mid-attempt makes it
//! again once the lease ends. URLs pass the SSRF guard ([`ssrf`]) at registration and at
//! every attempt ([`deliver`]).
//!
//! Several relays on one PostgreSQL each run this sender. The lease is a claim in the store,
//! made under a random id of this sender ([`claim_id`]): a delivery claimed by one relay is
//! not made by another until that claim's lease ends (the relay died or hung), and an outcome
//! is stored only by the claim's holder. Each event is thus delivered once by the cluster
//! when nothing fails, and at least once when a relay dies mid-attempt (receivers dedup by
//! `X-Simrelay-Event-Id`).

pub mod deliver;
pub mod ssrf;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::AppState;
use crate::store::{AttemptLog, Delivery, DeliveryOutcome, Millis, now_ms};
use deliver::Deliverer;

/// Attempts in flight at once per endpoint.
pub const PER_ENDPOINT: u32 = 4;
/// Most time past the attempt timeout a leased delivery stays away from other workers (the
/// time to store the attempt's outcome); the margin is the attempt timeout itself when that
/// is shorter, at least [`LEASE_MARGIN_MIN_MS`].
const LEASE_MARGIN_MS: i64 = 30_000;
const LEASE_MARGIN_MIN_MS: i64 = 2_000;
/// How often the dispatcher looks for endpoints without a worker when nothing woke it.
const RESCAN: Duration = Duration::from_secs(60);
/// How soon the dispatcher looks again after the store failed it (PostgreSQL away).
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(6 * 3600);
/// Delivered webhooks are kept this long (for support questions), then pruned; dead ones stay.
const KEEP_DELIVERED_MS: i64 = 7 * 24 * 3600 * 1000;
const PRUNE_EVERY_MS: i64 = 3600 * 1000;

/// The signature of a delivery.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The signature of an SMS Gateway for Android delivery: lowercase hex HMAC-SHA256(key,
/// body + timestamp), as the Android app's `PayloadSigningPlugin` makes it.
pub fn sign_smsgate(key: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body.as_bytes());
    mac.update(timestamp.to_string().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Delay before the retry after `attempts` failed attempts.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1u32 << attempts.min(20)).min(MAX_DELAY)
}

/// How long a claim lasts for an attempt timeout of `timeout`: the attempt, then the margin
/// to store its outcome.
pub fn lease(timeout: Duration) -> Duration {
    let t = millis(timeout);
    let ms = t.saturating_add(t.clamp(LEASE_MARGIN_MIN_MS, LEASE_MARGIN_MS));
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// A fresh random claim id for one sender (one per relay process; no configuration).
pub fn claim_id() -> String {
    format!("sender-{}", uuid::Uuid::new_v4().simple())
}

/// Runs until shutdown: starts a worker per webhook with pending deliveries.
pub async fn run(state: AppState) {
    let claimer: Arc<str> = claim_id().into();
    tracing::debug!(claim_id = %claimer, "webhook sender started");
    let deliverer = match Deliverer::new(&state.config) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; webhooks stay queued");
            return;
        }
    };
    let mut shutdown = state.shutdown.subscribe();
    let mut pruned_at = 0;
    // Webhook id -> its worker's wake-up; task id -> webhook id.
    let mut kicks: HashMap<String, Arc<Notify>> = HashMap::new();
    let mut ids: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut workers = JoinSet::new();
    loop {
        let now = now_ms();
        if now - pruned_at >= PRUNE_EVERY_MS {
            pruned_at = now;
            let before = now - KEEP_DELIVERED_MS;
            if let Err(e) = state.db.call(move |s| s.prune_deliveries(before)).await {
                tracing::error!(error = %e, "pruning delivered webhooks failed");
            }
        }
        let mut rescan = RESCAN;
        match state.db.call(|s| s.pending_endpoints()).await {
            Ok(hooks) => {
                for hook in hooks {
                    if let Some(kick) = kicks.get(&hook) {
                        kick.notify_one();
                        continue;
                    }
                    let kick = Arc::new(Notify::new());
                    let task = workers.spawn(endpoint(
                        state.clone(),
                        deliverer.clone(),
                        claimer.clone(),
                        hook.clone(),
                        kick.clone(),
                    ));
                    ids.insert(task.id(), hook.clone());
                    kicks.insert(hook, kick);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reading the webhook outbox failed");
                // The database is away, probably: look again soon, not in a minute.
                rescan = RETRY_AFTER_ERROR;
            }
        }
        tokio::select! {
            _ = state.webhook_kick.notified() => {}
            Some(done) = workers.join_next_with_id() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => {
                        tracing::error!(error = %e, "a webhook worker failed");
                        e.id()
                    }
                };
                if let Some(hook) = ids.remove(&id) {
                    kicks.remove(&hook);
                }
            }
            _ = tokio::time::sleep(rescan) => {}
            // An attempt cut short stays pending and is made again after the restart.
            _ = crate::stopped(&mut shutdown) => {
                workers.shutdown().await;
                return;
            }
        }
    }
}

/// Drains one webhook's deliveries until it has none pending.
async fn endpoint(
    state: AppState,
    deliverer: Deliverer,
    claimer: Arc<str>,
    hook: String,
    kick: Arc<Notify>,
) {
    let lease_ms = millis(lease(state.config.webhook_timeout));
    let mut in_flight: JoinSet<bool> = JoinSet::new();
    let mut healthy = true;
    loop {
        let cap = if healthy { PER_ENDPOINT } else { 1 };
        let free = cap.saturating_sub(u32::try_from(in_flight.len()).unwrap_or(u32::MAX));
        if free > 0 {
            let (h, c, now) = (hook.clone(), claimer.clone(), now_ms());
            match state
                .db
                .call(move |s| s.claim_deliveries(&h, now, free, now + lease_ms, &c))
                .await
            {
                Ok(claimed) => {
                    for d in claimed {
                        in_flight.spawn(attempt(
                            state.clone(),
                            deliverer.clone(),
                            claimer.clone(),
                            d,
                        ));
                    }
                }
                Err(e) => tracing::error!(error = %e, "claiming webhook deliveries failed"),
            }
        }
        let full = u32::try_from(in_flight.len()).unwrap_or(u32::MAX) >= cap;
        let next = if full {
            None
        } else {
            let h = hook.clone();
            match state.db.call(move |s| s.next_delivery_of(&h)).await {
                Ok(None) if in_flight.is_empty() => return,
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "reading the webhook outbox failed");
                    Some(now_ms() + 1000)
                }
            }
        };
        let wait = next.map_or(RESCAN, |t| {
            Duration::from_millis(u64::try_from(t - now_ms()).unwrap_or(0)).min(RESCAN)
        });
        tokio::select! {
            Some(done) = in_flight.join_next() => healthy = done.unwrap_or(false),
            _ = kick.notified(), if !full => {}
            _ = tokio::time::sleep(wait), if !full => {}
        }
    }
}

/// Makes one attempt and records it; true when it was delivered.
async fn attempt(state: AppState, deliverer: Deliverer, claimer: Arc<str>, d: Delivery) -> bool {
    let sent = deliverer
        .post(&d.url, &d.secret, &d.event, &d.event_id, &d.body)
        .await;
    let delivered = sent.error.is_none();
    let now = now_ms();
    let outcome = match sent.error.clone() {
        None => DeliveryOutcome::Delivered,
        Some(error) if d.attempts + 1 >= state.config.webhook_max_attempts => {
            tracing::warn!(event = %d.event, "webhook delivery dead after its last attempt");
            DeliveryOutcome::Dead { error }
        }
        Some(error) => {
            let delay = backoff(state.config.webhook_backoff, d.attempts);
            let at = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
            tracing::debug!(event = %d.event, attempts = d.attempts + 1, "webhook retry scheduled");
            DeliveryOutcome::Retry { at, error }
        }
    };
    let event = d.event.clone();
    let log = AttemptLog {
        webhook_id: d.webhook_id,
        event_id: d.event_id,
        event: d.event,
        at: sent.at,
        status: sent.status,
        duration_ms: sent.duration_ms,
        error: sent.error,
    };
    let id = d.id;
    match state
        .db
        .call(move |s| s.record_attempt(id, &claimer, outcome, &log))
        .await
    {
        Ok(true) => {}
        // The lease ran out first and another relay claimed the delivery: its outcome counts.
        Ok(false) => tracing::warn!(
            event = %event,
            "a webhook attempt outlived its claim; another relay makes the delivery"
        ),
        // The claim stays and ends with its lease: the delivery is made again then.
        Err(e) => tracing::error!(error = %e, "recording a webhook attempt failed"),
    }
    delivered
}

/// Sends a `webhook.ping` test event to a webhook now (outside the outbox: it is not
/// retried) and logs the attempt in its delivery log.
pub async fn ping(
    state: &AppState,
    hook: &crate::store::Webhook,
) -> Result<(String, deliver::Sent), crate::store::StoreError> {
    let event_id = uuid::Uuid::now_v7().to_string();
    let body = serde_json::json!({
        "id": event_id,
        "event": "webhook.ping",
        "webhook_id": hook.id,
        "created_at": crate::time_fmt::fmt_ms(now_ms()),
        "data": {},
    })
    .to_string();
    let sent = match Deliverer::new(&state.config) {
        Ok(d) => {
            d.post(&hook.url, &hook.secret, "webhook.ping", &event_id, &body)
                .await
        }
        Err(_) => deliver::Sent {
            at: now_ms(),
            status: None,
            duration_ms: 0,
            error: Some("request failed".into()),
        },
    };
    let log = AttemptLog {
        webhook_id: hook.id.clone(),
        event_id: event_id.clone(),
        event: "webhook.ping".into(),
        at: sent.at,
        status: sent.status,
        duration_ms: sent.duration_ms,
        error: sent.error.clone(),
    };
    state.db.call(move |s| s.log_attempt(&log)).await?;
    Ok((event_id, sent))
}

fn millis(d: Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"secret",b"1700000000.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            sign("secret", 1_700_000_000, "{}"),
            "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    /// The SMS Gateway scheme: body, then the timestamp, no separator.
    #[test]
    fn smsgate_signature_matches_a_known_vector() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"k3y",b"{\"a\":1}1700000000",hashlib.sha256).hexdigest())'
        assert_eq!(
            sign_smsgate("k3y", 1_700_000_000, r#"{"a":1}"#),
            "b3d7795bafa1b656932d6330da6f5a1cef4f3beb3567b5e04ebd7d4a48646aab"
        );
    }

    #[test]
    fn a_lease_covers_the_attempt_and_a_bounded_margin() {
        assert_eq!(lease(Duration::from_secs(1)), Duration::from_secs(3));
        assert_eq!(lease(Duration::from_secs(10)), Duration::from_secs(20));
        assert_eq!(lease(Duration::from_secs(60)), Duration::from_secs(90));
        assert_ne!(claim_id(), claim_id());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 0), Duration::from_secs(10));
        assert_eq!(backoff(base, 3), Duration::from_secs(80));
        assert_eq!(backoff(base, 19), MAX_DELAY);
    }
}
