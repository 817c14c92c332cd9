//! The `floor` mode (issue 16, item 1): what one client can get from a durable HTTP accept on
//! this machine, with nothing of the relay in the way. Three figures from one run, alternated:
//!
//! * the disk: one writer, 512-byte `pwrite` + `fdatasync` in a loop (what one SQLite WAL
//!   commit costs at the least);
//! * the floor: a second process (this binary, mode `floor-server`) with a minimal axum server
//!   whose `POST /v1/messages` parses the JSON body, writes it to a file and `fdatasync`s it
//!   before answering 202 (the least a durable accept over HTTP can do);
//! * the relay: `simrelay serve` on SQLite, the same request.
//!
//! Each through the same closed loop of one client (`closed_loop`), so the floor's share of the
//! disk rate is the most a relay could reach, and the relay's share of the floor is what its
//! own work costs.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Load, closed_loop, relay, spawn_exe};

/// Single-writer `fdatasync`s per second for `secs` on a file in `dir`.
fn disk_rate(dir: &Path, secs: f64) -> f64 {
    let f = std::fs::File::create(dir.join("disk-probe")).expect("probe file");
    let block = [b'x'; 512];
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed().as_secs_f64() < secs {
        f.write_all_at(&block, 0).expect("pwrite");
        f.sync_data().expect("fdatasync");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// `floor-server DIR`: serves the minimal durable accept on 127.0.0.1:0 and prints
/// `listening on URL`.
pub async fn serve(dir: &Path) {
    let file = Arc::new(Mutex::new(
        std::fs::File::create(dir.join("floor.data")).expect("floor file"),
    ));
    let app = axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(move |body: axum::body::Bytes| {
            let file = file.clone();
            async move {
                if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
                    return (axum::http::StatusCode::BAD_REQUEST, "bad json".to_string());
                }
                let n = tokio::task::spawn_blocking(move || {
                    // Written over the same place each time, as SQLite reuses its WAL: the
                    // file's size does not change, so `fdatasync` flushes the data alone.
                    let f = file.lock().expect("file lock");
                    f.write_all_at(&body, 0).expect("pwrite");
                    f.sync_data().expect("fdatasync");
                    body.len()
                })
                .await
                .expect("writer");
                (
                    axum::http::StatusCode::ACCEPTED,
                    format!(r#"{{"bytes":{n}}}"#),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("addr")
    );
    axum::serve(listener, app).await.expect("serve");
}

/// `floor [--secs N] [--rounds R]`: disk, floor and relay, alternated, one client each.
pub async fn run(dir: &Path, secs: u64, rounds: u64) {
    let (_relay, relay_url) = relay(dir, 15_000, None).await;
    let floor_dir = dir.join("floor");
    std::fs::create_dir_all(&floor_dir).expect("floor dir");
    let (_floor, line) = spawn_exe(
        &["floor-server", &floor_dir.display().to_string()],
        &dir.join("floor.log"),
    )
    .await;
    let floor_url = line.trim_start_matches("listening on ").to_string();
    for round in 1..=rounds {
        let disk = disk_rate(dir, 2.0);
        let floor = closed_loop(&floor_url, secs, 1, Load::Accept).await;
        let ours = closed_loop(&relay_url, secs, 1, Load::Accept).await;
        println!(
            "floor round {round}: disk {disk:.0} fdatasync/s; floor server {floor:.0}/s = {:.2} \
             of the disk; relay {ours:.0}/s = {:.2} of the disk, {:.2} of the floor",
            floor / disk,
            ours / disk,
            ours / floor.max(1.0)
        );
    }
}
