//! Opt-out settings over a real relay with raw WebSocket phones (and the store with an
//! injected clock for the UTC day): auto-replies to STOP / START / HELP go out from the phone
//! and SIM that received the keyword, once per keyword kind, sender and day, and only when
//! configured; a help keyword changes no list; `transactional` overrides the list only when
//! the account allows it; the list exports and imports as CSV, and a bad file imports nothing.
//!
//! "No frame carries it" is shown without waiting for an absence: frames reach a phone in
//! order, so the next `send` after a keyword that got no reply is the message sent after it.

mod common;

use common::{Http, KEY_A, KEY_B, RawPhone, paired_phone, server, sim};
use serde_json::{Value, json};
use simrelay_protocol::{
    Event, IncomingSms, OutboundMessage, PROTOCOL_VERSION, PhoneFrame, PhoneStatus, RelayFrame,
};
use simrelay_server::store::postgres::scratch::open_test_store;
use simrelay_server::store::{MessageFilter, Store};

/// A phone with SIMs 1 and 2, connected and welcomed.
async fn two_sim_phone(ws_url: &str, token: &str) -> RawPhone {
    let mut p = RawPhone::connect(ws_url).await;
    p.send(&PhoneFrame::Hello {
        version: PROTOCOL_VERSION,
        token: token.into(),
        acked: 0,
        status: PhoneStatus {
            sims: vec![sim(1), sim(2)],
            queue_depth: 0,
            battery: None,
            charging: None,
            app_version: "test".into(),
        },
    })
    .await;
    match p.recv().await {
        Some(RelayFrame::Welcome { .. }) => p,
        other => panic!("expected welcome, got {other:?}"),
    }
}

fn sms(id: &str, sim: i32, from: &str, text: &str) -> IncomingSms {
    IncomingSms {
        id: id.into(),
        sim: Some(sim),
        from: from.into(),
        text: text.into(),
        sent_at: None,
        received_at: simrelay_server::store::now_ms(),
        encrypted: false,
        data_port: None,
    }
}

/// Sends incoming SMS as events `first_seq..` and waits for their ack; returns the frames
/// (sends) that arrived before the ack.
async fn incoming(p: &mut RawPhone, first_seq: u64, list: &[IncomingSms]) -> Vec<OutboundMessage> {
    let mut last = first_seq;
    for (i, s) in list.iter().enumerate() {
        last = first_seq + i as u64;
        p.send(&PhoneFrame::Event {
            seq: last,
            event: Event::Incoming(s.clone()),
        })
        .await;
    }
    let mut sends = Vec::new();
    loop {
        match p.recv().await {
            Some(RelayFrame::Ack { seq }) if seq >= last => return sends,
            Some(RelayFrame::Ack { .. }) => {}
            Some(RelayFrame::Send { message, .. }) => sends.push(message),
            other => panic!("expected an ack, got {other:?}"),
        }
    }
}

/// The next `send` frame (acks skipped), and any that came with `incoming`'s ack first.
async fn next_send(p: &mut RawPhone, early: &mut Vec<OutboundMessage>) -> OutboundMessage {
    if !early.is_empty() {
        return early.remove(0);
    }
    loop {
        match p.recv().await {
            Some(RelayFrame::Send { message, .. }) => return message,
            Some(RelayFrame::Ack { .. }) => {}
            other => panic!("expected a send, got {other:?}"),
        }
    }
}

async fn put_settings(http: &Http, key: &str, body: Value) -> (u16, Value) {
    http.req("PUT", "/v1/account/opt-out", key, Some(body))
        .await
}

async fn send_pinned(http: &Http, id: &str, to: &str, phone: &str) {
    let (s, v) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"id": id, "to": [to], "text": "hello", "phone": phone})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
}

const STOP_REPLY: &str = "You are unsubscribed. Reply START to resubscribe.";
const START_REPLY: &str = "Welcome back.";
const HELP_REPLY: &str = "ACME alerts. Reply STOP to unsubscribe.";

#[tokio::test]
async fn keywords_get_their_reply_once_a_day_from_the_sim_that_received_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.help_keywords = vec!["Hilfe".into()]).await;
    let http = Http::new(&srv.url);
    let (phone_a, token_a) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (phone_b, token_b) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let mut a = two_sim_phone(&srv.ws_url(), &token_a).await;
    let mut b = two_sim_phone(&srv.ws_url(), &token_b).await;
    let (s, v) = put_settings(
        &http,
        KEY_A,
        json!({"opt_out_reply": STOP_REPLY, "opt_in_reply": START_REPLY,
               "help_reply": HELP_REPLY, "help_keywords": ["aide"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // STOP on phone B's SIM 2: the reply goes out there, though the number is now listed.
    let from = "+15550000001";
    let mut early = incoming(&mut b, 1, &[sms("in-1", 2, from, "  Stop ")]).await;
    let reply = next_send(&mut b, &mut early).await;
    assert_eq!(reply.text, STOP_REPLY);
    assert_eq!(reply.sim, Some(2), "the SIM that received the STOP");
    assert_eq!(reply.recipients.len(), 1);
    assert_eq!(reply.recipients[0].to, from);
    let (_, m) = http
        .req("GET", &format!("/v1/messages/{}", reply.id), KEY_A, None)
        .await;
    assert_eq!(m["phone"], phone_b.as_str(), "{m}");
    assert_eq!(m["sim"], 2, "{m}");
    assert_eq!(m["suppression_override"], "auto_reply", "{m}");
    assert_eq!(m["overrode_suppression"], true, "{m}");
    let (_, list) = http.req("GET", "/v1/suppressions", KEY_A, None).await;
    assert_eq!(list["items"][0]["number"], from, "{list}");

    // A second STOP the same day (another SMS), and the same SMS reported again under a
    // new seq: no second reply; the next frame on B is the next message pinned to it.
    let early = incoming(
        &mut b,
        2,
        &[
            sms("in-2", 2, from, "STOP"),
            sms("in-1", 2, from, "  Stop "),
        ],
    )
    .await;
    assert!(early.is_empty(), "no second reply: {early:?}");
    send_pinned(&http, "after-stop", "+15550000009", &phone_b).await;
    assert_eq!(next_send(&mut b, &mut Vec::new()).await.id, "after-stop");
    // Phone A never got the reply either.
    send_pinned(&http, "on-a", "+15550000009", &phone_a).await;
    assert_eq!(next_send(&mut a, &mut Vec::new()).await.id, "on-a");

    // HELP (relay word, configured word, account word), on phone A's SIM 1: one help reply
    // a day for the sender; nothing changes on the list; the SMS are in the inbox.
    let help_from = "+15550000002";
    let mut early = incoming(
        &mut a,
        1,
        &[
            sms("h-1", 1, help_from, "HELP"),
            sms("h-2", 1, help_from, "hilfe"),
            sms("h-3", 1, "+15550000003", " Aide "),
        ],
    )
    .await;
    let r1 = next_send(&mut a, &mut early).await;
    let r2 = next_send(&mut a, &mut early).await;
    let mut got = [
        (r1.recipients[0].to.clone(), r1.text.clone(), r1.sim),
        (r2.recipients[0].to.clone(), r2.text.clone(), r2.sim),
    ];
    got.sort();
    assert_eq!(
        got,
        [
            (help_from.to_string(), HELP_REPLY.to_string(), Some(1)),
            ("+15550000003".to_string(), HELP_REPLY.to_string(), Some(1)),
        ]
    );
    send_pinned(&http, "after-help", "+15550000009", &phone_a).await;
    assert_eq!(next_send(&mut a, &mut early).await.id, "after-help");
    let (_, list) = http.req("GET", "/v1/suppressions", KEY_A, None).await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1, "{list}");
    let (_, inbox) = http
        .req("GET", "/v1/inbox?from=%2B15550000002", KEY_A, None)
        .await;
    assert_eq!(
        inbox["items"].as_array().expect("items").len(),
        2,
        "{inbox}"
    );

    // START: off the list, with its own reply (a kind of its own, so still today).
    let mut early = incoming(&mut b, 4, &[sms("in-4", 1, from, "start")]).await;
    let back = next_send(&mut b, &mut early).await;
    assert_eq!((back.text.as_str(), back.sim), (START_REPLY, Some(1)));
    let (_, list) = http.req("GET", "/v1/suppressions", KEY_A, None).await;
    assert!(
        list["items"].as_array().expect("items").is_empty(),
        "{list}"
    );
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn no_reply_without_settings_and_other_accounts_keep_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (phone, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let mut p = two_sim_phone(&srv.ws_url(), &token).await;
    // Account B's replies are B's: account A's phone answers nothing.
    let (s, _) = put_settings(&http, KEY_B, json!({"opt_out_reply": STOP_REPLY})).await;
    assert_eq!(s, 200);
    let (s, v) = http.req("GET", "/v1/account/opt-out", KEY_A, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"opt_out_reply": null, "opt_in_reply": null, "help_reply": null,
               "allow_override": false, "help_keywords": []})
    );
    let early = incoming(
        &mut p,
        1,
        &[
            sms("s-1", 1, "+15550000001", "STOP"),
            sms("s-2", 1, "+15550000002", "help"),
        ],
    )
    .await;
    assert!(early.is_empty(), "{early:?}");
    send_pinned(&http, "next", "+15550000009", &phone).await;
    assert_eq!(next_send(&mut p, &mut Vec::new()).await.id, "next");
    let (_, msgs) = http.req("GET", "/v1/messages", KEY_A, None).await;
    assert_eq!(msgs["items"].as_array().expect("items").len(), 1, "{msgs}");
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn settings_are_checked_and_bad_ones_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let good = json!({"opt_out_reply": "Bye", "opt_in_reply": null, "help_reply": null,
                      "allow_override": true, "help_keywords": ["aide"]});
    let (s, v) = put_settings(&http, KEY_A, good.clone()).await;
    assert_eq!((s, &v), (200, &good));
    for (bad, code) in [
        (json!({"help_reply": "a".repeat(460)}), "invalid_reply"),
        (json!({"opt_out_reply": " "}), "invalid_reply"),
        (json!({"help_keywords": ["ok", ""]}), "invalid_keyword"),
        (
            json!({"help_keywords": ["x".repeat(65)]}),
            "invalid_keyword",
        ),
        (json!({"allow_override": "yes"}), "invalid_body"),
        (json!({"opt_out_reply": "x", "extra": 1}), "invalid_body"),
    ] {
        let (s, v) = put_settings(&http, KEY_A, bad.clone()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some(code)),
            "{bad}: {v}"
        );
    }
    let (_, v) = http.req("GET", "/v1/account/opt-out", KEY_A, None).await;
    assert_eq!(v, good, "nothing changed");
    // PUT replaces: what is left out takes its default.
    let (s, v) = put_settings(&http, KEY_A, json!({"help_reply": "Help"})).await;
    assert_eq!(s, 200);
    assert_eq!(v["opt_out_reply"], Value::Null);
    assert_eq!(v["allow_override"], false);
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn transactional_overrides_the_list_only_when_the_account_allows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    let (s, _) = http
        .req(
            "POST",
            "/v1/suppressions",
            KEY_A,
            Some(json!({"number": "+15550000001"})),
        )
        .await;
    assert_eq!(s, 201);
    let otp = |id: &str| {
        json!({"id": id, "to": ["+15550000001", "+15550000002"], "text": "code 1234",
               "transactional": true})
    };
    let (s, v) = http
        .req("POST", "/v1/messages", KEY_A, Some(otp("t1")))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("override_not_allowed")),
        "{v}"
    );
    assert!(
        !v["error"]["message"]
            .as_str()
            .expect("text")
            .contains("555")
    );
    let (s, _) = http.req("GET", "/v1/messages/t1", KEY_A, None).await;
    assert_eq!(s, 404, "the whole request was refused");

    let (s, _) = put_settings(&http, KEY_A, json!({"allow_override": true})).await;
    assert_eq!(s, 200);
    let (s, v) = http
        .req("POST", "/v1/messages", KEY_A, Some(otp("t1")))
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["suppression_override"], "transactional", "{v}");
    assert_eq!(v["overrode_suppression"], true, "{v}");
    let m = next_send(&mut p, &mut Vec::new()).await;
    assert_eq!(m.id, "t1");
    assert_eq!(m.recipients.len(), 2, "the listed number too");
    let (_, v) = http.req("GET", "/v1/messages/t1", KEY_A, None).await;
    assert_eq!(v["overrode_suppression"], true, "{v}");
    assert_eq!(v["recipients"][0]["state"], "pending", "{v}");

    // Without the flag the list still holds; `false` is no flag.
    let (s, v) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"id": "n1", "to": ["+15550000001"], "text": "promo", "transactional": false})),
        )
        .await;
    assert_eq!(s, 202);
    assert_eq!(v["state"], "suppressed", "{v}");
    assert!(v.get("suppression_override").is_none(), "{v}");
    srv.stop().await.expect("stops");
}

async fn csv_req(http: &Http, method: &str, path: &str, ct: &str, body: &str) -> (u16, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let res = http
        .client
        .request(m, format!("{}{path}", http.base))
        .bearer_auth(KEY_A)
        .header("content-type", ct)
        .body(body.to_string())
        .send()
        .await
        .expect("sent");
    (
        res.status().as_u16(),
        res.text().await.expect("a text body"),
    )
}

async fn export(http: &Http) -> Vec<Vec<String>> {
    let res = http
        .client
        .get(format!("{}/v1/suppressions.csv", http.base))
        .bearer_auth(KEY_A)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    let text = res.text().await.expect("text");
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("valid CSV").iter().map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn the_list_exports_and_imports_as_csv_and_a_bad_file_imports_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (phone, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let mut p = two_sim_phone(&srv.ws_url(), &token).await;
    incoming(&mut p, 1, &[sms("s-1", 2, "+15550000001", "Opt Out")]).await;

    // A number already listed and one repeated in the file keep their first entry.
    let file = "Number,Keyword\n+15550000002,\"Arret, SVP\"\n+15550000003,\n+15550000001,stop\n\
                +15550000003,later\n";
    let (s, body) = csv_req(&http, "POST", "/v1/suppressions/import", "text/csv", file).await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v, json!({"rows": 4, "added": 2, "already_listed": 2}));

    let rows = export(&http).await;
    assert_eq!(
        rows[0],
        ["number", "keyword", "created_at", "phone", "sim"],
        "the header"
    );
    let cells: Vec<(&str, &str, &str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[3].as_str(), r[4].as_str()))
        .collect();
    assert_eq!(
        cells,
        [
            ("+15550000001", "opt out", phone.as_str(), "2"),
            ("+15550000002", "arret, svp", "", ""),
            ("+15550000003", "import", "", ""),
        ]
    );
    for r in &rows[1..] {
        assert!(
            simrelay_server::time_fmt::parse_rfc3339(&r[2]).is_some(),
            "RFC 3339: {}",
            r[2]
        );
    }

    // Round trip: the export (its first two columns) imports again and changes nothing.
    let exported: String = rows
        .iter()
        .map(|r| {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([&r[0], &r[1]]).expect("writes");
            String::from_utf8(w.into_inner().expect("flush")).expect("utf-8")
        })
        .collect();
    let (s, body) = csv_req(
        &http,
        "POST",
        "/v1/suppressions/import",
        "text/csv",
        &exported,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        json!({"rows": 3, "added": 0, "already_listed": 3})
    );

    // A file with bad rows (a bad number, too many cells): nothing of it is imported, the
    // error names the rows and not the values.
    let bad = "number\n+15550000004\n5550000005\n+15550000006,x\n+15550000007\n";
    let (s, body) = csv_req(&http, "POST", "/v1/suppressions/import", "text/csv", bad).await;
    assert_eq!(s, 400, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["error"]["code"], "invalid_csv");
    let text = v["error"]["message"].as_str().expect("text");
    assert!(text.contains("rows 3, 4"), "{text}");
    assert!(!text.contains("555"), "no number in error texts: {text}");
    for (ct, body, status) in [
        ("text/csv", "", 400),
        ("text/csv", "+15550000004\n", 400),
        ("application/json", "number\n+15550000004\n", 415),
    ] {
        let (s, b) = csv_req(&http, "POST", "/v1/suppressions/import", ct, body).await;
        assert_eq!(s, status, "{ct} {body:?}: {b}");
    }
    assert_eq!(export(&http).await, rows, "nothing changed");
    srv.stop().await.expect("stops");
}

fn incoming_event(id: &str, from: &str, text: &str, at: i64) -> Event {
    Event::Incoming(IncomingSms {
        received_at: at,
        ..sms(id, 1, from, text)
    })
}

fn replies(store: &Store, account: &str) -> Vec<(String, i64)> {
    let f = MessageFilter {
        state: None,
        since: None,
        to: None,
        after_cursor: None,
        limit: 100,
    };
    store
        .list_messages(account, &f)
        .expect("lists")
        .into_iter()
        .map(|m| (m.recipients[0].to.clone(), m.created_at))
        .collect()
}

/// The store with the relay's clock given: the day is the UTC day of the relay's time.
#[test]
fn a_sender_gets_one_reply_per_kind_per_utc_day() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = open_test_store(dir.path())?;
    let account = store.ensure_api_key("key-hash", 1)?;
    store.create_pairing_code(&account, "code", 1, 1000)?;
    assert!(store.pair_phone("code", "P", "token-p", None, 2)?.is_some());
    let settings = simrelay_server::domain::auto_reply::OptOutSettings {
        opt_out_reply: Some(STOP_REPLY.into()),
        help_reply: Some(HELP_REPLY.into()),
        ..Default::default()
    };
    store.put_opt_out_settings(&account, &settings, 3)?;
    // 2026-01-01T23:59:00Z, then 30 s later, then just after midnight.
    let day = 1_767_225_600_000 + 86_400_000;
    let t = [day - 60_000, day - 30_000, day + 1_000];
    let a = "+15550000001";
    store.apply_from_phone(
        "P",
        None,
        &[(1, incoming_event("1", a, "STOP", t[0]))],
        t[0],
    )?;
    store.apply_from_phone(
        "P",
        None,
        &[(2, incoming_event("2", a, "stop", t[1]))],
        t[1],
    )?;
    store.apply_from_phone(
        "P",
        None,
        &[(3, incoming_event("3", a, "help", t[1]))],
        t[1],
    )?;
    assert_eq!(
        replies(&store, &account),
        [(a.into(), t[0]), (a.into(), t[1])]
    );
    // The next day: a STOP from the listed number is answered again.
    let out = store.apply_from_phone(
        "P",
        None,
        &[(4, incoming_event("4", a, "Stop", t[2]))],
        t[2],
    )?;
    assert!(out.freed, "the router is told of the new message");
    assert_eq!(replies(&store, &account).len(), 3);
    // An alphanumeric sender cannot be answered.
    store.apply_from_phone(
        "P",
        None,
        &[(5, incoming_event("5", "ACME", "help", t[2]))],
        t[2],
    )?;
    assert_eq!(replies(&store, &account).len(), 3);
    Ok(())
}
