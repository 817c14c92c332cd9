//! Webhook SSRF over a real relay: internal URLs are refused at registration (IP literals in
//! every spelling, names resolving to internal addresses, credentials), the allow-list permits
//! internal receivers on purpose, deliveries check the address again (a stored URL or a name
//! that became internal is not reached) and redirects are never followed.

mod common;
mod webhooks_support;

use std::sync::atomic::Ordering;

use common::{Http, KEY_A, RawPhone, paired_phone, server};
use serde_json::{Value, json};
use simrelay_server::store::Webhook;
use webhooks_support::{recorder, redirector, register, wait_until};

const SECRET: &str = "0123456789abcdef-secret";

async fn deliveries(http: &Http, id: &str) -> Vec<Value> {
    let (s, v) = http
        .req("GET", &format!("/v1/webhooks/{id}/deliveries"), KEY_A, None)
        .await;
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn internal_urls_are_refused_at_registration_without_echoing_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.webhook_allow_cidrs.clear()).await;
    let http = Http::new(&srv.url);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://[::1]/",
        "http://10.0.0.8/",
        "http://172.16.3.4/",
        "http://192.168.0.1/",
        "http://100.64.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fd12::1]/",
        "http://224.0.0.251/",
        "http://0.0.0.0/",
        "http://255.255.255.255/",
        "http://192.0.2.10/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost:9/hook",
        "http://user:hunter2secret@example.com/hook",
    ] {
        let (s, v) = http
            .req(
                "POST",
                "/v1/webhooks",
                KEY_A,
                Some(json!({"url": url, "events": ["message.sent"]})),
            )
            .await;
        assert_eq!(s, 400, "{url}: {v}");
        assert_eq!(v["error"]["code"], "webhook_url_forbidden", "{url}: {v}");
        let text = v["error"]["message"].as_str().expect("message");
        assert!(!text.contains("hunter2"), "{url}: {text}");
    }
    for url in ["ftp://example.com/", "file:///etc/passwd", "no url"] {
        let (s, v) = http
            .req(
                "POST",
                "/v1/webhooks",
                KEY_A,
                Some(json!({"url": url, "events": ["message.sent"]})),
            )
            .await;
        assert_eq!(s, 400, "{url}: {v}");
        assert_eq!(v["error"]["code"], "invalid_url", "{url}: {v}");
    }
    let (s, v) = http
        .req(
            "POST",
            "/v1/webhooks",
            KEY_A,
            Some(json!({"url": "http://no-such-host.invalid/", "events": ["message.sent"]})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "webhook_url_unresolvable");
    let (_, list) = http.req("GET", "/v1/webhooks", KEY_A, None).await;
    assert_eq!(list["items"], json!([]), "nothing was stored");
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn the_allow_list_permits_only_the_networks_it_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The common config allows 127.0.0.1/32.
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    for (url, want) in [
        ("http://127.0.0.1:9/hook", 201),
        ("http://2130706433:9/hook", 201),
        ("http://127.0.0.2:9/hook", 400),
        ("http://[::1]:9/hook", 400),
        ("http://10.0.0.1/", 400),
        ("http://user:pw@127.0.0.1:9/hook", 400),
    ] {
        let (s, v) = http
            .req(
                "POST",
                "/v1/webhooks",
                KEY_A,
                Some(json!({"url": url, "events": ["message.sent"]})),
            )
            .await;
        assert_eq!(s, want, "{url}: {v}");
        if want == 201 {
            assert_eq!(v["url"], "http://127.0.0.1:9/hook", "normalised");
        }
    }
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn deliveries_check_the_address_again() {
    let mut rec = recorder(SECRET).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Registered while the allow-list named 127.0.0.1 ...
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let literal = register(&http, KEY_A, &rec.url, &["phone.online"], SECRET).await;
    srv.stop().await.expect("stops");
    // ... then the relay runs without it. A name that resolves to loopback (as a name that
    // re-resolves to an internal address after registration would) is stored directly.
    let srv = server(dir.path(), |c| c.webhook_allow_cidrs.clear()).await;
    let http = Http::new(&srv.url);
    let by_name = rec.url.replace("127.0.0.1", "localhost");
    let account = srv
        .state
        .db
        .call(|s| s.account_for_key(&simrelay_server::api::hash_secret(KEY_A)))
        .await
        .expect("store")
        .expect("account");
    let hook = Webhook {
        id: "rebound".into(),
        url: by_name,
        events: vec!["phone.online".into()],
        secret: SECRET.into(),
        created_at: 1,
    };
    srv.state
        .db
        .call(move |s| s.create_webhook(&account, &hook))
        .await
        .expect("stored");
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (_p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    for id in [literal.as_str(), "rebound"] {
        wait_until("an attempt is logged", || async {
            !deliveries(&http, id).await.is_empty()
        })
        .await;
        let log = deliveries(&http, id).await;
        assert_eq!(log[0]["event"], "phone.online");
        assert_eq!(log[0]["status"], Value::Null, "{log:?}");
        assert!(
            log[0]["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("refused")),
            "{log:?}"
        );
    }
    // The ping goes through the same guard.
    let (s, v) = http
        .req("POST", &format!("/v1/webhooks/{literal}/ping"), KEY_A, None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(
        rec.calls.load(Ordering::SeqCst),
        0,
        "the receiver saw nothing"
    );
    assert!(rec.rx.try_recv().is_err());
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let target = recorder(SECRET).await;
    let (url, redirects) = redirector(target.url.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| {
        c.webhook_max_attempts = 1;
    })
    .await;
    let http = Http::new(&srv.url);
    let id = register(&http, KEY_A, &url, &["phone.online"], SECRET).await;
    // A queued event: one attempt, answered 307, recorded as failed (and dead: 1 attempt).
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (_p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    wait_until("the attempt is logged", || async {
        !deliveries(&http, &id).await.is_empty()
    })
    .await;
    let log = deliveries(&http, &id).await;
    assert_eq!(log[0]["status"], 307, "{log:?}");
    assert!(log[0]["error"].as_str().is_some_and(|e| e.contains("307")));
    assert_eq!(log[0]["delivery_state"], "dead");
    // The test ping: the same.
    let (s, v) = http
        .req("POST", &format!("/v1/webhooks/{id}/ping"), KEY_A, None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], 307);
    assert_eq!(v["ok"], false);
    assert_eq!(redirects.load(Ordering::SeqCst), 2);
    assert_eq!(
        target.calls.load(Ordering::SeqCst),
        0,
        "the redirect target saw no request"
    );
    srv.stop().await.expect("stops");
}
