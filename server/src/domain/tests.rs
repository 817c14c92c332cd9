//! The rules without a database: examples, and properties over arbitrary rows and updates.

use std::convert::Infallible;

use proptest::prelude::*;
use simrelay_protocol::{RecipientState, RecipientUpdate};

use super::deadline::{PHONE_SILENCE_MS, Times, end_at};
use super::phone_gone::{OnCancel, OnRemoval, offline_hands_back, on_cancel, on_removal};
use super::update::{Effect, Facts, Update, accept_seq, decide};
use super::webhooks::{Envelope, Event, RecipientData, recipient_event};
use super::*;
use crate::pool_router::SimKey;
use crate::sim_health::Outcome;

use RecipientStatus as S;

/// Facts of a small account: phones `a`, `b`, `c`; pool `p` holds SIM 0 of `a` and `b`.
struct Account {
    phones: Vec<&'static str>,
}

impl Facts for Account {
    type Error = Infallible;

    fn pool_has(&mut self, pool: &str, phone: &str, sim: Option<i32>) -> Result<bool, Infallible> {
        Ok(pool == "p" && matches!(phone, "a" | "b") && sim.is_none_or(|s| s == 0))
    }

    fn candidate_phones(&mut self, pool: Option<&str>) -> Result<Vec<String>, Infallible> {
        Ok(match pool {
            Some("p") => vec!["a".into(), "b".into()],
            Some(_) => Vec::new(),
            None => self.phones.iter().map(|p| p.to_string()).collect(),
        })
    }
}

fn account() -> Account {
    Account {
        phones: vec!["a", "b", "c"],
    }
}

fn rec(status: RecipientStatus, phone: Option<&str>) -> Recipient {
    Recipient {
        status,
        phone: phone.map(str::to_string),
        sim: phone.map(|_| 0),
        accepted: false,
        parts_sent: 0,
        tried: Vec::new(),
        target: Target::default(),
    }
}

fn upd(state: RecipientState) -> RecipientUpdate {
    RecipientUpdate {
        message_id: "m".into(),
        idx: 0,
        state,
        at: 0,
        reason: None,
        code: None,
        sim: None,
        parts: 1,
        parts_sent: 0,
        parts_delivered: 0,
        unsent: false,
    }
}

fn run(r: &Recipient, phone: &str, u: &RecipientUpdate) -> Update {
    match decide(r, phone, u, 3, &mut account()) {
        Ok(d) => d,
        Err(never) => match never {},
    }
}

#[test]
fn aggregate_prefers_waiting_then_agreement_then_sent() {
    let agg = |s: &[RecipientStatus]| aggregate(s.iter().copied());
    assert_eq!(agg(&[S::Pending, S::Delivered]), MessageStatus::Pending);
    assert_eq!(agg(&[S::Queued, S::Cancelling]), MessageStatus::Cancelling);
    assert_eq!(agg(&[S::Delivered, S::Delivered]), MessageStatus::Delivered);
    assert_eq!(agg(&[S::Delivered, S::Failed]), MessageStatus::Sent);
    assert_eq!(agg(&[S::Cancelled, S::Expired]), MessageStatus::Failed);
    assert_eq!(agg(&[S::Cancelled]), MessageStatus::Cancelled);
}

#[test]
fn suppressed_recipients_count_only_when_all_are() {
    let agg = |s: &[RecipientStatus]| aggregate(s.iter().copied());
    assert_eq!(agg(&[S::Suppressed]), MessageStatus::Suppressed);
    assert_eq!(
        agg(&[S::Suppressed, S::Suppressed]),
        MessageStatus::Suppressed
    );
    assert_eq!(agg(&[S::Suppressed, S::Pending]), MessageStatus::Pending);
    assert_eq!(
        agg(&[S::Suppressed, S::Delivered]),
        MessageStatus::Delivered
    );
    assert_eq!(
        agg(&[S::Delivered, S::Suppressed, S::Failed]),
        MessageStatus::Sent
    );
    assert_eq!(agg(&[S::Suppressed, S::Failed]), MessageStatus::Failed);
    assert_eq!(agg(&[]), MessageStatus::Failed);
}

#[test]
fn only_the_owner_moves_a_recipient_and_others_get_a_cancel() {
    let r = rec(S::Queued, Some("a"));
    assert_eq!(run(&r, "b", &upd(RecipientState::Sent)), Update::Ignore);
    let Update::CancelCopy { tried: Some(t) } = run(&r, "b", &upd(RecipientState::Queued)) else {
        panic!("b's copy is cancelled and b avoided");
    };
    assert_eq!(t, vec![SimKey::new("b", UNKNOWN_SIM)]);
    // A final recipient is not avoided (it never routes again anyway).
    let done = rec(S::Delivered, Some("a"));
    assert_eq!(
        run(&done, "b", &upd(RecipientState::Queued)),
        Update::CancelCopy { tried: None }
    );
}

#[test]
fn a_late_acceptance_is_adopted_only_where_the_router_could_have_sent_it() {
    let mut waiting = rec(S::Pending, None);
    let d = run(&waiting, "c", &upd(RecipientState::Queued));
    assert!(matches!(&d, Update::Apply(a) if a.adopt), "{d:?}");
    waiting.target.pool = Some("p".into());
    assert!(matches!(
        run(&waiting, "c", &upd(RecipientState::Queued)),
        Update::CancelCopy { .. }
    ));
    assert!(matches!(
        run(&waiting, "a", &upd(RecipientState::Queued)),
        Update::Apply(a) if a.adopt
    ));
    waiting.tried.push(SimKey::new("a", 0));
    assert!(matches!(
        run(&waiting, "a", &upd(RecipientState::Queued)),
        Update::CancelCopy { tried: None }
    ));
}

#[test]
fn failed_unsent_fails_over_while_another_phone_could_take_it() {
    let mut r = rec(S::Sending, Some("a"));
    let mut u = upd(RecipientState::Failed);
    u.unsent = true;
    u.code = Some(7);
    let Update::Apply(a) = run(&r, "a", &u) else {
        panic!("applies");
    };
    assert_eq!(a.effect, Effect::FailOver);
    assert_eq!(a.tried, Some(vec![SimKey::new("a", 0)]));
    assert_eq!(
        a.outcome,
        Some((SimKey::new("a", 0), Outcome::SimBound(Some(7))))
    );
    // Pinned to its phone: the failure stands.
    r.target.phone = Some("a".into());
    let Update::Apply(a) = run(&r, "a", &u) else {
        panic!("applies");
    };
    assert!(matches!(a.effect, Effect::Report(ref rep) if rep.state == S::Failed));
    // Every phone tried: the failure stands.
    let mut r = rec(S::Sending, Some("c"));
    r.tried = vec![SimKey::new("a", 0), SimKey::new("b", 0)];
    let Update::Apply(a) = run(&r, "c", &u) else {
        panic!("applies");
    };
    assert!(matches!(a.effect, Effect::Report(_)));
}

/// A phone that cannot decrypt a message fails over to another phone without a mark against
/// its SIM's health.
#[test]
fn a_decrypt_failure_fails_over_but_leaves_the_sim_healthy() {
    let r = rec(S::Sending, Some("a"));
    for reason in ["decrypt_failed", "rejected_by_phone"] {
        let mut u = upd(RecipientState::Failed);
        u.unsent = true;
        u.reason = Some(reason.into());
        let Update::Apply(a) = run(&r, "a", &u) else {
            panic!("applies");
        };
        assert_eq!(a.effect, Effect::FailOver, "{reason}");
        assert_eq!(a.tried, Some(vec![SimKey::new("a", 0)]));
        assert_eq!(a.outcome, None, "{reason}");
    }
}

#[test]
fn removal_and_offline_never_move_an_accepted_recipient() {
    let mut r = rec(S::Pending, Some("a"));
    assert!(offline_hands_back(&r));
    assert_eq!(on_removal(&r), OnRemoval::Reroute);
    r.target.phone = Some("a".into());
    assert!(!offline_hands_back(&r));
    assert_eq!(on_removal(&r), OnRemoval::End(S::Failed));
    let mut r = rec(S::Cancelling, Some("a"));
    assert_eq!(on_removal(&r), OnRemoval::End(S::Cancelled));
    r.accepted = true;
    assert_eq!(on_removal(&r), OnRemoval::End(S::Unknown));
    assert_eq!(on_cancel(S::Pending, false), OnCancel::Cancelled);
    assert_eq!(on_cancel(S::Queued, true), OnCancel::AskPhone);
    assert_eq!(on_cancel(S::Sending, true), OnCancel::Keep);
}

#[test]
fn deadlines_end_waiting_and_silent_recipients() {
    let t = Times {
        valid_until: Some(1_000),
        created_at: 0,
        updated_at: 0,
    };
    assert_eq!(end_at(S::Pending, false, &t, 1_000, 10), None);
    assert_eq!(
        end_at(S::Pending, false, &t, 1_001, 10).map(|e| e.state),
        Some(S::Expired)
    );
    let late = 1_000 + PHONE_SILENCE_MS + 1;
    assert_eq!(end_at(S::Sent, true, &t, late - 1, 10), None);
    assert_eq!(
        end_at(S::Sent, true, &t, late, 10).map(|e| (e.state, e.error)),
        Some((S::Unknown, "phone_silent"))
    );
    assert_eq!(end_at(S::Unknown, true, &t, late, 10), None);
}

#[test]
fn the_envelope_is_the_json_the_relay_always_sent() {
    // Field order is alphabetical, as `serde_json::json!` (a sorted map) wrote it before.
    let data = RecipientData {
        code: None,
        error: Some("x".into()),
        idx: 1,
        message_id: "m".into(),
        parts: 2,
        phone: Some("a".into()),
        sim: Some(0),
        state: S::Failed,
        to: "+15550000000".into(),
    };
    let body = Envelope {
        created_at: "2026-01-01T00:00:00.000Z".into(),
        data: &data,
        event: Event::MessageFailed,
        id: "e",
        webhook_id: "w",
    };
    let old = serde_json::json!({
        "id": "e", "event": "message.failed", "webhook_id": "w",
        "created_at": "2026-01-01T00:00:00.000Z",
        "data": {"message_id": "m", "idx": 1, "to": "+15550000000", "state": "failed",
                 "phone": "a", "sim": 0, "parts": 2, "error": "x", "code": null},
    });
    assert_eq!(serde_json::to_string(&body).expect("json"), old.to_string());
    assert_eq!(recipient_event(S::Expired), Some(Event::MessageFailed));
    assert_eq!(recipient_event(S::Cancelled), None);
}

fn status() -> impl Strategy<Value = RecipientStatus> {
    prop::sample::select(RecipientStatus::ALL)
}

fn protocol_state() -> impl Strategy<Value = RecipientState> {
    prop::sample::select(vec![
        RecipientState::Queued,
        RecipientState::Sending,
        RecipientState::Sent,
        RecipientState::Delivered,
        RecipientState::Failed,
        RecipientState::Expired,
        RecipientState::Cancelled,
        RecipientState::Unknown,
    ])
}

fn phone() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "c"])
}

fn recipient() -> impl Strategy<Value = Recipient> {
    (
        status(),
        prop::option::of(phone()),
        prop::option::of(0..3_i32),
        any::<bool>(),
        0..4_u32,
        prop::collection::vec((phone(), -1..3_i32), 0..3),
        prop::option::of(phone()),
        prop::option::of(Just("p")),
    )
        .prop_map(
            |(status, owner, sim, accepted, parts_sent, tried, pinned, pool)| Recipient {
                status,
                phone: owner.map(str::to_string),
                sim,
                accepted,
                parts_sent,
                tried: tried.into_iter().map(|(p, s)| SimKey::new(p, s)).collect(),
                target: Target {
                    phone: pinned.map(str::to_string),
                    sim: None,
                    pool: pool.map(str::to_string),
                },
            },
        )
}

fn update() -> impl Strategy<Value = RecipientUpdate> {
    (
        protocol_state(),
        prop::option::of(0..3_i32),
        0..4_u32,
        any::<bool>(),
    )
        .prop_map(|(state, sim, parts_sent, unsent)| RecipientUpdate {
            sim,
            parts_sent,
            unsent,
            ..upd(state)
        })
}

proptest! {
    #[test]
    fn the_aggregate_is_a_function_of_the_multiset(
        states in prop::collection::vec(status(), 1..8),
        seed in any::<u64>(),
    ) {
        let mut shuffled = states.clone();
        // A deterministic permutation from the seed.
        let n = shuffled.len();
        for i in 0..n {
            let j = usize::try_from(seed.rotate_left(u32::try_from(i).unwrap_or(0)) % n as u64)
                .unwrap_or(0);
            shuffled.swap(i, j);
        }
        prop_assert_eq!(aggregate(states.clone()), aggregate(shuffled));
        // Agreement gives that state; anything waiting on the relay shows.
        if states.iter().all(|s| *s == states[0]) {
            prop_assert_eq!(aggregate(states.clone()), MessageStatus::from(states[0]));
        }
        if states.contains(&S::Pending) {
            prop_assert_eq!(aggregate(states), MessageStatus::Pending);
        }
    }

    #[test]
    fn a_final_state_is_never_left(r in recipient(), p in phone(), u in update()) {
        prop_assume!(r.status.is_final());
        match run(&r, p, &u) {
            Update::Apply(a) => prop_assert!(false, "a final recipient changed: {:?}", a),
            Update::CancelCopy { tried } => prop_assert!(tried.is_none()),
            Update::Ignore => {}
        }
    }

    #[test]
    fn only_the_owner_or_an_acceptance_has_an_effect(r in recipient(), p in phone(), u in update()) {
        let d = run(&r, p, &u);
        if r.phone.as_deref() != Some(p) {
            if u.state != RecipientState::Queued {
                prop_assert_eq!(d, Update::Ignore);
            } else if let Update::Apply(a) = &d {
                prop_assert!(a.adopt && r.unrouted() && !r.tried_phone(p));
            }
        }
    }

    #[test]
    fn failover_needs_failed_unsent_and_cancelling_is_never_undone(
        r in recipient(), p in phone(), u in update(),
    ) {
        if let Update::Apply(a) = run(&r, p, &u) {
            match a.effect {
                Effect::FailOver => {
                    prop_assert!(u.state == RecipientState::Failed && u.unsent);
                    prop_assert!(r.target.phone.is_none());
                    let tried = a.tried.expect("a failover records the SIM");
                    prop_assert!(tried.len() < 3);
                }
                Effect::Report(rep) => {
                    if r.status == S::Cancelling && u.state == RecipientState::Queued {
                        prop_assert_eq!(rep.state, S::Cancelling);
                    }
                    prop_assert_eq!(rep.changed, rep.state != r.status);
                    if let Some((_, n)) = rep.newly_sent {
                        prop_assert!(n > 0 && u.parts_sent > r.parts_sent);
                    }
                }
            }
        }
    }

    #[test]
    fn deciding_twice_is_deciding_once(r in recipient(), p in phone(), u in update()) {
        // Pure: the same rows and update give the same decision.
        prop_assert_eq!(run(&r, p, &u), run(&r, p, &u));
    }

    #[test]
    fn events_apply_once_each_and_in_order(batches in prop::collection::vec(
        prop::collection::vec(1..12_u64, 0..8), 1..6,
    )) {
        // Whatever the phone resends, in whatever batches, each seq applies at most once and
        // only after every seq before it.
        let mut last = 0;
        let mut applied = Vec::new();
        for batch in &batches {
            for seq in batch {
                match accept_seq(last, *seq) {
                    Some(true) => {
                        applied.push(*seq);
                        last = *seq;
                    }
                    Some(false) => {}
                    None => break,
                }
            }
        }
        let expected: Vec<u64> = (1..=last).collect();
        prop_assert_eq!(applied, expected);
    }

    #[test]
    fn removal_never_reroutes_what_a_phone_accepted(r in recipient()) {
        if r.accepted {
            prop_assert!(matches!(on_removal(&r), OnRemoval::End(S::Unknown)));
            prop_assert!(!offline_hands_back(&r));
        }
    }
}
