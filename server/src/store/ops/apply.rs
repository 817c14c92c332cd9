//! Applying a phone's ack and events: the rows are read here, the rules are
//! `crate::domain::update` (its header answers "what happens when a phone reports X").
//!
//! An incoming SMS outside `crate::limits` (text, sender, id, time stamps) is not stored; its
//! seq is consumed and the link tells the phone.

use simrelay_protocol::{Event, IncomingSms, RecipientUpdate, RelayFrame, encode};

use super::TxFacts;
use super::messages::recompute_state;
use super::routing::count_sent;
use super::suppressions::apply_keyword;
use super::webhooks::{enqueue_received, recipient_webhook};
use crate::domain::RecipientStatus;
use crate::domain::optout::Keywords;
use crate::domain::update::{self, Effect, Update};
use crate::domain::webhooks::ReceivedData;
use crate::pool_router::SimKey;
use crate::store::tx::{FrameInsert, ReportWrite, Tx};
use crate::store::{Applied, Assignment, Millis, Result, Store, StoreError};
use crate::time_fmt::fmt_ms;

/// Per message, the recipients whose copy on the reporting phone gets a `cancel`.
type Cancels<'e> = Vec<(&'e str, Vec<u32>)>;

/// Applies the phone's cumulative ack and its events, in seq order, once each.
pub(crate) fn apply_from_phone(
    tx: &mut dyn Tx,
    keywords: &Keywords,
    phone: &str,
    acked: Option<u64>,
    events: &[(u64, Event)],
    now: Millis,
) -> Result<Applied> {
    // Locked: nodes of a cluster that got the same events on two links apply them one after
    // the other, the second finding them stored.
    let p = tx
        .phone_state_locked(phone)?
        .ok_or(StoreError::Missing("phone"))?;
    let account = p.account_id;
    let mut event_seq = p.event_seq;
    let mut out = Applied::default();
    let acked = acked.map(|a| a.min(p.next_seq));
    if let Some(a) = acked {
        tx.ack_frames(phone, a)?;
    }
    out.acked = acked;
    let mut cancels: Cancels<'_> = Vec::new();
    let mut resent = false;
    for (seq, event) in events {
        match update::accept_seq(event_seq, *seq) {
            Some(true) => {}
            Some(false) => {
                resent = true; // already stored: idempotent
                continue;
            }
            None => break, // a gap: store nothing beyond it, the phone resends after reconnect
        }
        match event {
            Event::Recipient(u) => {
                if apply_recipient(tx, &account, phone, u, now, &mut cancels, &mut out)? {
                    out.changed = true;
                }
            }
            // Refused for good: resending can never make it valid, so its seq is consumed
            // (acknowledged) and the phone's later events are not held up behind it.
            Event::Incoming(sms) => match crate::limits::check_incoming(sms) {
                Err(fault) => out.incoming_refused.push(fault.as_str()),
                Ok(()) => {
                    let retimed = crate::limits::retimed(sms, now);
                    if retimed.is_some() {
                        tracing::info!(
                            phone,
                            "incoming SMS with an impossible time stamp: stored with the relay's clock"
                        );
                    }
                    let sms = retimed.as_ref().unwrap_or(sms);
                    if store_incoming(tx, keywords, &account, phone, sms, now, &mut out)? {
                        out.incoming = true;
                    }
                }
            },
        }
        event_seq = *seq;
    }
    tx.set_event_seq(phone, event_seq, now)?;
    if !cancels.is_empty() {
        let n = u32::try_from(cancels.len()).unwrap_or(u32::MAX);
        let first = tx.reserve_frame_seqs(&[(phone, n)])?[0];
        let bodies: Vec<(u64, String)> = cancels
            .into_iter()
            .zip(first..)
            .map(|((message_id, recipients), seq)| {
                let frame = RelayFrame::Cancel {
                    seq,
                    message_id: message_id.to_string(),
                    recipients: Some(recipients),
                };
                (seq, encode(&frame))
            })
            .collect();
        let frames: Vec<FrameInsert<'_>> = bodies
            .iter()
            .map(|(seq, body)| FrameInsert {
                phone,
                seq: *seq,
                body,
            })
            .collect();
        tx.insert_frames(&frames, now)?;
        out.cancel_upto = bodies.last().map(|(seq, _)| *seq);
    } else if resent {
        // A resent event was applied by an earlier batch, perhaps on a link that died before
        // it wrote the `cancel` that batch queued, and after this link's first check for
        // cancels. The ack about to cover the event must follow that cancel here too.
        out.cancel_upto = tx.last_cancel_after(phone, acked.unwrap_or(0).max(p.acked_seq))?;
    }
    out.event_seq = event_seq;
    Ok(out)
}

/// Applies one recipient update as `crate::domain::update::decide` says; returns whether the
/// recipient's state changed.
fn apply_recipient<'e>(
    tx: &mut dyn Tx,
    account: &str,
    phone: &str,
    u: &'e RecipientUpdate,
    now: Millis,
    cancels: &mut Cancels<'e>,
    out: &mut Applied,
) -> Result<bool> {
    let Some((mseq, r)) = tx.recipient_for_update(account, &u.message_id, u.idx)? else {
        return Ok(false);
    };
    let mut decision = {
        let mut facts = TxFacts { tx, account };
        update::decide(&r, phone, u, crate::rack::MAX_SIMS, &mut facts)?
    };
    tracing::debug!(
        phone,
        message = %u.message_id,
        idx = u.idx,
        update = ?u.state,
        owner = ?r.phone,
        stored = ?r.status,
        accepted = r.accepted,
        decision = ?decision,
        "recipient update"
    );
    if let Update::Apply(a) = &decision
        && a.adopt
    {
        let claim = Assignment {
            mseq,
            idx: u.idx,
            phone: phone.to_string(),
            sim: None,
        };
        if tx.route_recipients(&[claim], now)?[0].is_none() {
            decision = update::cancel_copy(&r, phone);
        }
    }
    let a = match decision {
        Update::Ignore => return Ok(false),
        Update::CancelCopy { tried } => {
            if let Some(t) = tried {
                tx.set_tried(mseq, u.idx, &t)?;
            }
            // Only this recipient: the phone may still own others of the same message.
            match cancels.iter_mut().find(|(id, _)| *id == u.message_id) {
                Some((_, idxs)) if !idxs.contains(&u.idx) => idxs.push(u.idx),
                Some(_) => {}
                None => cancels.push((&u.message_id, vec![u.idx])),
            }
            return Ok(false);
        }
        Update::Apply(a) => a,
    };
    if let Some(o) = a.outcome {
        out.sim_outcomes.push(o);
    }
    if let Some(t) = &a.tried {
        tx.set_tried(mseq, u.idx, t)?;
    }
    let report = match a.effect {
        Effect::FailOver => {
            let (error, code) = (u.reason.as_deref(), u.code);
            tx.unroute_recipient(mseq, u.idx, RecipientStatus::Pending, error, code, now)?;
            recompute_state(tx, mseq, now)?;
            out.changed = true;
            out.freed = true;
            return Ok(true);
        }
        Effect::Report(report) => report,
    };
    tx.record_report(
        &ReportWrite {
            mseq,
            idx: u.idx,
            state: report.state,
            parts: u.parts,
            parts_sent: u.parts_sent,
            parts_delivered: u.parts_delivered,
            error: u.reason.as_deref(),
            code: u.code,
            sim: u.sim,
        },
        now,
    )?;
    if let Some((sim, parts)) = report.newly_sent {
        count_sent(tx, &SimKey::new(phone, sim), parts, now)?;
    }
    if !report.changed {
        return Ok(false);
    }
    out.freed |= report.freed;
    recompute_state(tx, mseq, now)?;
    out.webhooks += recipient_webhook(tx, account, mseq, u.idx, report.state, now)?;
    Ok(true)
}

/// Stores an incoming SMS once per (phone, id) and queues `message.received`; a new one that
/// is an opt-out or opt-in keyword changes the account's suppression list, and any keyword
/// may get its auto-reply. Returns whether it was new.
fn store_incoming(
    tx: &mut dyn Tx,
    keywords: &Keywords,
    account: &str,
    phone: &str,
    sms: &IncomingSms,
    now: Millis,
    out: &mut Applied,
) -> Result<bool> {
    if !tx.insert_incoming(account, phone, sms, now)? {
        return Ok(false);
    }
    let data = ReceivedData {
        from: sms.from.clone(),
        id: sms.id.clone(),
        phone: phone.to_string(),
        received_at: fmt_ms(sms.received_at),
        sent_at: sms.sent_at.map(fmt_ms),
        sim: sms.sim,
        text: sms.text.clone(),
        data_port: sms.data_port,
        encrypted: sms.encrypted,
    };
    out.webhooks += enqueue_received(tx, account, &data, now)?;
    let k = apply_keyword(tx, keywords, account, phone, sms, now)?;
    out.webhooks += k.webhooks;
    out.freed |= k.replied;
    Ok(true)
}

impl Store {
    /// Applies the phone's ack and events in one transaction.
    pub fn apply_from_phone(
        &self,
        phone: &str,
        acked: Option<u64>,
        events: &[(u64, Event)],
        now: Millis,
    ) -> Result<Applied> {
        self.write(|tx| apply_from_phone(tx, &self.keywords, phone, acked, events, now))
    }
}
