//! API keys (`/v1/keys`), accounts (`/v1/accounts`) and webhooks (`/v1/webhooks...`) as the
//! API answers them. A secret is shown only in the answer that creates it.

use serde::Serialize;

use super::Timestamp;
use crate::api::auth::Scopes;
use crate::domain::DeliveryState;
use crate::store::{self, AttemptView};
use crate::store::{AccountRow, KeyRow};

/// An API key: `GET /v1/keys` items, `DELETE /v1/keys/{id}`, and (with `secret`)
/// `POST /v1/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Key {
    pub id: String,
    pub account: String,
    pub name: String,
    /// The start of a generated secret, `null` for a configured key.
    pub prefix: Option<String>,
    pub scopes: Vec<&'static str>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// Only in the answer that created the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<KeyRow> for Key {
    fn from(k: KeyRow) -> Self {
        Self {
            id: k.id,
            account: k.account_id,
            name: k.name,
            prefix: k.prefix,
            scopes: Scopes::from_stored(&k.scopes).names(),
            created_at: Timestamp(k.created_at),
            last_used_at: Timestamp::opt(k.last_used_at),
            revoked_at: Timestamp::opt(k.revoked_at),
            secret: None,
        }
    }
}

impl Key {
    /// The key as the answer that created it shows it, with its secret.
    pub fn created(k: KeyRow, secret: String) -> Self {
        Self {
            secret: Some(secret),
            ..Self::from(k)
        }
    }
}

/// An account: `GET /v1/accounts` items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub name: Option<String>,
    pub created_at: Timestamp,
    /// Keys not revoked.
    pub active_keys: u32,
}

impl From<AccountRow> for Account {
    fn from(a: AccountRow) -> Self {
        Self {
            id: a.id,
            name: a.name,
            created_at: Timestamp(a.created_at),
            active_keys: a.active_keys,
        }
    }
}

/// `POST /v1/accounts` (201): the account and its first key, with the key's secret.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccountCreated {
    pub account: Account,
    pub key: Key,
}

/// A webhook: `GET /v1/webhooks` items, and (with `secret`) `POST /v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// Only in the answer that created the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: Timestamp,
}

impl From<store::Webhook> for Webhook {
    fn from(h: store::Webhook) -> Self {
        Self {
            id: h.id,
            url: h.url,
            events: h.events,
            secret: None,
            created_at: Timestamp(h.created_at),
        }
    }
}

impl Webhook {
    /// The webhook as the answer that created it shows it, with its signing secret.
    pub fn created(h: store::Webhook) -> Self {
        let secret = h.secret.clone();
        Self {
            secret: Some(secret),
            ..Self::from(h)
        }
    }
}

/// One attempt of `GET /v1/webhooks/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    pub event_id: String,
    pub event: String,
    pub at: Timestamp,
    /// The receiver's HTTP status, `null` when no answer came.
    pub status: Option<u16>,
    pub duration_ms: i64,
    /// Why it failed, `null` for a 2xx.
    pub error: Option<String>,
    /// The delivery's state now, `null` for a ping.
    pub delivery_state: Option<DeliveryState>,
}

impl From<AttemptView> for Attempt {
    fn from(a: AttemptView) -> Self {
        Self {
            event_id: a.log.event_id,
            event: a.log.event,
            at: Timestamp(a.log.at),
            status: a.log.status,
            duration_ms: a.log.duration_ms,
            error: a.log.error,
            delivery_state: a.delivery_state,
        }
    }
}

/// `POST /v1/webhooks/{id}/ping` (200, whatever the receiver answered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Ping {
    pub event_id: String,
    /// The receiver answered 2xx.
    pub ok: bool,
    pub status: Option<u16>,
    pub duration_ms: i64,
    pub error: Option<String>,
}

/// `POST /v1/webhooks/{id}/deliveries/{event_id}/redeliver` (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Redelivery {
    pub event_id: String,
    /// `pending`: queued again.
    pub delivery_state: &'static str,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::AttemptLog;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00.000Z

    fn key_row() -> KeyRow {
        KeyRow {
            id: "k1".into(),
            account_id: "a1".into(),
            name: "billing".into(),
            prefix: Some("sr_0123abcd".into()),
            scopes: "send,read".into(),
            created_at: T0,
            revoked_at: None,
            last_used_at: Some(T0 + 60_000),
        }
    }

    /// docs/protocol.md, "Keys, accounts and scopes".
    #[test]
    fn a_key_has_the_documented_shape_and_its_secret_only_when_created() {
        let got = serde_json::to_value(Key::from(key_row())).expect("serialises");
        let want = json!({
            "id": "k1", "account": "a1", "name": "billing", "prefix": "sr_0123abcd",
            "scopes": ["send", "read"], "created_at": "2026-01-01T00:00:00.000Z",
            "last_used_at": "2026-01-01T00:01:00.000Z", "revoked_at": null,
        });
        assert_eq!(got, want);
        let created =
            serde_json::to_value(Key::created(key_row(), "sr_secret".into())).expect("serialises");
        assert_eq!(created["secret"], "sr_secret");
        assert_eq!(created.as_object().map(|o| o.len()), Some(9));
    }

    #[test]
    fn an_account_and_its_first_key_have_the_documented_shape() {
        let row = AccountRow {
            id: "a1".into(),
            name: None,
            created_at: T0,
            active_keys: 1,
        };
        let got = serde_json::to_value(AccountCreated {
            account: row.into(),
            key: Key::created(key_row(), "s".into()),
        })
        .expect("serialises");
        assert_eq!(
            got["account"],
            json!({"id": "a1", "name": null, "created_at": "2026-01-01T00:00:00.000Z",
                   "active_keys": 1})
        );
        assert_eq!(got["key"]["secret"], "s");
    }

    #[test]
    fn a_webhook_shows_its_secret_only_when_created() {
        let hook = store::Webhook {
            id: "w1".into(),
            url: "https://example.com/h".into(),
            events: vec!["message.sent".into()],
            secret: "0123456789abcdef".into(),
            created_at: T0,
        };
        let listed = serde_json::to_value(Webhook::from(hook.clone())).expect("serialises");
        assert_eq!(
            listed,
            json!({"id": "w1", "url": "https://example.com/h", "events": ["message.sent"],
                   "created_at": "2026-01-01T00:00:00.000Z"})
        );
        let created = serde_json::to_value(Webhook::created(hook)).expect("serialises");
        assert_eq!(created["secret"], "0123456789abcdef");
    }

    /// docs/protocol.md, "Delivery log, ping and redelivery".
    #[test]
    fn the_delivery_log_ping_and_redelivery_have_the_documented_shapes() {
        let attempt = AttemptView {
            log: AttemptLog {
                webhook_id: "w1".into(),
                event_id: "e1".into(),
                event: "message.sent".into(),
                at: T0,
                status: None,
                duration_ms: 15_000,
                error: Some("timeout".into()),
            },
            delivery_state: Some(DeliveryState::Pending),
        };
        assert_eq!(
            serde_json::to_value(Attempt::from(attempt)).expect("serialises"),
            json!({"event_id": "e1", "event": "message.sent",
                   "at": "2026-01-01T00:00:00.000Z", "status": null, "duration_ms": 15000,
                   "error": "timeout", "delivery_state": "pending"})
        );
        let ping = Ping {
            event_id: "e2".into(),
            ok: true,
            status: Some(204),
            duration_ms: 3,
            error: None,
        };
        assert_eq!(
            serde_json::to_value(ping).expect("serialises"),
            json!({"event_id": "e2", "ok": true, "status": 204, "duration_ms": 3,
                   "error": null})
        );
        let again = Redelivery {
            event_id: "e1".into(),
            delivery_state: "pending",
        };
        assert_eq!(
            serde_json::to_value(again).expect("serialises"),
            json!({"event_id": "e1", "delivery_state": "pending"})
        );
    }
}
