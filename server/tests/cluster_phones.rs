//! Several relay nodes with the real phone core linked to each (issue 17): two `simrelay serve`
//! processes on one PostgreSQL, each behind a TCP proxy whose address is its public URL (known
//! before the relays start, so it can be in their `cluster_nodes`), and `simrelay sim-phones`
//! whose phones learn both nodes at pairing and keep a link to each.
//!
//! Messages posted to either node go out once; the node that routes is SIGKILLed and the other
//! takes routing over while the phones go on with their link to it. Every message posted ends
//! `delivered`, no part reaches two radios or one radio twice, and the gap from the kill until
//! the first part of new work reaches a radio is printed (a routing lease bounds it).
//!
//! PostgreSQL-only by nature: it runs when `SIMRELAY_TEST_DATABASE_URL` names a database, and
//! says so and passes when it is unset.

mod chaos_support;
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use chaos_support::{Proc, Proxy, pg_node, read_ledgers, start_phones};
use common::{Http, KEY_A};
use serde_json::json;
use simrelay_server::store::postgres::scratch;

const PHONES: usize = 2;

fn scratch_url() -> Option<String> {
    let Some(base) = scratch::test_database_url() else {
        eprintln!(
            "SIMRELAY_TEST_DATABASE_URL is unset: cluster phone test (PostgreSQL only) not run"
        );
        return None;
    };
    Some(scratch::scratch_schema(&base).expect("a scratch schema is made"))
}

async fn pg_count(url: &str, sql: &'static str) -> i64 {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("the database answers");
        c.query_one(sql, &[]).expect("the query runs").get(0)
    })
    .await
    .expect("the query's thread")
}

async fn pg_text(url: &str, sql: &'static str) -> Option<String> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("the database answers");
        c.query_opt(sql, &[])
            .expect("the query runs")
            .map(|r| r.get(0))
    })
    .await
    .expect("the query's thread")
}

/// Waits (guarded by `secs`) until `check` holds.
async fn wait_until<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Node `id` of the cluster `nodes` on the database `url`.
async fn node(dir: &Path, url: &str, id: &str, nodes: &[String]) -> (Proc, SocketAddr) {
    let list = nodes
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let extra = format!("node_id = \"{id}\"\ncluster_nodes = [{list}]\n");
    pg_node(dir, url, KEY_A, &extra).await
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

async fn state_of(http: &Http, id: &str) -> String {
    let (s, b) = http
        .req("GET", &format!("/v1/messages/{id}"), KEY_A, None)
        .await;
    assert_eq!(s, 200, "{b}");
    b["state"].as_str().unwrap_or_default().to_string()
}

/// Parts transmitted by the phones' radios so far.
fn transmitted(dir: &Path) -> usize {
    read_ledgers(dir, PHONES).values().map(Vec::len).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_linked_to_two_nodes_lose_nothing_when_the_routing_node_is_killed() {
    let Some(url) = scratch_url() else { return };
    let root = tempfile::tempdir().expect("tempdir");
    let unused: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let (pa, pb) = (Proxy::start(unused).await, Proxy::start(unused).await);
    let nodes = vec![format!("ws://{}", pa.addr), format!("ws://{}", pb.addr)];
    let (a, addr_a) = node(&root.path().join("a"), &url, "a", &nodes).await;
    let (b, addr_b) = node(&root.path().join("b"), &url, "b", &nodes).await;
    pa.set_upstream(addr_a);
    pb.set_upstream(addr_b);
    let (http_a, http_b) = (
        Http::new(&format!("http://{addr_a}")),
        Http::new(&format!("http://{addr_b}")),
    );

    // The phones pair through node A and learn both nodes: a link to each.
    let phones_dir = root.path().join("phones");
    let phones = start_phones(
        pa.addr,
        PHONES,
        &phones_dir,
        KEY_A,
        &root.path().join("phones.log"),
    )
    .await;
    wait_until("every phone linked to both nodes", 30, || async {
        pg_count(
            &url,
            "SELECT count(*) FROM phone_links WHERE down_at IS NULL",
        )
        .await
            == 2 * PHONES as i64
    })
    .await;

    // Work posted to both nodes goes out once.
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = format!("before-{i}");
        let http = if i % 2 == 0 { &http_a } else { &http_b };
        post(http, &id, &format!("+1555010{i:04}")).await;
        ids.push(id);
    }
    for id in &ids {
        wait_until("delivered before the kill", 30, || async {
            state_of(&http_b, id).await == "delivered"
        })
        .await;
    }

    // Kill whichever node routes the account now; the other one carries on.
    let router = pg_text(&url, "SELECT node_id FROM route_leases LIMIT 1")
        .await
        .expect("a node holds the routing lease");
    let (survivor, http) = if router == "a" {
        a.kill9().await;
        (b, &http_b)
    } else {
        b.kill9().await;
        (a, &http_a)
    };
    let killed = Instant::now();
    let before = transmitted(&phones_dir);
    for i in 0..20 {
        let id = format!("after-{i}");
        post(http, &id, &format!("+1555020{i:04}")).await;
        ids.push(id);
    }
    wait_until("new work reaches a radio after the kill", 30, || async {
        transmitted(&phones_dir) > before
    })
    .await;
    let gap = killed.elapsed();
    eprintln!(
        "cluster_phones: node {router} killed; first part of new work on a radio {} ms later",
        gap.as_millis()
    );
    for id in &ids {
        wait_until("every message delivered", 60, || async {
            state_of(http, id).await == "delivered"
        })
        .await;
    }
    // The routing lease (1.5 s) and one lease tick bound the hand-over; the link to the
    // survivor was already up. Issue 17's target is 2 s; the guard leaves room for a loaded
    // machine, and the figure printed above goes to docs/RELIABILITY.md.
    assert!(gap < Duration::from_secs(6), "hand-over took {gap:?}");

    // No part on two radios, none twice on one, every part of every message on a radio.
    let ledgers = read_ledgers(&phones_dir, PHONES);
    for (part, radios) in &ledgers {
        assert_eq!(radios.len(), 1, "{part:?} on two radios: {radios:?}");
        assert_eq!(radios[0].1, 1, "{part:?} sent twice: {radios:?}");
    }
    for id in &ids {
        assert!(
            ledgers.keys().any(|(m, _, _)| m == id),
            "{id} never reached a radio"
        );
    }
    phones.terminate().await;
    survivor.terminate().await;
}
