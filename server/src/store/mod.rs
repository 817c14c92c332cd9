//! The relay's durable state behind one trait.
//!
//! [`Store`] is synchronous and knows nothing of HTTP or sockets; [`sqlite::SqliteStore`] is
//! the one implementation today (PostgreSQL could implement the same trait later). Async code
//! reaches it through [`Db`], which runs calls on tokio's blocking pool, and through
//! [`committer`], which batches message creations from many concurrent requests into one
//! transaction (group commit) and answers each request only after that commit.

pub mod committer;
pub mod postgres;
pub mod schema;
pub mod sqlite;
pub mod sqlite_keys;
mod sqlite_messages;
pub use sqlite_messages::PHONE_SILENCE_MS;
#[cfg(test)]
mod scaling_tests;
mod sqlite_phones;
pub mod sqlite_pools;
pub mod sqlite_removal;
mod sqlite_routing;
mod sqlite_webhooks;
pub use sqlite_webhooks::ATTEMPTS_KEPT;
pub mod tx;
pub use sqlite_keys::{AccountRow, KeyAuth, KeyRow, NewKey, Revoked};
pub use sqlite_pools::{Pool, PoolOutcome, RoutingInput, SimSettings};

use std::collections::HashMap;
use std::sync::Arc;

use simrelay_protocol::{Event, PhoneStatus};

use crate::pool_router::SimKey;
use crate::sim_health::Outcome;

/// Unix time in milliseconds.
pub type Millis = i64;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    #[error("the disk is full")]
    Full,
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("blocking task failed")]
    Join,
    #[error("batch commit failed: {0}")]
    Batch(String),
    /// A PostgreSQL error, named by its SQLSTATE (never the server's message, which may quote
    /// values).
    #[error("postgres: {0}")]
    Postgres(String),
}

impl StoreError {
    pub(crate) fn from_sqlite(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Self::Full,
            _ => Self::Sqlite(e),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::from_sqlite(e)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

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
    pub created_at: Millis,
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
}

/// A message as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    pub cursor: i64,
    pub id: String,
    pub state: String,
    pub priority: i32,
    pub valid_until: Option<Millis>,
    pub schedule_at: Option<Millis>,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub delivery_report: bool,
    pub recipients: Vec<RecipientView>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One recipient as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientView {
    pub idx: u32,
    pub to: String,
    pub state: String,
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
    pub state: Option<String>,
    pub since: Option<Millis>,
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
    /// The phone was marked offline before (so `phone.online` was queued).
    pub came_online: bool,
}

/// What applying a batch from a phone did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Highest phone event seq stored: the cumulative ack to send.
    pub event_seq: u64,
    /// Highest `cancel` frame seq queued by this batch (sent before the ack).
    pub cancel_upto: Option<u64>,
    /// New incoming SMS were stored.
    pub incoming: bool,
    /// Recipients changed state.
    pub changed: bool,
    /// A recipient left its phone's queue (sent or final): the router may have room.
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

/// The relay's durable state.
pub trait Store: Send + Sync + 'static {
    /// The account a hashed API key that is not revoked belongs to.
    fn account_for_key(&self, key_hash: &str) -> Result<Option<String>>;
    /// Makes sure the hashed key exists with the scopes of a whole account, creating its
    /// account; returns the account id.
    fn ensure_api_key(&self, key_hash: &str, now: Millis) -> Result<String> {
        self.ensure_key(key_hash, None, "api key", sqlite_keys::ACCOUNT_SCOPES, now)
    }
    /// Makes sure the hashed key exists (a revoked one stays revoked), in `account` (created
    /// if needed) or a new account; returns the key's account.
    fn ensure_key(
        &self,
        key_hash: &str,
        account: Option<&str>,
        name: &str,
        scopes: &str,
        now: Millis,
    ) -> Result<String>;
    /// The key with this hash, revoked or not (read on every authenticated request).
    fn key_by_hash(&self, key_hash: &str) -> Result<Option<sqlite_keys::KeyAuth>>;
    /// Records a use of the key unless one was recorded in the last `min_gap` ms.
    fn touch_key(&self, id: &str, now: Millis, min_gap: Millis) -> Result<bool>;
    fn create_key(&self, key: &sqlite_keys::NewKey) -> Result<()>;
    /// Keys of the account (every account when `None`).
    fn list_keys(&self, account: Option<&str>) -> Result<Vec<sqlite_keys::KeyRow>>;
    fn get_key(&self, account: Option<&str>, id: &str) -> Result<Option<sqlite_keys::KeyRow>>;
    /// Revokes a key of the account (of any account when `None`).
    fn revoke_key(
        &self,
        account: Option<&str>,
        id: &str,
        now: Millis,
    ) -> Result<sqlite_keys::Revoked>;
    /// Whether an admin key that is not revoked exists.
    fn has_admin_key(&self) -> Result<bool>;
    /// Creates an account and, when given, its first key (with `account_id` filled in) in one
    /// transaction; returns the account id.
    fn create_account(
        &self,
        name: Option<&str>,
        first_key: Option<&sqlite_keys::NewKey>,
        now: Millis,
    ) -> Result<String>;
    fn list_accounts(&self) -> Result<Vec<sqlite_keys::AccountRow>>;

    /// Creates a batch of messages in one transaction (group commit).
    fn create_messages(&self, batch: &[NewMessage]) -> Result<Vec<CreateOutcome>>;
    /// Creates messages and applies phone batches in one transaction (group commit). A phone
    /// batch that fails is rolled back alone and answered with its error text.
    fn write_batch(&self, creates: &[NewMessage], applies: &[PhoneBatch]) -> Result<BatchOutcome>;
    fn get_message(&self, account: &str, id: &str) -> Result<Option<MessageView>>;
    fn list_messages(&self, account: &str, filter: &MessageFilter) -> Result<Vec<MessageView>>;
    fn cancel_message(&self, account: &str, id: &str, now: Millis) -> Result<CancelOutcome>;

    fn list_inbox(&self, account: &str, filter: &InboxFilter) -> Result<Vec<InboxItem>>;

    fn list_phones(&self, account: &str) -> Result<Vec<PhoneRow>>;
    fn create_pairing_code(
        &self,
        account: &str,
        code_hash: &str,
        now: Millis,
        expires: Millis,
    ) -> Result<()>;
    /// Consumes a pairing code and creates a phone; `None` when the code is unknown, used or
    /// expired.
    fn pair_phone(
        &self,
        code_hash: &str,
        phone_id: &str,
        token_hash: &str,
        name: Option<&str>,
        now: Millis,
    ) -> Result<Option<String>>;
    fn phone_by_token(&self, token_hash: &str) -> Result<Option<PhoneAuth>>;
    /// Removes a phone of the account: its token stops working and its recipients end as
    /// `sqlite_removal` describes. `None` if the account has no such phone.
    fn remove_phone(
        &self,
        account: &str,
        phone: &str,
        now: Millis,
    ) -> Result<Option<sqlite_removal::Removal>>;
    /// Marks the phone online with this status; queues `phone.online` if it was offline.
    fn phone_connected(&self, phone: &str, status: &PhoneStatus, now: Millis) -> Result<Connected>;
    fn phone_status(&self, phone: &str, status: &PhoneStatus, now: Millis) -> Result<()>;
    /// Marks the phone offline, queues `phone.offline` and hands its unaccepted recipients back
    /// to the router. Returns whether it was online.
    fn phone_offline(&self, phone: &str, now: Millis) -> Result<bool>;
    /// Phones marked online (after a restart they get a grace period to come back).
    fn online_phones(&self) -> Result<Vec<String>>;
    /// Stored relay frames of a phone with seq > `after`, oldest first.
    fn frames_after(&self, phone: &str, after: u64, limit: u32) -> Result<Vec<(u64, String)>>;
    /// Highest seq of a stored `cancel` frame for the phone after `after`.
    fn last_cancel_after(&self, phone: &str, after: u64) -> Result<Option<u64>>;
    /// Applies the phone's ack and events in one transaction.
    fn apply_from_phone(
        &self,
        phone: &str,
        acked: Option<u64>,
        events: &[(u64, Event)],
        now: Millis,
    ) -> Result<Applied>;

    /// Unrouted recipients of an account that one of the `online` phones could take (not
    /// pinned to another phone), highest priority first.
    fn unrouted(&self, account: &str, online: &[String], limit: u32) -> Result<Vec<Unrouted>>;
    /// Recipients routed to the phone and not yet handed to its radio.
    fn outstanding(&self, phone: &str) -> Result<u32>;
    /// Stores the routing decisions as `send` frames; returns the phones that got frames.
    /// Recipients no longer unrouted (cancelled meanwhile) are skipped.
    fn commit_routes(&self, routes: &[Assignment], now: Millis) -> Result<Vec<String>>;
    /// Expires unrouted recipients past their `valid_until` (or, without one, older than
    /// `default_validity` ms), and ends `unknown` the routed ones whose phone stayed silent
    /// past every deadline of its own (`sqlite_messages::PHONE_SILENCE_MS`).
    fn expire_unrouted(&self, now: Millis, default_validity: Millis) -> Result<u32>;

    fn create_webhook(&self, account: &str, hook: &Webhook) -> Result<()>;
    fn list_webhooks(&self, account: &str) -> Result<Vec<Webhook>>;
    fn delete_webhook(&self, account: &str, id: &str) -> Result<bool>;
    fn due_deliveries(&self, now: Millis, limit: u32) -> Result<Vec<Delivery>>;
    /// Records one delivery attempt: delivered, retry at `retry_at`, or dead.
    fn delivery_result(&self, id: i64, outcome: DeliveryOutcome, now: Millis) -> Result<()>;
    /// Earliest `next_at` of a pending delivery.
    fn next_delivery_at(&self) -> Result<Option<Millis>>;
    /// Forgets delivered (and dropped) webhook deliveries created before `before`.
    fn prune_deliveries(&self, before: Millis) -> Result<usize>;
    /// Webhooks with pending deliveries (due or not).
    fn pending_endpoints(&self) -> Result<Vec<String>>;
    /// Takes up to `limit` due deliveries of one webhook, oldest first, and leases them: their
    /// `next_at` becomes `lease_until`, so that they are not due again while in flight (and
    /// are made again after a crash once the lease ends).
    fn claim_deliveries(
        &self,
        webhook: &str,
        now: Millis,
        limit: u32,
        lease_until: Millis,
    ) -> Result<Vec<Delivery>>;
    /// Earliest `next_at` of a pending delivery of one webhook.
    fn next_delivery_of(&self, webhook: &str) -> Result<Option<Millis>>;
    /// Records one attempt of delivery `id` in the webhook's log and applies its outcome.
    fn record_attempt(&self, id: i64, outcome: DeliveryOutcome, log: &AttemptLog) -> Result<()>;
    /// Adds an attempt that belongs to no queued delivery (a test ping) to the log.
    fn log_attempt(&self, log: &AttemptLog) -> Result<()>;
    /// The newest attempts of an account's webhook, newest first; `None` for a webhook of
    /// another account.
    fn list_attempts(
        &self,
        account: &str,
        webhook: &str,
        limit: u32,
    ) -> Result<Option<Vec<AttemptView>>>;
    /// Queues a dead delivery again (attempts restart from 0).
    fn redeliver(
        &self,
        account: &str,
        webhook: &str,
        event_id: &str,
        now: Millis,
    ) -> Result<Redeliver>;

    fn counts(&self) -> Result<Counts>;

    fn create_pool(&self, account: &str, pool: &Pool) -> Result<PoolOutcome>;
    fn list_pools(&self, account: &str) -> Result<Vec<Pool>>;
    fn delete_pool(&self, account: &str, name: &str) -> Result<bool>;
    /// Stores a SIM's relay-side settings; false when the phone is not the account's.
    fn set_sim_settings(&self, account: &str, key: &SimKey, s: &SimSettings) -> Result<bool>;
    /// Pools, prefix rules, SIM settings, usage today and unsent parts of an account.
    fn routing_input(&self, account: &str, now: Millis) -> Result<RoutingInput>;
    /// Parts sent per SIM by recipients that changed since `since`.
    fn sent_since(&self, account: &str, since: Millis) -> Result<HashMap<SimKey, u32>>;
    /// Waiting recipients and parts by target pool.
    fn unrouted_by_pool(&self, account: &str) -> Result<HashMap<Option<String>, (u32, u32)>>;
    /// Queues a webhook event for the account of `phone` (SIM health changes).
    fn phone_event(
        &self,
        phone: &str,
        event: &str,
        data: serde_json::Value,
        now: Millis,
    ) -> Result<usize>;
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
    pub delivery_state: Option<String>,
}

/// What [`Store::redeliver`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeliver {
    /// No such webhook of the account, or no such event of the webhook.
    NotFound,
    /// The delivery is not dead (its state).
    NotDead(String),
    Queued,
}

/// Outcome of one webhook attempt.
#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    Delivered,
    Retry { at: Millis, error: String },
    Dead { error: String },
}

/// Async access to a [`Store`] on the blocking pool.
#[derive(Clone)]
pub struct Db {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Runs `f` against the store on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|_| StoreError::Join)?
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> Millis {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(d.as_millis()).expect("milliseconds fit in i64 until the year 292 million")
}
