//! A phone whose modem worker is not attached (the Android service is stopped while a
//! receiver holds the core) is not ready: its link stays down, the relay sees it offline and
//! routes to the phones that are. Real relay on 127.0.0.1:0, real cores, real WebSockets.

mod common;

use std::time::Duration;

use common::{Http, KEY_A, server};
use serde_json::json;
use simrelay_core::link::pair;
use simrelay_core::phone::{LinkConfig, LinkState, Phone, PhoneConfig};
use simrelay_core::sim_modem::{SimModem, SimModemConfig};
use simrelay_core::{EngineConfig, SimConfig};

/// Failure guard only: each wait ends as soon as its condition holds.
const GUARD: Duration = Duration::from_secs(60);

async fn gated_phone(
    http: &Http,
    ws: &str,
    dir: &std::path::Path,
    n: u32,
) -> (Phone, SimModem, String) {
    let (s, code) = http.req("POST", "/v1/pairing-codes", KEY_A, None).await;
    assert_eq!(s, 201);
    let paired = pair(ws, code["code"].as_str().expect("code"), None, None)
        .await
        .expect("pairs");
    let modem = SimModem::new(SimModemConfig::default());
    let phone = Phone::start(
        PhoneConfig {
            link: Some(LinkConfig {
                url: ws.to_string(),
                token: paired.token,
                pin_sha256: None,
                ..LinkConfig::default()
            }),
            engine: EngineConfig {
                parts_per_minute: 3000,
                jitter: 0.0,
                ..EngineConfig::default()
            },
            needs_worker: true,
            ..PhoneConfig::new(dir.join(format!("phone-{n}.sqlite")))
        },
        Box::new(modem.clone()),
    )
    .expect("phone starts");
    phone
        .handle()
        .set_sims(vec![SimConfig {
            sub_id: 1,
            slot: 0,
            carrier: None,
            parts_per_minute: None,
            daily_cap: None,
        }])
        .expect("sims");
    (phone, modem, paired.phone_id)
}

async fn online(http: &Http, id: &str) -> bool {
    let (_, phones) = http.req("GET", "/v1/phones", KEY_A, None).await;
    phones["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|p| p["id"] == id && p["online"] == true)
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + GUARD;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_without_a_worker_gets_no_work_and_the_relay_routes_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let ws = srv.ws_base();
    let (idle, idle_radio, idle_id) = gated_phone(&http, &ws, dir.path(), 0).await;
    let (busy, busy_radio, busy_id) = gated_phone(&http, &ws, dir.path(), 1).await;
    assert_eq!(idle.handle().status().link, LinkState::Paused);
    busy.handle().set_worker_attached(true);
    until("the attached phone online", || online(&http, &busy_id)).await;
    assert!(
        !online(&http, &idle_id).await,
        "the paused phone is offline"
    );

    const N: usize = 10;
    for i in 0..N {
        let (s, _) = http
            .req(
                "POST",
                "/v1/messages",
                KEY_A,
                Some(json!({"to": [format!("+1555300{i:04}")], "text": format!("gate {i}")})),
            )
            .await;
        assert_eq!(s, 202);
    }
    until("every message sent by the attached phone", || async {
        busy_radio.with_radio(|r| r.total_transmitted()) == N as u64
    })
    .await;
    assert_eq!(
        idle_radio.with_radio(|r| r.total_transmitted()),
        0,
        "the paused phone sent nothing"
    );

    // The roles swap: the detached phone drops its link at once, the other takes the work.
    busy.handle().set_worker_attached(false);
    until("the detached phone offline", || async {
        !online(&http, &busy_id).await
    })
    .await;
    idle.handle().set_worker_attached(true);
    until("the attached phone online", || online(&http, &idle_id)).await;
    let (s, _) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"to": ["+15553009999"], "text": "after the swap"})),
        )
        .await;
    assert_eq!(s, 202);
    until("the swapped-in phone sends it", || async {
        idle_radio.with_radio(|r| r.total_transmitted()) == 1
    })
    .await;
    assert_eq!(busy_radio.with_radio(|r| r.total_transmitted()), N as u64);
    idle.shutdown().await;
    busy.shutdown().await;
    srv.stop().await.expect("stops");
}
