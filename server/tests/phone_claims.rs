//! What a phone claims cannot take what the router would not give it, nor break the totals:
//! a late `queued` adopts a waiting recipient only for a phone the router could have chosen
//! (in the store and over a real relay), and a pace of u32::MAX saturates every total.

mod common;

use common::{Http, KEY_A, RawPhone, paired_phone, server, sim, update};
use serde_json::json;
use simrelay_protocol::{
    Event, PROTOCOL_VERSION, PhoneFrame, PhoneStatus, RecipientState, RecipientUpdate, RelayFrame,
    SimInfo, decode_relay_frame,
};
use simrelay_server::pool_router::SimKey;
use simrelay_server::store::Pool;
use simrelay_server::store::postgres::scratch::open_test_store;
use simrelay_server::store::{NewMessage, Store};

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn message(account: &str, id: &str, pool: Option<&str>, sim: Option<i32>) -> NewMessage {
    NewMessage {
        account_id: account.into(),
        id: id.into(),
        body_hash: format!("hash-{id}"),
        to: vec!["+15551230001".into()],
        text: "hi".into(),
        priority: 0,
        valid_until: None,
        schedule_at: None,
        phone_id: None,
        sim,
        pool: pool.map(str::to_string),
        delivery_report: true,
        encrypted: false,
        data_port: None,
        created_at: 1,
        suppression_override: None,
    }
}

fn queued(id: &str, sim: Option<i32>) -> Event {
    Event::Recipient(RecipientUpdate {
        message_id: id.into(),
        idx: 0,
        state: RecipientState::Queued,
        at: 1,
        reason: None,
        code: None,
        sim,
        parts: 1,
        parts_sent: 0,
        parts_delivered: 0,
        unsent: false,
    })
}

fn owner(store: &Store, account: &str, id: &str) -> R<(String, Option<String>)> {
    let m = store.get_message(account, id)?.expect("message");
    let r = &m.recipients[0];
    Ok((r.state.to_string(), r.phone.clone()))
}

/// The `cancel` frames queued for `phone` after `after`, by message id.
fn cancels(store: &Store, phone: &str, after: u64) -> R<Vec<String>> {
    let mut out = Vec::new();
    for (_, body) in store.frames_after(phone, after, 100)? {
        if let RelayFrame::Cancel { message_id, .. } = decode_relay_frame(&body)? {
            out.push(message_id);
        }
    }
    Ok(out)
}

#[test]
fn only_a_phone_the_router_could_choose_adopts_a_waiting_recipient() -> R<()> {
    let dir = tempfile::tempdir()?;
    let store = open_test_store(dir.path())?;
    let account = store.ensure_api_key("key-hash", 1)?;
    let other = store.ensure_api_key("other-key-hash", 1)?;
    for (acc, phone) in [(&account, "A"), (&account, "B"), (&other, "X")] {
        let code = format!("code-{phone}");
        store.create_pairing_code(acc, &code, 1, 1000)?;
        store.pair_phone(&code, phone, &format!("token-{phone}"), None, 2)?;
    }
    store.create_pool(
        &account,
        &Pool {
            name: "rack".into(),
            members: vec![SimKey::new("A", 1)],
            prefixes: Vec::new(),
            sticky: false,
            created_at: 1,
        },
    )?;
    store.create_messages(&[
        message(&account, "pooled", Some("rack"), None),
        message(&account, "pooled2", Some("rack"), None),
        message(&account, "sim2", None, Some(2)),
        message(&account, "free", None, None),
    ])?;

    // B is not in the pool; X is another account's phone (its report finds nothing).
    store.apply_from_phone("B", None, &[(1, queued("pooled", Some(1)))], 3)?;
    assert_eq!(owner(&store, &account, "pooled")?, ("pending".into(), None));
    assert_eq!(
        cancels(&store, "B", 0)?,
        ["pooled"],
        "B's copy is cancelled"
    );
    let applied = store.apply_from_phone("X", None, &[(1, queued("pooled", Some(1)))], 3)?;
    assert!(!applied.changed);
    assert_eq!(owner(&store, &account, "pooled")?, ("pending".into(), None));
    // A is in the pool, but only with SIM 1.
    store.apply_from_phone("A", None, &[(1, queued("pooled2", Some(2)))], 4)?;
    assert_eq!(
        owner(&store, &account, "pooled2")?,
        ("pending".into(), None)
    );
    // The message asks for SIM 2: a report from SIM 1 is not its.
    store.apply_from_phone("B", None, &[(2, queued("sim2", Some(1)))], 5)?;
    assert_eq!(owner(&store, &account, "sim2")?, ("pending".into(), None));

    // What the router could have done is adopted, as before.
    store.apply_from_phone("A", None, &[(2, queued("pooled", Some(1)))], 6)?;
    assert_eq!(
        owner(&store, &account, "pooled")?,
        ("queued".into(), Some("A".into()))
    );
    store.apply_from_phone("B", None, &[(3, queued("free", None))], 7)?;
    assert_eq!(
        owner(&store, &account, "free")?,
        ("queued".into(), Some("B".into()))
    );
    Ok(())
}

#[tokio::test]
async fn a_phone_outside_the_pool_cannot_adopt_a_pool_message_over_the_link() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (a_id, a_token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (_b_id, b_token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let pool = json!({"name": "rack", "members": [{"phone": a_id, "sub_id": 1}]});
    let (s, body) = http.req("POST", "/v1/pools", KEY_A, Some(pool)).await;
    assert_eq!(s, 201, "{body}");
    // A is offline: the pool message waits for a SIM.
    let body = json!({"to": ["+15551230001"], "text": "hi", "id": "p1", "pool": "rack"});
    let (s, body) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
    assert_eq!(s, 202, "{body}");

    let (mut b, _) = RawPhone::hello(&srv.ws_url(), &b_token, 0).await;
    b.send(&PhoneFrame::Event {
        seq: 1,
        event: update("p1", 0, RecipientState::Queued),
    })
    .await;
    match b.recv().await {
        Some(RelayFrame::Cancel { message_id, .. }) => assert_eq!(message_id, "p1"),
        other => panic!("B's claim must be cancelled, got {other:?}"),
    }
    assert_eq!(b.recv().await, Some(RelayFrame::Ack { seq: 1 }));
    // A delivered report from B changes nothing either.
    b.send(&PhoneFrame::Event {
        seq: 2,
        event: update("p1", 0, RecipientState::Delivered),
    })
    .await;
    assert_eq!(b.recv().await, Some(RelayFrame::Ack { seq: 2 }));
    let (_, m) = http.req("GET", "/v1/messages/p1", KEY_A, None).await;
    assert_eq!(m["recipients"][0]["state"], "pending", "{m}");
    assert!(m["recipients"][0]["phone"].is_null(), "{m}");

    // The pool's own phone gets it when it comes online.
    let (mut a, _) = RawPhone::hello(&srv.ws_url(), &a_token, 0).await;
    let Some(RelayFrame::Send { message, .. }) = a.recv().await else {
        panic!("A gets the pool message")
    };
    assert_eq!(message.id, "p1");
    srv.stop().await.expect("stops");
}

fn fast_sim(sub_id: i32) -> SimInfo {
    SimInfo {
        parts_per_minute: u32::MAX,
        ..sim(sub_id)
    }
}

#[tokio::test]
async fn a_pace_of_u32_max_saturates_the_totals_and_routing_still_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (phone, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let mut p = RawPhone::connect(&srv.ws_url()).await;
    p.send(&PhoneFrame::Hello {
        version: PROTOCOL_VERSION,
        token,
        acked: 0,
        status: PhoneStatus {
            sims: vec![fast_sim(1), fast_sim(2)],
            ..common::status()
        },
    })
    .await;
    assert!(matches!(p.recv().await, Some(RelayFrame::Welcome { .. })));

    let (s, sims) = http.req("GET", "/v1/sims", KEY_A, None).await;
    assert_eq!(s, 200, "{sims}");
    assert_eq!(sims["totals"]["parts_per_minute"], u64::from(u32::MAX));
    let pool = json!({"name": "fast", "members": [{"phone": phone, "sub_id": 1}, {"phone": phone, "sub_id": 2}]});
    let (s, body) = http.req("POST", "/v1/pools", KEY_A, Some(pool)).await;
    assert_eq!(s, 201, "{body}");
    let (s, stats) = http.req("GET", "/v1/pools/fast/stats", KEY_A, None).await;
    assert_eq!(s, 200, "{stats}");
    assert_eq!(stats["totals"]["parts_per_minute"], u64::from(u32::MAX));
    let metrics = http.metrics().await;
    assert!(metrics.contains(&format!(
        "simrelay_sim_pace_ppm{{phone=\"{phone}\",sub_id=\"1\"}} {}",
        u32::MAX
    )));

    let body =
        json!({"to": ["+15551230001", "+15551230002"], "text": "hi", "id": "f1", "pool": "fast"});
    let (s, _) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
    assert_eq!(s, 202);
    let mut routed = 0;
    while routed < 2 {
        match p.recv().await {
            Some(RelayFrame::Send { message, .. }) => routed += message.recipients.len(),
            other => panic!("expected send frames, got {other:?}"),
        }
    }
    srv.stop().await.expect("stops");
}
