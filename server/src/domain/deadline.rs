//! What a deadline ends, with no clock of its own: the caller passes `now`.
//!
//! * A recipient still waiting for a SIM past its message's validity (`valid_until`, or
//!   `created_at` + the relay's default validity) ends `expired`, error `valid_until_passed`.
//! * A routed recipient whose phone has said nothing about it for [`PHONE_SILENCE_MS`] after
//!   its validity (or after its last change, if later) ends `unknown`, error `phone_silent`.
//!   A late report still applies (`unknown` is not final).

use super::state::RecipientStatus;
use simrelay_protocol::Millis;

/// How long after a routed recipient's validity (or its last change, if later) the relay
/// still waits for its phone: longer than every deadline the phone keeps itself (10 min for a
/// sent result, 78 h for delivery reports), so a phone that is only offline for a while ends
/// the recipient itself and reports it.
pub const PHONE_SILENCE_MS: Millis = 80 * 3_600_000;

/// The times a deadline is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub valid_until: Option<Millis>,
    pub created_at: Millis,
    /// The recipient's last change.
    pub updated_at: Millis,
}

/// How a deadline ends a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub state: RecipientStatus,
    pub error: &'static str,
}

/// The end of a message's validity.
pub fn validity_end(t: &Times, default_validity: Millis) -> Millis {
    t.valid_until
        .unwrap_or_else(|| t.created_at.saturating_add(default_validity))
}

/// What the deadlines make of a recipient at `now`: `None` while it may still wait.
pub fn end_at(
    status: RecipientStatus,
    routed: bool,
    t: &Times,
    now: Millis,
    default_validity: Millis,
) -> Option<End> {
    let valid = validity_end(t, default_validity);
    if !routed {
        return (status == RecipientStatus::Pending && valid < now).then_some(End {
            state: RecipientStatus::Expired,
            error: "valid_until_passed",
        });
    }
    let waited_from = valid.max(t.updated_at);
    let silent = RecipientStatus::AWAITING_PHONE.contains(&status)
        && t.updated_at < now - PHONE_SILENCE_MS
        && waited_from.saturating_add(PHONE_SILENCE_MS) < now;
    silent.then_some(End {
        state: RecipientStatus::Unknown,
        error: "phone_silent",
    })
}
