//! `/v1/users`: the username/password users of the SMS Gateway for Android compatible API
//! (`crate::compat`), managed like API keys. A user holds every scope of its account, so only
//! a key holding all of them (or an admin key) may create or delete one. The password is
//! stored as an argon2id hash; a generated one is shown once, in the answer that creates it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::{Scope, Scopes};
use super::{Caller, Page, insufficient_scope};
use crate::AppState;
use crate::compat::auth::{check_password, hash_password, valid_login};
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::store::{CompatUser, now_ms};

/// Body of `POST /v1/users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(pattern = r"^[A-Za-z0-9._@-]{1,64}$")]
    pub login: String,
    /// 12 to 256 printable characters; generated (and shown once) when absent.
    #[serde(default)]
    #[schema(pattern = r"^[!-~]{12,256}$")]
    pub password: Option<String>,
    /// An admin key may create the user in another account.
    #[serde(default)]
    pub account: Option<String>,
}

/// A user as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub login: String,
    pub account: String,
    pub created_at: crate::api::views::Timestamp,
    /// Only in the answer that generated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl From<CompatUser> for User {
    fn from(u: CompatUser) -> Self {
        Self {
            login: u.login,
            account: u.account_id,
            created_at: crate::api::views::Timestamp(u.created_at),
            password: None,
        }
    }
}

fn may_manage(caller: &Caller) -> Result<(), AppError> {
    if caller.scopes.covers(Scopes::account()) {
        Ok(())
    } else {
        let missing = Scope::ALL
            .into_iter()
            .find(|s| Scopes::account().contains(*s) && !caller.scopes.allows(*s))
            .unwrap_or(Scope::Admin);
        Err(insufficient_scope(missing.name()))
    }
}

/// Checks a request; the login, the password to hash and whether it was generated.
pub fn validate(req: &CreateUser) -> Result<(String, String, bool), AppError> {
    if !valid_login(&req.login) {
        return Err(AppError::bad_request(
            "invalid_login",
            "login must be 1 to 64 characters of A-Z a-z 0-9 . _ @ -",
        ));
    }
    match &req.password {
        Some(p) => {
            check_password(p).map_err(|m| AppError::bad_request("invalid_password", m))?;
            Ok((req.login.clone(), p.clone(), false))
        }
        None => Ok((req.login.clone(), crate::api::random_secret(16), true)),
    }
}

/// `POST /v1/users`: 201; 409 when the login is taken.
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "created; a generated password is shown once", body = User),
        (status = 400, description = "a field breaks a rule (`invalid_login`, `invalid_password`, `unknown_account`)", body = ErrorBody),
        (status = 409, description = "the login is taken (`login_taken`)", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), AppError> {
    may_manage(&caller)?;
    let account = match &req.account {
        Some(a) if *a != caller.account => {
            caller.require(Scope::Admin)?;
            let (acc, a) = (a.clone(), a.clone());
            let exists = state
                .db
                .call(move |s| s.list_accounts().map(|l| l.iter().any(|r| r.id == acc)))
                .await?;
            if !exists {
                return Err(AppError::bad_request("unknown_account", "no such account"));
            }
            a
        }
        _ => caller.account.clone(),
    };
    let (login, password, generated) = validate(&req)?;
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|_| AppError::internal())?;
    let user = CompatUser {
        login,
        account_id: account,
        password_hash: hash,
        created_at: now_ms(),
    };
    let u = user.clone();
    if !state.db.call(move |s| s.create_compat_user(&u)).await? {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "login_taken",
            "a user with this login exists",
        ));
    }
    let mut out = User::from(user);
    out.password = generated.then_some(password);
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /v1/users`: the account's users.
#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "users",
    responses(
        (status = 200, description = "the account's users (not paged)", body = Page<User>),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Page<User>>, AppError> {
    let users = state
        .db
        .call(move |s| s.list_compat_users(&caller.account))
        .await?;
    Ok(Json(Page::all(users.into_iter().map(User::from))))
}

/// `DELETE /v1/users/{login}`: 204; the user's Basic auth stops working at once.
#[utoipa::path(
    delete,
    path = "/v1/users/{login}",
    tag = "users",
    params(("login" = String, Path, description = "the user's login")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(login): Path<String>,
) -> Result<StatusCode, AppError> {
    may_manage(&caller)?;
    // An admin key may create a user in another account (`account`), so it deletes one there
    // too; any other key only its own account's.
    let admin = caller.scopes.allows(Scope::Admin);
    let deleted = state
        .db
        .call(move |s| {
            let account = match s.compat_user(&login)? {
                Some(u) if admin => u.account_id,
                _ => caller.account,
            };
            s.delete_compat_user(&account, &login)
        })
        .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found())
    }
}
