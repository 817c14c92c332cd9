//! Crash tests: kill the engine (drop it without any shutdown, reopen the same file) at many
//! points of a batch run, including between recording a hand-over and the radio getting it,
//! and with device reboots that lose the radio's pending results. At the end nothing
//! accepted is lost, no part was transmitted twice, and every recipient has settled.

mod common;

use std::collections::BTreeSet;

use common::{T0, msg, sim_configs};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use simrelay_core::config::DAY;
use simrelay_core::protocol::{OutboundMessage, RecipientState};
use simrelay_core::sim_modem::{SimBehaviour, SimModemConfig, SimRadio};
use simrelay_core::{Engine, EngineConfig, Origin};

struct Outcome {
    crashes: u32,
    transmitted: u64,
    states: Vec<RecipientState>,
}

fn run(seed: u64, messages: usize, crash_rate: f64) -> Outcome {
    let dir = common::temp_dir();
    let path = dir.path().join("core.db");
    let config = EngineConfig {
        seed: Some(seed),
        parts_per_minute: 30,
        report_timeout_ms: 6 * 3_600_000,
        ..EngineConfig::default()
    };
    let open = || Engine::open(&path, config.clone()).expect("reopen");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut radio = SimRadio::new(SimModemConfig {
        default: SimBehaviour {
            latency_ms: 1_500,
            fail_rate: 0.1,
            fail_code: 4,
            report_delay_ms: 20_000,
            ..SimBehaviour::default()
        },
        seed,
        ..SimModemConfig::default()
    });
    let mut engine = open();
    engine.set_sims(&sim_configs(&[1, 2])).expect("sims");
    let mut pending: Vec<OutboundMessage> = (0..messages)
        .map(|i| {
            let len = [20, 200, 400][i % 3];
            let to = format!("+1555{:07}", i);
            msg(&format!("m{i}"), &[&to], &"t".repeat(len))
        })
        .collect();
    let wanted: BTreeSet<String> = pending.iter().map(|m| m.id.clone()).collect();
    let mut now = T0;
    let mut crashes = 0;
    let end = T0 + 3 * DAY;
    while now < end {
        // The submitter retries a batch until the engine acknowledges it (an unacknowledged
        // batch may or may not be stored: resubmitting is idempotent).
        if !pending.is_empty() {
            let n = pending.len().min(10);
            if rng.random_bool(crash_rate) {
                crashes += 1;
                drop(engine);
                engine = open();
            } else {
                engine
                    .submit(&pending[..n], Origin::Local, now)
                    .expect("submit");
                pending.drain(..n);
            }
        }
        engine.tick(now).expect("tick");
        let due = engine.due(now).expect("due");
        let mut crashed = false;
        for cmd in due {
            // Killed after the hand-over was recorded, before the radio got it.
            if !crashed && rng.random_bool(crash_rate / 4.0) {
                crashed = true;
            }
            if !crashed {
                radio.transmit(&cmd, now);
            }
        }
        if crashed || rng.random_bool(crash_rate) {
            crashes += 1;
            drop(engine);
            if rng.random_bool(0.3) {
                radio.lose_pending(); // the whole device rebooted
            }
            engine = open();
        }
        for ev in radio.due(now) {
            engine.on_modem_event(&ev, now).expect("event");
        }
        let next = [
            engine.next_wakeup(now).expect("wakeup"),
            radio.next_due(),
            (!pending.is_empty()).then_some(now + 1_000),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(end);
        now = next.max(now + 1);
    }
    let recipients = engine.recipients().expect("read");
    let stored: BTreeSet<String> = recipients.iter().map(|r| r.message_id.clone()).collect();
    assert_eq!(stored, wanted, "seed {seed}: accepted messages lost");
    assert_eq!(
        radio.duplicates(),
        0,
        "seed {seed}: a part was transmitted twice"
    );
    for r in &recipients {
        assert_eq!(
            r.deadline, None,
            "seed {seed}: {} never settled",
            r.message_id
        );
        let sent = radio
            .transmitted()
            .range((r.message_id.clone(), 0, 0)..(r.message_id.clone(), 1, 0))
            .count() as u32;
        if r.state == RecipientState::Delivered {
            assert_eq!(
                sent, r.parts,
                "seed {seed}: delivered without every part on air"
            );
        }
        if r.state == RecipientState::Failed && r.reason.as_deref() != Some("partially_sent") {
            assert_eq!(sent, 0, "seed {seed}: failed although parts left the phone");
        }
    }
    Outcome {
        crashes,
        transmitted: radio.total_transmitted(),
        states: recipients.iter().map(|r| r.state).collect(),
    }
}

#[test]
fn kills_at_many_points_lose_nothing_and_send_nothing_twice() {
    let mut total_crashes = 0;
    for seed in 0..12 {
        let o = run(seed, 120, 0.05);
        total_crashes += o.crashes;
        assert!(o.transmitted > 0);
        assert!(
            o.states.iter().all(|s| matches!(
                s,
                RecipientState::Delivered | RecipientState::Failed | RecipientState::Unknown
            )),
            "seed {seed}: unexpected end states"
        );
    }
    assert!(
        total_crashes > 100,
        "the test crashed the engine only {total_crashes} times"
    );
}

#[test]
fn without_crashes_everything_is_delivered() {
    let o = run(99, 150, 0.0);
    assert_eq!(o.crashes, 0);
    let delivered = o
        .states
        .iter()
        .filter(|s| **s == RecipientState::Delivered)
        .count();
    // 10 % of attempts fail transiently; five attempts make a final failure very unlikely.
    assert_eq!(delivered, 150);
}

#[test]
fn the_radio_ledger_survives_the_phone_process() {
    let dir = common::temp_dir();
    let ledger = dir.path().join("radio.ledger");
    let config = SimModemConfig {
        ledger: Some(ledger.clone()),
        ..SimModemConfig::default()
    };
    let cmd = |id: &str| simrelay_core::SendCommand {
        message_id: id.into(),
        idx: 0,
        attempt: 1,
        sim: 1,
        to: "+15551230001".into(),
        text: "x".repeat(200),
        parts: 2,
        delivery_report: false,
        data: None,
    };
    let mut radio = SimRadio::with_ledger(config.clone()).expect("ledger");
    radio.transmit(&cmd("a"), T0);
    drop(radio);
    let mut radio = SimRadio::with_ledger(config).expect("ledger");
    assert_eq!(radio.total_transmitted(), 2);
    radio.transmit(&cmd("a"), T0);
    assert_eq!(
        radio.duplicates(),
        2,
        "a resend after restart is counted as a duplicate"
    );
}
