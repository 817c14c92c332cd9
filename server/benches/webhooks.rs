//! Webhook isolation benchmark (not a timed test): another tenant's delivery latency with and
//! without a black-hole endpoint. Run with
//!
//! ```sh
//! cargo bench -p simrelay-server --bench webhooks [-- --events 1000 --rate 200]
//! cargo bench -p simrelay-server --bench webhooks -- --quick   # smoke pass
//! ```
//!
//! One in-process relay on 127.0.0.1:0 per run, two accounts. Account B's webhook posts to a
//! receiver on 127.0.0.1 that answers 200 at once; in the second run account A's webhook
//! posts to a black hole (accepts TCP, never answers) and gets as many events as B, at the
//! same instants. Events are queued through the store as the relay queues them (one
//! `sim.quarantined` per phone event, then the delivery task is woken), at `--rate` per second
//! for `--events` events. Latency is from queueing to the receiver's handler; p50, p99 and
//! max per run, and the p99 added by the black hole.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};
use simrelay_server::Server;
use simrelay_server::api::hash_secret;
use simrelay_server::config::Config;
use simrelay_server::domain::webhooks::{Event, SimData};
use simrelay_server::store::now_ms;
use tokio::sync::mpsc;

const KEY_A: &str = "bench-key-account-a-0123456789abcdef";
const KEY_B: &str = "bench-key-account-b-0123456789abcdef";

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A phone of the account of `key` (created through the store), returns its id.
async fn phone(srv: &Server, key: &str, name: &str) -> String {
    let (hash, now) = (hash_secret(key), now_ms());
    let account = srv
        .state
        .db
        .call(move |s| s.ensure_api_key(&hash, now))
        .await
        .expect("key");
    let code = hash_secret(&format!("code-{name}"));
    let c = code.clone();
    srv.state
        .db
        .call(move |s| s.create_pairing_code(&account, &c, now, now + 60_000))
        .await
        .expect("pairing code");
    let (id, token) = (
        format!("phone-{name}"),
        hash_secret(&format!("token-{name}")),
    );
    let p = id.clone();
    srv.state
        .db
        .call(move |s| s.pair_phone(&code, &p, &token, None, now))
        .await
        .expect("store")
        .expect("paired");
    id
}

async fn register(http: &reqwest::Client, srv: &Server, key: &str, url: &str) {
    let res = http
        .post(format!("{}/v1/webhooks", srv.url))
        .bearer_auth(key)
        .json(&json!({"url": url, "events": ["sim.quarantined"]}))
        .send()
        .await
        .expect("webhook registered");
    assert_eq!(res.status().as_u16(), 201);
}

/// A receiver that reports each event's number (carried as `data.sub_id`) with its arrival
/// instant.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(u64, Instant)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let tx = tx.clone();
        async move {
            let at = Instant::now();
            let v: Value = serde_json::from_slice(&body).expect("json");
            let _ = tx.send((v["data"]["sub_id"].as_u64().expect("n"), at));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    url
}

/// Latencies (ms) of B's `events` events, with or without A's black hole.
async fn run(with_hole: bool, events: u64, rate: u64) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Config::for_data_dir(dir.path());
    c.api_key = Some(KEY_A.into());
    c.webhook_allow_cidrs = vec!["127.0.0.1/32".parse().expect("cidr")];
    let srv = Server::start(c).await.expect("relay starts");
    let http = reqwest::Client::new();
    let phone_a = phone(&srv, KEY_A, "a").await;
    let phone_b = phone(&srv, KEY_B, "b").await;
    let (url, mut rx) = receiver().await;
    register(&http, &srv, KEY_B, &url).await;
    if with_hole {
        register(&http, &srv, KEY_A, &black_hole().await).await;
    }
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let producer = {
        let (state, sent) = (srv.state.clone(), sent.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            for n in 0..events {
                tick.tick().await;
                let mut phones = vec![phone_b.clone()];
                if with_hole {
                    phones.push(phone_a.clone());
                }
                sent.lock().expect("lock").insert(n, Instant::now());
                state
                    .db
                    .call(move |s| {
                        for p in &phones {
                            let data = SimData {
                                phone: p.clone(),
                                sub_id: i32::try_from(n).expect("fits"),
                            };
                            s.sim_event(Event::SimQuarantined, &data, now_ms())?;
                        }
                        Ok(())
                    })
                    .await
                    .expect("queued");
                state.webhook_kick.notify_one();
            }
        })
    };
    let mut latencies = Vec::new();
    while latencies.len() < usize::try_from(events).expect("fits") {
        let (n, at) = tokio::time::timeout(Duration::from_secs(120), rx.recv())
            .await
            .expect("B's events arrive")
            .expect("open");
        let t0 = sent.lock().expect("lock").get(&n).copied().expect("sent");
        latencies.push(at.duration_since(t0).as_secs_f64() * 1000.0);
    }
    producer.await.expect("producer");
    srv.stop().await.expect("stops");
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let events = arg(&args, "--events", if quick { 50 } else { 1000 });
    let rate = arg(&args, "--rate", 200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut p99 = Vec::new();
        for with_hole in [false, true] {
            let l = run(with_hole, events, rate).await;
            let label = if with_hole {
                "with a black-hole tenant"
            } else {
                "alone"
            };
            println!(
                "webhooks {label}: {events} events at {rate}/s, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                pct(&l, 0.5),
                pct(&l, 0.99),
                l[l.len() - 1]
            );
            p99.push(pct(&l, 0.99));
        }
        println!("p99 added by the black hole: {:.1} ms", p99[1] - p99[0]);
    });
}
