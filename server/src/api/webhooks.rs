//! `/v1/webhooks`: register, list and delete webhook endpoints of an account, read a
//! webhook's delivery log, ping it, and redeliver a dead event.
//!
//! The signing secret is returned once, when the webhook is created (or given by the client).
//! URLs pass the SSRF guard (`crate::webhooks::ssrf`): internal addresses, names resolving to
//! them and `user:pass@` URLs are refused unless the relay's `webhook_allow_cidrs` permits
//! the address.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{Account, Page, random_secret, views};
use crate::AppState;
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::store::{Redeliver, Webhook, now_ms};
use crate::webhooks::ssrf::{self, UrlPolicy, UrlRefusal};

/// Events a webhook may subscribe to.
pub const EVENTS: [&str; 15] = [
    "message.sent",
    "message.delivered",
    "message.failed",
    "message.unknown",
    "message.received",
    "phone.online",
    "phone.offline",
    "phone.removed",
    "sim.quarantined",
    "sim.recovered",
    "message.suppressed",
    "contact.opted_out",
    "contact.opted_in",
    "account.limit_reached",
    "account.pumping_suspected",
];

/// Body of `POST /v1/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    #[schema(format = "uri")]
    url: String,
    #[schema(value_type = Vec<super::openapi::WebhookEvent>, min_items = 1)]
    events: Vec<String>,
    /// At least 16 characters; generated when absent.
    #[serde(default)]
    #[schema(min_length = 16, max_length = 256)]
    secret: Option<String>,
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

fn refused(r: UrlRefusal) -> AppError {
    AppError::bad_request(r.code(), r.to_string())
}

/// [`validate_webhook_with`] without an allow-list.
pub fn validate_webhook(req: CreateWebhook) -> Result<CheckedWebhook, AppError> {
    validate_webhook_with(req, &UrlPolicy::default())
}

/// Checks a webhook request: an http(s) URL with a host, no credentials and no forbidden IP
/// literal (host names are checked by [`create`], which resolves them), 1 or more known
/// events, a secret (if given) of 16 to 256 bytes.
pub fn validate_webhook_with(
    req: CreateWebhook,
    policy: &UrlPolicy,
) -> Result<CheckedWebhook, AppError> {
    let url = ssrf::check_url(&req.url, policy).map_err(refused)?;
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
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "created; the answer shows the signing secret once", body = views::Webhook),
        (status = 400, description = "a field breaks a rule (`invalid_url`, `invalid_event`, `invalid_secret`, ...)", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<views::Webhook>), AppError> {
    let policy = UrlPolicy::new(state.config.webhook_allow_cidrs.clone());
    let checked = validate_webhook_with(req, &policy)?;
    let url = reqwest::Url::parse(&checked.url).map_err(|_| refused(UrlRefusal::Invalid))?;
    ssrf::check_name(&url, &policy).await.map_err(refused)?;
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
    Ok((StatusCode::CREATED, Json(views::Webhook::created(hook))))
}

/// `GET /v1/webhooks`.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "the account's webhooks (not paged)", body = Page<views::Webhook>),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Json<Page<views::Webhook>>, AppError> {
    let hooks = state.db.call(move |s| s.list_webhooks(&account)).await?;
    Ok(Json(Page::all(hooks)))
}

/// `DELETE /v1/webhooks/{id}`: 204, or 404 for an id of another account.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "the webhook id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
    ),
)]
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

async fn owned(state: &AppState, account: &str, id: &str) -> Result<Webhook, AppError> {
    let account = account.to_string();
    let hooks = state.db.call(move |s| s.list_webhooks(&account)).await?;
    hooks
        .into_iter()
        .find(|h| h.id == id)
        .ok_or_else(AppError::not_found)
}

/// Query of `GET /v1/webhooks/{id}/deliveries`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// At most this many attempts (1 to 50, default 50).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<u32>,
}

/// `GET /v1/webhooks/{id}/deliveries`: the webhook's last attempts, newest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = String, Path, description = "the webhook id"), DeliveriesQuery),
    responses(
        (status = 200, description = "the newest delivery attempts (not paged)", body = Page<views::Attempt>),
        (status = 400, description = "a query parameter is invalid (`invalid_query`)", body = ErrorBody),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn deliveries(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<String>,
    query: crate::error::ApiQuery<DeliveriesQuery>,
) -> Result<Json<Page<views::Attempt>>, AppError> {
    let kept = u32::try_from(crate::store::ATTEMPTS_KEPT).unwrap_or(50);
    let limit = match query.0.limit {
        None => kept,
        Some(n) if (1..=kept).contains(&n) => n,
        // As for every list: a changed `limit` would hide a client's bug.
        Some(_) => {
            return Err(AppError::bad_request(
                "invalid_query",
                format!("limit must be between 1 and {kept}"),
            ));
        }
    };
    let items = state
        .db
        .call(move |s| s.list_attempts(&account, &id, limit))
        .await?
        .ok_or_else(AppError::not_found)?;
    Ok(Json(Page::all(items)))
}

/// `POST /v1/webhooks/{id}/ping`: sends a `webhook.ping` event now and answers how it went
/// (200 whatever the receiver answered; `ok` tells).
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/ping",
    tag = "webhooks",
    params(("id" = String, Path, description = "the webhook id")),
    responses(
        (status = 200, description = "the outcome of one signed `ping` delivery", body = views::Ping),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn ping(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<Json<views::Ping>, AppError> {
    let hook = owned(&state, &account, &id).await?;
    let (event_id, sent) = crate::webhooks::ping(&state, &hook).await?;
    Ok(Json(views::Ping {
        event_id,
        ok: sent.error.is_none(),
        status: sent.status,
        duration_ms: sent.duration_ms,
        error: sent.error,
    }))
}

/// `POST /v1/webhooks/{id}/deliveries/{event_id}/redeliver`: queues a dead event again
/// (202), 409 `not_dead` when it is not dead, 404 when the webhook or event is unknown.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/deliveries/{event_id}/redeliver",
    tag = "webhooks",
    params(("id" = String, Path, description = "the webhook id"), ("event_id" = String, Path, description = "the event id")),
    responses(
        (status = 202, description = "queued again", body = views::Redelivery),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
        (status = 409, description = "the delivery is not dead (`not_dead`)", body = ErrorBody),
    ),
)]
pub async fn redeliver(
    State(state): State<AppState>,
    Account(account): Account,
    Path((id, event_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<views::Redelivery>), AppError> {
    let now = now_ms();
    let ev = event_id.clone();
    match state
        .db
        .call(move |s| s.redeliver(&account, &id, &ev, now))
        .await?
    {
        Redeliver::NotFound => Err(AppError::not_found()),
        Redeliver::NotDead(st) => Err(AppError::new(
            StatusCode::CONFLICT,
            "not_dead",
            format!("only a dead delivery can be redelivered; this one is {st}"),
        )),
        Redeliver::Queued => {
            state.webhook_kick.notify_one();
            Ok((
                StatusCode::ACCEPTED,
                Json(views::Redelivery {
                    event_id,
                    delivery_state: "pending",
                }),
            ))
        }
    }
}
