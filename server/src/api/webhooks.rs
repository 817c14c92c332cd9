//! `/v1/webhooks`: register, list and delete webhook endpoints of an account.
//!
//! The signing secret is returned once, when the webhook is created (or given by the client).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Account, random_secret};
use crate::AppState;
use crate::error::{ApiJson, AppError};
use crate::store::{Webhook, now_ms};
use crate::time_fmt::fmt_ms;

/// Events a webhook may subscribe to.
pub const EVENTS: [&str; 9] = [
    "message.sent",
    "message.delivered",
    "message.failed",
    "message.received",
    "phone.online",
    "phone.offline",
    "phone.removed",
    "sim.quarantined",
    "sim.recovered",
];

/// Body of `POST /v1/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    url: String,
    events: Vec<String>,
    /// At least 16 characters; generated when absent.
    #[serde(default)]
    secret: Option<String>,
}

fn hook_json(h: &Webhook, with_secret: bool) -> Value {
    let mut v = json!({
        "id": h.id,
        "url": h.url,
        "events": h.events,
        "created_at": fmt_ms(h.created_at),
    });
    if with_secret {
        v["secret"] = json!(h.secret);
    }
    v
}

/// A webhook request that passed [`validate_webhook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedWebhook {
    /// The URL, normalised.
    pub url: String,
    /// Sorted, without repeats.
    pub events: Vec<String>,
    /// The client's secret, if it gave one.
    pub secret: Option<String>,
}

/// Checks a webhook request: an http(s) URL with a host, 1 or more known events, a secret
/// (if given) of 16 to 256 bytes.
pub fn validate_webhook(req: CreateWebhook) -> Result<CheckedWebhook, AppError> {
    let url = reqwest::Url::parse(&req.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| AppError::bad_request("invalid_url", "url must be an http(s) URL"))?;
    if req.events.is_empty() {
        return Err(AppError::bad_request(
            "invalid_event",
            "events must not be empty",
        ));
    }
    if req.events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        return Err(AppError::bad_request(
            "invalid_event",
            format!("events may only name: {}", EVENTS.join(", ")),
        ));
    }
    if req
        .secret
        .as_deref()
        .is_some_and(|s| s.len() < 16 || s.len() > 256)
    {
        return Err(AppError::bad_request(
            "invalid_secret",
            "secret must have 16 to 256 bytes",
        ));
    }
    let mut events = req.events;
    events.sort();
    events.dedup();
    Ok(CheckedWebhook {
        url: url.to_string(),
        events,
        secret: req.secret,
    })
}

/// `POST /v1/webhooks`.
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let checked = validate_webhook(req)?;
    let hook = Webhook {
        id: uuid::Uuid::now_v7().to_string(),
        url: checked.url,
        events: checked.events,
        secret: checked.secret.unwrap_or_else(|| random_secret(32)),
        created_at: now_ms(),
    };
    let h = hook.clone();
    state
        .db
        .call(move |s| s.create_webhook(&account, &h))
        .await?;
    Ok((StatusCode::CREATED, Json(hook_json(&hook, true))))
}

/// `GET /v1/webhooks`.
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Json<Value>, AppError> {
    let hooks = state.db.call(move |s| s.list_webhooks(&account)).await?;
    let items: Vec<Value> = hooks.iter().map(|h| hook_json(h, false)).collect();
    Ok(Json(json!({ "items": items })))
}

/// `DELETE /v1/webhooks/{id}`: 204, or 404 for an id of another account.
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    if state
        .db
        .call(move |s| s.delete_webhook(&account, &id))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found())
    }
}
