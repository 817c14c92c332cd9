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

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chaos_support::{Proxy, phone_states, read_ledgers, start_phones, start_relay};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::watch;

const KEY: &str = "chaos-key-0123456789abcdef";
const FINAL: [&str; 5] = ["delivered", "failed", "expired", "cancelled", "unknown"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The message the test sends as number `i`: some long (2 parts), some to two numbers.
fn message(i: usize) -> Value {
    let text = if i.is_multiple_of(5) {
        format!("chaos {i} {}", "long ".repeat(34))
    } else {
        format!("chaos {i}")
    };
    let mut to = vec![format!("+1555{:07}", i)];
    if i.is_multiple_of(7) {
        to.push(format!("+1666{:07}", i));
    }
    json!({"id": format!("c-{i}"), "to": to, "text": text})
}

/// Posts message `i` until the relay answers 2xx (the same id is the idempotency key, so a
/// retry after a kill mid-request never makes a second message).
async fn submit(client: &reqwest::Client, relay: &mut watch::Receiver<String>, i: usize) {
    let body = message(i);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let base = relay.borrow_and_update().clone();
        let res = client
            .post(format!("{base}/v1/messages"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => return,
            Ok(r) if r.status().is_client_error() => {
                panic!("message {i} refused: {}", r.status())
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "message {i} not accepted in 120 s"
        );
        // The relay is down or restarting: wait for its new address, or retry shortly.
        let _ = tokio::time::timeout(Duration::from_millis(100), relay.changed()).await;
    }
}

/// Every message as the relay lists it.
async fn relay_messages(client: &reqwest::Client, base: &str) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/messages?limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(KEY)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        out.extend(page["items"].as_array()?.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Some(out),
        }
    }
}

/// Phone id -> index of the simulated phone (by its name `sim-phone-<i>`).
async fn phone_index(client: &reqwest::Client, base: &str) -> HashMap<String, usize> {
    let phones: Value = client
        .get(format!("{base}/v1/phones"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("phones listed")
        .json()
        .await
        .expect("phones json");
    phones["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| {
            let i = p["name"]
                .as_str()?
                .strip_prefix("sim-phone-")?
                .parse()
                .ok()?;
            Some((p["id"].as_str()?.to_string(), i))
        })
        .collect()
}

#[derive(Default, Debug)]
struct Faults {
    relay_kills: u32,
    phone_kills: u32,
    cuts: u32,
    stalls: u32,
}

/// What is wrong with the end state (empty when everything holds).
fn check(
    messages: &[Value],
    n: usize,
    phones: &HashMap<String, usize>,
    phone_dbs: &[BTreeMap<(String, u32), String>],
) -> Vec<String> {
    let mut problems = Vec::new();
    if messages.len() != n {
        problems.push(format!("relay holds {} messages, sent {n}", messages.len()));
    }
    for m in messages {
        let id = m["id"].as_str().unwrap_or("?");
        for r in m["recipients"].as_array().into_iter().flatten() {
            let state = r["state"].as_str().unwrap_or("?");
            let idx = r["idx"].as_u64().unwrap_or(0) as u32;
            if !FINAL.contains(&state) {
                problems.push(format!("{id}/{idx} is {state}"));
                continue;
            }
            let Some(owner) = r["phone"].as_str() else {
                if state != "expired" && state != "cancelled" {
                    problems.push(format!("{id}/{idx} is {state} without a phone"));
                }
                continue;
            };
            let Some(&p) = phones.get(owner) else {
                problems.push(format!("{id}/{idx} owned by an unknown phone"));
                continue;
            };
            match phone_dbs[p].get(&(id.to_string(), idx)) {
                Some(s) if s == state => {}
                other => problems.push(format!(
                    "{id}/{idx}: relay says {state}, phone {p} says {other:?}"
                )),
            }
        }
    }
    problems
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
        let messages = relay_messages(&client, &base).await.unwrap_or_default();
        if phones_by_id.len() < m {
            phones_by_id = phone_index(&client, &base).await;
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

    // No part twice; every transmission by the recipient's owner; delivered ones fully on
    // air; expired and cancelled ones never on air.
    let ledgers = read_ledgers(&phones_dir, m);
    let mut on_air: HashMap<(String, u32), u32> = HashMap::new();
    for ((id, idx, part), tx) in &ledgers {
        let total: u32 = tx.iter().map(|(_, t)| t).sum();
        assert_eq!(
            total, 1,
            "{id}/{idx} part {part} transmitted {total} times: {tx:?}"
        );
        *on_air.entry((id.clone(), *idx)).or_default() += 1;
    }
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut unknown_on_air = 0;
    let mut recipients = 0;
    let mut parts_on_air = 0;
    for msg in &messages {
        let id = msg["id"].as_str().expect("id");
        for r in msg["recipients"].as_array().expect("recipients") {
            recipients += 1;
            let idx = r["idx"].as_u64().expect("idx") as u32;
            let state = r["state"].as_str().expect("state");
            *counts.entry(state).or_default() += 1;
            let owner = r["phone"]
                .as_str()
                .and_then(|p| phones_by_id.get(p))
                .copied();
            let sent = on_air.get(&(id.to_string(), idx)).copied().unwrap_or(0);
            parts_on_air += u64::from(sent);
            for part in 0..sent {
                if let Some(tx) = ledgers.get(&(id.to_string(), idx, part)) {
                    assert_eq!(Some(tx[0].0), owner, "{id}/{idx} sent by a non-owner");
                }
            }
            match state {
                "delivered" => assert_eq!(
                    u64::from(sent),
                    r["parts"].as_u64().expect("parts"),
                    "{id}/{idx} delivered: parts on air"
                ),
                "unknown" if sent > 0 => unknown_on_air += 1,
                "expired" | "cancelled" => assert_eq!(sent, 0, "{id}/{idx} {state} but sent"),
                _ => {}
            }
        }
    }
    // The run cancels nothing: a `cancelled` recipient is a cancel meant for another copy.
    assert!(
        !counts.contains_key("cancelled"),
        "cancelled recipients though none was cancelled: {counts:?}"
    );
    let total_tx: u32 = ledgers.values().flatten().map(|(_, t)| t).sum();
    assert_eq!(
        u64::from(total_tx),
        parts_on_air,
        "ledger parts outside any message"
    );
    assert_eq!(dbs.len(), m);
    println!(
        "chaos summary: messages={n} recipients={recipients} phones={m} states={counts:?} \
         unknown_with_parts_on_air={unknown_on_air} parts_transmitted={total_tx} duplicates=0 \
         lost=0 relay_kills={} phone_kills={} cuts={} stalls={} submitted_in={:.1}s total={:.1}s",
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
