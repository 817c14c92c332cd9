//! The webhooks of the SMS Gateway for Android compatible API (`crate::compat`): which of the
//! relay's changes each of its events names, and the body the Android app would send for it
//! (`{"id","webhookId","event","deviceId","payload"}`), so that receivers written for that
//! project work unchanged.
//!
//! A registration for one of these events lists the event's name (`sms:sent`), and
//! optionally `device:<id>` to hear only one phone. Names with a `:` are SMS Gateway events;
//! the relay's own are dotted (`message.sent`).

use serde::Serialize;
use serde_json::{Value, json};

use super::state::RecipientStatus;
use super::webhooks::{ReceivedData, RecipientData};

/// Every event name the compatible API registers (the Python client's `WebhookEvent`); the
/// first seven are ever sent by simrelay.
pub const EVENTS: &[&str] = &[
    "sms:received",
    "sms:data-received",
    "sms:sent",
    "sms:delivered",
    "sms:failed",
    "sms:cancelled",
    "system:ping",
    "mms:received",
    "mms:downloaded",
    "app:started",
    "sms:batch:received",
    "sms:batch:data-received",
    "mms:batch:received",
    "mms:batch:downloaded",
];

/// The prefix of a registration's phone filter.
pub const DEVICE_PREFIX: &str = "device:";

/// Whether a registration's event list is an SMS Gateway one.
pub fn is_smsgate(events: &[String]) -> bool {
    events.iter().any(|e| EVENTS.contains(&e.as_str()))
}

/// Whether the registration `events` wants the SMS Gateway event `name` from `phone`.
pub fn wants(events: &[String], name: &str, phone: Option<&str>) -> bool {
    events.iter().any(|e| e == name)
        && events
            .iter()
            .filter_map(|e| e.strip_prefix(DEVICE_PREFIX))
            .all(|d| Some(d) == phone)
}

/// What an SMS Gateway event carries, before its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub name: &'static str,
    pub phone: Option<String>,
    pub payload: Value,
}

/// The SMS Gateway event of a recipient that entered `state` at `at` (RFC 3339).
pub fn recipient(state: RecipientStatus, r: &RecipientData, at: &str) -> Option<Rendered> {
    let mut p = json!({
        "messageId": r.message_id,
        "phoneNumber": r.to,
        "recipient": r.to,
    });
    let name = match state {
        RecipientStatus::Sent | RecipientStatus::Unknown => {
            p["partsCount"] = json!(r.parts);
            p["sentAt"] = json!(at);
            "sms:sent"
        }
        RecipientStatus::Delivered => {
            p["deliveredAt"] = json!(at);
            "sms:delivered"
        }
        RecipientStatus::Failed | RecipientStatus::Expired => {
            p["failedAt"] = json!(at);
            p["reason"] = json!(r.error.as_deref().unwrap_or(state.as_str()));
            "sms:failed"
        }
        RecipientStatus::Cancelled => {
            p["cancelledAt"] = json!(at);
            "sms:cancelled"
        }
        _ => return None,
    };
    Some(Rendered {
        name,
        phone: r.phone.clone(),
        payload: p,
    })
}

/// The SMS Gateway event of a received SMS: `sms:data-received` for a data SMS.
pub fn received(d: &ReceivedData) -> Rendered {
    let mut p = json!({
        "messageId": d.id,
        "phoneNumber": d.from,
        "sender": d.from,
        "receivedAt": d.received_at,
    });
    let name = if d.data_port.is_some() {
        p["data"] = json!(d.text);
        "sms:data-received"
    } else {
        p["message"] = json!(d.text);
        "sms:received"
    };
    Rendered {
        name,
        phone: Some(d.phone.clone()),
        payload: p,
    }
}

/// A limit over a window shorter than a day: at most `limit` parts leave a SIM in any
/// `minutes` consecutive clock minutes (the relay's clock, as the phones report them sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub minutes: u32,
    pub limit: u32,
}

/// What an account's `messages.limit_period` / `limit_value` set. simrelay counts parts per
/// SIM, as its daily caps do (upstream counts messages per phone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `PerDay`: the daily cap of each SIM that has none of its own.
    PerDay(u32),
    /// `PerMinute`, `Per30Minutes`, `PerHour`: a window limit on every SIM.
    Window(WindowLimit),
}

/// The limit an account's settings document (`/3rdparty/v1/settings`) sets, if any:
/// `Disabled`, a missing period or a `limit_value` of 0 set none.
pub fn limit(settings: &str) -> Option<Limit> {
    let doc: Value = serde_json::from_str(settings).ok()?;
    let m = doc.get("messages")?;
    let value = m.get("limit_value")?.as_u64().filter(|v| *v > 0)?;
    let value = u32::try_from(value).unwrap_or(u32::MAX);
    let minutes = match m.get("limit_period")?.as_str()? {
        "PerDay" => return Some(Limit::PerDay(value)),
        "PerMinute" => 1,
        "Per30Minutes" => 30,
        "PerHour" => 60,
        _ => return None,
    };
    Some(Limit::Window(WindowLimit {
        minutes,
        limit: value,
    }))
}

/// Whether an account's settings ask for the newest waiting messages first
/// (`messages.processing_order = LIFO`); the default is oldest first. Priority still comes
/// before age.
pub fn newest_first(settings: &str) -> bool {
    serde_json::from_str::<Value>(settings)
        .ok()
        .and_then(|d| Some(d.get("messages")?.get("processing_order")?.as_str()? == "LIFO"))
        .unwrap_or(false)
}

/// The ping interval an account's settings document sets (`ping.interval_seconds`, when
/// above 0).
pub fn ping_interval_s(settings: &str) -> Option<u64> {
    let doc: Value = serde_json::from_str(settings).ok()?;
    doc.get("ping")?
        .get("interval_seconds")?
        .as_u64()
        .filter(|v| *v > 0)
}

/// The batch event of a single one (`sms:received` → `sms:batch:received`).
pub fn batch_name(single: &str) -> &'static str {
    if single == "sms:data-received" {
        "sms:batch:data-received"
    } else {
        "sms:batch:received"
    }
}

/// The body of one delivery.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a> {
    pub id: &'a str,
    pub webhook_id: &'a str,
    pub event: &'a str,
    pub device_id: Option<&'a str>,
    pub payload: &'a Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> RecipientData {
        RecipientData {
            code: None,
            error: Some("radio off".into()),
            idx: 0,
            message_id: "m1".into(),
            parts: 2,
            phone: Some("p1".into()),
            sim: None,
            state: RecipientStatus::Sent,
            to: "+15550001".into(),
        }
    }

    #[test]
    fn recipient_changes_name_their_event() {
        let at = "2026-01-01T00:00:00.000Z";
        let sent = recipient(RecipientStatus::Sent, &data(), at).expect("sent");
        assert_eq!(sent.name, "sms:sent");
        assert_eq!(sent.payload["partsCount"], 2);
        assert_eq!(sent.payload["recipient"], "+15550001");
        let failed = recipient(RecipientStatus::Expired, &data(), at).expect("failed");
        assert_eq!(
            (failed.name, &failed.payload["reason"]),
            ("sms:failed", &json!("radio off"))
        );
        assert_eq!(
            recipient(RecipientStatus::Cancelled, &data(), at).map(|r| r.name),
            Some("sms:cancelled")
        );
        assert_eq!(recipient(RecipientStatus::Queued, &data(), at), None);
    }

    #[test]
    fn the_limit_period_picks_a_daily_cap_or_a_window_limit() {
        let doc = |p: &str, v: i64| {
            json!({"messages": {"limit_period": p, "limit_value": v}}).to_string()
        };
        assert_eq!(limit(&doc("PerDay", 50)), Some(Limit::PerDay(50)));
        assert_eq!(limit(&doc("PerDay", 0)), None);
        assert_eq!(limit(r#"{"ping": {}}"#), None);
        assert_eq!(limit("not json"), None);
        let w = |minutes, limit| Some(Limit::Window(WindowLimit { minutes, limit }));
        assert_eq!(limit(&doc("PerMinute", 5)), w(1, 5));
        assert_eq!(limit(&doc("Per30Minutes", 50)), w(30, 50));
        assert_eq!(limit(&doc("PerHour", 50)), w(60, 50));
        assert_eq!(limit(&doc("Disabled", 100)), None);
        assert_eq!(limit(&doc("PerHour", 0)), None);
        assert_eq!(limit("[]"), None);
        assert!(newest_first(
            r#"{"messages": {"processing_order": "LIFO"}}"#
        ));
        assert!(!newest_first(
            r#"{"messages": {"processing_order": "FIFO"}}"#
        ));
        assert!(!newest_first(r#"{"messages": {}}"#));
        assert!(!newest_first("nope"));
    }

    #[test]
    fn device_filters() {
        let ev = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert!(wants(&ev(&["sms:sent"]), "sms:sent", Some("p1")));
        assert!(wants(
            &ev(&["sms:sent", "device:p1"]),
            "sms:sent",
            Some("p1")
        ));
        assert!(!wants(
            &ev(&["sms:sent", "device:p2"]),
            "sms:sent",
            Some("p1")
        ));
        assert!(!wants(&ev(&["sms:received"]), "sms:sent", Some("p1")));
        assert!(is_smsgate(&ev(&["system:ping"])));
        assert!(!is_smsgate(&ev(&["message.sent"])));
    }
}
