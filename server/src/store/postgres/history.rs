//! The per-recipient history (step 2): a row per change of a recipient's state, phone, SIM or
//! part counts, written by triggers on `recipients` (per statement for inserts, whose group
//! commit inserts hundreds of rows at once; per row, only on a change, for updates). `n`
//! counts a recipient's changes from 1, as on SQLite (so `simrelay migrate` copies it as is).

use super::{PgTx, get, get_opt_i32, get_rstatus, get_u32};
use crate::store::tx::HistoryRows;
use crate::store::{HistoryRow, Result};

/// Step 2: `recipient_history` and its triggers. Recipients stored before the step get one row
/// each, with their state at the upgrade.
pub const STEP_2: &str = r#"
CREATE TABLE recipient_history (
    mseq            BIGINT NOT NULL,
    idx             BIGINT NOT NULL,
    n               BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    state           TEXT NOT NULL,
    phone_id        TEXT,
    sim             BIGINT,
    parts_sent      BIGINT NOT NULL,
    parts_delivered BIGINT NOT NULL,
    error           TEXT,
    code            BIGINT,
    PRIMARY KEY (mseq, idx, n)
);
INSERT INTO recipient_history
    (mseq, idx, n, at, state, phone_id, sim, parts_sent, parts_delivered, error, code)
    SELECT mseq, idx, 1, updated_at, state, phone_id, sim, parts_sent, parts_delivered, error, code
    FROM recipients ORDER BY mseq, idx;
CREATE FUNCTION recipient_history_insert() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO recipient_history
        (mseq, idx, n, at, state, phone_id, sim, parts_sent, parts_delivered, error, code)
        SELECT mseq, idx, 1, updated_at, state, phone_id, sim, parts_sent, parts_delivered,
               error, code
        FROM new_rows;
    RETURN NULL;
END $$;
CREATE FUNCTION recipient_history_update() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO recipient_history
        (mseq, idx, n, at, state, phone_id, sim, parts_sent, parts_delivered, error, code)
        VALUES (NEW.mseq, NEW.idx,
                (SELECT coalesce(max(n), 0) + 1 FROM recipient_history
                 WHERE mseq = NEW.mseq AND idx = NEW.idx),
                NEW.updated_at, NEW.state, NEW.phone_id, NEW.sim,
                NEW.parts_sent, NEW.parts_delivered, NEW.error, NEW.code);
    RETURN NULL;
END $$;
CREATE TRIGGER recipient_history_insert AFTER INSERT ON recipients
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recipient_history_insert();
CREATE TRIGGER recipient_history_update
    AFTER UPDATE OF state, phone_id, sim, parts_sent, parts_delivered ON recipients
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state
        OR OLD.phone_id IS DISTINCT FROM NEW.phone_id OR OLD.sim IS DISTINCT FROM NEW.sim
        OR OLD.parts_sent IS DISTINCT FROM NEW.parts_sent
        OR OLD.parts_delivered IS DISTINCT FROM NEW.parts_delivered)
    EXECUTE FUNCTION recipient_history_update();
"#;

impl HistoryRows for PgTx<'_> {
    fn recipient_history(&mut self, mseq: i64) -> Result<Vec<HistoryRow>> {
        self.c
            .query(
                "SELECT idx, at, state, phone_id, sim, parts_sent, parts_delivered, error, code
                 FROM recipient_history WHERE mseq = $1 ORDER BY idx, n",
                &[&mseq],
            )?
            .iter()
            .map(|r| {
                Ok(HistoryRow {
                    idx: get_u32(r, 0)?,
                    at: get(r, 1)?,
                    state: get_rstatus(r, 2)?,
                    phone: get(r, 3)?,
                    sim: get_opt_i32(r, 4)?,
                    parts_sent: get_u32(r, 5)?,
                    parts_delivered: get_u32(r, 6)?,
                    error: get(r, 7)?,
                    code: get_opt_i32(r, 8)?,
                })
            })
            .collect()
    }
}
