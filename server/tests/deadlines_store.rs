//! Nothing waits forever on the relay: a recipient routed to a phone that never reports an
//! end is ended `unknown` (`phone_silent`) once every deadline the phone keeps itself has
//! passed; a late report from the phone still applies.

use simrelay_protocol::{Event, RecipientState, RecipientUpdate};
use simrelay_server::store::PHONE_SILENCE_MS;
use simrelay_server::store::postgres::scratch::open_test_store;
use simrelay_server::store::{Assignment, NewMessage, Store};

type R<T> = Result<T, Box<dyn std::error::Error>>;

const VALIDITY: i64 = 7 * 24 * 3_600_000;

fn message(account: &str, id: &str) -> NewMessage {
    NewMessage {
        account_id: account.into(),
        id: id.into(),
        body_hash: format!("hash-{id}"),
        to: vec!["+15551230001".into()],
        text: "hi".into(),
        priority: 0,
        valid_until: None,
        schedule_at: None,
        phone_id: None,
        sim: None,
        pool: None,
        delivery_report: true,
        encrypted: false,
        data_port: None,
        created_at: 1,
        suppression_override: None,
    }
}

fn event(id: &str, state: RecipientState) -> Event {
    Event::Recipient(RecipientUpdate {
        message_id: id.into(),
        idx: 0,
        state,
        at: 1,
        reason: None,
        code: None,
        sim: Some(1),
        parts: 1,
        parts_sent: u32::from(state != RecipientState::Queued),
        parts_delivered: u32::from(state == RecipientState::Delivered),
        unsent: false,
    })
}

fn state(store: &Store, account: &str, id: &str) -> R<(String, Option<String>)> {
    let m = store.get_message(account, id)?.expect("message exists");
    Ok((
        m.recipients[0].state.to_string(),
        m.recipients[0].error.clone(),
    ))
}

#[test]
fn a_silent_phone_ends_its_recipients_unknown_and_late_reports_still_count() -> R<()> {
    let dir = tempfile::tempdir()?;
    let store = open_test_store(dir.path())?;
    let account = store.ensure_api_key("key-hash", 1)?;
    store.create_pairing_code(&account, "code", 1, 1000)?;
    store.pair_phone("code", "P", "token-P", None, 2)?;
    store.create_messages(&[message(&account, "m")])?;
    let u = store.unrouted(&account, &["P".into()], 10)?;
    store.commit_routes(
        &[Assignment {
            mseq: u[0].mseq,
            idx: 0,
            phone: "P".into(),
            sim: Some(1),
        }],
        3,
    )?;
    let sent_at = 10;
    store.apply_from_phone("P", None, &[(1, event("m", RecipientState::Queued))], 4)?;
    store.apply_from_phone("P", None, &[(2, event("m", RecipientState::Sent))], sent_at)?;
    assert_eq!(state(&store, &account, "m")?.0, "sent");

    // Until the phone's own deadlines have all passed, the relay waits.
    let end = 1 + VALIDITY + PHONE_SILENCE_MS;
    assert_eq!(store.expire_unrouted(end, VALIDITY)?, 0);
    assert_eq!(state(&store, &account, "m")?.0, "sent");
    assert_eq!(store.expire_unrouted(end + 1, VALIDITY)?, 1);
    assert_eq!(
        state(&store, &account, "m")?,
        ("unknown".into(), Some("phone_silent".into()))
    );
    assert_eq!(store.expire_unrouted(end + 2, VALIDITY)?, 0, "once");

    // The phone comes back after all and reports delivery: it applies.
    store.apply_from_phone(
        "P",
        None,
        &[(3, event("m", RecipientState::Delivered))],
        end + 3,
    )?;
    assert_eq!(state(&store, &account, "m")?.0, "delivered");
    Ok(())
}
