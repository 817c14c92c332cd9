//! `/webhooks`: SMS Gateway for Android webhooks, stored as relay webhooks whose event list
//! is the SMS Gateway event (and `device:<id>` when the registration names a device). They
//! are delivered by the relay's own outbox (durable, retried with backoff), in the Android
//! app's body and signature (`crate::domain::smsgate`), signed with the account's
//! `webhooks.signing_key` setting.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::views::Webhook as View;
use super::{CResult, Caller, CompatError, json};
use crate::AppState;
use crate::domain::smsgate::{self, DEVICE_PREFIX};
use crate::error::ApiJson;
use crate::store::{Webhook, now_ms};
use crate::webhooks::ssrf::{self, UrlPolicy};

/// The body of `POST /webhooks` (Python sends `"id": null` when it has none).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Register {
    #[serde(default)]
    pub id: Option<String>,
    pub url: String,
    pub event: String,
    #[serde(default)]
    pub device_id: Option<String>,
}

fn view(h: Webhook) -> Option<View> {
    let event = h
        .events
        .iter()
        .find(|e| smsgate::EVENTS.contains(&e.as_str()))?
        .clone();
    let device_id = h
        .events
        .iter()
        .find_map(|e| e.strip_prefix(DEVICE_PREFIX))
        .map(str::to_string);
    Some(View {
        id: h.id,
        device_id,
        url: h.url,
        event,
    })
}

/// Checks a registration: a known event, an id of at most 36 characters, an http(s) URL that
/// passes the relay's SSRF guard. Returns the event list to store.
pub fn validate(r: &Register, policy: &UrlPolicy) -> CResult<(String, Vec<String>)> {
    if !smsgate::EVENTS.contains(&r.event.as_str()) {
        return Err(CompatError::bad_request(format!(
            "event must be one of {}",
            smsgate::EVENTS.join(", ")
        )));
    }
    if let Some(id) = &r.id
        && (id.is_empty()
            || id.len() > 36
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')))
    {
        return Err(CompatError::bad_request(
            "id must be 1 to 36 characters of A-Z a-z 0-9 _ -",
        ));
    }
    let url = ssrf::check_url(&r.url, policy)
        .map_err(|e| CompatError::bad_request(format!("url: {e}")))?;
    let mut events = vec![r.event.clone()];
    if let Some(d) = r.device_id.as_deref().filter(|d| !d.is_empty()) {
        events.push(format!("{DEVICE_PREFIX}{d}"));
    }
    Ok((url.to_string(), events))
}

/// `POST /webhooks`: 201 with the stored webhook; the same `id` replaces the registration.
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<Register>,
) -> CResult<Response> {
    let policy = UrlPolicy::new(state.config.webhook_allow_cidrs.clone());
    let (url, events) = validate(&r, &policy)?;
    let parsed = reqwest::Url::parse(&url).map_err(|_| CompatError::bad_request("url: invalid"))?;
    ssrf::check_name(&parsed, &policy)
        .await
        .map_err(|e| CompatError::bad_request(format!("url: {e}")))?;
    let account = caller.account.clone();
    if let Some(d) = r.device_id.as_deref().filter(|d| !d.is_empty()) {
        let (acc, d) = (account.clone(), d.to_string());
        let phones = state.db.call(move |s| s.list_phones(&acc)).await?;
        if !phones.iter().any(|p| p.id == d) {
            return Err(CompatError::bad_request(
                "deviceId is not one of your devices",
            ));
        }
    }
    let secret = super::settings::signing_key(&state, &account).await?;
    let hook = Webhook {
        id: r
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        url,
        events,
        secret,
        created_at: now_ms(),
    };
    let h = hook.clone();
    let replaced = state
        .db
        .call(move |s| s.upsert_webhook(&account, &h))
        .await?;
    if !replaced {
        return Err(CompatError::bad_request(
            "id is taken: choose another webhook id",
        ));
    }
    let v = view(hook).expect("an SMS Gateway event was stored");
    Ok(json(StatusCode::CREATED, &v))
}

/// `GET /webhooks`: the account's SMS Gateway webhooks.
pub async fn list(State(state): State<AppState>, caller: Caller) -> CResult<Response> {
    let hooks = state
        .db
        .call(move |s| s.list_webhooks(&caller.account))
        .await?;
    let views: Vec<View> = hooks.into_iter().filter_map(view).collect();
    Ok(json(StatusCode::OK, &views))
}

/// `DELETE /webhooks/{id}`: 204 (also for an id the account does not have, as upstream).
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> CResult<StatusCode> {
    state
        .db
        .call(move |s| s.delete_webhook(&caller.account, &id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
