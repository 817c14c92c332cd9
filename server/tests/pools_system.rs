//! A small rack over real WebSockets: a relay on 127.0.0.1:0 and 6 phones × 2 SIMs running the
//! real core engine with simulated radios. Two SIMs fail every attempt with a SIM-bound code
//! (`RESULT_RIL_SIM_ABSENT`), one phone is killed and restarted mid-run. Every message of the
//! pool is delivered, by a healthy SIM, and no part leaves any radio twice; the failing SIMs
//! are cooled down or quarantined (`sim.quarantined` queued) and show up in `/v1/sims` and
//! `/metrics`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{Http, KEY_A, server};
use serde_json::{Value, json};
use simrelay_core::phone::{LinkConfig, Phone, PhoneConfig};
use simrelay_core::sim_modem::{SimBehaviour, SimModem, SimModemConfig};
use simrelay_core::{EngineConfig, SimConfig};
use simrelay_server::AppState;

const PHONES: usize = 6;
const MESSAGES: usize = 60;
/// (phone index, sub_id) of the SIMs that fail.
const FAILING: [(usize, i32); 2] = [(1, 2), (3, 1)];

struct RackPhone {
    phone: Option<Phone>,
    modem: SimModem,
    link: LinkConfig,
    id: String,
}

fn start(db: &Path, link: &LinkConfig, modem: &SimModem) -> Phone {
    let config = PhoneConfig {
        link: Some(link.clone()),
        engine: EngineConfig {
            parts_per_minute: 600,
            daily_cap: 1_000_000,
            jitter: 0.0,
            seed: Some(3),
            ..EngineConfig::default()
        },
        ..PhoneConfig::new(db)
    };
    let phone = Phone::start(config, Box::new(modem.clone())).expect("phone starts");
    let sims = (1..=2)
        .map(|sub_id| SimConfig {
            sub_id,
            slot: sub_id - 1,
            carrier: None,
            parts_per_minute: None,
            daily_cap: None,
        })
        .collect();
    phone.handle().set_sims(sims).expect("sims set");
    phone
}

/// Waits (woken by the relay after each applied batch; 60 s at most) until `check` holds.
async fn wait_until<F, Fut>(state: &AppState, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut rx = state.updates.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        rx.borrow_and_update();
        if check().await {
            return;
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            panic!("timed out waiting for {what}");
        }
    }
}

async fn messages(http: &Http) -> Vec<Value> {
    let (_, v) = http.req("GET", "/v1/messages?limit=500", KEY_A, None).await;
    v["items"].as_array().cloned().unwrap_or_default()
}

async fn count(http: &Http, state: &str) -> usize {
    messages(http)
        .await
        .iter()
        .filter(|m| m["state"] == state)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rack_fails_over_sim_bound_failures_and_a_dead_phone_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let mut phones = Vec::new();
    for n in 0..PHONES {
        let (_, code) = http.req("POST", "/v1/pairing-codes", KEY_A, None).await;
        let code = code["code"].as_str().expect("code");
        let paired = simrelay_core::link::pair(&srv.ws_base(), code, None, None)
            .await
            .expect("pairs");
        let link = LinkConfig {
            url: srv.ws_base(),
            token: paired.token,
            pin_sha256: None,
            ..LinkConfig::default()
        };
        let modem = SimModem::new(SimModemConfig {
            seed: n as u64,
            ..SimModemConfig::default()
        });
        for (p, sub) in FAILING {
            if p == n {
                modem.with_radio(|r| {
                    r.set_behaviour(
                        sub,
                        SimBehaviour {
                            fail_rate: 1.0,
                            fail_code: 120,
                            ..SimBehaviour::default()
                        },
                    )
                });
            }
        }
        let db = dir.path().join(format!("phone-{n}.sqlite"));
        let phone = start(&db, &link, &modem);
        phones.push(RackPhone {
            phone: Some(phone),
            modem,
            link,
            id: paired.phone_id,
        });
    }
    // Every SIM visible to the router before traffic starts, so that the failing ones get
    // their share. Polled, woken by the routing notice that links and status changes raise.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = http.req("GET", "/v1/sims", KEY_A, None).await;
        let online = v["sims"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|s| s["online"] == true).count());
        if online == PHONES * 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "SIMs online: {v}");
        let _ =
            tokio::time::timeout(Duration::from_millis(20), srv.state.route_kick.notified()).await;
    }
    // A webhook for SIM health (its URL refuses connections: deliveries stay queued).
    let hook =
        json!({"url": "http://127.0.0.1:9/hook", "events": ["sim.quarantined", "sim.recovered"]});
    let (s, v) = http.req("POST", "/v1/webhooks", KEY_A, Some(hook)).await;
    assert_eq!(s, 201, "{v}");
    // Three recipients pinned to a failing SIM: three SIM-bound failures at once quarantine it
    // (pinned to the phone, they are not moved and end `failed`).
    let pinned = json!({"to": ["+15553100001", "+15553100002", "+15553100003"], "text": "pinned",
        "id": "pinned", "phone": phones[FAILING[0].0].id, "sim": FAILING[0].1});
    let (s, v) = http.req("POST", "/v1/messages", KEY_A, Some(pinned)).await;
    assert_eq!(s, 202, "{v}");
    wait_until(&srv.state, "the pinned message failed", || async {
        let (_, m) = http.req("GET", "/v1/messages/pinned", KEY_A, None).await;
        m["state"] == "failed"
    })
    .await;
    let members: Vec<Value> = phones
        .iter()
        .flat_map(|p| (1..=2).map(move |s| json!({"phone": p.id, "sub_id": s})))
        .collect();
    let (s, v) = http
        .req(
            "POST",
            "/v1/pools",
            KEY_A,
            Some(json!({"name": "rack", "members": members})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for i in 0..MESSAGES {
        let body = json!({"to": [format!("+1555300{i:04}")], "text": format!("rack {i}"), "id": format!("r-{i}"), "pool": "rack"});
        let (s, v) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
        assert_eq!(s, 202, "{v}");
    }
    wait_until(&srv.state, "a first third delivered", || async {
        count(&http, "delivered").await >= MESSAGES / 3
    })
    .await;

    // Phone 4 dies and comes back on the same store.
    let db = dir.path().join("phone-4.sqlite");
    let p4 = &mut phones[4];
    p4.phone.take().expect("running").shutdown().await;
    p4.phone = Some(start(&db, &p4.link, &p4.modem));

    wait_until(&srv.state, "every message delivered", || async {
        count(&http, "delivered").await == MESSAGES
    })
    .await;

    // Nothing twice: count every part over every radio.
    let mut parts: BTreeMap<(String, u32, u32), u32> = BTreeMap::new();
    for p in &phones {
        p.modem.with_radio(|r| {
            for (k, n) in r.transmitted() {
                *parts.entry(k.clone()).or_default() += n;
            }
        });
    }
    assert_eq!(parts.len(), MESSAGES, "every message left a radio");
    assert!(parts.values().all(|n| *n == 1), "no part left twice");

    // Delivered by healthy SIMs only; the failing ones reported SIM-bound failures.
    let failing: Vec<(String, i64)> = FAILING
        .iter()
        .map(|(p, s)| (phones[*p].id.clone(), i64::from(*s)))
        .collect();
    for m in messages(&http).await.iter().filter(|m| m["id"] != "pinned") {
        assert_eq!(m["state"], "delivered", "{m}");
        let r = &m["recipients"][0];
        let used = (
            r["phone"].as_str().unwrap_or("").to_string(),
            r["sim"].as_i64().unwrap_or(-1),
        );
        assert!(!failing.contains(&used), "delivered by a failing SIM: {m}");
    }
    let (s, sims) = http.req("GET", "/v1/sims", KEY_A, None).await;
    assert_eq!(s, 200, "{sims}");
    let all = sims["sims"].as_array().expect("sims");
    assert_eq!(all.len(), PHONES * 2, "{sims}");
    let mut failed_over = 0;
    for s in all {
        let key = (
            s["phone"].as_str().expect("phone").to_string(),
            s["sub_id"].as_i64().expect("sub"),
        );
        let failures: u64 = s["failures"]
            .as_object()
            .map_or(0, |f| f.values().filter_map(Value::as_u64).sum());
        if failing.contains(&key) {
            assert_ne!(s["state"], "healthy", "{s}");
            assert!(failures > 0, "{s}");
            if key == failing[1] {
                // Pool recipients, not pinned: each was failed over and delivered elsewhere.
                failed_over += failures;
            }
        } else {
            assert_eq!(failures, 0, "{s}");
        }
    }
    assert!(
        failed_over > 0,
        "recipients failed over from the failing SIMs: {sims}"
    );
    let (s, stats) = http.req("GET", "/v1/pools/rack/stats", KEY_A, None).await;
    assert_eq!(
        (s, &stats["totals"]["waiting_recipients"]),
        (200, &json!(0)),
        "{stats}"
    );
    let queued = srv
        .state
        .db
        .call(|s| s.due_deliveries(i64::MAX / 2, 1000))
        .await
        .expect("deliveries");
    let quarantined: Vec<Value> = queued
        .iter()
        .filter(|d| d.event == "sim.quarantined")
        .map(|d| serde_json::from_str::<Value>(&d.body).expect("json body")["data"].clone())
        .collect();
    assert!(
        !quarantined.is_empty(),
        "sim.quarantined queued: {sims} {queued:?}"
    );
    for data in &quarantined {
        let key = (
            data["phone"].as_str().unwrap_or("").to_string(),
            data["sub_id"].as_i64().unwrap_or(-1),
        );
        assert!(
            failing.contains(&key),
            "only failing SIMs are quarantined: {data}"
        );
    }
    let metrics = http
        .client
        .get(format!("{}/metrics", srv.url))
        .bearer_auth(KEY_A)
        .send()
        .await
        .expect("metrics");
    let metrics = metrics.text().await.expect("metrics text");
    let failing_line = format!(
        "simrelay_sim_failures_total{{phone=\"{}\",sub_id=\"2\",reason=\"result_ril_sim_absent\"}}",
        phones[1].id
    );
    assert!(metrics.contains(&failing_line), "{metrics}");
    assert!(metrics.contains("simrelay_sim_pace_ppm{"), "{metrics}");
    for p in &mut phones {
        p.phone.take().expect("running").shutdown().await;
    }
    srv.stop().await.expect("stops");
}
