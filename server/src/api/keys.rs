//! `/v1/keys` (the caller's account's keys: create, list, revoke) and `/v1/accounts` (admin
//! keys: create an account with its first key, list accounts).
//!
//! A secret is shown once, in the answer that creates it; afterwards a key shows its prefix.
//! A key can only give a new key scopes it has itself, and can only revoke keys whose scopes
//! it has; a key of another account is 404.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::auth::{self, Scopes};
use super::{Caller, Page, hash_secret, insufficient_scope, views};
use crate::AppState;
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::store::now_ms;
use crate::store::{NewKey, Revoked};

/// Body of `POST /v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]{1,64}$")]
    pub name: String,
    #[schema(value_type = Vec<super::openapi::ScopeName>, min_items = 1)]
    pub scopes: Vec<String>,
}

/// Body of `POST /v1/accounts`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    #[schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]{1,64}$")]
    pub name: Option<String>,
    /// Name of the account's first key (default "first key").
    #[schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]{1,64}$")]
    pub key_name: Option<String>,
    /// Scopes of the first key (default: every scope but `admin`).
    #[schema(value_type = Option<Vec<super::openapi::ScopeName>>, min_items = 1)]
    pub key_scopes: Option<Vec<String>>,
}

/// A name of 1 to 64 characters without control characters.
pub fn check_name(field: &'static str, name: &str) -> Result<String, AppError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 64 || n.chars().any(char::is_control) {
        return Err(AppError::bad_request(
            "invalid_name",
            format!("{field} must be 1 to 64 characters without control characters"),
        ));
    }
    Ok(n.to_string())
}

/// Parses requested scopes: known names, at least one, all held by the caller.
pub fn check_scopes(caller: Scopes, names: &[String]) -> Result<Scopes, AppError> {
    let scopes = Scopes::from_names(names.iter().map(String::as_str)).map_err(|_| {
        AppError::bad_request(
            "invalid_scope",
            "scopes must be among send, read, phones, webhooks, admin",
        )
    })?;
    if scopes.is_empty() {
        return Err(AppError::bad_request(
            "invalid_scope",
            "a key needs at least one scope",
        ));
    }
    if let Some(missing) = auth::Scope::ALL
        .into_iter()
        .find(|s| scopes.contains(*s) && !caller.allows(*s))
    {
        return Err(insufficient_scope(missing.name()));
    }
    Ok(scopes)
}

/// A new key row and its secret.
pub fn new_key(account: &str, name: String, scopes: Scopes) -> (NewKey, String) {
    let secret = auth::generate_key();
    let key = NewKey {
        id: uuid::Uuid::now_v7().to_string(),
        account_id: account.to_string(),
        name,
        prefix: Some(auth::key_prefix(&secret)),
        key_hash: hash_secret(&secret),
        scopes: scopes.to_string(),
        created_at: now_ms(),
    };
    (key, secret)
}

/// `POST /v1/keys`: 201 with the secret (shown this once).
#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "keys",
    request_body = CreateKey,
    responses(
        (status = 201, description = "created; the answer shows the secret once", body = views::Key),
        (status = 400, description = "a field breaks a rule (`invalid_name`, `invalid_scope`)", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<views::Key>), AppError> {
    let name = check_name("name", &req.name)?;
    let scopes = check_scopes(caller.scopes, &req.scopes)?;
    let (key, secret) = new_key(&caller.account, name, scopes);
    let (k, account, id) = (key.clone(), caller.account.clone(), key.id.clone());
    let row = state
        .db
        .call(move |s| {
            s.create_key(&k)?;
            s.get_key(Some(&account), &id)
        })
        .await?
        .ok_or_else(AppError::internal)?;
    Ok((StatusCode::CREATED, Json(views::Key::created(row, secret))))
}

/// `GET /v1/keys`: the account's keys, revoked ones included.
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    responses(
        (status = 200, description = "the account's keys (not paged)", body = Page<views::Key>),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Page<views::Key>>, AppError> {
    let account = caller.account;
    let keys = state.db.call(move |s| s.list_keys(Some(&account))).await?;
    Ok(Json(Page::all(keys)))
}

/// `DELETE /v1/keys/{id}`: 200 with the revoked key; 404 for a key of another account; 403
/// for a key with a scope the caller lacks.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "the key id")),
    responses(
        (status = 200, description = "revoked", body = views::Key),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<views::Key>, AppError> {
    let (account, key_id) = (caller.account.clone(), id.clone());
    let target = state
        .db
        .call(move |s| s.get_key(Some(&account), &key_id))
        .await?
        .ok_or_else(AppError::not_found)?;
    check_scopes(
        caller.scopes,
        &Scopes::from_stored(&target.scopes)
            .names()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    )?;
    let account = caller.account;
    match state
        .db
        .call(move |s| s.revoke_key(Some(&account), &id, now_ms()))
        .await?
    {
        Revoked::Done(row) => Ok(Json(row.into())),
        Revoked::NotFound => Err(AppError::not_found()),
    }
}

/// `POST /v1/accounts` (admin): 201 with the account and its first key's secret.
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "accounts",
    request_body = CreateAccount,
    responses(
        (status = 201, description = "the account and its first key (with its secret, shown once)", body = views::AccountCreated),
        (status = 400, description = "a field breaks a rule (`invalid_name`, `invalid_scope`)", body = ErrorBody),
    ),
)]
pub async fn create_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateAccount>,
) -> Result<(StatusCode, Json<views::AccountCreated>), AppError> {
    let name = req
        .name
        .as_deref()
        .map(|n| check_name("name", n))
        .transpose()?;
    let key_name = check_name("key_name", req.key_name.as_deref().unwrap_or("first key"))?;
    let scopes = match &req.key_scopes {
        Some(names) => check_scopes(caller.scopes, names)?,
        None => Scopes::account(),
    };
    let (key, secret) = new_key("", key_name, scopes);
    let key_id = key.id.clone();
    let (account, row) = state
        .db
        .call(move |s| {
            let id = s.create_account(name.as_deref(), Some(&key), now_ms())?;
            let account = s.list_accounts()?.into_iter().find(|a| a.id == id);
            Ok((account, s.get_key(Some(&id), &key_id)?))
        })
        .await?;
    let (Some(account), Some(row)) = (account, row) else {
        return Err(AppError::internal());
    };
    Ok((
        StatusCode::CREATED,
        Json(views::AccountCreated {
            account: account.into(),
            key: views::Key::created(row, secret),
        }),
    ))
}

/// `GET /v1/accounts` (admin).
#[utoipa::path(
    get,
    path = "/v1/accounts",
    tag = "accounts",
    responses(
        (status = 200, description = "every account (not paged)", body = Page<views::Account>),
    ),
)]
pub async fn list_accounts(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Page<views::Account>>, AppError> {
    let accounts = state.db.call(|s| s.list_accounts()).await?;
    Ok(Json(Page::all(accounts)))
}
