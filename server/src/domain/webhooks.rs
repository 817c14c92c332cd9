//! Which webhook events the relay queues, and what they carry.
//!
//! Events are fanned out when they happen, in the transaction of the change that caused them:
//! one delivery per registration of the account that wants the event. Payloads are typed
//! here; their fields are in alphabetical order, which is also the order of their JSON.
//!
//! | what happened                                   | event               | data              |
//! |-------------------------------------------------|---------------------|-------------------|
//! | a recipient became `sent`                        | `message.sent`      | [`RecipientData`] |
//! | a recipient became `delivered`                   | `message.delivered` | [`RecipientData`] |
//! | a recipient became `failed` or `expired`         | `message.failed`    | [`RecipientData`] |
//! | a recipient became `unknown`                     | `message.unknown`   | [`RecipientData`] |
//! | a recipient became `suppressed` (opted out)      | `message.suppressed` | [`RecipientData`] |
//! | a new SMS arrived                                | `message.received`  | [`ReceivedData`]  |
//! | a phone connected after being offline            | `phone.online`      | [`PhoneData`]     |
//! | a phone went offline                             | `phone.offline`     | [`PhoneData`]     |
//! | a phone was removed                              | `phone.removed`     | [`PhoneData`]     |
//! | a SIM was quarantined / recovered (SIM health)   | `sim.quarantined` / `sim.recovered` | [`SimData`] |
//! | an opt-out / opt-in keyword changed the list     | `contact.opted_out` / `contact.opted_in` | [`ContactData`] |
//! | a cap was reached (once per limit and period)    | `account.limit_reached` | [`LimitData`] |
//! | a burst of new numbers paused a prefix           | `account.pumping_suspected` | [`PumpingData`] |

use serde::Serialize;

use super::state::RecipientStatus;

/// A webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    MessageSent,
    MessageDelivered,
    MessageFailed,
    MessageUnknown,
    MessageReceived,
    PhoneOnline,
    PhoneOffline,
    PhoneRemoved,
    SimQuarantined,
    SimRecovered,
    MessageSuppressed,
    ContactOptedOut,
    ContactOptedIn,
    AccountLimitReached,
    AccountPumpingSuspected,
}

impl Event {
    pub const ALL: &'static [Event] = &[
        Event::MessageSent,
        Event::MessageDelivered,
        Event::MessageFailed,
        Event::MessageUnknown,
        Event::MessageReceived,
        Event::PhoneOnline,
        Event::PhoneOffline,
        Event::PhoneRemoved,
        Event::SimQuarantined,
        Event::SimRecovered,
        Event::MessageSuppressed,
        Event::ContactOptedOut,
        Event::ContactOptedIn,
        Event::AccountLimitReached,
        Event::AccountPumpingSuspected,
    ];

    /// The event's name, as registrations list it and payloads carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::MessageSent => "message.sent",
            Event::MessageDelivered => "message.delivered",
            Event::MessageFailed => "message.failed",
            Event::MessageUnknown => "message.unknown",
            Event::MessageReceived => "message.received",
            Event::PhoneOnline => "phone.online",
            Event::PhoneOffline => "phone.offline",
            Event::PhoneRemoved => "phone.removed",
            Event::SimQuarantined => "sim.quarantined",
            Event::SimRecovered => "sim.recovered",
            Event::MessageSuppressed => "message.suppressed",
            Event::ContactOptedOut => "contact.opted_out",
            Event::ContactOptedIn => "contact.opted_in",
            Event::AccountLimitReached => "account.limit_reached",
            Event::AccountPumpingSuspected => "account.pumping_suspected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.as_str() == s)
    }

    /// Whether a registration listing `events` wants this event.
    pub fn wanted_by(self, events: &[String]) -> bool {
        events.iter().any(|e| e == self.as_str())
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The event queued for a recipient that just entered `state`, if that state has one.
pub fn recipient_event(state: RecipientStatus) -> Option<Event> {
    Some(match state {
        RecipientStatus::Sent => Event::MessageSent,
        RecipientStatus::Delivered => Event::MessageDelivered,
        RecipientStatus::Failed | RecipientStatus::Expired => Event::MessageFailed,
        RecipientStatus::Unknown => Event::MessageUnknown,
        RecipientStatus::Suppressed => Event::MessageSuppressed,
        _ => return None,
    })
}

/// What every delivery's body is: the event with its data.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope<'a, T: Serialize> {
    /// RFC 3339, UTC.
    pub created_at: String,
    pub data: &'a T,
    pub event: Event,
    /// The event id (one per delivery).
    pub id: &'a str,
    pub webhook_id: &'a str,
}

/// A recipient's change of state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientData {
    pub code: Option<i32>,
    pub error: Option<String>,
    pub idx: u32,
    pub message_id: String,
    pub parts: u32,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub state: RecipientStatus,
    pub to: String,
}

/// A keyword SMS that put its sender on the suppression list or took it off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactData {
    /// The normalised keyword (`stop`, `opt out`, `start`, ...).
    pub keyword: String,
    pub number: String,
    /// The phone and SIM it came in on.
    pub phone: String,
    /// RFC 3339, UTC: when the relay stored it.
    pub received_at: String,
    pub sim: Option<i32>,
}

/// A received SMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedData {
    pub from: String,
    pub id: String,
    pub phone: String,
    /// RFC 3339, UTC.
    pub received_at: String,
    pub sent_at: Option<String>,
    pub sim: Option<i32>,
    pub text: String,
    /// A data SMS received on this port (`text` is then base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_port: Option<u16>,
    /// `from` and `text` are the phone's end-to-end ciphertexts.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
}

/// A phone's presence changed, or it was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneData {
    pub phone: String,
}

/// A SIM's health changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimData {
    pub phone: String,
    pub sub_id: i32,
}

/// A cap of the account was reached: the send that would cross it was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitData {
    /// Parts allowed in the period.
    pub cap: u64,
    /// `daily`, `monthly` or `daily:<calling code>`.
    pub limit: String,
    /// `2026-12-04` or `2026-12` (UTC).
    pub period: String,
    /// Parts counted in the period.
    pub used: u64,
}

/// A burst of new numbers in one prefix paused it: its recipients are `held` until
/// `POST /v1/account/paused-prefixes/{prefix}/release` or `.../block`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PumpingData {
    /// New numbers seen in the prefix within the window.
    pub new_numbers: u64,
    /// RFC 3339, UTC.
    pub paused_at: String,
    /// The first digits of the numbers after `+` (never a whole number).
    pub prefix: String,
    pub threshold: u32,
    pub window_minutes: u32,
}
