//! What the relay does with a phone's report about one recipient ([`decide`]).
//!
//! The rules, in the order they are tried (`R` is the recipient as stored, `P` the reporting
//! phone, `u` the update):
//!
//! | # | when                                                        | then                                                              |
//! |---|-------------------------------------------------------------|-------------------------------------------------------------------|
//! | 1 | `R` is not routed to `P` and `u` is not `queued`             | ignore: only the owner's word counts                              |
//! | 2 | not `P`'s, `queued`, `R` waits for a SIM and `P` could have had it (not in `tried`, not pinned elsewhere or to another SIM, in the target pool) | adopt: `R` becomes `P`'s (late acceptance), go on at 4 |
//! | 3 | not `P`'s, `queued`, otherwise                              | cancel `P`'s copy (a `cancel` frame before the ack), and add `P` to `tried` unless `R` is final or `P` is there |
//! | 4 | `R` is final                                                | ignore                                                            |
//! | 5 | `u` is `sent`/`delivered`, `R` was neither, SIM known       | tell SIM health `sent`, go on at 7                                |
//! | 6 | `u` is `failed` with `unsent`, SIM known                    | tell SIM health `sim-bound` (not for the phone's own `decrypt_failed`, `rejected_by_phone`), add the SIM to `tried`; if `R` is not pinned, has tried fewer than `max_sims` SIMs and a phone not in `tried` could take it (in its pool, else any of the account's): fail over (back to the router as `pending`); else go on at 7 |
//! | 7 | otherwise                                                   | set `R`'s state to `u`'s (a `queued` never undoes `cancelling`) with its part counts; parts newly sent count for the SIM; a change of state recomputes the message's state and queues its webhook ([`super::webhooks::recipient_event`]) |
//!
//! Events are applied once: a seq at or below the phone's last applied one is skipped, and a
//! gap stops the batch (the phone resends after reconnecting): [`accept_seq`].

use simrelay_protocol::{RecipientState, RecipientUpdate};

use super::recipient::{Recipient, UNKNOWN_SIM};
use super::state::RecipientStatus;
use crate::pool_router::SimKey;
use crate::sim_health::Outcome;

/// Reasons of an unsent failure that belong to the phone, not to its SIM (docs/protocol.md:
/// end-to-end encrypted messages the phone cannot decrypt, or whose plaintext it refuses).
const PHONE_BOUND_DECRYPT: &str = "decrypt_failed";
const PHONE_BOUND_REJECTED: &str = "rejected_by_phone";

/// Facts about the account that some rules need, read only when a rule needs them.
pub trait Facts {
    type Error;
    /// Whether `pool` holds a SIM of `phone` (SIM `sim`, when given).
    fn pool_has(&mut self, pool: &str, phone: &str, sim: Option<i32>) -> Result<bool, Self::Error>;
    /// The phones that could take a recipient of `pool`'s (every paired phone of the account
    /// when `None`).
    fn candidate_phones(&mut self, pool: Option<&str>) -> Result<Vec<String>, Self::Error>;
}

/// What to do with one update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Nothing changes.
    Ignore,
    /// Queue a `cancel` for the reporting phone's copy; store `tried` when given.
    CancelCopy { tried: Option<Vec<SimKey>> },
    /// The update applies (after adopting the recipient when `adopt`).
    Apply(Apply),
}

/// How an update that applies changes the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    /// The recipient waited for a SIM: it becomes the reporting phone's first.
    pub adopt: bool,
    /// What the update tells about the SIM's health.
    pub outcome: Option<(SimKey, Outcome)>,
    /// The recipient's new `tried`, when it changes.
    pub tried: Option<Vec<SimKey>>,
    pub effect: Effect,
}

/// The change to the recipient itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Back to the router: no phone, no SIM, `pending`, not accepted (error and code of the
    /// update kept).
    FailOver,
    /// Store the phone's report with this state.
    Report(Report),
}

/// A report to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub state: RecipientStatus,
    /// Parts that left the SIM with this update, and the SIM (when known).
    pub newly_sent: Option<(i32, u32)>,
    /// The state differs from the stored one (the message's state is recomputed, the
    /// recipient's webhook queued).
    pub changed: bool,
    /// It left its phone's queue (the router may have room).
    pub freed: bool,
}

impl Update {
    /// Whether the recipient's state changes.
    pub fn changes_state(&self) -> bool {
        match self {
            Update::Apply(a) => match &a.effect {
                Effect::FailOver => true,
                Effect::Report(r) => r.changed,
            },
            _ => false,
        }
    }
}

/// Whether event `seq` applies after `last` was: `Some(true)` applies, `Some(false)` was
/// applied before (skip), `None` leaves a gap (stop: nothing beyond it is applied).
pub fn accept_seq(last: u64, seq: u64) -> Option<bool> {
    if seq <= last {
        Some(false)
    } else if seq == last + 1 {
        Some(true)
    } else {
        None
    }
}

/// Decides what `phone`'s update `u` does to recipient `r` (the table in this module's
/// header). `max_sims`: most SIMs a recipient tries before its failure stands.
pub fn decide<F: Facts>(
    r: &Recipient,
    phone: &str,
    u: &RecipientUpdate,
    max_sims: usize,
    facts: &mut F,
) -> Result<Update, F::Error> {
    let mut adopt = false;
    if r.phone.as_deref() != Some(phone) {
        if u.state != RecipientState::Queued {
            return Ok(Update::Ignore);
        }
        adopt = r.unrouted() && could_take(r, phone, u.sim, facts)?;
        if !adopt {
            return Ok(cancel_copy(r, phone));
        }
    }
    if r.status.is_final() {
        return Ok(Update::Ignore);
    }
    let mut apply = Apply {
        adopt,
        outcome: None,
        tried: None,
        effect: Effect::FailOver,
    };
    if let Some(sub) = u.sim.or(r.sim) {
        let key = SimKey::new(phone, sub);
        let left = matches!(u.state, RecipientState::Sent | RecipientState::Delivered);
        if left && !matches!(r.status, RecipientStatus::Sent | RecipientStatus::Delivered) {
            apply.outcome = Some((key, Outcome::Sent));
        } else if u.state == RecipientState::Failed && u.unsent {
            // A phone that cannot decrypt (or refuses what it decrypted) says nothing about
            // its SIM: another phone may try, the SIM's health is untouched.
            if !matches!(
                u.reason.as_deref(),
                Some(PHONE_BOUND_DECRYPT | PHONE_BOUND_REJECTED)
            ) {
                apply.outcome = Some((key.clone(), Outcome::SimBound(u.code)));
            }
            let mut tried = r.tried.clone();
            tried.push(key);
            let again = r.target.phone.is_none()
                && tried.len() < max_sims
                && has_alternative(r, &tried, facts)?;
            apply.tried = Some(tried);
            if again {
                return Ok(Update::Apply(apply));
            }
        }
    }
    let state = if r.status == RecipientStatus::Cancelling && u.state == RecipientState::Queued {
        RecipientStatus::Cancelling
    } else {
        u.state.into()
    };
    let newly = u.parts_sent.saturating_sub(r.parts_sent);
    let changed = state != r.status;
    apply.effect = Effect::Report(Report {
        state,
        newly_sent: u.sim.or(r.sim).filter(|_| newly > 0).map(|s| (s, newly)),
        changed,
        freed: changed && r.status.in_phone_queue() && !state.in_phone_queue(),
    });
    Ok(Update::Apply(apply))
}

/// Rule 3: cancel `phone`'s copy of `r`, and never route `r` back to it (unless `r` is
/// final, or the phone is in `tried` already).
pub fn cancel_copy(r: &Recipient, phone: &str) -> Update {
    let tried = (!r.status.is_final() && !r.tried_phone(phone)).then(|| {
        let mut t = r.tried.clone();
        t.push(SimKey::new(phone, UNKNOWN_SIM));
        t
    });
    Update::CancelCopy { tried }
}

/// Whether the router could have routed `r` to `phone` (SIM `sim`, when the phone says): not
/// in `tried`, not pinned to another phone or SIM, and in the target pool.
fn could_take<F: Facts>(
    r: &Recipient,
    phone: &str,
    sim: Option<i32>,
    facts: &mut F,
) -> Result<bool, F::Error> {
    let other_sim = matches!((r.target.sim, sim), (Some(want), Some(got)) if want != got);
    if r.tried_phone(phone) || other_sim || r.target.phone.as_deref().is_some_and(|p| p != phone) {
        return Ok(false);
    }
    match &r.target.pool {
        Some(pool) => facts.pool_has(pool, phone, sim),
        None => Ok(true),
    }
}

/// Whether a phone that has not had the recipient could take it. Without one the failure
/// stands, rather than the recipient waiting for a SIM that does not exist.
fn has_alternative<F: Facts>(
    r: &Recipient,
    tried: &[SimKey],
    facts: &mut F,
) -> Result<bool, F::Error> {
    let phones = facts.candidate_phones(r.target.pool.as_deref())?;
    Ok(phones.iter().any(|p| !tried.iter().any(|t| &t.phone == p)))
}
