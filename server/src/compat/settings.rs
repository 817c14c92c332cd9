//! `/settings`: the account's device settings document (sections `gateway`, `encryption`,
//! `messages`, `logs`, `ping`, `webhooks`, `receiver`, keys in snake_case), stored per account.
//! GET answers it, PUT replaces it, PATCH merges into it key by key.
//!
//! What simrelay applies: `webhooks.signing_key` signs the account's SMS Gateway webhooks
//! (one is generated when the account has none, so deliveries are always signed, as the app
//! does); `messages.limit_period`/`limit_value` and `processing_order` are read by routing
//! (`domain::smsgate`); `ping.interval_seconds` by the ping task. The passphrase of
//! end-to-end encryption is refused: it belongs on the phones, and the relay must never be
//! able to read the messages. The other keys are validated and kept for the clients;
//! docs/compat.md says why each is not applied.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::{CResult, Caller, CompatError, json};
use crate::AppState;
use crate::error::ApiJson;
use crate::store::now_ms;

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Bool,
    Text,
    OneOf(&'static [&'static str]),
}

/// Every section and key the document may hold.
const SCHEMA: &[(&str, &[(&str, Kind)])] = &[
    (
        "gateway",
        &[
            ("cloud_url", Kind::Text),
            ("private_token", Kind::Text),
            ("notification_channel", Kind::OneOf(&["AUTO", "SSE_ONLY"])),
        ],
    ),
    ("encryption", &[("passphrase", Kind::Text)]),
    (
        "messages",
        &[
            (
                "limit_period",
                Kind::OneOf(&["Disabled", "PerMinute", "Per30Minutes", "PerHour", "PerDay"]),
            ),
            ("limit_value", Kind::Int),
            ("log_lifetime_days", Kind::Int),
            ("processing_order", Kind::OneOf(&["LIFO", "FIFO"])),
            ("send_interval_min", Kind::Int),
            ("send_interval_max", Kind::Int),
            (
                "sim_selection_mode",
                Kind::OneOf(&["OSDefault", "RoundRobin", "Random"]),
            ),
        ],
    ),
    ("logs", &[("lifetime_days", Kind::Int)]),
    ("ping", &[("interval_seconds", Kind::Int)]),
    (
        "webhooks",
        &[
            ("retry_count", Kind::Int),
            ("signing_key", Kind::Text),
            ("internet_required", Kind::Bool),
        ],
    ),
    ("receiver", &[("content_provider_enabled", Kind::Bool)]),
];

/// Longest text value.
const MAX_TEXT: usize = 512;

/// Checks a settings document (a whole one, or a PATCH). `null` values are allowed in a
/// PATCH, where they remove the key.
pub fn check(doc: &Value) -> Result<(), String> {
    let sections = doc
        .as_object()
        .ok_or("the settings must be a JSON object")?;
    for (name, section) in sections {
        let (_, keys) = SCHEMA
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| format!("unknown settings section {name:?}"))?;
        if section.is_null() {
            continue;
        }
        let section = section
            .as_object()
            .ok_or_else(|| format!("{name} must be an object"))?;
        for (key, v) in section {
            let (_, kind) = keys
                .iter()
                .find(|(k, _)| k == key)
                .ok_or_else(|| format!("unknown setting {name}.{key}"))?;
            if name == "encryption" && key == "passphrase" && !v.is_null() {
                return Err(
                    "encryption.passphrase is set on the phones, never on the relay: \
                            the relay must not be able to read encrypted messages"
                        .into(),
                );
            }
            let ok = match (kind, v) {
                (_, Value::Null) => true,
                (Kind::Int, Value::Number(n)) => n.as_u64().is_some_and(|n| n <= 1_000_000_000),
                (Kind::Bool, Value::Bool(_)) => true,
                (Kind::Text, Value::String(s)) => s.len() <= MAX_TEXT,
                (Kind::OneOf(names), Value::String(s)) => names.contains(&s.as_str()),
                _ => false,
            };
            if !ok {
                return Err(match kind {
                    Kind::Int => format!("{name}.{key} must be a whole number, 0 or more"),
                    Kind::Bool => format!("{name}.{key} must be true or false"),
                    Kind::Text => format!("{name}.{key} must be a string of at most {MAX_TEXT}"),
                    Kind::OneOf(names) => format!("{name}.{key} must be one of {names:?}"),
                });
            }
        }
    }
    if let Some(m) = sections.get("messages").and_then(Value::as_object)
        && let (Some(lo), Some(hi)) = (
            m.get("send_interval_min").and_then(Value::as_u64),
            m.get("send_interval_max").and_then(Value::as_u64),
        )
        && lo > hi
    {
        return Err("messages.send_interval_min is above send_interval_max".into());
    }
    Ok(())
}

/// `patch` merged into `base`, key by key; a `null` removes a key (or a whole section).
pub fn merge(base: &Value, patch: &Value) -> Value {
    let mut out: Map<String, Value> = base.as_object().cloned().unwrap_or_default();
    for (name, section) in patch.as_object().into_iter().flatten() {
        if section.is_null() {
            out.remove(name);
            continue;
        }
        let mut merged = out
            .get(name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in section.as_object().into_iter().flatten() {
            if v.is_null() {
                merged.remove(k);
            } else {
                merged.insert(k.clone(), v.clone());
            }
        }
        out.insert(name.clone(), Value::Object(merged));
    }
    Value::Object(out)
}

/// The document without `null`s, with a signing key (the document's, else the stored one,
/// else a new one), and the signing key itself.
fn finish(doc: Value, stored_key: Option<&str>) -> (Value, String) {
    let mut doc = merge(&Value::Object(Map::new()), &doc);
    let obj = doc.as_object_mut().expect("merge makes an object");
    let hooks = obj
        .entry("webhooks")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .expect("sections are objects");
    let key = match (hooks.get("signing_key").and_then(Value::as_str), stored_key) {
        (Some(k), _) | (None, Some(k)) if !k.is_empty() => k.to_string(),
        _ => crate::api::random_secret(8),
    };
    hooks.insert("signing_key".into(), Value::String(key.clone()));
    (doc, key)
}

/// The account's signing key for SMS Gateway webhooks (creating the document with a fresh
/// one when the account has none).
pub async fn signing_key(state: &AppState, account: &str) -> CResult<String> {
    let doc = write(state, account, |stored| match stored {
        Some(s) => s.clone(),
        None => Value::Object(Map::new()),
    })
    .await?;
    Ok(doc["webhooks"]["signing_key"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Reads, changes (`f`) and writes the document in one transaction.
async fn write(
    state: &AppState,
    account: &str,
    f: impl Fn(Option<&Value>) -> Value + Send + 'static,
) -> CResult<Value> {
    let account = account.to_string();
    let body = state
        .db
        .call(move |s| {
            s.update_compat_settings(&account, now_ms(), |stored| {
                let stored: Option<Value> = stored.and_then(|t| serde_json::from_str(t).ok());
                let stored_key = stored
                    .as_ref()
                    .and_then(|s| s["webhooks"]["signing_key"].as_str().map(str::to_string));
                let (doc, key) = finish(f(stored.as_ref()), stored_key.as_deref());
                Ok::<_, String>((doc.to_string(), Some(key)))
            })
        })
        .await?
        .map_err(CompatError::bad_request)?;
    serde_json::from_str(&body).map_err(|_| {
        CompatError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the stored settings are not JSON",
        )
    })
}

/// `GET /settings`.
pub async fn get_settings(State(state): State<AppState>, caller: Caller) -> CResult<Response> {
    let acc = caller.account.clone();
    let stored = state.db.call(move |s| s.compat_settings(&acc)).await?;
    let doc = match stored.and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
        Some(doc) => doc,
        None => write(&state, &caller.account, |_| Value::Object(Map::new())).await?,
    };
    Ok(json(StatusCode::OK, &doc))
}

/// `PUT /settings`: replaces the document (without a signing key, the account's stays).
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> CResult<Response> {
    check(&body).map_err(CompatError::bad_request)?;
    let doc = write(&state, &caller.account, move |_| body.clone()).await?;
    Ok(json(StatusCode::OK, &doc))
}

/// `PATCH /settings`: merges into the document.
pub async fn patch_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Value>,
) -> CResult<Response> {
    check(&body).map_err(CompatError::bad_request)?;
    let doc = write(&state, &caller.account, move |stored| match stored {
        Some(s) => merge(s, &body),
        None => merge(&Value::Object(Map::new()), &body),
    })
    .await?;
    Ok(json(StatusCode::OK, &doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_are_checked() {
        assert!(check(&json!({"messages": {"limit_period": "PerHour", "limit_value": 5}})).is_ok());
        assert!(check(&json!({"messages": {"limit_period": "Weekly"}})).is_err());
        assert!(check(&json!({"messages": {"limit_value": -1}})).is_err());
        assert!(check(&json!({"nope": {}})).is_err());
        assert!(check(&json!({"ping": {"typo": 1}})).is_err());
        assert!(check(&json!({"encryption": {"passphrase": "x"}})).is_err());
        assert!(check(&json!({"encryption": {"passphrase": null}})).is_ok());
        assert!(check(&json!([1])).is_err());
        let lo_hi = json!({"messages": {"send_interval_min": 9, "send_interval_max": 3}});
        assert!(check(&lo_hi).is_err());
    }

    #[test]
    fn patches_merge_key_by_key_and_nulls_remove() {
        let base = json!({"messages": {"limit_value": 5, "limit_period": "PerDay"}, "ping": {"interval_seconds": 60}});
        let patch = json!({"messages": {"limit_value": 7, "limit_period": null}, "ping": null, "logs": {"lifetime_days": 3}});
        assert_eq!(
            merge(&base, &patch),
            json!({"messages": {"limit_value": 7}, "logs": {"lifetime_days": 3}})
        );
    }

    #[test]
    fn a_signing_key_is_always_there_and_kept() {
        let (doc, key) = finish(json!({}), None);
        assert_eq!(key.len(), 16);
        assert_eq!(doc["webhooks"]["signing_key"], key.as_str());
        let (doc, key) = finish(json!({"webhooks": {"signing_key": "mine"}}), Some("old"));
        assert_eq!(
            (key.as_str(), &doc["webhooks"]["signing_key"]),
            ("mine", &json!("mine"))
        );
        let (_, key) = finish(json!({"ping": {}}), Some("old"));
        assert_eq!(key, "old", "a replaced document keeps the stored key");
    }
}
