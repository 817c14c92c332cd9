//! Engine benchmark (a bench binary, not a test): `cargo bench -p simrelay-core --bench engine`.
//!
//! 1. Accept rate: parts/s stored durably (WAL, synchronous=FULL, on the work disk), in
//!    batches as the link applies relay frames, and one message per commit. Baseline: bare
//!    rusqlite inserts of the same rows with the same durability, so the ratio shows the
//!    engine's own cost on this noisy machine.
//! 2. Throughput: messages/s from submit to delivered through the simulated radio at zero
//!    latency, unpaced.
//! 3. Memory: resident set size with 100,000 queued messages (after a dispatch pass and a
//!    status read over them).

use std::time::Instant;

use simrelay_core::protocol::{OutboundMessage, Recipient};
use simrelay_core::sim_modem::{SimModemConfig, SimRadio};
use simrelay_core::{Engine, EngineConfig, Origin, SimConfig};

fn message(i: usize, text: &str) -> OutboundMessage {
    OutboundMessage {
        id: format!("bench-{i:08}"),
        recipients: vec![Recipient {
            idx: 0,
            to: format!("+1555{:07}", i % 10_000_000),
        }],
        text: text.into(),
        priority: 0,
        valid_until: None,
        schedule_at: None,
        sim: None,
        delivery_report: true,
        resend_unknown: false,
        encrypted: false,
        data_port: None,
    }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn bench_dir() -> tempfile::TempDir {
    // The work disk, not tmpfs: durability costs are part of the figure.
    tempfile::tempdir_in(std::env::current_dir().expect("cwd")).expect("tempdir")
}

fn accept_rate(n: usize, batch: usize) -> f64 {
    let dir = bench_dir();
    let mut engine = Engine::open(&dir.path().join("b.db"), EngineConfig::default()).expect("open");
    let msgs: Vec<_> = (0..n).map(|i| message(i, "Your code is 123456")).collect();
    let start = Instant::now();
    for chunk in msgs.chunks(batch) {
        engine
            .submit(chunk, Origin::Relay, 1_800_000_000_000)
            .expect("submit");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Bare rusqlite: one row per message and recipient plus one outbox row, same pragmas.
fn baseline_rate(n: usize, batch: usize) -> f64 {
    let dir = bench_dir();
    let mut conn = rusqlite::Connection::open(dir.path().join("raw.db")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE m (id TEXT PRIMARY KEY, body TEXT, created INTEGER);
         CREATE TABLE r (id TEXT, idx INTEGER, dest TEXT, state TEXT, PRIMARY KEY (id, idx));
         CREATE TABLE o (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT);",
    )
    .expect("schema");
    let start = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(batch) {
        let tx = conn.transaction().expect("tx");
        for &i in chunk {
            let id = format!("bench-{i:08}");
            tx.execute("INSERT INTO m VALUES (?1, 'Your code is 123456', 0)", [&id])
                .expect("m");
            tx.execute(
                "INSERT INTO r VALUES (?1, 0, '+15550000000', 'queued')",
                [&id],
            )
            .expect("r");
            tx.execute(
                "INSERT INTO o (event) VALUES ('{\"kind\":\"recipient\",\"state\":\"queued\"}')",
                [],
            )
            .expect("o");
        }
        tx.commit().expect("commit");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn throughput(n: usize) -> f64 {
    let dir = bench_dir();
    let mut engine = Engine::open(&dir.path().join("t.db"), EngineConfig::unpaced()).expect("open");
    engine
        .set_sims(&[SimConfig {
            sub_id: 1,
            slot: 0,
            carrier: None,
            parts_per_minute: None,
            daily_cap: None,
        }])
        .expect("sims");
    let mut radio = SimRadio::new(SimModemConfig::default());
    let msgs: Vec<_> = (0..n).map(|i| message(i, "Your code is 123456")).collect();
    let now = 1_800_000_000_000;
    let start = Instant::now();
    for chunk in msgs.chunks(100) {
        engine.submit(chunk, Origin::Local, now).expect("submit");
    }
    loop {
        let due = engine.due(now).expect("due");
        if due.is_empty() {
            break;
        }
        for cmd in &due {
            radio.transmit(cmd, now);
        }
        let events = radio.due(now);
        for r in engine.on_modem_events(&events, now).expect("events") {
            r.expect("event applies");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(radio.total_transmitted(), n as u64);
    let delivered = engine
        .recipients()
        .expect("read")
        .iter()
        .filter(|r| r.state == simrelay_core::protocol::RecipientState::Delivered)
        .count();
    assert_eq!(delivered, n);
    n as f64 / secs
}

fn memory(n: usize) -> (u64, u64, u64) {
    let before = rss_kib("VmRSS:");
    let dir = bench_dir();
    let mut engine =
        Engine::open(&dir.path().join("mem.db"), EngineConfig::default()).expect("open");
    for start in (0..n).step_by(1_000) {
        let chunk: Vec<_> = (start..n.min(start + 1_000))
            .map(|i| message(i, &"m".repeat(120)))
            .collect();
        engine
            .submit(&chunk, Origin::Local, 1_800_000_000_000)
            .expect("submit");
    }
    // No SIM yet: a dispatch pass and a status read scan the whole queue.
    engine.due(1_800_000_000_000).expect("due");
    let status = engine.status(1_800_000_000_000).expect("status");
    assert_eq!(status.queue_depth as usize, n);
    let after = rss_kib("VmRSS:");
    (before, after, rss_kib("VmHWM:"))
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 2_000 } else { 20_000 };
    println!("simrelay-core engine benchmark ({n} messages; single-part unless stated)");
    // Memory first, while the process is fresh.
    let queued = if quick { 10_000 } else { 100_000 };
    let (before, after, peak) = memory(queued);
    println!(
        "memory with {queued} queued: RSS {:.1} MiB before open, {:.1} MiB after, peak {:.1} MiB",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        peak as f64 / 1024.0
    );

    for batch in [100, 1] {
        let n = if batch == 1 { n / 10 } else { n };
        let base = baseline_rate(n, batch);
        let engine = accept_rate(n, batch);
        println!(
            "accept, batch {batch:>3}: engine {engine:>8.0} parts/s | bare SQLite {base:>8.0} rows/s | ratio {:.2}",
            engine / base
        );
    }
    println!(
        "submit -> delivered through the simulated radio, zero latency: {:.0} messages/s",
        throughput(n / 2)
    );
}
