//! The routing task: wakes on new messages, phones coming and going, and freed capacity,
//! asks the SIM router ([`crate::rack::Rack::plan`], [`crate::pool_router`]) which (phone, SIM)
//! each waiting recipient goes to, stores the decisions as `send` frames and
//! wakes the links of the phones that got frames. In a cluster (`crate::cluster`) it routes
//! only the accounts whose lease this node holds, over the cluster's online phones. Also
//! expires recipients that waited past
//! their `valid_until` without reaching a phone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::AppState;
use crate::hub::OnlinePhone;
use crate::pool_router::{Pending, Target};
use crate::rack::Rack;
use crate::store::RoutingInput;
use crate::store::{Assignment, Millis, Result, Store, Unrouted, now_ms};

/// Recipients considered per account and pass.
const PASS_LIMIT: u32 = 2000;
/// Routing also runs this often without a wake-up (expiry, lost notices).
const TICK: Duration = Duration::from_secs(1);
/// Wait after a wake-up before routing, so that a burst of wake-ups makes one pass.
const COALESCE: Duration = Duration::from_millis(2);

/// Routing passes since start and their wall time (`/metrics`: the mean pass time is their
/// ratio over any window).
#[derive(Debug, Default)]
pub struct PassStats {
    passes: AtomicU64,
    micros: AtomicU64,
}

impl PassStats {
    fn record(&self, took: Duration) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(us, Ordering::Relaxed);
    }

    /// (passes, seconds spent in them).
    pub fn totals(&self) -> (u64, f64) {
        (
            self.passes.load(Ordering::Relaxed),
            self.micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.subscribe();
    // An interval, not a fresh sleep per loop: expiry runs even while kicks keep coming.
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A node of a cluster also passes every `LEASE_TICK`: its leases are renewed in time and
    // a dead node's accounts are taken soon after their leases end.
    let clustered = state.cluster.is_some();
    let mut lease_tick = tokio::time::interval(crate::cluster::LEASE_TICK);
    lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        loop {
            let started = Instant::now();
            let result = pass(&state).await;
            state.passes.record(started.elapsed());
            match result {
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
            _ = lease_tick.tick(), if clustered => {}
            _ = crate::stopped(&mut shutdown) => return,
        }
    }
}

/// The router's view of a waiting recipient.
fn request(u: &Unrouted, input: &RoutingInput) -> Pending {
    let target = match (&u.pool, &u.phone, u.sim) {
        (Some(pool), _, _) => Target::Pool(pool.clone()),
        (None, phone, Some(sub_id)) => Target::Sim {
            phone: phone.clone(),
            sub_id,
        },
        (None, Some(phone), None) => Target::Phone(phone.clone()),
        (None, None, None) => Target::Any,
    };
    Pending {
        mseq: u.mseq,
        idx: u.idx,
        parts: u.parts,
        to: u.to.clone(),
        sticky: u
            .pool
            .as_ref()
            .is_some_and(|p| input.sticky_pools.contains(p)),
        target,
        avoid_phones: u.tried.iter().map(|k| k.phone.clone()).collect(),
        bound: u.bound.clone(),
    }
}

/// Routes the waiting recipients of one account to SIMs of its `phones` at `now` and stores
/// the decisions; returns the phones that got frames and whether the pass was full (more may
/// wait). Synchronous on a [`Store`]: the routing task runs it on the blocking pool, the rack
/// simulator (`crate::sims::rack_sim`) on virtual time.
pub fn route_account(
    s: &Store,
    rack: &Rack,
    account: &str,
    phones: &[OnlinePhone],
    now: Millis,
) -> Result<(Vec<String>, bool)> {
    let online: Vec<String> = phones.iter().map(|p| p.id.clone()).collect();
    let pending = s.unrouted(account, &online, PASS_LIMIT)?;
    if pending.is_empty() {
        return Ok((Vec::new(), false));
    }
    let input = s.routing_input(account, now)?;
    let requests: Vec<Pending> = pending.iter().map(|u| request(u, &input)).collect();
    let planned = rack.plan(&input, phones, &requests, now);
    let plan: Vec<Assignment> = planned
        .routes
        .into_iter()
        .map(|r| Assignment {
            mseq: r.mseq,
            idx: r.idx,
            phone: r.sim.phone,
            sim: Some(r.sim.sub_id),
        })
        .collect();
    let full = plan.len() == pending.len() && pending.len() == PASS_LIMIT as usize;
    Ok((s.commit_routes(&plan, now)?, full))
}

/// One routing pass over every account with online phones; true if it may have left work.
async fn pass(state: &AppState) -> Result<bool> {
    let mut more = false;
    // In a cluster: every node's phones, of the accounts whose lease this node holds.
    let online = match &state.cluster {
        Some(c) => c.routing_view().await?,
        None => state.hub.online_by_account(),
    };
    for (account, phones) in online {
        let now = now_ms();
        let st = state.clone();
        let (routed, full) = state
            .db
            .call(move |s| route_account(s, &st.rack, &account, &phones, now))
            .await?;
        // Links to these phones on other nodes are woken by the frames' `NOTIFY`.
        for phone in &routed {
            state.hub.kick(phone);
        }
        more |= full;
    }
    Ok(more)
}
