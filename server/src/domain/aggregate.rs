//! A message's state from its recipients' states.

use super::state::{MessageStatus, RecipientStatus};

/// The state of a message from the states of its recipients.
///
/// Anything still waiting on the relay wins (`pending`, then `held`, then `cancelling`), then anything in
/// progress on a phone (`queued`, `sending`); when all recipients agree, that state; otherwise
/// `sent` if any recipient reached the network (`sent`, `delivered`, `unknown`), else `failed`.
/// Depends only on the multiset of states (not their order); no recipients is `failed`.
///
/// `suppressed` recipients (never sent: the number opted out) count only when every
/// recipient is suppressed (the message is `suppressed`); otherwise the message follows its
/// other recipients, as if the suppressed ones were not there (`[suppressed, delivered]` is
/// `delivered`, `[suppressed, failed]` is `failed`).
pub fn aggregate(states: impl IntoIterator<Item = RecipientStatus>) -> MessageStatus {
    use RecipientStatus as R;
    let given: Vec<RecipientStatus> = states.into_iter().collect();
    let all: Vec<RecipientStatus> = given
        .iter()
        .copied()
        .filter(|s| *s != R::Suppressed)
        .collect();
    if all.is_empty() && !given.is_empty() {
        return MessageStatus::Suppressed;
    }
    for s in [R::Pending, R::Held, R::Cancelling, R::Queued, R::Sending] {
        if all.contains(&s) {
            return s.into();
        }
    }
    if let Some(first) = all.first()
        && all.iter().all(|s| s == first)
    {
        return (*first).into();
    }
    if all.iter().any(|s| s.reached_network()) {
        MessageStatus::Sent
    } else {
        MessageStatus::Failed
    }
}
