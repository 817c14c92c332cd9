//! The relay's typed states: of a recipient, of a message, of a webhook delivery.
//!
//! A recipient is `pending` while it waits on the relay (for a SIM, or at a phone that has not
//! accepted it yet), `cancelling` while a cancel is on its way to the phone that holds it, and
//! otherwise in one of the protocol's states as its phone reported it. A message's state is an
//! aggregate of its recipients' ([`crate::domain::aggregate`]). Strings appear only where a
//! state is serialised: the text of a database column and the JSON of the API and webhooks
//! ([`RecipientStatus::as_str`], [`RecipientStatus::parse`], `Serialize`).

use std::fmt;

use serde::Serialize;
use simrelay_protocol::RecipientState;

/// The state of one recipient, as the relay keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecipientStatus {
    /// Waits on the relay: for a SIM, or at a phone that has not accepted it yet.
    Pending,
    /// A cancel is on its way to the phone that holds it.
    Cancelling,
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    Expired,
    Cancelled,
    Unknown,
    /// Never sent: the number is on the account's suppression list (it opted out).
    Suppressed,
    /// Kept off the router: its number's prefix is paused (SMS-pumping protection,
    /// `crate::domain::spend`) until a person releases it (then `pending`) or blocks it
    /// (then `failed`, `limit_reached`); past its validity it ends `failed`, `limit_reached`.
    Held,
}

/// The state of a message: the aggregate of its recipients' states (the same twelve names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Pending,
    Cancelling,
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    Expired,
    Cancelled,
    Unknown,
    /// Every recipient is suppressed.
    Suppressed,
    /// A recipient is held (and none waits for a SIM): see [`RecipientStatus::Held`].
    Held,
}

/// The state of one queued webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next attempt (or leased by a worker).
    Pending,
    Delivered,
    /// Gave up after its last retry; `redeliver` queues it again.
    Dead,
    /// Its webhook was deleted before it was delivered.
    Dropped,
}

macro_rules! names {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            /// Every state, in declaration order.
            pub const ALL: &'static [$t] = &[$(<$t>::$v),*];

            /// The name stored in the database and shown in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }

            /// The state of a stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(<$t>::$v),)* _ => None }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::str::FromStr for $t {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, UnknownState> {
                Self::parse(s).ok_or(UnknownState)
            }
        }
    };
}

names!(RecipientStatus {
    Pending = "pending",
    Cancelling = "cancelling",
    Queued = "queued",
    Sending = "sending",
    Sent = "sent",
    Delivered = "delivered",
    Failed = "failed",
    Expired = "expired",
    Cancelled = "cancelled",
    Unknown = "unknown",
    Suppressed = "suppressed",
    Held = "held",
});

names!(MessageStatus {
    Pending = "pending",
    Cancelling = "cancelling",
    Queued = "queued",
    Sending = "sending",
    Sent = "sent",
    Delivered = "delivered",
    Failed = "failed",
    Expired = "expired",
    Cancelled = "cancelled",
    Unknown = "unknown",
    Suppressed = "suppressed",
    Held = "held",
});

names!(DeliveryState {
    Pending = "pending",
    Delivered = "delivered",
    Dead = "dead",
    Dropped = "dropped",
});

/// A stored name that is no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown state name")]
pub struct UnknownState;

impl RecipientStatus {
    /// Final states never change again. `sent` and `unknown` are not final: a late report may
    /// still turn them into `delivered` or `failed`.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Failed | Self::Expired | Self::Cancelled | Self::Suppressed
        )
    }

    /// Still in a phone's queue when routed to one (not yet sent or final): what counts
    /// towards a phone's `outstanding` and a SIM's unsent parts.
    pub fn in_phone_queue(self) -> bool {
        Self::IN_PHONE_QUEUE.contains(&self)
    }

    /// The states of [`Self::in_phone_queue`] (the partial indexes of a backend list them).
    pub const IN_PHONE_QUEUE: &'static [Self] =
        &[Self::Pending, Self::Queued, Self::Sending, Self::Cancelling];

    /// Waiting for a word from the phone that holds it, when routed (what the phone-silence
    /// deadline ends).
    pub const AWAITING_PHONE: &'static [Self] = &[
        Self::Pending,
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Cancelling,
    ];

    /// At least one part reached the network, or may have.
    pub fn reached_network(self) -> bool {
        matches!(self, Self::Sent | Self::Delivered | Self::Unknown)
    }
}

impl From<RecipientState> for RecipientStatus {
    fn from(s: RecipientState) -> Self {
        match s {
            RecipientState::Queued => Self::Queued,
            RecipientState::Sending => Self::Sending,
            RecipientState::Sent => Self::Sent,
            RecipientState::Delivered => Self::Delivered,
            RecipientState::Failed => Self::Failed,
            RecipientState::Expired => Self::Expired,
            RecipientState::Cancelled => Self::Cancelled,
            RecipientState::Unknown => Self::Unknown,
        }
    }
}

impl From<RecipientStatus> for MessageStatus {
    fn from(s: RecipientStatus) -> Self {
        match s {
            RecipientStatus::Pending => Self::Pending,
            RecipientStatus::Cancelling => Self::Cancelling,
            RecipientStatus::Queued => Self::Queued,
            RecipientStatus::Sending => Self::Sending,
            RecipientStatus::Sent => Self::Sent,
            RecipientStatus::Delivered => Self::Delivered,
            RecipientStatus::Failed => Self::Failed,
            RecipientStatus::Expired => Self::Expired,
            RecipientStatus::Cancelled => Self::Cancelled,
            RecipientStatus::Unknown => Self::Unknown,
            RecipientStatus::Suppressed => Self::Suppressed,
            RecipientStatus::Held => Self::Held,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in RecipientStatus::ALL {
            assert_eq!(RecipientStatus::parse(s.as_str()), Some(*s));
            let json = serde_json::to_string(s).expect("serialises");
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(MessageStatus::from(*s).as_str(), s.as_str());
        }
        for s in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(*s));
        }
        assert_eq!(RecipientStatus::parse("healthy"), None);
    }

    #[test]
    fn protocol_states_keep_their_names_and_finality() {
        for name in [
            "queued",
            "sending",
            "sent",
            "delivered",
            "failed",
            "expired",
            "cancelled",
            "unknown",
        ] {
            let p = RecipientState::parse(name).expect("a protocol state");
            let r = RecipientStatus::from(p);
            assert_eq!(r.as_str(), name);
            assert_eq!(r.is_final(), p.is_final());
        }
    }
}
