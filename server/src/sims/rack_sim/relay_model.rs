//! An in-memory model of the relay's bookkeeping for the rack simulator: recipients with their
//! owner phone and SIM, the per-phone frame log, acceptance, re-routing of unaccepted work when
//! a phone goes offline, failover of recipients reported `failed` + `unsent`, and SIM health.
//! The decisions are the relay's own: routing from [`crate::pool_router::plan`], what a
//! phone's report does from [`domain::update::decide`] (ownership, late acceptance, cancel
//! before ack, failover), which events apply from [`domain::update::accept_seq`], what going
//! offline hands back from [`domain::phone_gone::offline_hands_back`], and a message's state
//! from [`domain::aggregate`]. Only the rows live here, in maps instead of SQLite.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;

use simrelay_core::RelayOp;
use simrelay_core::protocol::{Event, OutboundMessage, Recipient as WireRecipient, SimInfo};

use super::Relay;
use crate::domain::phone_gone::offline_hands_back;
use crate::domain::update::{Effect, Facts, Update, accept_seq, decide};
use crate::domain::{MessageStatus, Recipient, RecipientStatus, aggregate};
use crate::pool_router::{Pending, Policy, SimKey, SimLimits, SimSlot, Target, plan};
use crate::sim_health::{HealthEvent, Millis, SimHealth};

/// Recipients considered per routing pass.
const PASS_LIMIT: usize = 400;

/// Key of a recipient: (message id, index).
pub type RecipientKey = (String, u32);

/// One recipient as the relay tracks it: the rules' view of it plus its text.
#[derive(Debug, Clone)]
pub struct Rec {
    pub to: String,
    pub text: String,
    pub parts: u32,
    pub r: Recipient,
}

#[derive(Debug, Default)]
struct PhoneLog {
    next_seq: u64,
    frames: Vec<(u64, RelayOp)>,
    event_seq: u64,
    online: bool,
}

/// The facts [`decide`] asks for: the model has no pools, and every phone that ever
/// connected belongs to the one account.
struct ModelFacts<'a>(&'a HashMap<String, PhoneLog>);

impl Facts for ModelFacts<'_> {
    type Error = Infallible;

    fn pool_has(
        &mut self,
        _pool: &str,
        _phone: &str,
        _sim: Option<i32>,
    ) -> Result<bool, Infallible> {
        Ok(false)
    }

    fn candidate_phones(&mut self, _pool: Option<&str>) -> Result<Vec<String>, Infallible> {
        Ok(self.0.keys().cloned().collect())
    }
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
                r: Recipient {
                    status: RecipientStatus::Pending,
                    phone: None,
                    sim: None,
                    accepted: false,
                    parts_sent: 0,
                    tried: Vec::new(),
                    target: crate::domain::Target::default(),
                },
            },
        );
        self.unrouted.insert(key);
    }

    /// Back to the router: no phone, no SIM, `pending`, not accepted.
    fn unroute(&mut self, k: &RecipientKey) {
        let r = &mut self.recs.get_mut(k).expect("known recipient").r;
        r.phone = None;
        r.sim = None;
        r.accepted = false;
        r.status = RecipientStatus::Pending;
        self.in_hand.remove(k);
        self.unrouted.insert(k.clone());
    }

    fn record(&mut self, outcome: Option<(SimKey, crate::sim_health::Outcome)>, now: Millis) {
        if let Some((sim, outcome)) = outcome
            && let Some(ev) = self.health.record(&sim, outcome, now)
        {
            self.health_events.push((now, ev));
        }
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

    /// After the offline grace: what the phone holds and has not accepted goes back.
    fn phone_offline(&mut self, phone: &str, _now: Millis) {
        self.phones.entry(phone.to_string()).or_default().online = false;
        let back: Vec<RecipientKey> = self
            .in_hand
            .iter()
            .filter(|k| {
                let r = &self.recs[*k].r;
                r.phone.as_deref() == Some(phone) && offline_hands_back(r)
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
            let rec = &self.recs[k];
            if let (Some(p), Some(s)) = (&rec.r.phone, rec.r.sim) {
                *unsent.entry(SimKey::new(p.clone(), s)).or_default() +=
                    rec.parts.saturating_sub(rec.r.parts_sent);
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
                let rec = &self.recs[k];
                let mut avoid: Vec<String> = rec.r.tried.iter().map(|t| t.phone.clone()).collect();
                avoid.sort();
                avoid.dedup();
                Pending {
                    mseq: i as i64,
                    idx: k.1,
                    parts: rec.parts,
                    to: rec.to.clone(),
                    target: Target::Any,
                    avoid_phones: avoid,
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
            let rec = self.recs.get_mut(&k).expect("known recipient");
            rec.r.phone = Some(route.sim.phone.clone());
            rec.r.sim = Some(route.sim.sub_id);
            let message = OutboundMessage {
                id: k.0.clone(),
                recipients: vec![WireRecipient {
                    idx: k.1,
                    to: rec.to.clone(),
                }],
                text: rec.text.clone(),
                priority: 0,
                valid_until: None,
                schedule_at: None,
                sim: Some(route.sim.sub_id),
                delivery_report: true,
                resend_unknown: false,
                encrypted: false,
                data_port: None,
            };
            let e = self
                .routed_today
                .entry(route.sim.clone())
                .or_insert((day, 0));
            if e.0 != day {
                *e = (day, 0);
            }
            e.1 += rec.parts;
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

    /// Applies events from `phone` as the relay's rules decide; returns the cancel frames to
    /// write first and the ack.
    fn apply_events(
        &mut self,
        phone: &str,
        events: &[(u64, Event)],
        now: Millis,
    ) -> (Vec<RelayOp>, u64) {
        let mut cancels: Vec<RecipientKey> = Vec::new();
        let mut event_seq = self.phones.entry(phone.to_string()).or_default().event_seq;
        for (seq, event) in events {
            match accept_seq(event_seq, *seq) {
                Some(true) => event_seq = *seq,
                Some(false) => continue,
                None => break,
            }
            let Event::Recipient(u) = event else { continue };
            let k = (u.message_id.clone(), u.idx);
            let Some(rec) = self.recs.get(&k) else {
                continue;
            };
            let Ok(decision) = decide(
                &rec.r,
                phone,
                u,
                self.max_sims,
                &mut ModelFacts(&self.phones),
            );
            let apply = match decision {
                Update::Ignore => continue,
                Update::CancelCopy { tried } => {
                    if let Some(tried) = tried {
                        self.recs.get_mut(&k).expect("known recipient").r.tried = tried;
                    }
                    if !cancels.contains(&k) {
                        cancels.push(k);
                    }
                    continue;
                }
                Update::Apply(apply) => apply,
            };
            let r = &mut self.recs.get_mut(&k).expect("known recipient").r;
            if apply.adopt {
                // A late acceptance of a recipient still waiting: it is this phone's.
                r.phone = Some(phone.to_string());
                r.sim = u.sim;
                self.unrouted.remove(&k);
                self.in_hand.insert(k.clone());
            }
            if let Some(tried) = apply.tried {
                r.tried = tried;
            }
            match apply.effect {
                Effect::FailOver => {
                    self.unroute(&k);
                    self.failovers += 1;
                }
                Effect::Report(report) => {
                    r.accepted = true;
                    r.status = report.state;
                    r.parts_sent = u.parts_sent;
                    r.sim = u.sim.or(r.sim);
                    if !report.state.in_phone_queue() {
                        self.in_hand.remove(&k);
                    }
                }
            }
            self.record(apply.outcome, now);
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
        self.recs
            .values()
            .filter(|rec| !rec.r.status.is_final())
            .count()
    }

    /// Each message's state, aggregated from its recipients' as the relay does.
    fn outcomes(&self) -> Vec<MessageStatus> {
        let mut messages: BTreeMap<&str, Vec<RecipientStatus>> = BTreeMap::new();
        for ((id, _), rec) in &self.recs {
            messages.entry(id).or_default().push(rec.r.status);
        }
        messages.into_values().map(aggregate).collect()
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
