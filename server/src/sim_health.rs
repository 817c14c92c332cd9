//! SIM health for rack routing: cooldown, quarantine, probe and recovery. Sans-IO: callers
//! feed outcomes with `now` and read a [`Gate`] per SIM; [`crate::pool_router`] honours it.
//!
//! * A SIM-bound failure (the phone reported `failed` with `unsent: true`) puts the SIM in a
//!   short cooldown: it takes no new work until the cooldown ends.
//! * Every outcome goes into a sliding window per SIM. When the window holds enough samples
//!   and the failure rate reaches the threshold, the SIM is quarantined (`sim.quarantined`).
//! * After the quarantine period one recipient goes through as a probe. Success brings the SIM
//!   back (`sim.recovered`); another failure quarantines it again.
//!
//! Outcomes whose result is unknown (`sending`, `sent` without a report, `unknown`) are not
//! outcomes here: only "left the radio" (success) and "SIM-bound failure" count.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::pool_router::SimKey;

pub use simrelay_protocol::Millis;

/// Thresholds of the health tracker.
#[derive(Debug, Clone)]
pub struct HealthPolicy {
    /// Pause after one SIM-bound failure.
    pub cooldown_ms: Millis,
    /// Outcomes kept per SIM.
    pub window: usize,
    /// Fewest outcomes in the window before the rate counts.
    pub min_samples: usize,
    /// Failure share (0..=1) at which a SIM is quarantined.
    pub max_failure_rate: f64,
    /// How long a quarantined SIM waits before its probe.
    pub quarantine_ms: Millis,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            cooldown_ms: 30_000,
            window: 10,
            min_samples: 3,
            max_failure_rate: 0.5,
            quarantine_ms: 5 * 60_000,
        }
    }
}

/// Whether a SIM may take new work now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Quarantine ended: exactly one recipient may go through as a probe.
    Probe,
    Closed,
}

/// A change worth a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEvent {
    Quarantined(SimKey),
    Recovered(SimKey),
}

/// One outcome reported for a SIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The recipient left the radio (`sent` or `delivered`).
    Sent,
    /// Definitively not sent, for a reason bound to the SIM; the code is the Android result.
    SimBound(Option<i32>),
}

#[derive(Debug, Clone, Default)]
struct Track {
    recent: VecDeque<bool>,
    cooldown_until: Millis,
    quarantined_until: Option<Millis>,
    probing: bool,
    sent: u64,
    failures: BTreeMap<String, u64>,
}

/// Health of every SIM the relay has heard about.
#[derive(Debug, Clone, Default)]
pub struct SimHealth {
    policy: HealthPolicy,
    sims: HashMap<SimKey, Track>,
}

impl SimHealth {
    pub fn new(policy: HealthPolicy) -> Self {
        Self {
            policy,
            sims: HashMap::new(),
        }
    }

    /// Whether `key` may take work at `now`.
    pub fn gate(&self, key: &SimKey, now: Millis) -> Gate {
        let Some(t) = self.sims.get(key) else {
            return Gate::Open;
        };
        match t.quarantined_until {
            Some(_) if t.probing => Gate::Closed,
            Some(until) if now >= until => Gate::Probe,
            Some(_) => Gate::Closed,
            None if t.cooldown_until > now => Gate::Closed,
            None => Gate::Open,
        }
    }

    /// The router let a probe through to `key`: no more until its outcome.
    pub fn probe_started(&mut self, key: &SimKey) {
        self.sims.entry(key.clone()).or_default().probing = true;
    }

    /// Records one outcome; returns a webhook-worthy change.
    pub fn record(&mut self, key: &SimKey, outcome: Outcome, now: Millis) -> Option<HealthEvent> {
        let p = &self.policy;
        let t = self.sims.entry(key.clone()).or_default();
        let ok = outcome == Outcome::Sent;
        match outcome {
            Outcome::Sent => t.sent += 1,
            Outcome::SimBound(code) => {
                let reason = code.map_or("unknown".to_string(), |c| {
                    simrelay_protocol::codes::name(c).to_ascii_lowercase()
                });
                *t.failures.entry(reason).or_insert(0) += 1;
                t.cooldown_until = now + p.cooldown_ms;
            }
        }
        if t.quarantined_until.is_some() {
            if !t.probing {
                return None; // a late outcome of work routed before the quarantine
            }
            t.probing = false;
            if ok {
                t.quarantined_until = None;
                t.recent.clear();
                t.cooldown_until = 0;
                return Some(HealthEvent::Recovered(key.clone()));
            }
            t.quarantined_until = Some(now + p.quarantine_ms);
            return None;
        }
        t.recent.push_back(ok);
        while t.recent.len() > p.window.max(1) {
            t.recent.pop_front();
        }
        let failed = t.recent.iter().filter(|x| !**x).count();
        let n = t.recent.len();
        if !ok && n >= p.min_samples && failed as f64 >= p.max_failure_rate * n as f64 {
            t.quarantined_until = Some(now + p.quarantine_ms);
            return Some(HealthEvent::Quarantined(key.clone()));
        }
        None
    }

    /// `healthy`, `cooldown`, `quarantined` or `probing`, for the API.
    pub fn state(&self, key: &SimKey, now: Millis) -> &'static str {
        match self.sims.get(key) {
            Some(t) if t.probing => "probing",
            Some(t) if t.quarantined_until.is_some() => "quarantined",
            Some(t) if t.cooldown_until > now => "cooldown",
            _ => "healthy",
        }
    }

    /// Recipients that left this SIM's radio, and SIM-bound failures by reason.
    pub fn figures(&self, key: &SimKey) -> (u64, BTreeMap<String, u64>) {
        self.sims
            .get(key)
            .map(|t| (t.sent, t.failures.clone()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SimKey {
        SimKey::new("p", 1)
    }

    #[test]
    fn a_sim_bound_failure_cools_the_sim_down() {
        let mut h = SimHealth::new(HealthPolicy::default());
        assert_eq!(h.record(&key(), Outcome::Sent, 0), None);
        assert_eq!(h.record(&key(), Outcome::SimBound(Some(4)), 1_000), None);
        assert_eq!(h.gate(&key(), 1_000), Gate::Closed);
        assert_eq!(h.state(&key(), 1_000), "cooldown");
        assert_eq!(h.gate(&key(), 31_000), Gate::Open);
        let (sent, failures) = h.figures(&key());
        assert_eq!(sent, 1);
        assert_eq!(failures.get("result_error_no_service"), Some(&1));
    }

    #[test]
    fn quarantine_then_probe_then_recovery() {
        let mut h = SimHealth::new(HealthPolicy::default());
        let k = key();
        h.record(&k, Outcome::Sent, 0);
        h.record(&k, Outcome::SimBound(Some(120)), 1);
        assert_eq!(
            h.record(&k, Outcome::SimBound(Some(120)), 2),
            Some(HealthEvent::Quarantined(k.clone()))
        );
        assert_eq!(h.gate(&k, 2 + 299_999), Gate::Closed);
        // A late success of older work does not lift the quarantine.
        assert_eq!(h.record(&k, Outcome::Sent, 10), None);
        assert_eq!(h.gate(&k, 300_002), Gate::Probe);
        h.probe_started(&k);
        assert_eq!(h.gate(&k, 300_002), Gate::Closed, "one probe at a time");
        // The probe fails: quarantined again, no second webhook.
        assert_eq!(h.record(&k, Outcome::SimBound(Some(120)), 300_100), None);
        assert_eq!(h.gate(&k, 300_101), Gate::Closed);
        assert_eq!(h.gate(&k, 600_100), Gate::Probe);
        h.probe_started(&k);
        assert_eq!(
            h.record(&k, Outcome::Sent, 600_200),
            Some(HealthEvent::Recovered(k.clone()))
        );
        assert_eq!(h.gate(&k, 600_200), Gate::Open);
        assert_eq!(h.state(&k, 600_200), "healthy");
    }

    #[test]
    fn a_healthy_rate_is_not_quarantined() {
        let mut h = SimHealth::new(HealthPolicy::default());
        let k = key();
        for i in 0..9 {
            h.record(&k, Outcome::Sent, i);
        }
        assert_eq!(h.record(&k, Outcome::SimBound(None), 10), None);
        assert_eq!(h.state(&k, 10), "cooldown");
    }
}
