//! simrelay-core: the engine inside every phone.
//!
//! It owns the durable queue (SQLite), per-SIM pacing, retries, segmentation, delivery-report
//! parsing, the event outbox and the link to the relay. The state machine ([`Engine`]) is
//! sans-IO: every call takes `now` and returns what to do, so tests run on virtual time. The
//! async shell ([`phone`]) drives it with tokio and a [`Modem`]: the Android shell through a
//! [`CommandQueue`], or the simulated radio ([`sim_modem`]) in tests and the demo.

pub mod codes;
pub mod modem;
pub mod pdu;
pub mod segment;

pub use modem::{Command, CommandQueue, Modem, ModemEvent, Next, PartKey, SendCommand};
pub use simrelay_protocol as protocol;
