//! The rack simulator: many phones with several SIMs each, on virtual time, so hours of traffic
//! run in seconds. The phones are the real core engines (`Engine::open_in_memory`, the
//! engine's default pacing: jitter 0.25 unless the scenario says otherwise) with simulated
//! radios. The relay is either the real store and routing pass
//! ([`store_relay::StoreRelay`]: SQLite, `dispatch::route_account`, the store's acceptance,
//! re-routing and failover) or [`relay_model::RelayModel`], the same rules
//! ([`crate::domain`]), SIM router and health tracker over rows kept in memory (fast enough
//! for big sweeps). A link is modelled as frames and events exchanged every step while the
//! phone is alive; a dead phone neither steps nor talks, keeps its accepted work and resumes
//! when it returns. SIMs start failing with a SIM-bound code (`RESULT_RIL_SIM_ABSENT`), some
//! recover later.
//!
//! The report counts recipients lost (not delivered and not reported failed), parts
//! transmitted twice (from the radios' counters, summed over every radio), and throughput as
//! a ratio of the theoretical limit: the sum of each SIM's pace over the time it was healthy
//! and its phone alive, up to the last transmission. Used by `benches/rack.rs` (full size)
//! and `tests/rack.rs` (reduced size).

pub mod relay_model;
pub mod store_relay;

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use simrelay_core::RelayOp;
use simrelay_core::pacing::SimPace;
use simrelay_core::protocol::{Event, SimInfo};
use simrelay_core::sim_modem::{SimBehaviour, SimModemConfig, SimRadio};
use simrelay_core::{Engine, EngineConfig, SimConfig};

use crate::domain::MessageStatus;
use crate::pool_router::Policy;
use crate::sim_health::{HealthEvent, HealthPolicy, Millis, SimHealth};
use relay_model::RelayModel;

/// `RESULT_RIL_SIM_ABSENT`: permanent and SIM-bound.
const SIM_FAIL_CODE: i32 = 120;
const MINUTE: Millis = 60_000;

/// Size and faults of one run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub phones: usize,
    pub sims_per_phone: usize,
    pub parts_per_minute: u32,
    /// The engines' jitter (the engine's default unless a run sets it).
    pub jitter: f64,
    pub messages: usize,
    pub seed: u64,
    /// Virtual step (link exchange, routing pass, engine round).
    pub step_ms: Millis,
    /// Share of phones that die once, for 1 to 4 minutes.
    pub death_share: f64,
    /// Share of SIMs that start failing; half of them recover 3 minutes later.
    pub failing_share: f64,
    /// Faults happen within this span from the start.
    pub fault_span_ms: Millis,
    /// Phone disconnected this long → its unaccepted work is re-routed.
    pub offline_grace_ms: Millis,
    /// Give up after this much virtual time.
    pub max_virtual_ms: Millis,
    /// Run the real store (a fresh SQLite file in this directory) and routing pass instead of
    /// the in-memory model.
    pub store_dir: Option<std::path::PathBuf>,
}

/// The relay side of the simulation (see the module comment).
pub trait Relay: std::fmt::Debug {
    /// `POST /v1/messages`, one recipient each: (id, to, text).
    fn submit(&mut self, messages: &[(String, String, String)], now: Millis);
    fn connected(&mut self, phone: &str, now: Millis);
    /// The offline grace ran out.
    fn phone_offline(&mut self, phone: &str, now: Millis);
    /// One routing pass over the online phones and their SIMs.
    fn route(&mut self, online: &[(String, Vec<SimInfo>)], now: Millis);
    /// Frames the phone's link writes (after `after`).
    fn frames_after(&mut self, phone: &str, after: u64) -> Vec<RelayOp>;
    fn frames_acked(&mut self, phone: &str, seq: u64, now: Millis);
    /// Applies a batch of events; returns the cancel frames to write before the ack, and the ack.
    fn apply_events(
        &mut self,
        phone: &str,
        events: &[(u64, Event)],
        now: Millis,
    ) -> (Vec<RelayOp>, u64);
    fn open_recipients(&self) -> usize;
    fn unrouted_len(&self) -> usize;
    /// Each message's state (one recipient each), as the relay aggregates it.
    fn outcomes(&self) -> Vec<MessageStatus>;
    fn health_events(&self) -> &[(Millis, HealthEvent)];
    fn failovers(&self) -> u64;
    fn reroutes(&self) -> u64 {
        0
    }
}

impl Scenario {
    /// 50 phones × 2 SIMs, 20 parts/min, 10,000 messages.
    pub fn full() -> Self {
        Self {
            phones: 50,
            sims_per_phone: 2,
            parts_per_minute: 20,
            jitter: EngineConfig::default().jitter,
            messages: 10_000,
            seed: 7,
            step_ms: 250,
            death_share: 0.2,
            failing_share: 0.06,
            fault_span_ms: 6 * MINUTE,
            offline_grace_ms: 30_000,
            max_virtual_ms: 3 * 60 * MINUTE,
            store_dir: None,
        }
    }

    /// 10 phones × 2 SIMs, 1,200 messages: the same faults at a test's size.
    pub fn reduced() -> Self {
        Self {
            phones: 10,
            messages: 1_200,
            seed: 11,
            death_share: 0.3,
            failing_share: 0.1,
            fault_span_ms: 3 * MINUTE,
            ..Self::full()
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub recipients: usize,
    pub delivered: usize,
    /// Ended `failed` after trying `max_sims` SIMs (reported to the client, not lost).
    pub failed: usize,
    /// Neither delivered nor reported failed when the run ended.
    pub lost: usize,
    /// Parts that left some radio more than once.
    pub duplicates: usize,
    pub parts_transmitted: u64,
    /// Σ pace × healthy, alive time, in parts, while the relay still had recipients waiting
    /// for a SIM (the backlog): what routing could have used.
    pub capacity_parts: f64,
    /// Parts transmitted during the backlog, over `capacity_parts`.
    pub ratio: f64,
    /// Virtual time until the backlog ran out.
    pub backlog_ms: Millis,
    /// The same ratio over the whole run up to the end of the last part's pace slot (includes
    /// the drain, where SIMs idle while the last recipients finish elsewhere).
    pub ratio_to_end: f64,
    pub virtual_ms: Millis,
    pub failovers: u64,
    pub reroutes: u64,
    pub phone_deaths: usize,
    pub failing_sims: usize,
    pub quarantined: usize,
    pub recovered: usize,
}

struct SimPhone {
    id: String,
    engine: Engine,
    radio: SimRadio,
    /// Dead during `[from, to)`.
    death: Option<(Millis, Millis)>,
    alive: bool,
    down_since: Option<Millis>,
}

/// A SIM's failing span `[from, to)`.
type FailSpan = (Millis, Millis);

fn text(rng: &mut StdRng, i: usize) -> String {
    let len = match rng.random_range(0..10) {
        0..=5 => rng.random_range(20..=160),
        6..=8 => rng.random_range(161..=306),
        _ => rng.random_range(307..=600),
    };
    let mut t = format!("msg {i} ");
    while t.len() < len {
        t.push('x');
    }
    t.truncate(len);
    t
}

/// Runs one scenario to the end and measures it.
pub fn run(s: &Scenario) -> Report {
    let mut rng = StdRng::seed_from_u64(s.seed);
    let t0: Millis = 1_800_000_000_000 - 1_800_000_000_000 % (24 * 60 * MINUTE) + 8 * 60 * MINUTE;
    let mut fails: HashMap<(usize, i32), FailSpan> = HashMap::new();
    let mut phones: Vec<SimPhone> = Vec::new();
    for i in 0..s.phones {
        let sims: Vec<i32> = (1..=s.sims_per_phone as i32).collect();
        let config = EngineConfig {
            seed: Some(s.seed + i as u64),
            ..engine_config(s)
        };
        let mut engine = Engine::open_in_memory(config).expect("an in-memory engine opens");
        let configs: Vec<SimConfig> = sims
            .iter()
            .map(|&sub_id| SimConfig {
                sub_id,
                slot: sub_id - 1,
                carrier: None,
                parts_per_minute: None,
                daily_cap: None,
            })
            .collect();
        engine.set_sims(&configs).expect("sims set");
        for &sub in &sims {
            if rng.random_bool(s.failing_share) {
                let from = t0 + rng.random_range(MINUTE..s.fault_span_ms);
                let to = if rng.random_bool(0.5) {
                    from + 3 * MINUTE
                } else {
                    Millis::MAX
                };
                fails.insert((i, sub), (from, to));
            }
        }
        let death = rng.random_bool(s.death_share).then(|| {
            let from = t0 + rng.random_range(MINUTE / 2..s.fault_span_ms);
            (from, from + rng.random_range(MINUTE..4 * MINUTE))
        });
        let behaviour = SimBehaviour {
            latency_ms: 500,
            report_delay_ms: 2_000,
            ..SimBehaviour::default()
        };
        phones.push(SimPhone {
            id: format!("phone-{i:03}"),
            engine,
            radio: SimRadio::new(SimModemConfig {
                default: behaviour,
                seed: s.seed * 1_000 + i as u64,
                ..SimModemConfig::default()
            }),
            death,
            alive: true,
            down_since: None,
        });
    }
    let policy = Policy {
        lookahead_ms: 15_000,
        ..Policy::default()
    };
    let health_policy = HealthPolicy {
        quarantine_ms: MINUTE,
        ..HealthPolicy::default()
    };
    let ids: Vec<String> = phones.iter().map(|p| p.id.clone()).collect();
    let mut relay: Box<dyn Relay> = if let Some(dir) = &s.store_dir {
        Box::new(store_relay::StoreRelay::new(dir, &ids, health_policy, t0))
    } else {
        Box::new(RelayModel::new(policy, SimHealth::new(health_policy), 3))
    };
    let messages: Vec<(String, String, String)> = (0..s.messages)
        .map(|i| {
            let to = format!("+1555{:07}", rng.random_range(0..10_000_000));
            (format!("m{i:06}"), to, text(&mut rng, i))
        })
        .collect();
    relay.submit(&messages, t0);
    for p in &phones {
        relay.connected(&p.id, t0);
    }
    let healthy = |fails: &HashMap<(usize, i32), FailSpan>, i: usize, sub: i32, now: Millis| {
        fails
            .get(&(i, sub))
            .is_none_or(|(a, b)| now < *a || now >= *b)
    };
    let mut now = t0;
    let mut capacity = 0.0f64;
    let mut backlog: Option<(f64, f64, Millis)> = None;
    let mut booked_until = t0;
    // Per SIM: the pace slots booked so far, by the engine's own pacing (its `next_free_at`).
    let pace_config = engine_config(s);
    let mut booked: HashMap<(usize, i32), SimPace> = HashMap::new();
    let mut transmitted = 0u64;
    let interval = MINUTE / Millis::from(s.parts_per_minute.max(1));
    while (relay.open_recipients() > 0 || now < booked_until) && now - t0 < s.max_virtual_ms {
        for (i, p) in phones.iter_mut().enumerate() {
            let dead = p.death.is_some_and(|(a, b)| now >= a && now < b);
            if dead && p.alive {
                p.alive = false;
                p.down_since = Some(now);
            }
            if !dead && !p.alive {
                p.alive = true;
                p.down_since = None;
                relay.connected(&p.id, now);
            }
            if let Some(since) = p.down_since
                && now - since >= s.offline_grace_ms
            {
                relay.phone_offline(&p.id, now);
                p.down_since = Some(Millis::MAX / 2);
            }
            if !p.alive {
                continue;
            }
            for sub in 1..=s.sims_per_phone as i32 {
                let ok = healthy(&fails, i, sub, now);
                let b = SimBehaviour {
                    latency_ms: 500,
                    report_delay_ms: 2_000,
                    fail_rate: if ok { 0.0 } else { 1.0 },
                    fail_code: SIM_FAIL_CODE,
                    ..SimBehaviour::default()
                };
                p.radio.set_behaviour(sub, b);
                if ok {
                    capacity += f64::from(s.parts_per_minute) * s.step_ms as f64 / MINUTE as f64;
                }
            }
            for (sub, parts) in step_phone(p, relay.as_mut(), now) {
                let pace = booked.entry((i, sub)).or_insert_with(|| SimPace {
                    sub_id: sub,
                    parts_per_minute: s.parts_per_minute,
                    daily_cap: u32::MAX,
                    next_free_at: 0,
                    day: 0,
                    sent_today: 0,
                    expedited_today: 0,
                });
                pace.charge(parts, false, now, &pace_config);
                booked_until = booked_until.max(pace.next_free_at);
            }
        }
        let online: Vec<(String, Vec<SimInfo>)> = phones
            .iter()
            .filter(|p| p.alive)
            .map(|p| {
                let status = p.engine.status(now).expect("engine status");
                (p.id.clone(), status.sims)
            })
            .collect();
        relay.route(&online, now);
        transmitted = phones.iter().map(|p| p.radio.total_transmitted()).sum();
        if backlog.is_none() && relay.unrouted_len() == 0 {
            // A part counts within the window only for the pace time it used inside it.
            let ahead: Millis = booked.values().map(|b| (b.next_free_at - now).max(0)).sum();
            let used = transmitted as f64 - ahead as f64 / interval as f64;
            backlog = Some((used, capacity, now));
        }
        now += s.step_ms;
    }
    let mut counts: BTreeMap<(String, u32, u32), u32> = BTreeMap::new();
    for p in &phones {
        for (k, n) in p.radio.transmitted() {
            *counts.entry(k.clone()).or_default() += n;
        }
    }
    let mut report = Report {
        duplicates: counts.values().filter(|n| **n > 1).count(),
        parts_transmitted: transmitted,
        capacity_parts: backlog.map_or(capacity, |b| b.1),
        ratio: backlog.map_or(0.0, |(t, c, _)| t / c.max(1.0)),
        backlog_ms: backlog.map_or(now, |b| b.2) - t0,
        ratio_to_end: transmitted as f64 / capacity.max(1.0),
        virtual_ms: now - t0,
        failovers: relay.failovers(),
        reroutes: relay.reroutes(),
        phone_deaths: phones.iter().filter(|p| p.death.is_some()).count(),
        failing_sims: fails.len(),
        ..Report::default()
    };
    report.recipients = s.messages;
    for state in relay.outcomes() {
        match state {
            MessageStatus::Delivered => report.delivered += 1,
            MessageStatus::Failed => report.failed += 1,
            _ => report.lost += 1,
        }
    }
    for (_, e) in relay.health_events() {
        match e {
            HealthEvent::Quarantined(_) => report.quarantined += 1,
            HealthEvent::Recovered(_) => report.recovered += 1,
        }
    }
    report
}

/// A phone's engine settings: the defaults, with the scenario's pace and jitter.
fn engine_config(s: &Scenario) -> EngineConfig {
    EngineConfig {
        parts_per_minute: s.parts_per_minute,
        daily_cap: 100_000,
        jitter: s.jitter,
        ..EngineConfig::default()
    }
}

/// One round of a live phone: link exchange in both directions, then engine and radio.
/// Returns the parts handed to each SIM's radio.
fn step_phone(p: &mut SimPhone, relay: &mut dyn Relay, now: Millis) -> HashMap<i32, u32> {
    let e = &mut p.engine;
    let after = e.relay_seq().expect("relay seq");
    let frames = relay.frames_after(&p.id, after);
    if !frames.is_empty() {
        let applied = e.apply_relay(&frames, now).expect("frames apply");
        relay.frames_acked(&p.id, applied, now);
    }
    let events = e
        .events_after(e.acked_seq().expect("acked seq"), 10_000)
        .expect("events");
    if !events.is_empty() {
        let (cancels, ack) = relay.apply_events(&p.id, &events, now);
        if !cancels.is_empty() {
            let applied = e.apply_relay(&cancels, now).expect("cancels apply");
            relay.frames_acked(&p.id, applied, now);
        }
        e.ack_events(ack).expect("ack");
    }
    e.tick(now).expect("tick");
    let mut handed: HashMap<i32, u32> = HashMap::new();
    for cmd in e.due(now).expect("due") {
        *handed.entry(cmd.sim).or_default() += simrelay_core::segment::count_parts(&cmd.text);
        p.radio.transmit(&cmd, now);
    }
    for ev in p.radio.due(now) {
        e.on_modem_event(&ev, now).expect("radio event");
    }
    handed
}
