//! Webhook delivery from the durable outbox.
//!
//! Each delivery is a `POST` of the stored JSON body with
//! `X-Simrelay-Event-Id`, `X-Simrelay-Timestamp` (Unix seconds) and
//! `X-Simrelay-Signature` = lowercase hex HMAC-SHA256(secret, timestamp + "." + body).
//! A 2xx answer completes it; anything else is retried with exponential backoff (base delay
//! doubling per attempt, at most six hours apart) until the attempt limit, then it is `dead`.
//! With the defaults (10 s, 20 attempts) that is about two and a half days.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::AppState;
use crate::store::{Delivery, DeliveryOutcome, now_ms};

/// Deliveries attempted at once.
const BATCH: u32 = 32;
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

/// Delay before the retry after `attempts` failed attempts.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1u32 << attempts.min(20)).min(MAX_DELAY)
}

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("simrelay/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; webhooks stay queued");
            return;
        }
    };
    let mut shutdown = state.shutdown.subscribe();
    let mut pruned_at = 0;
    loop {
        let now = now_ms();
        if now - pruned_at >= PRUNE_EVERY_MS {
            pruned_at = now;
            let before = now - KEEP_DELIVERED_MS;
            if let Err(e) = state.db.call(move |s| s.prune_deliveries(before)).await {
                tracing::error!(error = %e, "pruning delivered webhooks failed");
            }
        }
        let due = match state.db.call(move |s| s.due_deliveries(now, BATCH)).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "reading the webhook outbox failed");
                Vec::new()
            }
        };
        if !due.is_empty() {
            let attempts = due.into_iter().map(|d| attempt(&state, &client, d));
            tokio::select! {
                _ = futures_util::future::join_all(attempts) => {}
                // An attempt cut short stays pending and is made again after the restart.
                _ = crate::stopped(&mut shutdown) => return,
            }
            continue;
        }
        let next = state.db.call(|s| s.next_delivery_at()).await.ok().flatten();
        let wait_ms = next.map_or(60_000, |t| (t - now_ms()).clamp(0, 60_000));
        let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
        tokio::select! {
            _ = state.webhook_kick.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = crate::stopped(&mut shutdown) => return,
        }
    }
}

async fn attempt(state: &AppState, client: &reqwest::Client, d: Delivery) {
    let ts = now_ms() / 1000;
    let sig = sign(&d.secret, ts, &d.body);
    let result = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("x-simrelay-event-id", &d.event_id)
        .header("x-simrelay-timestamp", ts.to_string())
        .header("x-simrelay-signature", sig)
        .body(d.body.clone())
        .send()
        .await;
    let error = match result {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("HTTP {}", r.status().as_u16())),
        // reqwest's error text names the URL's host, never the body.
        Err(e) => Some(if e.is_timeout() {
            "timeout".to_string()
        } else if e.is_connect() {
            "connect failed".to_string()
        } else {
            "request failed".to_string()
        }),
    };
    let now = now_ms();
    let outcome = match error {
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
    let id = d.id;
    if let Err(e) = state
        .db
        .call(move |s| s.delivery_result(id, outcome, now))
        .await
    {
        tracing::error!(error = %e, "recording a webhook attempt failed");
    }
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

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 0), Duration::from_secs(10));
        assert_eq!(backoff(base, 3), Duration::from_secs(80));
        assert_eq!(backoff(base, 19), MAX_DELAY);
    }
}
