//! Spend and volume limits and SMS-pumping protection over HTTP (the rules are
//! `crate::domain::spend`, applied in the create transaction by `crate::store::ops::spend`).
//!
//! * `PUT /v1/accounts/{id}/limits` and `GET` (admin): the operator sets an account's caps,
//!   allowed calling codes and pumping settings.
//! * `GET /v1/account` (read): the caller's account, its limits with used and remaining parts
//!   for today and this month, and its watched prefixes.
//! * `POST /v1/account/paused-prefixes/{prefix}/release` and `.../block` (send): a person
//!   confirms what the pumping protection paused.
//!
//! A send a limit refuses is answered here ([`refusal`]): 429 `limit_reached` or 403
//! `destination_not_allowed` (naming the recipient's index, never its number).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::Account;
use super::views::Timestamp;
use crate::AppState;
use crate::domain::spend::{self, Limits, PrefixState};
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::store::ops::spend::{LimitsReport, PrefixOutcome};
use crate::store::{CreateOutcome, now_ms};

/// The error of a create a limit refused, if it was refused by one. A refusal queued
/// `account.limit_reached` (the first time in its period): the webhook sender is woken.
pub fn refusal(state: &AppState, o: &CreateOutcome) -> Option<AppError> {
    match o {
        CreateOutcome::LimitReached { limit, period } => {
            state.webhook_kick.notify_one();
            Some(AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "limit_reached",
                format!(
                    "the account's `{limit}` cap for {period} would be crossed; nothing was stored"
                ),
            ))
        }
        CreateOutcome::DestinationNotAllowed { idx } => Some(AppError::new(
            StatusCode::FORBIDDEN,
            "destination_not_allowed",
            format!(
                "to[{idx}] is outside this account's allowed destinations (its calling code is not allowed, or its prefix is blocked); nothing was stored"
            ),
        )),
        _ => None,
    }
}

/// One counted limit today or this month.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// `daily`, `monthly` or `daily:<calling code>`.
    pub limit: String,
    /// `2026-12-04` or `2026-12` (UTC).
    pub period: String,
    /// Parts allowed in the period (`null`: no cap).
    pub cap: Option<u64>,
    /// Parts counted in the period.
    pub used: u64,
    /// `cap - used` (`null`: no cap).
    pub remaining: Option<u64>,
}

/// A prefix the pumping protection paused.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PausedPrefix {
    /// The first digits of the numbers after `+`.
    pub prefix: String,
    pub state: PrefixState,
    /// New numbers seen within the window when it was paused.
    pub new_numbers: u64,
    /// Recipients held in it now.
    pub held: u32,
    #[schema(value_type = String, format = DateTime)]
    pub changed_at: Timestamp,
}

/// An account's limits as `GET /v1/account` and `/v1/accounts/{id}/limits` show them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccountLimits {
    pub account: String,
    /// `null`: no limits were set (no caps, every destination, no pumping check).
    pub limits: Option<Limits>,
    /// Today's and this month's counters.
    pub usage: Vec<Usage>,
    /// Calling codes the account may send to; empty: every destination.
    pub allowed_calling_codes: Vec<String>,
    pub paused_prefixes: Vec<PausedPrefix>,
}

impl AccountLimits {
    pub fn of(account: String, r: LimitsReport) -> Self {
        Self {
            account,
            allowed_calling_codes: r
                .limits
                .as_ref()
                .map(|l| l.allowed_calling_codes.clone())
                .unwrap_or_default(),
            limits: r.limits,
            usage: r
                .usage
                .into_iter()
                .map(|(c, cap, used)| Usage {
                    limit: c.limit,
                    period: c.period,
                    cap,
                    used,
                    remaining: cap.map(|c| c.saturating_sub(used)),
                })
                .collect(),
            paused_prefixes: r
                .prefixes
                .into_iter()
                .filter_map(|(p, held)| {
                    Some(PausedPrefix {
                        state: PrefixState::parse(&p.state)?,
                        prefix: p.prefix,
                        new_numbers: p.new_numbers,
                        held,
                        changed_at: Timestamp(p.changed_at),
                    })
                })
                .collect(),
        }
    }
}

async fn report(state: &AppState, account: String) -> Result<AccountLimits, AppError> {
    let acc = account.clone();
    let r = state
        .db
        .call(move |s| s.limits_report(&acc, now_ms()))
        .await?;
    Ok(AccountLimits::of(account, r))
}

async fn known_account(state: &AppState, id: &str) -> Result<(), AppError> {
    let accounts = state.db.call(|s| s.list_accounts()).await?;
    if accounts.iter().any(|a| a.id == id) {
        Ok(())
    } else {
        Err(AppError::not_found())
    }
}

/// `GET /v1/account`: the caller's account and its limits.
#[utoipa::path(
    get,
    path = "/v1/account",
    tag = "limits",
    responses((status = 200, description = "the account, its limits, usage and paused prefixes", body = AccountLimits)),
)]
pub async fn account(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Json<AccountLimits>, AppError> {
    Ok(Json(report(&state, account).await?))
}

/// `GET /v1/accounts/{id}/limits` (admin).
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/limits",
    tag = "limits",
    params(("id" = String, Path, description = "the account id")),
    responses(
        (status = 200, description = "the account's limits", body = AccountLimits),
        (status = 404, description = "no such account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn get_limits(
    State(state): State<AppState>,
    _admin: Account,
    Path(id): Path<String>,
) -> Result<Json<AccountLimits>, AppError> {
    known_account(&state, &id).await?;
    Ok(Json(report(&state, id).await?))
}

/// `PUT /v1/accounts/{id}/limits` (admin): replaces the account's limits.
#[utoipa::path(
    put,
    path = "/v1/accounts/{id}/limits",
    tag = "limits",
    params(("id" = String, Path, description = "the account id")),
    request_body = Limits,
    responses(
        (status = 200, description = "stored; the account's limits", body = AccountLimits),
        (status = 400, description = "a field breaks a rule (`invalid_limits`)", body = ErrorBody),
        (status = 404, description = "no such account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn put_limits(
    State(state): State<AppState>,
    _admin: Account,
    Path(id): Path<String>,
    ApiJson(mut limits): ApiJson<Limits>,
) -> Result<Json<AccountLimits>, AppError> {
    spend::check(&limits).map_err(|m| AppError::bad_request("invalid_limits", m))?;
    known_account(&state, &id).await?;
    limits.allowed_calling_codes.sort();
    limits.allowed_calling_codes.dedup();
    let acc = id.clone();
    state
        .db
        .call(move |s| s.put_account_limits(&acc, &limits, now_ms()))
        .await?;
    Ok(Json(report(&state, id).await?))
}

/// What releasing or blocking answers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PrefixChange {
    pub prefix: String,
    pub state: PrefixState,
    /// Held recipients released to the router (`release`) or failed (`block`).
    pub recipients: u32,
}

fn check_prefix(prefix: &str) -> Result<(), AppError> {
    if (2..=15).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "invalid_prefix",
            "prefix must be 2 to 15 digits (the number after +, cut)",
        ))
    }
}

async fn change(
    state: &AppState,
    account: String,
    prefix: String,
    to: PrefixState,
) -> Result<Json<PrefixChange>, AppError> {
    check_prefix(&prefix)?;
    let p = prefix.clone();
    let out = state
        .db
        .call(move |s| match to {
            PrefixState::Released => s.release_prefix(&account, &p, now_ms()),
            _ => s.block_prefix(&account, &p, now_ms()),
        })
        .await?;
    match out {
        PrefixOutcome::Done(n) => {
            if to == PrefixState::Released {
                state.route_kick.notify_one();
            } else {
                state.webhook_kick.notify_one();
            }
            Ok(Json(PrefixChange {
                prefix,
                state: to,
                recipients: n,
            }))
        }
        PrefixOutcome::NotPaused => Err(AppError::new(
            StatusCode::CONFLICT,
            "prefix_not_paused",
            "the prefix is not paused (or, to release, blocked)",
        )),
    }
}

/// `POST /v1/account/paused-prefixes/{prefix}/release` (send): the held recipients go to
/// the router; the prefix's burst count restarts now.
#[utoipa::path(
    post,
    path = "/v1/account/paused-prefixes/{prefix}/release",
    tag = "limits",
    params(("prefix" = String, Path, description = "the paused (or blocked) prefix")),
    responses(
        (status = 200, description = "released", body = PrefixChange),
        (status = 400, description = "not 2 to 15 digits (`invalid_prefix`)", body = ErrorBody),
        (status = 409, description = "not paused or blocked (`prefix_not_paused`)", body = ErrorBody),
    ),
)]
pub async fn release(
    State(state): State<AppState>,
    Account(account): Account,
    Path(prefix): Path<String>,
) -> Result<Json<PrefixChange>, AppError> {
    change(&state, account, prefix, PrefixState::Released).await
}

/// `POST /v1/account/paused-prefixes/{prefix}/block` (send): the held recipients end
/// `failed` (`limit_reached`); new sends to the prefix are refused until it is released.
#[utoipa::path(
    post,
    path = "/v1/account/paused-prefixes/{prefix}/block",
    tag = "limits",
    params(("prefix" = String, Path, description = "the paused prefix")),
    responses(
        (status = 200, description = "blocked", body = PrefixChange),
        (status = 400, description = "not 2 to 15 digits (`invalid_prefix`)", body = ErrorBody),
        (status = 409, description = "not paused (`prefix_not_paused`)", body = ErrorBody),
    ),
)]
pub async fn block(
    State(state): State<AppState>,
    Account(account): Account,
    Path(prefix): Path<String>,
) -> Result<Json<PrefixChange>, AppError> {
    change(&state, account, prefix, PrefixState::Blocked).await
}

/// The account's limit figures for its `/metrics`: parts used and remaining per limit (today
/// and this month), and its paused prefixes.
pub async fn metrics(state: &AppState, account: &str, out: &mut String) -> Result<(), AppError> {
    use std::fmt::Write;
    let r = report(state, account.to_string()).await?;
    let _ = writeln!(
        out,
        "# HELP simrelay_limit_used Parts counted in the limit's current period.\n# TYPE simrelay_limit_used gauge"
    );
    for u in &r.usage {
        let _ = writeln!(
            out,
            "simrelay_limit_used{{limit=\"{}\",period=\"{}\"}} {}",
            u.limit, u.period, u.used
        );
    }
    let _ = writeln!(
        out,
        "# HELP simrelay_limit_remaining Parts left under the limit's cap in its current period.\n# TYPE simrelay_limit_remaining gauge"
    );
    for u in &r.usage {
        if let Some(left) = u.remaining {
            let _ = writeln!(
                out,
                "simrelay_limit_remaining{{limit=\"{}\",period=\"{}\"}} {left}",
                u.limit, u.period
            );
        }
    }
    let paused = r
        .paused_prefixes
        .iter()
        .filter(|p| p.state == PrefixState::Paused)
        .count();
    let _ = writeln!(
        out,
        "# HELP simrelay_paused_prefixes Prefixes paused by the pumping protection, waiting for a person.\n# TYPE simrelay_paused_prefixes gauge\nsimrelay_paused_prefixes {paused}"
    );
    Ok(())
}
