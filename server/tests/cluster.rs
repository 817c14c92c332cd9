//! Several relay nodes on one PostgreSQL (issue 17, `crate::cluster`): real relays on
//! 127.0.0.1:0 (in-process, and one `simrelay serve` process for the crash), real WebSockets,
//! phones speaking raw frames with one link per node. Frames routed by one node reach a phone
//! linked only to another; an event sent on two links is applied once; an ack on one link
//! releases the frames for the phone; routing happens once with two nodes racing; killing the
//! routing node hands routing to the other within the lease; presence stays online while one
//! link is up and goes offline once after the last.
//!
//! PostgreSQL-only by nature: they run when `SIMRELAY_TEST_DATABASE_URL` names a database,
//! and say so and pass when it is unset.

mod chaos_support;
mod common;

use std::time::{Duration, Instant};

use common::{Http, KEY_A, RawPhone, paired_phone, sim, update};
use serde_json::json;
use simrelay_protocol::{PROTOCOL_VERSION, PhoneFrame, PhoneStatus, RecipientState, RelayFrame};
use simrelay_server::Server;
use simrelay_server::store::postgres::scratch;

const NODES: [&str; 2] = ["ws://node-a.test:8443", "ws://node-b.test:8443"];

fn nodes() -> Vec<String> {
    NODES.iter().map(|s| s.to_string()).collect()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// The test database, or `None` (and a note) without one.
fn test_db() -> Option<()> {
    if scratch::test_database_url().is_none() {
        eprintln!("SIMRELAY_TEST_DATABASE_URL is unset: cluster tests not run");
        return None;
    }
    Some(())
}

/// A node of the cluster on `url` (a scratch schema), named `id`.
async fn node(dir: &std::path::Path, url: &str, id: &str, grace: Duration) -> Server {
    let (url, id) = (url.to_string(), id.to_string());
    common::server(dir, move |c| {
        c.database_url = Some(url);
        c.cluster_nodes = nodes();
        c.node_id = Some(id);
        c.offline_grace = grace;
        c.metrics_token = Some(METRICS_TOKEN.into());
    })
    .await
}

const METRICS_TOKEN: &str = "metrics-token-of-the-cluster-tests-0123456789";

/// `/metrics` of a node, with the metrics token or `key`.
async fn metrics(http: &Http, base: &str, key: Option<&str>) -> String {
    let res = http
        .client
        .get(format!("{base}/metrics"))
        .bearer_auth(key.unwrap_or(METRICS_TOKEN))
        .send()
        .await
        .expect("metrics answer");
    assert_eq!(res.status().as_u16(), 200);
    res.text().await.expect("text")
}

/// Two nodes `a` and `b` on one fresh schema; the schema's URL.
async fn two_nodes(
    da: &std::path::Path,
    db: &std::path::Path,
    grace: Duration,
) -> (Server, Server, String) {
    let url = scratch::database_url_for(da).expect("a test database");
    let a = node(da, &url, "a", grace).await;
    let b = node(db, &url, "b", grace).await;
    (a, b, url)
}

/// Runs one query returning a single BIGINT (a count) on the schema, off the runtime.
async fn count(url: &str, sql: &str) -> i64 {
    let (url, sql) = (url.to_string(), sql.to_string());
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("the test database");
        c.query_one(sql.as_str(), &[]).expect("query runs").get(0)
    })
    .await
    .expect("query task")
}

/// Runs statements on the schema, off the runtime.
async fn exec(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("the test database");
        c.batch_execute(&sql).expect("statements run");
    })
    .await
    .expect("exec task");
}

/// Makes node `node` the router of every account (a lease it then renews itself).
async fn lease_to(url: &str, node: &str) {
    exec(
        url,
        &format!(
            "INSERT INTO route_leases (account_id, node_id, until_ms)
             SELECT id, '{node}', 9000000000000000 FROM accounts
             ON CONFLICT (account_id) DO UPDATE SET node_id = '{node}',
                 until_ms = 9000000000000000"
        ),
    )
    .await;
}

/// Waits (polling, at most `limit`) until `check` holds.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < until, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A status with one fast SIM (routing is not held back by pace headroom).
fn fast_status() -> PhoneStatus {
    let mut s = common::status();
    s.sims = vec![simrelay_protocol::SimInfo {
        parts_per_minute: 6000,
        ..sim(1)
    }];
    s
}

/// Opens a link with `hello`; the phone and its `welcome` frame.
async fn hello(ws_url: &str, token: &str, acked: u64) -> (RawPhone, RelayFrame) {
    let mut p = RawPhone::connect(ws_url).await;
    p.send(&PhoneFrame::Hello {
        version: PROTOCOL_VERSION,
        token: token.into(),
        acked,
        status: fast_status(),
    })
    .await;
    let w = p.recv().await.expect("welcome");
    assert!(matches!(w, RelayFrame::Welcome { .. }), "{w:?}");
    (p, w)
}

/// The next `send` frame: (seq, message id).
async fn next_send(p: &mut RawPhone) -> (u64, String) {
    match p.recv().await {
        Some(RelayFrame::Send { seq, message }) => (seq, message.id),
        other => panic!("expected a send frame, got {other:?}"),
    }
}

async fn post(http: &Http, id: &str, to: &str) {
    let (s, b) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"id": id, "to": [to], "text": "hello cluster"})),
        )
        .await;
    assert_eq!(s, 202, "{b}");
}

#[tokio::test]
async fn nodes_are_listed_and_frames_routed_on_one_node_reach_a_phone_linked_to_the_other() {
    let Some(()) = test_db() else { return };
    let (da, db) = (tempdir(), tempdir());
    let (a, b, url) = two_nodes(da.path(), db.path(), Duration::from_secs(30)).await;
    let (ha, hb) = (Http::new(&a.url), Http::new(&b.url));
    lease_to(&url, "a").await;

    // Pairing on node A names every node.
    let (s, body) = ha.req("POST", "/v1/pairing-codes", KEY_A, None).await;
    assert_eq!(s, 201, "{body}");
    let mut p = RawPhone::connect(&a.ws_url()).await;
    p.send(&PhoneFrame::Pair {
        version: PROTOCOL_VERSION,
        code: body["code"].as_str().expect("code").into(),
        name: None,
    })
    .await;
    let Some(RelayFrame::Paired { token, nodes, .. }) = p.recv().await else {
        panic!("paired")
    };
    assert_eq!(nodes, self::nodes());

    // The phone links to node B only; node A routes (its lease) and B's link writes the frame.
    let (mut pb, welcome) = hello(&b.ws_url(), &token, 0).await;
    let RelayFrame::Welcome { nodes, .. } = welcome else {
        unreachable!()
    };
    assert_eq!(nodes, self::nodes());
    // Node A's API shows the phone online: linked to node B.
    let (s, phones) = ha.req("GET", "/v1/phones", KEY_A, None).await;
    assert_eq!(s, 200, "{phones}");
    assert_eq!(phones["items"][0]["online"], true, "{phones}");
    // And so do both nodes' metrics; the link itself is B's.
    for (node, links) in [(&a, 0), (&b, 1)] {
        let text = metrics(&ha, &node.url, None).await;
        assert!(text.contains("\nsimrelay_phones_online 1\n"), "{text}");
        assert!(
            text.contains(&format!("\nsimrelay_node_links {links}\n")),
            "{text}"
        );
        let text = metrics(&ha, &node.url, Some(KEY_A)).await;
        assert!(text.contains("\nsimrelay_phones_online 1\n"), "{text}");
    }
    post(&ha, "via-a", "+15550001001").await;
    assert_eq!(next_send(&mut pb).await, (1, "via-a".to_string()));
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM route_leases WHERE node_id <> 'a'"
        )
        .await,
        0,
        "node A routed"
    );
    // And through node B's API too: the same router, the same link.
    post(&hb, "via-b", "+15550001002").await;
    assert_eq!(next_send(&mut pb).await, (2, "via-b".to_string()));
    drop(pb);
    a.stop().await.expect("a stops");
    b.stop().await.expect("b stops");
}

#[tokio::test]
async fn an_event_sent_on_two_links_is_applied_once() {
    let Some(()) = test_db() else { return };
    let (da, db) = (tempdir(), tempdir());
    let (a, b, url) = two_nodes(da.path(), db.path(), Duration::from_secs(30)).await;
    let ha = Http::new(&a.url);
    let (s, _) = ha
        .req(
            "POST",
            "/v1/webhooks",
            KEY_A,
            Some(
                json!({"url": "http://127.0.0.1:9/hook", "events": ["message.sent"],
                        "secret": "0123456789abcdef-secret"}),
            ),
        )
        .await;
    assert_eq!(s, 201);
    let (_, token) = paired_phone(&ha, &a.ws_url(), KEY_A).await;
    let (mut pa, _) = hello(&a.ws_url(), &token, 0).await;
    let (mut pb, _) = hello(&b.ws_url(), &token, 0).await;
    post(&ha, "m1", "+15550002001").await;
    // Every node holding a link writes the phone's unacknowledged frames.
    assert_eq!(next_send(&mut pa).await, (1, "m1".to_string()));
    assert_eq!(next_send(&mut pb).await, (1, "m1".to_string()));

    // The phone's outbox goes out on both links at once.
    let ev = PhoneFrame::Event {
        seq: 1,
        event: update("m1", 0, RecipientState::Sent),
    };
    tokio::join!(pa.send(&ev), pb.send(&ev));
    for p in [&mut pa, &mut pb] {
        match p.recv().await {
            Some(RelayFrame::Ack { seq: 1 }) => {}
            other => panic!("expected ack 1, got {other:?}"),
        }
    }
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM recipient_history WHERE state = 'sent'"
        )
        .await,
        1,
        "one state change"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM webhook_outbox WHERE event = 'message.sent'"
        )
        .await,
        1,
        "one webhook"
    );
    assert_eq!(count(&url, "SELECT max(event_seq) FROM phones").await, 1);
    drop((pa, pb));
    a.stop().await.expect("a stops");
    b.stop().await.expect("b stops");
}

#[tokio::test]
async fn an_ack_on_one_link_releases_the_frames_for_the_phone() {
    let Some(()) = test_db() else { return };
    let (da, db) = (tempdir(), tempdir());
    let (a, b, url) = two_nodes(da.path(), db.path(), Duration::from_secs(30)).await;
    let ha = Http::new(&a.url);
    let (_, token) = paired_phone(&ha, &a.ws_url(), KEY_A).await;
    let (mut pa, _) = hello(&a.ws_url(), &token, 0).await;
    post(&ha, "m1", "+15550003001").await;
    assert_eq!(next_send(&mut pa).await, (1, "m1".to_string()));

    // Node B never wrote frame 1, yet the phone's `hello.acked` there covers it: it is
    // stored, so the ack counts for the phone (and B does not write it again).
    let (mut pb, _) = hello(&b.ws_url(), &token, 1).await;
    assert_eq!(count(&url, "SELECT max(acked_seq) FROM phones").await, 1);
    assert_eq!(count(&url, "SELECT count(*) FROM frames").await, 0);
    post(&ha, "m2", "+15550003002").await;
    assert_eq!(next_send(&mut pb).await, (2, "m2".to_string()));
    assert_eq!(next_send(&mut pa).await, (2, "m2".to_string()));

    // An ack on link B releases frame 2 for the phone, whichever node wrote it.
    pb.send(&PhoneFrame::Ack { seq: 2 }).await;
    eventually("ack 2 stored", Duration::from_secs(10), || async {
        count(&url, "SELECT max(acked_seq) FROM phones").await == 2
    })
    .await;
    assert_eq!(count(&url, "SELECT count(*) FROM frames").await, 0);

    // An ack beyond every stored frame is clamped to them: frames never written are safe.
    // (The event's ack shows that the batch with the ack was applied.)
    pa.send(&PhoneFrame::Ack { seq: 99 }).await;
    pa.send(&PhoneFrame::Event {
        seq: 1,
        event: update("m2", 0, RecipientState::Queued),
    })
    .await;
    match pa.recv().await {
        Some(RelayFrame::Ack { seq: 1 }) => {}
        other => panic!("expected ack 1, got {other:?}"),
    }
    let (_pc, _) = hello(&b.ws_url(), &token, 77).await;
    post(&ha, "m3", "+15550003003").await;
    assert_eq!(next_send(&mut pa).await, (3, "m3".to_string()));
    assert_eq!(count(&url, "SELECT max(acked_seq) FROM phones").await, 2);
    assert_eq!(count(&url, "SELECT count(*) FROM frames").await, 1);
    drop((pa, pb));
    a.stop().await.expect("a stops");
    b.stop().await.expect("b stops");
}

#[tokio::test]
async fn two_nodes_racing_route_each_recipient_once() {
    let Some(()) = test_db() else { return };
    let (da, db) = (tempdir(), tempdir());
    let (a, b, url) = two_nodes(da.path(), db.path(), Duration::from_secs(30)).await;
    let (ha, hb) = (Http::new(&a.url), Http::new(&b.url));
    let mut links = Vec::new();
    for _ in 0..2 {
        let (_, token) = paired_phone(&ha, &a.ws_url(), KEY_A).await;
        links.push(hello(&a.ws_url(), &token, 0).await.0);
        links.push(hello(&b.ws_url(), &token, 0).await.0);
    }
    // Both nodes take messages (and are woken by them) at the same time.
    const N: usize = 60;
    let posts = (0..N).map(|i| {
        let h = if i % 2 == 0 { &ha } else { &hb };
        async move { post(h, &format!("r{i}"), &format!("+1555000{:04}", 4000 + i)).await }
    });
    futures_util::future::join_all(posts).await;
    eventually(
        "every recipient routed",
        Duration::from_secs(20),
        || async {
            count(
                &url,
                "SELECT count(*) FROM recipients WHERE phone_id IS NOT NULL",
            )
            .await
                == N as i64
        },
    )
    .await;
    // One `send` frame per recipient (none handed out twice), one router for the account.
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM frames WHERE starts_with(body, '{\"type\":\"send\"')"
        )
        .await,
        N as i64
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(DISTINCT substring(body FROM '\"id\":\"(r[0-9]+)\"')) FROM frames"
        )
        .await,
        N as i64
    );
    assert_eq!(count(&url, "SELECT count(*) FROM route_leases").await, 1);
    drop(links);
    a.stop().await.expect("a stops");
    b.stop().await.expect("b stops");
}

#[tokio::test]
async fn killing_the_routing_node_hands_routing_to_the_other_within_the_lease() {
    let Some(()) = test_db() else { return };
    let (da, db) = (tempdir(), tempdir());
    let url = scratch::database_url_for(da.path()).expect("a test database");
    // Node A is a `simrelay serve` process (killed with SIGKILL below), node B in-process.
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        &da.path().display().to_string(),
        "--api-key",
        KEY_A,
        "--database",
        &url,
        "--node-id",
        "a",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in NODES {
        args.extend(["--cluster-node".to_string(), n.to_string()]);
    }
    let log = da.path().join("node-a.log");
    let proc_a = chaos_support::spawn(&args, &log, "listening on").await;
    let b = node(db.path(), &url, "b", Duration::from_millis(500)).await;
    let hb = Http::new(&b.url);
    let (_, token) = paired_phone(&hb, &b.ws_url(), KEY_A).await;
    let (mut pb, _) = hello(&b.ws_url(), &token, 0).await;
    // A second phone linked to node A only.
    let a_ws = format!(
        "{}{}",
        proc_a
            .ready_line
            .trim_start_matches("listening on ")
            .replacen("http", "ws", 1),
        simrelay_protocol::WS_PATH
    );
    let (_, token2) = paired_phone(&hb, &b.ws_url(), KEY_A).await;
    let (p2, _) = hello(&a_ws, &token2, 0).await;
    lease_to(&url, "a").await;
    // Renewed by A: a lease that runs out, as any lease does.
    eventually("A renews its lease", Duration::from_secs(10), || async {
        count(
            &url,
            "SELECT count(*) FROM route_leases WHERE node_id = 'a' AND until_ms < 9000000000000000",
        )
        .await
            == 1
    })
    .await;
    post(&hb, "before", "+15550005001").await;
    assert_eq!(next_send(&mut pb).await, (1, "before".to_string()));

    proc_a.kill9().await;
    let killed = Instant::now();
    post(&hb, "after", "+15550005002").await;
    let (seq, id) = next_send(&mut pb).await;
    let took = killed.elapsed();
    assert_eq!((seq, id.as_str()), (2, "after"));
    eprintln!("routing taken over {took:?} after the kill");
    // The lease passes to B within `LEASE_MS`; but p2, linked to A only, counts as online
    // until A's heartbeat is stale, so B may hand "after" to p2 first and route it again when
    // p2 goes offline (its grace after that). A phone linked to both nodes gets new work
    // within the lease: `cluster_phones`.
    let bound = simrelay_server::cluster::LEASE_MS.max(simrelay_server::cluster::STALE_MS) + 3_000;
    assert!(
        took < Duration::from_millis(bound as u64),
        "within the lease or the staleness of A (and a routing tick): {took:?}"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM route_leases WHERE node_id = 'b'"
        )
        .await,
        1
    );
    // The phone whose only link died with node A goes offline (by node B, once its node is
    // silent and the grace has passed); the phone linked to B stays online.
    eventually("A's phone offline", Duration::from_secs(15), || async {
        count(&url, "SELECT count(*) FROM phones WHERE online").await == 1
    })
    .await;
    let (s, phones) = hb.req("GET", "/v1/phones", KEY_A, None).await;
    assert_eq!(s, 200);
    let online: Vec<bool> = phones["items"]
        .as_array()
        .expect("phones")
        .iter()
        .map(|p| p["online"] == true)
        .collect();
    assert_eq!(online, [true, false], "{phones}");
    drop((pb, p2));
    b.stop().await.expect("b stops");
}

#[tokio::test]
async fn presence_stays_online_while_one_link_is_up_and_goes_offline_once() {
    let Some(()) = test_db() else { return };
    let (da, db) = (tempdir(), tempdir());
    let grace = Duration::from_millis(300);
    let (a, b, url) = two_nodes(da.path(), db.path(), grace).await;
    let ha = Http::new(&a.url);
    let (s, _) = ha
        .req(
            "POST",
            "/v1/webhooks",
            KEY_A,
            Some(json!({"url": "http://127.0.0.1:9/hook",
                        "events": ["phone.online", "phone.offline"],
                        "secret": "0123456789abcdef-secret"})),
        )
        .await;
    assert_eq!(s, 201);
    let (_, token) = paired_phone(&ha, &a.ws_url(), KEY_A).await;
    let (pa, _) = hello(&a.ws_url(), &token, 0).await;
    let (pb, _) = hello(&b.ws_url(), &token, 0).await;
    let online = "SELECT count(*) FROM phones WHERE online";
    let offline_events = "SELECT count(*) FROM webhook_outbox WHERE event = 'phone.offline'";
    assert_eq!(count(&url, online).await, 1);

    // Link A goes; B's is up: the phone stays online past A's grace (and node B's sweep).
    drop(pa);
    eventually(
        "A's link recorded down",
        Duration::from_secs(10),
        || async {
            count(
                &url,
                "SELECT count(*) FROM phone_links WHERE down_at IS NOT NULL",
            )
            .await
                == 1
        },
    )
    .await;
    // Nothing to wait on for an absence: several graces and heartbeats.
    tokio::time::sleep(grace * 4 + Duration::from_secs(1)).await;
    assert_eq!(count(&url, online).await, 1, "still online through node B");
    assert_eq!(count(&url, offline_events).await, 0);

    // The last link goes: offline once, by one node, after the grace.
    drop(pb);
    eventually(
        "offline after the last link",
        Duration::from_secs(10),
        || async { count(&url, online).await == 0 },
    )
    .await;
    tokio::time::sleep(grace * 4 + Duration::from_secs(1)).await;
    assert_eq!(count(&url, offline_events).await, 1, "phone.offline once");
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM webhook_outbox WHERE event = 'phone.online'"
        )
        .await,
        1,
        "phone.online once, for two links"
    );
    a.stop().await.expect("a stops");
    b.stop().await.expect("b stops");
}
