//! An in-memory model of the relay's bookkeeping for the rack simulator: recipients with their
//! owner phone and SIM, the per-phone frame log, acceptance, re-routing of unaccepted work when
//! a phone goes offline, failover of recipients reported `failed` + `unsent`, and SIM health.
//! Routing decisions come from the real [`crate::pool_router::plan`]. The rules mirror
//! `store::sqlite_phones` (ownership, cancel before ack, idempotent events).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use simrelay_core::RelayOp;
use simrelay_core::protocol::{Event, OutboundMessage, Recipient, RecipientState, SimInfo};

use super::Relay;
use crate::pool_router::{Pending, Policy, SimKey, SimLimits, SimSlot, Target, plan};
use crate::sim_health::{HealthEvent, Millis, Outcome, SimHealth};

/// Recipients considered per routing pass.
const PASS_LIMIT: usize = 400;

/// Key of a recipient: (message id, index).
pub type RecipientKey = (String, u32);

/// One recipient as the relay tracks it.
#[derive(Debug, Clone)]
pub struct Rec {
    pub to: String,
    pub text: String,
    pub parts: u32,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub accepted: bool,
    pub state: RecipientState,
    pub parts_sent: u32,
    /// Phones that had it and reported it unsent, or whose late copy was cancelled.
    pub avoid: Vec<String>,
    /// Relay-side state: waiting for a phone (the protocol's `pending`).
    pub unrouted: bool,
    counted: bool,
}

#[derive(Debug, Default)]
struct PhoneLog {
    next_seq: u64,
    frames: Vec<(u64, RelayOp)>,
    event_seq: u64,
    online: bool,
}

/// The relay model.
#[derive(Debug)]
pub struct RelayModel {
    pub policy: Policy,
    pub health: SimHealth,
    /// Most SIMs one recipient tries before it ends `failed`.
    pub max_sims: usize,
    sticky: HashMap<String, SimKey>,
    pub recs: BTreeMap<RecipientKey, Rec>,
    unrouted: BTreeSet<RecipientKey>,
    in_hand: BTreeSet<RecipientKey>,
    phones: HashMap<String, PhoneLog>,
    routed_today: HashMap<SimKey, (i64, u32)>,
    pub health_events: Vec<(Millis, HealthEvent)>,
    pub failovers: u64,
    pub reroutes: u64,
}

fn is_final(s: RecipientState) -> bool {
    s.is_final()
}

impl RelayModel {
    pub fn new(policy: Policy, health: SimHealth, max_sims: usize) -> Self {
        Self {
            policy,
            health,
            max_sims,
            sticky: HashMap::new(),
            recs: BTreeMap::new(),
            unrouted: BTreeSet::new(),
            in_hand: BTreeSet::new(),
            phones: HashMap::new(),
            routed_today: HashMap::new(),
            health_events: Vec::new(),
            failovers: 0,
            reroutes: 0,
        }
    }

    fn submit_one(&mut self, id: &str, to: &str, text: &str) {
        let key = (id.to_string(), 0);
        self.recs.insert(
            key.clone(),
            Rec {
                to: to.into(),
                text: text.into(),
                parts: simrelay_core::segment::count_parts(text),
                phone: None,
                sim: None,
                accepted: false,
                state: RecipientState::Queued,
                parts_sent: 0,
                avoid: Vec::new(),
                unrouted: true,
                counted: false,
            },
        );
        self.unrouted.insert(key);
    }

    fn unroute(&mut self, k: &RecipientKey) {
        let r = self.recs.get_mut(k).expect("known recipient");
        r.phone = None;
        r.sim = None;
        r.accepted = false;
        r.unrouted = true;
        r.state = RecipientState::Queued;
        self.in_hand.remove(k);
        self.unrouted.insert(k.clone());
    }
}

impl Relay for RelayModel {
    fn submit(&mut self, messages: &[(String, String, String)], _now: Millis) {
        for (id, to, text) in messages {
            self.submit_one(id, to, text);
        }
    }

    fn connected(&mut self, phone: &str, _now: Millis) {
        self.phones.entry(phone.to_string()).or_default().online = true;
    }

    /// After the offline grace: unaccepted recipients of the phone go back to the router.
    fn phone_offline(&mut self, phone: &str, _now: Millis) {
        self.phones.entry(phone.to_string()).or_default().online = false;
        let back: Vec<RecipientKey> = self
            .in_hand
            .iter()
            .filter(|k| {
                let r = &self.recs[*k];
                r.phone.as_deref() == Some(phone) && !r.accepted
            })
            .cloned()
            .collect();
        for k in back {
            self.unroute(&k);
            self.reroutes += 1;
        }
    }

    /// One routing pass over the online phones (`sims` as their status reports them).
    fn route(&mut self, online: &[(String, Vec<SimInfo>)], now: Millis) {
        let mut unsent: HashMap<SimKey, u32> = HashMap::new();
        for k in &self.in_hand {
            let r = &self.recs[k];
            if let (Some(p), Some(s)) = (&r.phone, r.sim) {
                *unsent.entry(SimKey::new(p.clone(), s)).or_default() +=
                    r.parts.saturating_sub(r.parts_sent);
            }
        }
        let day = crate::pool_router::local_day(now, 0);
        let mut slots: Vec<SimSlot> = Vec::new();
        for (phone, sims) in online {
            for s in sims {
                let key = SimKey::new(phone.clone(), s.sub_id);
                let today = self
                    .routed_today
                    .get(&key)
                    .filter(|(d, _)| *d == day)
                    .map_or(0, |(_, n)| *n);
                slots.push(SimSlot {
                    gate: self.health.gate(&key, now),
                    unsent_parts: unsent.get(&key).copied().unwrap_or(0),
                    routed_today: today,
                    parts_per_minute: s.parts_per_minute,
                    phone_capped: s.daily_cap > 0 && s.sent_today >= s.daily_cap,
                    limits: SimLimits::default(),
                    key,
                });
            }
        }
        let pending: Vec<Pending> = self
            .unrouted
            .iter()
            .take(PASS_LIMIT)
            .enumerate()
            .map(|(i, k)| {
                let r = &self.recs[k];
                Pending {
                    mseq: i as i64,
                    idx: k.1,
                    parts: r.parts,
                    to: r.to.clone(),
                    target: Target::Any,
                    avoid_phones: r.avoid.clone(),
                    bound: Vec::new(),
                    sticky: false,
                }
            })
            .collect();
        let keys: Vec<RecipientKey> = self.unrouted.iter().take(PASS_LIMIT).cloned().collect();
        let planned = plan(&self.policy, &mut self.sticky, &pending, &mut slots, now);
        for p in &planned.probes {
            self.health.probe_started(p);
        }
        for route in planned.routes {
            let k = keys[usize::try_from(route.mseq).expect("index")].clone();
            let r = self.recs.get_mut(&k).expect("known recipient");
            r.phone = Some(route.sim.phone.clone());
            r.sim = Some(route.sim.sub_id);
            r.unrouted = false;
            let message = OutboundMessage {
                id: k.0.clone(),
                recipients: vec![Recipient {
                    idx: k.1,
                    to: r.to.clone(),
                }],
                text: r.text.clone(),
                priority: 0,
                valid_until: None,
                schedule_at: None,
                sim: Some(route.sim.sub_id),
                delivery_report: true,
                resend_unknown: false,
            };
            let e = self
                .routed_today
                .entry(route.sim.clone())
                .or_insert((day, 0));
            if e.0 != day {
                *e = (day, 0);
            }
            e.1 += r.parts;
            self.unrouted.remove(&k);
            self.in_hand.insert(k);
            let log = self.phones.entry(route.sim.phone.clone()).or_default();
            log.next_seq += 1;
            let seq = log.next_seq;
            log.frames.push((seq, RelayOp::Send { seq, message }));
        }
    }

    /// Frames of `phone` after `after` (what its link writes).
    fn frames_after(&mut self, phone: &str, after: u64) -> Vec<RelayOp> {
        self.phones.get(phone).map_or_else(Vec::new, |l| {
            l.frames
                .iter()
                .filter(|(s, _)| *s > after)
                .map(|(_, f)| f.clone())
                .collect()
        })
    }

    /// The phone acknowledged frames up to `seq`.
    fn frames_acked(&mut self, phone: &str, seq: u64, _now: Millis) {
        if let Some(l) = self.phones.get_mut(phone) {
            l.frames.retain(|(s, _)| *s > seq);
        }
    }

    /// Applies events from `phone`; returns the cancel frames to write first and the ack.
    fn apply_events(
        &mut self,
        phone: &str,
        events: &[(u64, Event)],
        now: Millis,
    ) -> (Vec<RelayOp>, u64) {
        let mut cancels: Vec<(String, u32)> = Vec::new();
        let mut event_seq = self.phones.entry(phone.to_string()).or_default().event_seq;
        for (seq, event) in events {
            if *seq <= event_seq {
                continue;
            }
            if *seq != event_seq + 1 {
                break;
            }
            event_seq = *seq;
            let Event::Recipient(u) = event else { continue };
            let k = (u.message_id.clone(), u.idx);
            let Some(r) = self.recs.get_mut(&k) else {
                continue;
            };
            if r.phone.as_deref() != Some(phone) {
                if u.state != RecipientState::Queued {
                    continue;
                }
                let had = r.avoid.iter().any(|p| p == phone);
                if r.unrouted && !had {
                    // A late acceptance of a recipient still waiting: it is this phone's.
                    r.phone = Some(phone.to_string());
                    r.sim = u.sim;
                    r.unrouted = false;
                    self.unrouted.remove(&k);
                    self.in_hand.insert(k.clone());
                } else {
                    if !had && !is_final(r.state) {
                        r.avoid.push(phone.to_string());
                    }
                    if !cancels.contains(&k) {
                        cancels.push(k);
                    }
                    continue;
                }
            }
            if is_final(r.state) {
                continue;
            }
            r.accepted = true;
            r.state = u.state;
            r.parts_sent = u.parts_sent;
            let sim = SimKey::new(phone, u.sim.or(r.sim).unwrap_or(0));
            let left = matches!(u.state, RecipientState::Sent | RecipientState::Delivered);
            if left && !r.counted {
                r.counted = true;
                if let Some(ev) = self.health.record(&sim, Outcome::Sent, now) {
                    self.health_events.push((now, ev));
                }
            }
            if u.state == RecipientState::Failed && u.unsent {
                if let Some(ev) = self.health.record(&sim, Outcome::SimBound(u.code), now) {
                    self.health_events.push((now, ev));
                }
                let r = self.recs.get_mut(&k).expect("known recipient");
                r.avoid.push(phone.to_string());
                if r.avoid.len() < self.max_sims {
                    self.unroute(&k);
                    self.failovers += 1;
                    continue;
                }
            }
            if is_final(u.state) || left {
                self.in_hand.remove(&k);
            }
        }
        let log = self.phones.entry(phone.to_string()).or_default();
        log.event_seq = event_seq;
        let mut ops = Vec::new();
        for (message_id, idx) in cancels {
            log.next_seq += 1;
            let seq = log.next_seq;
            let op = RelayOp::Cancel {
                seq,
                message_id,
                recipients: Some(vec![idx]),
            };
            log.frames.push((seq, op.clone()));
            ops.push(op);
        }
        (ops, event_seq)
    }

    fn unrouted_len(&self) -> usize {
        self.unrouted.len()
    }

    fn open_recipients(&self) -> usize {
        self.recs.values().filter(|r| !is_final(r.state)).count()
    }

    fn outcomes(&self) -> Vec<RecipientState> {
        self.recs.values().map(|r| r.state).collect()
    }

    fn health_events(&self) -> &[(Millis, HealthEvent)] {
        &self.health_events
    }

    fn failovers(&self) -> u64 {
        self.failovers
    }

    fn reroutes(&self) -> u64 {
        self.reroutes
    }
}
