//! The engine's state machine on virtual time with the simulated radio.

mod common;

use common::{Rig, T0, msg, reported_states};
use simrelay_core::config::{DAY, HOUR, MINUTE};
use simrelay_core::protocol::{Event, RecipientState::*};
use simrelay_core::sim_modem::{SimBehaviour, SimModemConfig};
use simrelay_core::{EngineConfig, Error, ModemEvent, Origin, PartKey, RelayOp, Submitted, pdu};

fn config() -> EngineConfig {
    EngineConfig {
        seed: Some(7),
        ..EngineConfig::default()
    }
}

fn radio(b: SimBehaviour) -> SimModemConfig {
    SimModemConfig {
        default: b,
        ..SimModemConfig::default()
    }
}

#[test]
fn a_message_goes_queued_sending_sent_delivered() {
    let mut rig = Rig::new(
        config(),
        radio(SimBehaviour {
            latency_ms: 2_000,
            report_delay_ms: 5_000,
            pending_report_first: true,
            ..SimBehaviour::default()
        }),
        &[1],
    );
    rig.submit(msg("m1", &["+15551230001"], "hello"));
    rig.run_until(T0 + MINUTE);
    assert_eq!(rig.state("m1", 0), Delivered);
    assert_eq!(
        reported_states(&rig.engine, "m1", 0),
        vec![Queued, Sending, Sent, Delivered]
    );
    assert_eq!(rig.radio.total_transmitted(), 1);
    let r = rig
        .engine
        .recipient("m1", 0)
        .expect("read")
        .expect("exists");
    assert_eq!((r.parts, r.parts_sent, r.parts_delivered), (1, 1, 1));
    assert_eq!(r.deadline, None, "a settled recipient waits for nothing");
}

#[test]
fn multipart_counts_every_part_and_the_device_count_wins() {
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    let text = "x".repeat(400); // 3 parts of 153
    rig.submit(msg("long", &["+15551230001"], &text));
    rig.run_until(T0 + MINUTE);
    assert_eq!(rig.state("long", 0), Delivered);
    assert_eq!(rig.radio.total_transmitted(), 3);

    // A device that splits differently (national shift tables): its count is used.
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    rig.submit(msg("m", &["+15551230001"], "short"));
    let cmd = rig.engine.due(rig.now).expect("due").remove(0);
    for part in 0..2 {
        rig.engine
            .on_sent(&cmd.key(part), 2, -1, None, rig.now)
            .expect("sent");
    }
    let r = rig.engine.recipient("m", 0).expect("read").expect("exists");
    assert_eq!((r.state, r.parts, r.parts_sent), (Sent, 2, 2));
}

#[test]
fn the_same_id_twice_changes_nothing_and_other_content_conflicts() {
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    let m = msg("same", &["+15551230001", "+15551230002"], "hi");
    let now = rig.now;
    let first = rig
        .engine
        .submit(std::slice::from_ref(&m), Origin::Local, now)
        .expect("submit");
    let again = rig
        .engine
        .submit(std::slice::from_ref(&m), Origin::Local, now)
        .expect("submit");
    assert_eq!((first[0], again[0]), (Submitted::New, Submitted::Duplicate));
    let mut other = m.clone();
    other.text = "changed".into();
    assert_eq!(
        rig.engine
            .submit(&[other], Origin::Local, now)
            .expect("submit")[0],
        Submitted::Conflict
    );
    assert_eq!(rig.engine.events_after(0, 100).expect("events").len(), 2);
    rig.run_until(T0 + 10 * MINUTE);
    assert_eq!(rig.radio.total_transmitted(), 2);
    assert_eq!(rig.radio.duplicates(), 0);
}

#[test]
fn bad_messages_are_refused_and_store_nothing() {
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    let mut cases = vec![
        msg("a", &["15551230001"], "no plus"),
        msg("b", &["+0555123"], "leading zero"),
        msg("c", &["+1"], "too short"),
        msg("d", &["+1234567890123456"], "16 digits"),
        msg("e", &[], "nobody"),
        msg("", &["+15551230001"], "no id"),
        msg("f", &["+1555123000x"], "letter"),
        msg("g", &["+15551230001"], &"y".repeat(10_001)),
    ];
    let mut dup = msg("h", &["+15551230001", "+15551230002"], "dup idx");
    dup.recipients[1].idx = 0;
    cases.push(dup);
    for m in cases {
        let err = rig.engine.submit(&[m], Origin::Local, rig.now);
        let Err(Error::Invalid(text)) = err else {
            panic!("accepted a bad message: {err:?}")
        };
        assert!(
            !text.contains("555123"),
            "error text quotes a number: {text}"
        );
    }
    // One bad message refuses the whole batch.
    let batch = [
        msg("ok", &["+15551230001"], "fine"),
        msg("bad", &["x"], "bad"),
    ];
    assert!(rig.engine.submit(&batch, Origin::Local, rig.now).is_err());
    assert!(rig.engine.recipients().expect("read").is_empty());
    assert!(rig.engine.events_after(0, 10).expect("events").is_empty());
}

#[test]
fn pacing_spaces_parts_per_sim_and_spreads_over_sims() {
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1, 2]);
    for i in 0..20 {
        rig.submit(msg(&format!("m{i}"), &["+15551230001"], "hi"));
    }
    rig.run_until(T0 + 10 * MINUTE);
    assert_eq!(rig.radio.total_transmitted(), 20);
    for sim in [1, 2] {
        let times: Vec<_> = rig
            .handed
            .iter()
            .filter(|(_, c)| c.sim == sim)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(times.len(), 10, "both SIMs share the work");
        for w in times.windows(2) {
            // 20 parts/min = 3 s a part; jitter 0.25 releases each part up to 750 ms after
            // its slot.
            assert!(w[1] - w[0] >= 2_250, "SIM {sim} paced too fast");
            assert!(
                w[1] - w[0] <= 3_750,
                "SIM {sim} idles longer than jitter allows"
            );
        }
        // The jitter does not slow the pace: 9 gaps take 9 intervals, within one span.
        let run = times[9] - times[0];
        assert!(
            (27_000 - 750..=27_000).contains(&run),
            "SIM {sim}: 9 gaps took {run} ms"
        );
    }
}

#[test]
fn priority_and_schedule_and_pinned_sims_are_honoured() {
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1, 2]);
    let mut late = msg("late", &["+15551230001"], "later");
    late.schedule_at = Some(T0 + HOUR);
    rig.submit(late);
    rig.submit(msg("normal", &["+15551230001"], "n"));
    let mut urgent = msg("urgent", &["+15551230001"], "u");
    urgent.priority = 100;
    rig.submit(urgent);
    let mut pinned = msg("pinned", &["+15551230001"], "p");
    pinned.sim = Some(2);
    rig.submit(pinned);
    rig.run_until(T0 + 2 * HOUR);
    let order: Vec<_> = rig
        .handed
        .iter()
        .map(|(_, c)| c.message_id.as_str())
        .collect();
    assert_eq!(order[0], "urgent");
    assert_eq!(order.last(), Some(&"late"));
    let late_at = rig
        .handed
        .iter()
        .find(|(_, c)| c.message_id == "late")
        .map(|(t, _)| *t);
    assert!(late_at >= Some(T0 + HOUR));
    assert!(
        rig.handed
            .iter()
            .any(|(_, c)| c.message_id == "pinned" && c.sim == 2)
    );
}

#[test]
fn transient_failures_retry_with_backoff_then_succeed_or_give_up() {
    // SIM 1 never has service.
    let mut rig = Rig::new(
        config(),
        radio(SimBehaviour {
            fail_rate: 1.0,
            fail_code: 4, // RESULT_ERROR_NO_SERVICE
            ..SimBehaviour::default()
        }),
        &[1],
    );
    rig.submit(msg("r", &["+15551230001"], "retry me"));
    // Backoff: 30 s (+ up to 25 % jitter), then 60 s, 120 s, 240 s.
    rig.run_until(T0 + 29_999);
    assert_eq!(rig.handed.len(), 1, "no retry before the first backoff");
    rig.run_until(T0 + 38_000);
    assert_eq!(rig.handed.len(), 2);
    rig.run_until(T0 + DAY);
    let r = rig.engine.recipient("r", 0).expect("read").expect("exists");
    assert_eq!(r.state, Failed);
    assert_eq!(r.attempt, 5, "bounded attempts");
    assert_eq!(r.reason.as_deref(), Some("retries_exhausted"));
    assert_eq!(rig.radio.total_transmitted(), 0);
    let gaps: Vec<_> = rig.handed.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] > g[0]),
        "backoff grows: {gaps:?}"
    );
    // The final event says nothing left the phone and the cause is SIM-bound.
    let last = rig.engine.events_after(0, 100).expect("events").pop();
    let Some((_, Event::Recipient(u))) = last else {
        panic!("recipient event expected")
    };
    assert!(u.unsent);

    // The radio comes back between attempts: the retry succeeds.
    let mut rig = Rig::new(
        config(),
        radio(SimBehaviour {
            fail_rate: 1.0,
            fail_code: 2, // radio off
            ..SimBehaviour::default()
        }),
        &[1],
    );
    rig.submit(msg("r", &["+15551230001"], "retry me"));
    rig.run_until(T0 + 10_000);
    assert_eq!(rig.state("r", 0), Queued);
    rig.radio.set_behaviour(1, SimBehaviour::default());
    rig.run_until(T0 + HOUR);
    assert_eq!(rig.state("r", 0), Delivered);
    assert_eq!(rig.radio.total_transmitted(), 1);
}

#[test]
fn permanent_failures_fail_at_once_and_partial_sends_never_retry() {
    let mut rig = Rig::new(
        config(),
        radio(SimBehaviour {
            fail_rate: 1.0,
            fail_code: 7, // short code not allowed
            ..SimBehaviour::default()
        }),
        &[1],
    );
    rig.submit(msg("p", &["+15551230001"], "x"));
    rig.run_until(T0 + HOUR);
    let r = rig.engine.recipient("p", 0).expect("read").expect("exists");
    assert_eq!((r.state, r.attempt, r.code), (Failed, 1, Some(7)));

    // Part 1 of 2 left the phone, part 2 failed transiently: resending would duplicate part 1.
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    rig.submit(msg("half", &["+15551230001"], &"z".repeat(200)));
    let cmd = rig.engine.due(rig.now).expect("due").remove(0);
    rig.engine
        .on_sent(&cmd.key(0), 2, -1, None, rig.now)
        .expect("ok");
    rig.engine
        .on_sent(&cmd.key(1), 2, 4, None, rig.now)
        .expect("fail");
    let r = rig
        .engine
        .recipient("half", 0)
        .expect("read")
        .expect("exists");
    assert_eq!(
        (r.state, r.reason.as_deref()),
        (Failed, Some("partially_sent"))
    );
    rig.run_until(T0 + DAY);
    assert!(rig.handed.is_empty(), "never handed over again");
}

#[test]
fn reports_repeat_arrive_late_and_malformed_ones_change_nothing() {
    let mut rig = Rig::new(
        EngineConfig {
            report_timeout_ms: HOUR,
            ..config()
        },
        radio(SimBehaviour {
            report_delay_ms: 2 * HOUR,
            ..SimBehaviour::default()
        }),
        &[1],
    );
    rig.submit(msg("d", &["+15551230001"], "x"));
    rig.run_until(T0 + HOUR + MINUTE);
    assert_eq!(
        rig.state("d", 0),
        Unknown,
        "report deadline ends in unknown"
    );
    let key = PartKey {
        message_id: "d".into(),
        idx: 0,
        attempt: 1,
        part: 0,
    };
    // Garbage, truncation, another format: clear errors, nothing changes.
    for (raw, format) in [
        (vec![0x00u8, 0x06], "3gpp"),
        (vec![], "3gpp"),
        (vec![0xff; 40], "3gpp"),
        (vec![0x00, 0x02], "3gpp2"),
    ] {
        assert!(rig.engine.on_report(&key, &raw, format, rig.now).is_err());
    }
    assert_eq!(rig.state("d", 0), Unknown);
    rig.run_until(T0 + 3 * HOUR);
    assert_eq!(rig.state("d", 0), Delivered, "a late report is accepted");
    // A repeat of the report, and a failure report after delivery: nothing changes.
    let ok = pdu::build_status_report(None, 1, "+15551230001", T0, T0, 0x00);
    let failed = pdu::build_status_report(None, 1, "+15551230001", T0, T0, 0x41);
    let events = rig.engine.events_after(0, 100).expect("events").len();
    rig.engine
        .on_report(&key, &ok, "3gpp", rig.now)
        .expect("repeat");
    rig.engine
        .on_report(&key, &failed, "3gpp", rig.now)
        .expect("late failure");
    assert_eq!(rig.state("d", 0), Delivered);
    assert_eq!(
        rig.engine.events_after(0, 100).expect("events").len(),
        events
    );
}

#[test]
fn failure_and_expiry_reports() {
    for (status, state) in [(0x41u8, Failed), (0x46, Expired), (0x62, Failed)] {
        let mut rig = Rig::new(
            config(),
            radio(SimBehaviour {
                report_status: status,
                ..SimBehaviour::default()
            }),
            &[1],
        );
        rig.submit(msg("x", &["+15551230001"], "x"));
        rig.run_until(T0 + MINUTE);
        let r = rig.engine.recipient("x", 0).expect("read").expect("exists");
        assert_eq!((r.state, r.code), (state, Some(i32::from(status))));
    }
}

#[test]
fn every_waiting_state_has_a_deadline() {
    let cfg = EngineConfig {
        sent_timeout_ms: 10 * MINUTE,
        ..config()
    };
    // A radio that never answers: sending ends unknown; nothing is resent.
    let mut rig = Rig::new(
        cfg.clone(),
        radio(SimBehaviour {
            silent: true,
            ..SimBehaviour::default()
        }),
        &[1],
    );
    rig.submit(msg("s", &["+15551230001"], "x"));
    let mut opt_in = msg("again", &["+15551230002"], "y");
    opt_in.resend_unknown = true;
    opt_in.valid_until = Some(T0 + 25 * MINUTE);
    rig.submit(opt_in);
    rig.run_until(T0 + HOUR);
    let s = rig.engine.recipient("s", 0).expect("read").expect("exists");
    assert_eq!(
        (s.state, s.reason.as_deref()),
        (Unknown, Some("no_sent_result"))
    );
    assert_eq!(
        rig.handed
            .iter()
            .filter(|(_, c)| c.message_id == "s")
            .count(),
        1
    );
    // The opt-in message is handed over again after each unknown, until its validity ends.
    let again = rig
        .handed
        .iter()
        .filter(|(_, c)| c.message_id == "again")
        .count();
    assert!(again >= 2, "resend_unknown resent ({again})");
    assert_eq!(rig.state("again", 0), Unknown);

    // No SIM at all: queued work expires at its validity.
    let mut rig = Rig::new(cfg, radio(SimBehaviour::default()), &[]);
    let mut m = msg("v", &["+15551230001"], "x");
    m.valid_until = Some(T0 + HOUR);
    rig.submit(m);
    rig.submit(msg("default", &["+15551230001"], "x"));
    rig.run_until(T0 + 8 * DAY);
    assert_eq!(rig.state("v", 0), Expired);
    assert_eq!(rig.state("default", 0), Expired, "default validity applies");
    assert!(rig.handed.is_empty());
}

#[test]
fn cancel_stops_what_the_radio_has_not_got() {
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    rig.submit(msg("a", &["+15551230001"], "first"));
    rig.submit(msg("b", &["+15551230001", "+15551230002"], "second"));
    rig.step(); // "a" goes to the radio; "b" waits for pace.
    assert_eq!(rig.engine.cancel("a", rig.now).expect("cancel"), 0);
    assert_eq!(rig.engine.cancel("b", rig.now).expect("cancel"), 2);
    assert_eq!(rig.engine.cancel("nope", rig.now).expect("cancel"), 0);
    rig.run_until(T0 + HOUR);
    assert_eq!(rig.state("a", 0), Delivered);
    assert_eq!(
        (rig.state("b", 0), rig.state("b", 1)),
        (Cancelled, Cancelled)
    );
    assert_eq!(rig.radio.total_transmitted(), 1);
}

#[test]
fn a_relay_cancel_naming_recipients_leaves_the_others() {
    // The relay took recipient 0 back (re-routed elsewhere) while this phone still owns
    // recipient 1 of the same message: its cancel names 0 only, and 1 is still sent.
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    let m = msg("split", &["+15551230001", "+15551230002"], "x");
    let now = rig.now;
    let ops = [
        RelayOp::Send { seq: 1, message: m },
        RelayOp::Cancel {
            seq: 2,
            message_id: "split".into(),
            recipients: Some(vec![0]),
        },
    ];
    assert_eq!(rig.engine.apply_relay(&ops, now).expect("apply"), 2);
    rig.engine
        .ack_events(1_000)
        .expect("the relay acknowledged the acceptances");
    rig.run_until(T0 + HOUR);
    assert_eq!(rig.state("split", 0), Cancelled);
    assert_eq!(rig.state("split", 1), Delivered);
    assert_eq!(rig.radio.total_transmitted(), 1);
    // A cancel without a list still takes every recipient not yet on air.
    let now = rig.now;
    let ops = [
        RelayOp::Send {
            seq: 3,
            message: msg("all", &["+15551230001", "+15551230002"], "y"),
        },
        RelayOp::Cancel {
            seq: 4,
            message_id: "all".into(),
            recipients: None,
        },
    ];
    rig.engine.apply_relay(&ops, now).expect("apply");
    rig.run_until(T0 + 2 * HOUR);
    assert_eq!(
        (rig.state("all", 0), rig.state("all", 1)),
        (Cancelled, Cancelled)
    );
}

#[test]
fn relay_messages_wait_for_the_acknowledged_acceptance() {
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    let now = rig.now;
    rig.engine
        .submit(&[msg("r", &["+15551230001"], "x")], Origin::Relay, now)
        .expect("submit");
    rig.run_until(T0 + MINUTE);
    assert!(
        rig.handed.is_empty(),
        "not before the relay acknowledged acceptance"
    );
    assert_eq!(
        rig.engine.next_wakeup(rig.now).expect("wakeup"),
        Some(T0 + 7 * DAY)
    );
    let (seq, _) = rig.engine.events_after(0, 1).expect("events")[0].clone();
    rig.engine.ack_events(seq).expect("ack");
    assert!(rig.engine.events_after(0, 10).expect("events").is_empty());
    rig.run_until(T0 + 2 * MINUTE);
    assert_eq!(rig.state("r", 0), Delivered);
    // An acknowledgement beyond what exists unlocks nothing that comes later.
    rig.engine.ack_events(1_000_000).expect("ack");
    let now = rig.now;
    rig.engine
        .submit(&[msg("r2", &["+15551230001"], "x")], Origin::Relay, now)
        .expect("submit");
    rig.run_until(T0 + 3 * MINUTE);
    assert_eq!(rig.state("r2", 0), Queued);
}

#[test]
fn incoming_sms_keep_one_id_however_often_reported() {
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    let a = rig
        .engine
        .on_incoming(Some(1), "+15557770000", "code 1234", Some(T0), T0 + 5)
        .expect("store");
    let again = rig
        .engine
        .on_incoming(Some(1), "+15557770000", "code 1234", Some(T0), T0 + DAY)
        .expect("store");
    let other = rig
        .engine
        .on_incoming(Some(2), "+15557770000", "code 1234", Some(T0), T0 + 5)
        .expect("store");
    assert_eq!(a, again);
    assert_ne!(a, other);
    let incoming = rig
        .engine
        .events_after(0, 10)
        .expect("events")
        .into_iter()
        .filter(|(_, e)| matches!(e, Event::Incoming(_)))
        .count();
    assert_eq!(incoming, 2);
    // Through the radio too.
    rig.radio
        .inject_incoming(None, "Google", "G-123456", None, rig.now);
    rig.step();
    assert_eq!(rig.engine.events_after(0, 10).expect("events").len(), 3);
}

#[test]
fn incoming_sms_without_a_sender_or_with_a_long_one() {
    // Some networks deliver an SMS with no originating address: kept under a placeholder,
    // not dropped. A sender beyond 64 characters is refused and stores nothing.
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    let empty = rig
        .engine
        .on_incoming(Some(1), "", "no sender", Some(T0), T0)
        .expect("an empty sender is stored");
    let blank = rig
        .engine
        .on_incoming(Some(1), "  ", "no sender", Some(T0), T0 + 1)
        .expect("a blank sender is stored");
    assert_eq!(
        empty, blank,
        "both are the same SMS from the unknown sender"
    );
    let senders: Vec<String> = rig
        .engine
        .events_after(0, 10)
        .expect("events")
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Incoming(sms) => Some(sms.from),
            Event::Recipient(_) => None,
        })
        .collect();
    assert_eq!(senders, vec![simrelay_core::UNKNOWN_SENDER.to_string()]);
    let long = "9".repeat(65);
    assert!(rig.engine.on_incoming(None, &long, "x", None, T0).is_err());
    assert_eq!(rig.engine.events_after(0, 10).expect("events").len(), 1);
}

#[test]
fn results_for_unknown_or_stale_parts_change_nothing() {
    let mut rig = Rig::new(config(), radio(SimBehaviour::default()), &[1]);
    let ghost = PartKey {
        message_id: "ghost".into(),
        idx: 0,
        attempt: 1,
        part: 0,
    };
    rig.engine
        .on_sent(&ghost, 1, -1, None, rig.now)
        .expect("ignored");
    rig.submit(msg("m", &["+15551230001"], "x"));
    let cmd = rig.engine.due(rig.now).expect("due").remove(0);
    let mut stale = cmd.key(0);
    stale.attempt = 9;
    rig.engine
        .on_sent(&stale, 1, -1, None, rig.now)
        .expect("ignored");
    assert_eq!(rig.state("m", 0), Sending);
    assert!(matches!(
        rig.engine.on_sent(&cmd.key(5), 1, -1, None, rig.now),
        Err(Error::Invalid(_))
    ));
    rig.engine
        .on_modem_event(
            &ModemEvent::Sent {
                key: cmd.key(0),
                parts: 1,
                result: -1,
                error_code: None,
            },
            rig.now,
        )
        .expect("sent");
    assert_eq!(rig.state("m", 0), Sent);
}
