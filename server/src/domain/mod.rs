//! The relay's rules, with no SQL and no I/O.

pub mod recipient;
pub mod state;
pub mod update;

pub use recipient::{Recipient, Target, UNKNOWN_SIM};
pub use state::{DeliveryState, MessageStatus, RecipientStatus};
