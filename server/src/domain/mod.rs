//! The relay's rules, with no SQL and no I/O: pure functions over rows and an event.
//!
//! * "What happens when a phone reports X": [`update`] (its header is the table).
//! * A message's state from its recipients': [`aggregate`].
//! * What deadlines end: [`deadline`]. What going offline, removal and cancelling do:
//!   [`phone_gone`]. Which webhooks a change queues, and their payloads: [`webhooks`].
//! * What an incoming STOP / START / HELP does: [`optout`]; what it answers: [`auto_reply`].
//! * Spend and volume limits and SMS-pumping protection: [`spend`].
//! * The typed states, and strings only at serialisation: [`state`].
//!
//! The store (`crate::store::ops`) reads rows, asks these functions, and writes what they
//! decided; the rack simulator (`crate::sims::rack_sim`) asks the same functions over rows it keeps
//! in memory.

pub mod aggregate;
pub mod auto_reply;
pub mod deadline;
pub mod optout;
pub mod phone_gone;
pub mod recipient;
pub mod smsgate;
pub mod spend;
pub mod state;
#[cfg(test)]
mod tests;
pub mod update;
pub mod webhooks;

pub use aggregate::aggregate;
pub use recipient::{Recipient, Target, UNKNOWN_SIM};
pub use state::{DeliveryState, MessageStatus, RecipientStatus};
