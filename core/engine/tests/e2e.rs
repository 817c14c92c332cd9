//! End-to-end encryption through the engine: encrypted messages reach the simulated radio in
//! plaintext only with the right passphrase, and incoming SMS leave encrypted.

mod common;

use common::{Rig, T0, msg, temp_dir};
use simrelay_core::config::{HOUR, MINUTE};
use simrelay_core::e2e;
use simrelay_core::protocol::{
    Event, IncomingSms, OutboundMessage, RecipientState::*, RecipientUpdate,
};
use simrelay_core::sim_modem::{SimBehaviour, SimModemConfig};
use simrelay_core::{Engine, EngineConfig, ModemEvent, Origin, Passphrase, RelayOp};

const PASS: &str = "correct horse battery staple";
/// Few rounds: these tests are about the engine, not the key derivation.
const ROUNDS: u32 = 5;

fn config(passphrase: Option<&str>) -> EngineConfig {
    EngineConfig {
        seed: Some(7),
        passphrase: passphrase.map(Passphrase::new),
        e2e_iterations: ROUNDS,
        ..EngineConfig::unpaced()
    }
}

fn radio() -> SimModemConfig {
    SimModemConfig {
        default: SimBehaviour::default(),
        ..SimModemConfig::default()
    }
}

/// `msg` with the numbers and the text encrypted under `passphrase`.
fn encrypted(id: &str, to: &[&str], text: &str, passphrase: &str) -> OutboundMessage {
    let mut m = msg(id, to, text);
    m.encrypted = true;
    m.text = e2e::encrypt(passphrase, text, ROUNDS);
    for r in &mut m.recipients {
        r.to = e2e::encrypt(passphrase, &r.to, ROUNDS);
    }
    m
}

fn updates(engine: &Engine, id: &str, idx: u32) -> Vec<RecipientUpdate> {
    engine
        .events_after(0, 100_000)
        .expect("events")
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Recipient(u) if u.message_id == id && u.idx == idx => Some(u),
            _ => None,
        })
        .collect()
}

fn incoming(engine: &Engine) -> Vec<IncomingSms> {
    engine
        .events_after(0, 100_000)
        .expect("events")
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Incoming(sms) => Some(sms),
            _ => None,
        })
        .collect()
}

#[test]
fn the_right_passphrase_hands_the_radio_plaintext() {
    let mut rig = Rig::new(config(Some(PASS)), radio(), &[1]);
    // 150 characters: one part in plaintext, three as ciphertext.
    let text = "y".repeat(150);
    let m = encrypted("e", &["+15551230001", "+15551230002"], &text, PASS);
    assert!(
        m.recipients
            .iter()
            .all(|r| r.to.starts_with("$aes-256-cbc/"))
    );
    rig.submit(m);
    rig.run_until(T0 + MINUTE);
    assert_eq!(
        (rig.state("e", 0), rig.state("e", 1)),
        (Delivered, Delivered)
    );
    let handed: Vec<(&str, &str, u32)> = rig
        .handed
        .iter()
        .map(|(_, c)| (c.to.as_str(), c.text.as_str(), c.parts))
        .collect();
    assert_eq!(
        handed,
        vec![
            ("+15551230001", text.as_str(), 1),
            ("+15551230002", text.as_str(), 1)
        ]
    );
    assert_eq!(rig.radio.total_transmitted(), 2, "one part each");
    let r = rig.engine.recipient("e", 1).expect("read").expect("exists");
    assert_eq!((r.parts, r.parts_sent, r.parts_delivered), (1, 1, 1));
    // The relay hears the plaintext's part count once the phone knows it.
    let sending = updates(&rig.engine, "e", 0)
        .into_iter()
        .find(|u| u.state == Sending)
        .expect("a sending event");
    assert_eq!(sending.parts, 1);
}

#[test]
fn a_relay_message_with_ciphertext_numbers_is_accepted_and_sent() {
    let mut rig = Rig::new(config(Some(PASS)), radio(), &[1]);
    let m = encrypted("r", &["+491701234567"], "Grüße 👋", PASS);
    let now = rig.now;
    let applied = rig
        .engine
        .apply_relay(&[RelayOp::Send { seq: 1, message: m }], now)
        .expect("apply");
    assert_eq!(applied, 1);
    assert_eq!(
        rig.state("r", 0),
        Queued,
        "not rejected for its ciphertext number"
    );
    rig.engine
        .ack_events(1_000)
        .expect("acceptance acknowledged");
    rig.run_until(T0 + MINUTE);
    assert_eq!(rig.state("r", 0), Delivered);
    assert_eq!(rig.handed[0].1.to, "+491701234567");
    assert_eq!(rig.handed[0].1.text, "Grüße 👋");
}

#[test]
fn without_the_right_passphrase_nothing_reaches_the_radio() {
    let cases = [
        (
            "no passphrase",
            None,
            encrypted("m", &["+15551230001"], "hi", PASS),
        ),
        (
            "wrong passphrase",
            Some("Correct horse battery staple"),
            encrypted("m", &["+15551230001"], "hi", PASS),
        ),
        ("malformed", Some(PASS), {
            let mut m = encrypted("m", &["+15551230001"], "hi", PASS);
            m.recipients[0].to = "$aes-256-cbc/pbkdf2-sha1$i=5$AAAA$AAAA".into();
            m
        }),
        ("text only readable", Some(PASS), {
            let mut m = encrypted("m", &["+15551230001"], "hi", PASS);
            m.text = e2e::encrypt("another", "hi", ROUNDS);
            m
        }),
    ];
    for (case, passphrase, m) in cases {
        let mut rig = Rig::new(config(passphrase), radio(), &[1]);
        rig.submit(m);
        rig.run_until(T0 + HOUR);
        assert!(rig.handed.is_empty(), "{case}");
        assert_eq!(rig.radio.total_transmitted(), 0, "{case}");
        let r = rig.engine.recipient("m", 0).expect("read").expect("exists");
        assert_eq!(
            (r.state, r.reason.as_deref()),
            (Failed, Some("decrypt_failed")),
            "{case}"
        );
        let last = updates(&rig.engine, "m", 0).pop().expect("events");
        assert_eq!(
            (
                last.state,
                last.reason.as_deref(),
                last.unsent,
                last.parts_sent
            ),
            (Failed, Some("decrypt_failed"), true, 0),
            "{case}: another phone may still send it"
        );
        assert_eq!(
            rig.engine.next_wakeup(rig.now).expect("wakeup"),
            None,
            "{case}"
        );
    }
}

#[test]
fn a_decrypted_number_that_is_not_e164_is_refused_unsent() {
    let mut rig = Rig::new(config(Some(PASS)), radio(), &[1]);
    rig.submit(encrypted("bad", &["0170 1234567"], "hi", PASS));
    rig.run_until(T0 + HOUR);
    assert!(rig.handed.is_empty());
    let last = updates(&rig.engine, "bad", 0).pop().expect("events");
    assert_eq!(
        (last.state, last.reason.as_deref(), last.unsent),
        (Failed, Some("rejected_by_phone"), true)
    );
}

#[test]
fn the_store_keeps_the_ciphertext() {
    let dir = temp_dir();
    let path = dir.path().join("core.db");
    let m = encrypted("s", &["+15551230001"], "secret text", PASS);
    let (text, to) = (m.text.clone(), m.recipients[0].to.clone());
    let mut engine = Engine::open(&path, config(Some(PASS))).expect("open");
    engine.set_sims(&common::sim_configs(&[1])).expect("sims");
    engine.submit(&[m], Origin::Local, T0).expect("submit");
    let cmd = engine.due(T0).expect("due").remove(0);
    assert_eq!(
        (cmd.to.as_str(), cmd.text.as_str()),
        ("+15551230001", "secret text")
    );
    let conn = rusqlite::Connection::open(&path).expect("open the store");
    let (body, dest, flag): (String, String, bool) = conn
        .query_row(
            "SELECT m.body, r.dest, m.encrypted FROM messages m JOIN recipients r ON r.message_id = m.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("row");
    assert_eq!((body, dest, flag), (text, to, true));
}

#[test]
fn incoming_sms_leave_encrypted_with_a_passphrase() {
    let mut rig = Rig::new(config(Some(PASS)), radio(), &[1]);
    rig.radio.inject_incoming(
        Some(1),
        "+15557654321",
        "Ваш код 1234",
        Some(T0 - 1_000),
        T0,
    );
    rig.step();
    let id = rig
        .engine
        .on_incoming(
            Some(1),
            "+15557654321",
            "Ваш код 1234",
            Some(T0 - 1_000),
            rig.now,
        )
        .expect("the same SMS again");
    let sms = incoming(&rig.engine);
    assert_eq!(sms.len(), 1, "a re-broadcast adds nothing");
    let sms = &sms[0];
    assert_eq!(sms.id, id);
    assert!(sms.encrypted);
    assert!(
        sms.from
            .starts_with(&format!("$aes-256-cbc/pbkdf2-sha1$i={ROUNDS}$"))
    );
    assert!(!sms.text.contains("1234"));
    assert_eq!(e2e::decrypt(PASS, &sms.from).as_deref(), Ok("+15557654321"));
    assert_eq!(e2e::decrypt(PASS, &sms.text).as_deref(), Ok("Ваш код 1234"));

    // Without a passphrase they leave as they came.
    let mut engine = Engine::open_in_memory(config(None)).expect("engine");
    let event = ModemEvent::Incoming {
        sim: None,
        from: String::new(),
        text: "hello".into(),
        sent_at: None,
    };
    engine.on_modem_event(&event, T0).expect("incoming");
    let sms = incoming(&engine);
    assert_eq!(
        (sms[0].from.as_str(), sms[0].text.as_str(), sms[0].encrypted),
        ("unknown", "hello", false)
    );
}

#[test]
fn the_passphrase_is_read_from_json_checked_and_never_shown() {
    let c: EngineConfig =
        serde_json::from_str(r#"{"passphrase":"hunter2","e2e_iterations":10}"#).expect("parses");
    assert_eq!(
        c.passphrase.as_ref().map(Passphrase::expose),
        Some("hunter2")
    );
    assert_eq!(c.e2e_iterations, 10);
    assert!(!format!("{c:?}").contains("hunter2"));
    let engine = Engine::open_in_memory(c.clone()).expect("engine");
    assert!(!format!("{engine:?}").contains("hunter2"));
    assert_eq!(EngineConfig::default().passphrase, None);
    assert_eq!(
        EngineConfig::default().e2e_iterations,
        e2e::DEFAULT_ITERATIONS
    );
    for bad in [
        EngineConfig {
            passphrase: Some(Passphrase::new("")),
            ..c.clone()
        },
        EngineConfig {
            e2e_iterations: 0,
            ..c.clone()
        },
        EngineConfig {
            e2e_iterations: e2e::MAX_ITERATIONS + 1,
            ..c.clone()
        },
    ] {
        assert!(bad.validate().is_err());
    }
}

#[test]
fn encrypted_messages_keep_the_pace_of_their_plaintext() {
    let mut rig = Rig::new(
        EngineConfig {
            parts_per_minute: 1,
            jitter: 0.0,
            ..config(Some(PASS))
        },
        radio(),
        &[1],
    );
    // One part each in plaintext, two as ciphertext: the pace counts one a minute.
    for i in 0..3 {
        rig.submit(encrypted(
            &format!("p{i}"),
            &["+15551230001"],
            &"z".repeat(100),
            PASS,
        ));
    }
    rig.run_until(T0 + 10 * MINUTE);
    let times: Vec<i64> = rig.handed.iter().map(|(t, _)| (t - T0) / MINUTE).collect();
    assert_eq!(times, vec![0, 1, 2]);
    assert!(
        rig.handed
            .iter()
            .all(|(_, c)| c.to == "+15551230001" && c.parts == 1)
    );
    assert_eq!(rig.radio.total_transmitted(), 3);
}
