//! HTTP connection timeouts against a running relay: clients that never finish a request
//! head (slow loris) are dropped while others are served, and a kept-alive connection
//! outlives the header timeout between requests (clients keep pooled connections; closing
//! one under a request makes that request fail), until the idle timeout closes it.

mod common;

use std::time::{Duration, Instant};

use common::Http;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes `head` one byte at a time with `gap` between bytes until the relay closes.
async fn trickle(addr: std::net::SocketAddr, head: &'static [u8], gap: Duration) -> bool {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    for &b in head.iter().cycle() {
        if s.write_all(&[b]).await.is_err() {
            return true;
        }
        let mut buf = [0u8; 256];
        tokio::select! {
            r = s.read(&mut buf) => match r {
                // Closed (or an error status, then closed): either way it was dropped.
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            },
            () = tokio::time::sleep(gap) => {}
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_clients_are_dropped_while_others_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |c| {
        c.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let http = Http::new(&server.url);
    let addr = server.addr;
    // Several clients that never finish their request head, and one that says nothing.
    let mut loris = Vec::new();
    for _ in 0..8 {
        loris.push(tokio::spawn(trickle(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            Duration::from_millis(50),
        )));
    }
    let mut silent = TcpStream::connect(addr).await.expect("connects");
    // Meanwhile the relay serves everyone else promptly.
    for _ in 0..20 {
        let t = std::time::Instant::now();
        http.healthy().await;
        assert!(t.elapsed() < Duration::from_secs(2), "the relay stalled");
    }
    for l in loris {
        let dropped = tokio::time::timeout(Duration::from_secs(20), l)
            .await
            .expect("a slow client is dropped within the bound")
            .expect("task");
        assert!(dropped);
    }
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buf))
        .await
        .expect("a silent client is dropped within the bound");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    http.healthy().await;
    server.stop().await.expect("stops");
}

/// Sends `GET /healthz` on `s` and reads the answer; false if the connection was closed.
async fn healthz_on(s: &mut TcpStream) -> bool {
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.ends_with(b"\r\n\r\nok\n") {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_connections_outlive_the_header_timeout_until_idle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let header = Duration::from_millis(200);
    let idle = Duration::from_secs(2);
    let server = common::server(dir.path(), |c| {
        c.header_read_timeout = header;
        c.keep_alive_idle = idle;
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.expect("connects");
    assert!(healthz_on(&mut s).await);
    // The client comes back on its pooled connection after five header timeouts of idling:
    // the same connection serves it.
    tokio::time::sleep(header * 5).await;
    assert!(
        healthz_on(&mut s).await,
        "a kept-alive connection was closed while idle"
    );
    // Left idle, it is closed, cleanly, after the idle timeout (not before: it was open above).
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
        .await
        .expect("an idle connection is closed within the bound");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert!(
        t.elapsed() >= idle - Duration::from_millis(100),
        "closed early: {:?}",
        t.elapsed()
    );
    server.stop().await.expect("stops");
}
