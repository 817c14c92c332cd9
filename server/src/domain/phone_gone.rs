//! What happens to a phone's recipients when it goes offline, when it is removed, and when
//! a client cancels a message.
//!
//! A phone hands a recipient to its radio only after the relay acknowledged its acceptance
//! (`docs/protocol.md`, "acceptance"). So a recipient the phone never accepted can go
//! elsewhere without a duplicate; one it accepted may have been sent.
//!
//! * Offline: each recipient the phone holds that it has not accepted (`pending`, not
//!   accepted) goes back to the router, unless its message is pinned to this phone.
//! * Removed (`DELETE /v1/phones/{id}`, a lost, stolen or retired phone; it never gets another
//!   acknowledgement): never accepted → back to the router (`failed` when pinned to the
//!   phone, `cancelled` when a cancel was already on its way); accepted (`queued`, `sending`,
//!   `cancelling` after acceptance) → `unknown`, it is never sent again. All with error
//!   `phone_removed`. `sent` recipients stay `sent`.
//! * Cancel: a recipient waiting for a SIM is `cancelled` at once (error `cancelled`); one at
//!   a phone, `pending` or `queued`, becomes `cancelling` and its phone gets a `cancel` frame;
//!   any other (with a radio, or final) is not cancellable.

use super::recipient::Recipient;
use super::state::RecipientStatus;

/// Whether the phone going offline hands `r` (one it holds) back to the router.
pub fn offline_hands_back(r: &Recipient) -> bool {
    r.status == RecipientStatus::Pending && !r.accepted && r.target.phone.is_none()
}

/// What removing its phone does to a recipient it holds (in its queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRemoval {
    /// Back to the router.
    Reroute,
    /// Ends in this state, error [`REMOVED`].
    End(RecipientStatus),
}

/// The error of a recipient ended by its phone's removal.
pub const REMOVED: &str = "phone_removed";

pub fn on_removal(r: &Recipient) -> OnRemoval {
    use RecipientStatus as S;
    match (r.status, r.accepted, r.target.phone.is_some()) {
        (S::Pending, false, false) => OnRemoval::Reroute,
        (S::Pending, false, true) => OnRemoval::End(S::Failed),
        (S::Cancelling, false, _) => OnRemoval::End(S::Cancelled),
        _ => OnRemoval::End(S::Unknown),
    }
}

/// What cancelling its message does to a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCancel {
    /// `cancelled` now, error [`CANCELLED`].
    Cancelled,
    /// `cancelling`; its phone gets a `cancel` frame.
    AskPhone,
    /// Not cancellable any more.
    Keep,
}

/// The error of a recipient cancelled before it reached a phone.
pub const CANCELLED: &str = "cancelled";

pub fn on_cancel(status: RecipientStatus, routed: bool) -> OnCancel {
    match (status, routed) {
        (RecipientStatus::Pending | RecipientStatus::Held, false) => OnCancel::Cancelled,
        (RecipientStatus::Pending | RecipientStatus::Queued, true) => OnCancel::AskPhone,
        _ => OnCancel::Keep,
    }
}
