//! Spend and volume limits and SMS-pumping protection over a real relay (SQLite, or
//! PostgreSQL when `SIMRELAY_TEST_DATABASE_URL` is set) with raw WebSocket phones: a cap
//! reached mid-batch refuses the rest with 429 `limit_reached` (nothing stored) while other
//! accounts send; concurrent submits never cross a cap; a destination outside the allow-list
//! is a 403 naming the recipient's index; a burst of new numbers in one prefix holds only
//! that prefix's recipients until a person releases or blocks it; a held recipient past its
//! validity ends `failed`, `limit_reached`; webhooks, `GET /v1/account` and `/metrics` tell.
//!
//! Absence of a frame is shown without waiting for it: frames reach a phone in order, so the
//! next `send` after a held message is the message sent after it.

mod common;

use common::{Http, KEY_A, KEY_B, RawPhone, paired_phone, server, update};
use serde_json::{Value, json};
use simrelay_protocol::{OutboundMessage, PhoneFrame, RecipientState, RelayFrame};

const ADMIN: &str = "admin-key-0123456789abcdef0123456789";

/// A raw phone that reports every recipient it gets as `sent` (so its SIM's pace always
/// has room for the next).
struct Phone {
    p: RawPhone,
    seq: u64,
}

impl Phone {
    async fn connect(http: &Http, ws_url: &str, key: &str) -> Self {
        let (_, token) = paired_phone(http, ws_url, key).await;
        let (p, _) = RawPhone::hello(ws_url, &token, 0).await;
        Self { p, seq: 0 }
    }
}

/// The next `send` frame (acks skipped); its recipients are reported `sent`.
async fn next_send(p: &mut Phone) -> OutboundMessage {
    loop {
        match p.p.recv().await {
            Some(RelayFrame::Send { message, .. }) => {
                for r in &message.recipients {
                    p.seq += 1;
                    let event = update(&message.id, r.idx, RecipientState::Sent);
                    p.p.send(&PhoneFrame::Event { seq: p.seq, event }).await;
                }
                return message;
            }
            Some(RelayFrame::Ack { .. }) => {}
            other => panic!("expected a send, got {other:?}"),
        }
    }
}

async fn send(http: &Http, key: &str, id: &str, to: &[&str]) -> (u16, Value) {
    http.req(
        "POST",
        "/v1/messages",
        key,
        Some(json!({"id": id, "to": to, "text": "hello"})),
    )
    .await
}

async fn accepted(http: &Http, key: &str, id: &str, to: &[&str]) -> Value {
    let (s, v) = send(http, key, id, to).await;
    assert_eq!(s, 202, "{v}");
    v
}

/// Asserts a refusal's status and code, that its text names no number, and that nothing
/// was stored under `id`.
async fn refused(http: &Http, key: &str, id: &str, to: &[&str], status: u16, code: &str) -> String {
    let (s, v) = send(http, key, id, to).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (status, Some(code)),
        "{v}"
    );
    let text = v["error"]["message"]
        .as_str()
        .expect("a message")
        .to_string();
    for n in to {
        assert!(!text.contains(&n[1..]), "no number in error texts: {text}");
    }
    let (s, _) = http
        .req("GET", &format!("/v1/messages/{id}"), key, None)
        .await;
    assert_eq!(s, 404, "a refused request stores nothing");
    text
}

async fn account_id(http: &Http, key: &str) -> String {
    let (s, v) = http.req("GET", "/v1/account", key, None).await;
    assert_eq!(s, 200, "{v}");
    v["account"].as_str().expect("account").to_string()
}

async fn set_limits(http: &Http, account: &str, limits: Value) -> Value {
    let (s, v) = http
        .req(
            "PUT",
            &format!("/v1/accounts/{account}/limits"),
            ADMIN,
            Some(limits),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// `/metrics` as the account's own key sees it.
async fn metrics_of(http: &Http, key: &str) -> String {
    http.client
        .get(format!("{}/metrics", http.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text")
}

fn usage<'a>(account: &'a Value, limit: &str) -> &'a Value {
    account["usage"]
        .as_array()
        .expect("usage")
        .iter()
        .find(|u| u["limit"] == limit)
        .unwrap_or_else(|| panic!("no {limit} in {account}"))
}

/// A receiver on 127.0.0.1:0 that reports every webhook body.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).expect("json body");
                let _ = tx.send(v);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn next_hook(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("a webhook within 30 s")
        .expect("open")
}

async fn subscribe(http: &Http, url: &str, events: &[&str]) {
    let (s, v) = http
        .req(
            "POST",
            "/v1/webhooks",
            KEY_A,
            Some(json!({"url": url, "events": events})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test]
async fn a_cap_reached_mid_batch_refuses_the_rest_and_other_accounts_send() {
    let (url, mut hooks) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.admin_key = Some(ADMIN.into())).await;
    let http = Http::new(&srv.url);
    let a = account_id(&http, KEY_A).await;
    subscribe(&http, &url, &["account.limit_reached"]).await;
    let mut pa = Phone::connect(&http, &srv.ws_url(), KEY_A).await;
    let mut pb = Phone::connect(&http, &srv.ws_url(), KEY_B).await;

    // No limits set: used is counted, nothing is capped.
    let (_, v) = http.req("GET", "/v1/account", KEY_A, None).await;
    assert_eq!(v["limits"], Value::Null, "{v}");
    assert_eq!(usage(&v, "daily")["cap"], Value::Null);

    let v = set_limits(&http, &a, json!({"daily_parts": 5, "pumping": null})).await;
    assert_eq!(usage(&v, "daily")["cap"], 5);
    assert_eq!(usage(&v, "daily")["remaining"], 5);

    // 2 + 2 parts (two recipients each) go out; a third message of two recipients would make
    // 6 of 5: refused whole, nothing stored. A single recipient still fits, then nothing.
    accepted(&http, KEY_A, "a1", &["+15550000001", "+15550000002"]).await;
    assert_eq!(next_send(&mut pa).await.id, "a1");
    accepted(&http, KEY_A, "a2", &["+15550000003", "+15550000004"]).await;
    assert_eq!(next_send(&mut pa).await.id, "a2");
    let text = refused(
        &http,
        KEY_A,
        "a3",
        &["+15550000005", "+15550000006"],
        429,
        "limit_reached",
    )
    .await;
    assert!(text.contains("daily"), "{text}");
    accepted(&http, KEY_A, "a4", &["+15550000007"]).await;
    assert_eq!(next_send(&mut pa).await.id, "a4");
    refused(&http, KEY_A, "a5", &["+15550000008"], 429, "limit_reached").await;

    // One webhook for the daily cap, however often it refuses.
    let h = next_hook(&mut hooks).await;
    assert_eq!(h["event"], "account.limit_reached", "{h}");
    assert_eq!(h["data"]["limit"], "daily");
    assert_eq!(h["data"]["cap"], 5);

    let (_, v) = http.req("GET", "/v1/account", KEY_A, None).await;
    assert_eq!(usage(&v, "daily")["used"], 5, "{v}");
    assert_eq!(usage(&v, "daily")["remaining"], 0);
    assert_eq!(usage(&v, "monthly")["used"], 5);
    let m = metrics_of(&http, KEY_A).await;
    assert!(m.contains("simrelay_limit_used{limit=\"daily\""), "{m}");
    assert!(
        m.contains("simrelay_limit_remaining{limit=\"daily\""),
        "{m}"
    );
    assert!(m.contains("simrelay_paused_prefixes 0"), "{m}");

    // Account B has no cap: it sends and its phone gets it.
    accepted(&http, KEY_B, "b1", &["+15550000009"]).await;
    assert_eq!(next_send(&mut pb).await.id, "b1");

    // Raising the cap lets A send again; the webhook is not repeated in the period.
    set_limits(&http, &a, json!({"daily_parts": 6, "pumping": null})).await;
    accepted(&http, KEY_A, "a6", &["+15550000010"]).await;
    assert_eq!(next_send(&mut pa).await.id, "a6");
    refused(&http, KEY_A, "a7", &["+15550000011"], 429, "limit_reached").await;
    let (_, v) = http.req("GET", "/v1/account", KEY_A, None).await;
    assert_eq!(usage(&v, "daily")["used"], 6, "{v}");
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), hooks.recv())
            .await
            .is_err(),
        "account.limit_reached once per limit and period"
    );
    srv.stop().await.expect("stops");
}

/// A suppressed recipient counts nothing, unless its message overrides the list (it goes
/// out, so it counts): the cap is checked with the parts that will be sent.
#[tokio::test]
async fn an_override_counts_its_listed_recipients_against_the_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.admin_key = Some(ADMIN.into())).await;
    let http = Http::new(&srv.url);
    let a = account_id(&http, KEY_A).await;
    set_limits(&http, &a, json!({"daily_parts": 1, "pumping": null})).await;
    let (s, v) = http
        .req(
            "PUT",
            "/v1/account/opt-out",
            KEY_A,
            Some(json!({"allow_override": true})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = http
        .req(
            "POST",
            "/v1/suppressions",
            KEY_A,
            Some(json!({"number": "+15550009001"})),
        )
        .await;
    assert!(s == 200 || s == 201, "{s} {v}");
    // Suppressed: counts nothing.
    accepted(&http, KEY_A, "s1", &["+15550009001"]).await;
    let (_, v) = http.req("GET", "/v1/account", KEY_A, None).await;
    assert_eq!(usage(&v, "daily")["used"], 0, "{v}");
    // Overridden: goes out and counts; the cap is then full, for overrides too.
    let transactional = |id: &str| json!({"id": id, "to": ["+15550009001"], "text": "code 1234", "transactional": true});
    let (s, v) = http
        .req("POST", "/v1/messages", KEY_A, Some(transactional("t1")))
        .await;
    assert_eq!(s, 202, "{v}");
    let (_, v) = http.req("GET", "/v1/account", KEY_A, None).await;
    assert_eq!(usage(&v, "daily")["used"], 1, "{v}");
    let (s, v) = http
        .req("POST", "/v1/messages", KEY_A, Some(transactional("t2")))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("limit_reached")),
        "{v}"
    );
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn concurrent_submits_never_cross_a_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.admin_key = Some(ADMIN.into())).await;
    let http = Http::new(&srv.url);
    let a = account_id(&http, KEY_A).await;
    set_limits(&http, &a, json!({"monthly_parts": 10, "pumping": null})).await;
    let sends = (0..30).map(|i| {
        let http = &http;
        async move {
            let to = format!("+1555100{i:04}");
            send(http, KEY_A, &format!("c{i}"), &[to.as_str()]).await.0
        }
    });
    let statuses = futures_util::future::join_all(sends).await;
    let ok = statuses.iter().filter(|s| **s == 202).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (10, 20), "{statuses:?}");
    let (_, v) = http.req("GET", "/v1/account", KEY_A, None).await;
    assert_eq!(usage(&v, "monthly")["used"], 10, "{v}");
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn destinations_outside_the_allow_list_are_refused_and_bad_limits_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.admin_key = Some(ADMIN.into())).await;
    let http = Http::new(&srv.url);
    let a = account_id(&http, KEY_A).await;
    let v = set_limits(
        &http,
        &a,
        json!({"allowed_calling_codes": ["353", "44"], "country_daily_parts": {"44": 2}}),
    )
    .await;
    assert_eq!(v["allowed_calling_codes"], json!(["353", "44"]));
    assert_eq!(v["limits"]["pumping"]["threshold"], 20, "defaults: {v}");

    let text = refused(
        &http,
        KEY_A,
        "x1",
        &["+447700900001", "+15551230000"],
        403,
        "destination_not_allowed",
    )
    .await;
    assert!(text.contains("to[1]"), "{text}");
    accepted(&http, KEY_A, "x2", &["+447700900001", "+353861234567"]).await;
    // The per-country cap: 2 parts a day to +44 (one used).
    accepted(&http, KEY_A, "x3", &["+447700900002"]).await;
    let text = refused(&http, KEY_A, "x4", &["+447700900003"], 429, "limit_reached").await;
    assert!(text.contains("daily:44"), "{text}");
    accepted(&http, KEY_A, "x5", &["+353861234568"]).await;
    let (_, v) = http.req("GET", "/v1/account", KEY_A, None).await;
    assert_eq!(usage(&v, "daily:44")["used"], 2, "{v}");
    assert_eq!(usage(&v, "daily")["used"], 4);

    // Bad limits: 400 and the stored limits stay as they were.
    let path = format!("/v1/accounts/{a}/limits");
    for (bad, code) in [
        (json!({"allowed_calling_codes": ["4"]}), "invalid_limits"),
        (json!({"country_daily_parts": {"abc": 1}}), "invalid_limits"),
        (json!({"pumping": {"threshold": 0}}), "invalid_limits"),
        (json!({"pumping": {"prefix_digits": 40}}), "invalid_limits"),
        (json!({"daily_parts": -1}), "invalid_body"),
        (json!({"daily": 5}), "invalid_body"),
    ] {
        let (s, v) = http.req("PUT", &path, ADMIN, Some(bad.clone())).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some(code)),
            "{bad}: {v}"
        );
    }
    let (s, v) = http.req("GET", &path, ADMIN, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["allowed_calling_codes"], json!(["353", "44"]), "{v}");
    let (s, _) = http
        .req("PUT", "/v1/accounts/nope/limits", ADMIN, Some(json!({})))
        .await;
    assert_eq!(s, 404);
    // An account key may read its own limits but not set them.
    let (s, v) = http.req("PUT", &path, KEY_A, Some(json!({}))).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("insufficient_scope"))
    );
    // Account B is not restricted.
    accepted(&http, KEY_B, "y1", &["+15551230000"]).await;
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn a_pumping_burst_pauses_only_that_prefix() {
    let (url, mut hooks) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.admin_key = Some(ADMIN.into())).await;
    let http = Http::new(&srv.url);
    let a = account_id(&http, KEY_A).await;
    subscribe(
        &http,
        &url,
        &["account.pumping_suspected", "message.failed"],
    )
    .await;
    set_limits(
        &http,
        &a,
        json!({"pumping": {"threshold": 3, "window_minutes": 10, "prefix_digits": 7}}),
    )
    .await;
    let mut p = Phone::connect(&http, &srv.ws_url(), KEY_A).await;

    // Three new numbers in 4477009 go out; the fourth crosses the threshold and is held.
    for i in 1..=3 {
        let to = format!("+44770090000{i}");
        accepted(&http, KEY_A, &format!("p{i}"), &[to.as_str()]).await;
        assert_eq!(next_send(&mut p).await.id, format!("p{i}"));
    }
    let v = accepted(&http, KEY_A, "p4", &["+447700900004", "+447710100001"]).await;
    assert_eq!(v["recipients"][0]["state"], "held", "{v}");
    assert_eq!(v["recipients"][1]["state"], "pending", "{v}");
    // The other prefix's recipient goes out alone.
    let m = next_send(&mut p).await;
    assert_eq!((m.id.as_str(), m.recipients.len()), ("p4", 1));
    assert_eq!(m.recipients[0].to, "+447710100001");
    let h = next_hook(&mut hooks).await;
    assert_eq!(h["event"], "account.pumping_suspected", "{h}");
    assert_eq!(h["data"]["prefix"], "4477009");
    assert_eq!(h["data"]["new_numbers"], 4);

    // A number already sent to, in the paused prefix, is held too; another prefix is not.
    let v = accepted(&http, KEY_A, "p5", &["+447700900001"]).await;
    assert_eq!(v["state"], "held", "{v}");
    accepted(&http, KEY_A, "p6", &["+447710100002"]).await;
    assert_eq!(
        next_send(&mut p).await.id,
        "p6",
        "p5 never reaches the phone"
    );
    let (_, v) = http.req("GET", "/v1/account", KEY_A, None).await;
    let paused = &v["paused_prefixes"][0];
    assert_eq!(
        (
            paused["prefix"].as_str(),
            paused["state"].as_str(),
            paused["held"].as_u64()
        ),
        (Some("4477009"), Some("paused"), Some(2)),
        "{v}"
    );
    let m = metrics_of(&http, KEY_A).await;
    assert!(m.contains("simrelay_paused_prefixes 1"), "{m}");

    // Release: the held recipients go to the phone; the count restarts.
    let (s, v) = http
        .req(
            "POST",
            "/v1/account/paused-prefixes/4477009/release",
            KEY_A,
            None,
        )
        .await;
    assert_eq!((s, v["recipients"].as_u64()), (200, Some(2)), "{v}");
    let mut ids = vec![next_send(&mut p).await.id, next_send(&mut p).await.id];
    ids.sort();
    assert_eq!(ids, ["p4", "p5"]);
    let (s, v) = http
        .req(
            "POST",
            "/v1/account/paused-prefixes/4477009/block",
            KEY_A,
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("prefix_not_paused"))
    );

    // A burst in another prefix, blocked: its held recipients fail with limit_reached and
    // new sends to it are refused at submit.
    for i in 1..=3 {
        let to = format!("+44771020000{i}");
        accepted(&http, KEY_A, &format!("q{i}"), &[to.as_str()]).await;
        assert_eq!(next_send(&mut p).await.id, format!("q{i}"));
    }
    let v = accepted(&http, KEY_A, "q4", &["+447710200004"]).await;
    assert_eq!(v["state"], "held", "{v}");
    assert_eq!(next_hook(&mut hooks).await["data"]["prefix"], "4477102");
    let (s, v) = http
        .req(
            "POST",
            "/v1/account/paused-prefixes/4477102/block",
            KEY_A,
            None,
        )
        .await;
    assert_eq!((s, v["recipients"].as_u64()), (200, Some(1)), "{v}");
    let h = next_hook(&mut hooks).await;
    assert_eq!(h["event"], "message.failed", "{h}");
    assert_eq!(h["data"]["error"], "limit_reached");
    let (_, v) = http.req("GET", "/v1/messages/q4", KEY_A, None).await;
    assert_eq!(
        (v["state"].as_str(), v["recipients"][0]["error"].as_str()),
        (Some("failed"), Some("limit_reached")),
        "{v}"
    );
    refused(
        &http,
        KEY_A,
        "q5",
        &["+447710200009"],
        403,
        "destination_not_allowed",
    )
    .await;
    let (s, v) = http
        .req(
            "POST",
            "/v1/account/paused-prefixes/44-77/release",
            KEY_A,
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_prefix"))
    );
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn a_held_recipient_past_its_validity_fails_with_limit_reached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.admin_key = Some(ADMIN.into())).await;
    let http = Http::new(&srv.url);
    let a = account_id(&http, KEY_A).await;
    set_limits(
        &http,
        &a,
        json!({"pumping": {"threshold": 1, "prefix_digits": 6}}),
    )
    .await;
    accepted(&http, KEY_A, "v1", &["+447700900001"]).await;
    let valid_until =
        simrelay_server::time_fmt::fmt_ms(simrelay_server::store::now_ms() + 3_600_000);
    let (s, v) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"id": "v2", "to": ["+447700900002"], "text": "hi", "valid_until": valid_until})),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (202, Some("held")), "{v}");
    // A held recipient may be cancelled.
    let v = accepted(&http, KEY_A, "v3", &["+447700900003"]).await;
    assert_eq!(v["state"], "held", "{v}");
    let (s, v) = http.req("DELETE", "/v1/messages/v3", KEY_A, None).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("cancelled")), "{v}");
    // The deadline tick with the clock an hour and a minute on (the store takes `now`).
    let later = simrelay_server::store::now_ms() + 3_660_000;
    let ended = srv
        .state
        .db
        .call(move |s| s.expire_unrouted(later, 86_400_000))
        .await
        .expect("tick");
    assert!(ended >= 1, "{ended}");
    let (_, v) = http.req("GET", "/v1/messages/v2", KEY_A, None).await;
    assert_eq!(
        (v["state"].as_str(), v["recipients"][0]["error"].as_str()),
        (Some("failed"), Some("limit_reached")),
        "{v}"
    );
    srv.stop().await.expect("stops");
}
