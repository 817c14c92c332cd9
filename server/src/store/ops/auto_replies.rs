//! Each account's opt-out settings and the automatic replies to keywords (the rules are
//! `crate::domain::auto_reply`).
//!
//! An auto-reply is created in the transaction that stores the keyword SMS, only when that
//! SMS is new (an incoming SMS keeps its id however often it is re-reported, so a repeated
//! report never makes a second one), and only when the `auto_replies` row of (account,
//! sender, kind, UTC day) was not there yet: a second STOP the same day gets no second reply.
//! It is a message like any other (`GET /v1/messages` shows it, its webhooks follow), pinned
//! to the phone and SIM the keyword came in on, and it goes out even to a suppressed number.

use sha2::{Digest, Sha256};
use simrelay_protocol::IncomingSms;

use super::create::create_messages;
use crate::domain::auto_reply::{OptOutSettings, REPLY_VALID_MS, utc_day};
use crate::domain::optout::Kind;
use crate::store::tx::{AutoReplyClaim, Tx};
use crate::store::{CreateOutcome, Millis, NewMessage, Result, Store, SuppressionOverride};

/// The prefix of an auto-reply's message id (the rest is a UUID v7).
pub const ID_PREFIX: &str = "auto-reply-";

/// Creates the reply `settings` configure for a `kind` keyword from `sms.from`, received by
/// `phone`, unless the sender had one of this kind today or cannot be answered (a sender
/// that is not an E.164 number, such as an alphanumeric one). Returns whether it was created.
pub(crate) fn reply_to_keyword(
    tx: &mut dyn Tx,
    settings: &OptOutSettings,
    kind: Kind,
    account: &str,
    phone: &str,
    sms: &IncomingSms,
    now: Millis,
) -> Result<bool> {
    let Some(text) = settings.reply_for(kind) else {
        return Ok(false);
    };
    if !simrelay_protocol::is_e164(&sms.from) {
        return Ok(false);
    }
    let id = format!("{ID_PREFIX}{}", uuid::Uuid::now_v7());
    let claim = AutoReplyClaim {
        account,
        number: &sms.from,
        kind: kind.as_str(),
        day: utc_day(now),
        message_id: &id,
        now,
    };
    if !tx.claim_auto_reply(&claim)? {
        tracing::debug!(phone, kind = kind.as_str(), "auto-reply already sent today");
        return Ok(false);
    }
    let m = NewMessage {
        account_id: account.to_string(),
        body_hash: hex::encode(Sha256::digest(format!("{}\n{text}", kind.as_str()))),
        id,
        to: vec![sms.from.clone()],
        text: text.to_string(),
        priority: 0,
        valid_until: Some(now.saturating_add(REPLY_VALID_MS)),
        schedule_at: None,
        phone_id: Some(phone.to_string()),
        sim: sms.sim,
        pool: None,
        delivery_report: true,
        encrypted: false,
        data_port: None,
        created_at: now,
        suppression_override: Some(SuppressionOverride::AutoReply),
    };
    let created = matches!(
        create_messages(tx, std::slice::from_ref(&m))?.first(),
        Some(CreateOutcome::Created(_))
    );
    tracing::debug!(
        phone,
        kind = kind.as_str(),
        created,
        "auto-reply to a keyword"
    );
    Ok(created)
}

impl Store {
    /// The account's opt-out settings (the defaults when it never stored any).
    pub fn opt_out_settings(&self, account: &str) -> Result<OptOutSettings> {
        self.read(|tx| Ok(tx.opt_out_settings(account)?.unwrap_or_default()))
    }

    /// Stores the account's opt-out settings (checked by the caller).
    pub fn put_opt_out_settings(
        &self,
        account: &str,
        settings: &OptOutSettings,
        now: Millis,
    ) -> Result<()> {
        self.write(|tx| tx.put_opt_out_settings(account, settings, now))
    }
}
