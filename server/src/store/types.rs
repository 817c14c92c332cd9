//! The store's value types: what callers hand in and get back, whatever the backend.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use simrelay_protocol::{Event, PhoneStatus};

use super::Millis;
use crate::domain::{DeliveryState, MessageStatus, RecipientStatus};
use crate::pool_router::{Hours, PrefixRule, SimKey, SimLimits};
use crate::sim_health::Outcome;

/// A validated message to create.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub account_id: String,
    pub id: String,
    /// Hash of the request body: the same `id` with another body is a conflict.
    pub body_hash: String,
    pub to: Vec<String>,
    pub text: String,
    pub priority: i32,
    pub valid_until: Option<Millis>,
    pub schedule_at: Option<Millis>,
    pub phone_id: Option<String>,
    pub sim: Option<i32>,
    /// A SIM pool of the account (exclusive with `phone_id` and `sim`).
    pub pool: Option<String>,
    pub delivery_report: bool,
    /// `text` and every number of `to` are end-to-end ciphertexts (see `OutboundMessage`).
    pub encrypted: bool,
    /// A data SMS to this port: `text` is the payload in base64.
    pub data_port: Option<u16>,
    pub created_at: Millis,
    /// Sent to suppressed numbers too, and why (`None`: suppressed numbers are skipped).
    pub suppression_override: Option<SuppressionOverride>,
}

/// Why a message goes to numbers on the suppression list too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressionOverride {
    /// `transactional: true` on a message of an account that allows it.
    Transactional,
    /// The relay's automatic reply to a keyword (`crate::domain::auto_reply`).
    AutoReply,
}

impl SuppressionOverride {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transactional => "transactional",
            Self::AutoReply => "auto_reply",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "transactional" => Some(Self::Transactional),
            "auto_reply" => Some(Self::AutoReply),
            _ => None,
        }
    }
}

/// A phone's ack and events, applied by the group commit.
#[derive(Debug, Clone)]
pub struct PhoneBatch {
    pub phone: String,
    pub acked: Option<u64>,
    pub events: Vec<(u64, Event)>,
    pub now: Millis,
}

/// What [`Store::write_batch`] did: one outcome per message, one per phone batch.
pub type BatchOutcome = (
    Vec<CreateOutcome>,
    Vec<std::result::Result<Applied, String>>,
);

/// What creating a message did.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    Created(MessageView),
    /// The id existed with the same body: nothing new was stored.
    Existing(MessageView),
    /// The id existed with another body.
    Conflict,
    /// The requested phone is not one of the account's phones.
    UnknownPhone,
    /// The requested pool is not one of the account's pools.
    UnknownPool,
    /// A cap of the account would be crossed (`crate::domain::spend`): nothing was stored.
    LimitReached {
        limit: String,
        period: String,
    },
    /// Recipient `idx` is outside the account's allowed destinations (or in a blocked
    /// prefix): nothing was stored.
    DestinationNotAllowed {
        idx: u32,
    },
    /// `transactional` on a message of an account whose opt-out settings do not have
    /// `allow_override` (checked in the create transaction): nothing was stored.
    OverrideNotAllowed,
}

/// A message as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    pub cursor: i64,
    pub id: String,
    pub state: MessageStatus,
    pub priority: i32,
    pub valid_until: Option<Millis>,
    pub schedule_at: Option<Millis>,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub delivery_report: bool,
    pub encrypted: bool,
    pub data_port: Option<u16>,
    /// As stored: the text, its end-to-end ciphertext (`encrypted`) or a data SMS's payload
    /// in base64 (`data_port`).
    pub text: String,
    pub recipients: Vec<RecipientView>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Why it goes to suppressed numbers too, if it does.
    pub suppression_override: Option<SuppressionOverride>,
    /// A recipient was on the suppression list when the message was created and is sent
    /// anyway (by the override).
    pub overrode_suppression: bool,
}

/// One change of a recipient, as the history (`recipient_history`, kept by the database's
/// triggers on every change of state, phone, SIM or part counts) recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub idx: u32,
    /// The recipient's `updated_at` after the change.
    pub at: Millis,
    pub state: RecipientStatus,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub parts_sent: u32,
    pub parts_delivered: u32,
    pub error: Option<String>,
    pub code: Option<i32>,
}

/// One recipient as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientView {
    pub idx: u32,
    pub to: String,
    pub state: RecipientStatus,
    pub parts: u32,
    pub parts_sent: u32,
    pub parts_delivered: u32,
    pub error: Option<String>,
    pub code: Option<i32>,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub updated_at: Millis,
}

/// Filters of the message list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub state: Option<MessageStatus>,
    pub since: Option<Millis>,
    /// Only messages with a recipient of this number (E.164).
    pub to: Option<String>,
    pub after_cursor: Option<i64>,
    pub limit: u32,
}

/// What cancelling did.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    NotFound,
    /// Nothing could be cancelled any more (already with a radio or final).
    NotCancellable(MessageView),
    /// Cancelled locally and/or `cancel` frames queued for these phones.
    Cancelled {
        view: MessageView,
        phones: Vec<String>,
    },
}

/// A received SMS.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    pub cursor: i64,
    pub id: String,
    pub phone: String,
    pub sim: Option<i32>,
    pub from: String,
    pub text: String,
    pub sent_at: Option<Millis>,
    pub received_at: Millis,
    pub stored_at: Millis,
    /// `from` and `text` are the phone's end-to-end ciphertexts.
    pub encrypted: bool,
    /// A data SMS received on this port: `text` is the payload in base64.
    pub data_port: Option<u16>,
}

/// Filters of the inbox list and of `wait`.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    pub from: Option<String>,
    pub contains: Option<String>,
    /// Stored by the relay at or after this instant.
    pub since: Option<Millis>,
    pub after_cursor: Option<i64>,
    pub limit: u32,
    /// Newest first (for `wait`) instead of oldest first.
    pub newest_first: bool,
}

/// A phone as `GET /v1/phones` shows it (presence is added by the hub).
#[derive(Debug, Clone)]
pub struct PhoneRow {
    pub id: String,
    pub name: Option<String>,
    pub status: Option<PhoneStatus>,
    pub last_seen: Option<Millis>,
    pub created_at: Millis,
    /// Recipients routed to it and not yet sent or final.
    pub outstanding: u32,
}

/// An authenticated phone.
#[derive(Debug, Clone)]
pub struct PhoneAuth {
    pub id: String,
    pub account_id: String,
}

/// What [`Store::phone_connected`] found.
#[derive(Debug, Clone)]
pub struct Connected {
    /// Highest phone event seq stored.
    pub event_seq: u64,
    /// Highest relay frame seq the phone acknowledged.
    pub acked_seq: u64,
    /// Highest relay frame seq allocated (every frame the phone can have been written).
    pub next_seq: u64,
    /// The phone was marked offline before (so `phone.online` was queued).
    pub came_online: bool,
}

/// What applying a batch from a phone did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Highest phone event seq stored: the cumulative ack to send.
    pub event_seq: u64,
    /// The phone's ack as applied: clamped to the highest frame seq stored for it.
    pub acked: Option<u64>,
    /// Highest `cancel` frame seq queued by this batch or, when the batch resent events already
    /// stored, the highest one the phone has not acknowledged: the link writes up to it
    /// before the ack.
    pub cancel_upto: Option<u64>,
    /// New incoming SMS were stored.
    pub incoming: bool,
    /// Recipients changed state.
    pub changed: bool,
    /// A recipient left its phone's queue (sent or final), or the batch created a message
    /// (an auto-reply): the router may have work.
    pub freed: bool,
    /// Webhook deliveries queued by this batch.
    pub webhooks: usize,
    /// Outcomes that tell about a SIM's health: (SIM, outcome), in order.
    pub sim_outcomes: Vec<(SimKey, Outcome)>,
    /// Incoming SMS refused for good (`crate::limits::check_incoming`), by reason: their
    /// seqs are consumed, nothing of them is stored.
    pub incoming_refused: Vec<&'static str>,
}

/// A recipient waiting to be routed (input of the router).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrouted {
    pub mseq: i64,
    pub idx: u32,
    pub priority: i32,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub pool: Option<String>,
    pub to: String,
    pub parts: u32,
    /// SIMs that reported this recipient unsent (failover never returns to their phones).
    pub tried: Vec<SimKey>,
    /// SIMs the message is on already, per phone (a phone holds one SIM per message id).
    pub bound: Vec<SimKey>,
}

/// A webhook registration.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub created_at: Millis,
}

/// One queued webhook delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: String,
    pub event_id: String,
    pub event: String,
    pub url: String,
    pub secret: String,
    pub body: String,
    pub attempts: u32,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub messages_by_state: Vec<(String, i64)>,
    pub webhooks_pending: i64,
    pub webhooks_dead: i64,
    pub unrouted: i64,
}

/// A routing decision for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub mseq: i64,
    pub idx: u32,
    pub phone: String,
    /// The SIM chosen by the router (set in the frame's message).
    pub sim: Option<i32>,
}

/// One webhook attempt, as its delivery log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLog {
    pub webhook_id: String,
    pub event_id: String,
    pub event: String,
    pub at: Millis,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    pub duration_ms: i64,
    /// Why it failed (never the body); `None` for a 2xx.
    pub error: Option<String>,
}

/// An attempt as `GET /v1/webhooks/{id}/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptView {
    pub log: AttemptLog,
    /// The delivery's state now (`pending`, `delivered`, `dead`, ...), `None` for a ping or
    /// a pruned delivery.
    pub delivery_state: Option<DeliveryState>,
}

/// What [`Store::redeliver`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeliver {
    /// No such webhook of the account, or no such event of the webhook.
    NotFound,
    /// The delivery is not dead (its state).
    NotDead(DeliveryState),
    Queued,
}

/// Outcome of one webhook attempt.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    Delivered,
    Retry { at: Millis, error: String },
    Dead { error: String },
}

// ---- accounts and keys ----

/// The scopes of a whole account (every scope but `admin`), as stored.
pub const ACCOUNT_SCOPES: &str = "send,read,phones,webhooks";

/// A key as the authentication of a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAuth {
    pub id: String,
    pub account_id: String,
    /// Comma-separated scope names.
    pub scopes: String,
    pub revoked: bool,
    pub last_used_at: Option<Millis>,
}

/// A key as `GET /v1/keys` shows it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub prefix: Option<String>,
    pub scopes: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
}

/// A key to store: its hash, never the secret.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub prefix: Option<String>,
    pub key_hash: String,
    pub scopes: String,
    pub created_at: Millis,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: String,
    pub name: Option<String>,
    pub created_at: Millis,
    /// Keys not revoked.
    pub active_keys: u32,
}

/// What revoking did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// No such key (in that account).
    NotFound,
    /// Revoked now or before: the row as it is now.
    Done(KeyRow),
}

// ---- pools ----

/// A pool as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub members: Vec<SimKey>,
    /// (prefix, SIMs preferred for it).
    pub prefixes: Vec<(String, Vec<SimKey>)>,
    pub sticky: bool,
    pub created_at: Millis,
}

/// What creating a pool did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolOutcome {
    Created,
    Exists,
    /// A member or prefix SIM names a phone that is not the account's.
    UnknownPhone,
}

/// Relay-side settings of one SIM as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimSettings {
    pub daily_cap: Option<u32>,
    /// `"HH:MM-HH:MM"` (validated by the API).
    pub hours: Option<String>,
    pub utc_offset_min: i16,
}

impl SimSettings {
    pub fn limits(&self) -> SimLimits {
        SimLimits {
            daily_cap: self.daily_cap,
            hours: self
                .hours
                .as_deref()
                .and_then(|h| Hours::parse(h, self.utc_offset_min)),
            window: None,
        }
    }
}

/// Everything the router needs from the store for one account.
#[derive(Debug, Clone, Default)]
pub struct RoutingInput {
    pub pools: HashMap<String, BTreeSet<SimKey>>,
    pub sticky_pools: BTreeSet<String>,
    pub prefixes: Vec<PrefixRule>,
    pub settings: HashMap<SimKey, SimSettings>,
    /// Parts routed today (the SIM's local day) per SIM.
    pub routed_today: HashMap<SimKey, u32>,
    /// Parts routed and not yet sent per SIM.
    pub unsent: HashMap<SimKey, u32>,
    /// The daily cap of a SIM without its own (`daily_cap` of `PATCH /v1/sims`): the
    /// account's SMS Gateway setting `messages.limit_period = PerDay` with its `limit_value`.
    pub default_daily_cap: Option<u32>,
    /// The account's limit over a window shorter than a day (SMS Gateway settings
    /// `PerMinute`, `Per30Minutes`, `PerHour`), applied to every SIM.
    pub window_limit: Option<crate::domain::smsgate::WindowLimit>,
    /// Parts sent per SIM in the current window of `window_limit` (empty without one).
    pub window_sent: HashMap<SimKey, u32>,
}

impl RoutingInput {
    /// The settings of SIM `key`, with the account's default daily cap where it has none.
    pub fn sim_settings(&self, key: &SimKey) -> SimSettings {
        let mut s = self.settings.get(key).cloned().unwrap_or_default();
        if s.daily_cap.is_none() {
            s.daily_cap = self.default_daily_cap;
        }
        s
    }

    /// SIM `key`'s window limit and the parts that count against it now: sent in the
    /// window, plus routed and not yet sent (they leave in this window or a later one).
    pub fn window(&self, key: &SimKey) -> Option<(u32, u32)> {
        let w = self.window_limit?;
        let sent = self.window_sent.get(key).copied().unwrap_or(0);
        let unsent = self.unsent.get(key).copied().unwrap_or(0);
        Some((w.limit, sent.saturating_add(unsent)))
    }
}

// ---- phone removal ----

/// What removing a phone did to its recipients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// Never accepted by the phone: back to the router.
    pub rerouted: u32,
    /// Never accepted, pinned to this phone: `failed`.
    pub failed: u32,
    /// Never accepted, a cancel was on its way: `cancelled`.
    pub cancelled: u32,
    /// Accepted by the phone: `unknown`.
    pub unknown: u32,
}

/// A username/password user of the SMS Gateway for Android compatible API (`/3rdparty/v1`),
/// holding every scope of its account. The password is kept as an argon2 PHC string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatUser {
    pub login: String,
    pub account_id: String,
    pub password_hash: String,
    pub created_at: Millis,
}

/// A JWT issued by `/3rdparty/v1/auth/token` (the token itself is not stored, only its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// The JWT's `jti`.
    pub jti: String,
    pub account_id: String,
    /// `access` or `refresh`.
    pub kind: String,
    /// The scopes, comma separated, as the request named them.
    pub scopes: String,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
    pub created_at: Millis,
}

/// The message list of the SMS Gateway for Android compatible API: offsets, a time range, a
/// set of states and a phone.
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// Created at or after.
    pub from: Option<Millis>,
    /// Created before.
    pub to: Option<Millis>,
    /// Any of these states (all when empty).
    pub states: Vec<&'static str>,
    /// Pinned to, or with a recipient routed to, this phone.
    pub phone: Option<String>,
    pub offset: u32,
    pub limit: u32,
    pub newest_first: bool,
}

/// The inbox list of the SMS Gateway for Android compatible API.
#[derive(Debug, Clone, Default)]
pub struct InboxQuery {
    /// Received at or after.
    pub from: Option<Millis>,
    /// Received before.
    pub to: Option<Millis>,
    pub phone: Option<String>,
    /// Only data SMS (`Some(true)`) or only text SMS (`Some(false)`).
    pub data: Option<bool>,
    pub offset: u32,
    pub limit: u32,
}

/// How `POST /inbox/refresh` delivers the stored SMS again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// One `sms:received` (or `sms:data-received`) per SMS.
    Individual,
    /// One `sms:batch:received` (and `sms:batch:data-received`) with every SMS.
    Batch,
}

/// One change of the account's message history, for the compatible API's `/logs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHistoryRow {
    /// Unique and stable: from the message's mseq, the recipient and the change's number.
    pub seq: i64,
    pub message_id: String,
    pub change: HistoryRow,
}

/// A number on an account's suppression list: nothing is sent to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    /// The row's store cursor (list order: oldest first).
    pub cursor: i64,
    pub number: String,
    /// The normalised keyword of the SMS that added it, or `manual` (the API).
    pub keyword: String,
    /// The phone and SIM the keyword came in on (none for a manual addition).
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub created_at: Millis,
}
