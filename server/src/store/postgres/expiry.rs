//! Step 4, SQLite's version 11: the deadlines of the recipients that wait for a phone,
//! indexed (see `store::sqlite::expiry` for why). Recipients carry their message's
//! `valid_until` and `created_at`; one partial index for each kind of deadline lets the
//! expiry tick read only the recipients whose deadline has passed.

/// Step 4: the two columns (filled in from the messages) and their partial indexes. The
/// history trigger watches other columns, so the fill adds no history. `created_at` keeps no
/// default once filled: an insert that left it out would fail rather than make a recipient
/// look a lifetime old and expire at once.
pub const STEP_4: &str = r#"
ALTER TABLE recipients ADD COLUMN valid_until BIGINT,
    ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
UPDATE recipients r SET valid_until = m.valid_until, created_at = m.created_at
    FROM messages m WHERE m.mseq = r.mseq;
ALTER TABLE recipients ALTER COLUMN created_at DROP DEFAULT;
CREATE INDEX recipients_unrouted_until ON recipients(valid_until)
    WHERE phone_id IS NULL AND state = 'pending' AND valid_until IS NOT NULL;
CREATE INDEX recipients_unrouted_since ON recipients(created_at)
    WHERE phone_id IS NULL AND state = 'pending' AND valid_until IS NULL;
"#;

/// Unrouted recipients past their deadline: `$1` now, `$2` now less the default validity
/// (what a message without `valid_until` must have been created before), `$3` the limit.
/// Planned for its values on each run: it runs once a second, so planning costs nothing, and
/// the plan follows the tables' current size (the lesson of the group commit's id lookup).
pub const END_UNROUTED_SQL: &str = "(SELECT r.mseq, r.idx, m.account_id, r.state,
         m.valid_until, m.created_at, r.updated_at
     FROM recipients r JOIN messages m USING (mseq)
     WHERE r.phone_id IS NULL AND r.state = 'pending' AND r.valid_until IS NOT NULL
       AND r.valid_until < $1
     LIMIT $3)
     UNION ALL
     (SELECT r.mseq, r.idx, m.account_id, r.state, m.valid_until, m.created_at, r.updated_at
     FROM recipients r JOIN messages m USING (mseq)
     WHERE r.phone_id IS NULL AND r.state = 'pending' AND r.valid_until IS NULL
       AND r.created_at < $2
     LIMIT $3)
     LIMIT $3";
