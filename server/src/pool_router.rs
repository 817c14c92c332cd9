//! SIM-level routing for racks of phones. Sans-IO: [`plan`] takes the waiting recipients, the
//! SIMs with their health gate, pace, load and limits, and `now`, and returns (phone, SIM)
//! assignments. The relay sets the chosen SIM in the `send` frame's message.
//!
//! Rules, in order, for each recipient (highest priority first, as the caller sorts them):
//! 1. Target: a pool (its member SIMs), a phone (its SIMs), a SIM, or any SIM of the account.
//! 2. Exclusions: phones that already had this recipient (failover never returns to them: the
//!    phone keeps a message id's recipients forever), and, per phone, the SIM the message
//!    already uses there (a phone holds one `sim` per message id).
//! 3. Eligibility: gate open (or a pending probe, one recipient), inside working hours, under
//!    the relay's daily cap, its window limit (sent in the window plus unsent) and the phone's
//!    own cap.
//! 4. Pace headroom: parts routed to a SIM and not yet sent stay within
//!    `parts_per_minute × lookahead`, so the relay never overfills a phone (a SIM with nothing
//!    in hand always takes one recipient, however long).
//! 5. Stickiness: a number keeps the SIM it last used while that SIM is eligible (it waits for
//!    headroom there), so replies come back to the same SIM.
//! 6. Prefix rules (a pool's rules apply to recipients of that pool): SIMs preferred for the
//!    longest matching destination prefix win when they have headroom; otherwise any SIM.
//! 7. Among the rest, the lowest load per unit of pace wins (ties by key).

use std::collections::{BTreeSet, HashMap};

use crate::sim_health::{Gate, Millis};

/// One SIM: the phone it sits in and its Android subscription id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SimKey {
    pub phone: String,
    pub sub_id: i32,
}

impl SimKey {
    pub fn new(phone: impl Into<String>, sub_id: i32) -> Self {
        Self {
            phone: phone.into(),
            sub_id,
        }
    }
}

/// A daily working window in local time (`start..end` minutes of the day; wraps past
/// midnight when `start > end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    pub start_min: u16,
    pub end_min: u16,
    /// Local time minus UTC, in minutes.
    pub utc_offset_min: i16,
}

impl Hours {
    /// Parses `"HH:MM-HH:MM"`; `None` when malformed or empty (`start == end`).
    pub fn parse(window: &str, utc_offset_min: i16) -> Option<Self> {
        let (a, b) = window.split_once('-')?;
        let minute = |s: &str| -> Option<u16> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            // Computed only once in range: 9999 hours would overflow u16.
            (h < 24 && m < 60 && !s.trim().starts_with('+')).then(|| h * 60 + m)
        };
        let (start_min, end_min) = (minute(a)?, minute(b)?);
        let offset_ok = (-14 * 60..=14 * 60).contains(&utc_offset_min);
        (start_min != end_min && offset_ok).then_some(Self {
            start_min,
            end_min,
            utc_offset_min,
        })
    }

    /// Whether `now` falls inside the window.
    pub fn contains(&self, now: Millis) -> bool {
        let local = now.div_euclid(60_000) + i64::from(self.utc_offset_min);
        let m = u16::try_from(local.rem_euclid(1440)).expect("below 1440");
        if self.start_min < self.end_min {
            (self.start_min..self.end_min).contains(&m)
        } else {
            m >= self.start_min || m < self.end_min
        }
    }

    /// `"HH:MM-HH:MM"`.
    pub fn window(&self) -> String {
        let f = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        format!("{}-{}", f(self.start_min), f(self.end_min))
    }
}

/// The local day number of `now` for a UTC offset (daily caps roll over at local midnight).
pub fn local_day(now: Millis, utc_offset_min: i16) -> i64 {
    (now + i64::from(utc_offset_min) * 60_000).div_euclid(86_400_000)
}

/// Relay-side limits of one SIM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimLimits {
    /// Most parts the relay routes to the SIM per local day.
    pub daily_cap: Option<u32>,
    pub hours: Option<Hours>,
    /// A limit over a window shorter than a day: `(limit, parts counted against it now)`.
    /// Like the daily cap, a SIM with nothing counted takes one recipient, however long.
    pub window: Option<(u32, u32)>,
}

/// One SIM as the router sees it at `now`.
#[derive(Debug, Clone)]
pub struct SimSlot {
    pub key: SimKey,
    /// The phone's pace for this SIM.
    pub parts_per_minute: u32,
    /// The phone's own daily cap is reached.
    pub phone_capped: bool,
    pub limits: SimLimits,
    /// Parts routed to the SIM during the current local day.
    pub routed_today: u32,
    /// Parts routed to the SIM and not yet sent.
    pub unsent_parts: u32,
    pub gate: Gate,
}

/// What a recipient may be routed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Any,
    Pool(String),
    Phone(String),
    Sim { phone: Option<String>, sub_id: i32 },
}

/// A recipient waiting for a SIM.
#[derive(Debug, Clone)]
pub struct Pending {
    pub mseq: i64,
    pub idx: u32,
    /// Parts of the text (the pace the recipient costs).
    pub parts: u32,
    pub to: String,
    pub target: Target,
    /// Phones that already had this recipient.
    pub avoid_phones: Vec<String>,
    /// SIMs this message already uses, at most one per phone.
    pub bound: Vec<SimKey>,
    /// Keep this number on the SIM it last used (a sticky pool), whatever `Policy::sticky`.
    pub sticky: bool,
}

/// One routing decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub mseq: i64,
    pub idx: u32,
    pub sim: SimKey,
}

/// Destination prefix `prefix` prefers the SIMs in `sims`, for recipients of `pool` (a pool's
/// rule) or of every recipient (`None`).
#[derive(Debug, Clone)]
pub struct PrefixRule {
    pub prefix: String,
    pub sims: BTreeSet<SimKey>,
    pub pool: Option<String>,
}

/// Routing settings and the state routing keeps between passes.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Headroom per SIM: parts per minute × this, in milliseconds.
    pub lookahead_ms: Millis,
    /// Keep a number on the SIM it last used.
    pub sticky: bool,
    pub pools: HashMap<String, BTreeSet<SimKey>>,
    pub prefixes: Vec<PrefixRule>,
}

/// What one pass decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    pub routes: Vec<Route>,
    /// SIMs that got their quarantine probe in this pass.
    pub probes: Vec<SimKey>,
}

impl SimSlot {
    // Pace figures come from phones and clients (up to u32::MAX): every sum saturates.
    fn budget(&self, lookahead_ms: Millis) -> u64 {
        (u64::from(self.parts_per_minute).saturating_mul(u64::try_from(lookahead_ms).unwrap_or(0))
            / 60_000)
            .max(1)
    }

    fn has_room(&self, parts: u32, lookahead_ms: Millis) -> bool {
        self.unsent_parts == 0
            || u64::from(self.unsent_parts) + u64::from(parts) <= self.budget(lookahead_ms)
    }

    fn eligible(&self, parts: u32, now: Millis) -> bool {
        self.gate != Gate::Closed
            && !self.phone_capped
            && self.limits.hours.is_none_or(|h| h.contains(now))
            && self.limits.daily_cap.is_none_or(|cap| {
                self.routed_today == 0
                    || u64::from(self.routed_today) + u64::from(parts) <= u64::from(cap)
            })
            && self.limits.window.is_none_or(|(limit, used)| {
                used == 0 || u64::from(used) + u64::from(parts) <= u64::from(limit)
            })
    }
}

fn targets(policy: &Policy, target: &Target, key: &SimKey) -> bool {
    match target {
        Target::Any => true,
        Target::Pool(name) => policy.pools.get(name).is_some_and(|m| m.contains(key)),
        Target::Phone(p) => key.phone == *p,
        Target::Sim { phone, sub_id } => {
            key.sub_id == *sub_id && phone.as_ref().is_none_or(|p| *p == key.phone)
        }
    }
}

/// Plans one pass. `sticky` maps numbers to the SIM they last used; it is updated.
pub fn plan(
    policy: &Policy,
    sticky: &mut HashMap<String, SimKey>,
    pending: &[Pending],
    sims: &mut [SimSlot],
    now: Millis,
) -> Planned {
    let mut out = Planned::default();
    for r in pending {
        let candidates: Vec<usize> = (0..sims.len())
            .filter(|&i| {
                let s = &sims[i];
                targets(policy, &r.target, &s.key)
                    && !r.avoid_phones.contains(&s.key.phone)
                    && r.bound
                        .iter()
                        .all(|b| b.phone != s.key.phone || b.sub_id == s.key.sub_id)
                    && s.eligible(r.parts, now)
            })
            .collect();
        let roomy = |i: &usize| sims[*i].has_room(r.parts, policy.lookahead_ms);
        let sticky_sim = (policy.sticky || r.sticky)
            .then(|| sticky.get(&r.to))
            .flatten()
            .and_then(|k| candidates.iter().copied().find(|&i| sims[i].key == *k));
        let chosen = if let Some(i) = sticky_sim {
            roomy(&i).then_some(i)
        } else {
            let preferred = policy
                .prefixes
                .iter()
                .filter(|p| r.to.starts_with(&p.prefix))
                .filter(|p| {
                    p.pool
                        .as_ref()
                        .is_none_or(|name| r.target == Target::Pool(name.clone()))
                })
                .max_by_key(|p| p.prefix.len());
            let best = |pool: &mut dyn Iterator<Item = usize>| {
                pool.min_by(|&a, &b| {
                    let (sa, sb) = (&sims[a], &sims[b]);
                    let la = u64::from(sa.unsent_parts) * u64::from(sb.parts_per_minute.max(1));
                    let lb = u64::from(sb.unsent_parts) * u64::from(sa.parts_per_minute.max(1));
                    la.cmp(&lb).then_with(|| sa.key.cmp(&sb.key))
                })
            };
            preferred
                .and_then(|p| {
                    best(
                        &mut candidates
                            .iter()
                            .copied()
                            .filter(|i| roomy(i) && p.sims.contains(&sims[*i].key)),
                    )
                })
                .or_else(|| best(&mut candidates.iter().copied().filter(roomy)))
        };
        let Some(i) = chosen else { continue };
        let s = &mut sims[i];
        s.unsent_parts = s.unsent_parts.saturating_add(r.parts);
        s.routed_today = s.routed_today.saturating_add(r.parts);
        if let Some((_, used)) = &mut s.limits.window {
            *used = used.saturating_add(r.parts);
        }
        if s.gate == Gate::Probe {
            s.gate = Gate::Closed;
            out.probes.push(s.key.clone());
        }
        if policy.sticky || r.sticky {
            sticky.insert(r.to.clone(), s.key.clone());
        }
        out.routes.push(Route {
            mseq: r.mseq,
            idx: r.idx,
            sim: s.key.clone(),
        });
    }
    out
}

#[cfg(test)]
#[path = "pool_router_tests.rs"]
mod tests;
