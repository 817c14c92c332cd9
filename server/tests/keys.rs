//! API keys and accounts over a real relay (127.0.0.1:0, reqwest): key strength at start, the
//! generated admin key, create / list / revoke with scopes, revocation seen by a second relay
//! on the same store, last-used throttling, accounts, and `/metrics` protection.

mod common;

use common::{Http, KEY_A, KEY_B, RawPhone, paired_phone, server};
use serde_json::{Value, json};
use simrelay_server::Server;
use simrelay_server::config::Config;

/// A relay with the common config (KEY_A, KEY_B) and its generated admin key.
async fn relay(dir: &std::path::Path, tweak: impl FnOnce(&mut Config)) -> (Server, Http, String) {
    let s = server(dir, tweak).await;
    let admin = s
        .state
        .take_generated_admin_key()
        .expect("an admin key is generated on first start");
    let http = Http::new(&s.url);
    (s, http, admin)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

async fn new_key(http: &Http, key: &str, scopes: &[&str]) -> (String, String) {
    let (st, v) = http
        .req(
            "POST",
            "/v1/keys",
            key,
            Some(json!({"name": "test", "scopes": scopes})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    (
        v["id"].as_str().expect("id").to_string(),
        v["secret"].as_str().expect("secret").to_string(),
    )
}

fn message(id: &str) -> Value {
    json!({"to": ["+15551230001"], "text": "hi", "id": id})
}

#[tokio::test]
async fn short_configured_keys_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (field, set) in [
        (
            "api_key",
            (|c: &mut Config| c.api_key = Some("k".into())) as fn(&mut Config),
        ),
        ("api_key", |c| c.api_key = Some("key-account-a".into())),
        ("api_key", |c| {
            c.api_key = Some("0123456789abcdef0123456789abcde".into())
        }),
        ("admin_key", |c| c.admin_key = Some("admin".into())),
        ("metrics_token", |c| c.metrics_token = Some("a".repeat(40))),
    ] {
        let mut c = Config::for_data_dir(dir.path());
        set(&mut c);
        let err = Server::start(c).await.expect_err("a weak key is refused");
        let text = err.to_string();
        assert!(text.contains(field) && text.contains("128 bits"), "{text}");
    }
    // Nothing was stored by the refused starts.
    assert!(!dir.path().join("relay.sqlite").exists());
}

#[tokio::test]
async fn without_keys_the_relay_generates_an_admin_key_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(Config::for_data_dir(dir.path()))
        .await
        .expect("starts");
    let admin = s.state.take_generated_admin_key().expect("generated");
    assert!(admin.starts_with("sr_") && admin.len() == 67, "{admin}");
    assert_eq!(s.state.take_generated_admin_key(), None, "handed out once");
    let http = Http::new(&s.url);
    let (st, v) = http.req("GET", "/v1/accounts", &admin, None).await;
    assert_eq!(st, 200, "{v}");
    s.stop().await.expect("stops");
    // The second start finds the admin key in the store: none is generated, the first works.
    let s = Server::start(Config::for_data_dir(dir.path()))
        .await
        .expect("starts again");
    assert_eq!(s.state.take_generated_admin_key(), None);
    let http = Http::new(&s.url);
    let (st, _) = http.req("GET", "/v1/accounts", &admin, None).await;
    assert_eq!(st, 200);
    // The store holds its hash, not the key.
    let db = std::fs::read(dir.path().join("relay.sqlite")).expect("db");
    assert!(!db.windows(admin.len()).any(|w| w == admin.as_bytes()));
    s.stop().await.expect("stops");
}

#[tokio::test]
async fn keys_are_created_listed_scoped_and_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, http, _) = relay(dir.path(), |_| {}).await;
    let (st, v) = http
        .req(
            "POST",
            "/v1/keys",
            KEY_A,
            Some(json!({"name": "sender", "scopes": ["send"]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let secret = v["secret"].as_str().expect("secret shown once").to_string();
    let id = v["id"].as_str().expect("id").to_string();
    assert!(secret.starts_with(v["prefix"].as_str().expect("prefix")));
    assert_eq!(v["scopes"], json!(["send"]));

    // The list shows the prefix and scopes, never a secret.
    let (st, list) = http.req("GET", "/v1/keys", KEY_A, None).await;
    assert_eq!(st, 200);
    let items = list["items"].as_array().expect("items");
    let row = items
        .iter()
        .find(|k| k["id"] == id.as_str())
        .expect("listed");
    assert_eq!(row["prefix"], v["prefix"]);
    assert!(row.get("secret").is_none());
    assert!(!list.to_string().contains(&secret));

    // A send-only key sends but cannot read, list phones or mint wider keys.
    let (st, _) = http
        .req("POST", "/v1/messages", &secret, Some(message("k1")))
        .await;
    assert_eq!(st, 202);
    for (method, path) in [
        ("GET", "/v1/messages/k1"),
        ("GET", "/v1/phones"),
        ("GET", "/v1/webhooks"),
    ] {
        let (st, v) = http.req(method, path, &secret, None).await;
        assert_eq!(
            (st, code(&v)),
            (403, "insufficient_scope"),
            "{method} {path}"
        );
    }
    let (st, v) = http
        .req(
            "POST",
            "/v1/keys",
            &secret,
            Some(json!({"name": "x", "scopes": ["send", "read"]})),
        )
        .await;
    assert_eq!((st, code(&v)), (403, "insufficient_scope"));
    let (st, v) = http
        .req(
            "POST",
            "/v1/keys",
            KEY_A,
            Some(json!({"name": "x", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (403, "insufficient_scope"),
        "no escalation to admin"
    );
    let (st, v) = http
        .req(
            "POST",
            "/v1/keys",
            KEY_A,
            Some(json!({"name": "x", "scopes": ["root"]})),
        )
        .await;
    assert_eq!((st, code(&v)), (400, "invalid_scope"));
    // It cannot revoke a key with scopes it lacks.
    let (wide, _) = new_key(&http, KEY_A, &["send", "read"]).await;
    let (st, v) = http
        .req("DELETE", &format!("/v1/keys/{wide}"), &secret, None)
        .await;
    assert_eq!((st, code(&v)), (403, "insufficient_scope"));

    // Revoked: refused on its very next request.
    let (st, v) = http
        .req("DELETE", &format!("/v1/keys/{id}"), KEY_A, None)
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["revoked_at"].is_string());
    let (st, v) = http
        .req("POST", "/v1/messages", &secret, Some(message("k2")))
        .await;
    assert_eq!((st, code(&v)), (401, "unauthorized"));
    s.stop().await.expect("stops");
}

#[tokio::test]
async fn a_key_of_another_account_cannot_be_seen_or_revoked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, http, _) = relay(dir.path(), |_| {}).await;
    let (id_b, secret_b) = new_key(&http, KEY_B, &["read"]).await;
    let (st, v) = http
        .req("DELETE", &format!("/v1/keys/{id_b}"), KEY_A, None)
        .await;
    assert_eq!((st, code(&v)), (404, "not_found"));
    let (_, list) = http.req("GET", "/v1/keys", KEY_A, None).await;
    assert!(!list.to_string().contains(&id_b));
    let (st, _) = http.req("GET", "/v1/messages", &secret_b, None).await;
    assert_eq!(st, 200, "B's key still works");
    s.stop().await.expect("stops");
}

#[tokio::test]
async fn a_key_revoked_through_one_relay_is_refused_by_another_on_the_same_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, http_a, _) = relay(dir.path(), |_| {}).await;
    let b = server(dir.path(), |_| {}).await;
    let http_b = Http::new(&b.url);
    let (id, secret) = new_key(&http_a, KEY_A, &["read"]).await;
    // Relay B has seen (and, before, cached) the key.
    let (st, _) = http_b.req("GET", "/v1/messages", &secret, None).await;
    assert_eq!(st, 200);
    // On PostgreSQL B keeps a key cache that A's revoke empties through a notification, sent
    // at the revoke's commit: B refuses the key once it has arrived (milliseconds). On SQLite
    // B reads the file on every request and refuses it at once.
    let b_cache = b.state.db.store().key_cache();
    let seen = b_cache.map(|c| c.current_generation());
    let (st, _) = http_a
        .req("DELETE", &format!("/v1/keys/{id}"), KEY_A, None)
        .await;
    assert_eq!(st, 200);
    if let (Some(_), Some(seen)) = (b_cache, seen) {
        let c = std::sync::Arc::clone(b.state.db.store());
        let arrived = tokio::task::spawn_blocking(move || {
            c.key_cache()
                .is_some_and(|k| k.wait_past(seen, std::time::Duration::from_secs(20)))
        })
        .await
        .expect("waited");
        assert!(arrived, "A's revoke reaches B's cache");
    }
    let (st, v) = http_b.req("GET", "/v1/messages", &secret, None).await;
    assert_eq!((st, code(&v)), (401, "unauthorized"), "B refuses it");
    b.stop().await.expect("stops");
    a.stop().await.expect("stops");
}

#[tokio::test]
async fn a_revoked_configured_key_stays_revoked_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, http, _) = relay(dir.path(), |_| {}).await;
    let (_, list) = http.req("GET", "/v1/keys", KEY_A, None).await;
    let own = list["items"][0]["id"]
        .as_str()
        .expect("the config key")
        .to_string();
    let (st, _) = http
        .req("DELETE", &format!("/v1/keys/{own}"), KEY_A, None)
        .await;
    assert_eq!(st, 200);
    s.stop().await.expect("stops");
    let s = server(dir.path(), |_| {}).await;
    let http = Http::new(&s.url);
    let (st, _) = http.req("GET", "/v1/messages", KEY_A, None).await;
    assert_eq!(
        st, 401,
        "a key given on the command line does not come back"
    );
    s.stop().await.expect("stops");
}

/// Sets a key's stored last use (as if it was used `ago_ms` ago).
fn set_last_used(dir: &std::path::Path, id: &str, at: i64) {
    if let Some(url) = simrelay_server::store::postgres::scratch::database_url_for(dir) {
        let id = id.to_string();
        // The blocking client runs off the test's runtime.
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("db");
            c.execute(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = $2",
                &[&at, &id],
            )
            .expect("update");
        })
        .join()
        .expect("the update ran");
        return;
    }
    let c = rusqlite::Connection::open(dir.join("relay.sqlite")).expect("db");
    c.busy_timeout(std::time::Duration::from_secs(10))
        .expect("timeout");
    c.execute(
        "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2",
        rusqlite::params![at, id],
    )
    .expect("update");
}

async fn last_used(http: &Http, id: &str) -> Option<i64> {
    let (_, list) = http.req("GET", "/v1/keys", KEY_A, None).await;
    let row = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|k| k["id"] == id)
        .cloned()
        .expect("listed");
    row["last_used_at"]
        .as_str()
        .map(|t| simrelay_server::time_fmt::parse_rfc3339(t).expect("rfc 3339"))
}

#[tokio::test]
async fn last_use_is_written_at_most_once_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, http, _) = relay(dir.path(), |_| {}).await;
    let (id, secret) = new_key(&http, KEY_A, &["read"]).await;
    assert_eq!(last_used(&http, &id).await, None);
    let before = simrelay_server::store::now_ms();
    http.req("GET", "/v1/messages", &secret, None).await;
    let first = last_used(&http, &id).await.expect("recorded on first use");
    assert!(first >= before - 1);
    // The writes below stand for time passing; a relay's key cache (PostgreSQL) holds the
    // copy it read, so it forgets it as a key change would make it.
    let forget = || {
        if let Some(c) = s.state.db.store().key_cache() {
            c.invalidate();
        }
    };
    // Used 30 s ago: a request does not write again.
    let recent = simrelay_server::store::now_ms() - 30_000;
    set_last_used(dir.path(), &id, recent);
    forget();
    http.req("GET", "/v1/messages", &secret, None).await;
    assert_eq!(last_used(&http, &id).await, Some(recent));
    // Used 61 s ago: the next request records it.
    let old = simrelay_server::store::now_ms() - 61_000;
    set_last_used(dir.path(), &id, old);
    forget();
    http.req("GET", "/v1/messages", &secret, None).await;
    assert!(last_used(&http, &id).await.expect("set") > old + 60_000);
    s.stop().await.expect("stops");
}

#[tokio::test]
async fn admin_keys_create_accounts_with_a_first_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, http, admin) = relay(dir.path(), |_| {}).await;
    let (st, v) = http
        .req("POST", "/v1/accounts", KEY_A, Some(json!({"name": "x"})))
        .await;
    assert_eq!((st, code(&v)), (403, "insufficient_scope"));
    let (st, v) = http.req("GET", "/v1/accounts", KEY_A, None).await;
    assert_eq!((st, code(&v)), (403, "insufficient_scope"));
    let (st, v) = http
        .req(
            "POST",
            "/v1/accounts",
            &admin,
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let account = v["account"]["id"].as_str().expect("id").to_string();
    let first = v["key"]["secret"].as_str().expect("first key").to_string();
    assert_eq!(
        v["key"]["scopes"],
        json!(["send", "read", "phones", "webhooks"])
    );
    // The new account's key works, and sees nothing of account A.
    http.req("POST", "/v1/messages", KEY_A, Some(message("a1")))
        .await;
    let (st, v) = http.req("GET", "/v1/messages/a1", &first, None).await;
    assert_eq!((st, code(&v)), (404, "not_found"));
    let (st, v) = http.req("GET", "/v1/accounts", &admin, None).await;
    assert_eq!(st, 200);
    let names: Vec<_> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    assert!(names.contains(&json!(account)));
    s.stop().await.expect("stops");
}

async fn metrics(http: &Http, base: &str, key: Option<&str>) -> (u16, String) {
    let mut r = http.client.get(format!("{base}/metrics"));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let res = r.send().await.expect("metrics answers");
    let st = res.status().as_u16();
    (st, res.text().await.expect("text"))
}

#[tokio::test]
async fn metrics_need_a_key_and_each_account_sees_its_own_phones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, http, admin) = relay(dir.path(), |_| {}).await;
    let ws = s.ws_url();
    let (phone_a, token_a) = paired_phone(&http, &ws, KEY_A).await;
    let (phone_b, token_b) = paired_phone(&http, &ws, KEY_B).await;
    let (_pa, _) = RawPhone::hello(&ws, &token_a, 0).await;
    let (_pb, _) = RawPhone::hello(&ws, &token_b, 0).await;

    let (st, _) = metrics(&http, &s.url, None).await;
    assert_eq!(st, 401, "no key, no metrics");
    let (st, _) = http
        .client
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("healthz");
    assert_eq!(st, 200, "/healthz stays open");

    let (st, text) = metrics(&http, &s.url, Some(KEY_A)).await;
    assert_eq!(st, 200, "{text}");
    assert!(text.contains(&phone_a), "{text}");
    assert!(!text.contains(&phone_b), "another account's phone: {text}");
    assert!(
        !text.contains("simrelay_messages{"),
        "relay-wide totals: {text}"
    );
    assert!(text.contains("simrelay_phones_online 1"), "{text}");

    let (st, text) = metrics(&http, &s.url, Some(&admin)).await;
    assert_eq!(st, 200);
    assert!(text.contains(&phone_a) && text.contains(&phone_b), "{text}");
    assert!(text.contains("simrelay_phones_online 2"), "{text}");

    // Routing passes are counted with their time (relay-wide figures only): a message
    // posted is routed by a new pass.
    let passes = |text: &str| -> (u64, f64) {
        let figure = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name} in {text}"))
        };
        (
            figure("simrelay_routing_passes_total") as u64,
            figure("simrelay_routing_pass_seconds_total"),
        )
    };
    let before = passes(&text);
    let (st, _) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(serde_json::json!({"to": ["+15550001111"], "text": "routed"})),
        )
        .await;
    assert_eq!(st, 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, text) = metrics(&http, &s.url, Some(&admin)).await;
        let now = passes(&text);
        if now.0 > before.0 {
            assert!(
                now.1 > before.1,
                "their time grows too: {before:?} -> {now:?}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no pass after a post");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        !metrics(&http, &s.url, Some(KEY_A))
            .await
            .1
            .contains("simrelay_routing_passes_total"),
        "an account's key sees no relay-wide figure"
    );

    // A key without the phones scope gets no metrics.
    let (_, read_only) = new_key(&http, KEY_A, &["read"]).await;
    let (st, _) = metrics(&http, &s.url, Some(&read_only)).await;
    assert_eq!(st, 403);
    s.stop().await.expect("stops");
}

#[tokio::test]
async fn a_metrics_token_and_a_metrics_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "metrics-token-0123456789abcdef";
    let (s, http, _) = relay(dir.path(), |c| {
        c.metrics_token = Some(token.into());
        c.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let (st, text) = metrics(&http, &s.url, Some(token)).await;
    assert_eq!(st, 200);
    assert!(text.contains("simrelay_messages"), "{text}");
    let side = format!("http://{}", s.metrics_addr.expect("bound"));
    let (st, _) = metrics(&http, &side, None).await;
    assert_eq!(st, 401, "the listener needs the token when one is set");
    let (st, _) = metrics(&http, &side, Some(KEY_A)).await;
    assert_eq!(st, 401);
    let (st, text) = metrics(&http, &side, Some(token)).await;
    assert_eq!(st, 200);
    assert!(text.contains("simrelay_phones_online 0"), "{text}");
    let res = http
        .client
        .get(format!("{side}/v1/messages"))
        .bearer_auth(KEY_A)
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), 404, "only /metrics there");
    // The token is no API key.
    let (st, _) = http.req("GET", "/v1/messages", token, None).await;
    assert_eq!(st, 401);
    s.stop().await.expect("stops");
}
