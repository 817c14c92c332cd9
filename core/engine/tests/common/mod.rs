//! A virtual-time harness: the real engine and the simulated radio, stepped by hand.
#![allow(dead_code)]

use simrelay_core::protocol::{Event, Millis, OutboundMessage, Recipient, RecipientState};
use simrelay_core::sim_modem::{SimModemConfig, SimRadio};
use simrelay_core::{Engine, EngineConfig, Origin, SendCommand, SimConfig};

pub const T0: Millis = 1_800_000_000_000;

pub struct Rig {
    pub engine: Engine,
    pub radio: SimRadio,
    pub now: Millis,
    /// Every command handed to the radio, with the time.
    pub handed: Vec<(Millis, SendCommand)>,
}

impl Rig {
    pub fn new(config: EngineConfig, radio: SimModemConfig, sims: &[i32]) -> Self {
        let mut engine = Engine::open_in_memory(config).expect("engine opens");
        engine.set_sims(&sim_configs(sims)).expect("sims");
        Self {
            engine,
            radio: SimRadio::new(radio),
            now: T0,
            handed: Vec::new(),
        }
    }

    /// One round at `now`: deadlines, hand-overs, radio events.
    pub fn step(&mut self) {
        self.engine.tick(self.now).expect("tick");
        for cmd in self.engine.due(self.now).expect("due") {
            self.radio.transmit(&cmd, self.now);
            self.handed.push((self.now, cmd));
        }
        for ev in self.radio.due(self.now) {
            self.engine.on_modem_event(&ev, self.now).expect("event");
        }
    }

    /// Steps until nothing is left to do before `until`, jumping virtual time.
    pub fn run_until(&mut self, until: Millis) {
        loop {
            self.step();
            // Results of this instant may make more work due at once.
            let next = [
                self.engine.next_wakeup(self.now).expect("wakeup"),
                self.radio.next_due(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= self.now => continue,
                Some(t) if t <= until => self.now = t,
                _ => {
                    self.now = until;
                    self.step();
                    return;
                }
            }
        }
    }

    pub fn state(&self, id: &str, idx: u32) -> RecipientState {
        self.engine
            .recipient(id, idx)
            .expect("read")
            .expect("recipient exists")
            .state
    }

    pub fn submit(&mut self, m: OutboundMessage) {
        self.engine
            .submit(&[m], Origin::Local, self.now)
            .expect("submit");
    }
}

/// A temporary directory, in memory-backed /dev/shm where there is one: these tests simulate
/// process kills, not power cuts, so fsync speed only slows them down.
pub fn temp_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("tempdir")
}

pub fn sim_configs(sims: &[i32]) -> Vec<SimConfig> {
    sims.iter()
        .enumerate()
        .map(|(slot, &sub_id)| SimConfig {
            sub_id,
            slot: slot as i32,
            carrier: None,
            parts_per_minute: None,
            daily_cap: None,
        })
        .collect()
}

pub fn msg(id: &str, to: &[&str], text: &str) -> OutboundMessage {
    OutboundMessage {
        id: id.into(),
        recipients: to
            .iter()
            .enumerate()
            .map(|(i, t)| Recipient {
                idx: i as u32,
                to: (*t).into(),
            })
            .collect(),
        text: text.into(),
        priority: 0,
        valid_until: None,
        schedule_at: None,
        sim: None,
        delivery_report: true,
        resend_unknown: false,
        encrypted: false,
        data_port: None,
    }
}

/// The recipient states the outbox reports for one recipient, in order.
pub fn reported_states(engine: &Engine, id: &str, idx: u32) -> Vec<RecipientState> {
    engine
        .events_after(0, 100_000)
        .expect("events")
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Recipient(u) if u.message_id == id && u.idx == idx => Some(u.state),
            _ => None,
        })
        .collect()
}
