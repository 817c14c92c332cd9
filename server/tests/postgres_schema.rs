//! The PostgreSQL schema: a fresh database is created at the newest version, a database made
//! by the frozen version 1 (`postgres_schema_v1.sql`) is migrated with its rows kept, a
//! database newer than the relay is refused, and so is a URL the relay cannot honour.
//!
//! PostgreSQL-only by nature; they run when `SIMRELAY_TEST_DATABASE_URL` names a database
//! (`.ci/run` starts one with `scripts/postgres.sh`), and say so and pass when it is unset.

use postgres::{Client, NoTls};
use simrelay_server::store::StoreError;
use simrelay_server::store::postgres::{PgBackend, schema, scratch};

const FROZEN_V1: &str = include_str!("postgres_schema_v1.sql");

/// A scratch schema's URL, or `None` (and a note) without a test database.
fn scratch_url() -> Option<String> {
    let Some(base) = scratch::test_database_url() else {
        eprintln!("SIMRELAY_TEST_DATABASE_URL is unset: PostgreSQL schema tests not run");
        return None;
    };
    Some(scratch::scratch_schema(&base).expect("a scratch schema is made"))
}

fn client(url: &str) -> Client {
    Client::connect(url, NoTls).expect("the test database answers")
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).expect("query runs").get(0)
}

#[test]
fn a_fresh_database_gets_the_newest_schema_and_reopens() {
    let Some(url) = scratch_url() else { return };
    drop(PgBackend::open(&url).expect("creates the schema"));
    drop(PgBackend::open(&url).expect("opens it again"));
    let mut c = client(&url);
    assert_eq!(
        count(&mut c, "SELECT version FROM schema_version"),
        schema::VERSION
    );
    assert_eq!(count(&mut c, "SELECT count(*) FROM schema_version"), 1);
    for table in schema::TABLES {
        assert_eq!(count(&mut c, &format!("SELECT count(*) FROM {table}")), 0);
    }
    // The partial indexes are there, with their predicates.
    let mut partial: Vec<String> = c
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()
               AND indexdef LIKE '% WHERE %' ORDER BY indexname",
            &[],
        )
        .expect("query runs")
        .iter()
        .map(|r| r.get(0))
        .collect();
    partial.sort();
    assert_eq!(
        partial,
        [
            "recipients_held",
            "recipients_unrouted",
            "recipients_unrouted_since",
            "recipients_unrouted_until",
            "recipients_unsent",
            "recipients_waiting",
            "webhook_outbox_due",
            "webhook_outbox_endpoint"
        ]
    );
}

#[test]
fn the_frozen_version_1_migrates_and_keeps_its_rows() {
    let Some(url) = scratch_url() else { return };
    let mut c = client(&url);
    c.batch_execute(FROZEN_V1).expect("the frozen schema loads");
    drop(PgBackend::open(&url).expect("migrates from version 1"));
    assert_eq!(
        count(&mut c, "SELECT version FROM schema_version"),
        schema::VERSION
    );
    for (table, n) in [
        ("accounts", 1),
        ("api_keys", 1),
        ("phones", 1),
        ("messages", 1),
        ("recipients", 1),
        ("inbox", 1),
        ("webhooks", 1),
    ] {
        assert_eq!(
            count(&mut c, &format!("SELECT count(*) FROM {table}")),
            n,
            "{table}"
        );
    }
    let text: String = c
        .query_one("SELECT text FROM messages WHERE id = 'msg-1'", &[])
        .expect("the message is kept")
        .get(0);
    assert_eq!(text, "hello");
    // Step 4 copied each recipient's deadline inputs from its message.
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM recipients r JOIN messages m USING (mseq)
             WHERE r.created_at = m.created_at
               AND r.valid_until IS NOT DISTINCT FROM m.valid_until"
        ),
        1
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT n FROM message_counts WHERE state = 'pending'"
        ),
        1
    );
    // The counts follow a change of state, and only a change.
    c.batch_execute(
        "UPDATE messages SET state = 'sent'; UPDATE messages SET updated_at = 2000;
         INSERT INTO messages (account_id, id, body_hash, text, priority, delivery_report,
             state, created_at, updated_at)
         SELECT 'acc-1', 'bulk-' || g, 'h', 't', 0, false, 'pending', 1, 1
         FROM generate_series(1, 3) g",
    )
    .expect("updates");
    let n = |c: &mut Client, s: &str| {
        count(
            c,
            &format!("SELECT coalesce(sum(n), 0)::bigint FROM message_counts WHERE state = '{s}'"),
        )
    };
    assert_eq!((n(&mut c, "pending"), n(&mut c, "sent")), (3, 1));
}

#[test]
fn a_database_newer_than_the_relay_is_refused() {
    let Some(url) = scratch_url() else { return };
    drop(PgBackend::open(&url).expect("creates the schema"));
    let mut c = client(&url);
    c.execute(
        "UPDATE schema_version SET version = $1",
        &[&(schema::VERSION + 1)],
    )
    .expect("version bumped");
    let err = PgBackend::open(&url).expect_err("a newer schema is refused");
    assert!(err.to_string().contains("newer than this relay"), "{err}");
}

#[test]
fn sslmode_require_and_bad_urls_are_refused_with_a_clear_error() {
    let err = PgBackend::open("postgres://relay@127.0.0.1:1/db?sslmode=require")
        .expect_err("no TLS client");
    assert!(err.to_string().contains("sslmode=require"), "{err}");
    let err = PgBackend::open("postgres://relay:s3cret-pass@[nonsense").expect_err("bad URL");
    assert!(!err.to_string().contains("s3cret-pass"), "{err}");
}

#[test]
fn errors_name_the_constraint_never_the_values() {
    let Some(url) = scratch_url() else { return };
    drop(PgBackend::open(&url).expect("creates the schema"));
    let mut c = client(&url);
    c.batch_execute("INSERT INTO accounts (id, created_at) VALUES ('+15550001234', 1)")
        .expect("row");
    let e = c
        .batch_execute("INSERT INTO accounts (id, created_at) VALUES ('+15550001234', 1)")
        .expect_err("duplicate key");
    let text = StoreError::from_pg(e).to_string();
    assert!(text.contains("23505"), "{text}");
    assert!(text.contains("accounts_pkey"), "{text}");
    assert!(!text.contains("15550001234"), "{text}");
}

#[test]
fn a_version_4_database_gains_the_suppression_list() {
    let Some(url) = scratch_url() else { return };
    let mut c = client(&url);
    for step in &schema::STEPS[..4] {
        c.batch_execute(step).expect("the older steps load");
    }
    c.batch_execute(
        "CREATE TABLE schema_version (version BIGINT NOT NULL);
         INSERT INTO schema_version VALUES (4);
         INSERT INTO accounts (id, created_at) VALUES ('acc', 1);",
    )
    .expect("version 4 is recorded");
    drop(PgBackend::open(&url).expect("migrates from version 4"));
    assert_eq!(
        count(&mut c, "SELECT version FROM schema_version"),
        schema::VERSION
    );
    c.batch_execute(
        "INSERT INTO suppressions (account_id, number, keyword, created_at)
         VALUES ('acc', '+15550001111', 'manual', 1)",
    )
    .expect("the list takes a number");
    let dup = c.batch_execute(
        "INSERT INTO suppressions (account_id, number, keyword, created_at)
         VALUES ('acc', '+15550001111', 'stop', 2)",
    );
    assert!(dup.is_err(), "one entry per account and number");
    assert_eq!(count(&mut c, "SELECT count(*) FROM accounts"), 1);
}

/// The step that adds the webhook claims (a cluster's senders), from the version before it:
/// a pending delivery is kept, starts unclaimed, and is claimable.
#[test]
fn the_webhook_claims_step_keeps_pending_deliveries_unclaimed() {
    let Some(url) = scratch_url() else { return };
    let at = schema::STEPS
        .iter()
        .position(|s| *s == simrelay_server::store::postgres::STEP_WEBHOOK_CLAIMS)
        .expect("the claims step is one of the steps");
    let mut c = client(&url);
    for step in &schema::STEPS[..at] {
        c.batch_execute(step).expect("the older steps load");
    }
    c.batch_execute(&format!(
        "CREATE TABLE schema_version (version BIGINT NOT NULL);
         INSERT INTO schema_version VALUES ({at});
         INSERT INTO accounts (id, created_at) VALUES ('acc', 1);
         INSERT INTO webhooks (id, account_id, url, events, secret, created_at)
             VALUES ('wh', 'acc', 'http://127.0.0.1:9/h', 'message.sent', 's', 1);
         INSERT INTO webhook_outbox (event_id, webhook_id, event, body, state, next_at,
             created_at) VALUES ('ev1', 'wh', 'message.sent', '{{}}', 'pending', 5, 5);"
    ))
    .expect("the older version is recorded");
    let store = simrelay_server::store::Store::open_postgres(&url).expect("migrates");
    assert_eq!(
        count(&mut c, "SELECT version FROM schema_version"),
        schema::VERSION
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM webhook_outbox WHERE claimed_by IS NULL AND claim_until IS NULL"
        ),
        1
    );
    let claimed = store
        .claim_deliveries("wh", 10, 5, 1_000, "sender-a")
        .expect("claims");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event_id, "ev1");
    let holder: String = c
        .query_one("SELECT claimed_by FROM webhook_outbox", &[])
        .expect("row")
        .get(0);
    assert_eq!(holder, "sender-a");
}

#[test]
fn the_version_before_them_gains_the_spend_limits() {
    let Some(url) = scratch_url() else { return };
    let at = schema::STEPS
        .iter()
        .position(|s| *s == simrelay_server::store::postgres::LIMITS_STEP)
        .expect("the limits step is one of the steps");
    let mut c = client(&url);
    for step in &schema::STEPS[..at] {
        c.batch_execute(step).expect("the older steps load");
    }
    c.batch_execute(&format!(
        "CREATE TABLE schema_version (version BIGINT NOT NULL);
         INSERT INTO schema_version VALUES ({at});
         INSERT INTO accounts (id, created_at) VALUES ('acc', 1);"
    ))
    .expect("the older version is recorded");
    drop(PgBackend::open(&url).expect("migrates from the version before"));
    assert_eq!(
        count(&mut c, "SELECT version FROM schema_version"),
        schema::VERSION
    );
    c.batch_execute(
        "INSERT INTO account_usage (account_id, counter, parts) VALUES ('acc', 'day:2026-12-04', 3)",
    )
    .expect("a counter row");
    let dup = c.batch_execute(
        "INSERT INTO account_usage (account_id, counter, parts) VALUES ('acc', 'day:2026-12-04', 1)",
    );
    assert!(dup.is_err(), "one counter per account and period");
    assert_eq!(count(&mut c, "SELECT count(*) FROM account_limits"), 0);
    assert_eq!(count(&mut c, "SELECT count(*) FROM accounts"), 1);
}

#[test]
fn the_version_before_them_gains_the_opt_out_settings() {
    let Some(url) = scratch_url() else { return };
    let at = schema::STEPS
        .iter()
        .position(|s| *s == simrelay_server::store::postgres::STEP_OPT_OUT_REPLIES)
        .expect("the opt-out step is one of the steps");
    let mut c = client(&url);
    for step in &schema::STEPS[..at] {
        c.batch_execute(step).expect("the older steps load");
    }
    c.batch_execute(&format!(
        "CREATE TABLE schema_version (version BIGINT NOT NULL);
         INSERT INTO schema_version VALUES ({at});
         INSERT INTO accounts (id, created_at) VALUES ('acc', 1);
         INSERT INTO messages (account_id, id, body_hash, text, priority, delivery_report,
             state, created_at, updated_at, parts)
         VALUES ('acc', 'old', 'h', 'hi', 0, TRUE, 'pending', 1, 1, 1);"
    ))
    .expect("the older version is recorded");
    drop(PgBackend::open(&url).expect("migrates from the version before"));
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM messages
             WHERE suppression_override IS NULL AND NOT overrode_suppression"
        ),
        1,
        "old messages override nothing"
    );
    c.batch_execute(
        "INSERT INTO opt_out_settings (account_id, updated_at) VALUES ('acc', 1);
         INSERT INTO auto_replies (account_id, number, kind, day, message_id, created_at)
         VALUES ('acc', '+15550001111', 'opt_out', 20454, 'm', 1)",
    )
    .expect("the new tables take rows");
    let dup = c.batch_execute(
        "INSERT INTO auto_replies (account_id, number, kind, day, message_id, created_at)
         VALUES ('acc', '+15550001111', 'opt_out', 20454, 'm2', 2)",
    );
    assert!(dup.is_err(), "one reply per account, number, kind and day");
}

#[test]
fn the_version_before_them_gains_the_cluster_tables_and_wake_ups() {
    let Some(url) = scratch_url() else { return };
    let at = schema::STEPS
        .iter()
        .position(|s| *s == simrelay_server::store::postgres::CLUSTER_STEP)
        .expect("the cluster step is one of the steps");
    let mut c = client(&url);
    for step in &schema::STEPS[..at] {
        c.batch_execute(step).expect("the older steps load");
    }
    c.batch_execute(&format!(
        "CREATE TABLE schema_version (version BIGINT NOT NULL);
         INSERT INTO schema_version VALUES ({at});
         INSERT INTO accounts (id, created_at) VALUES ('acc', 1);
         INSERT INTO phones (id, account_id, token_hash, created_at) VALUES ('ph', 'acc', 't', 1);"
    ))
    .expect("the older version is recorded");
    drop(PgBackend::open(&url).expect("migrates from the version before"));
    assert_eq!(
        count(&mut c, "SELECT version FROM schema_version"),
        schema::VERSION
    );
    for table in ["cluster_nodes", "phone_links", "route_leases"] {
        assert_eq!(count(&mut c, &format!("SELECT count(*) FROM {table}")), 0);
    }
    // Frames queued for a phone are announced at commit, with the schema's name.
    let mut l = client(&url);
    l.batch_execute("LISTEN simrelay_wake").expect("listens");
    c.batch_execute(
        "INSERT INTO frames (phone_id, seq, body, created_at) VALUES ('ph', 1, '{}', 1)",
    )
    .expect("a frame");
    let schema: String = c
        .query_one("SELECT current_schema()::text", &[])
        .expect("schema")
        .get(0);
    let n = {
        use postgres::fallible_iterator::FallibleIterator;
        l.notifications()
            .timeout_iter(std::time::Duration::from_secs(10))
            .next()
            .expect("notifications read")
            .expect("a notification within 10 s")
    };
    assert_eq!(n.payload(), format!("{schema} f ph"));
    assert_eq!(count(&mut c, "SELECT count(*) FROM accounts"), 1);
}
