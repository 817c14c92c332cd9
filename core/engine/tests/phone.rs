//! The async phone (scheduler task + simulated radio) on tokio's paused clock.

mod common;

use std::time::Duration;

use common::{msg, sim_configs};
use simrelay_core::clock::TokioClock;
use simrelay_core::phone::{LinkState, Phone, PhoneConfig, PhoneHandle};
use simrelay_core::protocol::RecipientState;
use simrelay_core::sim_modem::{SimBehaviour, SimModem, SimModemConfig};
use simrelay_core::{Command, CommandQueue, EngineConfig, Error, ModemEvent, Next, Submitted};

/// Advances virtual time in small steps until `done` holds (or fails after `limit`).
async fn until(limit: Duration, mut done: impl FnMut() -> bool) {
    let step = Duration::from_millis(250);
    let mut waited = Duration::ZERO;
    while !done() {
        assert!(waited < limit, "condition not reached within {limit:?}");
        tokio::time::advance(step).await;
        tokio::task::yield_now().await;
        waited += step;
    }
}

fn state(h: &PhoneHandle, id: &str) -> RecipientState {
    h.with_engine(|e, _| Ok(e.recipient(id, 0)?.expect("stored").state))
        .expect("engine open")
}

fn config(dir: &tempfile::TempDir) -> PhoneConfig {
    PhoneConfig {
        engine: EngineConfig {
            seed: Some(1),
            ..EngineConfig::default()
        },
        clock: TokioClock::shared(common::T0),
        ..PhoneConfig::new(dir.path().join("phone.db"))
    }
}

#[tokio::test(start_paused = true)]
async fn the_scheduler_paces_and_the_radio_reports_back() {
    let dir = common::temp_dir();
    let modem = SimModem::new(SimModemConfig {
        default: SimBehaviour {
            latency_ms: 1_000,
            report_delay_ms: 4_000,
            ..SimBehaviour::default()
        },
        ..SimModemConfig::default()
    });
    let phone = Phone::start(config(&dir), Box::new(modem.clone())).expect("start");
    let h = phone.handle();
    assert_eq!(h.status().link, LinkState::Unpaired);
    h.set_sims(sim_configs(&[7])).expect("sims");
    for i in 0..5 {
        let r = h
            .submit(msg(&format!("m{i}"), &["+15551230001"], "hi"))
            .expect("submit");
        assert_eq!(r, Submitted::New);
    }
    let start = tokio::time::Instant::now();
    until(Duration::from_secs(120), || {
        (0..5).all(|i| state(&h, &format!("m{i}")) == RecipientState::Delivered)
    })
    .await;
    // Five parts at 20 parts/min on one SIM take at least 4 intervals of 3 s.
    assert!(start.elapsed() >= Duration::from_secs(12));
    assert_eq!(modem.with_radio(|r| r.total_transmitted()), 5);
    let view = h.status();
    assert_eq!((view.queue_depth, view.awaiting_reports), (0, 0));
    assert_eq!(view.sims[0].sent_today, 5);

    modem.inject_incoming(Some(7), "+15557770000", "your code is 4321");
    until(Duration::from_secs(5), || h.status().outbox == 5 * 4 + 1).await;
    phone.shutdown().await;
    assert!(matches!(
        h.submit(msg("late", &["+15551230001"], "x")),
        Err(Error::Closed)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_killed_phone_restarts_on_its_file_without_sending_twice() {
    let dir = common::temp_dir();
    let modem = SimModem::new(SimModemConfig::default());
    let phone = Phone::start(config(&dir), Box::new(modem.clone())).expect("start");
    let h = phone.handle();
    h.set_sims(sim_configs(&[1])).expect("sims");
    for i in 0..6 {
        h.submit(msg(&format!("k{i}"), &["+15551230001"], "x"))
            .expect("submit");
    }
    until(Duration::from_secs(30), || {
        modem.with_radio(|r| r.total_transmitted()) >= 2
    })
    .await;
    drop(phone); // a kill: no shutdown, tasks aborted
    let phone = Phone::start(config(&dir), Box::new(modem.clone())).expect("restart");
    let h = phone.handle();
    until(Duration::from_secs(120), || {
        (0..6).all(|i| state(&h, &format!("k{i}")) == RecipientState::Delivered)
    })
    .await;
    assert_eq!(modem.with_radio(|r| r.duplicates()), 0);
    assert_eq!(modem.with_radio(|r| r.total_transmitted()), 6);
    phone.shutdown().await;
}

#[tokio::test]
async fn the_android_shell_pulls_commands_and_pushes_results() {
    let dir = common::temp_dir();
    let queue = std::sync::Arc::new(CommandQueue::default());
    let phone = Phone::start(
        PhoneConfig {
            engine: EngineConfig::unpaced(),
            ..PhoneConfig::new(dir.path().join("android.db"))
        },
        Box::new(queue.clone()),
    )
    .expect("start");
    let h = phone.handle();
    h.set_sims(sim_configs(&[3])).expect("sims");
    h.submit(msg("a", &["+15551230001"], "pull me"))
        .expect("submit");
    // The shell's worker thread: a blocking pull, off the runtime.
    let pulled = {
        let queue = queue.clone();
        tokio::task::spawn_blocking(move || queue.next(Duration::from_secs(30)))
            .await
            .expect("join")
    };
    let Next::Command(Command::Send(cmd)) = pulled else {
        panic!("a send command expected, got {pulled:?}")
    };
    assert_eq!((cmd.sim, cmd.parts, cmd.text.as_str()), (3, 1, "pull me"));
    h.on_modem_event(ModemEvent::Sent {
        key: cmd.key(0),
        parts: 1,
        result: -1,
        error_code: None,
    })
    .expect("sent");
    assert_eq!(state(&h, "a"), RecipientState::Sent);
    // Garbage from a receiver is an error, not a crash, and changes nothing.
    let bad = h.on_modem_event(ModemEvent::Report {
        key: cmd.key(0),
        pdu: vec![1, 2, 3],
        format: "3gpp".into(),
    });
    assert!(bad.is_err());
    assert_eq!(state(&h, "a"), RecipientState::Sent);
    phone.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_data_sms_goes_through_the_scheduler_and_the_modem_both_ways() {
    let dir = common::temp_dir();
    let modem = SimModem::new(SimModemConfig::default());
    let phone = Phone::start(config(&dir), Box::new(modem.clone())).expect("start");
    let h = phone.handle();
    h.set_sims(sim_configs(&[7])).expect("sims");
    let data = simrelay_core::protocol::OutboundMessage {
        data_port: Some(53739),
        // base64 of 00 01 FE FF
        ..msg("data", &["+15551230001"], "AAH+/w==")
    };
    assert_eq!(h.submit(data).expect("submit"), Submitted::New);
    until(Duration::from_secs(30), || {
        state(&h, "data") == RecipientState::Delivered
    })
    .await;
    let sent = modem.with_radio(|r| r.data_sent().to_vec());
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].sim, sent[0].port), (7, 53739));
    assert_eq!(sent[0].payload, vec![0x00, 0x01, 0xFE, 0xFF]);

    let pdu = simrelay_core::pdu::build_data_pdu("+15557770000", 53739, b"ping", common::T0, None);
    modem.inject_incoming_data(Some(7), vec![pdu]);
    let incoming = || {
        h.with_engine(|e, _| e.events_after(0, 1_000))
            .expect("events")
            .into_iter()
            .find_map(|(_, ev)| match ev {
                simrelay_core::protocol::Event::Incoming(sms) => Some(sms),
                simrelay_core::protocol::Event::Recipient(_) => None,
            })
    };
    until(Duration::from_secs(30), || incoming().is_some()).await;
    let sms = incoming().expect("stored");
    assert_eq!(
        (sms.data_port, sms.text.as_str()),
        (Some(53739), "cGluZw==")
    );
    phone.shutdown().await;
}
