//! What a routing pass costs more on a node of a cluster than on a single relay
//! (`crate::cluster`): the router's view of the cluster's online phones (phones with a link up
//! on a live node, with their status) read from PostgreSQL, and the claim or renewal of the
//! routing leases of their accounts. A single relay reads the same view from its memory
//! (`Hub::online_by_account`, timed here too); the rest of the pass (`route_account`) is the
//! same code on both. Not a timed test: run with
//! `SIMRELAY_TEST_DATABASE_URL=$(bash scripts/postgres.sh url) cargo bench -p simrelay-server --bench cluster`
//! (`-- --quick` for a smoke pass). Phones: 1,000 by default (`CLUSTER_BENCH_PHONES`), spread
//! over 10 accounts and linked to 1, 2 or 3 nodes.

use std::time::{Duration, Instant};

use simrelay_server::hub::Hub;
use simrelay_server::store::postgres::cluster::ClusterDb;
use simrelay_server::store::postgres::scratch;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Median and 95th percentile of `runs` timings of `f`.
fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    (t[runs / 2], t[(runs * 95 / 100).min(runs - 1)])
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let Some(base) = scratch::test_database_url() else {
        eprintln!("SIMRELAY_TEST_DATABASE_URL is unset: the cluster benchmark needs PostgreSQL");
        return;
    };
    let phones = if quick {
        100
    } else {
        env_or("CLUSTER_BENCH_PHONES", 1000)
    };
    let runs = if quick { 20 } else { 200 };
    let status = serde_json::to_string(&simrelay_protocol::PhoneStatus {
        sims: vec![
            simrelay_protocol::SimInfo {
                sub_id: 1,
                slot: 0,
                carrier: None,
                parts_per_minute: 20,
                daily_cap: 0,
                sent_today: 0,
            },
            simrelay_protocol::SimInfo {
                sub_id: 2,
                slot: 1,
                carrier: None,
                parts_per_minute: 20,
                daily_cap: 0,
                sent_today: 0,
            },
        ],
        queue_depth: 3,
        battery: Some(80),
        charging: Some(true),
        app_version: "bench".into(),
    })
    .expect("status encodes");
    println!("cluster routing view, {phones} phones in 10 accounts, {runs} runs (median / p95):");
    for nodes in 1..=3usize {
        let url = scratch::scratch_schema(&base).expect("scratch schema");
        drop(simrelay_server::store::Store::open_postgres(&url).expect("schema"));
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("database");
        c.execute(
            "INSERT INTO accounts (id, created_at) SELECT 'acc' || a, 1 FROM generate_series(0, 9) a",
            &[],
        )
        .expect("accounts");
        let n = i64::try_from(phones).expect("phones");
        c.execute(
            "INSERT INTO phones (id, account_id, token_hash, created_at, online, status_json)
             SELECT 'ph' || i, 'acc' || (i % 10), 't' || i, 1, true, $2
             FROM generate_series(1, $1::bigint) i",
            &[&n, &status],
        )
        .expect("phones");
        let dbs: Vec<ClusterDb> = (0..nodes)
            .map(|k| {
                let db = ClusterDb::new(&url).expect("url");
                db.start(&format!("n{k}"), None).expect("node starts");
                db
            })
            .collect();
        // Each phone is linked to every node (as the phones' core does, up to max_links).
        for k in 0..nodes {
            c.execute(
                "INSERT INTO phone_links (phone_id, node_id, link_id, since)
                 SELECT 'ph' || i, $2, i, 1 FROM generate_series(1, $1::bigint) i",
                &[&n, &format!("n{k}")],
            )
            .expect("links");
        }
        c.batch_execute("ANALYZE").expect("analyze");
        let accounts: Vec<String> = (0..10).map(|a| format!("acc{a}")).collect();
        let refs: Vec<&str> = accounts.iter().map(String::as_str).collect();
        let db = &dbs[0];
        let (view, view95) = time(runs, || {
            let got = db.online_phones(5_000).expect("view");
            assert_eq!(got.len(), phones);
            for p in &got {
                let _: simrelay_protocol::PhoneStatus =
                    serde_json::from_str(p.status_json.as_deref().unwrap_or("{}")).expect("status");
            }
        });
        let (lease, lease95) = time(runs, || {
            let held = db.claim_leases("n0", &refs, 5_000).expect("leases");
            assert_eq!(held.len(), 10);
        });
        println!(
            "  {nodes} node(s): view {view:.2?} / {view95:.2?}, leases {lease:.2?} / {lease95:.2?}"
        );
    }
    // A single relay: the same view from the hub's memory.
    let hub = Hub::new();
    let st: simrelay_protocol::PhoneStatus = serde_json::from_str(&status).expect("status");
    for i in 0..phones {
        hub.register(&format!("ph{i}"), &format!("acc{}", i % 10), st.clone());
    }
    let (mem, mem95) = time(runs, || {
        let v = hub.online_by_account();
        assert_eq!(v.iter().map(|(_, p)| p.len()).sum::<usize>(), phones);
    });
    println!("  single relay (hub in memory): view {mem:.2?} / {mem95:.2?}");
}
