//! Messages: reads, a message's aggregate state, cancelling, and the deadlines.

use simrelay_protocol::{RelayFrame, encode};

use super::webhooks::recipient_webhook;
use crate::domain::deadline::{self, PHONE_SILENCE_MS, Times};
use crate::domain::phone_gone::{CANCELLED, OnCancel, on_cancel};
use crate::domain::{RecipientStatus, aggregate};
use crate::store::tx::{DeadlineRow, FrameInsert, StateWrite, Tx};
use crate::store::{
    CancelOutcome, HistoryRow, InboxFilter, InboxItem, MessageFilter, MessageView, Millis, Result,
    Store, StoreError,
};

/// Most recipients one deadline tick ends per kind (the next tick takes the rest).
const DEADLINE_BATCH: u32 = 10_000;
/// The name of the deadlines' sweep lock.
const DEADLINE_SWEEP: &str = "deadlines";

/// Recomputes and stores a message's state from its recipients'.
pub(crate) fn recompute_state(tx: &mut dyn Tx, mseq: i64, now: Millis) -> Result<()> {
    let states = tx.recipient_states(mseq)?;
    tx.set_message_state(mseq, aggregate(states), now)
}

/// Appends one frame per phone, with the next seq of each.
pub(crate) fn insert_frames(
    tx: &mut dyn Tx,
    phones: &[&str],
    now: Millis,
    make: impl Fn(u64) -> RelayFrame,
) -> Result<Vec<u64>> {
    let wants: Vec<(&str, u32)> = phones.iter().map(|p| (*p, 1)).collect();
    let seqs = tx.reserve_frame_seqs(&wants)?;
    let bodies: Vec<String> = seqs.iter().map(|s| encode(&make(*s))).collect();
    let frames: Vec<FrameInsert<'_>> = phones
        .iter()
        .zip(&seqs)
        .zip(&bodies)
        .map(|((phone, seq), body)| FrameInsert {
            phone,
            seq: *seq,
            body,
        })
        .collect();
    tx.insert_frames(&frames, now)?;
    Ok(seqs)
}

/// Ends recipients a deadline query found, as `crate::domain::deadline` says (rows it does
/// not end are left); returns how many ended.
fn end_rows(
    tx: &mut dyn Tx,
    rows: &[DeadlineRow],
    routed: bool,
    now: Millis,
    default_validity: Millis,
) -> Result<u32> {
    let mut ended = 0_u32;
    for row in rows {
        let t = Times {
            valid_until: row.valid_until,
            created_at: row.created_at,
            updated_at: row.updated_at,
        };
        let Some(end) = deadline::end_at(row.status, routed, &t, now, default_validity) else {
            continue;
        };
        let write = StateWrite {
            mseq: row.mseq,
            idx: row.idx,
            state: end.state,
            error: Some(end.error),
        };
        tx.set_recipient_states(&[write], now)?;
        recompute_state(tx, row.mseq, now)?;
        recipient_webhook(tx, &row.account_id, row.mseq, row.idx, end.state, now)?;
        ended = ended.saturating_add(1);
    }
    Ok(ended)
}

impl Store {
    pub fn get_message(&self, account: &str, id: &str) -> Result<Option<MessageView>> {
        self.read(|tx| tx.message_by_id(account, id))
    }

    /// Every recorded change of the message's recipients (by recipient, oldest first), or
    /// `None` for a message the account does not have.
    pub fn message_history(&self, account: &str, id: &str) -> Result<Option<Vec<HistoryRow>>> {
        self.read(|tx| {
            // The message's seq only (the index lookup of an idempotent create).
            let Some((mseq, _)) = tx.find_messages(&[(account, id)])?.remove(0) else {
                return Ok(None);
            };
            Ok(Some(tx.recipient_history(mseq)?))
        })
    }

    pub fn list_messages(&self, account: &str, filter: &MessageFilter) -> Result<Vec<MessageView>> {
        self.read(|tx| tx.list_messages(account, filter))
    }

    pub fn list_inbox(&self, account: &str, filter: &InboxFilter) -> Result<Vec<InboxItem>> {
        self.read(|tx| tx.list_inbox(account, filter))
    }

    /// Cancels what can still be cancelled (`crate::domain::phone_gone`): recipients waiting
    /// for a SIM at once, those at a phone through a `cancel` frame for each phone.
    pub fn cancel_message(&self, account: &str, id: &str, now: Millis) -> Result<CancelOutcome> {
        self.write(|tx| {
            let Some(view) = tx.message_by_id(account, id)? else {
                return Ok(CancelOutcome::NotFound);
            };
            let mseq = view.cursor;
            let mut writes = Vec::new();
            let mut phones: Vec<&str> = Vec::new();
            let mut local = 0;
            for r in &view.recipients {
                let (state, error) = match on_cancel(r.state, r.phone.is_some()) {
                    OnCancel::Keep => continue,
                    OnCancel::Cancelled => {
                        local += 1;
                        (RecipientStatus::Cancelled, Some(CANCELLED))
                    }
                    OnCancel::AskPhone => {
                        let phone = r.phone.as_deref().expect("routed");
                        if !phones.contains(&phone) {
                            phones.push(phone);
                        }
                        (RecipientStatus::Cancelling, None)
                    }
                };
                writes.push(StateWrite {
                    mseq,
                    idx: r.idx,
                    state,
                    error,
                });
            }
            tx.set_recipient_states(&writes, now)?;
            for w in writes
                .iter()
                .filter(|w| w.state == RecipientStatus::Cancelled)
            {
                recipient_webhook(tx, account, mseq, w.idx, w.state, now)?;
            }
            insert_frames(tx, &phones, now, |seq| RelayFrame::Cancel {
                seq,
                message_id: id.to_string(),
                recipients: None,
            })?;
            recompute_state(tx, mseq, now)?;
            let view = tx
                .message_by_mseq(mseq)?
                .ok_or(StoreError::Missing("message"))?;
            if local == 0 && phones.is_empty() {
                return Ok(CancelOutcome::NotCancellable(view));
            }
            let phones = phones.iter().map(|p| p.to_string()).collect();
            Ok(CancelOutcome::Cancelled { view, phones })
        })
    }

    /// Ends what the deadlines end (`crate::domain::deadline`): unrouted recipients past
    /// their validity (`default_validity` ms after creation without one), and routed ones
    /// whose phone stayed silent past every deadline of its own ([`PHONE_SILENCE_MS`]).
    ///
    /// Every relay of a cluster runs this each second: it runs under the cluster-wide lock of
    /// the `deadlines` sweep ([`Tx::try_sweep_lock`]), and reads the recipients after taking
    /// it, so each recipient ends once (one history row, one webhook) whichever relay ends
    /// it. A run that finds the lock taken ends nothing (the holder does the work).
    ///
    /// Held recipients (pumping protection) past their validity end `failed`,
    /// `limit_reached` (`Store::expire_held`, under its own sweep lock).
    pub fn expire_unrouted(&self, now: Millis, default_validity: Millis) -> Result<u32> {
        let ended = self.write(|tx| {
            if !tx.try_sweep_lock(DEADLINE_SWEEP)? {
                return Ok(0);
            }
            let unrouted = tx.unrouted_past_validity(now, default_validity, DEADLINE_BATCH)?;
            let expired = end_rows(tx, &unrouted, false, now, default_validity)?;
            let silent =
                tx.routed_silent(now, default_validity, PHONE_SILENCE_MS, DEADLINE_BATCH)?;
            let ended = end_rows(tx, &silent, true, now, default_validity)?;
            Ok(expired.saturating_add(ended))
        })?;
        Ok(ended.saturating_add(self.expire_held(now, default_validity, DEADLINE_BATCH)?))
    }
}
