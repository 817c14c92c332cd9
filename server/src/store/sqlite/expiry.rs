//! Version 11: the deadlines of the recipients that wait for a phone, indexed.
//!
//! Every second the relay ends the unrouted recipients whose message's validity has passed
//! (its `valid_until`, or its creation plus the relay's default validity). That query read
//! every waiting recipient and its message, in the write transaction: with a backlog of
//! 80,000 (no phone online) it took up to a quarter of PostgreSQL's CPU under load and stalled
//! the group commit each second. Recipients now carry their message's `valid_until` and
//! `created_at`, with one partial index for each kind of deadline, so the tick reads only the
//! recipients whose deadline has passed.

/// Version 11: the two columns (filled in from the messages) and their partial indexes. The
/// history triggers watch other columns, so the fill adds no history.
pub const V11_UPGRADE: &str = r#"
ALTER TABLE recipients ADD COLUMN valid_until INTEGER;
ALTER TABLE recipients ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
UPDATE recipients SET
    valid_until = (SELECT m.valid_until FROM messages m WHERE m.mseq = recipients.mseq),
    created_at = (SELECT m.created_at FROM messages m WHERE m.mseq = recipients.mseq);
CREATE INDEX recipients_unrouted_until ON recipients(valid_until)
    WHERE phone_id IS NULL AND state = 'pending' AND valid_until IS NOT NULL;
CREATE INDEX recipients_unrouted_since ON recipients(created_at)
    WHERE phone_id IS NULL AND state = 'pending' AND valid_until IS NULL;
"#;

/// Unrouted recipients past their deadline: `?1` now, `?2` now less the default validity
/// (what a message without `valid_until` must have been created before), `?3` the limit.
pub(crate) const END_UNROUTED_SQL: &str = "SELECT r.mseq, r.idx, m.account_id, r.state,
         m.valid_until, m.created_at, r.updated_at
     FROM recipients r INDEXED BY recipients_unrouted_until CROSS JOIN messages m USING (mseq)
     WHERE r.phone_id IS NULL AND r.state = 'pending' AND r.valid_until IS NOT NULL
       AND r.valid_until < ?1
     UNION ALL
     SELECT r.mseq, r.idx, m.account_id, r.state, m.valid_until, m.created_at, r.updated_at
     FROM recipients r INDEXED BY recipients_unrouted_since CROSS JOIN messages m USING (mseq)
     WHERE r.phone_id IS NULL AND r.state = 'pending' AND r.valid_until IS NULL
       AND r.created_at < ?2
     LIMIT ?3";
