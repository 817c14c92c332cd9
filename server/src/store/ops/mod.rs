//! The store's operations, written once for every backend: read rows through a [`Tx`], ask
//! the relay's rules (`crate::domain`), write what they decided. No SQL here.
//!
//! * [`create`]: creating messages, and the group commit's batch ([`Store::write_batch`]).
//! * [`apply`]: a phone's acks and events ("what happens when a phone reports X" is decided
//!   by `crate::domain::update`).
//! * [`phones`]: pairing, presence, going offline, removal.
//! * [`messages`]: reads, cancelling, deadlines, a message's aggregate state.
//! * [`routing`]: the router's input and storing its decisions as `send` frames.
//! * [`webhooks`]: queueing events, and the outbox the delivery workers drain.
//! * [`keys`], [`pools`]: accounts and API keys; SIM pools and settings.
//! * [`spend`]: spend and volume limits and SMS-pumping protection in the create path.
//! * [`compat`]: the SMS Gateway for Android compatible API's users, settings and tokens.

pub mod apply;
pub mod auto_replies;
pub mod compat;
pub mod create;
pub mod keys;
pub mod messages;
pub mod phones;
pub mod pools;
pub mod routing;
pub mod spend;
pub mod suppressions;
pub mod webhooks;

use super::tx::Tx;
use super::{Result, StoreError};
use crate::domain::update::Facts;

/// The facts `crate::domain::update` asks for, read from the account's rows.
pub(crate) struct TxFacts<'t, 'a> {
    pub tx: &'t mut dyn Tx,
    pub account: &'a str,
}

impl Facts for TxFacts<'_, '_> {
    type Error = StoreError;

    fn pool_has(&mut self, pool: &str, phone: &str, sim: Option<i32>) -> Result<bool> {
        self.tx.pool_has(self.account, pool, phone, sim)
    }

    fn candidate_phones(&mut self, pool: Option<&str>) -> Result<Vec<String>> {
        match pool {
            Some(pool) => self.tx.pool_phones(self.account, pool),
            None => self.tx.account_phones(self.account),
        }
    }
}
