//! Cluster-wide locks of the periodic sweeps (the deadlines' expiry, ...), so that relays
//! sharing the database make each sweep's changes once.
//!
//! Every relay runs the sweeps on its own timer. A sweep is a read of what is due and the
//! writes that follow, in one write transaction; it begins by taking a transaction-level
//! advisory lock named after the sweep and the schema (`pg_try_advisory_xact_lock`, released
//! at commit or rollback, also when the connection dies). A relay that finds the lock taken
//! skips the run: the holder is making the same changes. The rows are read after the lock is
//! held (each statement of a READ COMMITTED transaction sees what committed before it), so a
//! run after another one's commit finds those recipients ended and ends nothing again.
//!
//! The chosen way is the lock, not conditional updates: a sweep's outcome is more than one
//! row (the recipient, its message's aggregate state, a history row, the webhooks), and the
//! lock keeps all of them together with no change to the shared write paths.
//!
//! The compatible API's `system:ping` is made by every relay a phone is linked to; which of
//! them pings in an interval is a conditional upsert of the phone's last ping
//! ([`STEP_PHONE_PINGS`]): the first relay whose interval is up wins, the others find it done.

use super::conn::Conn;
use super::get;
use crate::store::{Millis, Result};

/// When each phone was last pinged (`system:ping`), by whichever relay (a step of
/// `schema::STEPS`). A phone's row goes with the phone (`remove_phone_row`).
pub const STEP_PHONE_PINGS: &str = r#"
CREATE TABLE phone_pings (
    phone_id TEXT PRIMARY KEY,
    at       BIGINT NOT NULL
);
"#;

/// Of `phones`, those not pinged by any relay in the last `every` ms, now marked pinged.
pub(super) fn claim_pings(
    c: &mut Conn,
    phones: &[&str],
    now: Millis,
    every: Millis,
) -> Result<Vec<String>> {
    if phones.is_empty() {
        return Ok(Vec::new());
    }
    c.query(
        "INSERT INTO phone_pings (phone_id, at) SELECT p, $2 FROM unnest($1::text[]) AS u(p)
         ON CONFLICT (phone_id) DO UPDATE SET at = EXCLUDED.at
             WHERE phone_pings.at <= $2 - $3
         RETURNING phone_id",
        &[&phones, &now, &every],
    )?
    .iter()
    .map(|r| get(r, 0))
    .collect()
}

/// Tries the lock of sweep `name` in the current transaction; false when another holds it.
pub(super) fn try_lock(c: &mut Conn, name: &str) -> Result<bool> {
    let row = c.query_one(
        "SELECT pg_try_advisory_xact_lock(
             hashtextextended(current_database() || '.' || current_schema() || '.sweep.' || $1,
                              0))",
        &[&name],
    )?;
    get(&row, 0)
}
