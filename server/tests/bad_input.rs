//! Bad input against a running relay (real HTTP on 127.0.0.1:0, real WebSockets): every
//! malformed, oversized (a 2 MiB body announced or streamed chunked, frames over the limit),
//! wrongly typed or unauthorised request gets a clear error, the relay keeps serving,
//! and nothing stored changes (list endpoints compared before and after).

mod common;

use std::time::Duration;

use common::{Http, KEY_A, KEY_B, RawPhone, assert_error, paired_phone};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use simrelay_protocol::{
    Event, PROTOCOL_VERSION, PhoneFrame, RecipientState, RecipientUpdate, RelayFrame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Everything the API lists, for both accounts.
async fn snapshot(http: &Http) -> Vec<Value> {
    let mut out = Vec::new();
    for key in [KEY_A, KEY_B] {
        for path in [
            "/v1/messages?limit=500",
            "/v1/inbox",
            "/v1/webhooks",
            "/v1/suppressions",
        ] {
            let (st, body) = http.req("GET", path, key, None).await;
            assert_eq!(st, 200, "{path}: {body}");
            out.push(body);
        }
        let (st, mut phones) = http.req("GET", "/v1/phones", key, None).await;
        assert_eq!(st, 200);
        // Presence and heartbeat times move on their own; the phones themselves must not.
        for p in phones["items"].as_array_mut().expect("items") {
            let p = p.as_object_mut().expect("phone object");
            p.remove("last_seen");
            p.remove("online");
        }
        out.push(phones);
    }
    out
}

/// A raw request: (status, JSON body or Null).
async fn raw(
    http: &Http,
    method: &str,
    path: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (reqwest::StatusCode, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut r = http.client.request(m, format!("{}{}", http.base, path));
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    let res = r.body(body).send().await.expect("request sent");
    let status = res.status();
    let bytes = res.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Announces a 2 MiB JSON body and waits for the answer: (status, JSON body).
async fn huge_body(addr: std::net::SocketAddr) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {KEY_A}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"to\":[",
        2 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).await.expect("head sent");
    let answer = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut s))
        .await
        .expect("no answer to a 2 MiB body");
    parse_answer(&answer)
}

/// Reads an HTTP answer until its body is a whole JSON value or the connection ends.
async fn read_answer(s: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&answer);
        if let Some((_, body)) = text.split_once("\r\n\r\n")
            && serde_json::from_str::<Value>(body).is_ok()
        {
            break;
        }
    }
    answer
}

/// (status, JSON body or Null) of a raw HTTP answer.
fn parse_answer(answer: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// Most bytes [`endless_chunked_body`] streams: far past the body limit and the socket
/// buffers, so a relay that answers only at the end of the body is caught, not waited for.
const STREAM_BOUND: usize = 64 * simrelay_server::MAX_BODY_BYTES;

/// Streams a chunked JSON body without Content-Length that never ends (no last chunk), 64 KiB
/// at a time, until the answer is in, a write fails or [`STREAM_BOUND`] bytes are sent.
/// Returns (status, JSON body, body bytes sent).
async fn endless_chunked_body(addr: std::net::SocketAddr) -> (u16, Value, usize) {
    let s = TcpStream::connect(addr).await.expect("connects");
    let (mut rd, mut wr) = s.into_split();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {KEY_A}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    wr.write_all(head.as_bytes()).await.expect("head sent");
    // Read while writing: the answer comes while the body is still streaming.
    let mut reader = tokio::spawn(async move { read_answer(&mut rd).await });
    let chunk = |payload: &[u8]| {
        let mut c = format!("{:x}\r\n", payload.len()).into_bytes();
        c.extend_from_slice(payload);
        c.extend_from_slice(b"\r\n");
        c
    };
    let first = chunk(br#"{"to":["+15551230001"],"text":""#);
    let filler = chunk(&[b'x'; 64 * 1024]);
    let mut sent = 0;
    let mut answer = None;
    let mut next = first;
    while sent < STREAM_BOUND {
        tokio::select! {
            biased;
            a = &mut reader => {
                answer = Some(a.expect("reader task"));
                break;
            }
            w = wr.write_all(&next) => {
                if w.is_err() {
                    break; // the relay closed (or reset) the connection
                }
                sent += next.len();
                next = filler.clone();
            }
        }
    }
    let answer = match answer {
        Some(a) => a,
        None => tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("no answer to an endless chunked body")
            .expect("reader task"),
    };
    let (status, body) = parse_answer(&answer);
    (status, body, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_bodies_get_clear_errors_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |_| {}).await;
    let http = Http::new(&server.url);
    let (st, _) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"to": ["+15551230001"], "text": "kept", "id": "kept-1"})),
        )
        .await;
    assert_eq!(st, 202);
    let before = snapshot(&http).await;

    let many: Vec<String> = (0..10_000).map(|i| format!("+1555{i:07}")).collect();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!(
        "{{\"to\":{}[\"+15551230001\"]{},\"text\":\"x\"}}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let mut invalid_utf8 = b"{\"to\":[\"+15551230001\"],\"text\":\"".to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    invalid_utf8.extend_from_slice(b"\"}");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "truncated",
            b"{\"to\":[\"+1555".to_vec(),
            400,
            "invalid_json",
        ),
        ("not json", b"hello".to_vec(), 400, "invalid_json"),
        ("empty", Vec::new(), 400, "invalid_json"),
        (
            "wrong types",
            br#"{"to":"+15551230001","text":5}"#.to_vec(),
            400,
            "invalid_body",
        ),
        (
            "null text",
            br#"{"to":["+15551230001"],"text":null}"#.to_vec(),
            400,
            "invalid_body",
        ),
        (
            "unknown field",
            br#"{"to":["+15551230001"],"text":"x","color":"red"}"#.to_vec(),
            400,
            "invalid_body",
        ),
        ("deep array", deep.into_bytes(), 400, "invalid_*"),
        ("deep field", deep_obj.into_bytes(), 400, "invalid_*"),
        ("invalid utf-8", invalid_utf8, 400, "invalid_json"),
        (
            "not e.164",
            br#"{"to":["555-1234"],"text":"x"}"#.to_vec(),
            400,
            "invalid_number",
        ),
        (
            "number with letters",
            br#"{"to":["+1555123000a"],"text":"x"}"#.to_vec(),
            400,
            "invalid_number",
        ),
        (
            "10,000 recipients",
            serde_json::to_vec(&json!({"to": many, "text": "x"})).expect("json"),
            400,
            "too_many_recipients",
        ),
        (
            "no recipients",
            br#"{"to":[],"text":"x"}"#.to_vec(),
            400,
            "no_recipients",
        ),
        (
            "bad id",
            br#"{"to":["+15551230001"],"text":"x","id":"has space"}"#.to_vec(),
            400,
            "invalid_id",
        ),
        (
            "same id, other content",
            br#"{"to":["+15551230001"],"text":"changed","id":"kept-1"}"#.to_vec(),
            409,
            "id_conflict",
        ),
    ];
    for (name, body, want, code) in cases {
        let (st, v) = raw(
            &http,
            "POST",
            "/v1/messages",
            Some(KEY_A),
            Some("application/json"),
            body,
        )
        .await;
        assert_eq!(st.as_u16(), want, "{name}: {v}");
        let got = v["error"]["code"].as_str().unwrap_or("");
        match code.strip_suffix('*') {
            Some(prefix) => assert!(got.starts_with(prefix), "{name}: {v}"),
            None => assert_eq!(got, code, "{name}: {v}"),
        }
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "{name}: no message");
        assert!(
            !message.contains("+1555") && !message.contains("555-1234"),
            "{name}: an error text quotes a number: {message}"
        );
    }
    // A 2 MiB body is refused from its Content-Length before it is read. (Sending it whole
    // races the relay's close against the client's write: the client may see a reset.)
    let (st, v) = huge_body(server.addr).await;
    assert_eq!(st, 413, "{v}");
    assert_eq!(v["error"]["code"], "body_too_large", "{v}");
    let (st, v) = raw(
        &http,
        "POST",
        "/v1/messages",
        Some(KEY_A),
        Some("text/plain"),
        br#"{"to":["+15551230001"],"text":"x"}"#.to_vec(),
    )
    .await;
    assert_error(
        st,
        &v,
        reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    for (path, body) in [
        (
            "/v1/webhooks",
            br#"{"url":"not a url","events":[]}"#.to_vec(),
        ),
        ("/v1/webhooks", br#"{"url":5}"#.to_vec()),
        ("/v1/webhooks", b"{".to_vec()),
    ] {
        let (st, v) = raw(
            &http,
            "POST",
            path,
            Some(KEY_A),
            Some("application/json"),
            body,
        )
        .await;
        assert_eq!(st.as_u16(), 400, "{path}: {v}");
        assert!(v["error"]["code"].is_string(), "{v}");
    }
    for path in [
        "/v1/messages?limit=abc",
        "/v1/messages?since=yesterday",
        "/v1/messages?cursor=%ff%fe",
        "/v1/messages?bogus=1",
        "/v1/inbox?since=-",
    ] {
        let (st, v) = raw(&http, "GET", path, Some(KEY_A), None, Vec::new()).await;
        assert_eq!(st.as_u16(), 400, "{path}: {v}");
        assert!(v["error"]["code"].is_string(), "{v}");
    }
    http.healthy().await;
    assert_eq!(before, snapshot(&http).await, "bad input changed the store");
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_other_accounts_ids_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |_| {}).await;
    let http = Http::new(&server.url);
    let (st, _) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"to": ["+15551230001"], "text": "mine", "id": "a-1"})),
        )
        .await;
    assert_eq!(st, 202);
    let (st, hook) = http
        .req(
            "POST",
            "/v1/webhooks",
            KEY_A,
            Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["message.sent"]})),
        )
        .await;
    assert_eq!(st, 201, "{hook}");
    let hook_id = hook["id"].as_str().expect("webhook id").to_string();
    let before = snapshot(&http).await;

    for key in [None, Some("wrong-key"), Some(""), Some("key-account-b-x")] {
        let (st, v) = raw(&http, "GET", "/v1/messages", key, None, Vec::new()).await;
        assert_eq!(st.as_u16(), 401, "{key:?}: {v}");
        assert!(v["error"]["code"].is_string());
        let (st, _) = raw(
            &http,
            "POST",
            "/v1/messages",
            key,
            Some("application/json"),
            br#"{"to":["+15551230001"],"text":"x"}"#.to_vec(),
        )
        .await;
        assert_eq!(st.as_u16(), 401);
    }
    let res = http
        .client
        .get(format!("{}/v1/messages", http.base))
        .header("authorization", "Basic a2V5OnNlY3JldA==")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 401);

    // Account B sees none of A's ids, and cannot cancel or delete them.
    let (st, v) = http.req("GET", "/v1/messages/a-1", KEY_B, None).await;
    assert_eq!(st, 404, "{v}");
    assert!(v["error"]["code"].is_string());
    let (st, _) = http.req("DELETE", "/v1/messages/a-1", KEY_B, None).await;
    assert_eq!(st, 404);
    let (st, _) = http
        .req("DELETE", &format!("/v1/webhooks/{hook_id}"), KEY_B, None)
        .await;
    assert_eq!(st, 404);
    assert_eq!(before, snapshot(&http).await);
    http.healthy().await;
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_pairing_codes_and_bad_device_tokens_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |_| {}).await;
    let http = Http::new(&server.url);
    let ws = server.ws_url();
    let (st, body) = http.req("POST", "/v1/pairing-codes", KEY_A, None).await;
    assert_eq!(st, 201);
    let code = body["code"].as_str().expect("code").to_string();
    RawPhone::pair(&ws, &code).await.expect("first use pairs");
    let before = snapshot(&http).await;

    assert_eq!(
        RawPhone::pair(&ws, &code).await,
        Err("bad_pairing_code".into())
    );
    assert_eq!(
        RawPhone::pair(&ws, &code.to_lowercase()).await,
        Err("bad_pairing_code".into())
    );
    assert_eq!(
        RawPhone::pair(&ws, "").await,
        Err("bad_pairing_code".into())
    );
    for token in ["", "0000", &"f".repeat(64), &"x".repeat(10_000)] {
        let mut p = RawPhone::connect(&ws).await;
        p.send(&PhoneFrame::Hello {
            version: PROTOCOL_VERSION,
            token: token.to_string(),
            acked: 0,
            status: common::status(),
        })
        .await;
        match p.recv().await {
            Some(RelayFrame::Error { code, .. }) => assert_eq!(code, "unauthorized"),
            other => panic!("expected unauthorized, got {other:?}"),
        }
        assert!(p.recv().await.is_none(), "the relay closes after refusing");
    }
    http.healthy().await;
    assert_eq!(before, snapshot(&http).await);
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_an_error_and_a_close_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |_| {}).await;
    let http = Http::new(&server.url);
    let ws = server.ws_url();
    let (_phone_a, token_a) = paired_phone(&http, &ws, KEY_A).await;
    // Account B's message, which A's phone must not be able to touch.
    let (st, _) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_B,
            Some(json!({"to": ["+15551230009"], "text": "b's", "id": "b-1"})),
        )
        .await;
    assert_eq!(st, 202);
    // A hello stores the phone's status; take the snapshot after one.
    drop(RawPhone::hello(&ws, &token_a, 0).await);
    let before = snapshot(&http).await;

    let foreign = |seq: u64| PhoneFrame::Event {
        seq,
        event: Event::Recipient(RecipientUpdate {
            message_id: "b-1".into(),
            idx: 0,
            state: RecipientState::Delivered,
            at: 1,
            reason: None,
            code: None,
            sim: Some(1),
            parts: 1,
            parts_sent: 1,
            parts_delivered: 1,
            unsent: false,
        }),
    };
    let big = format!(
        "{{\"type\":\"heartbeat\",\"at\":1,\"pad\":\"{}\"}}",
        "x".repeat(300 * 1024)
    );
    let cases: Vec<(&str, Message)> = vec![
        ("not json", Message::text("{oops")),
        (
            "unknown type",
            Message::text(r#"{"type":"launch","seq":1}"#),
        ),
        (
            "unknown field",
            Message::text(r#"{"type":"ack","seq":1,"extra":true}"#),
        ),
        ("wrong type", Message::text(r#"{"type":"ack","seq":"one"}"#)),
        ("binary", Message::binary(vec![1u8, 2, 3])),
        ("oversized", Message::text(big)),
        (
            "hello again",
            Message::text(
                serde_json::to_string(&PhoneFrame::Hello {
                    version: PROTOCOL_VERSION,
                    token: token_a.clone(),
                    acked: 0,
                    status: common::status(),
                })
                .expect("json"),
            ),
        ),
    ];
    for (name, msg) in cases {
        let (mut p, _) = RawPhone::hello(&ws, &token_a, 0).await;
        p.ws.send(msg).await.expect("sent");
        match p.recv().await {
            Some(RelayFrame::Error { code, message }) => {
                assert_eq!(code, "bad_frame", "{name}");
                assert!(!message.is_empty());
            }
            other => panic!("{name}: expected error bad_frame, got {other:?}"),
        }
        assert!(p.recv().await.is_none(), "{name}: the relay closes");
    }

    // Far beyond the socket's limit: the relay drops the link without reading it all.
    let (mut p, _) = RawPhone::hello(&ws, &token_a, 0).await;
    let _ = p.ws.send(Message::text("x".repeat(4 * 1024 * 1024))).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match p.ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an oversized frame ends the link");

    // Out of order and foreign: a gap stores nothing; another account's message is ignored.
    // The acks show what the relay stored: nothing at the gap, then seq 1 (covered, ignored).
    let (mut p, _) = RawPhone::hello(&ws, &token_a, 0).await;
    p.send(&foreign(5)).await;
    match p.recv().await {
        Some(RelayFrame::Ack { seq }) => assert_eq!(seq, 0, "a gap stores nothing"),
        other => panic!("expected an ack, got {other:?}"),
    }
    p.send(&foreign(1)).await;
    match p.recv().await {
        Some(RelayFrame::Ack { seq }) => assert_eq!(seq, 1),
        other => panic!("expected an ack, got {other:?}"),
    }
    drop(p);

    http.healthy().await;
    let (st, b1) = http.req("GET", "/v1/messages/b-1", KEY_B, None).await;
    assert_eq!(st, 200);
    assert_ne!(
        b1["state"], "delivered",
        "a foreign phone changed b-1: {b1}"
    );
    assert_eq!(before, snapshot(&http).await);
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_streaming_past_the_limit_is_refused_before_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |_| {}).await;
    let http = Http::new(&server.url);
    // No Content-Length to refuse it by: the relay must count what it reads.
    let (st, v, sent) = endless_chunked_body(server.addr).await;
    assert_eq!(st, 413, "{v}");
    assert_eq!(v["error"]["code"], "body_too_large", "{v}");
    assert!(
        sent < STREAM_BOUND,
        "the relay answered only after {sent} bytes"
    );
    let (st, list) = http.req("GET", "/v1/messages", KEY_A, None).await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["items"], json!([]), "a refused body stored something");
    let (st, v) = http
        .req(
            "POST",
            "/v1/messages",
            KEY_A,
            Some(json!({"to": ["+15551230001"], "text": "after the flood"})),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    http.healthy().await;
    server.stop().await.expect("stops");
}
