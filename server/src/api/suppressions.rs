//! `/v1/suppressions`: the account's suppression list (numbers that opted out). Nothing is
//! sent to a listed number: a recipient of a new message that is listed ends `suppressed`.
//!
//! Numbers join the list by an opt-out keyword SMS (`STOP`, ...; `crate::domain::optout`) or
//! by `POST` (keyword `manual`), and leave it by an opt-in keyword (`START`, ...) or by
//! `DELETE`. Reading needs the `read` scope, changing needs `send`. `POST` of a listed
//! number is `409 already_suppressed` (the entry is kept as it was). Numbers are E.164;
//! error texts never repeat them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::views::Timestamp;
use super::{Account, Page, PageRequest, messages::is_e164};
use crate::AppState;
use crate::error::{ApiJson, ApiQuery, AppError, ErrorBody};
use crate::store::now_ms;

/// A listed number.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suppression {
    #[schema(value_type = super::openapi::E164)]
    pub number: String,
    /// The normalised keyword of the SMS that added it (`stop`, `opt out`, ...), or `manual`.
    pub keyword: String,
    /// The phone and SIM the keyword came in on (`null` for `manual`).
    pub phone: Option<String>,
    pub sim: Option<i32>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<crate::store::Suppression> for Suppression {
    fn from(s: crate::store::Suppression) -> Self {
        Self {
            number: s.number,
            keyword: s.keyword,
            phone: s.phone,
            sim: s.sim,
            created_at: Timestamp(s.created_at),
        }
    }
}

/// Query of `GET /v1/suppressions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Opaque: the `next_cursor` of the page before.
    #[param(pattern = r"^[0-9]{1,18}$")]
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Body of `POST /v1/suppressions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSuppression {
    #[schema(value_type = super::openapi::E164)]
    number: String,
}

fn check_number(n: &str) -> Result<(), AppError> {
    if is_e164(n) {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "invalid_number",
            "number must be an E.164 number, such as +15551230000",
        ))
    }
}

/// `GET /v1/suppressions?cursor=&limit=`: oldest first.
#[utoipa::path(
    get,
    path = "/v1/suppressions",
    tag = "suppressions",
    params(ListQuery),
    responses(
        (status = 200, description = "listed numbers, oldest first", body = Page<Suppression>),
        (status = 400, description = "a query parameter is invalid (`invalid_query`)", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Suppression>>, AppError> {
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let rows = state
        .db
        .call(move |s| s.list_suppressions(&account, page.after, page.limit))
        .await?;
    Ok(Json(Page::of(rows, page, |s| s.cursor)))
}

/// `POST /v1/suppressions`: adds a number by hand.
#[utoipa::path(
    post,
    path = "/v1/suppressions",
    tag = "suppressions",
    request_body = AddSuppression,
    responses(
        (status = 201, description = "listed", body = Suppression),
        (status = 400, description = "not an E.164 number (`invalid_number`), or a bad body", body = ErrorBody),
        (status = 409, description = "already listed (`already_suppressed`)", body = ErrorBody),
    ),
)]
pub async fn add(
    State(state): State<AppState>,
    Account(account): Account,
    ApiJson(req): ApiJson<AddSuppression>,
) -> Result<(StatusCode, Json<Suppression>), AppError> {
    check_number(&req.number)?;
    let now = now_ms();
    let number = req.number.clone();
    if !state
        .db
        .call(move |s| s.add_suppression(&account, &number, now))
        .await?
    {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "already_suppressed",
            "the number is already on the suppression list",
        ));
    }
    let s = crate::store::Suppression {
        cursor: 0,
        number: req.number,
        keyword: crate::domain::optout::MANUAL.to_string(),
        phone: None,
        sim: None,
        created_at: now,
    };
    Ok((StatusCode::CREATED, Json(s.into())))
}

/// `DELETE /v1/suppressions/{number}`: sends to the number go out again.
#[utoipa::path(
    delete,
    path = "/v1/suppressions/{number}",
    tag = "suppressions",
    params(("number" = String, Path, description = "the E.164 number (`+` may be written `%2B`)")),
    responses(
        (status = 204, description = "removed"),
        (status = 400, description = "not an E.164 number (`invalid_number`)", body = ErrorBody),
        (status = 404, description = "not listed (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    Account(account): Account,
    Path(number): Path<String>,
) -> Result<StatusCode, AppError> {
    check_number(&number)?;
    if state
        .db
        .call(move |s| s.remove_suppression(&account, &number))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found())
    }
}
