//! The bodies the SMS Gateway for Android clients parse, in their wire names (camelCase,
//! timestamps `YYYY-MM-DDTHH:MM:SS.mmmZ`, which Python's `fromisoformat` reads).

use serde::Serialize;

use crate::store::{MessageView, Millis, PhoneRow, RecipientView};
use crate::time_fmt::fmt_ms;

/// `ProcessState`: one set for a message and its recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ProcessState {
    Pending,
    Cancelling,
    Cancelled,
    Processed,
    Sent,
    Delivered,
    Failed,
}

impl ProcessState {
    pub const ALL: [ProcessState; 7] = [
        ProcessState::Pending,
        ProcessState::Cancelling,
        ProcessState::Cancelled,
        ProcessState::Processed,
        ProcessState::Sent,
        ProcessState::Delivered,
        ProcessState::Failed,
    ];

    /// The upstream state of one of simrelay's (message or recipient) states: taken by a
    /// phone is `Processed`; `unknown` (the radio's outcome was lost in a crash) is `Sent`;
    /// `expired` is `Failed`.
    pub fn of(state: &str) -> Self {
        match state {
            "pending" | "held" => Self::Pending,
            "queued" | "sending" => Self::Processed,
            "sent" | "unknown" => Self::Sent,
            "delivered" => Self::Delivered,
            "cancelling" => Self::Cancelling,
            "cancelled" => Self::Cancelled,
            _ => Self::Failed,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Cancelling => "Cancelling",
            Self::Cancelled => "Cancelled",
            Self::Processed => "Processed",
            Self::Sent => "Sent",
            Self::Delivered => "Delivered",
            Self::Failed => "Failed",
        }
    }

    /// simrelay's states that map to this one.
    pub fn ours(self) -> &'static [&'static str] {
        match self {
            Self::Pending => &["pending", "held"],
            Self::Cancelling => &["cancelling"],
            Self::Cancelled => &["cancelled"],
            Self::Processed => &["queued", "sending"],
            Self::Sent => &["sent", "unknown"],
            Self::Delivered => &["delivered"],
            Self::Failed => &["failed", "expired", "suppressed"],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientState {
    pub phone_number: String,
    pub state: ProcessState,
    pub error: Option<String>,
}

/// `MessageState`: what send, get, list and cancel answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageState {
    pub id: String,
    pub device_id: Option<String>,
    pub state: ProcessState,
    pub is_hashed: bool,
    pub is_encrypted: bool,
    pub recipients: Vec<RecipientState>,
    /// When the message entered each state it went through (as far as the relay knows: its
    /// creation and its last change).
    pub states: std::collections::BTreeMap<&'static str, String>,
    pub created_at: String,
}

impl From<MessageView> for MessageState {
    fn from(m: MessageView) -> Self {
        let state = ProcessState::of(m.state.as_str());
        let mut states = std::collections::BTreeMap::new();
        states.insert(ProcessState::Pending.name(), fmt_ms(m.created_at));
        states.insert(state.name(), fmt_ms(m.updated_at));
        let device_id = m
            .phone
            .clone()
            .or_else(|| m.recipients.iter().find_map(|r| r.phone.clone()));
        Self {
            id: m.id,
            device_id,
            state,
            is_hashed: false,
            is_encrypted: m.encrypted,
            recipients: m.recipients.into_iter().map(recipient).collect(),
            states,
            created_at: fmt_ms(m.created_at),
        }
    }
}

fn recipient(r: RecipientView) -> RecipientState {
    RecipientState {
        phone_number: r.to,
        state: ProcessState::of(r.state.as_str()),
        error: r.error,
    }
}

/// `Device`: a phone of the account.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    pub last_seen: String,
    pub sim_cards: Vec<SimCard>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimCard {
    /// 0-based.
    pub slot_index: i32,
    /// 1-based, what `simNumber` names.
    pub sim_number: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_name: Option<String>,
}

impl From<PhoneRow> for Device {
    fn from(p: PhoneRow) -> Self {
        let seen: Millis = p.last_seen.unwrap_or(p.created_at);
        let sim_cards = p
            .status
            .map(|s| {
                s.sims
                    .into_iter()
                    .map(|s| SimCard {
                        slot_index: s.slot,
                        sim_number: s.slot + 1,
                        carrier_name: s.carrier,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            name: p.name.unwrap_or_else(|| p.id.clone()),
            id: p.id,
            created_at: fmt_ms(p.created_at),
            updated_at: fmt_ms(seen),
            last_seen: fmt_ms(seen),
            sim_cards,
        }
    }
}

/// `Webhook` as registered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub device_id: Option<String>,
    pub url: String,
    pub event: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_maps_and_maps_back() {
        for s in crate::domain::MessageStatus::ALL {
            let p = ProcessState::of(s.as_str());
            assert!(p.ours().contains(&s.as_str()), "{s}");
        }
        assert_eq!(
            ProcessState::parse("Processed"),
            Some(ProcessState::Processed)
        );
        assert_eq!(ProcessState::parse("processed"), None);
        assert_eq!(
            serde_json::to_string(&ProcessState::Cancelling).expect("json"),
            "\"Cancelling\""
        );
    }
}
