//! A recipient as the relay's rules see it: its state, who holds it, what it has tried, and
//! where its message may go. Plain data: the store reads it from a row, the rack simulator
//! keeps it in memory.

use super::state::RecipientStatus;
use crate::pool_router::SimKey;

/// Where a message may go, as its client asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Pinned to this phone.
    pub phone: Option<String>,
    /// Pinned to this SIM (of whichever phone takes it, or of the pinned phone).
    pub sim: Option<i32>,
    /// To a SIM of this pool of the account.
    pub pool: Option<String>,
}

/// One recipient, with what the rules need to decide on an update about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub status: RecipientStatus,
    /// The phone it is routed to (its owner); `None` while it waits for a SIM.
    pub phone: Option<String>,
    /// The SIM it is routed to or was reported on.
    pub sim: Option<i32>,
    /// Its owner reported it accepted (`queued` or later) at least once.
    pub accepted: bool,
    pub parts_sent: u32,
    /// SIMs that reported it unsent, and phones whose late copy was cancelled (with
    /// [`UNKNOWN_SIM`]): it never goes back to their phones.
    pub tried: Vec<SimKey>,
    pub target: Target,
}

/// The SIM of a `tried` entry for a phone that had the recipient taken away before it sent.
pub const UNKNOWN_SIM: i32 = -1;

impl Recipient {
    /// Waiting for a SIM: not routed, `pending`.
    pub fn unrouted(&self) -> bool {
        self.phone.is_none() && self.status == RecipientStatus::Pending
    }

    /// Whether `phone` had it before (it is in `tried`).
    pub fn tried_phone(&self, phone: &str) -> bool {
        self.tried.iter().any(|k| k.phone == phone)
    }
}
