//! A webhook's delivery log, its test ping and the manual redelivery of a dead event, and the
//! `message.unknown` event, over a real relay.

mod common;
mod webhooks_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Http, KEY_A, KEY_B, RawPhone, paired_phone, server};
use serde_json::Value;
use simrelay_protocol::RecipientState;
use webhooks_support::{next, recorder, register, send_and_report, wait_until};

const SECRET: &str = "0123456789abcdef-secret";

async fn log(http: &Http, key: &str, id: &str) -> (u16, Value) {
    let (s, v) = http
        .req("GET", &format!("/v1/webhooks/{id}/deliveries"), key, None)
        .await;
    (s, v)
}

#[tokio::test]
async fn the_log_shows_attempts_and_a_dead_event_can_be_redelivered() {
    let mut rec = recorder(SECRET).await;
    rec.status.store(500, Ordering::SeqCst);
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| {
        c.webhook_backoff = Duration::from_millis(5);
        c.webhook_max_attempts = 2;
    })
    .await;
    let http = Http::new(&srv.url);
    let id = register(&http, KEY_A, &rec.url, &["phone.online"], SECRET).await;
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (_p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    wait_until("two attempts, then dead", || async {
        let (_, v) = log(&http, KEY_A, &id).await;
        v["items"].as_array().is_some_and(|a| a.len() == 2)
            && v["items"][0]["delivery_state"] == "dead"
    })
    .await;
    let (_, v) = log(&http, KEY_A, &id).await;
    let items = v["items"].as_array().expect("items");
    let event_id = items[0]["event_id"].as_str().expect("event id").to_string();
    for a in items {
        assert_eq!(a["event"], "phone.online");
        assert_eq!(a["event_id"], event_id.as_str());
        assert_eq!(a["status"], 500);
        assert_eq!(a["error"], "HTTP 500");
        assert!(a["duration_ms"].as_i64().is_some_and(|d| d >= 0));
        assert!(a["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    // Another account sees neither the log nor the event.
    assert_eq!(log(&http, KEY_B, &id).await.0, 404);
    let redeliver = format!("/v1/webhooks/{id}/deliveries/{event_id}/redeliver");
    let (s, _) = http.req("POST", &redeliver, KEY_B, None).await;
    assert_eq!(s, 404);
    let (s, _) = http
        .req(
            "POST",
            &format!("/v1/webhooks/{id}/deliveries/no-such-event/redeliver"),
            KEY_A,
            None,
        )
        .await;
    assert_eq!(s, 404);

    // The receiver is fixed: the redelivered event arrives with its own event id.
    rec.status.store(200, Ordering::SeqCst);
    while rec.rx.try_recv().is_ok() {}
    let (s, v) = http.req("POST", &redeliver, KEY_A, None).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["delivery_state"], "pending");
    let got = next(&mut rec.rx).await;
    assert_eq!(got["id"], event_id.as_str());
    wait_until("the redelivery is logged", || async {
        let (_, v) = log(&http, KEY_A, &id).await;
        v["items"][0]["status"] == 200
    })
    .await;
    let (_, v) = log(&http, KEY_A, &id).await;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["items"][0]["error"], Value::Null);
    assert_eq!(v["items"][0]["delivery_state"], "delivered");
    // Only a dead event can be redelivered.
    let (s, v) = http.req("POST", &redeliver, KEY_A, None).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "not_dead");
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn a_ping_is_signed_answered_and_logged() {
    let mut rec = recorder(SECRET).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let id = register(&http, KEY_A, &rec.url, &["message.sent"], SECRET).await;
    let ping = format!("/v1/webhooks/{id}/ping");
    let (s, v) = http.req("POST", &ping, KEY_A, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["status"], 200);
    let got = next(&mut rec.rx).await;
    assert_eq!(got["event"], "webhook.ping");
    assert_eq!(got["id"], v["event_id"]);
    assert_eq!(got["webhook_id"], id.as_str());
    rec.status.store(503, Ordering::SeqCst);
    let (s, v) = http.req("POST", &ping, KEY_A, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["status"], 503);
    assert_eq!(v["error"], "HTTP 503");
    let (_, l) = log(&http, KEY_A, &id).await;
    let statuses: Vec<&Value> = l["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(
        statuses,
        [&Value::from(503), &Value::from(200)],
        "newest first"
    );
    assert_eq!(
        l["items"][0]["delivery_state"],
        Value::Null,
        "a ping is not queued"
    );
    let (s, _) = http.req("POST", &ping, KEY_B, None).await;
    assert_eq!(s, 404, "another account's webhook");
    let (s, v) = http
        .req(
            "GET",
            &format!("/v1/webhooks/{id}/deliveries?limit=x"),
            KEY_A,
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    // As for every list, a `limit` out of range is refused, not silently changed.
    for bad in ["0", "51"] {
        let path = format!("/v1/webhooks/{id}/deliveries?limit={bad}");
        let (s, v) = http.req("GET", &path, KEY_A, None).await;
        assert_eq!(
            (s, &v["error"]["code"]),
            (400, &Value::from("invalid_query")),
            "{v}"
        );
    }
    let path = format!("/v1/webhooks/{id}/deliveries?limit=1");
    let (s, v) = http.req("GET", &path, KEY_A, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["items"][0]["status"], 503, "the newest");
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn an_unknown_outcome_sends_message_unknown() {
    let mut rec = recorder(SECRET).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    register(
        &http,
        KEY_A,
        &rec.url,
        &["message.unknown", "message.failed"],
        SECRET,
    )
    .await;
    let (phone_id, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    let mut seq = 0;
    send_and_report(
        &http,
        KEY_A,
        &mut p,
        &mut seq,
        &["u-1".to_string()],
        RecipientState::Unknown,
    )
    .await;
    let got = next(&mut rec.rx).await;
    assert_eq!(got["event"], "message.unknown", "{got}");
    assert_eq!(got["data"]["message_id"], "u-1");
    assert_eq!(got["data"]["state"], "unknown");
    assert_eq!(got["data"]["phone"], phone_id.as_str());

    // A phone that stays silent past every deadline: the relay ends the recipient `unknown`
    // itself (`phone_silent`), with the same event.
    send_and_report(
        &http,
        KEY_A,
        &mut p,
        &mut seq,
        &["u-2".to_string()],
        RecipientState::Queued,
    )
    .await;
    let later = simrelay_server::store::now_ms() + 365 * 24 * 3_600_000;
    let ended = srv
        .state
        .db
        .call(move |s| s.expire_unrouted(later, 7 * 24 * 3_600_000))
        .await
        .expect("deadlines");
    assert_eq!(ended, 1);
    // Queued at that (future) instant: read it from the outbox instead of waiting for it.
    let due = srv
        .state
        .db
        .call(move |s| s.due_deliveries(later, 10))
        .await
        .expect("outbox");
    assert_eq!(due.len(), 1, "{due:?}");
    let got: Value = serde_json::from_str(&due[0].body).expect("json");
    assert_eq!(got["event"], "message.unknown", "{got}");
    assert_eq!(got["data"]["message_id"], "u-2");
    assert_eq!(got["data"]["error"], "phone_silent");
    srv.stop().await.expect("stops");
}
