//! Messages (`POST`/`GET`/`DELETE /v1/messages...`) and received SMS (`/v1/inbox...`) as the
//! API answers them.

use serde::Serialize;

use super::Timestamp;
use crate::domain::{MessageStatus, RecipientStatus};
use crate::store::{HistoryRow, InboxItem, MessageView, RecipientView};

/// A message: `POST /v1/messages` (202), `GET /v1/messages/{id}`, `DELETE`, list items.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: String,
    /// Derived from the recipients' states.
    pub state: MessageStatus,
    pub priority: i32,
    pub valid_until: Option<Timestamp>,
    pub schedule_at: Option<Timestamp>,
    /// The phone the client pinned the message to.
    pub phone: Option<String>,
    /// The SIM (sub_id) the client asked for.
    pub sim: Option<i32>,
    pub delivery_report: bool,
    /// The text as given; `null` when the relay cannot show it, and `text_withheld` says why.
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_withheld: Option<TextWithheld>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub recipients: Vec<Recipient>,
    /// Why the message goes to numbers on the suppression list too; absent when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppression_override: Option<SuppressionOverride>,
    /// With `suppression_override`: whether a recipient was on the list when the message was
    /// created (and is sent anyway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overrode_suppression: Option<bool>,
}

/// Why a [`Message`] goes to suppressed numbers too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionOverride {
    /// Sent with `transactional: true` by an account that allows it.
    Transactional,
    /// The relay's automatic reply to an opt-out, opt-in or help keyword.
    AutoReply,
}

impl From<crate::store::SuppressionOverride> for SuppressionOverride {
    fn from(o: crate::store::SuppressionOverride) -> Self {
        match o {
            crate::store::SuppressionOverride::Transactional => Self::Transactional,
            crate::store::SuppressionOverride::AutoReply => Self::AutoReply,
        }
    }
}

/// Why a [`Message`] carries no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TextWithheld {
    /// End-to-end encrypted by the client (the compatible API): only the phone can read it.
    EndToEndEncrypted,
    /// A data SMS: the payload is binary.
    DataSms,
}

/// One recipient of a [`Message`]; `error`, `code`, `phone` and `sim` only when known.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Recipient {
    pub idx: u32,
    pub to: String,
    pub state: RecipientStatus,
    pub parts: u32,
    pub parts_sent: u32,
    pub parts_delivered: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The phone it was routed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The SIM it was routed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim: Option<i32>,
    pub updated_at: Timestamp,
}

impl From<MessageView> for Message {
    fn from(v: MessageView) -> Self {
        let withheld = if v.encrypted {
            Some(TextWithheld::EndToEndEncrypted)
        } else if v.data_port.is_some() {
            Some(TextWithheld::DataSms)
        } else {
            None
        };
        Self {
            id: v.id,
            state: v.state,
            priority: v.priority,
            valid_until: Timestamp::opt(v.valid_until),
            schedule_at: Timestamp::opt(v.schedule_at),
            phone: v.phone,
            sim: v.sim,
            delivery_report: v.delivery_report,
            text: withheld.is_none().then_some(v.text),
            text_withheld: withheld,
            created_at: Timestamp(v.created_at),
            updated_at: Timestamp(v.updated_at),
            recipients: v.recipients.into_iter().map(Recipient::from).collect(),
            suppression_override: v.suppression_override.map(Into::into),
            overrode_suppression: v.suppression_override.map(|_| v.overrode_suppression),
        }
    }
}

impl From<RecipientView> for Recipient {
    fn from(r: RecipientView) -> Self {
        Self {
            idx: r.idx,
            to: r.to,
            state: r.state,
            parts: r.parts,
            parts_sent: r.parts_sent,
            parts_delivered: r.parts_delivered,
            error: r.error,
            code: r.code,
            phone: r.phone,
            sim: r.sim,
            updated_at: Timestamp(r.updated_at),
        }
    }
}

/// One change of a recipient: `GET /v1/messages/{id}/history` items, by recipient, oldest
/// first. Every change of state, phone, SIM or part counts is one item.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryItem {
    pub idx: u32,
    pub at: Timestamp,
    pub state: RecipientStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim: Option<i32>,
    pub parts_sent: u32,
    pub parts_delivered: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
}

impl From<HistoryRow> for HistoryItem {
    fn from(h: HistoryRow) -> Self {
        Self {
            idx: h.idx,
            at: Timestamp(h.at),
            state: h.state,
            phone: h.phone,
            sim: h.sim,
            parts_sent: h.parts_sent,
            parts_delivered: h.parts_delivered,
            error: h.error,
            code: h.code,
        }
    }
}

/// A received SMS: `GET /v1/inbox` items and the answer of `GET /v1/inbox/wait`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InboxSms {
    pub id: String,
    pub phone: String,
    pub sim: Option<i32>,
    pub from: String,
    pub text: String,
    /// When the sender's SMSC stamped it, if the phone knew.
    pub sent_at: Option<Timestamp>,
    /// When the phone received it.
    pub received_at: Timestamp,
    /// When the relay stored it (what `since` filters on).
    pub stored_at: Timestamp,
}

impl From<InboxItem> for InboxSms {
    fn from(i: InboxItem) -> Self {
        Self {
            id: i.id,
            phone: i.phone,
            sim: i.sim,
            from: i.from,
            text: i.text,
            sent_at: Timestamp::opt(i.sent_at),
            received_at: Timestamp(i.received_at),
            stored_at: Timestamp(i.stored_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const T0: i64 = 1_795_315_060_412; // 2026-11-22T02:37:40.412Z

    fn recipient(idx: u32, state: &str) -> RecipientView {
        RecipientView {
            idx,
            to: format!("+1555123000{}", idx + 1),
            state: state.parse().expect("a recipient state"),
            parts: 1,
            parts_sent: 1,
            parts_delivered: u32::from(state == "delivered"),
            error: None,
            code: None,
            phone: None,
            sim: None,
            updated_at: T0 + 1820,
        }
    }

    /// The example of docs/protocol.md, `GET /v1/messages/{id}`.
    #[test]
    fn a_message_has_the_documented_shape() {
        let mut delivered = recipient(0, "delivered");
        delivered.phone = Some("p1".into());
        delivered.sim = Some(1);
        let mut failed = recipient(1, "failed");
        failed.error = Some("generic_failure".into());
        failed.code = Some(1);
        let view = MessageView {
            encrypted: false,
            data_port: None,
            cursor: 7,
            id: "order-1".into(),
            state: MessageStatus::Sent,
            priority: 0,
            valid_until: None,
            schedule_at: None,
            phone: None,
            sim: None,
            delivery_report: true,
            text: "Your order shipped".into(),
            recipients: vec![delivered, failed],
            created_at: T0,
            updated_at: T0 + 1820,
            suppression_override: None,
            overrode_suppression: false,
        };
        let got = serde_json::to_value(Message::from(view)).expect("serialises");
        let want = json!({
            "id": "order-1", "state": "sent", "priority": 0, "valid_until": null,
            "schedule_at": null, "phone": null, "sim": null, "delivery_report": true,
            "text": "Your order shipped",
            "created_at": "2026-11-22T02:37:40.412Z", "updated_at": "2026-11-22T02:37:42.232Z",
            "recipients": [
                {"idx": 0, "to": "+15551230001", "state": "delivered", "parts": 1,
                 "parts_sent": 1, "parts_delivered": 1, "phone": "p1", "sim": 1,
                 "updated_at": "2026-11-22T02:37:42.232Z"},
                {"idx": 1, "to": "+15551230002", "state": "failed", "parts": 1,
                 "parts_sent": 1, "parts_delivered": 0, "error": "generic_failure", "code": 1,
                 "updated_at": "2026-11-22T02:37:42.232Z"},
            ],
        });
        assert_eq!(got, want);
    }

    #[test]
    fn a_set_time_pin_and_sim_are_shown() {
        let view = MessageView {
            encrypted: false,
            data_port: None,
            cursor: 1,
            id: "m".into(),
            state: MessageStatus::Pending,
            priority: -5,
            valid_until: Some(T0),
            schedule_at: Some(T0 - 1000),
            phone: Some("p2".into()),
            sim: Some(0),
            delivery_report: false,
            text: "hi".into(),
            recipients: vec![],
            created_at: T0,
            updated_at: T0,
            suppression_override: None,
            overrode_suppression: false,
        };
        let got = serde_json::to_value(Message::from(view.clone())).expect("serialises");
        assert_eq!(got["valid_until"], "2026-11-22T02:37:40.412Z");
        assert_eq!(got["schedule_at"], "2026-11-22T02:37:39.412Z");
        assert_eq!((&got["phone"], &got["sim"]), (&json!("p2"), &json!(0)));
        assert_eq!(got["delivery_report"], false);
        assert!(got.get("cursor").is_none(), "the store cursor stays inside");
        assert!(got.get("text_withheld").is_none(), "{got}");
        // What the relay cannot read is withheld, with the reason.
        for (encrypted, port, why) in [
            (true, None, "end_to_end_encrypted"),
            (false, Some(9200), "data_sms"),
        ] {
            let v = MessageView {
                encrypted,
                data_port: port,
                ..view.clone()
            };
            let got = serde_json::to_value(Message::from(v)).expect("serialises");
            assert_eq!(
                (&got["text"], &got["text_withheld"]),
                (&json!(null), &json!(why))
            );
        }
    }

    /// The item of docs/protocol.md, `GET /v1/inbox`.
    #[test]
    fn an_inbox_sms_has_the_documented_shape() {
        let item = InboxItem {
            encrypted: false,
            data_port: None,
            cursor: 3,
            id: "sms-1".into(),
            phone: "p1".into(),
            sim: Some(1),
            from: "+15557654321".into(),
            text: "hi".into(),
            sent_at: None,
            received_at: T0,
            stored_at: T0 + 5,
        };
        let got = serde_json::to_value(InboxSms::from(item)).expect("serialises");
        let want = json!({
            "id": "sms-1", "phone": "p1", "sim": 1, "from": "+15557654321", "text": "hi",
            "sent_at": null, "received_at": "2026-11-22T02:37:40.412Z",
            "stored_at": "2026-11-22T02:37:40.417Z",
        });
        assert_eq!(got, want);
    }
}
