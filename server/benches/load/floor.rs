//! The `floor` mode (issue 16, item 1): what one client can get from a durable HTTP accept on
//! this machine, with nothing of the relay in the way. These figures, from one run, alternated:
//!
//! * the disk: one writer, 512-byte `pwrite` + `fdatasync` in a loop (what one SQLite WAL
//!   commit costs at the least), and the same with twelve 4 KiB pages per sync (about what
//!   one message's WAL commit writes);
//! * the store alone: the relay's own create transaction (`Store::write_batch` of one
//!   message) in a loop in this process, no HTTP and no hand-off;
//! * the floor: a second process (this binary, mode `floor-server`) with a minimal axum server
//!   whose `POST /v1/messages` parses the JSON body, writes it to a file and `fdatasync`s it
//!   on the blocking pool before answering 202 (the least a durable accept over HTTP can do
//!   without blocking the async workers); and the same with the write and `fdatasync` done
//!   on the async worker itself (`--inline`: no hand-off between threads at all);
//! * the relay: `simrelay serve` on SQLite, the same request;
//! * with no disk: the store alone, the inline floor server and a second relay with their
//!   files on `/dev/shm` (a tmpfs, where `fdatasync` costs nothing), when this machine has
//!   it. What is left of one request there is HTTP, SQLite's CPU and the relay's own work and
//!   hand-offs, with the disk's noise taken out.
//!
//! Each through the same closed loop of one client (`closed_loop`), so the floor's share of the
//! disk rate is the most a relay could reach, and the relay's share of the floor is what its
//! own work costs.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Load, closed_loop, relay, spawn_exe};

/// Single-writer `fdatasync`s per second for `secs` on a file in `dir`, each after `writes`
/// `pwrite`s of `size` bytes at consecutive offsets (the same offsets every time).
fn disk_rate(dir: &Path, secs: f64, writes: u64, size: usize) -> f64 {
    let f = std::fs::File::create(dir.join("disk-probe")).expect("probe file");
    let block = vec![b'x'; size];
    for i in 0..writes {
        // The file's size is set before timing, so `fdatasync` flushes the data alone.
        f.write_all_at(&block, i * size as u64).expect("pwrite");
    }
    f.sync_all().expect("fsync");
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed().as_secs_f64() < secs {
        for i in 0..writes {
            f.write_all_at(&block, i * size as u64).expect("pwrite");
        }
        f.sync_data().expect("fdatasync");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The relay's create transaction of one one-recipient message, committed `secs` long in a
/// loop on a fresh SQLite store in `dir`: commits per second.
fn store_rate(dir: &Path, secs: f64) -> f64 {
    use simrelay_server::store::{NewMessage, Store};
    let path = dir.join(format!(
        "store-alone-{}.sqlite",
        simrelay_server::store::now_ms()
    ));
    let store = Store::open_sqlite(&path).expect("store");
    let now = simrelay_server::store::now_ms();
    let account = store.create_account(None, None, now).expect("account");
    let message = |i: u64| NewMessage {
        account_id: account.clone(),
        id: format!("m{i}"),
        body_hash: format!("h{i}"),
        to: vec![format!("+4915{:09}", i % 1_000_000_000)],
        text: "benchmark message".into(),
        priority: 0,
        valid_until: None,
        schedule_at: None,
        phone_id: None,
        sim: None,
        pool: None,
        delivery_report: true,
        encrypted: false,
        data_port: None,
        created_at: now,
        suppression_override: None,
    };
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed().as_secs_f64() < secs {
        store.write_batch(&[message(n)], &[]).expect("commit");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// `floor-server [--inline] DIR`: serves the minimal durable accept on 127.0.0.1:0 and prints
/// `listening on URL`.
pub async fn serve(dir: &Path, inline: bool) {
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
                let write = move || {
                    // Written over the same place each time, as SQLite reuses its WAL: the
                    // file's size does not change, so `fdatasync` flushes the data alone.
                    let f = file.lock().expect("file lock");
                    f.write_all_at(&body, 0).expect("pwrite");
                    f.sync_data().expect("fdatasync");
                    body.len()
                };
                let n = if inline {
                    write()
                } else {
                    tokio::task::spawn_blocking(write).await.expect("writer")
                };
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
    let inline_dir = dir.join("floor-inline");
    std::fs::create_dir_all(&inline_dir).expect("floor dir");
    let (_inline, line) = spawn_exe(
        &[
            "floor-server",
            "--inline",
            &inline_dir.display().to_string(),
        ],
        &dir.join("floor-inline.log"),
    )
    .await;
    let inline_url = line.trim_start_matches("listening on ").to_string();
    // The same on a tmpfs, if there is one (`tempdir_in` fails where there is none), and only
    // on SQLite: with `LOAD_DATABASE_URL` the relay's store is PostgreSQL's disk either way.
    // The tuple holds the processes before the directory, so they are killed before it goes.
    let mut no_disk = None;
    if std::env::var_os("LOAD_DATABASE_URL").is_none()
        && let Ok(shm) = tempfile::tempdir_in("/dev/shm")
    {
        let (relay_child, relay_url) = relay(shm.path(), 15_000, None).await;
        let floor_dir = shm.path().join("floor-inline");
        std::fs::create_dir_all(&floor_dir).expect("floor dir");
        let (floor_child, line) = spawn_exe(
            &["floor-server", "--inline", &floor_dir.display().to_string()],
            &dir.join("floor-shm.log"),
        )
        .await;
        let floor_url = line.trim_start_matches("listening on ").to_string();
        no_disk = Some((relay_child, floor_child, relay_url, floor_url, shm));
    }
    for round in 1..=rounds {
        let disk = disk_rate(dir, 2.0, 1, 512);
        let pages = disk_rate(dir, 2.0, 12, 4096);
        let d = dir.to_path_buf();
        let alone = tokio::task::spawn_blocking(move || store_rate(&d, 2.0))
            .await
            .expect("store alone");
        let floor = closed_loop(&floor_url, secs, 1, Load::Accept).await;
        let inline = closed_loop(&inline_url, secs, 1, Load::Accept).await;
        let ours = closed_loop(&relay_url, secs, 1, Load::Accept).await;
        println!(
            "floor round {round}: disk {disk:.0} fdatasync/s, {pages:.0}/s with 12 pages; \
             store alone {alone:.0} commits/s; floor server {floor:.0}/s = {:.2} of the disk, \
             inline {inline:.0}/s = {:.2}; \
             relay {ours:.0}/s = {:.2} of the disk, {:.2} of the floor, {:.2} of the store alone",
            floor / disk,
            inline / disk,
            ours / disk,
            ours / floor.max(1.0),
            ours / alone.max(1.0)
        );
        if let Some((_, _, relay_url, floor_url, shm)) = &no_disk {
            let d = shm.path().to_path_buf();
            let alone = tokio::task::spawn_blocking(move || store_rate(&d, 2.0))
                .await
                .expect("store alone on tmpfs");
            let floor = closed_loop(floor_url, secs, 1, Load::Accept).await;
            let ours = closed_loop(relay_url, secs, 1, Load::Accept).await;
            println!(
                "floor round {round}, no disk (/dev/shm): store alone {alone:.0} commits/s; \
                 inline floor server {floor:.0}/s; relay {ours:.0}/s = {:.2} of the floor, \
                 {:.2} of the store alone",
                ours / floor.max(1.0),
                ours / alone.max(1.0)
            );
        }
    }
}
