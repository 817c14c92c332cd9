//! `/v1/messages`: send, read, list and cancel outgoing SMS.
//!
//! Limits (documented in docs/protocol.md, "HTTP API"): 1 to 1000 recipients, each E.164
//! (`^\+[1-9][0-9]{1,14}$`) and distinct; text of 1 to 1600 characters; a client id of at
//! most 64 characters from `[A-Za-z0-9._:-]`; priority -128..=127; a `sim` (sub_id, 0 or
//! more) that some phone could have (see [`check_sim`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Account, Page, PageRequest, openapi, parse_time, views};
use crate::AppState;
use crate::domain::MessageStatus;
use crate::error::{ApiJson, ApiQuery, AppError, ErrorBody};
use crate::store::{
    CancelOutcome, CreateOutcome, MessageFilter, NewMessage, PhoneRow, SuppressionOverride, now_ms,
};

pub use simrelay_protocol::{MAX_RECIPIENTS, is_e164};
pub const MAX_TEXT_CHARS: usize = 1600;
pub const MAX_ID_CHARS: usize = 64;

/// Body of `POST /v1/messages`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    #[schema(value_type = Vec<openapi::E164>, min_items = 1, max_items = 1000)]
    pub to: Vec<String>,
    #[schema(min_length = 1, max_length = 1600)]
    pub text: String,
    /// The message id (the idempotency key); generated when not given.
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub id: Option<String>,
    #[serde(default)]
    #[schema(minimum = -128, maximum = 127)]
    pub priority: Option<i32>,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub valid_until: Option<String>,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub schedule_at: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub phone: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub sim: Option<i32>,
    /// A SIM pool of the account (not with `phone` or `sim`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub pool: Option<String>,
    #[serde(default)]
    pub delivery_report: Option<bool>,
    /// Send to numbers on the suppression list too (a transactional message, such as a
    /// one-time code): only for an account whose opt-out settings have `allow_override`,
    /// else the whole request is refused (403 `override_not_allowed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactional: Option<bool>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Checks a request and turns it into a [`NewMessage`].
pub fn validate(account: &str, req: &SendRequest, now: i64) -> Result<NewMessage, AppError> {
    if req.to.is_empty() {
        return Err(AppError::bad_request(
            "no_recipients",
            "to must list at least one number",
        ));
    }
    if req.to.len() > MAX_RECIPIENTS {
        return Err(AppError::bad_request(
            "too_many_recipients",
            format!("to lists more than {MAX_RECIPIENTS} numbers"),
        ));
    }
    for (i, n) in req.to.iter().enumerate() {
        if !is_e164(n) {
            return Err(AppError::bad_request(
                "invalid_number",
                format!("to[{i}] is not an E.164 number (+ then 2 to 15 digits)"),
            ));
        }
        if req.to[..i].contains(n) {
            return Err(AppError::bad_request(
                "duplicate_recipient",
                format!("to[{i}] repeats an earlier number"),
            ));
        }
    }
    let chars = req.text.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        return Err(AppError::bad_request(
            "invalid_text",
            format!("text must have 1 to {MAX_TEXT_CHARS} characters (has {chars})"),
        ));
    }
    if let Some(id) = &req.id
        && !valid_id(id)
    {
        return Err(AppError::bad_request(
            "invalid_id",
            format!("id must be 1 to {MAX_ID_CHARS} characters of A-Z a-z 0-9 . _ : -"),
        ));
    }
    let priority = req.priority.unwrap_or(0);
    if !(-128..=127).contains(&priority) {
        return Err(AppError::bad_request(
            "invalid_priority",
            "priority must be -128..=127",
        ));
    }
    let valid_until = parse_time("valid_until", req.valid_until.as_deref())?;
    if valid_until.is_some_and(|v| v <= now) {
        return Err(AppError::bad_request(
            "invalid_time",
            "valid_until is in the past",
        ));
    }
    let schedule_at = parse_time("schedule_at", req.schedule_at.as_deref())?;
    if let (Some(s), Some(v)) = (schedule_at, valid_until)
        && s >= v
    {
        return Err(AppError::bad_request(
            "invalid_time",
            "schedule_at is not before valid_until",
        ));
    }
    if req
        .phone
        .as_deref()
        .is_some_and(|p| p.is_empty() || p.len() > 64)
    {
        return Err(AppError::bad_request(
            "unknown_phone",
            "phone is not a phone id",
        ));
    }
    if req.sim.is_some_and(|s| s < 0) {
        return Err(AppError::bad_request(
            "invalid_sim",
            "sim must be a sub_id, 0 or more",
        ));
    }
    if let Some(pool) = &req.pool {
        if req.phone.is_some() || req.sim.is_some() {
            return Err(AppError::bad_request(
                "invalid_target",
                "pool cannot be combined with phone or sim",
            ));
        }
        if !super::pools::valid_pool_name(pool) {
            return Err(AppError::bad_request(
                "unknown_pool",
                "pool is not one of this account's pools",
            ));
        }
    }
    let body_hash = hex::encode(Sha256::digest(
        serde_json::to_vec(req).expect("the request serialises"),
    ));
    Ok(NewMessage {
        account_id: account.to_string(),
        id: req
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        body_hash,
        to: req.to.clone(),
        text: req.text.clone(),
        priority,
        valid_until,
        schedule_at,
        phone_id: req.phone.clone(),
        sim: req.sim,
        pool: req.pool.clone(),
        delivery_report: req.delivery_report.unwrap_or(true),
        encrypted: false,
        data_port: None,
        created_at: now,
        suppression_override: (req.transactional == Some(true))
            .then_some(SuppressionOverride::Transactional),
    })
}

/// Refuses a `sim` that can never be routed: with `phone`, a SIM that phone does not report;
/// without, a SIM that no phone of the account reports. A phone that has reported no SIM yet
/// (never connected, or listed none) may still have it, so it keeps the message acceptable.
/// An unknown `phone` is left to the store (`unknown_phone`).
pub fn check_sim(phones: &[PhoneRow], phone: Option<&str>, sim: i32) -> Result<(), AppError> {
    let may_have = |p: &PhoneRow| super::pools::reports_sim(p, sim) != Some(false);
    match phone {
        Some(id) => match phones.iter().find(|p| p.id == id) {
            Some(p) if !may_have(p) => Err(AppError::bad_request(
                "unknown_sim",
                "the phone reports no SIM with that sub_id",
            )),
            _ => Ok(()),
        },
        None if phones.iter().any(may_have) => Ok(()),
        None => Err(AppError::bad_request(
            "unknown_sim",
            "no phone of this account reports a SIM with that sub_id",
        )),
    }
}

/// The state SMS Gateway for Android clients expect for one of ours.
pub fn smsgate_state(state: &str) -> &'static str {
    match state {
        "pending" | "held" => "Pending",
        "queued" | "sending" => "Processed",
        "sent" | "unknown" => "Sent",
        "delivered" => "Delivered",
        "cancelling" => "Cancelling",
        "cancelled" => "Cancelled",
        _ => "Failed",
    }
}

/// `POST /v1/messages`.
#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "messages",
    request_body = SendRequest,
    responses(
        (status = 202, description = "stored; also the answer for a repeated id with the same body", body = views::Message),
        (status = 400, description = "a field breaks a rule (`invalid_number`, `invalid_text`, `unknown_sim`, ...)", body = ErrorBody),
        (status = 403, description = "a recipient is outside the account's allowed destinations (`destination_not_allowed`)", body = ErrorBody),
        (status = 403, description = "`transactional` without the account's `allow_override` (`override_not_allowed`)", body = ErrorBody),
        (status = 409, description = "the id exists with a different body (`id_conflict`)", body = ErrorBody),
        (status = 429, description = "a cap of the account would be crossed (`limit_reached`)", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    ApiJson(req): ApiJson<SendRequest>,
) -> Result<Response, AppError> {
    let m = validate(&account, &req, now_ms())?;
    if let Some(sim) = req.sim {
        let acc = account.clone();
        let phones = state.db.call(move |s| s.list_phones(&acc)).await?;
        check_sim(&phones, req.phone.as_deref(), sim)?;
    }
    match state.committer.create(m).await? {
        CreateOutcome::Created(v) | CreateOutcome::Existing(v) => {
            state.created(&v);
            Ok((StatusCode::ACCEPTED, Json(views::Message::from(v))).into_response())
        }
        CreateOutcome::Conflict => Err(AppError::new(
            StatusCode::CONFLICT,
            "id_conflict",
            "a message with this id exists with a different body",
        )),
        CreateOutcome::UnknownPhone => Err(AppError::bad_request(
            "unknown_phone",
            "phone is not one of this account's phones",
        )),
        CreateOutcome::UnknownPool => Err(AppError::bad_request(
            "unknown_pool",
            "pool is not one of this account's pools",
        )),
        CreateOutcome::OverrideNotAllowed => Err(AppError::new(
            StatusCode::FORBIDDEN,
            "override_not_allowed",
            "transactional needs the account's opt-out setting allow_override \
             (PUT /v1/account/opt-out)",
        )),
        o @ (CreateOutcome::LimitReached { .. } | CreateOutcome::DestinationNotAllowed { .. }) => {
            Err(super::limits::refusal(&state, &o).expect("a limit's refusal"))
        }
    }
}

/// `GET /v1/messages/{id}`.
#[utoipa::path(
    get,
    path = "/v1/messages/{id}",
    tag = "messages",
    params(("id" = String, Path, description = "the message id")),
    responses(
        (status = 200, description = "the message", body = views::Message),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn get_one(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<Json<views::Message>, AppError> {
    let v = state
        .db
        .call(move |s| s.get_message(&account, &id))
        .await?
        .ok_or_else(AppError::not_found)?;
    Ok(Json(v.into()))
}

/// `GET /v1/messages/{id}/history`: the timeline of every recipient (not paged).
#[utoipa::path(
    get,
    path = "/v1/messages/{id}/history",
    tag = "messages",
    params(("id" = String, Path, description = "the message id")),
    responses(
        (status = 200, description = "every change of every recipient (not paged)", body = Page<views::HistoryItem>),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn history(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<Json<Page<views::HistoryItem>>, AppError> {
    let rows = state
        .db
        .call(move |s| s.message_history(&account, &id))
        .await?
        .ok_or_else(AppError::not_found)?;
    Ok(Json(Page::all(rows)))
}

/// Query of `GET /v1/messages`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(value_type = Option<MessageStatus>)]
    state: Option<String>,
    #[param(format = DateTime)]
    since: Option<String>,
    #[param(value_type = Option<openapi::E164>)]
    to: Option<String>,
    /// Opaque: the `next_cursor` of the page before.
    #[param(pattern = r"^[0-9]{1,18}$")]
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// `GET /v1/messages?state=&since=&to=&cursor=&limit=`: oldest first, `next_cursor` to go
/// on. `to` keeps the messages with a recipient of that number (a scan of the account's
/// messages in order, each checked by its recipients' key).
#[utoipa::path(
    get,
    path = "/v1/messages",
    tag = "messages",
    params(ListQuery),
    responses(
        (status = 200, description = "messages, oldest first", body = Page<views::Message>),
        (status = 400, description = "a query parameter is invalid (`invalid_query`, `invalid_time`)", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<views::Message>>, AppError> {
    const STATES: [&str; 12] = [
        "pending",
        "cancelling",
        "queued",
        "sending",
        "sent",
        "delivered",
        "failed",
        "expired",
        "cancelled",
        "unknown",
        "suppressed",
        "held",
    ];
    if q.state.as_deref().is_some_and(|s| !STATES.contains(&s)) {
        return Err(AppError::bad_request(
            "invalid_query",
            "state is not a message state",
        ));
    }
    let to = super::phone_filter(q.to);
    if to.as_deref().is_some_and(|n| !is_e164(n)) {
        return Err(AppError::bad_request(
            "invalid_query",
            "to must be an E.164 number, such as +15551230000",
        ));
    }
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let filter = MessageFilter {
        state: q.state.as_deref().and_then(MessageStatus::parse),
        since: parse_time("since", q.since.as_deref())?,
        to,
        after_cursor: page.after,
        limit: page.limit,
    };
    let rows = state
        .db
        .call(move |s| s.list_messages(&account, &filter))
        .await?;
    Ok(Json(Page::of(rows, page, |v| v.cursor)))
}

/// `DELETE /v1/messages/{id}`: cancels what has not reached a radio.
#[utoipa::path(
    delete,
    path = "/v1/messages/{id}",
    tag = "messages",
    params(("id" = String, Path, description = "the message id")),
    responses(
        (status = 200, description = "cancelled, or cancelling where a phone holds a recipient", body = views::Message),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
        (status = 409, description = "every recipient is with a radio or final (`not_cancellable`)", body = ErrorBody),
    ),
)]
pub async fn cancel(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<Json<views::Message>, AppError> {
    let now = now_ms();
    match state
        .db
        .call(move |s| s.cancel_message(&account, &id, now))
        .await?
    {
        CancelOutcome::NotFound => Err(AppError::not_found()),
        CancelOutcome::NotCancellable(_) => Err(AppError::new(
            StatusCode::CONFLICT,
            "not_cancellable",
            "every recipient is already with a radio or final",
        )),
        CancelOutcome::Cancelled { view, phones } => {
            for p in &phones {
                state.hub.kick(p);
            }
            Ok(Json(view.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smsgate_mapping_covers_every_state() {
        assert_eq!(smsgate_state("pending"), "Pending");
        assert_eq!(smsgate_state("queued"), "Processed");
        assert_eq!(smsgate_state("unknown"), "Sent");
        assert_eq!(smsgate_state("expired"), "Failed");
        assert_eq!(smsgate_state("cancelling"), "Cancelling");
    }
}
