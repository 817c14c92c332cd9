//! The Kannel side of `scripts/peer-bench.sh` (issue 16): the closed accept loop against
//! smsbox's `sendsms`, and the end-to-end run with delivery reports to a local receiver.
//! Kannel runs outside (bearerbox, smsbox and `fakesmsc`, started by the script); `pids` are
//! bearerbox's and smsbox's, whose CPU is counted per message.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Load, closed_loop, post_all, proc_stats};

fn cpu(pids: &[u32]) -> f64 {
    pids.iter().map(|p| proc_stats(*p).cpu).sum()
}

/// The closed loop against smsbox.
pub async fn accept(url: &str, pids: &[u32], secs: u64, concurrency: u64) {
    let cpu0 = cpu(pids);
    let rate = closed_loop(url, secs, concurrency, Load::Kannel).await;
    println!(
        "kannel accept: CPU per accepted message: bearerbox+smsbox {:.3} ms",
        (cpu(pids) - cpu0) / (rate * secs as f64).max(1.0) * 1e3,
    );
}

/// The delivery reports received: each message's number once.
#[derive(Default)]
struct Reports {
    seen: Mutex<HashSet<u64>>,
    wake: tokio::sync::Notify,
}

/// End to end: `messages` sendsms requests (64 clients) asking for a delivery report
/// (`dlr-mask=8`: the SMSC took the message; Kannel's fake SMSC gives no handset report) on
/// a `dlr-url` of a receiver here; messages/s from the first request until every report
/// arrived, and CPU per message of bearerbox+smsbox and of the fake SMSC (`smsc_pid`).
pub async fn e2e(url: &str, pids: &[u32], smsc_pid: u32, messages: u64) {
    let reports = Arc::new(Reports::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver binds");
    let port = listener.local_addr().expect("addr").port();
    let r = reports.clone();
    let app = axum::Router::new().route(
        "/dlr",
        axum::routing::get(
            move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                let r = r.clone();
                async move {
                    let n = q.get("n").and_then(|n| n.parse::<u64>().ok());
                    if let (Some(n), Some("8")) = (n, q.get("s").map(String::as_str)) {
                        r.seen.lock().expect("lock").insert(n);
                        r.wake.notify_one();
                    }
                    "ok"
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (cpu0, smsc0) = (cpu(pids), proc_stats(smsc_pid).cpu);
    let start = Instant::now();
    post_all(
        url,
        messages,
        Arc::new(move |n| {
            let (uri, body, key, want) = Load::Kannel.request(n);
            let dlr = format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fdlr%3Fn%3D{n}%26s%3D%25d");
            (format!("{uri}&dlr-mask=8&dlr-url={dlr}"), body, key, want)
        }),
    )
    .await;
    let posted = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    let done = loop {
        let done = reports.seen.lock().expect("lock").len() as u64;
        if done >= messages || Instant::now() > deadline {
            break done;
        }
        // A report wakes the wait; the timeout only bounds a lost wake-up.
        let _ = tokio::time::timeout(Duration::from_millis(100), reports.wake.notified()).await;
    };
    let el = start.elapsed().as_secs_f64();
    let per_msg = |c: f64| c / done.max(1) as f64 * 1e3;
    println!(
        "kannel e2e: {done}/{messages} reported (dlr-mask 8) in {el:.1} s = {:.0} msg/s (posting took {posted:.1} s); \
         CPU per message: bearerbox+smsbox {:.3} ms, fake SMSC {:.3} ms",
        done as f64 / el,
        per_msg(cpu(pids) - cpu0),
        per_msg(proc_stats(smsc_pid).cpu - smsc0),
    );
}
