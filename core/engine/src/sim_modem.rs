//! The simulated radio: a test double of the phone's radio only (the engine driving it is
//! the real one).
//!
//! [`SimRadio`] is sans-IO: `transmit` schedules sent results and delivery reports (real
//! 3GPP status-report PDUs) at virtual times, `due(now)` hands out what is due. It counts
//! every part actually "transmitted", per recipient and part, so tests can prove that no SMS
//! left twice. Per-SIM behaviour sets latency, failure codes and rates, delivery delay and
//! status, or a dead SIM. [`SimModem`] wraps it as a [`Modem`] for the async phone.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use simrelay_protocol::Millis;

use crate::modem::{Command, Modem, ModemEvent, RESULT_OK, SendCommand};
use crate::phone::PhoneHandle;
use crate::{pdu, segment};

/// How one SIM of the simulated radio behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SimBehaviour {
    /// Delay from hand-over to the sent results.
    pub latency_ms: Millis,
    /// Probability that an attempt fails as a whole (nothing transmitted) with `fail_code`.
    pub fail_rate: f64,
    pub fail_code: i32,
    /// Delay from the sent result to the delivery report.
    pub report_delay_ms: Millis,
    /// TP-Status of the final delivery report.
    pub report_status: u8,
    /// Send a temporary-error report (0x21 "SME busy") before the final one.
    pub pending_report_first: bool,
    /// Never answer at all (a radio that swallowed the command).
    pub silent: bool,
}

impl Default for SimBehaviour {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            fail_rate: 0.0,
            fail_code: 4,
            report_delay_ms: 0,
            report_status: 0x00,
            pending_report_first: false,
            silent: false,
        }
    }
}

/// Behaviour per SIM (by subscription id), with a default for the others.
#[derive(Debug, Clone, Default)]
pub struct SimModemConfig {
    pub default: SimBehaviour,
    pub sims: HashMap<i32, SimBehaviour>,
    pub seed: u64,
    /// A file that records every transmitted part (one line each), so the count survives a
    /// kill of the phone's process: the radio is the outside world.
    pub ledger: Option<std::path::PathBuf>,
    /// Numbers starting with this answer every SMS they receive (a test double of a far end,
    /// for tests that need incoming SMS): a text with `echo: ` and the text, a data SMS with
    /// the same payload to the same port, from the number sent to, just after the delivery
    /// report.
    pub echo_prefix: Option<String>,
}

/// Identifies a transmitted part across attempts: (message id, recipient index, part).
pub type TransmitKey = (String, u32, u32);

/// The sans-IO simulated radio.
#[derive(Debug)]
pub struct SimRadio {
    config: SimModemConfig,
    rng: StdRng,
    queue: BinaryHeap<Reverse<(Millis, u64)>>,
    pending: HashMap<u64, ModemEvent>,
    counter: u64,
    transmitted: BTreeMap<TransmitKey, u32>,
    message_ref: u8,
    ledger: Option<std::fs::File>,
    data_sent: Vec<DataSent>,
}

/// A data SMS the simulated radio transmitted, as it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSent {
    pub message_id: String,
    pub idx: u32,
    pub sim: i32,
    pub to: String,
    pub port: u16,
    pub payload: Vec<u8>,
}

impl SimRadio {
    pub fn new(config: SimModemConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Self {
            config,
            rng,
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            counter: 0,
            transmitted: BTreeMap::new(),
            message_ref: 0,
            ledger: None,
            data_sent: Vec::new(),
        }
    }

    /// A radio whose transmissions are appended to `config.ledger` and counted from what the
    /// file already holds.
    pub fn with_ledger(config: SimModemConfig) -> std::io::Result<Self> {
        let path = config.ledger.clone();
        let mut radio = Self::new(config);
        if let Some(path) = path {
            if let Ok(text) = std::fs::read_to_string(&path) {
                for line in text.lines() {
                    let mut f = line.split('\t');
                    if let (Some(id), Some(Ok(idx)), Some(Ok(part))) =
                        (f.next(), f.next().map(str::parse), f.next().map(str::parse))
                    {
                        *radio
                            .transmitted
                            .entry((id.to_string(), idx, part))
                            .or_insert(0) += 1;
                    }
                }
            }
            radio.ledger = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            );
        }
        Ok(radio)
    }

    /// Changes one SIM's behaviour from now on.
    pub fn set_behaviour(&mut self, sim: i32, behaviour: SimBehaviour) {
        self.config.sims.insert(sim, behaviour);
    }

    fn behaviour(&self, sim: i32) -> SimBehaviour {
        self.config
            .sims
            .get(&sim)
            .unwrap_or(&self.config.default)
            .clone()
    }

    fn schedule(&mut self, at: Millis, event: ModemEvent) {
        self.counter += 1;
        self.queue.push(Reverse((at, self.counter)));
        self.pending.insert(self.counter, event);
    }

    /// Takes a send command at `now`. The device's own part count is the real segmentation
    /// of the text, whatever the engine estimated.
    pub fn transmit(&mut self, cmd: &SendCommand, now: Millis) {
        let b = self.behaviour(cmd.sim);
        if b.silent {
            return;
        }
        let parts = match &cmd.data {
            Some(_) => 1,
            None => segment::count_parts(&cmd.text),
        };
        let fails = b.fail_rate > 0.0 && self.rng.random_bool(b.fail_rate.min(1.0));
        let sent_at = now + b.latency_ms;
        if !fails {
            self.echo(cmd, sent_at + b.report_delay_ms + 1);
        }
        for part in 0..parts {
            let key = cmd.key(part);
            if fails {
                self.schedule(
                    sent_at,
                    ModemEvent::Sent {
                        key,
                        parts,
                        result: b.fail_code,
                        error_code: None,
                    },
                );
                continue;
            }
            *self
                .transmitted
                .entry((cmd.message_id.clone(), cmd.idx, part))
                .or_insert(0) += 1;
            if let Some(data) = &cmd.data {
                self.data_sent.push(DataSent {
                    message_id: cmd.message_id.clone(),
                    idx: cmd.idx,
                    sim: cmd.sim,
                    to: cmd.to.clone(),
                    port: data.port,
                    payload: data.payload.clone(),
                });
            }
            if let Some(ledger) = &mut self.ledger {
                use std::io::Write;
                let line = format!("{}\t{}\t{part}\n", cmd.message_id, cmd.idx);
                if let Err(e) = ledger.write_all(line.as_bytes()) {
                    log::error!("simulated radio: ledger write failed: {e}");
                }
            }
            self.schedule(
                sent_at,
                ModemEvent::Sent {
                    key: key.clone(),
                    parts,
                    result: RESULT_OK,
                    error_code: None,
                },
            );
            if cmd.delivery_report {
                self.message_ref = self.message_ref.wrapping_add(1);
                let report_at = sent_at + b.report_delay_ms;
                if b.pending_report_first {
                    let pdu = self.report(&cmd.to, 0x21, report_at);
                    self.schedule(report_at, report_event(&key, pdu));
                }
                let pdu = self.report(&cmd.to, b.report_status, report_at);
                self.schedule(report_at, report_event(&key, pdu));
            }
        }
    }

    /// The far end's answer to `cmd` at `at`, when its number is an echo number.
    fn echo(&mut self, cmd: &SendCommand, at: Millis) {
        let Some(prefix) = &self.config.echo_prefix else {
            return;
        };
        if !cmd.to.starts_with(prefix.as_str()) {
            return;
        }
        let event = match &cmd.data {
            Some(data) => ModemEvent::IncomingData {
                sim: Some(cmd.sim),
                pdus: vec![pdu::build_data_pdu(
                    &cmd.to,
                    data.port,
                    &data.payload,
                    at,
                    None,
                )],
                format: "3gpp".into(),
            },
            None => ModemEvent::Incoming {
                sim: Some(cmd.sim),
                from: cmd.to.clone(),
                text: format!("echo: {}", cmd.text),
                sent_at: Some(at),
            },
        };
        self.schedule(at, event);
    }

    fn report(&self, to: &str, status: u8, at: Millis) -> Vec<u8> {
        pdu::build_status_report(
            Some("+15550000000"),
            self.message_ref,
            to,
            at - 1000,
            at,
            status,
        )
    }

    /// An SMS arriving at `at` (delivered with the next `due` from then on).
    pub fn inject_incoming(
        &mut self,
        sim: Option<i32>,
        from: &str,
        text: &str,
        sent_at: Option<Millis>,
        at: Millis,
    ) {
        self.schedule(
            at,
            ModemEvent::Incoming {
                sim,
                from: from.to_string(),
                text: text.to_string(),
                sent_at,
            },
        );
    }

    /// A data SMS arriving at `at` as the raw SMS-DELIVER PDUs Android would broadcast.
    pub fn inject_incoming_data(&mut self, sim: Option<i32>, pdus: Vec<Vec<u8>>, at: Millis) {
        self.schedule(
            at,
            ModemEvent::IncomingData {
                sim,
                pdus,
                format: "3gpp".into(),
            },
        );
    }

    /// Events due at `now`, in time order.
    pub fn due(&mut self, now: Millis) -> Vec<ModemEvent> {
        let mut out = Vec::new();
        while let Some(Reverse((at, id))) = self.queue.peek().copied() {
            if at > now {
                break;
            }
            self.queue.pop();
            if let Some(event) = self.pending.remove(&id) {
                out.push(event);
            }
        }
        out
    }

    /// A device reboot: Android keeps pending sent and delivery intents in memory only, so
    /// every result not yet delivered is lost. Returns how many were dropped.
    pub fn lose_pending(&mut self) -> usize {
        let n = self.pending.len();
        self.pending.clear();
        self.queue.clear();
        n
    }

    pub fn next_due(&self) -> Option<Millis> {
        self.queue.peek().map(|Reverse((at, _))| *at)
    }

    /// Times each part was transmitted.
    pub fn transmitted(&self) -> &BTreeMap<TransmitKey, u32> {
        &self.transmitted
    }

    /// Parts transmitted more than once (must stay 0).
    pub fn duplicates(&self) -> usize {
        self.transmitted.values().filter(|&&n| n > 1).count()
    }

    /// Every data SMS transmitted, in order (text sends are only counted).
    pub fn data_sent(&self) -> &[DataSent] {
        &self.data_sent
    }

    /// Parts transmitted in all.
    pub fn total_transmitted(&self) -> u64 {
        self.transmitted.values().map(|&n| u64::from(n)).sum()
    }
}

fn report_event(key: &crate::PartKey, pdu: Vec<u8>) -> ModemEvent {
    ModemEvent::Report {
        key: key.clone(),
        pdu,
        format: "3gpp".into(),
    }
}

/// The simulated radio as the async phone's [`Modem`]: a task feeds due events to the phone.
#[derive(Debug, Clone)]
pub struct SimModem {
    radio: Arc<Mutex<SimRadio>>,
    wake: Arc<tokio::sync::Notify>,
    phone: Arc<Mutex<Option<PhoneHandle>>>,
}

impl SimModem {
    /// # Panics
    /// When `config.ledger` names a file that cannot be opened for appending.
    pub fn new(config: SimModemConfig) -> Self {
        let radio = SimRadio::with_ledger(config).expect("simulated radio ledger opens");
        Self {
            radio: Arc::new(Mutex::new(radio)),
            wake: Arc::new(tokio::sync::Notify::new()),
            phone: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs `f` on the radio (counters, behaviour, injection), then lets the driver look.
    pub fn with_radio<R>(&self, f: impl FnOnce(&mut SimRadio) -> R) -> R {
        let r = f(&mut self.radio.lock().unwrap_or_else(|e| e.into_inner()));
        self.wake.notify_one();
        r
    }

    /// An SMS arriving now.
    pub fn inject_incoming(&self, sim: Option<i32>, from: &str, text: &str) {
        let now = self.now();
        self.with_radio(|r| r.inject_incoming(sim, from, text, Some(now), now));
    }

    /// A data SMS arriving now, as the raw SMS-DELIVER PDUs Android would broadcast.
    pub fn inject_incoming_data(&self, sim: Option<i32>, pdus: Vec<Vec<u8>>) {
        let now = self.now();
        self.with_radio(|r| r.inject_incoming_data(sim, pdus, now));
    }

    fn now(&self) -> Millis {
        self.phone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or_else(crate::clock::system_now, PhoneHandle::now)
    }

    async fn drive(self, phone: PhoneHandle) {
        loop {
            let now = phone.now();
            let (events, next) = {
                let mut radio = self.radio.lock().unwrap_or_else(|e| e.into_inner());
                (radio.due(now), radio.next_due())
            };
            if !events.is_empty() {
                match phone.on_modem_events(&events) {
                    Ok(results) => {
                        for e in results.into_iter().filter_map(Result::err) {
                            log::warn!("simulated radio: phone refused an event: {e}");
                        }
                    }
                    Err(crate::Error::Closed) => return,
                    Err(e) => log::warn!("simulated radio: {e}"),
                }
            }
            let wait = next.map(|t| std::time::Duration::from_millis((t - now).max(0) as u64));
            tokio::select! {
                () = self.wake.notified() => {}
                () = sleep_or_forever(wait) => {}
                () = phone.closed() => return,
            }
        }
    }
}

async fn sleep_or_forever(wait: Option<std::time::Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

impl Modem for SimModem {
    fn attach(&mut self, phone: PhoneHandle) {
        *self.phone.lock().unwrap_or_else(|e| e.into_inner()) = Some(phone.clone());
        tokio::spawn(self.clone().drive(phone));
    }

    fn transmit(&mut self, command: Command) {
        let now = self.now();
        if let Command::Send(cmd) = command {
            self.with_radio(|r| r.transmit(&cmd, now));
        }
    }
}
