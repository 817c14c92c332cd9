//! `DELETE /v1/phones/{id}` over a real relay and raw WebSocket phones: the token stops
//! working, the link closes, and every recipient the phone held ends without a duplicate.

mod common;

use common::{Http, KEY_A, KEY_B, RawPhone, paired_phone, server, status, update};
use serde_json::{Value, json};
use simrelay_protocol::{PROTOCOL_VERSION, PhoneFrame, RecipientState, RelayFrame};

async fn post(http: &Http, body: Value) {
    let (s, v) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
    assert_eq!(s, 202, "{v}");
}

/// The next `send` frame's seq and message id.
async fn next_send(p: &mut RawPhone) -> (u64, String) {
    match p.recv().await {
        Some(RelayFrame::Send { seq, message }) => (seq, message.id),
        other => panic!("expected a send frame, got {other:?}"),
    }
}

/// Reports `events` (with phone seqs from `*seq` on) and waits for the relay's ack.
async fn report(p: &mut RawPhone, seq: &mut u64, events: &[(&str, RecipientState)]) {
    for (id, state) in events {
        *seq += 1;
        p.send(&PhoneFrame::Event {
            seq: *seq,
            event: update(id, 0, *state),
        })
        .await;
    }
    loop {
        match p.recv().await {
            Some(RelayFrame::Ack { seq: s }) if s == *seq => return,
            Some(RelayFrame::Ack { .. }) => continue,
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

async fn recipient(http: &Http, id: &str) -> Value {
    let (s, m) = http
        .req("GET", &format!("/v1/messages/{id}"), KEY_A, None)
        .await;
    assert_eq!(s, 200, "{m}");
    m["recipients"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_phone_is_locked_out_and_its_work_ends_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let ws = srv.ws_url();
    let (a_id, a_token) = paired_phone(&http, &ws, KEY_A).await;
    let (b_id, b_token) = paired_phone(&http, &ws, KEY_A).await;
    let (mut a, _) = RawPhone::hello(&ws, &a_token, 0).await;

    // Only A is online: everything goes to A.
    let to = json!(["+15551230001"]);
    post(
        &http,
        json!({"id": "never-accepted", "to": to, "text": "1"}),
    )
    .await;
    post(&http, json!({"id": "accepted", "to": to, "text": "2"})).await;
    post(
        &http,
        json!({"id": "pinned", "to": to, "text": "3", "phone": a_id}),
    )
    .await;
    post(&http, json!({"id": "on-air", "to": to, "text": "4"})).await;
    post(&http, json!({"id": "cancel-early", "to": to, "text": "5"})).await;
    let mut frames = Vec::new();
    for _ in 0..5 {
        frames.push(next_send(&mut a).await);
    }
    let mut ids: Vec<&str> = frames.iter().map(|(_, id)| id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "accepted",
            "cancel-early",
            "never-accepted",
            "on-air",
            "pinned"
        ]
    );
    let last = frames.iter().map(|(s, _)| *s).max().expect("frames");
    a.send(&PhoneFrame::Ack { seq: last }).await;
    let mut seq = 0;
    report(
        &mut a,
        &mut seq,
        &[
            ("accepted", RecipientState::Queued),
            ("on-air", RecipientState::Queued),
            ("on-air", RecipientState::Sending),
            ("on-air", RecipientState::Sent),
        ],
    )
    .await;
    let (s, v) = http
        .req("DELETE", "/v1/messages/cancel-early", KEY_A, None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "cancelling");
    assert!(matches!(a.recv().await, Some(RelayFrame::Cancel { .. })));

    // Another account cannot remove it, nor see it; nothing changes.
    let before: Vec<Value> = {
        let mut v = Vec::new();
        for id in [
            "never-accepted",
            "accepted",
            "pinned",
            "on-air",
            "cancel-early",
        ] {
            v.push(recipient(&http, id).await);
        }
        v
    };
    let (s, v) = http
        .req("DELETE", &format!("/v1/phones/{a_id}"), KEY_B, None)
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, _) = http
        .req("DELETE", "/v1/phones/no-such-phone", KEY_A, None)
        .await;
    assert_eq!(s, 404);
    for (id, was) in [
        "never-accepted",
        "accepted",
        "pinned",
        "on-air",
        "cancel-early",
    ]
    .iter()
    .zip(&before)
    {
        assert_eq!(&recipient(&http, id).await, was, "{id} unchanged");
    }

    let (s, v) = http
        .req("DELETE", &format!("/v1/phones/{a_id}"), KEY_A, None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["recipients"],
        json!({"rerouted": 1, "failed": 1, "cancelled": 1, "unknown": 1})
    );
    assert_eq!(a.recv().await, None, "the live link is closed");

    // The token is dead, the phone is gone from the list, and it cannot be targeted.
    let mut again = RawPhone::connect(&ws).await;
    again
        .send(&PhoneFrame::Hello {
            version: PROTOCOL_VERSION,
            token: a_token.clone(),
            acked: last,
            status: status(),
        })
        .await;
    match again.recv().await {
        Some(RelayFrame::Error { code, .. }) => assert_eq!(code, "unauthorized"),
        other => panic!("expected unauthorized, got {other:?}"),
    }
    let (_, phones) = http.req("GET", "/v1/phones", KEY_A, None).await;
    let listed: Vec<&str> = phones["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(listed, [b_id.as_str()]);
    let (s, v) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"to": to, "text": "x", "phone": a_id})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("unknown_phone"))
    );
    let (s, _) = http
        .req("DELETE", &format!("/v1/phones/{a_id}"), KEY_A, None)
        .await;
    assert_eq!(s, 404, "removing twice");

    // What A never accepted and could not send goes to B; the rest ends where it must.
    let r = recipient(&http, "accepted").await;
    assert_eq!(
        (r["state"].as_str(), r["error"].as_str()),
        (Some("unknown"), Some("phone_removed"))
    );
    let r = recipient(&http, "pinned").await;
    assert_eq!(
        (r["state"].as_str(), r["error"].as_str()),
        (Some("failed"), Some("phone_removed"))
    );
    assert_eq!(recipient(&http, "cancel-early").await["state"], "cancelled");
    assert_eq!(recipient(&http, "on-air").await["state"], "sent");
    let (mut b, _) = RawPhone::hello(&ws, &b_token, 0).await;
    assert_eq!(next_send(&mut b).await.1, "never-accepted");
    b.send(&PhoneFrame::Ack { seq: 1 }).await;
    let mut b_seq = 0;
    report(
        &mut b,
        &mut b_seq,
        &[("never-accepted", RecipientState::Queued)],
    )
    .await;
    let r = recipient(&http, "never-accepted").await;
    assert_eq!(
        (r["state"].as_str(), r["phone"].as_str()),
        (Some("queued"), Some(b_id.as_str()))
    );
    srv.stop().await.expect("stops");
}
