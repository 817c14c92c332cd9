//! The router: which phone gets which recipient. Sans-IO: it takes the waiting recipients and
//! the online phones with their capacity and returns assignments; `crate::dispatch` does the
//! reading, storing and waking.
//!
//! Rules: a recipient pinned to a phone (`phone`) goes only there; a recipient asking for a
//! SIM (`sim`) goes only to a phone with that subscription. A phone takes at most
//! `max_outstanding` recipients not yet handed to its radio, and only if one of its SIMs has
//! pace left (daily cap not reached; a cap of 0 means none). Among eligible phones the one
//! with the lowest load per unit of pace (outstanding / parts per minute) wins, so load spreads
//! in proportion to how fast each phone can send. SIM pools, failover and quarantine build on
//! this later.

use simrelay_protocol::SimInfo;

use crate::store::{Assignment, Unrouted};

/// One online phone as the router sees it.
#[derive(Debug, Clone)]
pub struct PhoneCapacity {
    pub id: String,
    pub sims: Vec<SimInfo>,
    /// Recipients already routed to it and not yet handed to its radio.
    pub outstanding: u32,
}

/// Routing policy.
#[derive(Debug, Clone)]
pub struct Router {
    pub max_outstanding: u32,
}

fn sim_has_pace(s: &SimInfo) -> bool {
    s.daily_cap == 0 || s.sent_today < s.daily_cap
}

struct Slot<'a> {
    phone: &'a PhoneCapacity,
    load: u64,
    /// Parts per minute over the SIMs with pace left (at least 1).
    pace: u64,
}

impl Router {
    /// Assigns as many of `pending` (highest priority first) as capacity allows.
    pub fn plan(&self, pending: &[Unrouted], phones: &[PhoneCapacity]) -> Vec<Assignment> {
        let mut slots: Vec<Slot<'_>> = phones
            .iter()
            .filter(|p| p.sims.iter().any(sim_has_pace))
            .map(|p| Slot {
                phone: p,
                load: u64::from(p.outstanding),
                pace: p
                    .sims
                    .iter()
                    .filter(|s| sim_has_pace(s))
                    .map(|s| u64::from(s.parts_per_minute))
                    .sum::<u64>()
                    .max(1),
            })
            .collect();
        let max = u64::from(self.max_outstanding);
        let mut out = Vec::new();
        for r in pending {
            let best = slots
                .iter_mut()
                .filter(|s| s.load < max)
                .filter(|s| r.phone.as_deref().is_none_or(|p| p == s.phone.id))
                .filter(|s| {
                    r.sim.is_none_or(|sim| {
                        s.phone
                            .sims
                            .iter()
                            .any(|x| x.sub_id == sim && sim_has_pace(x))
                    })
                })
                // load/pace compared without division: a/b < c/d  <=>  a*d < c*b
                .min_by(|a, b| {
                    (a.load * b.pace)
                        .cmp(&(b.load * a.pace))
                        .then_with(|| a.phone.id.cmp(&b.phone.id))
                });
            if let Some(slot) = best {
                slot.load += 1;
                out.push(Assignment {
                    mseq: r.mseq,
                    idx: r.idx,
                    phone: slot.phone.id.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim_info(sub_id: i32, ppm: u32, cap: u32, sent: u32) -> SimInfo {
        sim(sub_id, ppm, cap, sent)
    }

    fn sim(sub_id: i32, ppm: u32, cap: u32, sent: u32) -> SimInfo {
        SimInfo {
            sub_id,
            slot: 0,
            carrier: None,
            parts_per_minute: ppm,
            daily_cap: cap,
            sent_today: sent,
        }
    }

    fn phone(id: &str, sims: Vec<SimInfo>, outstanding: u32) -> PhoneCapacity {
        PhoneCapacity {
            id: id.into(),
            sims,
            outstanding,
        }
    }

    fn pending(n: u32) -> Vec<Unrouted> {
        (0..n)
            .map(|i| Unrouted {
                mseq: 1,
                idx: i,
                priority: 0,
                phone: None,
                sim: None,
            })
            .collect()
    }

    fn count(a: &[Assignment], p: &str) -> usize {
        a.iter().filter(|x| x.phone == p).count()
    }

    #[test]
    fn spreads_in_proportion_to_pace() {
        let r = Router {
            max_outstanding: 100,
        };
        let phones = [
            phone("a", vec![sim(1, 20, 0, 0)], 0),
            phone("b", vec![sim(1, 10, 0, 0)], 0),
        ];
        let a = r.plan(&pending(30), &phones);
        assert_eq!(a.len(), 30);
        assert_eq!(count(&a, "a"), 20);
        assert_eq!(count(&a, "b"), 10);
    }

    #[test]
    fn respects_caps_pins_and_queue_limits() {
        let r = Router { max_outstanding: 5 };
        let phones = [
            phone("capped", vec![sim(1, 30, 100, 100)], 0),
            phone("busy", vec![sim(1, 30, 0, 0)], 4),
            phone("free", vec![sim(2, 30, 0, 0)], 0),
        ];
        let a = r.plan(&pending(20), &phones);
        assert_eq!(
            count(&a, "capped"),
            0,
            "a SIM at its daily cap takes nothing"
        );
        assert_eq!(count(&a, "busy"), 1);
        assert_eq!(count(&a, "free"), 5);
        assert_eq!(a.len(), 6, "the rest waits for capacity");

        let mut pinned = pending(2);
        pinned[0].phone = Some("busy".into());
        pinned[1].sim = Some(2);
        let a = r.plan(&pinned, &phones);
        assert_eq!(a[0].phone, "busy");
        assert_eq!(a[1].phone, "free");
        pinned[0].phone = Some("gone".into());
        assert_eq!(r.plan(&pinned[..1], &phones), vec![]);
    }

    proptest::proptest! {
        #[test]
        fn plans_respect_every_rule(
            phones in proptest::collection::vec((0u32..8, 1u32..60, 0u32..3, proptest::bool::ANY), 0..6),
            pending in proptest::collection::vec((0i32..3, proptest::option::of(0usize..6), proptest::option::of(1i32..3)), 0..60),
        ) {
            let router = Router { max_outstanding: 10 };
            let caps: Vec<PhoneCapacity> = phones
                .iter()
                .enumerate()
                .map(|(i, (outstanding, ppm, sim, capped))| {
                    let cap = if *capped { 5 } else { 0 };
                    phone(&format!("p{i}"), vec![sim_info(*sim as i32 + 1, *ppm, cap, 5)], *outstanding)
                })
                .collect();
            let pending: Vec<Unrouted> = pending
                .iter()
                .enumerate()
                .map(|(i, (priority, pin, sim))| Unrouted {
                    mseq: i as i64,
                    idx: 0,
                    priority: *priority,
                    phone: pin.map(|p| format!("p{p}")),
                    sim: *sim,
                })
                .collect();
            let plan = router.plan(&pending, &caps);
            let mut seen = std::collections::HashSet::new();
            for a in &plan {
                proptest::prop_assert!(seen.insert((a.mseq, a.idx)), "assigned twice");
                let r = pending.iter().find(|r| r.mseq == a.mseq).expect("a pending recipient");
                let p = caps.iter().find(|p| p.id == a.phone).expect("an online phone");
                if let Some(pin) = &r.phone {
                    proptest::prop_assert_eq!(pin, &p.id);
                }
                proptest::prop_assert!(p.sims.iter().any(sim_has_pace), "a SIM with pace left");
                if let Some(sim) = r.sim {
                    proptest::prop_assert!(p.sims.iter().any(|s| s.sub_id == sim));
                }
            }
            let load = |p: &PhoneCapacity| {
                p.outstanding + plan.iter().filter(|a| a.phone == p.id).count() as u32
            };
            for p in &caps {
                let added = load(p) - p.outstanding;
                proptest::prop_assert!(added == 0 || load(p) <= 10, "queue limit");
            }
            // Nothing is left waiting while an eligible phone still has room.
            for r in pending.iter().filter(|r| !seen.contains(&(r.mseq, r.idx))) {
                for p in &caps {
                    let eligible = r.phone.as_ref().is_none_or(|pin| *pin == p.id)
                        && p.sims.iter().any(|s| sim_has_pace(s) && r.sim.is_none_or(|x| x == s.sub_id));
                    proptest::prop_assert!(!eligible || load(p) >= 10, "left waiting with room");
                }
            }
        }
    }
}
