//! The SQLite store directly: routing input, ownership of recipient events, frame log.

use simrelay_protocol::{Event, RecipientState, RecipientUpdate, RelayFrame, decode_relay_frame};
use simrelay_server::store::postgres::scratch::open_test_store;
use simrelay_server::store::{Assignment, CreateOutcome, NewMessage, Store};

fn message(account: &str, id: &str, phone: Option<&str>, priority: i32) -> NewMessage {
    NewMessage {
        account_id: account.into(),
        id: id.into(),
        body_hash: format!("hash-{id}"),
        to: vec!["+15551230001".into()],
        text: "hi".into(),
        priority,
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

fn queued(id: &str) -> Event {
    Event::Recipient(RecipientUpdate {
        message_id: id.into(),
        idx: 0,
        state: RecipientState::Queued,
        at: 1,
        reason: None,
        code: None,
        sim: None,
        parts: 1,
        parts_sent: 0,
        parts_delivered: 0,
        unsent: false,
    })
}

fn setup() -> Result<(tempfile::TempDir, Store, String), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = open_test_store(dir.path())?;
    let account = store.ensure_api_key("key-hash", 1)?;
    for (phone, code) in [("A", "code-a"), ("B", "code-b")] {
        store.create_pairing_code(&account, code, 1, 1000)?;
        assert!(
            store
                .pair_phone(code, phone, &format!("token-{phone}"), None, 2)?
                .is_some()
        );
        assert!(
            store.pair_phone(code, "again", "t", None, 3)?.is_none(),
            "codes are single use"
        );
    }
    Ok((dir, store, account))
}

#[test]
fn recipients_pinned_to_offline_phones_do_not_crowd_out_the_rest()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, account) = setup()?;
    let batch = [
        message(&account, "pinned", Some("B"), 100),
        message(&account, "free", None, 0),
    ];
    let out = store.create_messages(&batch)?;
    assert!(out.iter().all(|o| matches!(o, CreateOutcome::Created(_))));
    let only_a = store.unrouted(&account, &["A".into()], 10)?;
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].phone, None);
    let both = store.unrouted(&account, &["A".into(), "B".into()], 10)?;
    assert_eq!(both.len(), 2);
    assert_eq!(
        both[0].phone.as_deref(),
        Some("B"),
        "highest priority first"
    );
    Ok(())
}

/// An account whose SMS Gateway settings say `processing_order = LIFO` gets its newest waiting
/// messages first; priority still comes first; `FIFO` (the default) the oldest.
#[test]
fn lifo_accounts_get_their_newest_messages_routed_first() -> Result<(), Box<dyn std::error::Error>>
{
    let (_dir, store, account) = setup()?;
    let batch = [
        message(&account, "old", None, 0),
        message(&account, "urgent", None, 5),
        message(&account, "new", None, 0),
    ];
    store.create_messages(&batch)?;
    // Sequence numbers grow in creation order: old, urgent, new.
    let order = |store: &Store| -> Result<Vec<&str>, Box<dyn std::error::Error>> {
        let u = store.unrouted(&account, &["A".into()], 10)?;
        let mut seqs: Vec<i64> = u.iter().map(|u| u.mseq).collect();
        seqs.sort_unstable();
        let names = ["old", "urgent", "new"];
        Ok(u.iter()
            .map(|r| names[seqs.binary_search(&r.mseq).expect("listed")])
            .collect())
    };
    assert_eq!(order(&store)?, ["urgent", "old", "new"]);
    let set = |order: &'static str| {
        store.update_compat_settings(&account, 10, move |_| {
            Ok::<_, std::convert::Infallible>((
                format!(r#"{{"messages": {{"processing_order": "{order}"}}}}"#),
                None,
            ))
        })
    };
    set("LIFO")??;
    assert_eq!(order(&store)?, ["urgent", "new", "old"]);
    set("FIFO")??;
    assert_eq!(order(&store)?, ["urgent", "old", "new"]);
    Ok(())
}

#[test]
fn only_the_owner_applies_events_and_a_late_acceptance_gets_a_cancel()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, account) = setup()?;
    store.create_messages(&[message(&account, "m", None, 0)])?;
    let u = store.unrouted(&account, &["A".into()], 10)?;
    let phones = store.commit_routes(
        &[Assignment {
            mseq: u[0].mseq,
            idx: 0,
            phone: "A".into(),
            sim: None,
        }],
        5,
    )?;
    assert_eq!(phones, vec!["A".to_string()]);
    let frames = store.frames_after("A", 0, 10)?;
    assert_eq!(frames.len(), 1);
    assert!(matches!(
        decode_relay_frame(&frames[0].1)?,
        RelayFrame::Send { seq: 1, .. }
    ));

    // A drops before accepting; after the grace its recipient goes back to the router.
    store.phone_connected("A", &Default::default(), 6)?;
    assert!(store.phone_offline("A", 7)?);
    assert_eq!(store.unrouted(&account, &["B".into()], 10)?.len(), 1);
    store.commit_routes(
        &[Assignment {
            mseq: u[0].mseq,
            idx: 0,
            phone: "B".into(),
            sim: None,
        }],
        8,
    )?;

    // A's late `queued`: stored (acked) but not applied, and a cancel is queued for A.
    let applied = store.apply_from_phone("A", Some(1), &[(1, queued("m"))], 9)?;
    assert_eq!(applied.event_seq, 1);
    assert!(!applied.changed);
    assert_eq!(applied.cancel_upto, Some(2));
    let frames = store.frames_after("A", 1, 10)?;
    assert!(matches!(
        decode_relay_frame(&frames[0].1)?,
        RelayFrame::Cancel { seq: 2, .. }
    ));
    assert!(
        store.frames_after("A", 0, 10)?.iter().all(|(s, _)| *s > 1),
        "acked frames are dropped"
    );

    // A resends the event on a new link whose first look for cancels came before the batch
    // above committed: the resend is not applied again, but the ack that will cover it must
    // follow the cancel on that link too.
    let resent = store.apply_from_phone("A", Some(1), &[(1, queued("m"))], 9)?;
    assert_eq!(
        (resent.event_seq, resent.cancel_upto),
        (1, Some(2)),
        "a resent acceptance names the unacknowledged cancel"
    );
    // Once A acknowledged the cancel, a resend names none (and a fresh batch, none).
    let after_ack = store.apply_from_phone("A", Some(2), &[(1, queued("m"))], 9)?;
    assert_eq!(after_ack.cancel_upto, None);
    assert_eq!(
        store.apply_from_phone("A", Some(2), &[], 9)?.cancel_upto,
        None
    );

    // B, the owner, applies; a replay of the same seq changes nothing.
    assert!(
        store
            .apply_from_phone("B", None, &[(1, queued("m"))], 10)?
            .changed
    );
    let again = store.apply_from_phone("B", None, &[(1, queued("m"))], 11)?;
    assert!(!again.changed);
    assert_eq!(again.event_seq, 1);
    // A gap is not stored.
    let gap = store.apply_from_phone("B", None, &[(3, queued("m"))], 12)?;
    assert_eq!(gap.event_seq, 1);
    let m = store.get_message(&account, "m")?.expect("message");
    assert_eq!(
        (m.state.as_str(), m.recipients[0].phone.as_deref()),
        ("queued", Some("B"))
    );
    Ok(())
}

#[test]
fn unrouted_recipients_expire_at_valid_until_or_the_default_validity()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, account) = setup()?;
    let mut explicit = message(&account, "explicit", None, 0);
    explicit.valid_until = Some(50);
    let old = message(&account, "old", None, 0); // created at 1, no valid_until
    let mut recent = message(&account, "recent", None, 0);
    recent.created_at = 900;
    store.create_messages(&[explicit, old, recent])?;
    assert_eq!(
        store.expire_unrouted(100, 1000)?,
        1,
        "only the explicit deadline has passed"
    );
    assert_eq!(
        store.expire_unrouted(1500, 1000)?,
        1,
        "then the default validity of `old`"
    );
    let states: Vec<String> = ["explicit", "old", "recent"]
        .iter()
        .map(|id| {
            store
                .get_message(&account, id)
                .map(|m| m.expect("exists").state.to_string())
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(states, ["expired", "expired", "pending"]);
    let m = store.get_message(&account, "explicit")?.expect("exists");
    assert_eq!(m.recipients[0].error.as_deref(), Some("valid_until_passed"));
    Ok(())
}

#[test]
fn delivered_webhooks_are_pruned_dead_ones_stay() -> Result<(), Box<dyn std::error::Error>> {
    use simrelay_server::store::{DeliveryOutcome, Webhook};
    let (_dir, store, account) = setup()?;
    let hook = Webhook {
        id: "w".into(),
        url: "http://127.0.0.1:9/".into(),
        events: vec!["phone.online".into()],
        secret: "s".repeat(16),
        created_at: 1,
    };
    store.create_webhook(&account, &hook)?;
    store.phone_connected("A", &Default::default(), 10)?;
    store.phone_connected("B", &Default::default(), 20)?;
    let due = store.due_deliveries(100, 10)?;
    assert_eq!(due.len(), 2);
    store.delivery_result(due[0].id, DeliveryOutcome::Delivered, 30)?;
    store.delivery_result(
        due[1].id,
        DeliveryOutcome::Dead {
            error: "HTTP 500".into(),
        },
        30,
    )?;
    assert_eq!(
        store.prune_deliveries(15)?,
        1,
        "the delivered one made at 10"
    );
    assert_eq!(store.prune_deliveries(1_000)?, 0, "the dead one stays");
    assert_eq!(store.counts()?.webhooks_dead, 1);
    Ok(())
}

#[test]
fn expired_pairing_codes_pair_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, account) = setup()?;
    store.create_pairing_code(&account, "late", 10, 600)?;
    store.create_pairing_code(&account, "in-time", 10, 600)?;
    let before = store.list_phones(&account)?.len();
    assert!(
        store
            .pair_phone("late", "L", "token-L", None, 600)?
            .is_none(),
        "a code is dead at its expiry instant"
    );
    assert!(
        store
            .pair_phone("late", "L", "token-L", None, 10_000)?
            .is_none()
    );
    assert_eq!(
        store.list_phones(&account)?.len(),
        before,
        "no phone was created"
    );
    assert!(
        store
            .pair_phone("in-time", "T", "token-T", None, 599)?
            .is_some(),
        "a code pairs until the instant before it expires"
    );
    assert!(store.phone_by_token("token-L")?.is_none());
    Ok(())
}

#[test]
fn a_late_acceptance_cancels_only_the_recipients_the_phone_lost()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, account) = setup()?;
    let mut m = message(&account, "split", None, 0);
    m.to = vec!["+15551230001".into(), "+15551230002".into()];
    store.create_messages(&[m])?;
    let u = store.unrouted(&account, &["A".into()], 10)?;
    let route = |idx: u32, phone: &str| Assignment {
        mseq: u[0].mseq,
        idx,
        phone: phone.into(),
        sim: None,
    };
    store.commit_routes(&[route(0, "A"), route(1, "A")], 5)?;
    // A drops before its acceptances arrive; after the grace both go back to the router,
    // which gives recipient 0 to B and recipient 1 to A again.
    store.phone_connected("A", &Default::default(), 6)?;
    assert!(store.phone_offline("A", 7)?);
    store.commit_routes(&[route(0, "B"), route(1, "A")], 8)?;
    let accepted = |idx: u32| match queued("split") {
        Event::Recipient(mut r) => {
            r.idx = idx;
            Event::Recipient(r)
        }
        other => other,
    };
    let applied = store.apply_from_phone("A", Some(2), &[(1, accepted(0)), (2, accepted(1))], 9)?;
    assert!(
        applied.changed,
        "recipient 1 is A's: its acceptance applies"
    );
    let frames = store.frames_after("A", 2, 10)?;
    assert_eq!(frames.len(), 1, "{frames:?}");
    match decode_relay_frame(&frames[0].1)? {
        RelayFrame::Cancel {
            message_id,
            recipients,
            ..
        } => {
            assert_eq!(message_id, "split");
            assert_eq!(
                recipients,
                Some(vec![0]),
                "not recipient 1, which A still owns"
            );
        }
        other => panic!("expected a cancel, got {other:?}"),
    }
    let m = store.get_message(&account, "split")?.expect("message");
    assert_eq!(
        (
            m.recipients[0].state.as_str(),
            m.recipients[1].state.as_str()
        ),
        ("pending", "queued")
    );
    Ok(())
}

#[test]
fn a_late_acceptance_keeps_a_waiting_recipient_and_a_cancelled_copy_never_returns()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, account) = setup()?;
    store.create_messages(&[
        message(&account, "m1", None, 0),
        message(&account, "m2", None, 0),
    ])?;
    let u = store.unrouted(&account, &["A".into()], 10)?;
    let route = |i: usize, phone: &str| Assignment {
        mseq: u[i].mseq,
        idx: 0,
        phone: phone.into(),
        sim: None,
    };
    store.commit_routes(&[route(0, "A"), route(1, "A")], 5)?;
    store.phone_connected("A", &Default::default(), 6)?;
    assert!(store.phone_offline("A", 7)?, "both go back to the router");
    store.commit_routes(&[route(1, "B")], 8)?;

    // m1 still waits: A's late acceptance makes it A's, with no cancel; m2 is B's now.
    let applied =
        store.apply_from_phone("A", Some(2), &[(1, queued("m1")), (2, queued("m2"))], 9)?;
    assert!(applied.changed);
    let frames = store.frames_after("A", 2, 10)?;
    assert_eq!(frames.len(), 1, "one cancel, for m2 only: {frames:?}");
    assert!(matches!(
        decode_relay_frame(&frames[0].1)?,
        RelayFrame::Cancel { ref message_id, .. } if message_id == "m2"
    ));
    let m1 = store.get_message(&account, "m1")?.expect("m1");
    assert_eq!(
        (
            m1.recipients[0].state.as_str(),
            m1.recipients[0].phone.as_deref()
        ),
        ("queued", Some("A"))
    );
    assert!(
        store.commit_routes(&[route(0, "B")], 10)?.is_empty(),
        "an adopted recipient is not routed again"
    );

    // B drops before accepting m2: it waits again, and never for A, whose copy is cancelled.
    store.phone_connected("B", &Default::default(), 11)?;
    assert!(store.phone_offline("B", 12)?);
    let waiting = store.unrouted(&account, &["A".into(), "B".into()], 10)?;
    assert_eq!(waiting.len(), 1);
    assert!(
        waiting[0].tried.iter().any(|k| k.phone == "A"),
        "{:?}",
        waiting[0].tried
    );
    assert!(waiting[0].bound.is_empty(), "an unknown SIM binds nothing");
    // A's `queued` for m2 again (a replayed frame) changes nothing and adopts nothing.
    let again = store.apply_from_phone("A", None, &[(3, queued("m2"))], 13)?;
    assert!(!again.changed);
    let m2 = store.get_message(&account, "m2")?.expect("m2");
    assert_eq!(
        (
            m2.recipients[0].state.as_str(),
            m2.recipients[0].phone.as_deref()
        ),
        ("pending", None)
    );
    Ok(())
}

fn report(id: &str, state: RecipientState, at: i64, sent: u32, delivered: u32) -> Event {
    Event::Recipient(RecipientUpdate {
        message_id: id.into(),
        idx: 0,
        state,
        at,
        reason: None,
        code: None,
        sim: Some(1),
        parts: 2,
        parts_sent: sent,
        parts_delivered: delivered,
        unsent: false,
    })
}

#[test]
fn the_history_records_every_change_once_in_order_and_a_replay_adds_nothing()
-> Result<(), Box<dyn std::error::Error>> {
    let (_dir, store, account) = setup()?;
    store.create_messages(&[message(&account, "h", None, 0)])?;
    let u = store.unrouted(&account, &["A".into()], 10)?;
    let route = Assignment {
        mseq: u[0].mseq,
        idx: 0,
        phone: "A".into(),
        sim: None,
    };
    store.commit_routes(&[route], 5)?;
    let events = [
        (1, report("h", RecipientState::Queued, 6, 0, 0)),
        (2, report("h", RecipientState::Sending, 7, 0, 0)),
        (3, report("h", RecipientState::Sending, 8, 1, 0)),
        (4, report("h", RecipientState::Sent, 9, 2, 0)),
        (5, report("h", RecipientState::Delivered, 10, 2, 2)),
    ];
    for (n, e) in events.iter().enumerate() {
        let at = 20 + i64::try_from(n)?;
        store.apply_from_phone("A", None, std::slice::from_ref(e), at)?;
    }
    // The whole batch again: the seqs are applied already, nothing is recorded twice.
    store.apply_from_phone("A", None, &events, 40)?;

    let h = store
        .message_history(&account, "h")?
        .expect("the account's message");
    let seen: Vec<(&str, Option<&str>, u32, u32)> = h
        .iter()
        .map(|r| {
            (
                r.state.as_str(),
                r.phone.as_deref(),
                r.parts_sent,
                r.parts_delivered,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("pending", None, 0, 0),
            ("pending", Some("A"), 0, 0),
            ("queued", Some("A"), 0, 0),
            ("sending", Some("A"), 0, 0),
            ("sending", Some("A"), 1, 0),
            ("sent", Some("A"), 2, 0),
            ("delivered", Some("A"), 2, 2),
        ]
    );
    let times: Vec<i64> = h.iter().map(|r| r.at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert_eq!(h[0].at, 1, "created at the message's time");
    assert_eq!(h.last().map(|r| r.sim), Some(Some(1)));

    assert!(store.message_history(&account, "nope")?.is_none());
    assert!(
        store.message_history("another-account", "h")?.is_none(),
        "another account's message is not found"
    );
    Ok(())
}
