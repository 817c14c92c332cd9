//! Chaos: messages sent to simulated phones while, at random moments, the relay process is
//! killed with SIGKILL and restarted on the same data directory, the phones' process is killed
//! and restarted on the same files, and a TCP proxy between phones and relay cuts or stalls
//! every link. At the end every message is in a final state, none is lost, no part was
//! transmitted twice (summed over the radios' ledgers), and the relay's view of every
//! recipient equals the owning phone's own database.
//!
//! Size by environment: `CHAOS_MESSAGES` (default 240), `CHAOS_PHONES` (4), `CHAOS_WAVES`
//! (12, one fault per wave), `CHAOS_SEED` (random; printed). `scripts/chaos.sh` runs the long
//! version.

mod chaos_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chaos_support::verdict::{
    check, env_or, message, phone_index, post_once, relay_messages, verify_ledgers,
};
use chaos_support::{Proxy, phone_states, read_ledgers, start_phones, start_relay};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use tokio::sync::watch;

const KEY: &str = "chaos-key-0123456789abcdef";
/// Posts message `i` until the relay answers 2xx (the same id is the idempotency key, so a
/// retry after a kill mid-request never makes a second message).
async fn submit(client: &reqwest::Client, relay: &mut watch::Receiver<String>, i: usize) {
    let body = message(i);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let base = relay.borrow_and_update().clone();
        if post_once(client, &base, KEY, &body, i).await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "message {i} not accepted in 120 s"
        );
        // The relay is down or restarting: wait for its new address, or retry shortly.
        let _ = tokio::time::timeout(Duration::from_millis(100), relay.changed()).await;
    }
}

#[derive(Default, Debug)]
struct Faults {
    relay_kills: u32,
    phone_kills: u32,
    cuts: u32,
    stalls: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_lost_nothing_twice_under_kills_cuts_and_stalls() {
    let n = env_or("CHAOS_MESSAGES", 240) as usize;
    let m = env_or("CHAOS_PHONES", 4) as usize;
    let waves = env_or("CHAOS_WAVES", 12).max(1) as usize;
    let seed = env_or("CHAOS_SEED", rand::random::<u32>().into());
    println!("chaos: seed {seed} (CHAOS_SEED={seed} repeats the fault schedule)");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let dir = tempfile::tempdir().expect("tempdir");
    let keep = std::env::var_os("CHAOS_KEEP").is_some();
    let root = if keep {
        dir.keep()
    } else {
        dir.path().to_path_buf()
    };
    let relay_dir = root.join("relay");
    let phones_dir = root.join("phones");
    let relay_log = root.join("relay.log");
    let phones_log = root.join("phones.log");

    let (mut relay, addr) = start_relay(&relay_dir, KEY, &relay_log).await;
    let proxy = Proxy::start(addr).await;
    let (url_tx, url_rx) = watch::channel(format!("http://{addr}"));
    let mut phones = start_phones(proxy.addr, m, &phones_dir, KEY, &phones_log).await;
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
            let (client, mut rx, part) = (client.clone(), url_rx.clone(), part.to_vec());
            senders.push(tokio::spawn(async move {
                for i in part {
                    submit(&client, &mut rx, i).await;
                }
            }));
        }
        // One fault at a random moment of the wave.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        match rng.random_range(0..4) {
            0 => {
                relay.kill9().await;
                let (r, a) = start_relay(&relay_dir, KEY, &relay_log).await;
                proxy.set_upstream(a);
                url_tx.send_replace(format!("http://{a}"));
                relay = r;
                faults.relay_kills += 1;
            }
            1 => {
                phones.kill9().await;
                phones = start_phones(proxy.addr, m, &phones_dir, KEY, &phones_log).await;
                faults.phone_kills += 1;
            }
            2 => {
                proxy.cut();
                faults.cuts += 1;
            }
            _ => {
                // Longer than three heartbeats (1.5 s): both sides must notice the dead link.
                proxy.stall();
                tokio::time::sleep(Duration::from_millis(rng.random_range(500..2500))).await;
                proxy.resume();
                proxy.cut();
                faults.stalls += 1;
            }
        }
        for s in senders {
            s.await.expect("sender");
        }
    }
    let submitted_in = started.elapsed();

    // Settle: everything up, poll (bounded) until the relay and the phones agree.
    let base = url_tx.borrow().clone();
    let deadline = Instant::now() + Duration::from_secs(90 + n as u64 / 50);
    let mut phones_by_id = HashMap::new();
    let (messages, dbs) = loop {
        let messages = relay_messages(&client, &base, KEY)
            .await
            .unwrap_or_default();
        if phones_by_id.len() < m {
            phones_by_id = phone_index(&client, &base, KEY).await;
        }
        let dbs: Vec<_> = (0..m).map(|i| phone_states(&phones_dir, i)).collect();
        let problems = check(&messages, n, &phones_by_id, &dbs);
        if problems.is_empty() {
            break (messages, dbs);
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

    let tally = verify_ledgers(&messages, &phones_by_id, &read_ledgers(&phones_dir, m));
    assert_eq!(dbs.len(), m);
    println!(
        "chaos summary: messages={n} recipients={} phones={m} states={:?} \
         unknown_with_parts_on_air={} parts_transmitted={} duplicates=0 \
         lost=0 relay_kills={} phone_kills={} cuts={} stalls={} submitted_in={:.1}s total={:.1}s",
        tally.recipients,
        tally.states,
        tally.unknown_on_air,
        tally.parts_transmitted,
        faults.relay_kills,
        faults.phone_kills,
        faults.cuts,
        faults.stalls,
        submitted_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    phones.terminate().await;
    relay.terminate().await;
}
