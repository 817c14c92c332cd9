//! Relay benchmarks (not timed tests): run with
//! `cargo bench -p simrelay-server --bench relay` (both), or `-- accept` / `-- e2e`;
//! `-- --quick` is a smoke pass (short runs, small counts) for CI.
//!
//! * accept: messages accepted per second over HTTP (`POST /v1/messages`, one recipient, each
//!   answered 202 only after its group commit with synchronous=FULL), many concurrent clients.
//! * e2e: messages per second from `POST` to `delivered` through 20 phones running the real
//!   core engine with the simulated radio at zero latency, over real WebSockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use simrelay_core::phone::{LinkConfig, Phone, PhoneConfig};
use simrelay_core::sim_modem::{SimModem, SimModemConfig};
use simrelay_core::{EngineConfig, SimConfig};
use simrelay_server::Server;
use simrelay_server::config::Config;

const KEY: &str = "bench-key-0123456789abcdef";

async fn relay(dir: &std::path::Path) -> Server {
    let mut c = Config::for_data_dir(dir);
    c.api_key = Some(KEY.into());
    Server::start(c).await.expect("relay starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client")
}

/// `clients` tasks post for `secs` seconds; returns accepted messages per second.
async fn post_for(url: &str, clients: usize, secs: u64) -> (u64, f64) {
    let http = client();
    let accepted = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, accepted, url) = (http.clone(), accepted.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < until {
                let body = json!({"to": [format!("+1555{:03}{:04}", c, i % 10_000)], "text": "benchmark message"});
                let res = http.post(format!("{url}/v1/messages")).bearer_auth(KEY).json(&body).send().await;
                match res {
                    Ok(r) if r.status().as_u16() == 202 => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(e) => panic!("request failed: {e}"),
                }
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let n = accepted.load(Ordering::Relaxed);
    (n, n as f64 / start.elapsed().as_secs_f64())
}

/// Baseline: bare rusqlite commits of one row each, WAL + synchronous=FULL, for two seconds
/// in `dir` (the disk's fsync rate, which bounds one client waiting for each commit).
fn bare_commits_per_sec(dir: &std::path::Path) -> f64 {
    let c = rusqlite::Connection::open(dir.join("baseline.sqlite")).expect("open");
    c.pragma_update(None, "journal_mode", "WAL").expect("wal");
    c.pragma_update(None, "synchronous", "FULL").expect("full");
    c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .expect("table");
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        c.execute("INSERT INTO t (v) VALUES ('benchmark message')", [])
            .expect("insert");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn bench_accept(quick: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let bare = tokio::task::spawn_blocking(move || bare_commits_per_sec(&path))
        .await
        .expect("baseline");
    println!("accept: baseline: bare single-row commits (WAL, FULL) = {bare:>8.0} commits/s");
    let srv = relay(dir.path()).await;
    let (levels, secs): (&[usize], u64) = if quick {
        (&[16], 1)
    } else {
        (&[1, 16, 64, 128], 5)
    };
    for &clients in levels {
        let (n, rate) = post_for(&srv.url, clients, secs).await;
        println!(
            "accept: {clients:>3} clients: {n:>6} messages in {secs} s = {rate:>8.0} accepted/s"
        );
    }
    srv.stop().await.expect("stops");
}

async fn bench_e2e(quick: bool) {
    const CLIENTS: u64 = 200;
    const PHONES: usize = 20;
    let messages: u64 = if quick { 1_000 } else { 20_000 };
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = relay(dir.path()).await;
    // The phones' stores may go elsewhere (e.g. tmpfs) to separate their fsyncs from the relay's.
    let phone_dir = match std::env::var_os("SIMRELAY_BENCH_PHONE_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("phone dir"),
        None => tempfile::tempdir().expect("tempdir"),
    };
    let http = client();
    let mut phones = Vec::new();
    for n in 0..PHONES {
        let res: serde_json::Value = http
            .post(format!("{}/v1/pairing-codes", srv.url))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("code")
            .json()
            .await
            .expect("json");
        let code = res["code"].as_str().expect("code");
        let paired = simrelay_core::link::pair(&srv.ws_base(), code, None, None)
            .await
            .expect("pairs");
        let modem = SimModem::new(SimModemConfig {
            seed: n as u64,
            ..SimModemConfig::default()
        });
        let phone = Phone::start(
            PhoneConfig {
                link: Some(LinkConfig {
                    url: srv.ws_base(),
                    token: paired.token,
                    pin_sha256: None,
                    ..LinkConfig::default()
                }),
                engine: EngineConfig {
                    parts_per_minute: 10_000_000,
                    daily_cap: 10_000_000,
                    jitter: 0.0,
                    ..EngineConfig::default()
                },
                ..PhoneConfig::new(phone_dir.path().join(format!("phone-{n}.sqlite")))
            },
            Box::new(modem.clone()),
        )
        .expect("phone");
        phone
            .handle()
            .set_sims(vec![SimConfig {
                sub_id: 1,
                slot: 0,
                carrier: None,
                parts_per_minute: None,
                daily_cap: None,
            }])
            .expect("sims");
        phones.push((phone, modem));
    }
    while srv.state.hub.connected_count() < PHONES {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    let per_client = messages / CLIENTS;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (http, url) = (http.clone(), srv.url.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let body = json!({"to": [format!("+1666{:03}{:04}", c, i)], "text": "end to end"});
                let r = http
                    .post(format!("{url}/v1/messages"))
                    .bearer_auth(KEY)
                    .json(&body)
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status().as_u16(), 202);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let posted = start.elapsed();
    loop {
        let counts = srv.state.db.call(|s| s.counts()).await.expect("counts");
        let delivered = counts
            .messages_by_state
            .iter()
            .find(|(s, _)| s == "delivered")
            .map_or(0, |(_, n)| *n);
        if delivered as u64 >= messages {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "stalled at {delivered}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = start.elapsed();
    let (sent, dups) = phones.iter().fold((0, 0), |(t, d), (_, m)| {
        m.with_radio(|r| (t + r.total_transmitted(), d + r.duplicates()))
    });
    println!(
        "e2e: {PHONES} phones, {messages} messages: all posted in {:.2} s, all delivered in {:.2} s = {:.0} delivered/s; parts transmitted {sent}, duplicates {dups}",
        posted.as_secs_f64(),
        total.as_secs_f64(),
        messages as f64 / total.as_secs_f64()
    );
    for (p, _) in phones {
        p.shutdown().await;
    }
    srv.stop().await.expect("stops");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let which: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let all = which.is_empty();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if all || which.iter().any(|w| *w == "accept") {
            bench_accept(quick).await;
        }
        if all || which.iter().any(|w| *w == "e2e") {
            bench_e2e(quick).await;
        }
    });
}
