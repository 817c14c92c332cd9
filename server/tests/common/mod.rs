//! Shared helpers of the relay's integration tests: relays on 127.0.0.1:0 in a temp dir,
//! API keys, JSON requests, and a raw WebSocket phone that speaks frames.

#![allow(dead_code)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use serde_json::Value;
use simrelay_protocol::{
    Event, PROTOCOL_VERSION, PhoneFrame, PhoneStatus, RecipientState, RecipientUpdate, RelayFrame,
    SimInfo, decode_relay_frame, encode,
};
use simrelay_server::config::Config;
use simrelay_server::{AppState, Server, api, app, store};
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

pub const KEY_A: &str = "key-account-a-0123456789abcdef";
pub const KEY_B: &str = "key-account-b-0123456789abcdef";
/// The test relays' `metrics_token` (every figure of `/metrics`).
pub const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

/// A test relay's configuration: SQLite in `dir`, or, when `SIMRELAY_TEST_DATABASE_URL` is
/// set, a scratch schema of that PostgreSQL database kept for `dir` (a relay restarted on the
/// same directory finds its data).
pub fn config(dir: &std::path::Path) -> Config {
    let mut c = Config::for_data_dir(dir);
    c.database_url = simrelay_server::store::postgres::scratch::database_url_for(dir);
    c.api_key = Some(KEY_A.into());
    c.metrics_token = Some(METRICS_TOKEN.into());
    // The tests' webhook receivers listen on 127.0.0.1 (internal, refused by default).
    c.webhook_allow_cidrs = vec!["127.0.0.1/32".parse().expect("cidr")];
    c
}

pub async fn add_key(state: &AppState, key: &str) -> String {
    let hash = api::hash_secret(key);
    let now = store::now_ms();
    state
        .db
        .call(move |s| s.ensure_api_key(&hash, now))
        .await
        .expect("key stored")
}

pub async fn state(dir: &std::path::Path) -> AppState {
    let st = AppState::open(config(dir), None)
        .await
        .expect("relay state opens");
    add_key(&st, KEY_B).await;
    st
}

/// One request through `app(state)` without a socket: (status, JSON body or Null).
pub async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request builds");
    let res = app(state.clone()).oneshot(req).await.expect("infallible");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

pub fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "body: {body}");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

/// A relay serving on 127.0.0.1:0.
pub async fn server(dir: &std::path::Path, tweak: impl FnOnce(&mut Config)) -> Server {
    let mut c = config(dir);
    tweak(&mut c);
    let s = Server::start(c).await.expect("relay starts");
    add_key(&s.state, KEY_B).await;
    s
}

pub struct Http {
    pub client: reqwest::Client,
    pub base: String,
}

impl Http {
    /// The whole `/metrics` text, read with the metrics token.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text")
    }

    pub fn new(base: &str) -> Self {
        simrelay_server::install_crypto_provider();
        Self {
            client: reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .build()
                .expect("client"),
            base: base.to_string(),
        }
    }

    pub async fn req(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut r = self
            .client
            .request(m, format!("{}{}", self.base, path))
            .bearer_auth(key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.expect("request sent");
        let status = res.status().as_u16();
        let v = res.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }
}

impl Http {
    /// Asserts that the relay answers `GET /healthz` with 200.
    pub async fn healthy(&self) {
        let res = self
            .client
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .expect("relay answers");
        assert_eq!(res.status(), 200);
    }
}

pub fn sim(sub_id: i32) -> SimInfo {
    SimInfo {
        sub_id,
        slot: 0,
        carrier: None,
        parts_per_minute: 30,
        daily_cap: 0,
        sent_today: 0,
    }
}

pub fn status() -> PhoneStatus {
    PhoneStatus {
        sims: vec![sim(1)],
        queue_depth: 0,
        battery: None,
        charging: None,
        app_version: "test".into(),
    }
}

/// A phone's report that recipient `idx` of `message_id` reached `state` (one part, SIM 1).
pub fn update(message_id: &str, idx: u32, state: RecipientState) -> Event {
    Event::Recipient(RecipientUpdate {
        message_id: message_id.into(),
        idx,
        state,
        at: 1,
        reason: None,
        code: None,
        sim: Some(1),
        parts: 1,
        parts_sent: u32::from(state >= RecipientState::Sent),
        parts_delivered: u32::from(state == RecipientState::Delivered),
        unsent: false,
    })
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A phone speaking raw frames.
pub struct RawPhone {
    pub ws: Ws,
}

impl RawPhone {
    pub async fn connect(ws_url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("ws connects");
        Self { ws }
    }

    pub async fn send(&mut self, f: &PhoneFrame) {
        self.ws
            .send(Message::text(encode(f)))
            .await
            .expect("frame sent");
    }

    pub async fn send_text(&mut self, t: &str) {
        self.ws
            .send(Message::text(t.to_string()))
            .await
            .expect("frame sent");
    }

    /// Next relay frame (heartbeats skipped); None when the link closed. Bounded by 10 s.
    pub async fn recv(&mut self) -> Option<RelayFrame> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a frame within 10 s");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let f = decode_relay_frame(t.as_str()).expect("relay frames decode");
                    if matches!(f, RelayFrame::Heartbeat { .. }) {
                        continue;
                    }
                    return Some(f);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Pairs with `code`; returns (phone_id, token) or the error code.
    pub async fn pair(ws_url: &str, code: &str) -> Result<(String, String), String> {
        let mut p = Self::connect(ws_url).await;
        p.send(&PhoneFrame::Pair {
            version: PROTOCOL_VERSION,
            code: code.into(),
            name: Some("test phone".into()),
        })
        .await;
        match p.recv().await {
            Some(RelayFrame::Paired {
                phone_id, token, ..
            }) => Ok((phone_id, token)),
            Some(RelayFrame::Error { code, .. }) => Err(code),
            other => panic!("unexpected answer to pair: {other:?}"),
        }
    }

    /// Connects and says hello; returns the phone and welcome's `acked`.
    pub async fn hello(ws_url: &str, token: &str, acked: u64) -> (Self, u64) {
        let mut p = Self::connect(ws_url).await;
        p.send(&PhoneFrame::Hello {
            version: PROTOCOL_VERSION,
            token: token.into(),
            acked,
            status: status(),
        })
        .await;
        match p.recv().await {
            Some(RelayFrame::Welcome { acked, .. }) => (p, acked),
            other => panic!("expected welcome, got {other:?}"),
        }
    }
}

/// Pairs a fresh phone to the account of `key` on a running server.
pub async fn paired_phone(http: &Http, ws_url: &str, key: &str) -> (String, String) {
    let (st, body) = http.req("POST", "/v1/pairing-codes", key, None).await;
    assert_eq!(st, 201, "{body}");
    let code = body["code"].as_str().expect("code").to_string();
    RawPhone::pair(ws_url, &code).await.expect("pairing works")
}
