//! `system:ping`: every phone connected to this relay "pings" its account's SMS Gateway
//! webhooks each `ping.interval_seconds` (the account's setting, at least
//! [`MIN_INTERVAL_S`]), as the Android app does, with the phone's health: its battery, whether
//! it charges, and its queue. Accounts without the setting or without a `system:ping`
//! webhook get nothing. A phone is pinged by a relay it is connected to; a phone linked to
//! several relays of a cluster is pinged once per interval, by the first whose interval is up
//! (the store keeps each phone's last ping: `Tx::claim_pings`).

use std::collections::HashMap;
use std::time::Duration;

use crate::AppState;
use crate::domain::smsgate;
use crate::hub::OnlinePhone;
use crate::store::{Millis, StoreError, now_ms};

/// How often the task looks for pings due.
const TICK: Duration = Duration::from_secs(5);
/// Shortest interval between two pings of a phone.
pub const MIN_INTERVAL_S: u64 = 10;

/// When each phone was last pinged.
#[derive(Debug, Default)]
pub struct Pinger {
    last: HashMap<String, Millis>,
}

/// The health a ping carries for `phone` (the Android app's `HealthResponse` shape).
pub fn health(phone: &OnlinePhone) -> serde_json::Value {
    let s = &phone.status;
    let mut checks = serde_json::Map::new();
    if let Some(level) = s.battery {
        checks.insert(
            "battery:level".into(),
            serde_json::json!({
                "status": if level < 10 { "warn" } else { "pass" },
                "observedValue": level,
                "observedUnit": "percent",
            }),
        );
    }
    if let Some(charging) = s.charging {
        checks.insert(
            "battery:charging".into(),
            serde_json::json!({"status": "pass", "observedValue": u8::from(charging)}),
        );
    }
    checks.insert(
        "messages:queued".into(),
        serde_json::json!({
            "status": "pass",
            "observedValue": s.queue_depth,
            "observedUnit": "recipients",
        }),
    );
    serde_json::json!({
        "status": "pass",
        "version": s.app_version,
        "checks": checks,
    })
}

impl Pinger {
    /// Queues the pings due at `now` for the phones connected here; returns how many
    /// deliveries were queued.
    pub async fn tick(&mut self, state: &AppState, now: Millis) -> Result<usize, StoreError> {
        let online = state.hub.online_by_account();
        self.last
            .retain(|p, _| online.iter().any(|(_, ps)| ps.iter().any(|o| &o.id == p)));
        let mut queued = 0;
        for (account, phones) in online {
            let acc = account.clone();
            let interval = state
                .db
                .call(move |s| s.compat_settings(&acc))
                .await?
                .as_deref()
                .and_then(smsgate::ping_interval_s);
            let Some(interval) = interval else { continue };
            let every = i64::try_from(interval.max(MIN_INTERVAL_S) * 1000).unwrap_or(i64::MAX);
            let due: Vec<(String, serde_json::Value)> = phones
                .iter()
                .filter(|p| self.last.get(&p.id).is_none_or(|t| now - t >= every))
                .map(|p| (p.id.clone(), health(p)))
                .collect();
            if due.is_empty() {
                continue;
            }
            for (p, _) in &due {
                self.last.insert(p.clone(), now);
            }
            queued += state
                .db
                .call(move |s| s.queue_pings(&account, &due, now, every))
                .await?;
        }
        if queued > 0 {
            state.webhook_kick.notify_one();
        }
        Ok(queued)
    }
}

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.subscribe();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pinger = Pinger::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = pinger.tick(&state, now_ms()).await {
                    tracing::warn!(error = %e, "queueing system:ping webhooks failed");
                }
            }
            () = crate::stopped(&mut shutdown) => return,
        }
    }
}
