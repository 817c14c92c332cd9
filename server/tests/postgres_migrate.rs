//! `simrelay migrate --from sqlite:PATH --to postgres://...`: a relay on SQLite with
//! messages, a phone, keys, a webhook and an incoming SMS is copied into PostgreSQL, and a
//! relay on the copy serves the same data: the keys still work, the messages and the inbox
//! read the same, the phone's token still signs it in, new messages get new cursors. A target
//! that holds rows is refused.
//!
//! PostgreSQL-only by nature; runs when `SIMRELAY_TEST_DATABASE_URL` names a database, and
//! says so and passes when it is unset.

mod common;

use common::*;
use serde_json::{Value, json};
use simrelay_protocol::{Event, IncomingSms, PhoneFrame, RelayFrame};
use simrelay_server::store::postgres::{copy, scratch};

async fn send(http: &Http, key: &str, id: &str, to: &str) -> Value {
    let (s, v) = http
        .req(
            "POST",
            "/v1/messages",
            key,
            Some(json!({"id": id, "to": [to], "text": format!("text of {id}")})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    v
}

#[tokio::test]
async fn a_sqlite_relay_copied_into_postgres_serves_the_same_data() {
    let Some(base) = scratch::test_database_url() else {
        eprintln!("SIMRELAY_TEST_DATABASE_URL is unset: the PostgreSQL copy test is not run");
        return;
    };
    let sqlite_dir = tempfile::tempdir().expect("tempdir");
    // The source relay is on SQLite whatever the suite runs on.
    let srv = server(sqlite_dir.path(), |c| c.database_url = None).await;
    let http = Http::new(&srv.url);
    let ws_url = srv.ws_url();

    for i in 0..3 {
        send(&http, KEY_A, &format!("m-{i}"), "+15550000101").await;
    }
    // Account B has no phone: its messages are never routed, and read the same to the byte.
    for i in 0..2 {
        send(&http, KEY_B, &format!("b-{i}"), "+15550000102").await;
    }
    let (s, key) = http
        .req(
            "POST",
            "/v1/keys",
            KEY_A,
            Some(json!({"name": "second", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(s, 201, "{key}");
    let secret = key["secret"].as_str().expect("secret").to_string();
    let (s, hook) = http
        .req(
            "POST",
            "/v1/webhooks",
            KEY_A,
            Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["message.sent"]})),
        )
        .await;
    assert_eq!(s, 201, "{hook}");
    let (phone_id, token) = paired_phone(&http, &ws_url, KEY_A).await;
    let (mut p, _) = RawPhone::hello(&ws_url, &token, 0).await;
    p.send(&PhoneFrame::Event {
        seq: 1,
        event: Event::Incoming(IncomingSms {
            id: "in-1".into(),
            sim: Some(1),
            from: "+15550000199".into(),
            text: "an incoming SMS".into(),
            sent_at: None,
            received_at: simrelay_server::store::now_ms(),
            encrypted: false,
            data_port: None,
        }),
    })
    .await;
    loop {
        match p.recv().await {
            Some(RelayFrame::Ack { seq }) if seq >= 1 => break,
            Some(_) => continue,
            None => panic!("the link closed before the ack"),
        }
    }
    drop(p);
    let (_, before_msgs) = http.req("GET", "/v1/messages", KEY_B, None).await;
    let (_, before_inbox) = http.req("GET", "/v1/inbox", KEY_A, None).await;
    let (_, before_hooks) = http.req("GET", "/v1/webhooks", KEY_A, None).await;
    srv.stop().await.expect("the SQLite relay stops");

    let url = scratch::scratch_schema(&base).expect("a scratch schema");
    let file = sqlite_dir.path().join("relay.sqlite");
    let (file2, url2) = (file.clone(), url.clone());
    let copied = tokio::task::spawn_blocking(move || copy::sqlite_to_postgres(&file2, &url2))
        .await
        .expect("copy task")
        .expect("the copy succeeds");
    let rows = |t: &str| copied.iter().find(|(n, _)| n == t).map_or(0, |(_, n)| *n);
    assert_eq!(rows("messages"), 5);
    assert_eq!(rows("recipients"), 5);
    assert_eq!(rows("phones"), 1);
    assert_eq!(rows("inbox"), 1);
    assert_eq!(rows("webhooks"), 1);
    assert!(rows("api_keys") >= 2);

    // A second copy into the same (now full) database is refused, and changes nothing.
    let (file3, url3) = (file.clone(), url.clone());
    let again = tokio::task::spawn_blocking(move || copy::sqlite_to_postgres(&file3, &url3))
        .await
        .expect("copy task");
    let err = again.expect_err("a non-empty target is refused");
    assert!(err.to_string().contains("not empty"), "{err}");

    let pg_dir = tempfile::tempdir().expect("tempdir");
    let pg = server(pg_dir.path(), |c| c.database_url = Some(url.clone())).await;
    let http = Http::new(&pg.url);
    let (s, after_msgs) = http.req("GET", "/v1/messages", KEY_B, None).await;
    assert_eq!(s, 200, "{after_msgs}");
    assert_eq!(after_msgs, before_msgs, "the messages read the same");
    let (_, after_inbox) = http.req("GET", "/v1/inbox", KEY_A, None).await;
    assert_eq!(after_inbox, before_inbox, "the inbox reads the same");
    let (_, after_hooks) = http.req("GET", "/v1/webhooks", KEY_A, None).await;
    assert_eq!(after_hooks, before_hooks);
    let (s, m) = http.req("GET", "/v1/messages/m-2", KEY_A, None).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["recipients"][0]["to"], "+15550000101");
    // The key made over the API still works (its hash was copied).
    let (s, v) = http.req("GET", "/v1/messages", &secret, None).await;
    assert_eq!(s, 200, "{v}");
    // A new message comes after every copied one (the counters were moved past them).
    send(&http, KEY_A, "m-after", "+15550000103").await;
    let (_, list) = http.req("GET", "/v1/messages", KEY_A, None).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["m-0", "m-1", "m-2", "m-after"]);
    // The phone's token still signs it in.
    let (_p, _) = RawPhone::hello(&pg.ws_url(), &token, 0).await;
    let (_, phones) = http.req("GET", "/v1/phones", KEY_A, None).await;
    assert_eq!(phones["items"][0]["id"], phone_id.as_str(), "{phones}");
    pg.stop().await.expect("the PostgreSQL relay stops");
}
