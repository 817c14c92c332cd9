//! Several relays on one PostgreSQL (issue 17, part 2), as separate `simrelay serve`
//! processes with one webhook receiver: each event is delivered once by the cluster, a relay
//! killed with deliveries claimed loses them to another after the lease, the deadlines sweep
//! of two relays ends each recipient once, and a relay lives through PostgreSQL going away
//! (503 `store_unavailable`) and resumes by itself when it is back.
//!
//! PostgreSQL-only: they run when `SIMRELAY_TEST_DATABASE_URL` names a database (the restart
//! test makes a private cluster of its own with `scripts/postgres.sh`), and say so and pass
//! when it is unset.

mod chaos_support;
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chaos_support::private_pg::PrivatePg;
use chaos_support::{Proc, pg_node};
use common::{Http, KEY_A, RawPhone, paired_phone, update};
use serde_json::{Value, json};
use simrelay_protocol::{PhoneFrame, RecipientState, RelayFrame};
use simrelay_server::store::now_ms;
use simrelay_server::store::postgres::scratch;
use simrelay_server::time_fmt::fmt_ms;
use tokio::sync::watch;

const SECRET: &str = "cluster-webhook-secret-0123456789";

/// A scratch schema on the test database, or `None` (and a notice) without one.
fn scratch_url() -> Option<String> {
    let Some(base) = scratch::test_database_url() else {
        eprintln!("SIMRELAY_TEST_DATABASE_URL is unset: cluster tests (PostgreSQL only) not run");
        return None;
    };
    Some(scratch::scratch_schema(&base).expect("a scratch schema is made"))
}

/// One count from the database at `url`.
async fn pg_count(url: &str, sql: &'static str) -> i64 {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("the database answers");
        c.query_one(sql, &[]).expect("the count runs").get(0)
    })
    .await
    .expect("the count's thread")
}

/// Waits (guarded by `secs`) until `check` holds, checking every 20 ms of the relay's work.
async fn wait_until<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A webhook receiver on 127.0.0.1:0 that checks signatures. While `hold` is on it takes
/// requests and never answers them (an attempt in flight); otherwise it answers 200 and
/// records the event id and when it answered.
struct Receiver {
    url: String,
    hold: watch::Sender<bool>,
    held: Arc<Mutex<Vec<String>>>,
    answered: Arc<Mutex<Vec<(String, i64)>>>,
}

impl Receiver {
    async fn start() -> Self {
        let (hold, _) = watch::channel(false);
        let held: Arc<Mutex<Vec<String>>> = Arc::default();
        let answered: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
        let (h, hd, an) = (hold.clone(), held.clone(), answered.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (h, hd, an) = (h.clone(), hd.clone(), an.clone());
            async move {
                let head = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let body = String::from_utf8(body.to_vec()).expect("utf-8");
                let ts: i64 = head("x-simrelay-timestamp").parse().expect("timestamp");
                assert_eq!(
                    head("x-simrelay-signature"),
                    simrelay_server::webhooks::sign(SECRET, ts, &body),
                    "the signature verifies"
                );
                let id = head("x-simrelay-event-id");
                if *h.borrow() {
                    hd.lock().expect("held").push(id.clone());
                    std::future::pending::<()>().await;
                }
                an.lock().expect("answered").push((id, now_ms()));
                StatusCode::OK
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            hold,
            held,
            answered,
        }
    }

    fn held(&self) -> Vec<String> {
        self.held.lock().expect("held").clone()
    }

    fn answered(&self) -> Vec<(String, i64)> {
        self.answered.lock().expect("answered").clone()
    }

    /// How often each event id was answered.
    fn answers_per_event(&self) -> HashMap<String, usize> {
        let mut n = HashMap::new();
        for (id, _) in self.answered() {
            *n.entry(id).or_insert(0) += 1;
        }
        n
    }
}

/// A relay process on `url`'s database, serving on 127.0.0.1:0 with its data in `dir`.
async fn node(dir: &Path, url: &str, webhook_timeout_ms: u64) -> (Proc, SocketAddr) {
    let extra = format!(
        "webhook_timeout_ms = {webhook_timeout_ms}\n\
         webhook_backoff_ms = 200\n\
         webhook_allow_cidrs = [\"127.0.0.1/32\"]\n"
    );
    pg_node(dir, url, KEY_A, &extra).await
}

async fn register(http: &Http, url: &str) -> String {
    let (s, v) = http
        .req(
            "POST",
            "/v1/webhooks",
            KEY_A,
            Some(
                json!({"url": url, "events": ["message.failed", "message.sent"],
                        "secret": SECRET}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().expect("id").to_string()
}

/// Posts a message to `to` valid for `valid_ms` more milliseconds.
async fn post_expiring(http: &Http, id: &str, to: &[&str], valid_ms: i64) {
    let (s, v) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"id": id, "to": to, "text": "hello",
                        "valid_until": fmt_ms(now_ms() + valid_ms)})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
}

/// Two relays run the deadlines sweep and the webhook sender on one database: every
/// recipient of messages posted to either ends `expired` once (one history row, one
/// `message.failed` event) and each event reaches the receiver exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_expire_each_recipient_once_and_deliver_each_event_once() {
    let Some(url) = scratch_url() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start().await;
    let (a, addr_a) = node(&tmp.path().join("a"), &url, 5_000).await;
    let (b, addr_b) = node(&tmp.path().join("b"), &url, 5_000).await;
    let (ha, hb) = (
        Http::new(&format!("http://{addr_a}")),
        Http::new(&format!("http://{addr_b}")),
    );
    register(&ha, &rx.url).await;
    const MESSAGES: usize = 12;
    const TO: [&str; 3] = ["+15551230001", "+15551230002", "+15551230003"];
    for i in 0..MESSAGES {
        let http = if i % 2 == 0 { &ha } else { &hb };
        post_expiring(http, &format!("exp-{i}"), &TO, 1_500).await;
    }
    let events = MESSAGES * TO.len();
    wait_until("every recipient's event answered", 60, || async {
        rx.answered().len() >= events
    })
    .await;
    // Nothing left to send anywhere, then nothing more arrived.
    wait_until("the outbox settled", 30, || async {
        pg_count(
            &url,
            "SELECT count(*) FROM webhook_outbox WHERE state <> 'delivered'",
        )
        .await
            == 0
    })
    .await;
    let per_event = rx.answers_per_event();
    assert_eq!(per_event.len(), events, "one event per recipient");
    assert!(
        per_event.values().all(|n| *n == 1),
        "each event once: {per_event:?}"
    );
    assert_eq!(rx.answered().len(), events);
    assert_eq!(
        pg_count(&url, "SELECT count(*) FROM webhook_outbox").await,
        i64::try_from(events).expect("small")
    );
    assert_eq!(
        pg_count(
            &url,
            "SELECT count(*) FROM recipient_history WHERE state = 'expired'"
        )
        .await,
        i64::try_from(events).expect("small"),
        "one expired history row per recipient"
    );
    for i in 0..MESSAGES {
        let (s, v) = hb
            .req("GET", &format!("/v1/messages/exp-{i}"), KEY_A, None)
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["state"], "expired", "{v}");
    }
    a.terminate().await;
    b.terminate().await;
}

/// A relay killed (SIGKILL) while its attempts are in flight keeps its claims until their
/// lease ends; then the other relay makes those deliveries, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_its_claims_to_the_other_after_the_lease() {
    let Some(url) = scratch_url() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let rx = Receiver::start().await;
    rx.hold.send_replace(true);
    // 2 s attempts: a 4 s lease (`webhooks::lease`).
    let (a, addr_a) = node(&tmp.path().join("a"), &url, 2_000).await;
    let ha = Http::new(&format!("http://{addr_a}"));
    register(&ha, &rx.url).await;
    // As many events as one endpoint has attempts in flight: all claimed by `a` at once.
    let n = usize::try_from(simrelay_server::webhooks::PER_ENDPOINT).expect("small");
    let to: Vec<String> = (0..n).map(|i| format!("+1555123{i:04}")).collect();
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    post_expiring(&ha, "claimed", &to, 1_000).await;
    wait_until("node a's attempts are in flight", 60, || async {
        rx.held().len() >= n
    })
    .await;
    a.kill9().await;
    let killed_at = now_ms();
    let claims = pg_count(
        &url,
        "SELECT count(*) FROM webhook_outbox
         WHERE state = 'pending' AND claimed_by IS NOT NULL",
    )
    .await;
    assert_eq!(claims, i64::try_from(n).expect("small"), "a's claims stay");
    let lease_end = pg_count(&url, "SELECT min(claim_until) FROM webhook_outbox").await;
    assert!(lease_end > killed_at, "the lease outlives the kill");
    rx.hold.send_replace(false);
    let (b, _) = node(&tmp.path().join("b"), &url, 2_000).await;
    wait_until("node b delivers the claimed events", 60, || async {
        rx.answered().len() >= n
    })
    .await;
    wait_until("the outbox settled", 30, || async {
        pg_count(
            &url,
            "SELECT count(*) FROM webhook_outbox WHERE state <> 'delivered'",
        )
        .await
            == 0
    })
    .await;
    let answered = rx.answered();
    assert_eq!(answered.len(), n, "each once: {answered:?}");
    assert_eq!(rx.answers_per_event().len(), n);
    let mut held = rx.held();
    let mut delivered: Vec<String> = answered.iter().map(|(id, _)| id.clone()).collect();
    held.sort();
    delivered.sort();
    assert_eq!(held, delivered, "the same events, made again by b");
    assert!(
        answered.iter().all(|(_, at)| *at >= lease_end),
        "not before a's lease ended ({lease_end}): {answered:?}"
    );
    b.terminate().await;
}

async fn next_send(phone: &mut RawPhone) -> Option<String> {
    loop {
        match phone.recv().await? {
            RelayFrame::Send { message, .. } => return Some(message.id),
            _ => continue,
        }
    }
}

/// PostgreSQL stops at once (as a crash) under a running relay: requests get 503
/// `store_unavailable` and nothing is stored, the process lives, and once PostgreSQL is back
/// the same relay stores, routes and sends again and its webhook sender delivers, without a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lives_through_a_postgres_restart() {
    if scratch::test_database_url().is_none() {
        eprintln!("SIMRELAY_TEST_DATABASE_URL is unset: PostgreSQL restart test not run");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (pg_dir, url) = PrivatePg::start(tmp.path()).await;
    let rx = Receiver::start().await;
    let (mut relay, addr) = node(&tmp.path().join("node"), &url, 2_000).await;
    let http = Http::new(&format!("http://{addr}"));
    let ws = format!("ws://{addr}/v1/link");
    register(&http, &rx.url).await;
    let (_, token) = paired_phone(&http, &ws, KEY_A).await;
    let (mut phone, _) = RawPhone::hello(&ws, &token, 0).await;
    let send = |id: &'static str| {
        let http = &http;
        async move {
            http.req(
                "POST",
                "/v1/messages",
                KEY_A,
                Some(json!({"id": id, "to": ["+15551230001"], "text": "hi"})),
            )
            .await
        }
    };
    let (s, v) = send("before").await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(next_send(&mut phone).await.as_deref(), Some("before"));

    pg_dir.run("kill").await;
    let (s, v) = send("during").await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "store_unavailable", "{v}");
    let (s, v) = http.req("GET", "/v1/messages/before", KEY_A, None).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "store_unavailable", "{v}");
    assert!(
        relay.child.try_wait().expect("wait").is_none(),
        "the relay lives"
    );

    let back = pg_dir.run("start").await;
    assert_eq!(back, url, "the same port again");
    // The first requests after the restart may still meet broken connections: each gets a
    // clear 503 at most, never a 500, and the pool recovers by itself.
    wait_until("the relay stores again", 30, || async {
        let got: (u16, Value) = http.req("GET", "/v1/messages/during", KEY_A, None).await;
        assert!(matches!(got.0, 404 | 503), "{got:?}");
        got.0 == 404
    })
    .await;
    // What got a 503 was not stored; sent again (same id), it is, and goes to the phone.
    let (s, v) = send("during").await;
    assert_eq!(s, 202, "{v}");
    let id = match next_send(&mut phone).await {
        Some(id) => id,
        // The link broke during the outage: the phone comes back as any phone would.
        None => {
            let (p, _) = RawPhone::hello(&ws, &token, 1).await;
            phone = p;
            next_send(&mut phone).await.expect("a send frame")
        }
    };
    assert_eq!(id, "during");
    // The phone's report is applied and its webhook delivered by the same sender as before.
    phone
        .send(&PhoneFrame::Event {
            seq: 1,
            event: update("during", 0, RecipientState::Sent),
        })
        .await;
    wait_until("message.sent delivered after the outage", 60, || async {
        let (_, v) = http.req("GET", "/v1/messages/during", KEY_A, None).await;
        v["state"] == "sent" && !rx.answered().is_empty()
    })
    .await;
    assert!(
        relay.child.try_wait().expect("wait").is_none(),
        "the relay still lives"
    );
    Proc::terminate(relay).await;
    drop(pg_dir);
}
