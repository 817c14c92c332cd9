//! The link client against a scripted relay: a test double of the relay's WebSocket side
//! (the real relay has its own system tests), so each protocol step can be checked alone:
//! hello/welcome, acceptance gated on the relay's ack, cancel before ack, resend after a cut,
//! bad frames, pairing, and TLS pinned by certificate fingerprint.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{msg, sim_configs};
use futures_util::{SinkExt, StreamExt};
use simrelay_core::EngineConfig;
use simrelay_core::link::{self, LinkError};
use simrelay_core::phone::{LinkConfig, Phone, PhoneConfig, PhoneHandle};
use simrelay_core::protocol::{
    Event, PROTOCOL_VERSION, PhoneFrame, RecipientState, RelayFrame, decode_phone_frame, encode,
};
use simrelay_core::sim_modem::{SimModem, SimModemConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Failure guard only: every wait below ends as soon as its frame arrives.
const GUARD: Duration = Duration::from_secs(20);

struct Script<S> {
    ws: WebSocketStream<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Script<S> {
    async fn recv(&mut self) -> PhoneFrame {
        loop {
            let msg = tokio::time::timeout(GUARD, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("link open")
                .expect("frame");
            if let Message::Text(t) = msg {
                let frame = decode_phone_frame(&t).expect("valid phone frame");
                if !matches!(frame, PhoneFrame::Heartbeat { .. }) {
                    return frame;
                }
            }
        }
    }

    async fn send(&mut self, frame: &RelayFrame) {
        self.ws
            .send(Message::text(encode(frame)))
            .await
            .expect("send");
    }

    /// Receives frames until `n` events and (if `ack`) an ack have arrived.
    async fn events(&mut self, n: usize, ack: Option<u64>) -> Vec<(u64, Event)> {
        let mut events = Vec::new();
        let mut acked = ack.is_none();
        while events.len() < n || !acked {
            match self.recv().await {
                PhoneFrame::Event { seq, event } => events.push((seq, event)),
                PhoneFrame::Ack { seq } => {
                    assert!(ack.is_some_and(|a| seq <= a), "unexpected ack {seq}");
                    acked |= ack == Some(seq);
                }
                PhoneFrame::Status { .. } => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
        events
    }
}

async fn accept(listener: &TcpListener) -> Script<tokio::net::TcpStream> {
    let (tcp, _) = tokio::time::timeout(GUARD, listener.accept())
        .await
        .expect("the phone connects in time")
        .expect("accept");
    let ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
    Script { ws }
}

fn states(events: &[(u64, Event)]) -> Vec<(String, RecipientState)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Recipient(u) => Some((u.message_id.clone(), u.state)),
            Event::Incoming(_) => None,
        })
        .collect()
}

fn start_phone(dir: &tempfile::TempDir, url: String) -> (Phone, PhoneHandle, SimModem) {
    let modem = SimModem::new(SimModemConfig::default());
    let phone = Phone::start(
        PhoneConfig {
            engine: EngineConfig::unpaced(),
            link: Some(LinkConfig {
                url,
                token: "device-token".into(),
                pin_sha256: None,
                ..LinkConfig::default()
            }),
            ..PhoneConfig::new(dir.path().join("phone.db"))
        },
        Box::new(modem.clone()),
    )
    .expect("start");
    let h = phone.handle();
    h.set_sims(sim_configs(&[1])).expect("sims");
    (phone, h, modem)
}

fn welcome(acked: u64) -> RelayFrame {
    RelayFrame::Welcome {
        version: PROTOCOL_VERSION,
        phone_id: "phone-1".into(),
        acked,
        heartbeat_ms: 15_000,
        nodes: Vec::new(),
    }
}

#[tokio::test]
async fn acceptance_waits_for_the_relay_cancel_before_ack_and_resend_after_a_cut() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let dir = common::temp_dir();
    let (phone, h, modem) = start_phone(&dir, url);

    let mut relay = accept(&listener).await;
    let PhoneFrame::Hello {
        version,
        token,
        acked,
        status,
    } = relay.recv().await
    else {
        panic!("hello first")
    };
    assert_eq!((version, token.as_str(), acked), (1, "device-token", 0));
    assert!(status.sims.is_empty() || status.sims[0].sub_id == 1);
    relay.send(&welcome(0)).await;

    // A send is stored and acknowledged, and accepted by a `queued` event...
    let m1 = msg("m1", &["+15551230001"], "hello");
    relay
        .send(&RelayFrame::Send {
            seq: 1,
            message: m1,
        })
        .await;
    let ev = relay.events(1, Some(1)).await;
    assert_eq!(
        states(&ev),
        vec![("m1".to_string(), RecipientState::Queued)]
    );
    // ...but the radio gets nothing until the relay acknowledged that acceptance.
    assert_eq!(modem.with_radio(|r| r.total_transmitted()), 0);
    relay.send(&RelayFrame::Ack { seq: ev[0].0 }).await;
    let ev = relay.events(3, None).await;
    assert_eq!(
        states(&ev).into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        vec![
            RecipientState::Sending,
            RecipientState::Sent,
            RecipientState::Delivered
        ]
    );
    relay.send(&RelayFrame::Ack { seq: ev[2].0 }).await;

    // The relay routed m2 elsewhere meanwhile: it cancels before acknowledging.
    let m2 = msg("m2", &["+15551230002"], "elsewhere");
    relay
        .send(&RelayFrame::Send {
            seq: 2,
            message: m2,
        })
        .await;
    let ev = relay.events(1, Some(2)).await;
    let queued_seq = ev[0].0;
    relay
        .send(&RelayFrame::Cancel {
            seq: 3,
            message_id: "m2".into(),
            recipients: None,
        })
        .await;
    relay.send(&RelayFrame::Ack { seq: queued_seq }).await;
    let ev = relay.events(1, Some(3)).await;
    assert_eq!(
        states(&ev),
        vec![("m2".to_string(), RecipientState::Cancelled)]
    );
    let cancelled_seq = ev[0].0;

    // Cut the link before acknowledging the cancellation: the phone redials, says which
    // relay frames it holds, and resends what the relay has not stored.
    drop(relay);
    let mut relay = accept(&listener).await;
    let PhoneFrame::Hello { acked, .. } = relay.recv().await else {
        panic!("hello first")
    };
    assert_eq!(acked, 3, "every relay frame was applied");
    relay.send(&welcome(queued_seq)).await;
    let ev = relay.events(1, None).await;
    assert_eq!(ev[0].0, cancelled_seq);
    // Frames the phone already applied are not applied again.
    let m1_again = msg("m1", &["+15551230001"], "hello");
    relay
        .send(&RelayFrame::Send {
            seq: 1,
            message: m1_again,
        })
        .await;
    relay.send(&RelayFrame::Ack { seq: cancelled_seq }).await;
    assert_eq!(modem.with_radio(|r| r.total_transmitted()), 1);
    assert_eq!(modem.with_radio(|r| r.duplicates()), 0);

    // A frame that is not protocol drops the link; the phone reconnects.
    relay
        .ws
        .send(Message::text(r#"{"type":"send","seq":4}"#))
        .await
        .expect("send");
    let mut relay = accept(&listener).await;
    assert!(matches!(
        relay.recv().await,
        PhoneFrame::Hello { acked: 3, .. }
    ));
    assert!(
        h.status()
            .last_error
            .is_some_and(|e| e.starts_with("protocol")),
        "the UI shows why: {:?}",
        h.status().last_error
    );
    relay
        .send(&RelayFrame::Error {
            code: "unauthorized".into(),
            message: "unknown device token".into(),
        })
        .await;
    // Refused links keep being retried; nothing is lost meanwhile.
    let mut relay = accept(&listener).await;
    assert!(matches!(relay.recv().await, PhoneFrame::Hello { .. }));
    phone.shutdown().await;
}

#[tokio::test]
async fn pairing_exchanges_a_code_for_a_token() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let relay = tokio::spawn(async move {
        for answer in [
            RelayFrame::Paired {
                phone_id: "p9".into(),
                token: "t9".into(),
                nodes: Vec::new(),
            },
            RelayFrame::Error {
                code: "bad_pairing_code".into(),
                message: "unknown or used pairing code".into(),
            },
        ] {
            let mut relay = accept(&listener).await;
            let PhoneFrame::Pair { code, name, .. } = relay.recv().await else {
                panic!("pair expected")
            };
            assert_eq!(
                (code.as_str(), name.as_deref()),
                ("ABCD2345", Some("shelf"))
            );
            relay.send(&answer).await;
        }
    });
    let paired = link::pair(&url, " ABCD2345 ", Some("shelf"), None)
        .await
        .expect("paired");
    assert_eq!(
        (paired.phone_id.as_str(), paired.token.as_str()),
        ("p9", "t9")
    );
    let refused = link::pair(&url, "ABCD2345", Some("shelf"), None).await;
    assert!(
        matches!(refused, Err(LinkError::Refused { ref code, .. }) if code == "bad_pairing_code")
    );
    relay.await.expect("relay script");
    assert!(matches!(
        link::pair("http://x", "c", None, None).await,
        Err(LinkError::BadUrl)
    ));
    assert!(matches!(
        link::pair(&url, "c", None, Some("abc")).await,
        Err(LinkError::BadPin)
    ));
    let pin = "ab".repeat(32);
    assert!(matches!(
        link::pair(&url, "c", None, Some(&pin)).await,
        Err(LinkError::PinWithoutTls)
    ));
}

#[tokio::test]
async fn tls_is_trusted_by_the_pinned_fingerprint_only() {
    let cert = rcgen::generate_simple_self_signed(vec!["simrelay.local".into()]).expect("cert");
    let der = cert.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![der.clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("wss://{}", listener.local_addr().expect("addr"));
    let pin = link::fingerprint(&der);
    let relay = tokio::spawn(async move {
        // The first client pins the right certificate and pairs; the second pins another
        // and must abort the handshake.
        for good in [true, false] {
            let (tcp, _) = listener.accept().await.expect("accept");
            let tls = acceptor.accept(tcp).await;
            if !good {
                assert!(tls.is_err(), "a wrong pin must not complete the handshake");
                continue;
            }
            let ws = tokio_tungstenite::accept_async(tls.expect("tls")).await;
            let mut relay = Script {
                ws: ws.expect("upgrade"),
            };
            assert!(matches!(relay.recv().await, PhoneFrame::Pair { .. }));
            relay
                .send(&RelayFrame::Paired {
                    phone_id: "p".into(),
                    token: "t".into(),
                    nodes: Vec::new(),
                })
                .await;
        }
    });
    let paired = link::pair(&url, "CODE", None, Some(&pin)).await;
    assert!(paired.is_ok(), "pinned TLS pairing failed: {paired:?}");
    let wrong = "00".repeat(32);
    let refused = link::pair(&url, "CODE", None, Some(&wrong)).await;
    assert!(matches!(refused, Err(LinkError::Connect(_))));
    relay.await.expect("relay script");
}

/// The relay wrote `cancel` and then the `ack` covering the acceptance, and the link dropped
/// with both unread. On reconnect `welcome.acked` already covers that acceptance, but only
/// the resent `cancel` + `ack` may decide: the recipient must never reach the radio.
#[tokio::test]
async fn a_reconnect_does_not_release_an_acceptance_the_relay_took_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let dir = common::temp_dir();
    let (phone, _h, modem) = start_phone(&dir, url);

    let mut relay = accept(&listener).await;
    assert!(matches!(relay.recv().await, PhoneFrame::Hello { .. }));
    relay.send(&welcome(0)).await;
    let m = msg("moved", &["+15551230003"], "routed elsewhere");
    relay.send(&RelayFrame::Send { seq: 1, message: m }).await;
    let ev = relay.events(1, Some(1)).await;
    let queued_seq = ev[0].0;
    drop(relay); // the cancel and the ack were written but never arrived

    let mut relay = accept(&listener).await;
    assert!(matches!(
        relay.recv().await,
        PhoneFrame::Hello { acked: 1, .. }
    ));
    relay.send(&welcome(queued_seq)).await;
    // The phone resends what it has no ack for; only then does the relay resend its frames.
    let ev = relay.events(1, None).await;
    assert_eq!(ev[0].0, queued_seq);
    relay
        .send(&RelayFrame::Cancel {
            seq: 2,
            message_id: "moved".into(),
            recipients: None,
        })
        .await;
    relay.send(&RelayFrame::Ack { seq: queued_seq }).await;
    let ev = relay.events(1, Some(2)).await;
    assert_eq!(
        states(&ev),
        vec![("moved".to_string(), RecipientState::Cancelled)]
    );
    assert_eq!(modem.with_radio(|r| r.total_transmitted()), 0);
    phone.shutdown().await;
}

#[tokio::test]
async fn a_deadline_ending_a_state_is_reported_without_other_traffic() {
    // The radio never answers: the sent-result deadline ends the recipient `unknown`, and
    // that change alone must reach the relay (it used to wait for the next radio result).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let dir = common::temp_dir();
    let silent = simrelay_core::sim_modem::SimBehaviour {
        silent: true,
        ..Default::default()
    };
    let modem = SimModem::new(SimModemConfig {
        default: silent,
        ..SimModemConfig::default()
    });
    let phone = Phone::start(
        PhoneConfig {
            engine: EngineConfig {
                sent_timeout_ms: 200,
                ..EngineConfig::unpaced()
            },
            link: Some(LinkConfig {
                url,
                token: "device-token".into(),
                pin_sha256: None,
                ..LinkConfig::default()
            }),
            ..PhoneConfig::new(dir.path().join("phone.db"))
        },
        Box::new(modem),
    )
    .expect("start");
    phone.handle().set_sims(sim_configs(&[1])).expect("sims");
    let mut relay = accept(&listener).await;
    assert!(matches!(relay.recv().await, PhoneFrame::Hello { .. }));
    relay.send(&welcome(0)).await;
    relay
        .send(&RelayFrame::Send {
            seq: 1,
            message: msg("lost", &["+15551230001"], "hello"),
        })
        .await;
    let ev = relay.events(1, Some(1)).await;
    relay.send(&RelayFrame::Ack { seq: ev[0].0 }).await;
    let ev = relay.events(2, None).await;
    assert_eq!(
        states(&ev).into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        vec![RecipientState::Sending, RecipientState::Unknown]
    );
    phone.shutdown().await;
}

#[tokio::test]
async fn a_data_sms_refused_before_the_radio_is_reported_without_other_traffic() {
    // The dispatcher fails it (too long) without handing anything to the radio: that change
    // alone must reach the relay, as a deadline's does.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let dir = common::temp_dir();
    let (phone, _h, modem) = start_phone(&dir, url);
    let mut relay = accept(&listener).await;
    assert!(matches!(relay.recv().await, PhoneFrame::Hello { .. }));
    relay.send(&welcome(0)).await;
    let long = simrelay_core::protocol::OutboundMessage {
        data_port: Some(53739),
        ..msg("data", &["+15551230001"], &"A".repeat(200))
    };
    relay
        .send(&RelayFrame::Send {
            seq: 1,
            message: long,
        })
        .await;
    let ev = relay.events(1, Some(1)).await;
    relay.send(&RelayFrame::Ack { seq: ev[0].0 }).await;
    let ev = relay.events(1, None).await;
    let Event::Recipient(update) = &ev[0].1 else {
        panic!("a recipient event")
    };
    assert_eq!(update.state, RecipientState::Failed);
    assert_eq!(update.reason.as_deref(), Some("data_too_long"));
    assert!(!update.unsent);
    assert_eq!(modem.with_radio(|r| r.total_transmitted()), 0);
    phone.shutdown().await;
}

/// Wall time that moves with tokio's clock plus a jump the test makes: a device suspend,
/// during which the wall clock runs on and tokio's monotonic clock stands still.
#[derive(Debug)]
struct SleepyClock {
    tokio: simrelay_core::clock::TokioClock,
    slept: std::sync::atomic::AtomicI64,
}

impl simrelay_core::clock::Clock for SleepyClock {
    fn now(&self) -> simrelay_core::protocol::Millis {
        self.tokio.now() + self.slept.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn gated_phone(dir: &tempfile::TempDir, url: String) -> Phone {
    Phone::start(
        PhoneConfig {
            engine: EngineConfig::unpaced(),
            link: Some(LinkConfig {
                url,
                token: "device-token".into(),
                pin_sha256: None,
                ..LinkConfig::default()
            }),
            needs_worker: true,
            ..PhoneConfig::new(dir.path().join("phone.db"))
        },
        Box::new(SimModem::new(SimModemConfig::default())),
    )
    .expect("start")
}

#[tokio::test]
async fn without_a_worker_the_link_stays_down_and_results_wait_for_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let dir = common::temp_dir();
    let phone = gated_phone(&dir, url);
    let h = phone.handle();
    h.set_sims(sim_configs(&[1])).expect("sims");
    // Paired, no worker: the link is paused (no task runs, so nothing can connect) and an
    // incoming SMS is recorded all the same.
    assert_eq!(h.status().link, simrelay_core::phone::LinkState::Paused);
    assert!(!h.worker_attached());
    h.on_modem_event(simrelay_core::ModemEvent::Incoming {
        sim: Some(1),
        from: "+15557770000".into(),
        text: "while paused".into(),
        sent_at: None,
    })
    .expect("recorded without a link");
    // The worker attaches: the link comes up and reports what waited.
    h.set_worker_attached(true);
    let mut relay = accept(&listener).await;
    assert!(matches!(relay.recv().await, PhoneFrame::Hello { .. }));
    relay.send(&welcome(0)).await;
    let ev = relay.events(1, None).await;
    assert!(matches!(&ev[0].1, Event::Incoming(sms) if sms.text == "while paused"));
    // The worker goes away: the link drops at once, so the relay routes elsewhere.
    h.set_worker_attached(false);
    let closed = tokio::time::timeout(GUARD, async {
        loop {
            match relay.ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the link closes when the worker detaches");
    assert_eq!(h.status().link, simrelay_core::phone::LinkState::Paused);
    phone.shutdown().await;
}

#[tokio::test]
async fn a_heartbeat_missed_in_deep_sleep_reconnects_on_wake() {
    // A 60 s heartbeat: without the wall clock the link would notice the sleep only after
    // three heartbeats of awake time (180 s); the guard below is 20 s.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let dir = common::temp_dir();
    let clock = Arc::new(SleepyClock {
        tokio: simrelay_core::clock::TokioClock::starting_at(1_700_000_000_000),
        slept: std::sync::atomic::AtomicI64::new(0),
    });
    let phone = Phone::start(
        PhoneConfig {
            engine: EngineConfig::unpaced(),
            link: Some(LinkConfig {
                url,
                token: "device-token".into(),
                pin_sha256: None,
                ..LinkConfig::default()
            }),
            clock: clock.clone(),
            ..PhoneConfig::new(dir.path().join("phone.db"))
        },
        Box::new(SimModem::new(SimModemConfig::default())),
    )
    .expect("start");
    let h = phone.handle();
    let mut relay = accept(&listener).await;
    assert!(matches!(relay.recv().await, PhoneFrame::Hello { .. }));
    relay
        .send(&RelayFrame::Welcome {
            version: PROTOCOL_VERSION,
            phone_id: "phone-1".into(),
            acked: 0,
            heartbeat_ms: 60_000,
            nodes: Vec::new(),
        })
        .await;
    let online = tokio::time::timeout(GUARD, async {
        while h.status().link != simrelay_core::phone::LinkState::Online {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(online.is_ok(), "online in time");
    // An hour of deep sleep passes on the wall clock only.
    clock
        .slept
        .store(3_600_000, std::sync::atomic::Ordering::SeqCst);
    let mut again = accept(&listener).await;
    assert!(matches!(again.recv().await, PhoneFrame::Hello { .. }));
    assert!(
        h.status().last_error.is_some_and(|e| e.contains("slept")),
        "the reason is shown: {:?}",
        h.status().last_error
    );
    drop(relay);
    phone.shutdown().await;
}

#[tokio::test]
async fn queue_depth_and_sent_today_reach_the_relay_as_they_move() {
    // No SIM changes after the first: the status frames below come from the watchdog seeing
    // the queue drain and the SIM's sent-today counter move.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let dir = common::temp_dir();
    let (phone, _h, _modem) = start_phone(&dir, url);
    let mut relay = accept(&listener).await;
    assert!(matches!(relay.recv().await, PhoneFrame::Hello { .. }));
    relay.send(&welcome(0)).await;
    let sent_today =
        |s: &simrelay_core::protocol::PhoneStatus| s.sims.iter().map(|s| s.sent_today).sum::<u32>();
    // The status that says the SIM is set (sent once, at once).
    let mut last = loop {
        if let PhoneFrame::Status { status } = relay.recv().await {
            break status;
        }
    };
    assert_eq!((last.queue_depth, sent_today(&last)), (0, 0));
    for (seq, id) in [(1, "a"), (2, "b")] {
        relay
            .send(&RelayFrame::Send {
                seq,
                message: msg(id, &["+15551230001"], "hello"),
            })
            .await;
    }
    // Acknowledge every event until a status shows both sent and the queue empty again.
    let mut statuses = 0;
    while !(last.queue_depth == 0 && sent_today(&last) == 2) {
        match relay.recv().await {
            PhoneFrame::Event { seq, .. } => relay.send(&RelayFrame::Ack { seq }).await,
            PhoneFrame::Status { status } => {
                statuses += 1;
                last = status;
            }
            PhoneFrame::Ack { .. } => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert!(statuses >= 1, "a status frame carried the change");
    phone.shutdown().await;
}
