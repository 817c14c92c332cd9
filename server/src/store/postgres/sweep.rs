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

use super::conn::Conn;
use super::get;
use crate::store::Result;

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
