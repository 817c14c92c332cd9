//! Phones cannot hurt the relay or other tenants (docs/RELIABILITY.md, "Phones"), over a real
//! relay on 127.0.0.1:0: acks of frames never written delete nothing, incoming SMS are bounded
//! and rate-limited per phone (refused ones come again later, nothing is lost), and pairing
//! attempts are throttled per source address and globally.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Http, KEY_A, RawPhone, paired_phone, server};
use futures_util::SinkExt;
use serde_json::json;
use simrelay_protocol::{Event, IncomingSms, PROTOCOL_VERSION, PhoneFrame, RelayFrame, encode};
use simrelay_server::Server;
use simrelay_server::store::now_ms;
use tokio_tungstenite::tungstenite::Message;

/// Polls `check` until it holds (10 s at most).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::task::yield_now().await;
    }
}

async fn metric(http: &Http, line_start: &str) -> u64 {
    http.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in /metrics"))
}

#[tokio::test]
async fn acks_above_the_frames_written_never_delete_unsent_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.window = 1).await;
    let http = Http::new(&srv.url);
    let (phone_id, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    let ids = ["a1", "a2", "a3"];
    for id in ids {
        let body = json!({"to": ["+15551230001"], "text": "hi", "id": id});
        let (s, _) = http.req("POST", "/v1/messages", KEY_A, Some(body)).await;
        assert_eq!(s, 202);
    }
    // All three are routed to the phone (three stored frames); the window lets one out.
    for id in ids {
        eventually("routed to the phone", || async {
            let (_, m) = http
                .req("GET", &format!("/v1/messages/{id}"), KEY_A, None)
                .await;
            m["recipients"][0]["phone"] == phone_id.as_str()
        })
        .await;
    }
    let mut got = Vec::new();
    let Some(RelayFrame::Send { seq: 1, message }) = p.recv().await else {
        panic!("frame 1")
    };
    got.push(message.id);

    // An ack far beyond what was written: only frame 1 counts as acknowledged.
    p.send(&PhoneFrame::Ack { seq: 1_000_000_000 }).await;
    let Some(RelayFrame::Send { seq: 2, message }) = p.recv().await else {
        panic!("frame 2 still comes")
    };
    got.push(message.id);
    drop(p);

    // The same lie in `hello.acked` on the next link: frame 3 was never written.
    let (mut p, _) = RawPhone::hello(&srv.ws_url(), &token, 1_000_000_000).await;
    let Some(RelayFrame::Send { seq: 3, message }) = p.recv().await else {
        panic!("frame 3 still comes")
    };
    got.push(message.id);
    p.send(&PhoneFrame::Ack { seq: 3 }).await;
    assert_eq!(got, ids, "every accepted message reaches the phone");
    srv.stop().await.expect("stops");
}

fn sms(n: u32) -> IncomingSms {
    IncomingSms {
        id: format!("in-{n}"),
        sim: Some(1),
        from: "+15557654321".into(),
        text: format!("message {n}"),
        sent_at: Some(now_ms() - 60_000),
        received_at: now_ms(),
        encrypted: false,
        data_port: None,
    }
}

/// Sends events `from..=to` of `all` (seq = index + 1) in one flush.
async fn send_events(p: &mut RawPhone, all: &[Event], after: u64) {
    for (i, e) in all.iter().enumerate().skip(after as usize) {
        let f = PhoneFrame::Event {
            seq: i as u64 + 1,
            event: e.clone(),
        };
        p.ws.feed(Message::text(encode(&f))).await.expect("feed");
    }
    p.ws.flush().await.expect("flush");
}

/// Reads until the relay closes; returns the last ack and the error code, if any.
async fn until_closed(p: &mut RawPhone) -> (u64, Option<String>) {
    let (mut acked, mut error) = (0, None);
    while let Some(f) = p.recv().await {
        match f {
            RelayFrame::Ack { seq } => acked = acked.max(seq),
            RelayFrame::Error { code, .. } => error = Some(code),
            other => panic!("unexpected {other:?}"),
        }
    }
    (acked, error)
}

async fn inbox_len(http: &Http) -> usize {
    let (_, inbox) = http.req("GET", "/v1/inbox?limit=100", KEY_A, None).await;
    inbox["items"].as_array().expect("items").len()
}

#[tokio::test]
async fn incoming_sms_over_the_phones_rate_are_refused_counted_and_taken_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.incoming_per_minute = 5).await;
    let http = Http::new(&srv.url);
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let all: Vec<Event> = (1..=8).map(|n| Event::Incoming(sms(n))).collect();

    let (mut p, stored) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    assert_eq!(stored, 0);
    send_events(&mut p, &all, 0).await;
    let (acked, error) = until_closed(&mut p).await;
    assert_eq!(acked, 5, "the burst is stored and acknowledged");
    assert_eq!(error.as_deref(), Some("too_many_incoming"));
    assert_eq!(inbox_len(&http).await, 5);
    let refused = metric(
        &http,
        "simrelay_incoming_refused_total{reason=\"rate_limited\"}",
    )
    .await;
    assert!((1..=3).contains(&refused), "counted: {refused}");

    // Resent at once: still over the rate, nothing more is stored or acknowledged.
    let (mut p, stored) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    assert_eq!(stored, 5);
    send_events(&mut p, &all, stored).await;
    assert_eq!(
        until_closed(&mut p).await,
        (5, Some("too_many_incoming".into()))
    );

    // A minute later the phone's resend is taken: nothing was lost.
    srv.state
        .hub
        .limits()
        .clock
        .advance(Duration::from_secs(60));
    let (mut p, stored) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
    send_events(&mut p, &all, stored).await;
    let mut acked = 0;
    while acked < 8 {
        match p.recv().await {
            Some(RelayFrame::Ack { seq }) => acked = seq,
            other => panic!("expected acks up to 8, got {other:?}"),
        }
    }
    assert_eq!(inbox_len(&http).await, 8);
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn incoming_sms_outside_the_limits_are_refused_for_good_without_holding_up_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let (_, token) = paired_phone(&http, &srv.ws_url(), KEY_A).await;
    let max = simrelay_server::limits::MAX_INCOMING_TEXT_BYTES;
    let all: Vec<Event> = vec![
        Event::Incoming(sms(1)),
        Event::Incoming(IncomingSms {
            text: "x".repeat(max + 1),
            ..sms(2)
        }),
        // Impossible time stamps are replaced by the relay's clock, never refused.
        Event::Incoming(IncomingSms {
            received_at: 5,
            ..sms(3)
        }),
        Event::Incoming(IncomingSms {
            text: "é".repeat(max / 2),
            ..sms(4)
        }),
        Event::Incoming(IncomingSms {
            sent_at: Some(now_ms() + 3 * 86_400_000),
            ..sms(5)
        }),
        // Some networks deliver SMS without a sender: kept.
        Event::Incoming(IncomingSms {
            from: String::new(),
            ..sms(6)
        }),
        Event::Incoming(IncomingSms {
            from: "1".repeat(65),
            ..sms(7)
        }),
    ];
    // Like the core: after each refusal the link ends; the next one resends what is unacked
    // (the last event is a bad one, so every link ends with a refusal).
    let mut stored = 0;
    let mut refusals = 0;
    while stored < all.len() as u64 {
        refusals += 1;
        assert!(
            refusals <= all.len(),
            "the refused SMS hold the phone's outbox up"
        );
        let (mut p, s) = RawPhone::hello(&srv.ws_url(), &token, 0).await;
        send_events(&mut p, &all, s).await;
        let (acked, error) = until_closed(&mut p).await;
        assert_eq!(error.as_deref(), Some("incoming_refused"));
        stored = acked;
    }
    let (_, inbox) = http.req("GET", "/v1/inbox", KEY_A, None).await;
    let items = inbox["items"].as_array().expect("items");
    let mut ids: Vec<&str> = items
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["in-1", "in-3", "in-4", "in-5", "in-6"],
        "the SMS within the limits, retimed ones included"
    );
    let retimed = items
        .iter()
        .find(|i| i["id"] == "in-3")
        .expect("in-3 stored");
    assert!(
        retimed["received_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("20") && !t.starts_with("1970")),
        "an impossible time stamp is replaced by the relay's clock: {retimed}"
    );
    for (reason, n) in [("text_too_long", 1), ("bad_sender", 1)] {
        let line = format!("simrelay_incoming_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&http, &line).await, n, "{reason}");
    }
    srv.stop().await.expect("stops");
}

/// A raw phone whose TCP connection comes from `local` (any 127/8 address is loopback).
async fn connect_from(srv: &Server, local: [u8; 4]) -> RawPhone {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((local, 0)))
        .expect("bind a loopback source");
    let tcp = socket.connect(srv.addr).await.expect("tcp connects");
    let (ws, _) = tokio_tungstenite::client_async(
        srv.ws_url(),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .expect("ws connects");
    RawPhone { ws }
}

async fn pair_from(srv: &Server, local: [u8; 4], code: &str) -> Result<String, String> {
    let mut p = connect_from(srv, local).await;
    p.send(&PhoneFrame::Pair {
        version: PROTOCOL_VERSION,
        code: code.into(),
        name: None,
    })
    .await;
    match p.recv().await {
        Some(RelayFrame::Paired { phone_id, .. }) => Ok(phone_id),
        Some(RelayFrame::Error { code, .. }) => Err(code),
        other => panic!("unexpected answer to pair: {other:?}"),
    }
}

async fn new_code(http: &Http) -> String {
    let (s, body) = http.req("POST", "/v1/pairing-codes", KEY_A, None).await;
    assert_eq!(s, 201, "{body}");
    body["code"].as_str().expect("code").to_string()
}

#[tokio::test]
async fn pairing_guesses_lock_their_source_out_while_other_sources_still_pair() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |_| {}).await;
    let http = Http::new(&srv.url);
    let code = new_code(&http).await;
    for _ in 0..10 {
        assert_eq!(
            pair_from(&srv, [127, 0, 0, 7], "WRONG000").await,
            Err("bad_pairing_code".into())
        );
    }
    assert_eq!(
        pair_from(&srv, [127, 0, 0, 7], &code).await,
        Err("too_many_attempts".into()),
        "the 11th attempt is refused even with the right code"
    );
    assert!(pair_from(&srv, [127, 0, 0, 8], &code).await.is_ok());
    assert_eq!(
        pair_from(&srv, [127, 0, 0, 7], &new_code(&http).await).await,
        Err("too_many_attempts".into()),
        "still locked out"
    );
    // After the lockout (paused by the relay's limiter clock, no sleep) the source may try again.
    srv.state
        .hub
        .limits()
        .clock
        .advance(Duration::from_secs(61));
    assert!(
        pair_from(&srv, [127, 0, 0, 7], &new_code(&http).await)
            .await
            .is_ok()
    );
    assert!(metric(&http, "simrelay_pairing_refused_total").await >= 2);
    srv.stop().await.expect("stops");
}

#[tokio::test]
async fn pairing_is_throttled_globally_across_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.pairing_global_per_minute = 3).await;
    let http = Http::new(&srv.url);
    let code = new_code(&http).await;
    // A successful pairing does not count against the others.
    assert!(pair_from(&srv, [127, 0, 0, 2], &code).await.is_ok());
    for n in 3..6 {
        assert_eq!(
            pair_from(&srv, [127, 0, 0, n], "WRONG000").await,
            Err("bad_pairing_code".into())
        );
    }
    let code = new_code(&http).await;
    assert_eq!(
        pair_from(&srv, [127, 0, 0, 9], &code).await,
        Err("too_many_attempts".into()),
        "a fresh source is refused while everyone is over the limit"
    );
    srv.state
        .hub
        .limits()
        .clock
        .advance(Duration::from_secs(60));
    assert!(pair_from(&srv, [127, 0, 0, 9], &code).await.is_ok());
    srv.stop().await.expect("stops");
}

/// The real phone core keeps what the relay refused as over the rate and resends it on a later
/// link: every SMS arrives once the allowance is back.
#[tokio::test]
async fn a_real_phone_resends_incoming_sms_the_relay_refused_as_over_its_rate() {
    use simrelay_core::phone::{LinkConfig, Phone, PhoneConfig};
    use simrelay_core::sim_modem::{SimModem, SimModemConfig};
    use simrelay_core::{EngineConfig, SimConfig};

    let dir = tempfile::tempdir().expect("tempdir");
    let srv = server(dir.path(), |c| c.incoming_per_minute = 2).await;
    let http = Http::new(&srv.url);
    let code = new_code(&http).await;
    let paired = simrelay_core::link::pair(&srv.ws_base(), &code, None, None)
        .await
        .expect("pairs");
    let modem = SimModem::new(SimModemConfig::default());
    let config = PhoneConfig {
        link: Some(LinkConfig {
            url: srv.ws_base(),
            token: paired.token,
            pin_sha256: None,
            ..LinkConfig::default()
        }),
        engine: EngineConfig::unpaced(),
        ..PhoneConfig::new(dir.path().join("phone.sqlite"))
    };
    let phone = Phone::start(config, Box::new(modem.clone())).expect("phone starts");
    phone
        .handle()
        .set_sims(vec![SimConfig {
            sub_id: 1,
            slot: 0,
            carrier: None,
            parts_per_minute: None,
            daily_cap: None,
        }])
        .expect("sims set");
    let mut inbox = srv.state.inbox.subscribe();
    for n in 0..4 {
        modem.inject_incoming(Some(1), "+15557654321", &format!("code {n}"));
    }
    let refused = || {
        let limits = srv.state.hub.limits();
        let all = limits.refused();
        all.iter()
            .find(|(r, _)| *r == "rate_limited")
            .map_or(0, |(_, n)| *n)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while refused() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never refused");
        tokio::task::yield_now().await;
    }
    assert_eq!(inbox_len(&http).await, 2, "the allowance is stored");

    // The allowance is back a minute later (on the relay's limiter clock): the phone's
    // next link resends the rest.
    srv.state
        .hub
        .limits()
        .clock
        .advance(Duration::from_secs(60));
    while inbox_len(&http).await < 4 {
        tokio::time::timeout_at(deadline, inbox.changed())
            .await
            .expect("the refused SMS arrive within 30 s")
            .expect("relay running");
    }
    assert_eq!(inbox_len(&http).await, 4, "each once");
    phone.shutdown().await;
    srv.stop().await.expect("stops");
}
