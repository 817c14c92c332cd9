//! Webhooks end to end: events leave the durable outbox signed (HMAC over timestamp.body),
//! failures are retried with backoff and end `dead` after the attempt limit.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{Http, KEY_A, RawPhone, paired_phone, server, update};
use serde_json::{Value, json};
use simrelay_protocol::{Event, IncomingSms, PhoneFrame, RecipientState, RelayFrame};
use tokio::sync::mpsc;

/// A receiver on 127.0.0.1:0 that answers 500 to the first `fail_first` calls, then 200, and
/// reports every (event, body) whose signature verifies.
async fn receiver(
    secret: &'static str,
    fail_first: u32,
) -> (String, mpsc::UnboundedReceiver<Value>, Arc<AtomicU32>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (tx, c) = (tx.clone(), c.clone());
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let ts: i64 = h("x-simrelay-timestamp").parse().expect("timestamp header");
                let body = String::from_utf8(body.to_vec()).expect("utf-8");
                let want = simrelay_server::webhooks::sign(secret, ts, &body);
                assert_eq!(h("x-simrelay-signature"), want, "signature verifies");
                let v: Value = serde_json::from_str(&body).expect("json body");
                assert_eq!(h("x-simrelay-event-id"), v["id"].as_str().expect("id"));
                if n < fail_first {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let _ = tx.send(v);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx, calls)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("a webhook within 10 s")
        .expect("open")
}

#[tokio::test]
async fn events_are_signed_retried_and_carry_stable_ids() {
    const SECRET: &str = "0123456789abcdef-secret";
    let (url, mut rx, calls) = receiver(SECRET, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| {
        c.webhook_backoff = Duration::from_millis(20);
        c.offline_grace = Duration::from_millis(50);
    })
    .await;
    let http = Http::new(&srv.url);
    let events = [
        "message.sent",
        "message.delivered",
        "message.received",
        "phone.online",
        "phone.offline",
    ];
    let (s, _) = http
        .req(
            "POST",
            "/v1/webhooks",
            KEY_A,
            Some(json!({"url": url, "events": events, "secret": SECRET})),
        )
        .await;
    assert_eq!(s, 201);

    let (phone_id, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    let online = next(&mut rx).await;
    assert_eq!(online["event"], "phone.online");
    assert_eq!(online["data"]["phone"], phone_id.as_str());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two failures, then delivered"
    );

    http.req(
        "POST",
        "/v1/messages",
        KEY_A,
        Some(json!({"to": ["+15551230001"], "text": "hi", "id": "w1"})),
    )
    .await;
    let Some(RelayFrame::Send { .. }) = p.recv().await else {
        panic!("send")
    };
    let upd = |seq: u64, state| PhoneFrame::Event {
        seq,
        event: update("w1", 0, state),
    };
    p.send(&upd(1, RecipientState::Queued)).await;
    p.send(&upd(2, RecipientState::Sent)).await;
    p.send(&upd(3, RecipientState::Delivered)).await;
    p.send(&PhoneFrame::Event {
        seq: 4,
        event: Event::Incoming(IncomingSms {
            id: "in-9".into(),
            sim: None,
            from: "+15557654321".into(),
            text: "hello back".into(),
            sent_at: None,
            received_at: simrelay_server::store::now_ms(),
            encrypted: false,
            data_port: None,
        }),
    })
    .await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next(&mut rx).await);
    }
    got.sort_by_key(|v| v["event"].as_str().map(str::to_string));
    assert_eq!(got[0]["event"], "message.delivered");
    assert_eq!(got[0]["data"]["message_id"], "w1");
    assert_eq!(got[1]["event"], "message.received");
    assert_eq!(got[1]["data"]["id"], "in-9");
    assert_eq!(got[1]["data"]["text"], "hello back");
    assert_eq!(got[2]["event"], "message.sent");
    assert_eq!(got[2]["data"]["to"], "+15551230001");
    let ids: std::collections::HashSet<_> = got
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids.len(), 3, "each event has its own id");

    // The phone goes away: after the grace, `phone.offline`.
    drop(p);
    let offline = next(&mut rx).await;
    assert_eq!(offline["event"], "phone.offline");
    assert_eq!(offline["data"]["phone"], phone_id.as_str());
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn a_failing_endpoint_ends_dead_after_the_attempt_limit() {
    let (url, _rx, calls) = receiver("0123456789abcdef-secret", u32::MAX).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| {
        c.webhook_backoff = Duration::from_millis(5);
        c.webhook_max_attempts = 3;
    })
    .await;
    let http = Http::new(&srv.url);
    http.req(
        "POST",
        "/v1/webhooks",
        KEY_A,
        Some(json!({"url": url, "events": ["phone.online"], "secret": "0123456789abcdef-secret"})),
    )
    .await;
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (_p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    // Wait for the third (last) attempt, then for the store to record it as dead (the
    // counts are separate reads: one may see the row pending and the next see it dead).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut counts = srv.state.db.call(|s| s.counts()).await.expect("counts");
    while counts.webhooks_dead == 0 || counts.webhooks_pending != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead delivery: {counts:?}"
        );
        tokio::task::yield_now().await;
        counts = srv.state.db.call(|s| s.counts()).await.expect("counts");
    }
    assert_eq!(counts.webhooks_pending, 0);
    let admin = srv.state.take_generated_admin_key().expect("admin key");
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", srv.url))
        .bearer_auth(admin)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("simrelay_webhook_dead 1"), "{metrics}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    srv.stop().await.expect("stops");
}
