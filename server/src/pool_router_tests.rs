//! Unit tests of the SIM-level router.

use super::*;
use crate::sim_health::{HealthPolicy, Outcome, SimHealth};

fn slot(phone: &str, sub_id: i32, ppm: u32) -> SimSlot {
    SimSlot {
        key: SimKey::new(phone, sub_id),
        parts_per_minute: ppm,
        phone_capped: false,
        limits: SimLimits::default(),
        routed_today: 0,
        unsent_parts: 0,
        gate: Gate::Open,
    }
}

fn pending(n: usize, to: &str) -> Vec<Pending> {
    (0..n)
        .map(|i| Pending {
            mseq: i as i64,
            idx: 0,
            parts: 1,
            to: to.into(),
            target: Target::Any,
            avoid_phones: Vec::new(),
            bound: Vec::new(),
            sticky: false,
        })
        .collect()
}

fn policy() -> Policy {
    Policy {
        lookahead_ms: 30_000,
        ..Policy::default()
    }
}

fn run(policy: &Policy, p: &[Pending], sims: &mut [SimSlot]) -> Vec<Route> {
    plan(policy, &mut HashMap::new(), p, sims, 0).routes
}

fn on(routes: &[Route], phone: &str, sub: i32) -> usize {
    routes
        .iter()
        .filter(|r| r.sim == SimKey::new(phone, sub))
        .count()
}

#[test]
fn headroom_is_pace_times_lookahead_and_spreads_by_pace() {
    // 20 ppm × 30 s = 10 parts; 40 ppm = 20 parts.
    let mut sims = [slot("a", 1, 20), slot("b", 1, 40)];
    let routes = run(&policy(), &pending(100, "+15550001"), &mut sims);
    assert_eq!(on(&routes, "a", 1), 10);
    assert_eq!(on(&routes, "b", 1), 20);
    assert_eq!(routes.len(), 30, "the rest waits at the relay");
    // A SIM with nothing in hand takes a long text beyond its headroom.
    let mut sims = [slot("a", 1, 20)];
    let mut long = pending(2, "+15550001");
    long[0].parts = 15;
    let routes = run(&policy(), &long, &mut sims);
    assert_eq!(routes.len(), 1);
    assert_eq!(sims[0].unsent_parts, 15);
}

#[test]
fn pool_phone_and_sim_targets() {
    let mut pol = policy();
    pol.pools.insert(
        "eu".into(),
        [SimKey::new("b", 2), SimKey::new("c", 1)].into(),
    );
    let mut p = pending(4, "+15550001");
    p[0].target = Target::Pool("eu".into());
    p[1].target = Target::Phone("a".into());
    p[2].target = Target::Sim {
        phone: None,
        sub_id: 2,
    };
    p[3].target = Target::Pool("unknown".into());
    let mut sims = [
        slot("a", 1, 20),
        slot("a", 2, 20),
        slot("b", 2, 20),
        slot("c", 1, 20),
    ];
    sims[3].unsent_parts = 5; // c is busier: the pool's b/2 wins
    let routes = run(&pol, &p, &mut sims);
    assert_eq!(routes.len(), 3, "an unknown pool routes nowhere");
    assert_eq!(routes[0].sim, SimKey::new("b", 2));
    assert_eq!(routes[1].sim.phone, "a");
    assert_eq!(routes[2].sim, SimKey::new("a", 2));
}

#[test]
fn failover_avoids_phones_that_had_the_recipient_and_keeps_one_sim_per_message() {
    let mut p = pending(2, "+15550001");
    p[0].avoid_phones = vec!["a".into()];
    p[1].bound = vec![SimKey::new("b", 2)];
    let mut sims = [slot("a", 1, 20), slot("b", 1, 20), slot("b", 2, 20)];
    sims[1].unsent_parts = 0;
    sims[2].unsent_parts = 3;
    sims[0].unsent_parts = 9; // would otherwise lose to b anyway for p[1]
    let routes = run(&policy(), &p, &mut sims);
    assert_eq!(routes[0].sim, SimKey::new("b", 1));
    assert_eq!(
        routes[1].sim,
        SimKey::new("b", 2),
        "the message is on b/2 already"
    );
}

#[test]
fn sticky_numbers_keep_their_sim_while_it_is_eligible() {
    let mut pol = policy();
    pol.sticky = true;
    let mut sticky = HashMap::new();
    let mut sims = [slot("a", 1, 20), slot("b", 1, 20)];
    let first = plan(&pol, &mut sticky, &pending(1, "+15550001"), &mut sims, 0);
    let home = first.routes[0].sim.clone();
    // The home SIM is now the busier one, yet the number stays with it.
    let again = plan(&pol, &mut sticky, &pending(5, "+15550001"), &mut sims, 0);
    assert!(again.routes.iter().all(|r| r.sim == home));
    // Without headroom it waits rather than moving.
    let i = sims.iter().position(|s| s.key == home).expect("home");
    sims[i].unsent_parts = 10;
    let wait = plan(&pol, &mut sticky, &pending(1, "+15550001"), &mut sims, 0);
    assert!(wait.routes.is_empty());
    // When the home SIM is closed (cooldown), the number moves and sticks to the new SIM.
    sims[i].gate = Gate::Closed;
    let moved = plan(&pol, &mut sticky, &pending(1, "+15550001"), &mut sims, 0);
    assert_ne!(moved.routes[0].sim, home);
    assert_eq!(sticky.get("+15550001"), Some(&moved.routes[0].sim));
}

#[test]
fn prefix_rules_prefer_their_sims_then_fall_back() {
    let mut pol = policy();
    pol.prefixes.push(PrefixRule {
        prefix: "+44".into(),
        sims: [SimKey::new("uk", 1)].into(),
        pool: None,
    });
    pol.prefixes.push(PrefixRule {
        prefix: "+447".into(),
        sims: [SimKey::new("uk", 2)].into(),
        pool: None,
    });
    let mut sims = [slot("uk", 1, 20), slot("uk", 2, 20), slot("us", 1, 20)];
    sims[0].unsent_parts = 4;
    sims[1].unsent_parts = 4;
    let routes = run(&pol, &pending(1, "+447700900"), &mut sims);
    assert_eq!(routes[0].sim, SimKey::new("uk", 2), "longest prefix wins");
    let routes = run(&pol, &pending(1, "+441632960"), &mut sims);
    assert_eq!(routes[0].sim, SimKey::new("uk", 1));
    let routes = run(&pol, &pending(1, "+15550001"), &mut sims);
    assert_eq!(routes[0].sim, SimKey::new("us", 1), "no rule: least loaded");
    // Preferred SIMs without headroom: fall back to any.
    sims[1].unsent_parts = 10;
    let routes = run(&pol, &pending(1, "+447700900"), &mut sims);
    assert_eq!(routes[0].sim, SimKey::new("us", 1));
    // A pool's rule applies to that pool's recipients only.
    sims[1].unsent_parts = 4;
    pol.prefixes[1].pool = Some("uk-pool".into());
    pol.pools.insert(
        "uk-pool".into(),
        [SimKey::new("uk", 2), SimKey::new("us", 1)].into(),
    );
    let routes = run(&pol, &pending(1, "+447700900"), &mut sims);
    assert_eq!(routes[0].sim, SimKey::new("uk", 1), "the global +44 rule");
    let mut p = pending(1, "+447700900");
    p[0].target = Target::Pool("uk-pool".into());
    let routes = run(&pol, &p, &mut sims);
    assert_eq!(routes[0].sim, SimKey::new("uk", 2), "the pool's +447 rule");
}

#[test]
fn cooldown_and_quarantine_close_a_sim_and_the_probe_lets_one_through() {
    let mut health = SimHealth::new(HealthPolicy::default());
    let bad = SimKey::new("a", 1);
    let mut sims = [slot("a", 1, 20), slot("b", 1, 20)];
    health.record(&bad, Outcome::SimBound(Some(4)), 0);
    sims[0].gate = health.gate(&bad, 1);
    let routes = run(&policy(), &pending(5, "+15550001"), &mut sims);
    assert_eq!(on(&routes, "a", 1), 0, "cooling down");
    for t in 1..3 {
        health.record(&bad, Outcome::SimBound(Some(120)), t);
    }
    assert_eq!(health.state(&bad, 10), "quarantined");
    let later = 10 + HealthPolicy::default().quarantine_ms;
    let mut sims = [slot("a", 1, 20), slot("b", 1, 20)];
    sims[0].gate = health.gate(&bad, later);
    assert_eq!(sims[0].gate, Gate::Probe);
    let planned = plan(
        &policy(),
        &mut HashMap::new(),
        &pending(20, "+1555"),
        &mut sims,
        later,
    );
    assert_eq!(on(&planned.routes, "a", 1), 1, "exactly one probe");
    assert_eq!(planned.probes, vec![bad.clone()]);
}

/// Found by the `http_body` fuzz target: `"9999:00-01:00"` overflowed `u16` (a panic in the
/// `PATCH /v1/sims` handler of a debug build) before the range check refused it.
#[test]
fn hours_out_of_range_are_refused_without_overflow() {
    for bad in [
        "9999:00-01:00",
        "01:00-65535:65535",
        "1093:00-01:00",
        "00:9999-01:00",
    ] {
        assert_eq!(Hours::parse(bad, 0), None, "{bad:?}");
    }
}

#[test]
fn working_hours_and_daily_caps() {
    let hours = Hours::parse("08:00-20:00", 120).expect("valid");
    let eight_utc = 8 * 3_600_000; // 10:00 local
    let nineteen_utc = 19 * 3_600_000; // 21:00 local
    assert!(hours.contains(eight_utc));
    assert!(!hours.contains(nineteen_utc));
    let night = Hours::parse("22:00-06:00", 0).expect("wraps");
    assert!(night.contains(23 * 3_600_000) && night.contains(3_600_000));
    assert!(!night.contains(12 * 3_600_000));
    for bad in [
        "",
        "8-20",
        "25:00-20:00",
        "08:00-08:00",
        "08:60-09:00",
        "+8:00-9:00",
    ] {
        assert_eq!(Hours::parse(bad, 0), None, "{bad:?}");
    }
    assert_eq!(
        Hours::parse("08:00-20:00", 15 * 60),
        None,
        "offset out of range"
    );
    assert_eq!(hours.window(), "08:00-20:00");

    let mut sims = [slot("a", 1, 20), slot("b", 1, 20)];
    sims[0].limits.hours = Some(hours);
    sims[1].limits.daily_cap = Some(3);
    sims[1].routed_today = 1;
    let p = pending(10, "+15550001");
    let r = plan(&policy(), &mut HashMap::new(), &p, &mut sims, nineteen_utc).routes;
    assert_eq!(on(&r, "a", 1), 0, "outside working hours");
    assert_eq!(on(&r, "b", 1), 2, "cap of 3 with 1 routed today");
    let mut sims = [slot("a", 1, 20)];
    sims[0].limits.hours = Some(hours);
    let r = plan(&policy(), &mut HashMap::new(), &p, &mut sims, eight_utc).routes;
    assert_eq!(r.len(), 10);
    let mut capped = [slot("a", 1, 20)];
    capped[0].phone_capped = true;
    assert!(run(&policy(), &p, &mut capped).is_empty());
    assert_eq!(local_day(23 * 3_600_000, 120), 1);
    assert_eq!(local_day(23 * 3_600_000, 0), 0);
}

fn gate_of(n: u8) -> Gate {
    match n {
        0 => Gate::Closed,
        1 => Gate::Probe,
        _ => Gate::Open,
    }
}

proptest::proptest! {
    #[test]
    fn plans_respect_every_rule(
        sims in proptest::collection::vec(
            (0u8..4, 1i32..3, 1u32..60, 0u32..20, 0u8..4, proptest::bool::weighted(0.1),
             proptest::option::of(0u32..12), 0u32..10),
            0..10,
        ),
        pending in proptest::collection::vec(
            (1u32..5, 0u8..5, proptest::option::of(0u8..4), 0u8..3),
            0..40,
        ),
    ) {
        let mut slots: Vec<SimSlot> = Vec::new();
        for (phone, sub, ppm, unsent, gate, capped, cap, today) in sims {
            let key = SimKey::new(format!("p{phone}"), sub);
            if slots.iter().any(|s| s.key == key) {
                continue;
            }
            slots.push(SimSlot {
                key,
                parts_per_minute: ppm,
                phone_capped: capped,
                limits: SimLimits {
                    daily_cap: cap,
                    ..SimLimits::default()
                },
                routed_today: today,
                unsent_parts: unsent,
                gate: gate_of(gate),
            });
        }
        let mut pol = policy();
        pol.pools.insert("pool".into(), slots.iter().step_by(2).map(|s| s.key.clone()).collect());
        let reqs: Vec<Pending> = pending
            .iter()
            .enumerate()
            .map(|(i, (parts, target, avoid, to))| Pending {
                mseq: i as i64,
                idx: 0,
                parts: *parts,
                to: format!("+1555000{to}"),
                target: match target {
                    0 => Target::Pool("pool".into()),
                    1 => Target::Phone("p1".into()),
                    2 => Target::Sim { phone: None, sub_id: 2 },
                    _ => Target::Any,
                },
                avoid_phones: avoid.map(|a| vec![format!("p{a}")]).unwrap_or_default(),
                bound: Vec::new(),
                sticky: false,
            })
            .collect();
        let before = slots.clone();
        let planned = plan(&pol, &mut HashMap::new(), &reqs, &mut slots, 0);
        let mut seen = std::collections::HashSet::new();
        for r in &planned.routes {
            proptest::prop_assert!(seen.insert(r.mseq), "assigned twice");
            let req = &reqs[r.mseq as usize];
            let s = before.iter().find(|s| s.key == r.sim).expect("a known SIM");
            proptest::prop_assert!(targets(&pol, &req.target, &s.key), "target");
            proptest::prop_assert!(!req.avoid_phones.contains(&s.key.phone), "avoided phone");
            proptest::prop_assert!(s.gate != Gate::Closed && !s.phone_capped, "eligible");
        }
        for (b, a) in before.iter().zip(&slots) {
            let added: Vec<&Pending> = planned
                .routes
                .iter()
                .filter(|r| r.sim == b.key)
                .map(|r| &reqs[r.mseq as usize])
                .collect();
            let parts: u32 = added.iter().map(|p| p.parts).sum();
            proptest::prop_assert_eq!(a.unsent_parts, b.unsent_parts + parts);
            if !added.is_empty() {
                let budget = b.budget(pol.lookahead_ms);
                proptest::prop_assert!(
                    u64::from(a.unsent_parts) <= budget || (b.unsent_parts == 0 && added.len() == 1),
                    "headroom"
                );
                if let Some(cap) = b.limits.daily_cap {
                    proptest::prop_assert!(
                        a.routed_today <= cap || (b.routed_today == 0 && added.len() == 1),
                        "daily cap"
                    );
                }
            }
            if b.gate == Gate::Probe {
                proptest::prop_assert!(added.len() <= 1, "one probe");
            }
        }
        // Nothing waits while a SIM it could use still has room.
        for (i, req) in reqs.iter().enumerate() {
            if seen.contains(&(i as i64)) {
                continue;
            }
            for s in &slots {
                let usable = targets(&pol, &req.target, &s.key)
                    && !req.avoid_phones.contains(&s.key.phone)
                    && s.eligible(req.parts, 0)
                    && s.has_room(req.parts, pol.lookahead_ms);
                proptest::prop_assert!(!usable, "left waiting with room on {:?}", s.key);
            }
        }
    }
}

/// A pace of u32::MAX (the phone's word) with loads near the top: every sum saturates, the
/// router neither panics (debug) nor wraps (release) into taking more.
#[test]
fn extreme_paces_and_loads_saturate_instead_of_wrapping() {
    let mut full = slot("a", 1, u32::MAX);
    full.unsent_parts = u32::MAX - 1;
    full.routed_today = u32::MAX - 1;
    full.limits.daily_cap = Some(u32::MAX);
    let mut sims = vec![full, slot("b", 1, u32::MAX)];
    let pol = Policy {
        lookahead_ms: i64::MAX,
        ..policy()
    };
    let mut p = pending(3, "+1555");
    for r in &mut p {
        r.parts = 5;
        r.target = Target::Sim {
            phone: Some("a".into()),
            sub_id: 1,
        };
    }
    assert!(
        run(&pol, &p, &mut sims).is_empty(),
        "a's daily cap is reached"
    );
    sims[0].limits.daily_cap = None;
    let routes = run(&pol, &p, &mut sims);
    assert_eq!(
        on(&routes, "a", 1),
        3,
        "the headroom saturates, it does not wrap"
    );
    assert_eq!(sims[0].unsent_parts, u32::MAX);
    assert_eq!(sims[0].routed_today, u32::MAX);
}
