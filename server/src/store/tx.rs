//! What a storage backend must do: transactions ([`Backend`]) and row-level reads and writes
//! inside one ([`Tx`]).
//!
//! A `Tx` method is one statement or a few, and decides nothing: which recipients a deadline
//! ends, what an update from a phone does, which webhooks it queues are the domain's
//! (`crate::domain`), applied by `store::ops`. Methods over slices are the hot paths (a group
//! commit creates hundreds of messages, a routing pass commits hundreds of routes): a backend
//! may run them as one statement over arrays; SQLite runs a cached statement per row.
//!
//! Every method of a read transaction ([`Backend::read`]) only reads; a write transaction
//! ([`Backend::write`]) is atomic and durable once `write` returns `Ok`.
//!
//! [`Tx`] is the sum of one sub-trait per area ([`KeyRows`], [`MessageRows`], [`HistoryRows`],
//! [`CompatRows`], [`PhoneRows`], [`RoutingRows`], [`PoolRows`], [`WebhookRows`],
//! [`SuppressionRows`], [`LimitRows`], [`OptOutRows`]), so that a backend implements each in its own
//! file; callers bring them into scope with `use crate::store::tx::*`.

use std::collections::HashMap;

use simrelay_protocol::{IncomingSms, PhoneStatus};

use crate::domain::auto_reply::OptOutSettings;
use crate::domain::{DeliveryState, MessageStatus, Recipient, RecipientStatus};
use crate::pool_router::SimKey;
use crate::store::{
    AccountHistoryRow, AccountRow, Assignment, AttemptLog, AttemptView, CompatUser, Counts,
    Delivery, DeliveryOutcome, HistoryRow, InboxFilter, InboxItem, InboxQuery, KeyAuth, KeyRow,
    MessageFilter, MessageQuery, MessageView, Millis, NewKey, NewMessage, PhoneAuth, PhoneRow,
    Pool, Result, SimSettings, Suppression, SuppressionOverride, TokenRow, Webhook,
};

/// A storage backend: runs closures in transactions.
///
/// `f` may be called more than once (a backend may retry a transaction that lost a
/// serialisation race); it must not have effects outside the transaction.
pub trait Backend: Send + Sync + 'static {
    /// Runs `f` in one write transaction and commits it (rolls back if `f` fails).
    fn write(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()>;
    /// Runs `f` on a consistent read-only view.
    fn read(&self, f: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()>;
    /// The key cache of a backend that tells of key changes (`store::key_cache`); none by
    /// default.
    fn key_cache(&self) -> Option<std::sync::Arc<crate::store::key_cache::KeyCache>> {
        None
    }
}

/// A message to insert, with what the relay computed at creation.
#[derive(Debug, Clone, Copy)]
pub struct MessageInsert<'a> {
    pub message: &'a NewMessage,
    /// SMS parts of the text (stored once; routing reads it on every pass).
    pub parts: u32,
    /// The message's state, and every recipient's.
    pub state: MessageStatus,
    pub recipient_state: RecipientStatus,
}

/// The phone-side counters and presence of a phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneState {
    pub account_id: String,
    pub online: bool,
    /// Highest phone event seq stored.
    pub event_seq: u64,
    /// Highest relay frame seq the phone acknowledged.
    pub acked_seq: u64,
    /// Highest relay frame seq allocated.
    pub next_seq: u64,
    pub removed: bool,
}

/// A phone's links across a cluster of nodes (`crate::cluster`), as the offline decision
/// reads them. A single relay keeps no link rows: the default says "none".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkPresence {
    /// Links up on live nodes.
    pub live: u32,
    /// How long ago the last of its other links went (down, or its node silent); `None`
    /// without any link row.
    pub gone_for_ms: Option<i64>,
}

/// A recipient held by a phone (routed to it and still in its queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRow {
    pub mseq: i64,
    pub idx: u32,
    pub recipient: Recipient,
}

/// A recipient a deadline query found, with the times the deadline is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineRow {
    pub mseq: i64,
    pub idx: u32,
    pub account_id: String,
    pub status: RecipientStatus,
    pub valid_until: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A recipient's new state (and error, when given; the stored error stays otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite<'a> {
    pub mseq: i64,
    pub idx: u32,
    pub state: RecipientStatus,
    pub error: Option<&'a str>,
}

/// What a phone reported about a recipient it owns, to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportWrite<'a> {
    pub mseq: i64,
    pub idx: u32,
    pub state: RecipientStatus,
    pub parts: u32,
    pub parts_sent: u32,
    pub parts_delivered: u32,
    /// Kept as stored when `None` (also `code` and `sim`).
    pub error: Option<&'a str>,
    pub code: Option<i32>,
    pub sim: Option<i32>,
}

/// What a recipient webhook tells about the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientEventRow {
    pub message_id: String,
    pub to: String,
    pub state: RecipientStatus,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub parts: u32,
    pub error: Option<String>,
    pub code: Option<i32>,
}

/// What a `send` frame carries about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameMessage {
    pub mseq: i64,
    pub id: String,
    pub text: String,
    pub priority: i32,
    pub valid_until: Option<Millis>,
    pub schedule_at: Option<Millis>,
    pub sim: Option<i32>,
    pub delivery_report: bool,
    pub parts: u32,
    pub encrypted: bool,
    pub data_port: Option<u16>,
}

/// A recipient waiting for a SIM, as the store keeps it (the router's input is built from it).
/// Recipients per hour, SIM and state ([`RoutingRows::outcomes_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRow {
    /// Start of the hour (UTC) of the recipients' last change.
    pub hour: Millis,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub state: RecipientStatus,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnroutedRow {
    pub mseq: i64,
    pub idx: u32,
    pub priority: i32,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub pool: Option<String>,
    pub to: String,
    pub parts: u32,
    pub tried: Vec<SimKey>,
}

/// A recipient of a message that is on a SIM already or has tried some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundRow {
    pub mseq: i64,
    pub phone: Option<String>,
    pub sim: Option<i32>,
    pub tried: Vec<SimKey>,
}

/// A relay frame to append to a phone's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameInsert<'a> {
    pub phone: &'a str,
    pub seq: u64,
    /// The encoded frame.
    pub body: &'a str,
}

/// Parts routed to a SIM on its local day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageAdd<'a> {
    pub key: &'a SimKey,
    pub day: i64,
    pub parts: u32,
}

/// One webhook delivery to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxInsert<'a> {
    pub event_id: &'a str,
    pub webhook_id: &'a str,
    pub event: &'a str,
    /// The JSON body as sent.
    pub body: &'a str,
    /// Due at and created at.
    pub at: Millis,
}

/// A webhook registration as the fan-out reads it: (id, events it wants).
pub type Subscriber = (String, Vec<String>);

/// Accounts and API keys.
pub trait KeyRows {
    /// The key with this hash, revoked or not (read on every authenticated request).
    fn key_by_hash(&mut self, key_hash: &str) -> Result<Option<KeyAuth>>;
    /// Keys of the account (every account when `None`), oldest first.
    fn list_keys(&mut self, account: Option<&str>) -> Result<Vec<KeyRow>>;
    fn get_key(&mut self, account: Option<&str>, id: &str) -> Result<Option<KeyRow>>;
    /// Whether a key with the `admin` scope that is not revoked exists.
    fn has_admin_key(&mut self) -> Result<bool>;
    /// Every account, oldest first, with its count of keys not revoked.
    fn list_accounts(&mut self) -> Result<Vec<AccountRow>>;
    fn insert_account(&mut self, id: &str, name: Option<&str>, now: Millis) -> Result<()>;
    /// Inserts the account unless it exists.
    fn ensure_account(&mut self, id: &str, now: Millis) -> Result<()>;
    fn insert_key(&mut self, key: &NewKey) -> Result<()>;
    /// Sets `revoked_at` of a key not revoked (within `account` when given).
    fn revoke_key(&mut self, account: Option<&str>, id: &str, now: Millis) -> Result<()>;
    /// Sets `last_used_at` unless it is within `min_gap` of `now`; returns whether it did.
    fn touch_key(&mut self, id: &str, now: Millis, min_gap: Millis) -> Result<bool>;
}

/// Messages and their recipients.
pub trait MessageRows {
    /// (mseq, body hash) of each (account, id), in order; `None` for an id not stored.
    fn find_messages(&mut self, keys: &[(&str, &str)]) -> Result<Vec<Option<(i64, String)>>>;
    /// Inserts messages and their recipients; returns each message's mseq, in order.
    fn insert_messages(&mut self, rows: &[MessageInsert<'_>], now: Millis) -> Result<Vec<i64>>;
    fn message_by_mseq(&mut self, mseq: i64) -> Result<Option<MessageView>>;
    fn message_by_id(&mut self, account: &str, id: &str) -> Result<Option<MessageView>>;
    fn list_messages(&mut self, account: &str, filter: &MessageFilter) -> Result<Vec<MessageView>>;
    /// The states of a message's recipients.
    fn recipient_states(&mut self, mseq: i64) -> Result<Vec<RecipientStatus>>;
    /// Sets the message's state (and `updated_at`) if it differs.
    fn set_message_state(&mut self, mseq: i64, state: MessageStatus, now: Millis) -> Result<()>;
    /// The recipient `idx` of message `message_id` of the account, with what the rules need.
    fn recipient_for_update(
        &mut self,
        account: &str,
        message_id: &str,
        idx: u32,
    ) -> Result<Option<(i64, Recipient)>>;
    /// Sets states (and errors, when given) of recipients.
    fn set_recipient_states(&mut self, writes: &[StateWrite<'_>], now: Millis) -> Result<()>;
    /// Stores a phone's report about a recipient it owns (marks it accepted).
    fn record_report(&mut self, w: &ReportWrite<'_>, now: Millis) -> Result<()>;
    /// Stores the recipient's `tried` list.
    fn set_tried(&mut self, mseq: i64, idx: u32, tried: &[SimKey]) -> Result<()>;
    /// Hands a recipient back to the router after failover: no phone, no SIM, `state`, not
    /// accepted, with the error and code of the failure.
    fn unroute_recipient(
        &mut self,
        mseq: i64,
        idx: u32,
        state: RecipientStatus,
        error: Option<&str>,
        code: Option<i32>,
        now: Millis,
    ) -> Result<()>;
    /// Takes the recipients off their phone (`phone_id` cleared, nothing else).
    fn release_recipients(&mut self, keys: &[(i64, u32)], now: Millis) -> Result<()>;
    /// Routes recipients that still wait for a SIM (no phone, `pending`) to a phone (and SIM,
    /// when given); returns the number of each recipient routed, `None` for one that no
    /// longer waited. A routed recipient starts afresh: the error and code an earlier SIM
    /// left on it are cleared (its history keeps them).
    fn route_recipients(
        &mut self,
        routes: &[Assignment],
        now: Millis,
    ) -> Result<Vec<Option<String>>>;
    /// The fields of a recipient's webhook.
    fn recipient_event(&mut self, mseq: i64, idx: u32) -> Result<RecipientEventRow>;

    // ---- deadlines (candidate queries; the domain decides on each row) ----
    /// Unrouted `pending` recipients whose `coalesce(valid_until, created_at +
    /// default_validity)` is before `now`, at most `limit`.
    fn unrouted_past_validity(
        &mut self,
        now: Millis,
        default_validity: Millis,
        limit: u32,
    ) -> Result<Vec<DeadlineRow>>;
    /// Routed recipients in [`RecipientStatus::AWAITING_PHONE`] unchanged for `silence` ms
    /// after `max(coalesce(valid_until, created_at + default_validity), updated_at)`.
    fn routed_silent(
        &mut self,
        now: Millis,
        default_validity: Millis,
        silence: Millis,
        limit: u32,
    ) -> Result<Vec<DeadlineRow>>;

    // ---- inbox ----
    /// Stores an incoming SMS unless (phone, id) is stored; returns whether it was new.
    fn insert_incoming(
        &mut self,
        account: &str,
        phone: &str,
        sms: &IncomingSms,
        now: Millis,
    ) -> Result<bool>;
    fn list_inbox(&mut self, account: &str, filter: &InboxFilter) -> Result<Vec<InboxItem>>;
}

/// The per-recipient history of changes (written by the database's own triggers on
/// `recipients`, so no write path can forget it; read here).
pub trait HistoryRows {
    /// Every recorded change of the message's recipients, by recipient, oldest first.
    fn recipient_history(&mut self, mseq: i64) -> Result<Vec<HistoryRow>>;
}

/// What the SMS Gateway for Android compatible API keeps: its users, each account's settings,
/// the ids of the tokens it issued, and the relay's own secrets (the JWT signing key).
pub trait CompatRows {
    /// Stores a user; `false` when the login is taken (by any account).
    fn insert_compat_user(&mut self, user: &CompatUser) -> Result<bool>;
    fn compat_user(&mut self, login: &str) -> Result<Option<CompatUser>>;
    fn list_compat_users(&mut self, account: &str) -> Result<Vec<CompatUser>>;
    fn delete_compat_user(&mut self, account: &str, login: &str) -> Result<bool>;
    /// The account's settings document (JSON), if it was ever written.
    fn compat_settings(&mut self, account: &str) -> Result<Option<String>>;
    fn put_compat_settings(&mut self, account: &str, body: &str, now: Millis) -> Result<()>;
    fn insert_token(&mut self, token: &TokenRow) -> Result<()>;
    fn token(&mut self, jti: &str) -> Result<Option<TokenRow>>;
    /// Revokes the account's token `jti` (and the tokens refreshed from it are separate
    /// rows); `false` when the account has no such token.
    fn revoke_token(&mut self, account: &str, jti: &str, now: Millis) -> Result<bool>;
    /// The relay secret `name`, stored as `candidate` if none was: every relay on the
    /// database reads the same one.
    fn relay_secret(&mut self, name: &str, candidate: &str) -> Result<String>;
    /// The account owning webhook `id`, if one does.
    fn webhook_account(&mut self, id: &str) -> Result<Option<String>>;
    /// Changes the URL, events and secret of the account's webhook `id` (its pending
    /// deliveries stay and go to the new URL).
    fn update_webhook(&mut self, account: &str, hook: &Webhook) -> Result<()>;
    /// Sets the signing secret of the account's SMS Gateway webhooks (event names with a
    /// `:`, signed with the account's `webhooks.signing_key`).
    fn set_smsgate_webhook_secret(&mut self, account: &str, secret: &str) -> Result<()>;
    /// A page of the account's messages (with recipients) and how many match in all.
    fn query_messages(
        &mut self,
        account: &str,
        q: &MessageQuery,
    ) -> Result<(Vec<MessageView>, u64)>;
    /// The account's history changes at `from..=to`, newest first, at most `limit`.
    fn account_history(
        &mut self,
        account: &str,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<AccountHistoryRow>>;
    /// A page of the account's incoming SMS, newest first, and how many match in all.
    fn query_inbox(&mut self, account: &str, q: &InboxQuery) -> Result<(Vec<InboxItem>, u64)>;
}

/// Phones, pairing codes and each phone's frame log.
pub trait PhoneRows {
    fn insert_pairing_code(
        &mut self,
        account: &str,
        code_hash: &str,
        now: Millis,
        expires: Millis,
    ) -> Result<()>;
    /// The account of a pairing code not used and not expired at `now`.
    fn pairing_code_account(&mut self, code_hash: &str, now: Millis) -> Result<Option<String>>;
    fn use_pairing_code(&mut self, code_hash: &str, now: Millis) -> Result<()>;
    fn insert_phone(
        &mut self,
        id: &str,
        account: &str,
        name: Option<&str>,
        token_hash: &str,
        now: Millis,
    ) -> Result<()>;
    /// A phone that is not removed, by its token hash.
    fn phone_by_token(&mut self, token_hash: &str) -> Result<Option<PhoneAuth>>;
    /// The account's phones that are not removed, oldest first, with `outstanding` counted.
    fn list_phones(&mut self, account: &str) -> Result<Vec<PhoneRow>>;
    /// Whether `phone` is a phone of the account that is not removed.
    fn phone_of_account(&mut self, account: &str, phone: &str) -> Result<bool>;
    /// Ids of the account's phones that are not removed.
    fn account_phones(&mut self, account: &str) -> Result<Vec<String>>;
    fn phone_state(&mut self, phone: &str) -> Result<Option<PhoneState>>;
    /// [`PhoneRows::phone_state`], locking the phone's row until the transaction ends (the
    /// nodes of a cluster apply a phone's events, presence and acks one at a time).
    fn phone_state_locked(&mut self, phone: &str) -> Result<Option<PhoneState>> {
        self.phone_state(phone)
    }
    /// Records link `link` of node `node` to the phone as up (a cluster's presence; a single
    /// relay keeps no link rows).
    fn link_up(&mut self, _phone: &str, _node: &str, _link: u64) -> Result<()> {
        Ok(())
    }
    /// Records that link `link` of node `node` to the phone went down.
    fn link_down(&mut self, _phone: &str, _node: &str, _link: u64) -> Result<()> {
        Ok(())
    }
    /// The phone's links on every node; a node silent for `stale_ms` has none up.
    fn link_presence(&mut self, _phone: &str, _stale_ms: i64) -> Result<LinkPresence> {
        Ok(LinkPresence::default())
    }
    /// Stores the phone's status and `last_seen`, and its presence when `online` is given.
    fn set_phone_status(
        &mut self,
        phone: &str,
        status: &PhoneStatus,
        online: Option<bool>,
        now: Millis,
    ) -> Result<()>;
    fn set_phone_online(&mut self, phone: &str, online: bool) -> Result<()>;
    /// Records the phone's cumulative ack (`acked_seq` never decreases) and drops the frames
    /// it covers.
    fn ack_frames(&mut self, phone: &str, upto: u64) -> Result<()>;
    /// Stores the highest phone event seq applied, and `last_seen`.
    fn set_event_seq(&mut self, phone: &str, seq: u64, now: Millis) -> Result<()>;
    /// Phones marked online.
    fn online_phones(&mut self) -> Result<Vec<String>>;
    /// Recipients routed to the phone in [`RecipientStatus::IN_PHONE_QUEUE`].
    fn outstanding(&mut self, phone: &str) -> Result<u32>;
    /// The recipients routed to the phone in [`RecipientStatus::IN_PHONE_QUEUE`].
    fn held_by(&mut self, phone: &str) -> Result<Vec<HeldRow>>;
    /// Marks the phone removed (its token stops working, offline), drops its frames and its
    /// pool memberships and prefix rules. The row stays.
    fn remove_phone_row(&mut self, account: &str, phone: &str, now: Millis) -> Result<()>;

    // ---- frames ----
    /// Allocates `n` consecutive frame seqs for each phone; returns the first of each block.
    fn reserve_frame_seqs(&mut self, wants: &[(&str, u32)]) -> Result<Vec<u64>>;
    fn insert_frames(&mut self, frames: &[FrameInsert<'_>], now: Millis) -> Result<()>;
    /// Stored frames of a phone with seq > `after`, oldest first.
    fn frames_after(&mut self, phone: &str, after: u64, limit: u32) -> Result<Vec<(u64, String)>>;
    /// Highest seq of a stored `cancel` frame for the phone after `after`.
    fn last_cancel_after(&mut self, phone: &str, after: u64) -> Result<Option<u64>>;
}

/// What the router reads and writes.
pub trait RoutingRows {
    /// Unrouted recipients of the account not pinned to a phone outside `online`, highest
    /// priority first, then oldest (newest with `newest_first`).
    fn unrouted(
        &mut self,
        account: &str,
        online: &[String],
        limit: u32,
        newest_first: bool,
    ) -> Result<Vec<UnroutedRow>>;
    /// Recipients of these messages routed to a SIM or with something in `tried`.
    fn bound_rows(&mut self, mseqs: &[i64]) -> Result<Vec<BoundRow>>;
    /// What the `send` frames of these messages carry, in order.
    fn frame_messages(&mut self, mseqs: &[i64]) -> Result<Vec<FrameMessage>>;
    /// The UTC offset (minutes) of each SIM's settings, `None` without settings.
    fn sim_offsets(&mut self, keys: &[SimKey]) -> Result<Vec<Option<i16>>>;
    fn add_usage(&mut self, adds: &[UsageAdd<'_>]) -> Result<()>;
    /// Forgets usage of days before `day`.
    fn prune_usage(&mut self, before_day: i64) -> Result<()>;
    /// Counts `parts` that left the SIM in `minute` and forgets its minutes before
    /// `keep_from` (`keep_from` itself is kept).
    fn count_sent(&mut self, key: &SimKey, minute: i64, parts: u32, keep_from: i64) -> Result<()>;
    /// Parts sent per SIM of the account in minutes after `minute`.
    fn sent_since(&mut self, account: &str, minute: i64) -> Result<HashMap<SimKey, u32>>;
    /// (SIM, parts, parts sent) of the account's recipients routed to a SIM and in
    /// [`RecipientStatus::IN_PHONE_QUEUE`].
    fn unsent_rows(&mut self, account: &str) -> Result<Vec<(SimKey, u32, u32)>>;
    /// (pool, parts) of each of the account's recipients waiting for a SIM.
    fn unrouted_parts(&mut self, account: &str) -> Result<Vec<(Option<String>, u32)>>;
    /// How many of the account's recipients last changed state in each hour since `since`
    /// and now rest in a state that left the relay (`sent`, `delivered`, `failed`,
    /// `expired`, `unknown`), by SIM: the dashboard's charts.
    fn outcomes_since(&mut self, account: &str, since: Millis) -> Result<Vec<OutcomeRow>>;
    /// (SIM, day, parts) of the usage of the account's SIMs.
    fn usage_rows(&mut self, account: &str) -> Result<Vec<(SimKey, i64, u32)>>;
}

/// SIM pools and per-SIM settings.
pub trait PoolRows {
    fn pool_exists(&mut self, account: &str, name: &str) -> Result<bool>;
    /// Inserts a pool with its members and prefix rules.
    fn insert_pool(&mut self, account: &str, pool: &Pool) -> Result<()>;
    /// Deletes a pool with its members and prefix rules; returns whether it existed.
    fn delete_pool(&mut self, account: &str, name: &str) -> Result<bool>;
    /// The account's pools by name, with members and prefix rules.
    fn list_pools(&mut self, account: &str) -> Result<Vec<Pool>>;
    /// Whether the pool holds a SIM of `phone` (SIM `sim`, when given).
    fn pool_has(
        &mut self,
        account: &str,
        pool: &str,
        phone: &str,
        sim: Option<i32>,
    ) -> Result<bool>;
    /// The phones with a SIM in the pool.
    fn pool_phones(&mut self, account: &str, pool: &str) -> Result<Vec<String>>;
    fn upsert_sim_settings(&mut self, key: &SimKey, s: &SimSettings) -> Result<()>;
    /// Settings of every SIM of the account's phones that has some.
    fn sim_settings(&mut self, account: &str) -> Result<HashMap<SimKey, SimSettings>>;
}

/// Webhook registrations, the outbox and the delivery log.
pub trait WebhookRows {
    fn insert_webhook(&mut self, account: &str, hook: &Webhook) -> Result<()>;
    fn list_webhooks(&mut self, account: &str) -> Result<Vec<Webhook>>;
    /// Deletes the account's webhook, drops its pending deliveries and its log; returns
    /// whether it existed.
    fn delete_webhook(&mut self, account: &str, id: &str) -> Result<bool>;
    /// The account's webhooks with the events each wants.
    fn subscribers(&mut self, account: &str) -> Result<Vec<Subscriber>>;
    fn insert_outbox(&mut self, rows: &[OutboxInsert<'_>]) -> Result<()>;
    /// Pending deliveries due at `now`, oldest due first.
    fn due_deliveries(&mut self, now: Millis, limit: u32) -> Result<Vec<Delivery>>;
    /// Webhooks with pending deliveries.
    fn pending_endpoints(&mut self) -> Result<Vec<String>>;
    /// Takes up to `limit` due deliveries of one webhook, oldest due first, for `claimer` (a
    /// sender's random id) until `lease_until`, and sets their `next_at` to `lease_until`.
    /// PostgreSQL records the claim (`claimed_by`, `claim_until`; rows another transaction
    /// holds are skipped), so that several relays never make one delivery at the same time;
    /// SQLite (one relay) keeps only the `next_at` lease.
    fn claim_deliveries(
        &mut self,
        webhook: &str,
        now: Millis,
        limit: u32,
        lease_until: Millis,
        claimer: &str,
    ) -> Result<Vec<Delivery>>;
    fn next_delivery_of(&mut self, webhook: &str) -> Result<Option<Millis>>;
    fn next_delivery_at(&mut self) -> Result<Option<Millis>>;
    /// Stores the outcome of one attempt of delivery `id` and ends its claim; returns whether
    /// it was stored. With a `claimer`, only while the delivery is still pending and claimed
    /// by it (on PostgreSQL: a sender whose lease ran out and whose delivery another relay
    /// claimed since changes nothing); without one, unconditionally.
    fn delivery_result(
        &mut self,
        id: i64,
        claimer: Option<&str>,
        outcome: &DeliveryOutcome,
    ) -> Result<bool>;
    /// Adds an attempt to the webhook's log and forgets those beyond the newest `keep`.
    fn log_attempt(&mut self, log: &AttemptLog, keep: i64) -> Result<()>;
    fn webhook_of_account(&mut self, account: &str, webhook: &str) -> Result<bool>;
    /// The newest attempts of a webhook, newest first.
    fn list_attempts(&mut self, webhook: &str, limit: u32) -> Result<Vec<AttemptView>>;
    fn delivery_state(&mut self, webhook: &str, event_id: &str) -> Result<Option<DeliveryState>>;
    /// Makes a delivery pending again, due at `now`, with its attempts at 0.
    fn requeue_delivery(&mut self, event_id: &str, now: Millis) -> Result<()>;
    /// Forgets delivered and dropped deliveries created before `before`.
    fn prune_deliveries(&mut self, before: Millis) -> Result<usize>;
}

/// Each account's suppression list (opt-out).
pub trait SuppressionRows {
    /// Adds `s.number` (its `cursor` is ignored) unless listed; returns whether it was added.
    fn insert_suppression(&mut self, account: &str, s: &Suppression) -> Result<bool>;
    /// Adds each entry unless its number is listed (or earlier in `entries`); returns how
    /// many were added. One statement per entry unless a backend does better.
    fn insert_suppressions(&mut self, account: &str, entries: &[Suppression]) -> Result<usize> {
        let mut added = 0;
        for e in entries {
            added += usize::from(self.insert_suppression(account, e)?);
        }
        Ok(added)
    }
    /// Removes a number; returns whether it was listed.
    fn delete_suppression(&mut self, account: &str, number: &str) -> Result<bool>;
    /// Which of `numbers` the account lists.
    fn suppressed_among(&mut self, account: &str, numbers: &[&str]) -> Result<Vec<String>>;
    /// The account's recipients to `number` still waiting for a SIM (unrouted, `pending`):
    /// (mseq, idx).
    fn unrouted_to(&mut self, account: &str, number: &str) -> Result<Vec<(i64, u32)>>;
    /// Up to `limit` entries after the cursor `after`, oldest first.
    fn list_suppressions(
        &mut self,
        account: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Suppression>>;
}

/// A prefix the pumping protection watches (`crate::domain::spend::PrefixState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRow {
    pub prefix: String,
    /// `paused`, `blocked` or `released`.
    pub state: String,
    /// New numbers seen in the window when it was paused.
    pub new_numbers: u64,
    pub changed_at: Millis,
}

/// Each account's limits, its part counters, the numbers it sent to and its watched
/// prefixes (`crate::store::ops::spend`).
pub trait LimitRows {
    /// The account's limits (JSON of `crate::domain::spend::Limits`), if set.
    fn account_limits(&mut self, account: &str) -> Result<Option<String>>;
    fn put_account_limits(&mut self, account: &str, body: &str, now: Millis) -> Result<()>;
    /// Parts counted under each counter key, in order (0 for a counter never written).
    fn usage_of(&mut self, account: &str, keys: &[String]) -> Result<Vec<u64>>;
    /// Adds parts to counters, creating them.
    fn add_account_usage(&mut self, account: &str, adds: &[(String, u64)]) -> Result<()>;
    /// Marks a counter's cap reached; returns whether it was not marked yet.
    fn mark_limit_reached(&mut self, account: &str, key: &str, now: Millis) -> Result<bool>;
    /// Forgets counters whose key sorts before `before` (older periods).
    fn prune_account_usage(&mut self, before_day: &str, before_month: &str) -> Result<()>;
    /// Records `(number, prefix)` as sent to at `now` unless known; returns which were new.
    fn record_numbers(
        &mut self,
        account: &str,
        numbers: &[(&str, &str)],
        now: Millis,
    ) -> Result<Vec<bool>>;
    /// Numbers of the prefix first sent to after `since`.
    fn new_numbers_since(&mut self, account: &str, prefix: &str, since: Millis) -> Result<u64>;
    /// Every watched prefix of the account, by prefix.
    fn prefix_rows(&mut self, account: &str) -> Result<Vec<PrefixRow>>;
    /// Inserts or replaces the prefix's row.
    fn put_prefix(&mut self, account: &str, row: &PrefixRow) -> Result<()>;
    /// The account's `held` recipients whose number starts with `+prefix`: (mseq, idx).
    fn held_in_prefix(&mut self, account: &str, prefix: &str) -> Result<Vec<(i64, u32)>>;
    /// `held` recipients past their message's validity: (mseq, idx, account), at most `limit`.
    fn held_past_validity(
        &mut self,
        now: Millis,
        default_validity: Millis,
        limit: u32,
    ) -> Result<Vec<(i64, u32, String)>>;
}

/// Each account's opt-out settings, the auto-replies sent, and messages' overrides of the
/// suppression list (`store::ops::auto_replies`).
pub trait OptOutRows {
    /// The account's settings, if it ever stored any.
    fn opt_out_settings(&mut self, account: &str) -> Result<Option<OptOutSettings>>;
    /// Stores the account's settings (replacing them).
    fn put_opt_out_settings(
        &mut self,
        account: &str,
        s: &OptOutSettings,
        now: Millis,
    ) -> Result<()>;
    /// Records the auto-reply `message_id` for (account, number, kind, day) unless one is
    /// recorded, and forgets the number's records of earlier days. Returns whether it was new.
    fn claim_auto_reply(&mut self, claim: &AutoReplyClaim<'_>) -> Result<bool>;
    /// Records why a message goes to suppressed numbers too, and whether one was listed.
    fn set_suppression_override(
        &mut self,
        mseq: i64,
        kind: SuppressionOverride,
        overrode: bool,
    ) -> Result<()>;
}

/// One auto-reply to record ([`OptOutRows::claim_auto_reply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoReplyClaim<'a> {
    pub account: &'a str,
    pub number: &'a str,
    /// `opt_out`, `opt_in` or `help`.
    pub kind: &'a str,
    /// The UTC day (`crate::domain::auto_reply::utc_day`).
    pub day: i64,
    pub message_id: &'a str,
    pub now: Millis,
}

/// Row-level queries and writes of one transaction, by area (one sub-trait each, so a
/// backend implements each in its own file). Object safe.
pub trait Tx:
    KeyRows
    + MessageRows
    + HistoryRows
    + CompatRows
    + PhoneRows
    + RoutingRows
    + PoolRows
    + WebhookRows
    + SuppressionRows
    + LimitRows
    + OptOutRows
{
    /// Savepoints: `write_batch` rolls back one failing phone batch alone.
    fn savepoint(&mut self) -> Result<()>;
    fn rollback_to_savepoint(&mut self) -> Result<()>;
    fn release_savepoint(&mut self) -> Result<()>;
    /// Counters for `/metrics`.
    fn counts(&mut self) -> Result<Counts>;
    /// Takes the cluster-wide lock of the periodic sweep `name` for the rest of this write
    /// transaction, without waiting; false when another relay holds it (that relay is making
    /// the same changes now: skip this run). A single relay (SQLite) always gets it.
    fn try_sweep_lock(&mut self, _name: &str) -> Result<bool> {
        Ok(true)
    }
    /// Of `phones`, those whose last `system:ping` (by any relay of the cluster) is at least
    /// `every` ms before `now`, or that have none, now recorded as pinged at `now`. A single
    /// relay (SQLite) keeps that in memory (`crate::compat::ping`): all of them.
    fn claim_pings(
        &mut self,
        phones: &[&str],
        _now: Millis,
        _every: Millis,
    ) -> Result<Vec<String>> {
        Ok(phones.iter().map(|p| p.to_string()).collect())
    }
}

/// The id of a history change in the compatible API's logs: unique while a message has fewer
/// than 1,000 recipients (the API's limit) and a recipient fewer than 1,000 changes.
pub fn history_seq(mseq: i64, idx: u32, n: i64) -> i64 {
    mseq.saturating_mul(1_000_000)
        .saturating_add(i64::from(idx) * 1000)
        .saturating_add(n.min(999))
}
