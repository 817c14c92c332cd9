//! Spend and volume limits and SMS-pumping protection in the create transaction (the rules
//! are `crate::domain::spend`), and the operations on paused prefixes.
//!
//! A message is admitted or refused before it is inserted ([`Guard::admit`]): a recipient
//! outside the allow-list or in a blocked prefix refuses the whole request
//! (`DestinationNotAllowed`), and so does a message whose parts would cross a cap
//! (`LimitReached`). The counters are read once per account and batch and kept in memory for
//! the batch's later messages; after the insert ([`Guard::finish`]) the parts of the counted
//! recipients (not suppressed) are added to the counter rows in the same transaction. One
//! writer at a time (SQLite's, PostgreSQL's writers' lock) makes the counters exact under
//! concurrent submits.
//!
//! Pumping: the numbers of an account with pumping protection are recorded as sent to; more
//! than the threshold of new ones in one prefix within the window pause the prefix (once:
//! `account.pumping_suspected`), and the recipients in a paused prefix are `held` (off the
//! router) until a person releases (`pending`) or blocks (`failed`, `limit_reached`) them.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::messages::recompute_state;
use super::webhooks::{enqueue_event, recipient_webhook};
use crate::domain::RecipientStatus;
use crate::domain::spend::{self, Counter, LIMIT_REACHED, Limits, PrefixState};
use crate::domain::webhooks::{Event, LimitData, PumpingData};
use crate::store::tx::{MessageInsert, PrefixRow, StateWrite, Tx};
use crate::store::{CreateOutcome, MessageView, Millis, NewMessage, Result, Store, StoreError};
use crate::time_fmt::fmt_ms;

/// What the create transaction knows of one account.
struct AccountSpend {
    limits: Option<Limits>,
    /// Counter values read from the store, by counter.
    stored: HashMap<Counter, u64>,
    /// Parts admitted earlier in this batch, by counter.
    admitted: BTreeMap<Counter, u64>,
    prefixes: HashMap<String, PrefixRow>,
    /// New numbers per prefix within its window (read at first use, then counted here).
    new_numbers: HashMap<String, u64>,
}

/// The limits of the accounts of one create batch.
#[derive(Default)]
pub(crate) struct Guard {
    accounts: HashMap<String, AccountSpend>,
}

/// The limits set for an account, if any.
pub(crate) fn load_limits(tx: &mut dyn Tx, account: &str) -> Result<Option<Limits>> {
    tx.account_limits(account)?
        .map(|b| serde_json::from_str(&b).map_err(StoreError::from))
        .transpose()
}

impl Guard {
    fn account(&mut self, tx: &mut dyn Tx, account: &str) -> Result<&mut AccountSpend> {
        if !self.accounts.contains_key(account) {
            let limits = load_limits(tx, account)?;
            let prefixes = match &limits {
                Some(_) => tx
                    .prefix_rows(account)?
                    .into_iter()
                    .map(|p| (p.prefix.clone(), p))
                    .collect(),
                None => HashMap::new(),
            };
            self.accounts.insert(
                account.to_string(),
                AccountSpend {
                    limits,
                    stored: HashMap::new(),
                    admitted: BTreeMap::new(),
                    prefixes,
                    new_numbers: HashMap::new(),
                },
            );
        }
        Ok(self.accounts.get_mut(account).expect("inserted above"))
    }

    /// Whether the account's limits let `m` (of `parts` parts) in; the refusal otherwise.
    pub(crate) fn admit(
        &mut self,
        tx: &mut dyn Tx,
        m: &NewMessage,
        parts: u32,
    ) -> Result<Option<CreateOutcome>> {
        let now = m.created_at;
        let a = self.account(tx, &m.account_id)?;
        let Some(limits) = a.limits.clone() else {
            return Ok(None);
        };
        let digits = limits.pumping.as_ref().map(|p| p.prefix_digits);
        for (idx, to) in m.to.iter().enumerate() {
            let blocked = !m.encrypted
                && digits.is_some_and(|d| {
                    a.prefixes
                        .get(spend::prefix(to, d))
                        .is_some_and(|p| p.state == PrefixState::Blocked.as_str())
                });
            if blocked || !spend::allowed(&limits, if m.encrypted { "" } else { to }) {
                return Ok(Some(CreateOutcome::DestinationNotAllowed {
                    idx: u32::try_from(idx).expect("recipient count is bounded by validation"),
                }));
            }
        }
        let capped = limits.daily_parts.is_some()
            || limits.monthly_parts.is_some()
            || !limits.country_daily_parts.is_empty();
        if !capped {
            return Ok(None);
        }
        // Suppressed recipients do not count: the same lookup `suppress_new` makes. A message
        // with a `suppression_override` sends to listed numbers too, so all of them count.
        let listed: HashSet<String> = if m.suppression_override.is_some() {
            HashSet::new()
        } else {
            let numbers: Vec<&str> = m.to.iter().map(String::as_str).collect();
            tx.suppressed_among(&m.account_id, &numbers)?
                .into_iter()
                .collect()
        };
        let counted =
            m.to.iter()
                .map(String::as_str)
                .filter(|t| !listed.contains(*t));
        let adds = spend::additions(&limits, parts, counted, now);
        let missing: Vec<Counter> = adds
            .keys()
            .filter(|c| !a.stored.contains_key(*c))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let keys: Vec<String> = missing.iter().map(Counter::key).collect();
            for (c, n) in missing.into_iter().zip(tx.usage_of(&m.account_id, &keys)?) {
                a.stored.insert(c, n);
            }
        }
        let used = |c: &Counter| a.stored[c] + a.admitted.get(c).copied().unwrap_or(0);
        if let Some(c) = spend::crossed(&limits, &adds, used) {
            let (limit, period) = (c.limit.clone(), c.period.clone());
            let used = used(c);
            let cap = spend::cap(&limits, c).expect("crossed has a cap");
            reached(tx, &m.account_id, c, cap, used, now)?;
            return Ok(Some(CreateOutcome::LimitReached { limit, period }));
        }
        for (c, n) in adds {
            *a.admitted.entry(c).or_insert(0) += n;
        }
        Ok(None)
    }

    /// After the insert: counts the parts of the recipients that were not suppressed, holds
    /// those in paused prefixes (pausing a prefix a burst crossed) and queues the webhooks.
    /// `views[i]` is `inserts[i]`'s message as it is now. Returns the messages with held
    /// recipients.
    pub(crate) fn finish(
        &mut self,
        tx: &mut dyn Tx,
        inserts: &[MessageInsert<'_>],
        views: &[MessageView],
        now: Millis,
    ) -> Result<HashSet<i64>> {
        let mut adds: BTreeMap<&str, BTreeMap<Counter, u64>> = BTreeMap::new();
        let mut held = HashSet::new();
        for (i, v) in inserts.iter().zip(views) {
            let account = i.message.account_id.as_str();
            let a = self.account(tx, account)?;
            let limits = a.limits.clone().unwrap_or_default();
            let counted: Vec<&str> = v
                .recipients
                .iter()
                .filter(|r| r.state != RecipientStatus::Suppressed)
                .map(|r| r.to.as_str())
                .collect();
            let entry = adds.entry(account).or_default();
            for (c, n) in spend::additions(&limits, i.parts, counted.iter().copied(), now) {
                *entry.entry(c).or_insert(0) += n;
            }
            if let (Some(p), false) = (&limits.pumping, i.message.encrypted)
                && hold_pumped(tx, a, account, p, v, &counted, now)?
            {
                held.insert(v.cursor);
            }
        }
        for (account, adds) in adds {
            let rows: Vec<(String, u64)> = adds.iter().map(|(c, n)| (c.key(), *n)).collect();
            tx.add_account_usage(account, &rows)?;
            let Some(limits) = self.accounts.get(account).and_then(|a| a.limits.clone()) else {
                continue;
            };
            // A cap reached exactly also tells, once.
            let keys: Vec<String> = rows.iter().map(|(k, _)| k.clone()).collect();
            let used = tx.usage_of(account, &keys)?;
            for ((c, _), used) in adds.iter().zip(used) {
                if let Some(cap) = spend::cap(&limits, c)
                    && used >= cap
                {
                    reached(tx, account, c, cap, used, now)?;
                }
            }
        }
        Ok(held)
    }
}

/// Records the message's counted numbers, pauses a prefix that a burst crossed, and holds
/// the message's recipients in paused prefixes; returns whether it held any.
fn hold_pumped(
    tx: &mut dyn Tx,
    a: &mut AccountSpend,
    account: &str,
    p: &spend::Pumping,
    v: &MessageView,
    counted: &[&str],
    now: Millis,
) -> Result<bool> {
    let rows: Vec<(&str, &str)> = counted
        .iter()
        .map(|to| (*to, spend::prefix(to, p.prefix_digits)))
        .collect();
    for (_, prefix) in &rows {
        if !a.new_numbers.contains_key(*prefix) {
            let released = a
                .prefixes
                .get(*prefix)
                .filter(|r| r.state == PrefixState::Released.as_str())
                .map(|r| r.changed_at);
            let since = spend::window_start(p, now, released);
            let n = tx.new_numbers_since(account, prefix, since)?;
            a.new_numbers.insert((*prefix).to_string(), n);
        }
    }
    let new = tx.record_numbers(account, &rows, now)?;
    for ((_, prefix), new) in rows.iter().zip(new) {
        if new {
            *a.new_numbers.get_mut(*prefix).expect("read above") += 1;
        }
    }
    let mut writes = Vec::new();
    for (idx, r) in v.recipients.iter().enumerate() {
        if r.state != RecipientStatus::Pending {
            continue;
        }
        let prefix = spend::prefix(&r.to, p.prefix_digits);
        let paused = a
            .prefixes
            .get(prefix)
            .is_some_and(|r| r.state == PrefixState::Paused.as_str());
        let paused = paused || {
            let n = a.new_numbers.get(prefix).copied().unwrap_or(0);
            spend::burst(p, n) && pause(tx, a, account, p, prefix, n, now)?
        };
        if paused {
            writes.push(StateWrite {
                mseq: v.cursor,
                idx: u32::try_from(idx).expect("recipient count is bounded by validation"),
                state: RecipientStatus::Held,
                error: None,
            });
        }
    }
    if writes.is_empty() {
        return Ok(false);
    }
    tx.set_recipient_states(&writes, now)?;
    recompute_state(tx, v.cursor, now)?;
    Ok(true)
}

/// Pauses a prefix and queues `account.pumping_suspected`; `true` (the prefix is paused).
fn pause(
    tx: &mut dyn Tx,
    a: &mut AccountSpend,
    account: &str,
    p: &spend::Pumping,
    prefix: &str,
    new_numbers: u64,
    now: Millis,
) -> Result<bool> {
    let row = PrefixRow {
        prefix: prefix.to_string(),
        state: PrefixState::Paused.as_str().to_string(),
        new_numbers,
        changed_at: now,
    };
    tx.put_prefix(account, &row)?;
    a.prefixes.insert(prefix.to_string(), row);
    tracing::info!(
        prefix_len = prefix.len(),
        "a burst of new numbers paused a prefix"
    );
    let data = PumpingData {
        new_numbers,
        paused_at: fmt_ms(now),
        prefix: prefix.to_string(),
        threshold: p.threshold,
        window_minutes: p.window_minutes,
    };
    enqueue_event(tx, account, Event::AccountPumpingSuspected, &data, now)?;
    Ok(true)
}

/// Queues `account.limit_reached` for the counter unless it was queued in this period.
fn reached(
    tx: &mut dyn Tx,
    account: &str,
    c: &Counter,
    cap: u64,
    used: u64,
    now: Millis,
) -> Result<()> {
    if tx.mark_limit_reached(account, &c.key(), now)? {
        let data = LimitData {
            cap,
            limit: c.limit.clone(),
            period: c.period.clone(),
            used,
        };
        enqueue_event(tx, account, Event::AccountLimitReached, &data, now)?;
    }
    Ok(())
}

/// Ends held recipients `failed`, `limit_reached`, with their webhooks.
fn fail_held(tx: &mut dyn Tx, rows: &[(i64, u32, &str)], now: Millis) -> Result<()> {
    let writes: Vec<StateWrite<'_>> = rows
        .iter()
        .map(|&(mseq, idx, _)| StateWrite {
            mseq,
            idx,
            state: RecipientStatus::Failed,
            error: Some(LIMIT_REACHED),
        })
        .collect();
    tx.set_recipient_states(&writes, now)?;
    let mut mseqs = Vec::new();
    for &(mseq, idx, account) in rows {
        recipient_webhook(tx, account, mseq, idx, RecipientStatus::Failed, now)?;
        if !mseqs.contains(&mseq) {
            mseqs.push(mseq);
        }
    }
    for mseq in mseqs {
        recompute_state(tx, mseq, now)?;
    }
    Ok(())
}

/// What the account sees of its limits: the limits, each counter of today and this month
/// with its cap, and the watched prefixes with their held recipients.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsReport {
    pub limits: Option<Limits>,
    /// (counter, cap, used).
    pub usage: Vec<(Counter, Option<u64>, u64)>,
    /// (prefix row, held recipients).
    pub prefixes: Vec<(PrefixRow, u32)>,
}

/// What releasing or blocking a prefix did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixOutcome {
    /// The prefix was paused or blocked; this many held recipients moved on.
    Done(u32),
    /// The prefix is not paused or blocked.
    NotPaused,
}

impl Store {
    /// The account's limits, `None` when none were set.
    pub fn account_limits(&self, account: &str) -> Result<Option<Limits>> {
        self.read(|tx| load_limits(tx, account))
    }

    /// Sets the account's limits (checked by the caller with `domain::spend::check`).
    pub fn put_account_limits(&self, account: &str, limits: &Limits, now: Millis) -> Result<()> {
        let body = serde_json::to_string(limits)?;
        self.write(|tx| tx.put_account_limits(account, &body, now))
    }

    /// The account's limits, today's and this month's counters, and its watched prefixes.
    pub fn limits_report(&self, account: &str, now: Millis) -> Result<LimitsReport> {
        self.read(|tx| {
            let limits = load_limits(tx, account)?;
            let l = limits.clone().unwrap_or_default();
            let mut counters: Vec<Counter> = spend::base_counters(now).into();
            counters.extend(
                l.country_daily_parts
                    .keys()
                    .map(|code| spend::country_counter(code, now)),
            );
            let keys: Vec<String> = counters.iter().map(Counter::key).collect();
            let used = tx.usage_of(account, &keys)?;
            let usage = counters
                .into_iter()
                .zip(used)
                .map(|(c, u)| {
                    let cap = spend::cap(&l, &c);
                    (c, cap, u)
                })
                .collect();
            let mut prefixes = Vec::new();
            for p in tx.prefix_rows(account)? {
                let held =
                    u32::try_from(tx.held_in_prefix(account, &p.prefix)?.len()).unwrap_or(u32::MAX);
                prefixes.push((p, held));
            }
            Ok(LimitsReport {
                limits,
                usage,
                prefixes,
            })
        })
    }

    /// Releases a paused (or blocked) prefix: its held recipients go back to the router
    /// (`pending`); the burst count restarts now.
    pub fn release_prefix(
        &self,
        account: &str,
        prefix: &str,
        now: Millis,
    ) -> Result<PrefixOutcome> {
        self.prefix_change(account, prefix, PrefixState::Released, now)
    }

    /// Blocks a paused prefix: its held recipients end `failed`, `limit_reached`; new
    /// recipients in it are refused at submit (`destination_not_allowed`) until released.
    pub fn block_prefix(&self, account: &str, prefix: &str, now: Millis) -> Result<PrefixOutcome> {
        self.prefix_change(account, prefix, PrefixState::Blocked, now)
    }

    fn prefix_change(
        &self,
        account: &str,
        prefix: &str,
        to: PrefixState,
        now: Millis,
    ) -> Result<PrefixOutcome> {
        self.write(|tx| {
            let Some(mut row) = tx.prefix_rows(account)?.into_iter().find(|p| {
                p.prefix == prefix
                    && (p.state == PrefixState::Paused.as_str()
                        || (to == PrefixState::Released
                            && p.state == PrefixState::Blocked.as_str()))
            }) else {
                return Ok(PrefixOutcome::NotPaused);
            };
            let held = tx.held_in_prefix(account, prefix)?;
            if to == PrefixState::Released {
                let writes: Vec<StateWrite<'_>> = held
                    .iter()
                    .map(|&(mseq, idx)| StateWrite {
                        mseq,
                        idx,
                        state: RecipientStatus::Pending,
                        error: None,
                    })
                    .collect();
                tx.set_recipient_states(&writes, now)?;
                let mut mseqs: Vec<i64> = held.iter().map(|h| h.0).collect();
                mseqs.dedup();
                for mseq in mseqs {
                    recompute_state(tx, mseq, now)?;
                }
            } else {
                let rows: Vec<(i64, u32, &str)> =
                    held.iter().map(|&(m, i)| (m, i, account)).collect();
                fail_held(tx, &rows, now)?;
            }
            row.state = to.as_str().to_string();
            row.changed_at = now;
            tx.put_prefix(account, &row)?;
            Ok(PrefixOutcome::Done(
                u32::try_from(held.len()).unwrap_or(u32::MAX),
            ))
        })
    }

    /// Ends `held` recipients past their message's validity: `failed`, `limit_reached`
    /// (nothing stays held forever), and forgets counters of days more than 62 days ago and
    /// of months more than 13 months ago. Returns how many recipients it ended.
    pub fn expire_held(&self, now: Millis, default_validity: Millis, limit: u32) -> Result<u32> {
        let (old_day, _) = spend::periods(now - 62 * 86_400_000);
        let (_, old_month) = spend::periods(now - 400 * 86_400_000);
        self.write(|tx| {
            // One relay of a cluster at a time (see `expire_unrouted`).
            if !tx.try_sweep_lock("held")? {
                return Ok(0);
            }
            tx.prune_account_usage(&old_day, &old_month)?;
            let rows = tx.held_past_validity(now, default_validity, limit)?;
            let refs: Vec<(i64, u32, &str)> =
                rows.iter().map(|(m, i, a)| (*m, *i, a.as_str())).collect();
            if !refs.is_empty() {
                fail_held(tx, &refs, now)?;
            }
            Ok(u32::try_from(rows.len()).unwrap_or(u32::MAX))
        })
    }
}
