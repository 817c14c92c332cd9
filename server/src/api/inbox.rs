//! `/v1/inbox`: received SMS, and `wait`, which holds a request until a matching SMS arrives
//! (QA tests waiting for an OTP).
//!
//! `wait` matches SMS *stored by the relay* at or after `since` (default: 60 seconds before
//! the call), so an SMS that arrived just before the call matches too. It answers 200 with the
//! newest match, or 408 `wait_timeout` after `timeout` seconds (default 30, at most 300).
//! It subscribes to the in-memory insert notice before it reads the store, so nothing that
//! lands between the read and the wait is missed.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::{Account, Page, PageRequest, parse_time, phone_filter, views};
use crate::AppState;
use crate::error::{ApiQuery, AppError, ErrorBody};
use crate::store::{InboxFilter, now_ms};

/// Default look-back of `wait` when no `since` is given.
pub const WAIT_LOOKBACK_MS: i64 = 60_000;
pub const WAIT_DEFAULT_SECS: u64 = 30;
pub const WAIT_MAX_SECS: u64 = 300;

/// Query of `GET /v1/inbox`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    from: Option<String>,
    contains: Option<String>,
    #[param(format = DateTime)]
    since: Option<String>,
    /// Opaque: the `next_cursor` of the page before.
    #[param(pattern = r"^[0-9]{1,18}$")]
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// `GET /v1/inbox?from=&contains=&since=&cursor=&limit=`: oldest first.
#[utoipa::path(
    get,
    path = "/v1/inbox",
    tag = "inbox",
    params(ListQuery),
    responses(
        (status = 200, description = "received SMS, oldest first", body = Page<views::InboxSms>),
        (status = 400, description = "a query parameter is invalid (`invalid_query`, `invalid_time`)", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<views::InboxSms>>, AppError> {
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit)?;
    let filter = InboxFilter {
        from: phone_filter(q.from),
        contains: q.contains,
        since: parse_time("since", q.since.as_deref())?,
        after_cursor: page.after,
        limit: page.limit,
        newest_first: false,
    };
    let rows = state
        .db
        .call(move |s| s.list_inbox(&account, &filter))
        .await?;
    Ok(Json(Page::of(rows, page, |i| i.cursor)))
}

/// Query of `GET /v1/inbox/wait`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    from: Option<String>,
    contains: Option<String>,
    #[param(format = DateTime)]
    since: Option<String>,
    /// Seconds, at most 300 (default 30).
    #[param(minimum = 0, maximum = 300)]
    timeout: Option<u64>,
}

/// `GET /v1/inbox/wait?from=&contains=&since=&timeout=`.
#[utoipa::path(
    get,
    path = "/v1/inbox/wait",
    tag = "inbox",
    params(WaitQuery),
    responses(
        (status = 200, description = "the newest matching SMS", body = views::InboxSms),
        (status = 400, description = "a query parameter is invalid (`invalid_query`, `invalid_time`)", body = ErrorBody),
        (status = 408, description = "no matching SMS arrived in time (`wait_timeout`)", body = ErrorBody),
        (status = 503, description = "the relay is stopping (`shutting_down`)", body = ErrorBody),
    ),
)]
pub async fn wait(
    State(state): State<AppState>,
    Account(account): Account,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Json<views::InboxSms>, AppError> {
    let secs = q.timeout.unwrap_or(WAIT_DEFAULT_SECS);
    if secs > WAIT_MAX_SECS {
        return Err(AppError::bad_request(
            "invalid_query",
            format!("timeout must be at most {WAIT_MAX_SECS} seconds"),
        ));
    }
    let since = parse_time("since", q.since.as_deref())?.unwrap_or(now_ms() - WAIT_LOOKBACK_MS);
    let filter = InboxFilter {
        from: phone_filter(q.from),
        contains: q.contains,
        since: Some(since),
        after_cursor: None,
        limit: 1,
        newest_first: true,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut notices = state.inbox.subscribe();
    let mut shutdown = state.shutdown.subscribe();
    let stopping = || {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the relay is stopping",
        )
    };
    loop {
        notices.borrow_and_update();
        let (a, f) = (account.clone(), filter.clone());
        let found = state.db.call(move |s| s.list_inbox(&a, &f)).await?;
        if let Some(item) = found.into_iter().next() {
            return Ok(Json(item.into()));
        }
        // A graceful shutdown waits for open requests: waiters must not hold it up.
        let changed = tokio::select! {
            c = tokio::time::timeout_at(deadline, notices.changed()) => c,
            _ = crate::stopped(&mut shutdown) => return Err(stopping()),
        };
        match changed {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return Err(stopping()),
            Err(_) => {
                return Err(AppError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "wait_timeout",
                    "no matching SMS arrived before the timeout",
                ));
            }
        }
    }
}
