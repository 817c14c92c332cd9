//! Opt-out over a real relay: a STOP from a number puts it on the account's suppression
//! list, a later send to it ends `suppressed` and no `send` frame carries it to the phone
//! while the message's other recipients go out; START takes it off; the list is managed by
//! hand through `/v1/suppressions`, bad input is refused with a code.
//!
//! "No frame carries it" is shown without waiting for an absence: frames reach a phone in
//! order, so the next `send` after a suppressed-only message is the message sent after it.

mod common;

use common::{Http, KEY_A, KEY_B, RawPhone, paired_phone, server};
use serde_json::{Value, json};
use simrelay_protocol::{Event, IncomingSms, OutboundMessage, PhoneFrame, RelayFrame};

/// Sends incoming SMS `(from, text)` as events `first_seq..` and waits for their ack.
async fn incoming(p: &mut RawPhone, first_seq: u64, sms: &[(&str, &str)]) {
    let mut last = first_seq;
    for (i, (from, text)) in sms.iter().enumerate() {
        last = first_seq + i as u64;
        p.send(&PhoneFrame::Event {
            seq: last,
            event: Event::Incoming(IncomingSms {
                id: format!("in-{last}"),
                sim: Some(1),
                from: (*from).into(),
                text: (*text).into(),
                sent_at: None,
                received_at: simrelay_server::store::now_ms(),
                encrypted: false,
                data_port: None,
            }),
        })
        .await;
    }
    loop {
        match p.recv().await {
            Some(RelayFrame::Ack { seq }) if seq >= last => return,
            Some(RelayFrame::Ack { .. }) => {}
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

/// The next `send` frame (acks skipped).
async fn next_send(p: &mut RawPhone) -> OutboundMessage {
    loop {
        match p.recv().await {
            Some(RelayFrame::Send { message, .. }) => return message,
            Some(RelayFrame::Ack { .. }) => {}
            other => panic!("expected a send, got {other:?}"),
        }
    }
}

async fn send(http: &Http, id: &str, to: &[&str]) {
    let (s, v) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"id": id, "to": to, "text": "hello"})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
}

async fn message(http: &Http, id: &str) -> Value {
    let (s, v) = http
        .req("GET", &format!("/v1/messages/{id}"), KEY_A, None)
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

fn numbers(list: &Value) -> Vec<(String, String)> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["number"].as_str().expect("number").to_string(),
                i["keyword"].as_str().expect("keyword").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn stop_suppresses_later_sends_and_start_lifts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.opt_out_keywords = vec!["Stopp".into()]).await;
    let http = Http::new(&srv.url);
    let (phone, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;

    incoming(
        &mut p,
        1,
        &[
            ("+15550000001", "  Stop "),
            ("+15550000002", "OPT   OUT"),
            ("+15550000004", "STOPP"),
            ("+15550000005", "please stop"),
        ],
    )
    .await;
    let (s, list) = http.req("GET", "/v1/suppressions", KEY_A, None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(
        numbers(&list),
        [
            ("+15550000001".into(), "stop".into()),
            ("+15550000002".into(), "opt out".into()),
            ("+15550000004".into(), "stopp".into()),
        ]
    );
    assert_eq!(list["items"][0]["phone"], phone.as_str());
    assert_eq!(list["items"][0]["sim"], 1);
    assert_eq!(list["next_cursor"], Value::Null);
    // The other account's list is its own.
    let (_, other) = http.req("GET", "/v1/suppressions", KEY_B, None).await;
    assert!(numbers(&other).is_empty());

    // A message to a suppressed and an unsuppressed number: only the second goes out.
    send(&http, "m1", &["+15550000001", "+15550000003"]).await;
    let m = next_send(&mut p).await;
    assert_eq!(m.id, "m1");
    assert_eq!(
        m.recipients
            .iter()
            .map(|r| (r.idx, r.to.as_str()))
            .collect::<Vec<_>>(),
        [(1, "+15550000003")]
    );
    let v = message(&http, "m1").await;
    assert_eq!(v["recipients"][0]["state"], "suppressed", "{v}");
    assert_eq!(v["recipients"][1]["state"], "pending", "{v}");

    // Only suppressed recipients: the message is `suppressed` and no frame goes out (the
    // next frame is the next message's).
    send(&http, "m2", &["+15550000002", "+15550000004"]).await;
    let v = message(&http, "m2").await;
    assert_eq!(v["state"], "suppressed", "{v}");
    let (_, listed) = http
        .req("GET", "/v1/messages?state=suppressed", KEY_A, None)
        .await;
    assert_eq!(listed["items"].as_array().expect("items").len(), 1);
    send(&http, "m3", &["+15550000005"]).await;
    assert_eq!(
        next_send(&mut p).await.id,
        "m3",
        "m2 never reaches the phone"
    );

    // START lifts it: the next send goes to the phone.
    incoming(&mut p, 5, &[("+15550000001", "Start")]).await;
    let (_, list) = http.req("GET", "/v1/suppressions", KEY_A, None).await;
    assert_eq!(numbers(&list).len(), 2);
    send(&http, "m4", &["+15550000001"]).await;
    let m = next_send(&mut p).await;
    assert_eq!(
        (m.id.as_str(), m.recipients[0].to.as_str()),
        ("m4", "+15550000001")
    );
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn the_list_is_managed_through_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;

    let add = |n: Value| http.req("POST", "/v1/suppressions", KEY_A, Some(n));
    let (s, v) = add(json!({"number": "+15550000009"})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["keyword"], "manual");
    assert_eq!(v["phone"], Value::Null);
    let (s, v) = add(json!({"number": "+15550000009"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("already_suppressed"))
    );
    for (bad, want) in [
        (json!({"number": "555"}), "invalid_number"),
        (json!({"number": "+1555000000999999"}), "invalid_number"),
        (json!({"number": 15550000009_u64}), "invalid_body"),
        (json!({}), "invalid_body"),
        (
            json!({"number": "+15550000008", "extra": 1}),
            "invalid_body",
        ),
    ] {
        let (s, v) = add(bad.clone()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some(want)),
            "{bad}: {v}"
        );
        let text = v["error"]["message"].as_str().expect("a message");
        assert!(!text.contains("555000"), "no number in error texts: {text}");
    }

    // A manual entry suppresses like a keyword.
    send(&http, "m1", &["+15550000009", "+15550000001"]).await;
    let m = next_send(&mut p).await;
    assert_eq!(m.recipients.len(), 1);
    assert_eq!(m.recipients[0].to, "+15550000001");

    // Removing it: 204, then 404; a path that is no number is a 400.
    let (s, _) = http
        .req("DELETE", "/v1/suppressions/%2B15550000009", KEY_A, None)
        .await;
    assert_eq!(s, 204);
    let (s, v) = http
        .req("DELETE", "/v1/suppressions/+15550000009", KEY_A, None)
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, v) = http
        .req("DELETE", "/v1/suppressions/abc", KEY_A, None)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_number"))
    );
    send(&http, "m2", &["+15550000009"]).await;
    assert_eq!(next_send(&mut p).await.id, "m2");

    // Paging: a full page names the next cursor.
    for n in ["+15550000011", "+15550000012", "+15550000013"] {
        assert_eq!(add(json!({"number": n})).await.0, 201);
    }
    let (_, page) = http
        .req("GET", "/v1/suppressions?limit=2", KEY_A, None)
        .await;
    assert_eq!(numbers(&page).len(), 2);
    let cursor = page["next_cursor"].as_str().expect("a next cursor");
    let (_, rest) = http
        .req(
            "GET",
            &format!("/v1/suppressions?limit=2&cursor={cursor}"),
            KEY_A,
            None,
        )
        .await;
    assert_eq!(numbers(&rest), [("+15550000013".into(), "manual".into())]);
    let (s, v) = http
        .req("GET", "/v1/suppressions?limit=0", KEY_A, None)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    srv.stop().await.expect("stops");
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

#[tokio::test]
async fn keywords_and_suppressed_recipients_queue_their_webhooks() {
    let (url, mut rx) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let events = [
        "message.suppressed",
        "contact.opted_out",
        "contact.opted_in",
    ];
    let (s, v) = http
        .req(
            "POST",
            "/v1/webhooks",
            KEY_A,
            Some(json!({"url": url, "events": events, "secret": "0123456789abcdef-secret"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (phone, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;

    // A second STOP changes nothing and queues nothing.
    incoming(
        &mut p,
        1,
        &[("+15550000001", "STOP"), ("+15550000001", "stop")],
    )
    .await;
    let out = next_hook(&mut rx).await;
    assert_eq!(out["event"], "contact.opted_out");
    assert_eq!(out["data"]["number"], "+15550000001");
    assert_eq!(out["data"]["keyword"], "stop");
    assert_eq!(out["data"]["phone"], phone.as_str());
    assert_eq!(out["data"]["sim"], 1);

    send(&http, "m1", &["+15550000001", "+15550000002"]).await;
    let sup = next_hook(&mut rx).await;
    assert_eq!(sup["event"], "message.suppressed");
    assert_eq!(sup["data"]["message_id"], "m1");
    assert_eq!(sup["data"]["idx"], 0);
    assert_eq!(sup["data"]["state"], "suppressed");
    assert_eq!(
        next_send(&mut p).await.id,
        "m1",
        "the other recipient goes out"
    );

    incoming(&mut p, 3, &[("+15550000001", "unstop")]).await;
    let back = next_hook(&mut rx).await;
    assert_eq!(back["event"], "contact.opted_in");
    assert_eq!(back["data"]["keyword"], "unstop");
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn a_stop_also_ends_what_still_waits_for_a_sim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (_, token_a) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (phone_b, token_b) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut a, _) = RawPhone::hello(&srv.ws_url(), &token_a, 0).await;
    // Pinned to phone B, which is offline: it waits for a SIM.
    let pinned = |id: &str| json!({"id": id, "to": ["+15550000007", "+15550000008"], "text": "hi", "phone": phone_b});
    let (s, v) = http
        .req("POST", "/v1/messages", KEY_A, Some(pinned("w1")))
        .await;
    assert_eq!(s, 202, "{v}");
    incoming(&mut a, 1, &[("+15550000007", "STOP")]).await;
    let v = message(&http, "w1").await;
    assert_eq!(v["recipients"][0]["state"], "suppressed", "{v}");
    assert_eq!(v["recipients"][1]["state"], "pending", "{v}");

    // Phone B comes online: it gets w1 for the other number only.
    let (mut b, _) = RawPhone::hello(&srv.ws_url(), &token_b, 0).await;
    let m = next_send(&mut b).await;
    assert_eq!(m.id, "w1");
    assert_eq!(
        m.recipients
            .iter()
            .map(|r| r.to.as_str())
            .collect::<Vec<_>>(),
        ["+15550000008"]
    );
    srv.stop().await.expect("stops");
}
