//! The relay's rack state kept in memory: SIM health (cooldown, quarantine, probe) and the
//! number → SIM stickiness, plus the glue that turns store rows and online phones into
//! [`pool_router`] input and the per-SIM figures of `GET /v1/sims` and pool stats.
//!
//! Health and stickiness start fresh when the relay restarts: every SIM is healthy again and
//! numbers pick a SIM anew. Pools, SIM settings and usage are durable (`store::ops::pools`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;

use crate::hub::OnlinePhone;
use crate::pool_router::{self, Pending, Planned, Policy, SimKey, SimLimits, SimSlot};
use crate::sim_health::{HealthEvent, HealthPolicy, Millis, Outcome, SimHealth};
use crate::store::RoutingInput;

/// Default pace lookahead: a SIM holds at most this much of its pace in routed, unsent parts.
pub const LOOKAHEAD_MS: Millis = 15_000;
/// Most SIMs (on distinct phones) one recipient tries before it ends `failed`.
pub const MAX_SIMS: usize = 3;

/// Health and stickiness of every SIM.
#[derive(Debug)]
pub struct Rack {
    health: Mutex<SimHealth>,
    sticky: Mutex<HashMap<String, SimKey>>,
    pub lookahead_ms: Millis,
    pub max_sims: usize,
}

impl Default for Rack {
    fn default() -> Self {
        Self::new(HealthPolicy::default())
    }
}

/// One SIM's figures for the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SimStat {
    pub phone: String,
    pub sub_id: i32,
    pub online: bool,
    /// `healthy`, `cooldown`, `quarantined` or `probing`.
    pub state: &'static str,
    pub parts_per_minute: u32,
    /// Parts routed to the SIM and not yet sent.
    pub queue_parts: u32,
    pub routed_today: u32,
    pub daily_cap: Option<u32>,
    pub hours: Option<String>,
    pub utc_offset_min: i16,
    /// Parts sent over the last ten minutes, per minute.
    pub throughput_per_min: f64,
    /// `throughput_per_min / parts_per_minute`.
    pub pace_utilisation: f64,
    /// Recipients that left this SIM since the relay started.
    pub sent: u64,
    /// SIM-bound failures by reason since the relay started.
    pub failures: BTreeMap<String, u64>,
    /// Seconds to send what the SIM holds, at its pace.
    pub drain_seconds: f64,
}

impl Rack {
    pub fn new(policy: HealthPolicy) -> Self {
        Self {
            health: Mutex::new(SimHealth::new(policy)),
            sticky: Mutex::new(HashMap::new()),
            lookahead_ms: LOOKAHEAD_MS,
            max_sims: MAX_SIMS,
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, SimHealth> {
        self.health.lock().expect("rack health lock")
    }

    /// Plans one routing pass for an account's online phones.
    pub fn plan(
        &self,
        input: &RoutingInput,
        phones: &[OnlinePhone],
        pending: &[Pending],
        now: Millis,
    ) -> Planned {
        let mut slots = Vec::new();
        {
            let health = self.health();
            for p in phones {
                for s in &p.status.sims {
                    let key = SimKey::new(p.id.clone(), s.sub_id);
                    let settings = input.sim_settings(&key);
                    slots.push(SimSlot {
                        gate: health.gate(&key, now),
                        parts_per_minute: s.parts_per_minute,
                        phone_capped: s.daily_cap > 0 && s.sent_today >= s.daily_cap,
                        limits: SimLimits {
                            window: input.window(&key),
                            ..settings.limits()
                        },
                        routed_today: input.routed_today.get(&key).copied().unwrap_or(0),
                        unsent_parts: input.unsent.get(&key).copied().unwrap_or(0),
                        key,
                    });
                }
            }
        }
        let policy = Policy {
            lookahead_ms: self.lookahead_ms,
            sticky: false,
            pools: input.pools.clone(),
            prefixes: input.prefixes.clone(),
        };
        let planned = {
            let mut sticky = self.sticky.lock().expect("rack sticky lock");
            pool_router::plan(&policy, &mut sticky, pending, &mut slots, now)
        };
        let mut health = self.health();
        for k in &planned.probes {
            health.probe_started(k);
        }
        planned
    }

    /// Records an outcome reported by a phone; returns a change worth a webhook.
    pub fn record(&self, key: &SimKey, outcome: Outcome, now: Millis) -> Option<HealthEvent> {
        self.health().record(key, outcome, now)
    }

    pub fn state(&self, key: &SimKey, now: Millis) -> &'static str {
        self.health().state(key, now)
    }

    /// Figures of every SIM of `phones` (all the account's phones; `online` marks live ones).
    pub fn sim_stats(
        &self,
        input: &RoutingInput,
        phones: &[(String, bool, Vec<simrelay_protocol::SimInfo>)],
        sent_10min: &HashMap<SimKey, u32>,
        now: Millis,
    ) -> Vec<SimStat> {
        let health = self.health();
        let mut out = Vec::new();
        for (phone, online, sims) in phones {
            for s in sims {
                let key = SimKey::new(phone.clone(), s.sub_id);
                let settings = input.sim_settings(&key);
                let (sent, failures) = health.figures(&key);
                let ppm = f64::from(s.parts_per_minute.max(1));
                let tput = f64::from(sent_10min.get(&key).copied().unwrap_or(0)) / 10.0;
                let queue = input.unsent.get(&key).copied().unwrap_or(0);
                out.push(SimStat {
                    phone: phone.clone(),
                    sub_id: s.sub_id,
                    online: *online,
                    state: health.state(&key, now),
                    parts_per_minute: s.parts_per_minute,
                    queue_parts: queue,
                    routed_today: input.routed_today.get(&key).copied().unwrap_or(0),
                    daily_cap: settings.daily_cap,
                    hours: settings.hours.clone(),
                    utc_offset_min: settings.utc_offset_min,
                    throughput_per_min: tput,
                    pace_utilisation: tput / ppm,
                    sent,
                    failures,
                    drain_seconds: f64::from(queue) * 60.0 / ppm,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool_router::{Pending, Target};
    use simrelay_protocol::{PhoneStatus, SimInfo};

    fn plan(input: &RoutingInput) -> usize {
        let rack = Rack::new(HealthPolicy::default());
        let phone = crate::hub::OnlinePhone {
            id: "p".into(),
            status: PhoneStatus {
                sims: vec![SimInfo {
                    sub_id: 1,
                    slot: 0,
                    carrier: None,
                    parts_per_minute: 60,
                    daily_cap: 0,
                    sent_today: 0,
                }],
                queue_depth: 0,
                battery: None,
                charging: None,
                app_version: "test".into(),
            },
        };
        let pending: Vec<Pending> = (0..5)
            .map(|i| Pending {
                mseq: i,
                idx: 0,
                parts: 1,
                to: "+15550001".into(),
                target: Target::Any,
                avoid_phones: Vec::new(),
                bound: Vec::new(),
                sticky: false,
            })
            .collect();
        rack.plan(input, &[phone], &pending, 0).routes.len()
    }

    /// The account's `PerMinute`/`Per30Minutes`/`PerHour` limit counts what the SIM sent in
    /// the window and what it holds unsent, and the pass itself.
    #[test]
    fn the_accounts_window_limit_counts_sent_unsent_and_this_pass() {
        let key = SimKey::new("p", 1);
        let mut input = RoutingInput {
            window_limit: Some(crate::domain::smsgate::WindowLimit {
                minutes: 60,
                limit: 3,
            }),
            ..RoutingInput::default()
        };
        assert_eq!(plan(&input), 3, "five waiting, three fit");
        input.window_sent.insert(key.clone(), 2);
        assert_eq!(plan(&input), 1);
        input.unsent.insert(key.clone(), 1);
        assert_eq!(plan(&input), 0, "two sent and one in hand");
        input.window_limit = None;
        assert_eq!(
            plan(&input),
            5,
            "no limit: the pace's lookahead of 15 at 60/min"
        );
    }

    /// The account's `PerDay` limit (SMS Gateway settings) caps a SIM without a cap of its own.
    #[test]
    fn the_accounts_daily_limit_caps_sims_without_their_own() {
        let key = SimKey::new("p", 1);
        let mut input = RoutingInput {
            default_daily_cap: Some(2),
            ..RoutingInput::default()
        };
        input.routed_today.insert(key.clone(), 1);
        assert_eq!(plan(&input), 1);
        input.routed_today.insert(key.clone(), 2);
        assert_eq!(plan(&input), 0, "at the account's cap");
        input.settings.insert(
            key,
            crate::store::SimSettings {
                daily_cap: Some(5),
                ..Default::default()
            },
        );
        assert_eq!(plan(&input), 3, "the SIM's own cap wins");
    }
}
