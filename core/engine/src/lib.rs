//! simrelay-core: the engine inside every phone.
//!
//! It owns the durable queue (SQLite), per-SIM pacing, retries, segmentation, delivery-report
//! parsing, the event outbox and the link to the relay. The state machine ([`Engine`]) is
//! sans-IO: every call takes `now` and commits before it returns, so tests run on virtual
//! time and a kill at any point loses nothing. The async shell ([`phone`]) drives it with
//! tokio and a [`Modem`]: the Android shell through a [`CommandQueue`], or the simulated
//! radio ([`sim_modem`]) in tests and the demo.

pub mod clock;
pub mod config;
mod dispatch;
pub mod e2e;
mod engine;
pub mod error;
pub mod link;
pub mod links;
pub mod modem;
mod outbox;
pub mod pacing;
pub mod pdu;
pub mod phone;
mod results;
mod schema;
pub mod sim_modem;

pub use config::{EngineConfig, Passphrase};
pub use engine::{
    Engine, EngineStatus, MAX_TEXT_CHARS, Origin, RecipientView, SimConfig, Submitted, validate,
};
pub use error::{Error, ErrorKind, Result};
pub use modem::{
    Command, CommandQueue, DataSms, MAX_DATA_BYTES, Modem, ModemEvent, Next, PartKey, SendCommand,
};
pub use outbox::{RelayOp, UNKNOWN_SENDER, incoming_id};
pub use simrelay_protocol as protocol;
/// Result codes and segmentation live in the protocol crate (the relay counts parts and names
/// codes the same way); the engine's paths stay.
pub use simrelay_protocol::{codes, segment};
