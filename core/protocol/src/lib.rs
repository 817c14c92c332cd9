//! The phone <-> relay wire types of simrelay.
//!
//! One JSON object per WebSocket text frame, tagged by `type`. Both directions are sequenced:
//! the relay numbers its `send`/`cancel` frames per phone, the phone numbers its events (its
//! durable outbox). Each side acknowledges cumulatively and resends everything unacknowledged
//! after a reconnect, so either side may crash or the link may drop at any frame. Applying a
//! frame twice changes nothing (message ids and event sequence numbers are idempotency keys).
//! Unknown fields are refused. `docs/protocol.md` is the human-readable contract.
//!
//! This crate does no I/O: the engine's link client and the relay's device hub both use it.
//! It also holds the rules both sides must apply alike: [`is_e164`], [`MAX_RECIPIENTS`],
//! [`segment`] (how many parts a text costs: the relay paces SIMs by it) and [`codes`] (the
//! Android result codes the phone reports in `code`).

pub mod codes;
pub mod segment;

use serde::{Deserialize, Serialize};

/// Version sent in the first frame of each side (`hello`, `welcome`).
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text frame either side accepts, in bytes.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// Unix time in milliseconds (the one time type of the phone, the relay and the wire).
pub type Millis = i64;

/// Most recipients in one message: the relay's API and the phone's engine both refuse more.
pub const MAX_RECIPIENTS: usize = 1_000;

/// Whether `s` is an E.164 number: `+`, a non-zero digit, then 1 to 14 more digits
/// (`^\+[1-9][0-9]{1,14}$`). The relay's API and the phone's engine apply the same rule.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// An SMS to send, as the relay hands it to one phone.
///
/// `id` is the message's stable id (the idempotency key end to end). A relay message with
/// several recipients may be split across phones: each frame carries the recipients routed to
/// this phone with their index in the relay's message.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutboundMessage {
    pub id: String,
    pub recipients: Vec<Recipient>,
    pub text: String,
    /// Higher goes first; 100 and above is the expedited lane.
    #[serde(default)]
    pub priority: i32,
    /// Never hand to the radio after this instant: expire instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Millis>,
    /// Not before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_at: Option<Millis>,
    /// Subscription id to send on; `None` lets the phone pick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<i32>,
    /// Ask the network for delivery reports.
    #[serde(default = "yes")]
    pub delivery_report: bool,
    /// After a crash with the radio's outcome unknown, send again instead of ending `unknown`.
    #[serde(default)]
    pub resend_unknown: bool,
    /// End-to-end encrypted (SMS Gateway for Android's format, `$aes-256-cbc/pbkdf2-sha1$...`):
    /// `text` and every `recipients[].to` are ciphertexts the relay never reads. The phone
    /// decrypts them with its own passphrase just before the radio; a phone that cannot
    /// (no passphrase, wrong one) ends those recipients `failed`, reason `decrypt_failed`,
    /// `unsent`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub encrypted: bool,
    /// A data SMS to this application port: `text` is then the payload in standard base64
    /// (encrypted as a whole when `encrypted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_port: Option<u16>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

/// One recipient of an [`OutboundMessage`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// Index of this recipient in the relay's message.
    pub idx: u32,
    /// E.164 number.
    pub to: String,
}

/// The state of one recipient of a message.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RecipientState {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    Expired,
    Cancelled,
    Unknown,
}

impl RecipientState {
    /// Final states never change again (a late delivery report may still turn `sent` or
    /// `unknown` into `delivered`/`failed`; those two are not final).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Failed | Self::Expired | Self::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            "cancelled" => Self::Cancelled,
            "unknown" => Self::Unknown,
            _ => return None,
        })
    }
}

/// A recipient's state change, reported by the phone.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecipientUpdate {
    pub message_id: String,
    pub idx: u32,
    pub state: RecipientState,
    /// When the change happened on the phone.
    pub at: Millis,
    /// Machine-readable reason for failed/expired/unknown/cancelled (never user data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Android result code or TP-Status behind a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// Subscription used (or chosen) for this recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<i32>,
    pub parts: u32,
    pub parts_sent: u32,
    pub parts_delivered: u32,
    /// Failed before any part reached the radio, for a reason bound to this SIM or phone: the
    /// relay may route the recipient to another SIM without risking a duplicate.
    #[serde(default)]
    pub unsent: bool,
}

/// An SMS received by the phone. `id` is stable however often Android re-broadcasts it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IncomingSms {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<i32>,
    pub from: String,
    pub text: String,
    /// Service-centre time stamp, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Millis>,
    pub received_at: Millis,
    /// `from` and `text` are encrypted by the phone (its passphrase is set) in the same format
    /// as [`OutboundMessage::encrypted`]; the relay stores and forwards them as they are.
    #[serde(default, skip_serializing_if = "is_false")]
    pub encrypted: bool,
    /// A data SMS received on this application port: `text` is the payload in standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_port: Option<u16>,
}

/// What the phone's durable outbox carries to the relay.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Recipient(RecipientUpdate),
    Incoming(IncomingSms),
}

/// One SIM of a phone.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SimInfo {
    /// Android subscription id (stable key; slots can change).
    pub sub_id: i32,
    pub slot: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// The phone's pace for this SIM.
    pub parts_per_minute: u32,
    pub daily_cap: u32,
    /// Parts handed to the radio today (phone's local day, UTC).
    #[serde(default)]
    pub sent_today: u32,
}

/// What the phone reports about itself, on connect and on change.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct PhoneStatus {
    pub sims: Vec<SimInfo>,
    /// Recipients not yet in a final or waiting-for-report state.
    pub queue_depth: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging: Option<bool>,
    pub app_version: String,
}

/// Frames the phone sends.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PhoneFrame {
    /// First frame. `acked` is the highest relay sequence the phone has durably applied.
    Hello {
        version: u32,
        token: String,
        acked: u64,
        status: PhoneStatus,
    },
    /// Instead of `hello` on a fresh link: exchange a one-time pairing code for a device
    /// token. The relay answers `paired` (or `error`) and closes the link.
    Pair {
        version: u32,
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    Status {
        status: PhoneStatus,
    },
    /// One outbox entry; `seq` grows by one per event.
    Event {
        seq: u64,
        event: Event,
    },
    /// Every relay frame up to `seq` is durably applied.
    Ack {
        seq: u64,
    },
    Heartbeat {
        at: Millis,
    },
}

/// Frames the relay sends.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RelayFrame {
    /// Answer to `hello`. `acked` is the highest phone event sequence the relay has stored;
    /// the phone resends everything after it.
    Welcome {
        version: u32,
        phone_id: String,
        acked: u64,
        heartbeat_ms: u64,
        /// Every node of the relay's cluster (`wss://` URLs), when it has more than one: the
        /// phone keeps a link to each (see docs/protocol.md, "Several relay nodes"). Absent on a
        /// single relay.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nodes: Vec<String>,
    },
    /// Answer to `pair`: the device token to use in every later `hello`.
    Paired {
        phone_id: String,
        token: String,
        /// The cluster's nodes, as in `welcome`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nodes: Vec<String>,
    },
    /// Store and send this message; acknowledging `seq` means "accepted".
    Send {
        seq: u64,
        message: OutboundMessage,
    },
    /// Cancel whatever of this message has not reached the radio: the recipients listed in
    /// `recipients` (by index), or all of them when it is absent.
    Cancel {
        seq: u64,
        message_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recipients: Option<Vec<u32>>,
    },
    /// Every phone event up to `seq` is stored by the relay.
    Ack {
        seq: u64,
    },
    Heartbeat {
        at: Millis,
    },
    /// The relay refuses the link (bad token, bad version, bad frame) and closes it.
    Error {
        code: String,
        message: String,
    },
}

/// Path of the phones' WebSocket endpoint on the relay.
pub const WS_PATH: &str = "/v1/link";

/// Errors of [`decode_phone_frame`] and [`decode_relay_frame`].
#[derive(Debug)]
pub enum DecodeError {
    TooLarge(usize),
    Invalid(serde_json::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge(n) => write!(f, "frame of {n} bytes exceeds {MAX_FRAME_BYTES}"),
            Self::Invalid(e) => write!(f, "invalid frame: {}", describe_json_error(e).1),
        }
    }
}

/// Describes a serde_json error without quoting the input (which may hold numbers or text).
pub fn describe_json_error(e: &serde_json::Error) -> (&'static str, String) {
    use serde_json::error::Category;
    // Errors inside tagged enums are found on buffered content, where serde_json has no
    // position (line 0).
    let at = if e.line() > 0 {
        format!(" (at line {} column {})", e.line(), e.column())
    } else {
        String::new()
    };
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ("invalid_json", format!("the body is not valid JSON{at}"))
        }
        Category::Data => {
            let text = e.to_string();
            // serde's field messages quote field names (ours or the caller's keys), not values.
            let field_msg = ["unknown field", "missing field", "duplicate field"]
                .iter()
                .any(|p| text.starts_with(p));
            let message = if field_msg {
                format!("{}{at}", field_message(&text))
            } else {
                format!("a field has the wrong type or an invalid value{at}")
            };
            ("invalid_body", message)
        }
    }
}

/// Longest field name an error quotes.
const MAX_QUOTED_FIELD: usize = 32;

/// serde's `unknown field `x`, expected ...` (or `missing`/`duplicate`) without the list of
/// expected fields, quoting the name only when it is a short identifier: a letter or `_`,
/// then letters, digits and `_`, at most 32 characters and 4 digits. A caller's key can be
/// anything (a phone number, a message text, a kilobyte of junk) and is never echoed.
fn field_message(text: &str) -> String {
    let (kind, rest) = text.split_once(" `").unwrap_or((text, ""));
    // The name ends at the backtick before ", expected ..." or " at line ..." or the end; a
    // name holding a backtick or these words fails the identifier rule below anyway.
    let name = rest
        .split_once("`, expected")
        .or_else(|| rest.split_once("` at line"))
        .map_or_else(|| rest.strip_suffix('`').unwrap_or(""), |(name, _)| name);
    let identifier = name.len() <= MAX_QUOTED_FIELD
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.bytes().filter(u8::is_ascii_digit).count() <= 4;
    if identifier {
        format!("{kind} `{name}`")
    } else {
        kind.to_string()
    }
}

impl std::error::Error for DecodeError {}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(DecodeError::Invalid)
}

/// Parses a frame sent by a phone.
pub fn decode_phone_frame(text: &str) -> Result<PhoneFrame, DecodeError> {
    decode(text)
}

/// Parses a frame sent by the relay.
pub fn decode_relay_frame(text: &str) -> Result<RelayFrame, DecodeError> {
    decode(text)
}

/// Serialises any frame. Frames are plain data, so this cannot fail.
pub fn encode<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).expect("wire types serialise to JSON without error")
}

#[cfg(test)]
mod tests;
