//! Removing a phone (`DELETE /v1/phones/{id}`): a lost, stolen or retired phone stops
//! authenticating at once, and what it held ends without a duplicate SMS.
//!
//! The phone may still be running somewhere, offline, with its queue. It hands a recipient to
//! its radio only after the relay acknowledged its acceptance (`docs/protocol.md`,
//! "acceptance"), and a removed phone never gets another acknowledgement. So:
//!
//! * a recipient the relay never saw accepted goes back to the router (or `failed`, error
//!   `phone_removed`, when its message was pinned to this phone; `cancelled` when a cancel was
//!   already on its way): the phone cannot send it;
//! * a recipient it accepted (`queued`, `sending`, or `cancelling` after acceptance) ends
//!   `unknown`, error `phone_removed`: it may have been sent, and it is never sent again;
//! * `sent` recipients stay `sent` (their parts left; the report will not come).
//!
//! The row stays, so that messages keep naming the phone; its token hash becomes a value no
//! token hashes to, its frames are dropped and it leaves every pool and prefix rule.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::json;

use super::sqlite_messages::recompute_state;
use super::sqlite_webhooks::{enqueue_event, recipient_webhook};
use super::{Millis, Result};

/// What removing a phone did to its recipients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// Never accepted by the phone: back to the router.
    pub rerouted: u32,
    /// Never accepted, pinned to this phone: `failed`.
    pub failed: u32,
    /// Never accepted, a cancel was on its way: `cancelled`.
    pub cancelled: u32,
    /// Accepted by the phone: `unknown`.
    pub unknown: u32,
}

/// Removes `phone` of `account`; `None` if the account has no such phone (or it is removed).
pub fn remove_phone(
    tx: &Transaction<'_>,
    account: &str,
    phone: &str,
    now: Millis,
) -> Result<Option<Removal>> {
    let live: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM phones WHERE id = ?1 AND account_id = ?2 AND removed_at IS NULL",
            params![phone, account],
            |r| r.get(0),
        )
        .optional()?;
    if live.is_none() {
        return Ok(None);
    }
    tx.execute(
        "UPDATE phones SET token_hash = 'removed:' || id, removed_at = ?2, online = 0
         WHERE id = ?1",
        params![phone, now],
    )?;
    tx.execute("DELETE FROM frames WHERE phone_id = ?1", [phone])?;
    for table in ["pool_members", "pool_prefixes"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE account_id = ?1 AND phone_id = ?2"),
            params![account, phone],
        )?;
    }
    let held: Vec<(i64, u32, String, bool, bool)> = tx
        .prepare(
            "SELECT r.mseq, r.idx, r.state, r.accepted, m.phone_id IS NOT NULL
             FROM recipients r JOIN messages m USING (mseq)
             WHERE r.phone_id = ?1 AND r.state IN ('pending', 'queued', 'sending', 'cancelling')",
        )?
        .query_map([phone], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Removal::default();
    for (mseq, idx, state, accepted, pinned) in &held {
        let end = match (state.as_str(), accepted, pinned) {
            ("pending", false, false) => {
                tx.execute(
                    "UPDATE recipients SET phone_id = NULL, updated_at = ?3
                     WHERE mseq = ?1 AND idx = ?2",
                    params![mseq, idx, now],
                )?;
                out.rerouted += 1;
                continue;
            }
            ("pending", false, true) => {
                out.failed += 1;
                "failed"
            }
            ("cancelling", false, _) => {
                out.cancelled += 1;
                "cancelled"
            }
            _ => {
                out.unknown += 1;
                "unknown"
            }
        };
        tx.execute(
            "UPDATE recipients SET state = ?3, error = 'phone_removed', updated_at = ?4
             WHERE mseq = ?1 AND idx = ?2",
            params![mseq, idx, end, now],
        )?;
        recompute_state(tx, *mseq, now)?;
        recipient_webhook(tx, account, *mseq, *idx, end, now)?;
    }
    enqueue_event(tx, account, "phone.removed", json!({ "phone": phone }), now)?;
    Ok(Some(out))
}
