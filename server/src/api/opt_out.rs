//! `/v1/account/opt-out`: the account's opt-out settings — the automatic replies to opt-out,
//! opt-in and help keywords, its own help keywords, and whether a message may be sent
//! `transactional` (to suppressed numbers too). The rules are `crate::domain::auto_reply`.
//!
//! `GET` needs the `read` scope, `PUT` the `send` scope. `PUT` replaces the whole settings:
//! a field left out takes its default (no reply, no override, no extra keyword). Bad
//! settings are a 400 (`invalid_reply`, `invalid_keyword`, `invalid_body`) and change nothing.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::Account;
use crate::AppState;
use crate::domain::auto_reply::OptOutSettings;
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::store::now_ms;

/// The account's opt-out settings (`GET` answers them, `PUT` takes and answers them).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOutBody {
    /// The reply to an opt-out keyword (STOP, ...), at most 3 SMS parts; `null`: no reply.
    /// It goes out although the number is now suppressed.
    #[serde(default)]
    #[schema(min_length = 1)]
    pub opt_out_reply: Option<String>,
    /// The reply to an opt-in keyword (START, ...); `null`: no reply.
    #[serde(default)]
    #[schema(min_length = 1)]
    pub opt_in_reply: Option<String>,
    /// The reply to a help keyword (HELP, INFO, the account's own); `null`: no reply.
    #[serde(default)]
    #[schema(min_length = 1)]
    pub help_reply: Option<String>,
    /// Whether `POST /v1/messages` may carry `transactional: true`.
    #[serde(default)]
    pub allow_override: bool,
    /// Help keywords besides the relay's (each 1 to 64 bytes; at most 20).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub help_keywords: Vec<String>,
}

impl From<OptOutSettings> for OptOutBody {
    fn from(s: OptOutSettings) -> Self {
        Self {
            opt_out_reply: s.opt_out_reply,
            opt_in_reply: s.opt_in_reply,
            help_reply: s.help_reply,
            allow_override: s.allow_override,
            help_keywords: s.help_keywords,
        }
    }
}

impl From<OptOutBody> for OptOutSettings {
    fn from(b: OptOutBody) -> Self {
        Self {
            opt_out_reply: b.opt_out_reply,
            opt_in_reply: b.opt_in_reply,
            help_reply: b.help_reply,
            allow_override: b.allow_override,
            help_keywords: b.help_keywords,
        }
    }
}

/// `GET /v1/account/opt-out`.
#[utoipa::path(
    get,
    path = "/v1/account/opt-out",
    tag = "suppressions",
    responses(
        (status = 200, description = "the account's opt-out settings (the defaults if never set)", body = OptOutBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Json<OptOutBody>, AppError> {
    let s = state.db.call(move |s| s.opt_out_settings(&account)).await?;
    Ok(Json(s.into()))
}

/// `PUT /v1/account/opt-out`: replaces the settings.
#[utoipa::path(
    put,
    path = "/v1/account/opt-out",
    tag = "suppressions",
    request_body = OptOutBody,
    responses(
        (status = 200, description = "stored", body = OptOutBody),
        (status = 400, description = "a reply longer than 3 SMS parts or empty (`invalid_reply`), a bad help keyword (`invalid_keyword`), or a bad body", body = ErrorBody),
    ),
)]
pub async fn put(
    State(state): State<AppState>,
    Account(account): Account,
    ApiJson(body): ApiJson<OptOutBody>,
) -> Result<Json<OptOutBody>, AppError> {
    let settings = OptOutSettings::from(body);
    settings
        .validate()
        .map_err(|e| AppError::bad_request(e.code, e.message))?;
    let now = now_ms();
    let stored = settings.clone();
    state
        .db
        .call(move |s| s.put_opt_out_settings(&account, &stored, now))
        .await?;
    Ok(Json(settings.into()))
}
