//! The rack simulator's relay on the real store: [`Store`] in a directory the caller
//! gives (a temporary one on `/dev/shm` makes fsync cheap), the real routing pass ([`crate::dispatch::route_account`]
//! with [`Rack`]), and the store's own acceptance, cancel-before-ack, offline re-routing and
//! failover, all on virtual time. Only the sockets are left out: frames and events are handed
//! over directly, as `link.rs` does after each batch.

use simrelay_core::RelayOp;
use simrelay_core::protocol::{Event, PhoneStatus, RecipientState, SimInfo, decode_relay_frame};

use super::Relay;
use crate::dispatch::route_account;
use crate::domain::MessageStatus;
use crate::hub::OnlinePhone;
use crate::rack::Rack;
use crate::sim_health::{HealthEvent, HealthPolicy, Millis, Outcome};
use crate::store::{MessageFilter, NewMessage, Store};

/// The real store and router.
#[derive(Debug)]
pub struct StoreRelay {
    store: Store,
    rack: Rack,
    account: String,
    health_events: Vec<(Millis, HealthEvent)>,
    sim_bound: u64,
}

impl StoreRelay {
    /// A fresh store in `dir` with one account and `phones` paired phones.
    pub fn new(
        dir: &std::path::Path,
        phones: &[String],
        health: HealthPolicy,
        now: Millis,
    ) -> Self {
        let store = Store::open_sqlite(&dir.join("relay.sqlite")).expect("store opens");
        let account = store.ensure_api_key("rack-key", now).expect("account");
        for p in phones {
            let code = format!("code-{p}");
            store
                .create_pairing_code(&account, &code, now, now + 60_000)
                .expect("pairing code");
            store
                .pair_phone(&code, p, &format!("token-{p}"), None, now)
                .expect("pairs")
                .expect("the code is fresh");
        }
        Self {
            store,
            rack: Rack::new(health),
            account,
            health_events: Vec::new(),
            sim_bound: 0,
        }
    }

    fn ops(&self, phone: &str, after: u64, upto: u64) -> Vec<RelayOp> {
        let frames = self
            .store
            .frames_after(phone, after, 100_000)
            .expect("frames");
        frames
            .into_iter()
            .filter(|(seq, _)| *seq <= upto)
            .filter_map(|(_, body)| decode_relay_frame(&body).ok().and_then(RelayOp::from_frame))
            .collect()
    }

    fn count_states(&self, finals: bool) -> usize {
        let c = self.store.counts().expect("counts");
        c.messages_by_state
            .iter()
            .filter(|(s, _)| {
                RecipientState::parse(s).is_some_and(RecipientState::is_final) == finals
            })
            .map(|(_, n)| usize::try_from(*n).unwrap_or(0))
            .sum()
    }
}

impl Relay for StoreRelay {
    fn submit(&mut self, messages: &[(String, String, String)], now: Millis) {
        let batch: Vec<NewMessage> = messages
            .iter()
            .map(|(id, to, text)| NewMessage {
                account_id: self.account.clone(),
                id: id.clone(),
                body_hash: format!("hash-{id}"),
                to: vec![to.clone()],
                text: text.clone(),
                priority: 0,
                valid_until: None,
                schedule_at: None,
                phone_id: None,
                sim: None,
                pool: None,
                delivery_report: true,
                encrypted: false,
                data_port: None,
                created_at: now,
                suppression_override: None,
            })
            .collect();
        self.store.create_messages(&batch).expect("messages stored");
    }

    fn connected(&mut self, phone: &str, now: Millis) {
        self.store
            .phone_connected(phone, &PhoneStatus::default(), now)
            .expect("connected");
    }

    fn phone_offline(&mut self, phone: &str, now: Millis) {
        self.store.phone_offline(phone, now).expect("offline");
    }

    fn route(&mut self, online: &[(String, Vec<SimInfo>)], now: Millis) {
        let phones: Vec<OnlinePhone> = online
            .iter()
            .map(|(id, sims)| OnlinePhone {
                id: id.clone(),
                status: PhoneStatus {
                    sims: sims.clone(),
                    queue_depth: 0,
                    battery: None,
                    charging: None,
                    app_version: "rack-sim".into(),
                },
            })
            .collect();
        loop {
            let (_, full) = route_account(&self.store, &self.rack, &self.account, &phones, now)
                .expect("routing pass");
            if !full {
                return;
            }
        }
    }

    fn frames_after(&mut self, phone: &str, after: u64) -> Vec<RelayOp> {
        self.ops(phone, after, u64::MAX)
    }

    fn frames_acked(&mut self, phone: &str, seq: u64, now: Millis) {
        self.store
            .apply_from_phone(phone, Some(seq), &[], now)
            .expect("ack applies");
    }

    fn apply_events(
        &mut self,
        phone: &str,
        events: &[(u64, Event)],
        now: Millis,
    ) -> (Vec<RelayOp>, u64) {
        let applied = self
            .store
            .apply_from_phone(phone, None, events, now)
            .expect("events apply");
        for (key, outcome) in &applied.sim_outcomes {
            if matches!(outcome, Outcome::SimBound(_)) {
                self.sim_bound += 1;
            }
            if let Some(ev) = self.rack.record(key, *outcome, now) {
                self.health_events.push((now, ev));
            }
        }
        let cancels = applied
            .cancel_upto
            .map_or_else(Vec::new, |upto| self.ops(phone, 0, upto));
        (cancels, applied.event_seq)
    }

    fn open_recipients(&self) -> usize {
        self.count_states(false)
    }

    fn unrouted_len(&self) -> usize {
        usize::try_from(self.store.counts().expect("counts").unrouted).unwrap_or(0)
    }

    fn outcomes(&self) -> Vec<MessageStatus> {
        let mut out = Vec::new();
        let mut filter = MessageFilter {
            limit: 500,
            ..MessageFilter::default()
        };
        loop {
            let page = self
                .store
                .list_messages(&self.account, &filter)
                .expect("messages");
            let Some(last) = page.last() else {
                return out;
            };
            filter.after_cursor = Some(last.cursor);
            out.extend(page.iter().map(|m| m.state));
        }
    }

    fn health_events(&self) -> &[(Millis, HealthEvent)] {
        &self.health_events
    }

    fn failovers(&self) -> u64 {
        let failed = self
            .outcomes()
            .iter()
            .filter(|s| **s == MessageStatus::Failed)
            .count() as u64;
        self.sim_bound.saturating_sub(failed)
    }
}
