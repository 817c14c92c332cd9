//! The chaos tests' load and verdict, shared by the single relay (`chaos.rs`) and the cluster
//! (`cluster_chaos.rs`): the messages they post, the relay's view read back through the API,
//! the comparison with every phone's own database, and the radio ledgers' count (no part
//! twice, none by a phone that does not own its recipient).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

/// The states a recipient ends in.
pub const FINAL: [&str; 5] = ["delivered", "failed", "expired", "cancelled", "unknown"];

/// The number in the environment variable `name`, else `default` (the runs' sizes and seed).
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The message the tests send as number `i`: some long (2 parts), some to two numbers.
pub fn message(i: usize) -> Value {
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

/// Posts message `i` (`body`) to the relay at `base` once: true when it answered 2xx, false
/// when it failed or answered 5xx (to be sent again, same id); a 4xx fails the test.
pub async fn post_once(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: &Value,
    i: usize,
) -> bool {
    let res = client
        .post(format!("{base}/v1/messages"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => true,
        Ok(r) if r.status().is_client_error() => panic!("message {i} refused: {}", r.status()),
        _ => false,
    }
}

/// Every message as the relay at `base` lists it; `None` when a request fails.
pub async fn relay_messages(client: &reqwest::Client, base: &str, key: &str) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/messages?limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(key)
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

/// Phone id -> index of the simulated phone (by its name `sim-phone-<i>`); empty when the
/// relay does not answer.
pub async fn phone_index(
    client: &reqwest::Client,
    base: &str,
    key: &str,
) -> HashMap<String, usize> {
    let Ok(res) = client
        .get(format!("{base}/v1/phones"))
        .bearer_auth(key)
        .send()
        .await
    else {
        return HashMap::new();
    };
    let Ok(phones) = res.json::<Value>().await else {
        return HashMap::new();
    };
    phones["items"]
        .as_array()
        .into_iter()
        .flatten()
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

/// What is wrong with the end state (empty when everything holds): `n` messages, every
/// recipient final, and in the state the owning phone's database holds.
pub fn check(
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

/// The end state's figures, once [`verify_ledgers`] found nothing wrong.
#[derive(Debug, Default)]
pub struct Tally {
    pub states: BTreeMap<String, u64>,
    pub recipients: u64,
    pub unknown_on_air: u64,
    pub parts_transmitted: u64,
}

/// Panics unless: no part transmitted twice (over all radios); every transmission by the
/// recipient's owner; delivered recipients fully on air; expired and cancelled ones never on
/// air; no `cancelled` recipient (the runs cancel nothing: one would be a cancel meant for
/// another copy); no ledger part outside the messages.
pub fn verify_ledgers(
    messages: &[Value],
    phones_by_id: &HashMap<String, usize>,
    ledgers: &super::Ledgers,
) -> Tally {
    let mut on_air: HashMap<(String, u32), u32> = HashMap::new();
    for ((id, idx, part), tx) in ledgers {
        let total: u32 = tx.iter().map(|(_, t)| t).sum();
        assert_eq!(
            total, 1,
            "{id}/{idx} part {part} transmitted {total} times: {tx:?}"
        );
        *on_air.entry((id.clone(), *idx)).or_default() += 1;
    }
    let mut tally = Tally::default();
    let mut parts_on_air = 0;
    for msg in messages {
        let id = msg["id"].as_str().expect("id");
        for r in msg["recipients"].as_array().expect("recipients") {
            tally.recipients += 1;
            let idx = r["idx"].as_u64().expect("idx") as u32;
            let state = r["state"].as_str().expect("state");
            *tally.states.entry(state.to_string()).or_default() += 1;
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
                "unknown" if sent > 0 => tally.unknown_on_air += 1,
                "expired" | "cancelled" => assert_eq!(sent, 0, "{id}/{idx} {state} but sent"),
                _ => {}
            }
        }
    }
    assert!(
        !tally.states.contains_key("cancelled"),
        "cancelled recipients though none was cancelled: {:?}",
        tally.states
    );
    tally.parts_transmitted = ledgers.values().flatten().map(|(_, t)| u64::from(*t)).sum();
    assert_eq!(
        tally.parts_transmitted, parts_on_air,
        "ledger parts outside any message"
    );
    tally
}
