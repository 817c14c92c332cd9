//! HTTP abuse against a running relay (127.0.0.1:0, raw TCP where the attack needs it): bodies
//! trickled byte by byte, field names that are phone numbers or a kilobyte long, a forged
//! `Host`, plain HTTP on the TLS port, and the modes of the files the relay keeps secrets in.
//! Each test is the regression test of a row in docs/RELIABILITY.md, "HTTP".

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Http, KEY_A, RawPhone, paired_phone};
use serde_json::{Value, json};
use simrelay_protocol::RelayFrame;
use simrelay_server::config::TlsMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// (status, JSON body or Null) of a raw HTTP answer.
fn parse_answer(answer: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(answer);
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

/// How a slow client ended: the answer it got (empty if the relay just closed) and when.
struct Ended {
    answer: Vec<u8>,
    after: Duration,
}

/// Sends a valid head announcing a large JSON body, then the body one byte per `gap`, until
/// the relay answers or closes.
async fn trickle_body(addr: SocketAddr, gap: Duration) -> Ended {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await.expect("connects");
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {KEY_A}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head sent");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            biased;
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            () = tokio::time::sleep(gap), if answer.is_empty() => {
                if s.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
    }
    Ended {
        answer,
        after: t.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_trickled_byte_by_byte_are_cut_off_while_others_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body_timeout = Duration::from_millis(600);
    let server = common::server(dir.path(), |c| c.body_read_timeout = body_timeout).await;
    let http = Http::new(&server.url);
    // Many clients with a valid key, each sending its body at ten bytes a second.
    let slow: Vec<_> = (0..40)
        .map(|_| tokio::spawn(trickle_body(server.addr, Duration::from_millis(100))))
        .collect();
    // Meanwhile others are answered promptly, a send included.
    for i in 0..10 {
        let t = Instant::now();
        http.healthy().await;
        let body = json!({"to": ["+15551230001"], "text": "hi", "id": format!("ok-{i}")});
        let (st, v) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
        assert_eq!(st, 202, "{v}");
        assert!(t.elapsed() < Duration::from_secs(3), "the relay stalled");
    }
    let mut answered = 0;
    for s in slow {
        let ended = tokio::time::timeout(Duration::from_secs(20), s)
            .await
            .expect("a slow body is cut off within the bound")
            .expect("task");
        assert!(
            ended.after >= body_timeout,
            "cut off before the body timeout: {:?}",
            ended.after
        );
        if !ended.answer.is_empty() {
            let (status, body) = parse_answer(&ended.answer);
            assert_eq!(status, 408, "{}", String::from_utf8_lossy(&ended.answer));
            assert_eq!(body["error"]["code"], "body_timeout", "{body}");
            answered += 1;
        }
    }
    assert!(answered > 0, "the relay answers 408 before it closes");
    let (st, v) = http.req("GET", "/v1/messages?limit=500", KEY_A, None).await;
    assert_eq!(st, 200);
    assert_eq!(
        v["items"].as_array().map(Vec::len),
        Some(10),
        "only the good sends"
    );
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_field_names_are_echoed_only_when_short_identifiers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |_| {}).await;
    let http = Http::new(&server.url);
    let long = "k".repeat(1024);
    for (field, echoed) in [
        ("+15551234567", false),
        ("15551234567", false),
        (long.as_str(), false),
        ("colour", true),
    ] {
        let mut body = json!({"to": ["+15551230001"], "text": "hi"});
        body[field] = json!(1);
        let (st, v) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(v["error"]["code"], "invalid_body", "{v}");
        let message = v["error"]["message"].as_str().expect("message");
        assert!(message.starts_with("unknown field"), "{message}");
        assert_eq!(message.contains(field), echoed, "{message}");
        assert!(message.len() < 100, "{message}");
    }
    // The same rule in the phones' frames.
    let (_, token) = paired_phone(&http, &server.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&server.ws_url(), &token, 0).await;
    p.send_text(r#"{"type":"ack","seq":0,"+15551234567":1}"#)
        .await;
    match p.recv().await {
        Some(RelayFrame::Error { code, message }) => {
            assert_eq!(code, "bad_frame");
            assert!(message.contains("unknown field"), "{message}");
            assert!(!message.contains("5551234567"), "{message}");
        }
        other => panic!("expected bad_frame, got {other:?}"),
    }
    server.stop().await.expect("stops");
}

/// `POST /v1/pairing-codes` over raw TCP with `host` as the Host header: the JSON answer.
async fn pairing_code_with_host(addr: SocketAddr, host: &str) -> Value {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    let req = format!(
        "POST /v1/pairing-codes HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY_A}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("sent");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("answered")
        .expect("read");
    let (status, body) = parse_answer(&answer);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_urls_never_come_from_the_host_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |_| {}).await;
    let v = pairing_code_with_host(server.addr, "evil.example").await;
    assert!(!v.to_string().contains("evil.example"), "{v}");
    // Without a public URL: the address the relay is bound to (not port 0).
    assert_eq!(v["ws_url"], server.ws_base().as_str(), "{v}");
    assert_eq!(v["link_url"], server.ws_url().as_str(), "{v}");
    server.stop().await.expect("stops");

    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |c| {
        c.public_url = Some("https://relay.example.com/".into());
    })
    .await;
    let v = pairing_code_with_host(server.addr, "evil.example").await;
    assert_eq!(v["ws_url"], "wss://relay.example.com", "{v}");
    assert_eq!(v["link_url"], "wss://relay.example.com/v1/link", "{v}");
    server.stop().await.expect("stops");
}

fn self_signed(c: &mut simrelay_server::config::Config) {
    c.tls = TlsMode::SelfSigned {
        names: vec!["localhost".into(), "127.0.0.1".into()],
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_tls_port_gets_a_one_line_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), self_signed).await;
    for req in [
        "GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n".to_string(),
        format!(
            "POST /v1/messages HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {KEY_A}\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        ),
    ] {
        let mut s = TcpStream::connect(server.addr).await.expect("connects");
        s.write_all(req.as_bytes()).await.expect("sent");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
            .await
            .expect("answered and closed")
            .expect("read");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 400 "), "{text:?}");
        let (_, body) = text.split_once("\r\n\r\n").expect("a body");
        assert_eq!(body, simrelay_server::tls::PLAIN_HTTP_HINT);
        assert!(body.contains("HTTPS") && body.ends_with('\n') && body.lines().count() == 1);
    }
    // TLS clients are served as before.
    Http::new(&server.url).healthy().await;
    server.stop().await.expect("stops");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_store_and_tls_key_are_private() {
    // SQLite-only by nature: the store's files are in the data directory.
    fn sqlite_self_signed(c: &mut simrelay_server::config::Config) {
        self_signed(c);
        c.database_url = None;
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    // Made by the relay (the temp dir itself is private already).
    let data = tmp.path().join("data");
    let server = common::server(&data, sqlite_self_signed).await;
    let http = Http::new(&server.url);
    let body = json!({"to": ["+15551230001"], "text": "hi"});
    let (st, v) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
    assert_eq!(st, 202, "{v}");
    let modes = |files: &[&str]| -> Vec<String> {
        files
            .iter()
            .map(|f| format!("{f} {:o}", mode(&data.join(f))))
            .collect()
    };
    assert_eq!(modes(&[""]), [" 700"], "the data directory");
    let private = [
        "relay.sqlite",
        "relay.sqlite-wal",
        "relay.sqlite-shm",
        "tls-key.pem",
    ];
    let want: Vec<String> = private.iter().map(|f| format!("{f} 600")).collect();
    assert_eq!(modes(&private), want);
    server.stop().await.expect("stops");

    // Files left world-readable (by an older relay) are narrowed at the next start.
    for f in ["relay.sqlite", "tls-key.pem"] {
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let server = common::server(&data, sqlite_self_signed).await;
    assert_eq!(
        modes(&["relay.sqlite", "tls-key.pem"]),
        ["relay.sqlite 600", "tls-key.pem 600"],
        "narrowed"
    );
    server.stop().await.expect("stops");
}
