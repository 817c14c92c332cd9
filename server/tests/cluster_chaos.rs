//! Chaos across a cluster (issue 17): three `simrelay serve` nodes on one private PostgreSQL,
//! each behind a TCP proxy whose address is its public URL, and `simrelay sim-phones` whose
//! phones pair once and keep a link to every node. Messages are posted to the live nodes in
//! turn while, one fault per wave at a random moment: a node is SIGKILLed and restarted on
//! the same configuration after up to a second; the phones' process is SIGKILLed and
//! restarted on the same files; every link to one node is cut; or every link to one node is
//! stalled for 0.5-2.5 s and then cut. Once, mid-run, PostgreSQL itself is killed (as a crash)
//! and started again. At the end every message that got a 2xx is on the cluster and final,
//! every node lists the same, no part reached two radios or one radio twice, and the
//! cluster's view of every recipient equals the owning phone's own database.
//!
//! Size by environment, as `chaos.rs`: `CHAOS_MESSAGES` (default 150), `CHAOS_PHONES` (4),
//! `CHAOS_WAVES` (10), `CHAOS_SEED` (random; printed); `scripts/chaos.sh cluster` runs the
//! long version. PostgreSQL-only by nature: it runs when `SIMRELAY_TEST_DATABASE_URL` is set
//! (PostgreSQL is installed), on a cluster of its own that it can restart, and says so and
//! passes when it is unset.

mod chaos_support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chaos_support::private_pg::PrivatePg;
use chaos_support::verdict::{
    check, env_or, message, phone_index, post_once, relay_messages, verify_ledgers,
};
use chaos_support::{Proc, Proxy, pg_node, phone_states, read_ledgers, start_phones};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use simrelay_server::store::postgres::scratch;

const KEY: &str = "cluster-chaos-key-0123456789abcdef";
const NODES: usize = 3;

/// Node `k` of the cluster whose public URLs are `public`, on the database `url`.
async fn start_node(root: &Path, url: &str, k: usize, public: &[String]) -> (Proc, SocketAddr) {
    let list = public
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let extra = format!("node_id = \"node-{k}\"\ncluster_nodes = [{list}]\n");
    pg_node(&root.join(format!("node-{k}")), url, KEY, &extra).await
}

/// Every node's HTTP base URL, updated when a node restarts on a new port.
type Bases = Arc<Mutex<Vec<String>>>;

/// Posts message `i` to the nodes in turn until one answers 2xx (the same id is the
/// idempotency key, so a retry on another node after a kill mid-request makes no second
/// message; a 503 while PostgreSQL is down is retried too).
async fn submit(client: &reqwest::Client, bases: &Bases, i: usize) {
    let body = message(i);
    let deadline = Instant::now() + Duration::from_secs(120);
    for attempt in 0.. {
        let base = bases.lock().expect("bases")[(i + attempt) % NODES].clone();
        if post_once(client, &base, KEY, &body, i).await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "message {i} not accepted in 120 s"
        );
        // Every node tried once: a node restarting or PostgreSQL away; try again shortly.
        if attempt % NODES == NODES - 1 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Links up (not closed) in the cluster's table of phone links.
async fn links_up(url: &str) -> i64 {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("the database answers");
        c.query_one(
            "SELECT count(*) FROM phone_links WHERE down_at IS NULL",
            &[],
        )
        .expect("the query runs")
        .get(0)
    })
    .await
    .expect("the query's thread")
}

/// Each recipient's (message, idx, phone, state), in the order listed.
fn view(messages: &[serde_json::Value]) -> Vec<(String, u64, String, String)> {
    messages
        .iter()
        .flat_map(|m| {
            m["recipients"].as_array().into_iter().flatten().map(|r| {
                (
                    m["id"].as_str().unwrap_or_default().to_string(),
                    r["idx"].as_u64().unwrap_or_default(),
                    r["phone"].as_str().unwrap_or_default().to_string(),
                    r["state"].as_str().unwrap_or_default().to_string(),
                )
            })
        })
        .collect()
}

#[derive(Default, Debug)]
struct Faults {
    node_kills: u32,
    phone_kills: u32,
    cuts: u32,
    stalls: u32,
    pg_restarts: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_lose_nothing_and_send_nothing_twice_under_kills_cuts_and_a_pg_restart() {
    if scratch::test_database_url().is_none() {
        eprintln!("SIMRELAY_TEST_DATABASE_URL is unset: cluster chaos test (PostgreSQL) not run");
        return;
    }
    let n = env_or("CHAOS_MESSAGES", 150) as usize;
    let m = env_or("CHAOS_PHONES", 4) as usize;
    let waves = env_or("CHAOS_WAVES", 10).max(1) as usize;
    let seed = env_or("CHAOS_SEED", rand::random::<u32>().into());
    println!("cluster chaos: seed {seed} (CHAOS_SEED={seed} repeats the fault schedule)");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let dir = tempfile::tempdir().expect("tempdir");
    let root = if std::env::var_os("CHAOS_KEEP").is_some() {
        dir.keep()
    } else {
        dir.path().to_path_buf()
    };
    let (pg, url) = PrivatePg::start(&root).await;

    // The proxies first: their addresses are the nodes' public URLs in `cluster_nodes`.
    let unused: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let mut proxies = Vec::new();
    for _ in 0..NODES {
        proxies.push(Proxy::start(unused).await);
    }
    let public: Vec<String> = proxies.iter().map(|p| format!("ws://{}", p.addr)).collect();
    let mut nodes = Vec::new();
    let mut bases = Vec::new();
    for (k, proxy) in proxies.iter().enumerate() {
        let (node, addr) = start_node(&root, &url, k, &public).await;
        proxy.set_upstream(addr);
        nodes.push(Some(node));
        bases.push(format!("http://{addr}"));
    }
    let bases: Bases = Arc::new(Mutex::new(bases));

    // The phones pair through node 0 and learn every node: a link to each.
    let phones_dir = root.join("phones");
    let phones_log = root.join("phones.log");
    let mut phones = start_phones(proxies[0].addr, m, &phones_dir, KEY, &phones_log).await;
    let linked_by = Instant::now() + Duration::from_secs(60);
    while links_up(&url).await < (NODES * m) as i64 {
        assert!(
            Instant::now() < linked_by,
            "phones not linked to every node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    simrelay_server::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    let mut faults = Faults::default();
    let per_wave = n.div_ceil(waves);
    let concurrency = 8;
    for w in 0..waves {
        let ids: Vec<usize> = (w * per_wave..((w + 1) * per_wave).min(n)).collect();
        let chunk = ids.len().div_ceil(concurrency).max(1);
        let mut senders = Vec::new();
        for part in ids.chunks(chunk) {
            let (client, bases, part) = (client.clone(), bases.clone(), part.to_vec());
            senders.push(tokio::spawn(async move {
                for i in part {
                    submit(&client, &bases, i).await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        let k = rng.random_range(0..NODES);
        if w == waves / 2 {
            // PostgreSQL crashes under all three nodes and comes back on the same port.
            pg.run("kill").await;
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
            pg.run("start").await;
            faults.pg_restarts += 1;
        } else {
            match rng.random_range(0..4) {
                0 => {
                    nodes[k].take().expect("node up").kill9().await;
                    // Down for a while: the others route and carry its phones' links.
                    tokio::time::sleep(Duration::from_millis(rng.random_range(0..1000))).await;
                    let (node, addr) = start_node(&root, &url, k, &public).await;
                    proxies[k].set_upstream(addr);
                    bases.lock().expect("bases")[k] = format!("http://{addr}");
                    nodes[k] = Some(node);
                    faults.node_kills += 1;
                }
                1 => {
                    phones.kill9().await;
                    phones = start_phones(proxies[0].addr, m, &phones_dir, KEY, &phones_log).await;
                    faults.phone_kills += 1;
                }
                2 => {
                    proxies[k].cut();
                    faults.cuts += 1;
                }
                _ => {
                    // Longer than three heartbeats (1.5 s) at the long end: both sides must
                    // notice the dead link; the other two links carry on meanwhile.
                    proxies[k].stall();
                    tokio::time::sleep(Duration::from_millis(rng.random_range(500..2500))).await;
                    proxies[k].resume();
                    proxies[k].cut();
                    faults.stalls += 1;
                }
            }
        }
        for s in senders {
            s.await.expect("sender");
        }
    }
    let submitted_in = started.elapsed();

    // Settle: poll (bounded) until the cluster and the phones agree.
    let base = bases.lock().expect("bases")[0].clone();
    let deadline = Instant::now() + Duration::from_secs(90 + n as u64 / 50);
    let mut phones_by_id = std::collections::HashMap::new();
    let messages = loop {
        let messages = relay_messages(&client, &base, KEY)
            .await
            .unwrap_or_default();
        if phones_by_id.len() < m {
            phones_by_id = phone_index(&client, &base, KEY).await;
        }
        let dbs: Vec<_> = (0..m).map(|i| phone_states(&phones_dir, i)).collect();
        let problems = check(&messages, n, &phones_by_id, &dbs);
        if problems.is_empty() {
            break messages;
        }
        if Instant::now() > deadline {
            panic!(
                "not settled: {} problems, first: {:?}; faults {faults:?}; logs in {}",
                problems.len(),
                &problems[..problems.len().min(10)],
                root.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Every node answers with the same view (one store, whichever node is asked).
    let all = bases.lock().expect("bases").clone();
    for other in &all[1..] {
        let seen = relay_messages(&client, other, KEY)
            .await
            .expect("every node answers");
        assert_eq!(view(&seen), view(&messages), "{other} lists another view");
    }
    let tally = verify_ledgers(&messages, &phones_by_id, &read_ledgers(&phones_dir, m));
    println!(
        "cluster chaos summary: nodes={NODES} messages={n} recipients={} phones={m} states={:?} \
         unknown_with_parts_on_air={} parts_transmitted={} duplicates=0 lost=0 node_kills={} \
         phone_kills={} cuts={} stalls={} pg_restarts={} submitted_in={:.1}s total={:.1}s",
        tally.recipients,
        tally.states,
        tally.unknown_on_air,
        tally.parts_transmitted,
        faults.node_kills,
        faults.phone_kills,
        faults.cuts,
        faults.stalls,
        faults.pg_restarts,
        submitted_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    phones.terminate().await;
    for node in nodes.into_iter().flatten() {
        node.terminate().await;
    }
    drop(pg);
}
