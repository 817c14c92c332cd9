//! Webhook isolation over a real relay with two accounts: account A's endpoint accepts
//! connections and never answers; account B's events still arrive while A's attempts hang,
//! and A's endpoint never holds more than `PER_ENDPOINT` connections.
//!
//! Before per-endpoint workers, deliveries went in batches joined together: B's events
//! waited for A's attempts to time out (15 s; here the timeout is longer than the test's
//! guard, so the old code fails by the guard, not by a wall-clock threshold).

mod common;
mod webhooks_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Http, KEY_A, KEY_B, RawPhone, paired_phone, server};
use simrelay_protocol::RecipientState;
use simrelay_server::webhooks::PER_ENDPOINT;
use webhooks_support::{black_hole, next, recorder, register, send_and_report, wait_until};

const SECRET: &str = "0123456789abcdef-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_endpoint_delays_no_other_tenant() {
    let (hole, accepted) = black_hole().await;
    let mut b_hook = recorder(SECRET).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| {
        // Far beyond the 60 s guard of `next`: A's attempts hang for the whole test.
        c.webhook_timeout = Duration::from_secs(600);
    })
    .await;
    let http = Http::new(&srv.url);
    let a_id = register(
        &http,
        KEY_A,
        &hole,
        &["phone.online", "message.sent"],
        SECRET,
    )
    .await;
    register(&http, KEY_B, &b_hook.url, &["message.sent"], SECRET).await;

    // A: its phone comes online and sends 6 messages: 7 events for the black hole.
    let (_, a_token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut a_phone, _) = RawPhone::hello(&srv.ws_url(), &a_token, 0).await;
    let ids: Vec<String> = (0..6).map(|i| format!("a-{i}")).collect();
    let mut a_seq = 0;
    send_and_report(
        &http,
        KEY_A,
        &mut a_phone,
        &mut a_seq,
        &ids,
        RecipientState::Sent,
    )
    .await;
    // The black hole holds A's first attempts.
    wait_until("the black hole accepted a connection", || async {
        accepted.load(Ordering::SeqCst) >= 1
    })
    .await;

    // B: 5 messages sent; each `message.sent` arrives although A's attempts never end.
    let (_, b_token) = paired_phone(&http, &srv.ws_url(), KEY_B).await;
    let (mut b_phone, _) = RawPhone::hello(&srv.ws_url(), &b_token, 0).await;
    let ids: Vec<String> = (0..5).map(|i| format!("b-{i}")).collect();
    let mut b_seq = 0;
    send_and_report(
        &http,
        KEY_B,
        &mut b_phone,
        &mut b_seq,
        &ids,
        RecipientState::Sent,
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let v = next(&mut b_hook.rx).await;
        assert_eq!(v["event"], "message.sent");
        got.push(v["data"]["message_id"].as_str().expect("id").to_string());
    }
    got.sort();
    assert_eq!(got, ids);

    // B's deliveries are recorded (the receiver may answer before the relay writes it down),
    // leaving A's 7 pending; none of A's attempts has ended, and the black hole holds at most
    // PER_ENDPOINT connections.
    wait_until("B's deliveries are recorded", || async {
        let counts = srv.state.db.call(|s| s.counts()).await.expect("counts");
        counts.webhooks_pending == 7
    })
    .await;
    let (s, log) = http
        .req(
            "GET",
            &format!("/v1/webhooks/{a_id}/deliveries"),
            KEY_A,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(log["items"].as_array().map(Vec::len), Some(0), "{log}");
    let held = accepted.load(Ordering::SeqCst);
    assert!(
        (1..=PER_ENDPOINT as usize).contains(&held),
        "black hole connections: {held}"
    );
    srv.stop().await.expect("stops");
}
