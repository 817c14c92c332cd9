//! Each account's suppression list: what a keyword SMS does to it (the rules are
//! `crate::domain::optout`), what a new message's suppressed recipients become, and the
//! list's API.
//!
//! A new message is checked when it is created, in the transaction that stores it: a
//! recipient on the list becomes `suppressed` at once (a final state, so the router never
//! picks it) and queues `message.suppressed`; the message's other recipients go out. An
//! opt-out also ends the number's recipients still waiting for a SIM the same way; those a
//! phone already holds are left to it. A message with a `suppression_override` (the
//! account's `transactional` messages, the relay's auto-replies: `super::auto_replies`) is
//! exempt from both, and records whether a recipient was listed. The list's CSV import adds
//! all its numbers in one transaction.

use std::collections::{HashMap, HashSet};

use simrelay_protocol::IncomingSms;

use super::auto_replies::reply_to_keyword;
use super::messages::recompute_state;
use super::webhooks::{enqueue_event, recipient_webhook};
use crate::domain::RecipientStatus;
use crate::domain::optout::{Keyword, Keywords, MANUAL};
use crate::domain::webhooks::{ContactData, Event};
use crate::store::tx::{MessageInsert, StateWrite, Tx};
use crate::store::{Millis, Result, Store, Suppression};
use crate::time_fmt::fmt_ms;

/// The error text of a suppressed recipient.
pub const SUPPRESSED: &str = "suppressed";

/// What a keyword SMS did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KeywordOutcome {
    /// Webhook deliveries queued.
    pub webhooks: usize,
    /// An auto-reply was created (the router has work).
    pub replied: bool,
}

/// Applies a keyword SMS (just stored, new) to the sender's place on the list, queues
/// `contact.opted_out` / `contact.opted_in` when it changed, and creates the auto-reply the
/// account configured (`super::auto_replies`; a help keyword does only that). End-to-end
/// encrypted texts and data SMS are never keywords (the relay cannot read them).
pub(crate) fn apply_keyword(
    tx: &mut dyn Tx,
    keywords: &Keywords,
    account: &str,
    phone: &str,
    sms: &IncomingSms,
    now: Millis,
) -> Result<KeywordOutcome> {
    // The length bound of `Keywords::classify_for` first: most texts need no settings read.
    if sms.encrypted || sms.data_port.is_some() || sms.text.len() > 256 {
        return Ok(KeywordOutcome::default());
    }
    let settings = tx.opt_out_settings(account)?.unwrap_or_default();
    let Some(k) = keywords.classify_for(&sms.text, &settings.help_keywords) else {
        return Ok(KeywordOutcome::default());
    };
    let kind = k.kind();
    // The list first: an opt-out ends what still waits for the number, the reply must not.
    let webhooks = change_list(tx, k, account, phone, sms, now)?;
    let replied = reply_to_keyword(tx, &settings, kind, account, phone, sms, now)?;
    Ok(KeywordOutcome { webhooks, replied })
}

/// What keyword `k` does to the list; returns the webhook deliveries queued.
fn change_list(
    tx: &mut dyn Tx,
    k: Keyword,
    account: &str,
    phone: &str,
    sms: &IncomingSms,
    now: Millis,
) -> Result<usize> {
    let mut queued = 0;
    let (changed, event, keyword) = match k {
        Keyword::OptOut(keyword) => {
            let s = Suppression {
                cursor: 0,
                number: sms.from.clone(),
                keyword: keyword.clone(),
                phone: Some(phone.to_string()),
                sim: sms.sim,
                created_at: now,
            };
            let added = tx.insert_suppression(account, &s)?;
            if added {
                queued += suppress_waiting(tx, account, &sms.from, now)?;
            }
            (added, Event::ContactOptedOut, keyword)
        }
        Keyword::OptIn(keyword) => (
            tx.delete_suppression(account, &sms.from)?,
            Event::ContactOptedIn,
            keyword,
        ),
        Keyword::Help(_) => return Ok(0),
    };
    if !changed {
        return Ok(0);
    }
    tracing::debug!(
        phone,
        event = event.as_str(),
        "suppression list changed by a keyword"
    );
    let data = ContactData {
        keyword,
        number: sms.from.clone(),
        phone: phone.to_string(),
        received_at: fmt_ms(now),
        sim: sms.sim,
    };
    Ok(queued + enqueue_event(tx, account, event, &data, now)?)
}

/// Ends the account's recipients to `number` that still wait for a SIM (but those of a
/// message with a `suppression_override`, which go out anyway): a number that
/// opts out gets nothing more, also from messages created before. Recipients already at a
/// phone are left to it (stopping them would take a `cancel` the phone may not honour).
/// Returns the webhook deliveries queued.
fn suppress_waiting(tx: &mut dyn Tx, account: &str, number: &str, now: Millis) -> Result<usize> {
    let waiting = tx.unrouted_to(account, number)?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let writes: Vec<StateWrite<'_>> = waiting
        .iter()
        .map(|&(mseq, idx)| StateWrite {
            mseq,
            idx,
            state: RecipientStatus::Suppressed,
            error: Some(SUPPRESSED),
        })
        .collect();
    tx.set_recipient_states(&writes, now)?;
    let mut mseqs: Vec<i64> = Vec::new();
    let mut queued = 0;
    for w in &writes {
        queued += recipient_webhook(tx, account, w.mseq, w.idx, w.state, now)?;
        if !mseqs.contains(&w.mseq) {
            mseqs.push(w.mseq);
        }
    }
    for mseq in mseqs {
        recompute_state(tx, mseq, now)?;
    }
    Ok(queued)
}

/// Ends the suppressed recipients of messages just inserted (`mseqs[i]` is `inserts[i]`'s):
/// one lookup per account of the batch. A message with a `suppression_override` keeps its
/// recipients and records the override, and whether a recipient was listed. Returns the
/// messages that had any listed recipient or an override (their views changed).
pub(crate) fn suppress_new(
    tx: &mut dyn Tx,
    inserts: &[MessageInsert<'_>],
    mseqs: &[i64],
    now: Millis,
) -> Result<HashSet<i64>> {
    let mut by_account: HashMap<&str, Vec<&str>> = HashMap::new();
    for i in inserts {
        by_account
            .entry(i.message.account_id.as_str())
            .or_default()
            .extend(i.message.to.iter().map(String::as_str));
    }
    let mut listed: HashMap<&str, HashSet<String>> = HashMap::new();
    for (account, mut numbers) in by_account {
        numbers.sort_unstable();
        numbers.dedup();
        let found = tx.suppressed_among(account, &numbers)?;
        if !found.is_empty() {
            listed.insert(account, found.into_iter().collect());
        }
    }
    let mut touched = HashSet::new();
    for (i, &mseq) in inserts.iter().zip(mseqs) {
        let account = i.message.account_id.as_str();
        if let Some(kind) = i.message.suppression_override {
            let overrode = listed
                .get(account)
                .is_some_and(|numbers| i.message.to.iter().any(|to| numbers.contains(to)));
            tx.set_suppression_override(mseq, kind, overrode)?;
            touched.insert(mseq);
            continue;
        }
        let Some(numbers) = listed.get(account) else {
            continue;
        };
        let writes: Vec<StateWrite<'_>> = i
            .message
            .to
            .iter()
            .enumerate()
            .filter(|(_, to)| numbers.contains(*to))
            .map(|(idx, _)| StateWrite {
                mseq,
                idx: u32::try_from(idx).expect("recipient count is bounded by validation"),
                state: RecipientStatus::Suppressed,
                error: Some(SUPPRESSED),
            })
            .collect();
        if writes.is_empty() {
            continue;
        }
        tx.set_recipient_states(&writes, now)?;
        for w in &writes {
            recipient_webhook(tx, account, mseq, w.idx, w.state, now)?;
        }
        recompute_state(tx, mseq, now)?;
        touched.insert(mseq);
    }
    Ok(touched)
}

impl Store {
    /// Up to `limit` numbers of the account's list after the cursor `after`, oldest first.
    pub fn list_suppressions(
        &self,
        account: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Suppression>> {
        self.read(|tx| tx.list_suppressions(account, after, limit))
    }

    /// Adds a number by hand (keyword `manual`); returns whether it was not listed yet.
    pub fn add_suppression(&self, account: &str, number: &str, now: Millis) -> Result<bool> {
        let s = Suppression {
            cursor: 0,
            number: number.to_string(),
            keyword: MANUAL.to_string(),
            phone: None,
            sim: None,
            created_at: now,
        };
        self.write(|tx| tx.insert_suppression(account, &s))
    }

    /// Removes a number; returns whether it was listed.
    pub fn remove_suppression(&self, account: &str, number: &str) -> Result<bool> {
        self.write(|tx| tx.delete_suppression(account, number))
    }

    /// Adds every entry (checked by the caller) in one transaction; a number already listed
    /// (or twice in `entries`) keeps its first entry. Returns how many were added.
    pub fn import_suppressions(&self, account: &str, entries: &[Suppression]) -> Result<usize> {
        self.write(|tx| tx.insert_suppressions(account, entries))
    }

    /// The whole list, oldest first, from one consistent view.
    pub fn all_suppressions(&self, account: &str) -> Result<Vec<Suppression>> {
        const PAGE: u32 = 1000;
        self.read(|tx| {
            let mut all: Vec<Suppression> = Vec::new();
            loop {
                let page = tx.list_suppressions(account, all.last().map(|s| s.cursor), PAGE)?;
                let full = page.len() == PAGE as usize;
                all.extend(page);
                if !full {
                    return Ok(all);
                }
            }
        })
    }
}
