//! Receivers for the webhook tests (all on 127.0.0.1:0): one that records every signed
//! request and answers a status the test may change, one that redirects, and a black hole
//! that accepts connections and never answers. Plus a phone's round of sent reports.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use simrelay_protocol::{PhoneFrame, RecipientState, RelayFrame};
use tokio::sync::mpsc;

use crate::common::{Http, RawPhone, update};

/// A receiver that reports every request's JSON body and answers `status`.
pub struct Recorder {
    pub url: String,
    pub rx: mpsc::UnboundedReceiver<Value>,
    pub status: Arc<AtomicU16>,
    pub calls: Arc<AtomicUsize>,
}

pub async fn recorder(secret: &'static str) -> Recorder {
    let (tx, rx) = mpsc::unbounded_channel();
    let status = Arc::new(AtomicU16::new(200));
    let calls = Arc::new(AtomicUsize::new(0));
    let (st, c) = (status.clone(), calls.clone());
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let (tx, st, c) = (tx.clone(), st.clone(), c.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            let h = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            let body = String::from_utf8(body.to_vec()).expect("utf-8");
            let ts: i64 = h("x-simrelay-timestamp").parse().expect("timestamp header");
            assert_eq!(
                h("x-simrelay-signature"),
                simrelay_server::webhooks::sign(secret, ts, &body),
                "signature verifies"
            );
            let _ = tx.send(serde_json::from_str::<Value>(&body).expect("json body"));
            StatusCode::from_u16(st.load(Ordering::SeqCst)).expect("status")
        }
    });
    let url = serve(app).await;
    Recorder {
        url: format!("{url}/hook"),
        rx,
        status,
        calls,
    }
}

/// A receiver answering `307` to `location`; returns its URL and its request count.
pub async fn redirector(location: String) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let (c, location) = (c.clone(), location.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, location)],
            )
        }
    });
    (format!("{}/hook", serve(app).await), calls)
}

/// Accepts TCP connections and never answers (nor closes them); returns its URL and how many
/// connections it accepted.
pub async fn black_hole() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (url, accepted)
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The next webhook a recorder got, within a generous guard.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("a webhook within 60 s")
        .expect("open")
}

/// Waits (with a 60 s guard) until `check` holds, re-checking whenever the relay's webhook
/// worker may have moved (each check is a round trip; no fixed sleeps).
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::task::yield_now().await;
    }
}

/// Registers a webhook; returns its id.
pub async fn register(http: &Http, key: &str, url: &str, events: &[&str], secret: &str) -> String {
    let (s, v) = http
        .req(
            "POST",
            "/v1/webhooks",
            key,
            Some(json!({"url": url, "events": events, "secret": secret})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().expect("id").to_string()
}

/// Posts one message per id to the account of `key`, takes each `send` frame on `phone` and
/// reports the recipient queued, then `end`. `seq` is the phone's event counter.
pub async fn send_and_report(
    http: &Http,
    key: &str,
    phone: &mut RawPhone,
    seq: &mut u64,
    ids: &[String],
    end: RecipientState,
) {
    for id in ids {
        let (s, v) = http
            .req(
                "POST",
                "/v1/messages",
                key,
                Some(json!({"to": ["+15551230001"], "text": "hi", "id": id})),
            )
            .await;
        assert_eq!(s, 202, "{v}");
    }
    for _ in ids {
        // Acks of the phone's earlier events may come first.
        let message = loop {
            match phone.recv().await {
                Some(RelayFrame::Send { message, .. }) => break message,
                Some(RelayFrame::Ack { .. }) => continue,
                other => panic!("a send frame, got {other:?}"),
            }
        };
        for state in [RecipientState::Queued, end] {
            *seq += 1;
            phone
                .send(&PhoneFrame::Event {
                    seq: *seq,
                    event: update(&message.id, 0, state),
                })
                .await;
        }
    }
}
