//! System tests: a relay on 127.0.0.1:0 and several phones running the real core engine with
//! the simulated radio, over real WebSockets and real HTTP. Radios count every transmitted
//! part, so "nothing lost, nothing twice" is checked on what actually left the phones.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Http, KEY_A, KEY_B, server};
use serde_json::{Value, json};
use simrelay_core::EngineConfig;
use simrelay_core::SimConfig;
use simrelay_core::link::pair;
use simrelay_core::phone::{LinkConfig, Phone, PhoneConfig};
use simrelay_core::sim_modem::{SimBehaviour, SimModem, SimModemConfig};
use simrelay_server::{AppState, Server};

struct SimPhone {
    phone: Option<Phone>,
    modem: SimModem,
    db: PathBuf,
    link: LinkConfig,
    id: String,
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        parts_per_minute: 3000,
        daily_cap: 1_000_000,
        jitter: 0.0,
        seed: Some(7),
        ..EngineConfig::default()
    }
}

fn start_phone(db: &Path, link: &LinkConfig, modem: &SimModem) -> Phone {
    let config = PhoneConfig {
        link: Some(link.clone()),
        engine: engine_config(),
        ..PhoneConfig::new(db)
    };
    let phone = Phone::start(config, Box::new(modem.clone())).expect("phone starts");
    phone
        .handle()
        .set_sims(vec![SimConfig {
            sub_id: 1,
            slot: 0,
            carrier: None,
            parts_per_minute: None,
            daily_cap: None,
        }])
        .expect("sims set");
    phone
}

async fn add_phone(
    http: &Http,
    srv: &Server,
    dir: &Path,
    n: usize,
    behaviour: SimBehaviour,
) -> SimPhone {
    let (s, code) = http.req("POST", "/v1/pairing-codes", KEY_A, None).await;
    assert_eq!(s, 201);
    let code = code["code"].as_str().expect("code");
    let paired = pair(&srv.ws_base(), code, Some("sim phone"), None)
        .await
        .expect("pairs");
    assert!(
        pair(&srv.ws_base(), code, None, None).await.is_err(),
        "a replayed code is refused"
    );
    let link = LinkConfig {
        url: srv.ws_base(),
        token: paired.token,
        pin_sha256: None,
        ..LinkConfig::default()
    };
    let modem = SimModem::new(SimModemConfig {
        default: behaviour,
        seed: n as u64,
        ..SimModemConfig::default()
    });
    let db = dir.join(format!("phone-{n}.sqlite"));
    let phone = start_phone(&db, &link, &modem);
    SimPhone {
        phone: Some(phone),
        modem,
        db,
        link,
        id: paired.phone_id,
    }
}

/// Waits (notified by the relay after each applied batch, 60 s at most: the machine is shared)
/// until `check` holds.
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

async fn count_in_state(http: &Http, state: &str) -> usize {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/messages?state={state}&limit=500&cursor={c}"),
            None => format!("/v1/messages?state={state}&limit=500"),
        };
        let (_, v) = http.req("GET", &path, KEY_A, None).await;
        n += v["items"].as_array().map_or(0, Vec::len);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return n,
        }
    }
}

fn transmitted(phones: &[SimPhone]) -> (u64, usize) {
    phones.iter().fold((0, 0), |(t, d), p| {
        p.modem
            .with_radio(|r| (t + r.total_transmitted(), d + r.duplicates()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_flow_through_real_phones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let mut phones = Vec::new();
    for n in 0..3 {
        phones.push(add_phone(&http, &srv, dir.path(), n, SimBehaviour::default()).await);
    }
    for i in 0..20 {
        let body = json!({"to": ["+15551230001", format!("+1555123{:04}", 100 + i)], "text": format!("hello {i}"), "id": format!("s-{i}")});
        let (s, v) = http
            .req("POST", "/v1/messages", KEY_A, Some(body.clone()))
            .await;
        assert_eq!(s, 202, "{v}");
        if i == 0 {
            let (s, again) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
            assert_eq!((s, &again["id"]), (202, &json!("s-0")), "idempotent resend");
        }
    }
    wait_until(&srv.state, "20 delivered messages", || async {
        count_in_state(&http, "delivered").await == 20
    })
    .await;
    let (_, m) = http.req("GET", "/v1/messages/s-3", KEY_A, None).await;
    for r in m["recipients"].as_array().expect("recipients") {
        assert_eq!(r["state"], "delivered");
        assert_eq!(r["parts_delivered"], 1);
        assert!(phones.iter().any(|p| r["phone"] == p.id.as_str()));
    }
    assert_eq!(transmitted(&phones), (40, 0), "40 parts, none twice");
    let used: std::collections::HashSet<String> = {
        let (_, list) = http.req("GET", "/v1/messages?limit=500", KEY_A, None).await;
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .flat_map(|m| m["recipients"].as_array().expect("recipients").clone())
            .map(|r| r["phone"].as_str().expect("phone").to_string())
            .collect()
    };
    assert_eq!(used.len(), 3, "load spread over every phone");
    let (s, _) = http.req("GET", "/v1/messages/s-3", KEY_B, None).await;
    assert_eq!(s, 404, "another tenant sees nothing");

    // Incoming SMS: into the inbox and to a waiting caller.
    let waiter = {
        let http = Http::new(&srv.url);
        tokio::spawn(async move {
            http.req(
                "GET",
                "/v1/inbox/wait?contains=4242&timeout=20",
                KEY_A,
                None,
            )
            .await
        })
    };
    phones[1]
        .modem
        .inject_incoming(Some(1), "+15557654321", "your code is 4242");
    let (s, sms) = waiter.await.expect("waiter");
    assert_eq!(s, 200, "{sms}");
    assert_eq!(sms["from"], "+15557654321");
    assert_eq!(sms["phone"], phones[1].id.as_str());

    // Cancel: a message scheduled an hour ahead sits on its phone until cancelled there.
    let later = simrelay_server::time_fmt::fmt_ms(simrelay_server::store::now_ms() + 3_600_000);
    let (s, _) = http.req("POST", "/v1/messages", KEY_A, Some(json!({"to": ["+15551239999"], "text": "later", "id": "sched", "schedule_at": later}))).await;
    assert_eq!(s, 202);
    wait_until(&srv.state, "the scheduled message accepted", || async {
        let (_, m) = http.req("GET", "/v1/messages/sched", KEY_A, None).await;
        m["state"] == "queued"
    })
    .await;
    let (s, m) = http.req("DELETE", "/v1/messages/sched", KEY_A, None).await;
    assert_eq!((s, &m["state"]), (200, &json!("cancelling")));
    wait_until(&srv.state, "the cancel confirmed by the phone", || async {
        let (_, m) = http.req("GET", "/v1/messages/sched", KEY_A, None).await;
        m["state"] == "cancelled"
    })
    .await;
    assert_eq!(
        transmitted(&phones).0,
        40,
        "the cancelled message never left"
    );

    for p in &mut phones {
        p.phone.take().expect("running").shutdown().await;
    }
    srv.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_drop_and_relay_restart_lose_nothing_and_send_nothing_twice() {
    const N: usize = 150;
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.offline_grace = Duration::from_secs(60)).await;
    let addr = srv.addr;
    let http = Http::new(&srv.url);
    let slow = SimBehaviour {
        latency_ms: 5,
        report_delay_ms: 5,
        ..SimBehaviour::default()
    };
    let mut phones = Vec::new();
    for n in 0..2 {
        phones.push(add_phone(&http, &srv, dir.path(), n, slow.clone()).await);
    }
    for i in 0..N {
        let (s, _) = http.req("POST", "/v1/messages", KEY_A, Some(json!({"to": [format!("+1555200{i:04}")], "text": format!("batch {i}"), "id": format!("b-{i}")}))).await;
        assert_eq!(s, 202);
    }
    wait_until(&srv.state, "a first few deliveries", || async {
        count_in_state(&http, "delivered").await >= 10
    })
    .await;

    // Phone 0 goes away mid-batch and comes back on the same store.
    let p0 = &mut phones[0];
    p0.phone.take().expect("running").shutdown().await;
    p0.phone = Some(start_phone(&p0.db, &p0.link, &p0.modem));

    // The relay restarts on the same port and data directory.
    wait_until(&srv.state, "more deliveries", || async {
        count_in_state(&http, "delivered").await >= 40
    })
    .await;
    srv.stop().await.expect("stops");
    let srv = server(dir.path(), |c| c.listen = addr).await;
    let http = Http::new(&srv.url);

    let finals = ["delivered", "failed", "expired", "cancelled", "unknown"];
    wait_until(&srv.state, "every message final", || async {
        let mut n = 0;
        for st in finals {
            n += count_in_state(&http, st).await;
        }
        n == N
    })
    .await;
    let (total, dups) = transmitted(&phones);
    assert_eq!(dups, 0, "no part was transmitted twice");
    assert_eq!(total, N as u64, "every message left exactly once");
    let (_, list) = http.req("GET", "/v1/messages?limit=500", KEY_A, None).await;
    let by_state: Vec<Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["state"].clone())
        .collect();
    assert!(by_state.iter().all(|s| s == "delivered"), "{by_state:?}");
    for p in &mut phones {
        p.phone.take().expect("running").shutdown().await;
    }
    srv.stop().await.expect("stops");
}
