//! The radio boundary: what the engine hands to a modem and what comes back.
//!
//! A [`Modem`] takes [`Command`]s; results come back into the engine as [`ModemEvent`]s, each
//! naming the part it is about by a [`PartKey`]. On Android the modem is the Kotlin shell,
//! reached through a [`CommandQueue`] that a Kotlin thread drains with a blocking pull; in
//! tests and the demo it is the simulated radio (`sim_modem`).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use simrelay_protocol::Millis;

/// Hand one recipient's text to the radio, on one subscription.
///
/// `attempt` grows with each hand-over of the same recipient, so that results of an earlier
/// attempt are told apart from the current one.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SendCommand {
    pub message_id: String,
    pub idx: u32,
    pub attempt: u32,
    /// Android subscription id.
    pub sim: i32,
    pub to: String,
    pub text: String,
    /// The engine's estimate; the device's own `divideMessage` count wins.
    pub parts: u32,
    pub delivery_report: bool,
    /// A data SMS instead of a text: `text` is then empty and `parts` is 1
    /// (`SmsManager.sendDataMessage`, one sent and one delivery intent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataSms>,
}

/// The payload of a data SMS and its application port, as the radio sends it.
///
/// One PDU of 8-bit data with a 16-bit port header: at most [`MAX_DATA_BYTES`] bytes.
/// In JSON (the Kotlin shell's command) the payload is standard base64.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct DataSms {
    /// Destination application port.
    pub port: u16,
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
}

impl DataSms {
    /// The data SMS a stored message stands for: `text` is its payload in standard base64.
    pub fn decode(port: u16, text: &str) -> Result<Self, DataRefusal> {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| DataRefusal::InvalidData)?;
        if payload.is_empty() {
            // `sendDataMessage` throws on an empty payload.
            return Err(DataRefusal::InvalidData);
        }
        if payload.len() > MAX_DATA_BYTES {
            return Err(DataRefusal::TooLong);
        }
        Ok(Self { port, payload })
    }
}

/// Why a data SMS never reaches the radio (the recipient ends `failed` with this reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRefusal {
    /// Not standard base64, or empty.
    InvalidData,
    /// More than [`MAX_DATA_BYTES`] bytes.
    TooLong,
}

impl DataRefusal {
    /// The recipient's `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidData => "invalid_data",
            Self::TooLong => "data_too_long",
        }
    }
}

/// Most payload bytes of a data SMS: 140 octets of user data less the port header
/// (UDHL 1 + IEI 0x05, length 1, two 16-bit ports = 7 octets). Android sends a data SMS as a
/// single PDU (`sendDataMessage` never segments).
pub const MAX_DATA_BYTES: usize = 140 - 7;

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

impl SendCommand {
    pub fn key(&self, part: u32) -> PartKey {
        PartKey {
            message_id: self.message_id.clone(),
            idx: self.idx,
            attempt: self.attempt,
            part,
        }
    }
}

/// What the engine asks of the shell.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    Send(SendCommand),
    /// Read the SIM list again and report it.
    RefreshSims,
}

/// Names one part of one attempt of one recipient.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartKey {
    pub message_id: String,
    pub idx: u32,
    pub attempt: u32,
    /// 0-based part index.
    pub part: u32,
}

pub use simrelay_protocol::codes::RESULT_OK;

/// What the radio reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemEvent {
    /// A part's sent-intent fired. `parts` is the device's count of parts for this attempt.
    Sent {
        key: PartKey,
        parts: u32,
        result: i32,
        error_code: Option<i32>,
    },
    /// A part's delivery intent fired with the raw status-report PDU.
    Report {
        key: PartKey,
        pdu: Vec<u8>,
        format: String,
    },
    /// An SMS arrived (multipart already reassembled by Android).
    Incoming {
        sim: Option<i32>,
        from: String,
        text: String,
        sent_at: Option<Millis>,
    },
    /// A data SMS arrived: the raw SMS-DELIVER PDUs of Android's `DATA_SMS_RECEIVED`
    /// (`"pdus"` and `"format"` extras), parsed by the engine ([`crate::pdu::parse_data_sms`]).
    IncomingData {
        sim: Option<i32>,
        pdus: Vec<Vec<u8>>,
        format: String,
    },
}

/// The radio. `transmit` must not block; outcomes arrive later as [`ModemEvent`]s, fed to
/// the phone through the [`PhoneHandle`](crate::phone::PhoneHandle) given to `attach`.
pub trait Modem: Send {
    /// Called once when the phone starts, before any `transmit`.
    fn attach(&mut self, _phone: crate::phone::PhoneHandle) {}
    fn transmit(&mut self, command: Command);
}

/// A modem that queues commands for a puller on another thread (the Android shell).
#[derive(Debug, Default)]
pub struct CommandQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct QueueState {
    commands: VecDeque<Command>,
    closed: bool,
}

/// What [`CommandQueue::next`] returns.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Command(Command),
    Timeout,
    Closed,
}

impl CommandQueue {
    pub fn push(&self, command: Command) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.closed {
            state.commands.push_back(command);
            self.ready.notify_one();
        }
    }

    /// Waits up to `timeout` for a command. Returns `Closed` once [`close`](Self::close) ran.
    pub fn next(&self, timeout: Duration) -> Next {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut state, _) = self
            .ready
            .wait_timeout_while(guard, timeout, |s| s.commands.is_empty() && !s.closed)
            .unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return Next::Closed;
        }
        state
            .commands
            .pop_front()
            .map_or(Next::Timeout, Next::Command)
    }

    /// Wakes every waiter; later calls to `next` return `Closed`.
    pub fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        self.ready.notify_all();
    }

    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .commands
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Modem for std::sync::Arc<CommandQueue> {
    fn transmit(&mut self, command: Command) {
        self.push(command);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn queue_times_out_delivers_and_closes() {
        let q = Arc::new(CommandQueue::default());
        assert_eq!(q.next(Duration::from_millis(1)), Next::Timeout);
        q.push(Command::RefreshSims);
        assert_eq!(
            q.next(Duration::from_millis(1)),
            Next::Command(Command::RefreshSims)
        );
        let waiter = {
            let q = q.clone();
            std::thread::spawn(move || q.next(Duration::from_secs(600)))
        };
        q.close();
        assert_eq!(waiter.join().expect("waiter thread"), Next::Closed);
        q.push(Command::RefreshSims);
        assert!(q.is_empty(), "a closed queue takes nothing");
    }
}
