//! The store's side of several relays on one PostgreSQL, raced directly: two stores (two
//! relays' connection pools) claiming one webhook's deliveries never hold the same one, a
//! claim past its lease passes to the other and the late holder's outcome changes nothing,
//! a sweep finds the deadlines' cluster lock taken and skips, and two stores running the
//! deadlines sweep at the same instant end each recipient once.
//!
//! PostgreSQL-only: they run when `SIMRELAY_TEST_DATABASE_URL` names a database, and say so
//! and pass when it is unset.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use common::{KEY_A, call};
use simrelay_server::store::postgres::scratch;
use simrelay_server::store::{AttemptLog, DeliveryOutcome, Store, now_ms};

/// The URL of a fresh scratch schema with the relay's tables, or `None` (and a notice).
fn schema() -> Option<String> {
    let Some(base) = scratch::test_database_url() else {
        eprintln!("SIMRELAY_TEST_DATABASE_URL is unset: cluster store tests not run");
        return None;
    };
    let url = scratch::scratch_schema(&base).expect("a scratch schema is made");
    drop(Store::open_postgres(&url).expect("the schema is created"));
    Some(url)
}

fn sql(url: &str, text: &str) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("the database answers");
    c.batch_execute(text).expect("the statements run");
}

fn count(url: &str, text: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("the database answers");
    c.query_one(text, &[]).expect("the count runs").get(0)
}

fn log(id: &str) -> AttemptLog {
    AttemptLog {
        webhook_id: "wh".into(),
        event_id: id.into(),
        event: "message.sent".into(),
        at: 1,
        status: Some(200),
        duration_ms: 1,
        error: None,
    }
}

/// `n` pending deliveries of webhook `wh`, due at 1.
fn queue(url: &str, n: usize) {
    let mut text = String::from(
        "INSERT INTO accounts (id, created_at) VALUES ('acc', 1);
         INSERT INTO webhooks (id, account_id, url, events, secret, created_at)
             VALUES ('wh', 'acc', 'http://127.0.0.1:9/h', 'message.sent', 's', 1);",
    );
    for i in 0..n {
        text.push_str(&format!(
            "INSERT INTO webhook_outbox (event_id, webhook_id, event, body, state, next_at,
                 created_at) VALUES ('ev{i}', 'wh', 'message.sent', '{{}}', 'pending', 1, 1);"
        ));
    }
    sql(url, &text);
}

/// Two senders, each on its own store, claim a few at a time as fast as they can until
/// nothing is left: every delivery is claimed exactly once.
#[test]
fn two_senders_never_claim_the_same_delivery() {
    let Some(url) = schema() else { return };
    const N: usize = 200;
    queue(&url, N);
    let start = Arc::new(Barrier::new(2));
    let senders: Vec<_> = ["sender-a", "sender-b"]
        .into_iter()
        .map(|me| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                let store = Store::open_postgres(&url).expect("opens");
                start.wait();
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_deliveries("wh", 10, 3, i64::MAX / 2, me)
                        .expect("claims");
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|d| d.event_id));
                }
            })
        })
        .collect();
    let claimed: Vec<Vec<String>> = senders
        .into_iter()
        .map(|t| t.join().expect("sender thread"))
        .collect();
    let all: Vec<&String> = claimed.iter().flatten().collect();
    let distinct: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), N, "each delivery claimed once");
    assert_eq!(distinct.len(), N);
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM webhook_outbox WHERE claimed_by IN ('sender-a', 'sender-b')"
        ),
        i64::try_from(N).expect("small")
    );
}

/// A claim holds until its lease ends, then another sender may take it; the first holder's
/// late outcome is then ignored (the attempt is still logged), the new holder's counts.
#[test]
fn a_claim_passes_on_after_its_lease_and_the_late_outcome_changes_nothing() {
    let Some(url) = schema() else { return };
    queue(&url, 1);
    let a = Store::open_postgres(&url).expect("opens");
    let b = Store::open_postgres(&url).expect("opens");
    let got = a.claim_deliveries("wh", 10, 5, 1_000, "a").expect("claims");
    assert_eq!(got.len(), 1);
    let id = got[0].id;
    assert!(
        b.claim_deliveries("wh", 999, 5, 2_000, "b")
            .expect("claims")
            .is_empty(),
        "held until the lease ends"
    );
    let again = b
        .claim_deliveries("wh", 1_000, 5, 2_000, "b")
        .expect("claims");
    assert_eq!(again.len(), 1, "the lease ended: b takes it");
    let retry = DeliveryOutcome::Retry {
        at: 5_000,
        error: "HTTP 500".into(),
    };
    assert!(
        !a.record_attempt(id, "a", retry, &log("ev0"))
            .expect("records"),
        "a's claim is gone"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM webhook_outbox
             WHERE state = 'pending' AND attempts = 0 AND claimed_by = 'b' AND next_at = 2000"
        ),
        1,
        "a's late outcome changed nothing"
    );
    assert!(
        b.record_attempt(id, "b", DeliveryOutcome::Delivered, &log("ev0"))
            .expect("records")
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM webhook_outbox
             WHERE state = 'delivered' AND attempts = 1 AND claimed_by IS NULL"
        ),
        1
    );
    assert_eq!(
        count(&url, "SELECT count(*) FROM webhook_attempts"),
        2,
        "both attempts are in the log"
    );
    // A delivered one is never claimed again, nor changed by a stale holder.
    assert!(
        b.claim_deliveries("wh", i64::MAX / 4, 5, i64::MAX / 2, "b")
            .expect("claims")
            .is_empty()
    );
    let dead = DeliveryOutcome::Dead {
        error: "late".into(),
    };
    assert!(
        !b.record_attempt(id, "b", dead, &log("ev0"))
            .expect("records")
    );
}

/// Messages waiting for a SIM, then two stores sweeping the deadlines at the same instant, a
/// few rounds: each recipient ends `expired` once, with one history row and one webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_sweeping_at_once_end_each_recipient_once() {
    if scratch::test_database_url().is_none() {
        eprintln!("SIMRELAY_TEST_DATABASE_URL is unset: cluster store tests not run");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let state = common::state(dir.path()).await;
    let (s, v) = call(
        &state,
        "POST",
        "/v1/webhooks",
        Some(KEY_A),
        Some(r#"{"url":"http://127.0.0.1:9/h","events":["message.failed"],"secret":"s3cret-s3cret-s3cret"}"#),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    const MESSAGES: usize = 30;
    for i in 0..MESSAGES {
        let body = format!(r#"{{"id":"m{i}","to":["+15551230001","+15551230002"],"text":"hi"}}"#);
        let (s, v) = call(&state, "POST", "/v1/messages", Some(KEY_A), Some(&body)).await;
        assert_eq!(s, 202, "{v}");
    }
    let url = std::fs::read_to_string(dir.path().join("test-database-url")).expect("the url");
    let later = now_ms() + 1_000;
    // While another relay holds the deadlines' sweep lock, a sweep here ends nothing.
    let (u, store) = (url.clone(), state.db.store().clone());
    let while_held = tokio::task::spawn_blocking(move || {
        let mut other = postgres::Client::connect(&u, postgres::NoTls).expect("connects");
        let mut tx = other.transaction().expect("begins");
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(
                 current_database() || '.' || current_schema() || '.sweep.deadlines', 0))",
        )
        .expect("the other relay takes the lock");
        let ended = store.expire_unrouted(later, 0).expect("sweeps");
        tx.rollback().expect("releases");
        ended
    })
    .await
    .expect("held sweep");
    assert_eq!(while_held, 0, "the lock's holder does the work");
    let start = Arc::new(Barrier::new(2));
    // The relay's own store, and a second relay's (opened on its thread: off the runtime).
    let sweepers: Vec<_> = [Some(state.db.store().clone()), None]
        .into_iter()
        .map(|store| {
            let (start, url) = (start.clone(), url.clone());
            std::thread::spawn(move || {
                let store = store.unwrap_or_else(|| {
                    Arc::new(Store::open_postgres(&url).expect("a second store opens"))
                });
                let mut ended = 0;
                for _ in 0..5 {
                    start.wait();
                    // Validity 0: every message is past it at `later`.
                    ended += store.expire_unrouted(later, 0).expect("sweeps");
                }
                ended
            })
        })
        .collect();
    let ended: u32 = tokio::task::spawn_blocking(move || {
        sweepers
            .into_iter()
            .map(|t| t.join().expect("sweeper thread"))
            .sum()
    })
    .await
    .expect("join");
    let recipients = i64::try_from(MESSAGES * 2).expect("small");
    assert_eq!(i64::from(ended), recipients, "each recipient ended once");
    let url2 = url.clone();
    let (history, webhooks) = tokio::task::spawn_blocking(move || {
        (
            count(
                &url2,
                "SELECT count(*) FROM recipient_history WHERE state = 'expired'",
            ),
            count(
                &url2,
                "SELECT count(*) FROM webhook_outbox WHERE event = 'message.failed'",
            ),
        )
    })
    .await
    .expect("counts");
    assert_eq!(history, recipients, "one history row each");
    assert_eq!(webhooks, recipients, "one webhook each");
}

/// Two relays a phone is linked to both queue its `system:ping` at the same instant: one
/// ping is queued per interval, whichever relay gets there first; after the interval, the
/// next one.
#[test]
fn a_phone_linked_to_two_relays_is_pinged_once_per_interval() {
    let Some(url) = schema() else { return };
    sql(
        &url,
        "INSERT INTO accounts (id, created_at) VALUES ('acc', 1);
         INSERT INTO phones (id, account_id, token_hash, created_at)
             VALUES ('phone-1', 'acc', 'h1', 1);
         INSERT INTO webhooks (id, account_id, url, events, secret, created_at)
             VALUES ('wh', 'acc', 'http://127.0.0.1:9/h', 'system:ping', 's', 1);",
    );
    let pings = vec![("phone-1".to_string(), serde_json::json!({"status": "pass"}))];
    let start = Arc::new(Barrier::new(2));
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let (url, start, pings) = (url.clone(), start.clone(), pings.clone());
            std::thread::spawn(move || {
                let store = Store::open_postgres(&url).expect("opens");
                let mut queued = Vec::new();
                // Three rounds 10 s apart on an interval of 20 s: rounds 0 and 2 ping.
                for round in 0..3_i64 {
                    start.wait();
                    let at = 1_000_000 + round * 10_000;
                    queued.push(
                        store
                            .queue_pings("acc", &pings, at, 20_000)
                            .expect("queues"),
                    );
                    start.wait();
                }
                queued
            })
        })
        .collect();
    let queued: Vec<Vec<usize>> = relays
        .into_iter()
        .map(|t| t.join().expect("relay thread"))
        .collect();
    let per_round: Vec<usize> = (0..3).map(|r| queued[0][r] + queued[1][r]).collect();
    assert_eq!(per_round, [1, 0, 1], "{queued:?}");
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM webhook_outbox WHERE event = 'system:ping'"
        ),
        2
    );
    // Removing the phone removes its last ping too (no row left behind for ever).
    assert_eq!(count(&url, "SELECT count(*) FROM phone_pings"), 1);
    let store = Store::open_postgres(&url).expect("opens");
    store
        .remove_phone("acc", "phone-1", 2_000_000)
        .expect("removes")
        .expect("the phone was there");
    assert_eq!(count(&url, "SELECT count(*) FROM phone_pings"), 0);
}
