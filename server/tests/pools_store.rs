//! Failover in the store: only `failed` + `unsent` moves a recipient (back to the router, with
//! the SIM in `tried`, its phone never again), at most 3 SIMs, never for a phone-pinned
//! message; `sending`, `sent`, `unknown` and `failed` without `unsent` never move. The chosen
//! SIM is in the `send` frame, and SIM outcomes come back for the health tracker.

use simrelay_protocol::{Event, RecipientState, RecipientUpdate, RelayFrame, decode_relay_frame};
use simrelay_server::pool_router::SimKey;
use simrelay_server::sim_health::Outcome;
use simrelay_server::store::postgres::scratch::open_test_store;
use simrelay_server::store::{Assignment, NewMessage, Store};

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn setup() -> R<(tempfile::TempDir, Store, String)> {
    let dir = tempfile::tempdir()?;
    let store = open_test_store(dir.path())?;
    let account = store.ensure_api_key("key-hash", 1)?;
    for phone in ["A", "B", "C", "D"] {
        let code = format!("code-{phone}");
        store.create_pairing_code(&account, &code, 1, 1000)?;
        store.pair_phone(&code, phone, &format!("token-{phone}"), None, 2)?;
    }
    Ok((dir, store, account))
}

fn message(account: &str, id: &str, phone: Option<&str>) -> NewMessage {
    NewMessage {
        account_id: account.into(),
        id: id.into(),
        body_hash: format!("hash-{id}"),
        to: vec!["+15551230001".into()],
        text: "hi".into(),
        priority: 0,
        valid_until: None,
        schedule_at: None,
        phone_id: phone.map(str::to_string),
        sim: None,
        pool: None,
        delivery_report: true,
        encrypted: false,
        data_port: None,
        created_at: 1,
        suppression_override: None,
    }
}

fn update(id: &str, state: RecipientState, sim: i32, unsent: bool) -> Event {
    Event::Recipient(RecipientUpdate {
        message_id: id.into(),
        idx: 0,
        state,
        at: 1,
        reason: None,
        code: (state == RecipientState::Failed).then_some(120),
        sim: Some(sim),
        parts: 1,
        parts_sent: u32::from(state == RecipientState::Sent),
        parts_delivered: 0,
        unsent,
    })
}

/// Routes the message's recipient to (phone, sim), has the phone accept it, then report `ev`.
fn route_and_report(
    store: &Store,
    account: &str,
    phone: &str,
    sim: i32,
    seq: &mut u64,
    ev: Event,
) -> R<Vec<(SimKey, Outcome)>> {
    let online: Vec<String> = ["A", "B", "C", "D"].map(String::from).to_vec();
    let u = store.unrouted(account, &online, 10)?;
    assert_eq!(u.len(), 1, "one recipient waits");
    store.commit_routes(
        &[Assignment {
            mseq: u[0].mseq,
            idx: 0,
            phone: phone.into(),
            sim: Some(sim),
        }],
        3,
    )?;
    let id = match &ev {
        Event::Recipient(r) => r.message_id.clone(),
        Event::Incoming(_) => unreachable!("recipient events only"),
    };
    *seq += 1;
    let queued = update(&id, RecipientState::Queued, sim, false);
    store.apply_from_phone(phone, None, &[(*seq, queued)], 4)?;
    *seq += 1;
    Ok(store
        .apply_from_phone(phone, None, &[(*seq, ev)], 5)?
        .sim_outcomes)
}

fn state_of(store: &Store, account: &str, id: &str) -> R<(String, Option<String>)> {
    let m = store.get_message(account, id)?.expect("message exists");
    Ok((
        m.recipients[0].state.to_string(),
        m.recipients[0].phone.clone(),
    ))
}

#[test]
fn unsent_failures_fail_over_to_other_phones_at_most_three_sims() -> R<()> {
    let (_dir, store, account) = setup()?;
    store.create_messages(&[message(&account, "m", None)])?;
    let mut seqs = [0u64; 4];
    // The frame carries the chosen SIM.
    let failed = update("m", RecipientState::Failed, 2, true);
    let out = route_and_report(&store, &account, "A", 2, &mut seqs[0], failed)?;
    assert_eq!(
        out,
        vec![(SimKey::new("A", 2), Outcome::SimBound(Some(120)))]
    );
    let frames = store.frames_after("A", 0, 10)?;
    match decode_relay_frame(&frames[0].1)? {
        RelayFrame::Send { message, .. } => assert_eq!(message.sim, Some(2)),
        other => panic!("expected send, got {other:?}"),
    }
    assert_eq!(state_of(&store, &account, "m")?, ("pending".into(), None));
    let u = store.unrouted(&account, &["A".into(), "B".into()], 10)?;
    assert_eq!(u[0].tried, vec![SimKey::new("A", 2)]);

    let failed = update("m", RecipientState::Failed, 1, true);
    route_and_report(&store, &account, "B", 1, &mut seqs[1], failed)?;
    assert_eq!(state_of(&store, &account, "m")?.0, "pending");
    // A late event from A about it changes nothing.
    let late = update("m", RecipientState::Sent, 2, false);
    store.apply_from_phone("A", None, &[(seqs[0] + 1, late)], 6)?;
    assert_eq!(state_of(&store, &account, "m")?.0, "pending");

    let failed = update("m", RecipientState::Failed, 1, true);
    route_and_report(&store, &account, "C", 1, &mut seqs[2], failed)?;
    assert_eq!(
        state_of(&store, &account, "m")?,
        ("failed".into(), Some("C".into())),
        "three SIMs tried: failed for good"
    );
    assert!(store.unrouted(&account, &["D".into()], 10)?.is_empty());
    Ok(())
}

#[test]
fn unknown_outcomes_and_pinned_messages_never_move() -> R<()> {
    let (_dir, store, account) = setup()?;
    let cases = [
        (
            "sending",
            update("s1", RecipientState::Sending, 1, false),
            "sending",
        ),
        ("sent", update("s2", RecipientState::Sent, 1, false), "sent"),
        (
            "unknown",
            update("s3", RecipientState::Unknown, 1, false),
            "unknown",
        ),
        (
            "failed, sent",
            update("s4", RecipientState::Failed, 1, false),
            "failed",
        ),
    ];
    let mut seq = 0;
    for (what, ev, want) in cases {
        let id = match &ev {
            Event::Recipient(r) => r.message_id.clone(),
            Event::Incoming(_) => unreachable!("recipient events only"),
        };
        store.create_messages(&[message(&account, &id, None)])?;
        let out = route_and_report(&store, &account, "A", 1, &mut seq, ev)?;
        assert_eq!(
            state_of(&store, &account, &id)?,
            (want.to_string(), Some("A".into())),
            "{what}"
        );
        if what == "sent" {
            assert_eq!(out, vec![(SimKey::new("A", 1), Outcome::Sent)]);
        } else {
            assert!(out.is_empty(), "{what}: {out:?}");
        }
    }
    store.create_messages(&[message(&account, "pinned", Some("B"))])?;
    let failed = update("pinned", RecipientState::Failed, 1, true);
    let mut seq_b = 0;
    let out = route_and_report(&store, &account, "B", 1, &mut seq_b, failed)?;
    assert_eq!(out.len(), 1, "the SIM outcome still counts");
    assert_eq!(
        state_of(&store, &account, "pinned")?,
        ("failed".into(), Some("B".into()))
    );
    Ok(())
}

#[test]
fn routed_parts_count_per_sim_and_local_day() -> R<()> {
    use simrelay_server::store::SimSettings;
    let (_dir, store, account) = setup()?;
    let day = 86_400_000;
    let t = 20_000 * day + 23 * 3_600_000; // 23:00 UTC
    let key = SimKey::new("A", 1);
    let settings = SimSettings {
        daily_cap: Some(2),
        hours: None,
        utc_offset_min: 120,
    };
    assert!(store.set_sim_settings(&account, &key, &settings)?);
    assert!(
        !store.set_sim_settings("other", &key, &settings)?,
        "not its phone"
    );
    store.create_messages(&[message(&account, "a", None), message(&account, "b", None)])?;
    let u = store.unrouted(&account, &["A".into()], 10)?;
    let routes: Vec<Assignment> = u
        .iter()
        .map(|r| Assignment {
            mseq: r.mseq,
            idx: 0,
            phone: "A".into(),
            sim: Some(1),
        })
        .collect();
    store.commit_routes(&routes, t)?;
    let input = store.routing_input(&account, t)?;
    assert_eq!(input.routed_today.get(&key), Some(&2));
    assert_eq!(input.unsent.get(&key), Some(&2), "routed, not yet sent");
    assert_eq!(input.settings.get(&key), Some(&settings));
    // 23:00 UTC is 01:00 the next day at UTC+2: that day has the 2 parts; the day after, none.
    assert_eq!(
        store
            .routing_input(&account, t + day)?
            .routed_today
            .get(&key),
        None
    );
    Ok(())
}

#[test]
fn with_no_other_phone_a_sim_bound_failure_stands() -> R<()> {
    let dir = tempfile::tempdir()?;
    let store = open_test_store(dir.path())?;
    let account = store.ensure_api_key("key-hash", 1)?;
    store.create_pairing_code(&account, "code-only", 1, 1000)?;
    store.pair_phone("code-only", "only", "token-only", None, 2)?;
    store.create_messages(&[message(&account, "m", None)])?;
    let u = store.unrouted(&account, &["only".into()], 10)?;
    store.commit_routes(
        &[Assignment {
            mseq: u[0].mseq,
            idx: 0,
            phone: "only".into(),
            sim: Some(1),
        }],
        3,
    )?;
    store.apply_from_phone(
        "only",
        None,
        &[(1, update("m", RecipientState::Queued, 1, false))],
        4,
    )?;
    let failed = update("m", RecipientState::Failed, 1, true);
    let out = store.apply_from_phone("only", None, &[(2, failed)], 5)?;
    assert_eq!(
        out.sim_outcomes.len(),
        1,
        "the SIM's health still learns of it"
    );
    assert_eq!(
        state_of(&store, &account, "m")?,
        ("failed".into(), Some("only".into())),
        "a one-phone account sees the failure, not a recipient pending for days"
    );
    Ok(())
}

#[test]
fn sent_parts_count_per_sim_over_the_last_ten_minutes_once_each() -> R<()> {
    let (_dir, store, account) = setup()?;
    let mut seq = 0;
    for id in ["s1", "s2"] {
        store.create_messages(&[message(&account, id, None)])?;
        route_and_report(
            &store,
            &account,
            "A",
            1,
            &mut seq,
            update(id, RecipientState::Sent, 1, false),
        )?;
    }
    // A repeated report of the same sent part and a delivery report add nothing.
    seq += 1;
    store.apply_from_phone(
        "A",
        None,
        &[(seq, update("s1", RecipientState::Sent, 1, false))],
        6,
    )?;
    let mut delivered = update("s2", RecipientState::Delivered, 1, false);
    if let Event::Recipient(r) = &mut delivered {
        r.parts_sent = 1;
        r.parts_delivered = 1;
    }
    seq += 1;
    store.apply_from_phone("A", None, &[(seq, delivered)], 7)?;
    let key = SimKey::new("A", 1);
    let sent = store.sent_since(&account, 5 - 600_000)?;
    assert_eq!(sent.get(&key), Some(&2), "{sent:?}");
    assert_eq!(sent.len(), 1, "no other SIM sent anything");
    assert!(store.sent_since("other-account", 5 - 600_000)?.is_empty());
    // Ten minutes on, the window holds nothing.
    let later = 11 * 60_000;
    assert!(store.sent_since(&account, later - 600_000)?.is_empty());
    // An SMS Gateway `PerHour` limit counts them in the routing input for the hour.
    assert_eq!(store.routing_input(&account, 7)?.window(&key), None);
    store.update_compat_settings(&account, 8, |_| {
        Ok::<_, std::convert::Infallible>((
            r#"{"messages": {"limit_period": "PerHour", "limit_value": 5}}"#.into(),
            None,
        ))
    })??;
    assert_eq!(store.routing_input(&account, 9)?.window(&key), Some((5, 2)));
    assert_eq!(
        store.routing_input(&account, 59 * 60_000)?.window(&key),
        Some((5, 2)),
        "still inside the hour"
    );
    assert_eq!(
        store.routing_input(&account, 60 * 60_000)?.window(&key),
        Some((5, 0)),
        "the minute they were sent in has left the window"
    );
    Ok(())
}
