//! The phone link, spoken by a raw WebSocket client: pairing, refusals, sequencing, acks,
//! resend after reconnect, ownership and re-routing without duplicates, cancel, incoming SMS.

mod common;

use std::time::Duration;

use common::{Http, KEY_A, KEY_B, RawPhone, paired_phone, server, status, update};
use serde_json::json;
use simrelay_protocol::{
    Event, IncomingSms, PROTOCOL_VERSION, PhoneFrame, RecipientState, RelayFrame,
};

async fn expect_error(p: &mut RawPhone, code: &str) {
    match p.recv().await {
        Some(RelayFrame::Error { code: c, .. }) => assert_eq!(c, code),
        other => panic!("expected error {code}, got {other:?}"),
    }
    assert!(p.recv().await.is_none(), "the relay closes after an error");
}

#[tokio::test]
async fn pairing_is_one_time_and_bad_links_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (_, code) = http.req("POST", "/v1/pairing-codes", KEY_A, None).await;
    let code = code["code"].as_str().expect("code").to_string();
    let (phone_id, token) = RawPhone::pair(&srv.ws_url(), &code.to_lowercase())
        .await
        .expect("pairs");
    assert_eq!(
        RawPhone::pair(&srv.ws_url(), &code).await,
        Err("bad_pairing_code".into()),
        "replay"
    );
    assert_eq!(
        RawPhone::pair(&srv.ws_url(), "ZZZZZZZZ").await,
        Err("bad_pairing_code".into())
    );

    let (_, phones) = http.req("GET", "/v1/phones", KEY_A, None).await;
    assert_eq!(phones["items"][0]["id"], phone_id.as_str());
    let (_, other) = http.req("GET", "/v1/phones", KEY_B, None).await;
    assert_eq!(other["items"].as_array().expect("items").len(), 0);

    let mut p = RawPhone::connect(&srv.ws_url()).await;
    p.send(&PhoneFrame::Hello {
        version: PROTOCOL_VERSION,
        token: "nope".into(),
        acked: 0,
        status: status(),
    })
    .await;
    expect_error(&mut p, "unauthorized").await;

    let mut p = RawPhone::connect(&srv.ws_url()).await;
    p.send(&PhoneFrame::Hello {
        version: 99,
        token: token.clone(),
        acked: 0,
        status: status(),
    })
    .await;
    expect_error(&mut p, "unsupported_version").await;

    let mut p = RawPhone::connect(&srv.ws_url()).await;
    p.send_text("{\"type\":\"hello\",\"version\":1,\"token\":\"t\",\"acked\":0,\"status\":{\"sims\":[],\"queue_depth\":0,\"app_version\":\"x\"},\"extra\":1}").await;
    expect_error(&mut p, "bad_frame").await;

    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    p.send_text("{\"type\":\"teleport\"}").await;
    expect_error(&mut p, "bad_frame").await;

    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    p.send_text(&"x".repeat(simrelay_protocol::MAX_FRAME_BYTES + 1))
        .await;
    expect_error(&mut p, "bad_frame").await;
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn frames_are_sequenced_acked_and_resent_after_reconnect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, acked) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    assert_eq!(acked, 0);

    let (s, _) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"to": ["+15551230001", "+15551230002"], "text": "hi", "id": "m1"})),
        )
        .await;
    assert_eq!(s, 202);
    let Some(RelayFrame::Send { seq: 1, message }) = p.recv().await else {
        panic!("send frame 1")
    };
    assert_eq!(message.id, "m1");
    assert_eq!(message.recipients.len(), 2);

    // Drop without acking: the frame comes again, with the same seq.
    drop(p);
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    let Some(RelayFrame::Send {
        seq: 1,
        message: again,
    }) = p.recv().await
    else {
        panic!("resent")
    };
    assert_eq!(again, message);

    p.send(&PhoneFrame::Ack { seq: 1 }).await;
    p.send(&PhoneFrame::Event {
        seq: 1,
        event: update("m1", 0, RecipientState::Queued),
    })
    .await;
    p.send(&PhoneFrame::Event {
        seq: 2,
        event: update("m1", 1, RecipientState::Queued),
    })
    .await;
    let mut acked = 0;
    while acked < 2 {
        match p.recv().await {
            Some(RelayFrame::Ack { seq }) => acked = seq,
            other => panic!("expected ack, got {other:?}"),
        }
    }
    let (_, m) = http.req("GET", "/v1/messages/m1", KEY_A, None).await;
    assert_eq!(m["state"], "queued");

    for (seq, idx, st) in [
        (3, 0, RecipientState::Sent),
        (4, 1, RecipientState::Sent),
        (5, 0, RecipientState::Delivered),
        (6, 1, RecipientState::Failed),
    ] {
        p.send(&PhoneFrame::Event {
            seq,
            event: update("m1", idx, st),
        })
        .await;
    }
    // A duplicate of an old event is acked and ignored.
    p.send(&PhoneFrame::Event {
        seq: 3,
        event: update("m1", 0, RecipientState::Sent),
    })
    .await;
    while acked < 6 {
        let Some(RelayFrame::Ack { seq }) = p.recv().await else {
            panic!("ack")
        };
        acked = seq;
    }
    let (_, m) = http.req("GET", "/v1/messages/m1", KEY_A, None).await;
    assert_eq!(m["recipients"][0]["state"], "delivered");
    assert_eq!(m["recipients"][1]["state"], "failed");
    assert_eq!(m["state"], "sent");

    // After a reconnect, welcome carries the highest stored event seq.
    drop(p);
    let (_, acked) = RawPhone::hello(&srv.ws_url(), &token, 1).await;
    assert_eq!(acked, 6);
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn offline_phone_is_rerouted_and_late_acceptance_is_cancelled_before_ack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.offline_grace = Duration::from_millis(100)).await;
    let http = Http::new(&srv.url);
    let (a_id, a_token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (b_id, b_token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;

    let (mut a, _) = RawPhone::hello(&srv.ws_url(), &a_token, 0).await;
    http.req(
        "POST",
        "/v1/messages",
        KEY_A,
        Some(json!({"to": ["+15551230001"], "text": "hi", "id": "r1"})),
    )
    .await;
    let Some(RelayFrame::Send { seq: 1, .. }) = a.recv().await else {
        panic!("A gets the frame")
    };
    a.send(&PhoneFrame::Ack { seq: 1 }).await; // stored, but its `queued` event is not out yet
    let (_, m) = http.req("GET", "/v1/messages/r1", KEY_A, None).await;
    assert_eq!(m["recipients"][0]["phone"], a_id.as_str());
    drop(a);

    // B comes online; after A's grace the recipient moves to B.
    let (mut b, _) = RawPhone::hello(&srv.ws_url(), &b_token, 0).await;
    let Some(RelayFrame::Send { seq: 1, message }) = b.recv().await else {
        panic!("B gets it")
    };
    assert_eq!(message.id, "r1");
    let (_, m) = http.req("GET", "/v1/messages/r1", KEY_A, None).await;
    assert_eq!(m["recipients"][0]["phone"], b_id.as_str());

    // A returns and reports the acceptance it stored: cancel first, then the ack.
    let (mut a, _) = RawPhone::hello(&srv.ws_url(), &a_token, 1).await;
    a.send(&PhoneFrame::Event {
        seq: 1,
        event: update("r1", 0, RecipientState::Queued),
    })
    .await;
    match a.recv().await {
        Some(RelayFrame::Cancel {
            seq: 2,
            message_id,
            recipients,
        }) => {
            assert_eq!(message_id, "r1");
            assert_eq!(
                recipients,
                Some(vec![0]),
                "only the recipient it no longer owns"
            );
        }
        other => panic!("expected cancel before the ack, got {other:?}"),
    }
    assert_eq!(a.recv().await, Some(RelayFrame::Ack { seq: 1 }));
    // A's later reports about r1 are ignored; B's count.
    a.send(&PhoneFrame::Event {
        seq: 2,
        event: update("r1", 0, RecipientState::Cancelled),
    })
    .await;
    assert_eq!(a.recv().await, Some(RelayFrame::Ack { seq: 2 }));
    b.send(&PhoneFrame::Ack { seq: 1 }).await;
    b.send(&PhoneFrame::Event {
        seq: 1,
        event: update("r1", 0, RecipientState::Queued),
    })
    .await;
    assert_eq!(b.recv().await, Some(RelayFrame::Ack { seq: 1 }));
    let (_, m) = http.req("GET", "/v1/messages/r1", KEY_A, None).await;
    assert_eq!(m["recipients"][0]["state"], "queued");
    assert_eq!(m["recipients"][0]["phone"], b_id.as_str());
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn cancel_of_a_routed_message_goes_to_the_phone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    http.req(
        "POST",
        "/v1/messages",
        KEY_A,
        Some(json!({"to": ["+15551230001"], "text": "hi", "id": "c1"})),
    )
    .await;
    let Some(RelayFrame::Send { seq: 1, .. }) = p.recv().await else {
        panic!("send")
    };
    p.send(&PhoneFrame::Ack { seq: 1 }).await;
    p.send(&PhoneFrame::Event {
        seq: 1,
        event: update("c1", 0, RecipientState::Queued),
    })
    .await;
    assert_eq!(p.recv().await, Some(RelayFrame::Ack { seq: 1 }));

    let (s, m) = http.req("DELETE", "/v1/messages/c1", KEY_A, None).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["state"], "cancelling");
    assert_eq!(
        p.recv().await,
        Some(RelayFrame::Cancel {
            seq: 2,
            message_id: "c1".into(),
            recipients: None,
        })
    );
    p.send(&PhoneFrame::Ack { seq: 2 }).await;
    p.send(&PhoneFrame::Event {
        seq: 2,
        event: update("c1", 0, RecipientState::Cancelled),
    })
    .await;
    assert_eq!(p.recv().await, Some(RelayFrame::Ack { seq: 2 }));
    let (_, m) = http.req("GET", "/v1/messages/c1", KEY_A, None).await;
    assert_eq!(m["state"], "cancelled");
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn incoming_sms_is_stored_once_and_wakes_waiters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;

    // A waiter started before the SMS is sent (whether its first store read happens before or
    // after the SMS lands, it matches: by notice or by the look-back).
    let waiter = {
        let http = Http::new(&srv.url);
        tokio::spawn(async move {
            http.req(
                "GET",
                "/v1/inbox/wait?from=%2B15557654321&contains=OTP&timeout=20",
                KEY_A,
                None,
            )
            .await
        })
    };
    // A filter that matches nothing times out.
    let (s, _) = http
        .req(
            "GET",
            "/v1/inbox/wait?from=%2B19999999999&timeout=0",
            KEY_A,
            None,
        )
        .await;
    assert_eq!(s, 408);

    let sms = IncomingSms {
        id: "in-1".into(),
        sim: Some(1),
        from: "+15557654321".into(),
        text: "your OTP is 123456".into(),
        sent_at: None,
        received_at: simrelay_server::store::now_ms(),
        encrypted: false,
        data_port: None,
    };
    p.send(&PhoneFrame::Event {
        seq: 1,
        event: Event::Incoming(sms.clone()),
    })
    .await;
    p.send(&PhoneFrame::Event {
        seq: 2,
        event: Event::Incoming(sms),
    })
    .await; // re-broadcast
    let mut acked = 0;
    while acked < 2 {
        let Some(RelayFrame::Ack { seq }) = p.recv().await else {
            panic!("ack")
        };
        acked = seq;
    }
    let (s, got) = waiter.await.expect("waiter");
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["id"], "in-1");
    assert_eq!(got["text"], "your OTP is 123456");

    let (_, inbox) = http.req("GET", "/v1/inbox", KEY_A, None).await;
    assert_eq!(
        inbox["items"].as_array().expect("items").len(),
        1,
        "stored once"
    );
    let (_, other) = http.req("GET", "/v1/inbox", KEY_B, None).await;
    assert_eq!(other["items"].as_array().expect("items").len(), 0);
    // Arrived before the call: still matches within the look-back.
    let (s, _) = http
        .req(
            "GET",
            "/v1/inbox/wait?contains=123456&timeout=0",
            KEY_A,
            None,
        )
        .await;
    assert_eq!(s, 200);
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn newer_link_replaces_older_and_silent_links_are_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.heartbeat = Duration::from_millis(100)).await;
    let http = Http::new(&srv.url);
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut first, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    let (mut second, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    assert!(first.recv().await.is_none(), "the older link is closed");
    // `second` never sends anything: after three heartbeat intervals the relay closes it.
    assert!(second.recv().await.is_none());
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn reordered_events_are_stored_in_sequence_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    http.req(
        "POST",
        "/v1/messages",
        KEY_A,
        Some(json!({"to": ["+15551230001"], "text": "hi", "id": "o1"})),
    )
    .await;
    let Some(RelayFrame::Send { seq: 1, .. }) = p.recv().await else {
        panic!("send")
    };
    // Seq 2 before seq 1: nothing is stored past the gap, the ack stays at 0.
    p.send(&PhoneFrame::Event {
        seq: 2,
        event: update("o1", 0, RecipientState::Sent),
    })
    .await;
    assert_eq!(p.recv().await, Some(RelayFrame::Ack { seq: 0 }));
    let (_, m) = http.req("GET", "/v1/messages/o1", KEY_A, None).await;
    assert_eq!(m["state"], "pending");
    p.send(&PhoneFrame::Event {
        seq: 1,
        event: update("o1", 0, RecipientState::Queued),
    })
    .await;
    assert_eq!(p.recv().await, Some(RelayFrame::Ack { seq: 1 }));
    p.send(&PhoneFrame::Event {
        seq: 2,
        event: update("o1", 0, RecipientState::Sent),
    })
    .await;
    assert_eq!(p.recv().await, Some(RelayFrame::Ack { seq: 2 }));
    let (_, m) = http.req("GET", "/v1/messages/o1", KEY_A, None).await;
    assert_eq!(m["state"], "sent");
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_inbox_waiters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let url = srv.url.clone();
    let waiter = tokio::spawn(async move {
        Http::new(&url)
            .req("GET", "/v1/inbox/wait?timeout=300", KEY_A, None)
            .await
    });
    // Until the waiter has subscribed to the relay's inbox notices.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while srv.state.inbox.receiver_count() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the waiter never arrived"
        );
        tokio::task::yield_now().await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(10), srv.stop())
        .await
        .expect("stop does not wait for the 300 s wait")
        .expect("stops");
    let (status, body) = waiter.await.expect("waiter");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "shutting_down");
}

/// The relay wrote `cancel` then `ack` for an acceptance it had routed elsewhere, and the
/// phone lost both with the link. On the next link the phone resends that `queued` event
/// (already stored: nothing new is decided) and will release the acceptance on our `ack`: the
/// pending `cancel` must be on the wire first, even when the window would hold it back.
#[tokio::test]
async fn a_lost_cancel_is_resent_before_any_ack_whatever_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| {
        c.offline_grace = Duration::from_millis(100);
        c.window = 1;
    })
    .await;
    let http = Http::new(&srv.url);
    let (a_id, a_token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (_b_id, b_token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;

    let (mut a, _) = RawPhone::hello(&srv.ws_url(), &a_token, 0).await;
    http.req(
        "POST",
        "/v1/messages",
        KEY_A,
        Some(json!({"to": ["+15551230001"], "text": "hi", "id": "moves"})),
    )
    .await;
    let Some(RelayFrame::Send { seq: 1, .. }) = a.recv().await else {
        panic!("A gets the frame")
    };
    a.send(&PhoneFrame::Ack { seq: 1 }).await;
    http.req(
        "POST",
        "/v1/messages",
        KEY_A,
        Some(json!({"to": ["+15551230002"], "text": "stays", "id": "pinned", "phone": a_id})),
    )
    .await;
    let Some(RelayFrame::Send { seq: 2, .. }) = a.recv().await else {
        panic!("A gets the pinned frame")
    };
    drop(a); // seq 2 never acknowledged

    // B takes "moves" after A's grace.
    let (mut b, _) = RawPhone::hello(&srv.ws_url(), &b_token, 0).await;
    let Some(RelayFrame::Send { message, .. }) = b.recv().await else {
        panic!("B gets it")
    };
    assert_eq!(message.id, "moves");

    // A returns and reports its acceptance: cancel, then ack; A loses both.
    let (mut a, _) = RawPhone::hello(&srv.ws_url(), &a_token, 1).await;
    assert!(matches!(
        a.recv().await,
        Some(RelayFrame::Send { seq: 2, .. })
    ));
    a.send(&PhoneFrame::Event {
        seq: 1,
        event: update("moves", 0, RecipientState::Queued),
    })
    .await;
    assert!(matches!(
        a.recv().await,
        Some(RelayFrame::Cancel { seq: 3, .. })
    ));
    assert_eq!(a.recv().await, Some(RelayFrame::Ack { seq: 1 }));
    drop(a);

    // Again, still holding only relay frame 1 and no ack for its event 1.
    let (mut a, _) = RawPhone::hello(&srv.ws_url(), &a_token, 1).await;
    assert!(matches!(
        a.recv().await,
        Some(RelayFrame::Send { seq: 2, .. })
    ));
    match a.recv().await {
        Some(RelayFrame::Cancel {
            seq: 3, message_id, ..
        }) => assert_eq!(message_id, "moves"),
        other => panic!("the pending cancel must come before any ack, got {other:?}"),
    }
    a.send(&PhoneFrame::Event {
        seq: 1,
        event: update("moves", 0, RecipientState::Queued),
    })
    .await;
    assert_eq!(a.recv().await, Some(RelayFrame::Ack { seq: 1 }));
    drop(b);
    srv.stop().await.expect("stops");
}
