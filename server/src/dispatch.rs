//! The routing task: wakes on new messages, phones coming and going, and freed capacity,
//! asks the [`Router`] where waiting recipients go, stores the decisions as `send` frames and
//! wakes the links of the phones that got frames. Also expires recipients that waited past
//! their `valid_until` without reaching a phone.

use std::time::Duration;

use crate::AppState;
use crate::router::{PhoneCapacity, Router};
use crate::store::{Result, now_ms};

/// Recipients considered per account and pass.
const PASS_LIMIT: u32 = 2000;
/// Routing also runs this often without a wake-up (expiry, lost notices).
const TICK: Duration = Duration::from_secs(1);
/// Wait after a wake-up before routing, so that a burst of wake-ups makes one pass.
const COALESCE: Duration = Duration::from_millis(2);

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.subscribe();
    let router = Router {
        max_outstanding: state.config.phone_queue_max,
    };
    // An interval, not a fresh sleep per loop: expiry runs even while kicks keep coming.
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        loop {
            match pass(&state, &router).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    tracing::error!(error = %e, "routing pass failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = state.route_kick.notified() => {
                // Let kicks that arrive together (a burst of commits) share one pass.
                tokio::time::sleep(COALESCE).await;
            }
            _ = tick.tick() => {
                let now = now_ms();
                let validity = i64::try_from(state.config.default_validity.as_millis())
                    .unwrap_or(i64::MAX / 2);
                match state.db.call(move |s| s.expire_unrouted(now, validity)).await {
                    Ok(n) if n > 0 => state.webhook_kick.notify_one(),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "expiry pass failed"),
                }
            }
            _ = crate::stopped(&mut shutdown) => return,
        }
    }
}

/// One routing pass over every account with online phones; true if it may have left work.
async fn pass(state: &AppState, router: &Router) -> Result<bool> {
    let mut more = false;
    for (account, phones) in state.hub.online_by_account() {
        let router = router.clone();
        let now = now_ms();
        let online: Vec<String> = phones.iter().map(|p| p.id.clone()).collect();
        let (routed, full) = state
            .db
            .call(move |s| {
                let pending = s.unrouted(&account, &online, PASS_LIMIT)?;
                if pending.is_empty() {
                    return Ok((Vec::new(), false));
                }
                let mut caps = Vec::with_capacity(phones.len());
                for p in phones {
                    caps.push(PhoneCapacity {
                        outstanding: s.outstanding(&p.id)?,
                        id: p.id,
                        sims: p.status.sims,
                    });
                }
                let plan = router.plan(&pending, &caps);
                let full = plan.len() == pending.len() && pending.len() == PASS_LIMIT as usize;
                Ok((s.commit_routes(&plan, now)?, full))
            })
            .await?;
        for phone in &routed {
            state.hub.kick(phone);
        }
        more |= full;
    }
    Ok(more)
}
