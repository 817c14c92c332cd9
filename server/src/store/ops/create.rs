//! Creating messages, and the group commit's one transaction for many callers.

use std::collections::HashMap;

use crate::domain::{MessageStatus, RecipientStatus};
use crate::store::tx::{MessageInsert, Tx};
use crate::store::{
    BatchOutcome, CreateOutcome, MessageView, NewMessage, PhoneBatch, RecipientView, Result, Store,
    StoreError, SuppressionOverride,
};

/// What happens to one message of a batch.
enum Slot {
    Done(CreateOutcome),
    /// Inserted: the index in the inserts.
    New(usize),
    /// The same id as a message inserted earlier in this batch (its index in the inserts).
    Same(usize),
}

/// Creates a batch of messages: an id already stored (or created earlier in the batch) with
/// the same body is `Existing`, with another body a `Conflict`; a pinned phone or pool the
/// account does not have is refused.
pub(crate) fn create_messages(tx: &mut dyn Tx, batch: &[NewMessage]) -> Result<Vec<CreateOutcome>> {
    let keys: Vec<(&str, &str)> = batch
        .iter()
        .map(|m| (m.account_id.as_str(), m.id.as_str()))
        .collect();
    let found = tx.find_messages(&keys)?;
    let mut slots = Vec::with_capacity(batch.len());
    let mut inserts: Vec<MessageInsert<'_>> = Vec::new();
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    let mut guard = super::spend::Guard::default();
    for ((m, key), found) in batch.iter().zip(&keys).zip(found) {
        let slot = if let Some((mseq, hash)) = found {
            if hash != m.body_hash {
                Slot::Done(CreateOutcome::Conflict)
            } else {
                let view = tx
                    .message_by_mseq(mseq)?
                    .ok_or(StoreError::Missing("message"))?;
                Slot::Done(CreateOutcome::Existing(view))
            }
        } else if let Some(&j) = first.get(key) {
            if inserts[j].message.body_hash != m.body_hash {
                Slot::Done(CreateOutcome::Conflict)
            } else {
                Slot::Same(j)
            }
        } else if let Some(phone) = &m.phone_id
            && !tx.phone_of_account(&m.account_id, phone)?
        {
            Slot::Done(CreateOutcome::UnknownPhone)
        } else if let Some(pool) = &m.pool
            && !tx.pool_exists(&m.account_id, pool)?
        {
            Slot::Done(CreateOutcome::UnknownPool)
        } else if m.suppression_override == Some(SuppressionOverride::Transactional)
            && !tx
                .opt_out_settings(&m.account_id)?
                .is_some_and(|s| s.allow_override)
        {
            Slot::Done(CreateOutcome::OverrideNotAllowed)
        } else if let Some(refused) = guard.admit(tx, m, parts_of(m))? {
            Slot::Done(refused)
        } else {
            first.insert(*key, inserts.len());
            inserts.push(MessageInsert {
                message: m,
                parts: parts_of(m),
                state: MessageStatus::Pending,
                recipient_state: RecipientStatus::Pending,
            });
            Slot::New(inserts.len() - 1)
        };
        slots.push(slot);
    }
    let now = batch.iter().map(|m| m.created_at).max().unwrap_or_default();
    let mseqs = tx.insert_messages(&inserts, now)?;
    let suppressed = super::suppressions::suppress_new(tx, &inserts, &mseqs, now)?;
    let mut views: Vec<MessageView> = Vec::with_capacity(inserts.len());
    for (i, &mseq) in inserts.iter().zip(&mseqs) {
        views.push(if suppressed.contains(&mseq) {
            tx.message_by_mseq(mseq)?
                .ok_or(StoreError::Missing("message"))?
        } else {
            created_view(i.message, mseq)
        });
    }
    let held = guard.finish(tx, &inserts, &views, now)?;
    if !held.is_empty() {
        for v in &mut views {
            if held.contains(&v.cursor) {
                *v = tx
                    .message_by_mseq(v.cursor)?
                    .ok_or(StoreError::Missing("message"))?;
            }
        }
    }
    Ok(slots
        .into_iter()
        .map(|s| match s {
            Slot::Done(o) => o,
            Slot::New(j) => CreateOutcome::Created(views[j].clone()),
            Slot::Same(j) => CreateOutcome::Existing(views[j].clone()),
        })
        .collect())
}

/// A message as it is right after its creation.
fn created_view(m: &NewMessage, mseq: i64) -> MessageView {
    let recipients =
        m.to.iter()
            .enumerate()
            .map(|(idx, to)| RecipientView {
                idx: u32::try_from(idx).expect("recipient count is bounded by validation"),
                to: to.clone(),
                state: RecipientStatus::Pending,
                parts: 0,
                parts_sent: 0,
                parts_delivered: 0,
                error: None,
                code: None,
                phone: None,
                sim: None,
                updated_at: m.created_at,
            })
            .collect();
    MessageView {
        cursor: mseq,
        id: m.id.clone(),
        state: MessageStatus::Pending,
        priority: m.priority,
        valid_until: m.valid_until,
        schedule_at: m.schedule_at,
        phone: m.phone_id.clone(),
        sim: m.sim,
        delivery_report: m.delivery_report,
        encrypted: m.encrypted,
        data_port: m.data_port,
        text: m.text.clone(),
        recipients,
        created_at: m.created_at,
        updated_at: m.created_at,
        suppression_override: m.suppression_override,
        overrode_suppression: false,
    }
}

/// The SMS parts a message will take, for pacing and limits: one for a data SMS; for an
/// end-to-end encrypted text (which the relay cannot read), the parts of a GSM text as long
/// as its ciphertext, an upper bound for Latin text (one byte per character).
fn parts_of(m: &NewMessage) -> u32 {
    if m.data_port.is_some() {
        return 1;
    }
    if m.encrypted {
        use base64::Engine;
        let bytes = m
            .text
            .rsplit('$')
            .next()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map_or(m.text.len(), |b| b.len());
        return simrelay_protocol::segment::count_parts(&"a".repeat(bytes.max(1)));
    }
    simrelay_protocol::segment::count_parts(&m.text)
}

impl Store {
    /// Creates a batch of messages in one transaction (group commit).
    pub fn create_messages(&self, batch: &[NewMessage]) -> Result<Vec<CreateOutcome>> {
        self.write(|tx| create_messages(tx, batch))
    }

    /// Creates messages and applies phone batches in one transaction (group commit). A phone
    /// batch that fails is rolled back alone and answered with its error text.
    pub fn write_batch(
        &self,
        creates: &[NewMessage],
        applies: &[PhoneBatch],
    ) -> Result<BatchOutcome> {
        self.write(|tx| {
            let created = create_messages(tx, creates)?;
            let mut applied = Vec::with_capacity(applies.len());
            for b in applies {
                tx.savepoint()?;
                match super::apply::apply_from_phone(
                    tx,
                    &self.keywords,
                    &b.phone,
                    b.acked,
                    &b.events,
                    b.now,
                ) {
                    Ok(a) => {
                        tx.release_savepoint()?;
                        applied.push(Ok(a));
                    }
                    Err(e) => {
                        tx.rollback_to_savepoint()?;
                        applied.push(Err(e.to_string()));
                    }
                }
            }
            Ok((created, applied))
        })
    }
}
