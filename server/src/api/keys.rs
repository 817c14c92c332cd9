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
use serde_json::{Value, json};

use super::auth::{self, Scopes};
use super::{Caller, hash_secret, insufficient_scope};
use crate::AppState;
use crate::error::{ApiJson, AppError};
use crate::store::now_ms;
use crate::store::{AccountRow, KeyRow, NewKey, Revoked};
use crate::time_fmt::fmt_ms;

/// Body of `POST /v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    pub scopes: Vec<String>,
}

/// Body of `POST /v1/accounts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    pub name: Option<String>,
    /// Name of the account's first key (default "first key").
    pub key_name: Option<String>,
    /// Scopes of the first key (default: every scope but `admin`).
    pub key_scopes: Option<Vec<String>>,
}

/// A key as the API shows it; `secret` only in the answer that created it.
pub fn key_json(k: &KeyRow, secret: Option<&str>) -> Value {
    let mut v = json!({
        "id": k.id,
        "account": k.account_id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": Scopes::from_stored(&k.scopes).names(),
        "created_at": fmt_ms(k.created_at),
        "last_used_at": k.last_used_at.map(fmt_ms),
        "revoked_at": k.revoked_at.map(fmt_ms),
    });
    if let Some(s) = secret {
        v["secret"] = json!(s);
    }
    v
}

pub fn account_json(a: &AccountRow) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "created_at": fmt_ms(a.created_at),
        "active_keys": a.active_keys,
    })
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
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), AppError> {
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
    Ok((StatusCode::CREATED, Json(key_json(&row, Some(&secret)))))
}

/// `GET /v1/keys`: the account's keys, revoked ones included.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, AppError> {
    let account = caller.account;
    let keys = state.db.call(move |s| s.list_keys(Some(&account))).await?;
    let items: Vec<Value> = keys.iter().map(|k| key_json(k, None)).collect();
    Ok(Json(json!({ "items": items })))
}

/// `DELETE /v1/keys/{id}`: 200 with the revoked key; 404 for a key of another account; 403
/// for a key with a scope the caller lacks.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
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
        Revoked::Done(row) => Ok(Json(key_json(&row, None))),
        Revoked::NotFound => Err(AppError::not_found()),
    }
}

/// `POST /v1/accounts` (admin): 201 with the account and its first key's secret.
pub async fn create_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateAccount>,
) -> Result<(StatusCode, Json<Value>), AppError> {
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
        Json(json!({
            "account": account_json(&account),
            "key": key_json(&row, Some(&secret)),
        })),
    ))
}

/// `GET /v1/accounts` (admin).
pub async fn list_accounts(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Value>, AppError> {
    let accounts = state.db.call(|s| s.list_accounts()).await?;
    let items: Vec<Value> = accounts.iter().map(account_json).collect();
    Ok(Json(json!({ "items": items })))
}
