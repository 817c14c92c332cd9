//! The queries that run on every routing pass, deadline tick or pools view must cost the
//! same whatever the size of the history: measured in SQLite VM steps, not time.

use rusqlite::{Connection, OptionalExtension, StatementStatus, params};

use super::expiry::END_UNROUTED_SQL;
use super::messages::END_SILENT_SQL;
use super::routing::{SENT_SINCE_SQL, UNROUTED_BY_POOL_SQL, UNSENT_SQL};
use super::schema;
use super::webhooks::COUNTS_SQL;

const NOW: i64 = 1_000_000_000;

fn db() -> Connection {
    let mut c = Connection::open_in_memory().expect("in-memory database");
    schema::migrate(&mut c).expect("schema");
    c.execute(
        "INSERT INTO accounts (id, created_at) VALUES ('acc', 0)",
        [],
    )
    .expect("account");
    // What is in flight: one recipient in each waiting state, one unrouted.
    for (i, state) in ["pending", "queued", "sending", "sent", "cancelling"]
        .iter()
        .enumerate()
    {
        add(
            &c,
            &format!("live-{i}"),
            state,
            Some("phone-1"),
            NOW - 1_000,
        );
    }
    add(&c, "unrouted", "pending", None, NOW - 1_000);
    c
}

fn add(c: &Connection, id: &str, state: &str, phone: Option<&str>, at: i64) {
    c.execute(
        "INSERT INTO messages (account_id, id, body_hash, text, priority, delivery_report,
             state, created_at, updated_at) VALUES ('acc', ?1, 'h', 'hello', 0, 1, ?2, ?3, ?3)",
        params![id, state, at],
    )
    .expect("message");
    c.execute(
        "INSERT INTO recipients (mseq, idx, to_number, state, phone_id, sim, parts,
             parts_sent, updated_at, created_at)
         VALUES (last_insert_rowid(), 0, '+15550000000', ?1, ?2, 0, 1, 0, ?3, ?3)",
        params![state, phone, at],
    )
    .expect("recipient");
}

/// Delivered (or failed) a day ago: history the hot queries must not walk.
fn add_history(c: &Connection, from: usize, count: usize) {
    let tx = c.unchecked_transaction().expect("tx");
    for n in from..from + count {
        let state = if n % 10 == 0 { "failed" } else { "delivered" };
        add(
            c,
            &format!("old-{n}"),
            state,
            Some("phone-1"),
            NOW - 86_400_000,
        );
    }
    tx.commit().expect("commit");
}

/// VM steps one run of `sql` with `args` takes.
fn steps(c: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> i32 {
    let mut stmt = c.prepare(sql).expect("prepare");
    let rows = stmt.query_map(args, |_| Ok(())).expect("query");
    assert!(rows.count() < 100, "the fixture keeps little in flight");
    stmt.get_status(StatementStatus::VmStep)
}

fn all_steps(c: &Connection) -> Vec<i32> {
    let since = NOW - 600_000;
    vec![
        steps(c, UNSENT_SQL, &[&"acc"]),
        steps(c, SENT_SINCE_SQL, &[&"acc", &since]),
        steps(c, UNROUTED_BY_POOL_SQL, &[&"acc"]),
        steps(
            c,
            END_SILENT_SQL,
            &[&NOW, &604_800_000_i64, &288_000_000_i64, &10_000],
        ),
    ]
}

#[test]
fn hot_queries_do_not_walk_the_history() {
    let c = db();
    add_history(&c, 0, 200);
    let small = all_steps(&c);
    add_history(&c, 200, 5_000);
    let large = all_steps(&c);
    assert_eq!(
        small, large,
        "VM steps per query with 200 vs 5,200 old messages"
    );
}

/// Waiting for a phone, within their validity: `count` recipients, every other one with a
/// `valid_until` of its own.
fn add_backlog(c: &Connection, from: usize, count: usize) {
    let tx = c.unchecked_transaction().expect("tx");
    for n in from..from + count {
        let id = format!("waiting-{n}");
        add(c, &id, "pending", None, NOW - 1_000);
        if n % 2 == 0 {
            c.execute(
                "UPDATE messages SET valid_until = ?1 WHERE id = ?2",
                params![NOW + 3_600_000, id],
            )
            .expect("message valid_until");
            c.execute(
                "UPDATE recipients SET valid_until = ?1
                 WHERE mseq = (SELECT mseq FROM messages WHERE id = ?2)",
                params![NOW + 3_600_000, id],
            )
            .expect("recipient valid_until");
        }
    }
    tx.commit().expect("commit");
}

#[test]
fn the_expiry_tick_does_not_walk_the_waiting_backlog() {
    let c = db();
    let validity = 604_800_000_i64;
    let expiry =
        |c: &Connection, now: i64| steps(c, END_UNROUTED_SQL, &[&now, &(now - validity), &10_000]);
    add_backlog(&c, 0, 200);
    let small = expiry(&c, NOW);
    add_backlog(&c, 200, 5_000);
    assert_eq!(small, expiry(&c, NOW), "VM steps with 200 vs 5,200 waiting");
    // What has expired is still found, by both deadlines.
    let count = |now: i64| {
        let mut stmt = c.prepare(END_UNROUTED_SQL).expect("prepare");
        stmt.query_map(params![now, now - validity, 10_000], |_| Ok(()))
            .expect("query")
            .count()
    };
    assert_eq!(count(NOW), 0);
    assert_eq!(count(NOW + 3_600_001), 2_600, "the explicit deadlines");
    assert_eq!(
        count(NOW + validity),
        5_201,
        "then the default validity too"
    );
}

#[test]
fn the_hot_queries_still_find_what_is_in_flight() {
    let c = db();
    add_history(&c, 0, 50);
    let count = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> usize {
        let mut stmt = c.prepare(sql).expect("prepare");
        stmt.query_map(args, |_| Ok(())).expect("query").count()
    };
    assert_eq!(
        count(UNSENT_SQL, &[&"acc"]),
        4,
        "pending, queued, sending, cancelling"
    );
    assert_eq!(count(UNROUTED_BY_POOL_SQL, &[&"acc"]), 1);
    // Silent for longer than the wait: every routed, unfinished recipient ends.
    let later = NOW + 2 * 288_000_000_i64 + 604_800_000;
    assert_eq!(
        count(
            END_SILENT_SQL,
            &[&later, &604_800_000_i64, &288_000_000_i64, &10_000]
        ),
        5
    );
    assert_eq!(
        count(
            END_SILENT_SQL,
            &[&NOW, &604_800_000_i64, &288_000_000_i64, &10_000]
        ),
        0
    );
}

#[test]
fn message_counts_follow_every_change_of_state() {
    let c = db();
    add_history(&c, 0, 300);
    c.execute("UPDATE messages SET state = 'sent' WHERE mseq % 7 = 0", [])
        .expect("update");
    // An update that leaves the state as it was changes nothing.
    c.execute("UPDATE messages SET state = state, updated_at = 5", [])
        .expect("touch");
    c.execute("DELETE FROM recipients WHERE mseq % 11 = 0", [])
        .expect("delete recipients");
    c.execute("DELETE FROM messages WHERE mseq % 11 = 0", [])
        .expect("delete");
    let kept: Vec<(String, i64)> = c
        .prepare(COUNTS_SQL)
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    let counted: Vec<(String, i64)> = c
        .prepare("SELECT state, count(*) FROM messages GROUP BY state ORDER BY state")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    let nonzero: Vec<_> = kept.into_iter().filter(|(_, n)| *n != 0).collect();
    assert_eq!(nonzero, counted);
    assert!(
        counted.len() >= 4,
        "several states in the fixture: {counted:?}"
    );
}

#[test]
fn counts_do_not_walk_the_history() {
    let c = db();
    add_history(&c, 0, 200);
    let small = steps(&c, COUNTS_SQL, &[]);
    add_history(&c, 200, 5_000);
    assert_eq!(small, steps(&c, COUNTS_SQL, &[]));
}

#[test]
fn sent_counters_keep_only_the_window() {
    let mut c = db();
    c.execute(
        "INSERT INTO phones (id, account_id, token_hash, created_at) VALUES ('phone-1', 'acc', 't', 0)",
        [],
    )
    .expect("phone");
    let tx = c.transaction().expect("tx");
    let mut t = super::SqliteTx { c: &tx };
    for minute in 0..1_000_i64 {
        for sim in [1, 2] {
            let key = crate::pool_router::SimKey::new("phone-1", sim);
            crate::store::ops::routing::count_sent(&mut t, &key, 3, minute * 60_000 + 5)
                .expect("count");
        }
    }
    tx.commit().expect("commit");
    let rows: i64 = c
        .query_row("SELECT count(*) FROM sim_sent", [], |r| r.get(0))
        .expect("count rows");
    assert_eq!(rows, 2 * 61, "an hour and the current minute, per SIM");
    let now = 999 * 60_000 + 5;
    let mut t = super::SqliteTx { c: &c };
    let sent = crate::store::ops::routing::sent_since(&mut t, "acc", now - 600_000).expect("sent");
    assert_eq!(sent.values().copied().collect::<Vec<_>>(), [30, 30]);
}

/// Times SQLite recompiled `sql` while it ran 50 times with changing values.
fn reprepares(c: &Connection, sql: &str) -> i32 {
    let mut st = c.prepare(sql).expect("prepare");
    for i in 0..50_i64 {
        st.query_row(params![i % 6 + 1, 0], |_| Ok(()))
            .optional()
            .expect("query");
    }
    st.get_status(StatementStatus::RePrepare)
}

#[test]
fn cached_statements_are_not_recompiled_as_their_values_change() {
    // The shape of the lookups that run for every phone event (failover, webhooks): a join on
    // `mseq` with `r.mseq = ?1`. Without the planner stability guarantee SQLite weighs the
    // bound values against the partial indexes and recompiles on most new values.
    let sql = "SELECT m.id, r.to_number, r.state FROM recipients r JOIN messages m USING (mseq)
               WHERE r.mseq = ?1 AND r.idx = ?2";
    let c = db();
    super::configure_common(&c, super::DEFAULT_CACHE_KIB).expect("configure");
    assert_eq!(reprepares(&c, sql), 0, "the store's connections");
    let control = db();
    assert!(
        reprepares(&control, sql) > 5,
        "a connection without it recompiles (the check can fail)"
    );
}
