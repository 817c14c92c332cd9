//! The SMS Gateway for Android compatible API: `/3rdparty/v1/...` on the relay's port, so
//! that the published clients of that project work against simrelay unchanged
//! (`../shared/reference/smsgate-api.md` is the contract; docs/compat.md says what differs).
//!
//! It is a translation layer over the relay's own operations: a message sent here is routed,
//! failed over and deduplicated like any other. Authentication is its own ([`auth`]): Basic
//! users of an account, or JWTs from `/auth/token`. Errors are the upstream shape,
//! `{"message": "...", "code": <status>}`, and every JSON body says `application/json`.

pub mod auth;
pub mod messages;
pub mod misc;
pub mod ping;
pub mod settings;
pub mod views;
pub mod webhooks;

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;

use crate::AppState;
use crate::error::AppError;
use crate::store::now_ms;
use auth::Credentials;

/// The prefix every route of this API is under.
pub const PREFIX: &str = "/3rdparty/v1";

/// The routes, to be merged into the relay's router.
pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/messages", post(messages::send).get(messages::list))
        .route("/message", post(messages::send))
        .route(
            "/messages/{id}",
            get(messages::get_one).delete(messages::cancel),
        )
        .route("/message/{id}", get(messages::get_one))
        .route("/messages/inbox/export", post(misc::export_inbox))
        .route("/inbox/export", post(misc::export_inbox))
        .route("/inbox/refresh", post(misc::refresh_inbox))
        .route("/inbox", get(misc::list_inbox))
        .route("/devices", get(misc::list_devices))
        .route("/device", get(misc::list_devices))
        .route("/devices/{id}", delete(misc::remove_device))
        .route("/device/{id}", delete(misc::remove_device))
        .route("/webhooks", get(webhooks::list).post(webhooks::register))
        .route("/webhooks/{id}", delete(webhooks::remove))
        .route(
            "/settings",
            get(settings::get_settings)
                .put(settings::put_settings)
                .patch(settings::patch_settings),
        )
        .route("/logs", get(misc::logs))
        .route("/auth/token", post(misc::issue_token))
        .route("/auth/token/refresh", post(misc::refresh_token))
        .route("/auth/token/{jti}", delete(misc::revoke_token))
        .merge(health_routes())
        .fallback(|| async { CompatError::new(StatusCode::NOT_FOUND, "no such route") });
    Router::new().nest(PREFIX, api).merge(health_routes())
}

fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(misc::health))
        .route("/health/live", get(misc::liveness))
        .route("/health/ready", get(misc::health))
        .route("/health/startup", get(misc::health))
}

/// An error in the upstream shape.
#[derive(Debug)]
pub struct CompatError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl CompatError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }
}

impl From<AppError> for CompatError {
    fn from(e: AppError) -> Self {
        if e.status.is_server_error() {
            tracing::error!(code = e.code, status = %e.status, "compat request failed");
        }
        Self::new(e.status, e.message)
    }
}

impl From<crate::store::StoreError> for CompatError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::from(e).into()
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    code: u16,
}

impl IntoResponse for CompatError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            message: &self.message,
            code: self.status.as_u16(),
        };
        let mut res = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        res
    }
}

pub type CResult<T> = Result<T, CompatError>;

/// What a caller may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// A Basic user: every scope.
    All,
    /// A JWT's scopes.
    Scopes(Vec<String>),
}

impl Grant {
    pub fn allows(&self, scope: &str) -> bool {
        match self {
            Grant::All => scope != auth::REFRESH_SCOPE,
            Grant::Scopes(s) if scope == auth::REFRESH_SCOPE => s.iter().any(|x| x == scope),
            Grant::Scopes(s) => s.iter().any(|x| x == scope || x == "all:any"),
        }
    }
}

/// An authenticated caller of this API.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: String,
    pub grant: Grant,
    /// The id of the JWT, when the caller used one.
    pub jti: Option<String>,
}

/// The scope each route needs: (method, route below [`PREFIX`], scope). A route missing here
/// needs `all:any` (only Basic users and `all:any` tokens).
const SCOPE_TABLE: &[(&str, &str, &str)] = &[
    ("POST", "/messages", "messages:send"),
    ("POST", "/message", "messages:send"),
    ("GET", "/messages", "messages:list"),
    ("GET", "/messages/{id}", "messages:read"),
    ("GET", "/message/{id}", "messages:read"),
    ("DELETE", "/messages/{id}", "messages:cancel"),
    ("POST", "/messages/inbox/export", "messages:export"),
    ("POST", "/inbox/export", "messages:export"),
    ("POST", "/inbox/refresh", "inbox:refresh"),
    ("GET", "/inbox", "inbox:list"),
    ("GET", "/devices", "devices:list"),
    ("GET", "/device", "devices:list"),
    ("DELETE", "/devices/{id}", "devices:delete"),
    ("DELETE", "/device/{id}", "devices:delete"),
    ("GET", "/webhooks", "webhooks:list"),
    ("POST", "/webhooks", "webhooks:write"),
    ("DELETE", "/webhooks/{id}", "webhooks:delete"),
    ("GET", "/settings", "settings:read"),
    ("PUT", "/settings", "settings:write"),
    ("PATCH", "/settings", "settings:write"),
    ("GET", "/logs", "logs:read"),
    ("POST", "/auth/token", "tokens:manage"),
    ("DELETE", "/auth/token/{jti}", "tokens:manage"),
    ("POST", "/auth/token/refresh", auth::REFRESH_SCOPE),
];

/// The scope a request needs.
pub fn required(method: &str, route: &str) -> &'static str {
    let route = route.strip_prefix(PREFIX).unwrap_or(route);
    SCOPE_TABLE
        .iter()
        .find(|(m, r, _)| *m == method && *r == route)
        .map_or("all:any", |(_, _, s)| s)
}

fn unauthorized(message: &str) -> CompatError {
    CompatError::new(StatusCode::UNAUTHORIZED, message)
}

impl Caller {
    async fn authenticate(parts: &Parts, state: &AppState) -> CResult<Self> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization (Basic or Bearer)"))?;
        match auth::parse_authorization(value.as_bytes()) {
            Some(Credentials::Basic { login, password }) => {
                let peer = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(a)| a.ip());
                check_login(state, peer, login, password)
                    .await
                    .map(|u| Caller::user(&u))
            }
            Some(Credentials::Bearer(token)) => bearer(state, token).await,
            None => Err(unauthorized("expected Authorization: Basic or Bearer")),
        }
    }
}

/// A login and password (a Basic header here, the dashboard's sign-in form): the user they
/// name. A password check remembered from an earlier success costs nothing; any other attempt
/// goes through the login throttle first (`Limits::logins`: failures per source address and
/// overall), so passwords cannot be guessed at the speed of argon2.
pub async fn check_login(
    state: &AppState,
    peer: Option<IpAddr>,
    login: String,
    password: String,
) -> CResult<crate::store::CompatUser> {
    let l = login.clone();
    let user = state.db.call(move |s| s.compat_user(&l)).await?;
    let auth = &state.compat_auth;
    if let Some(u) = user
        .as_ref()
        .filter(|u| auth.remembered(&u.password_hash, &password))
    {
        return Ok(u.clone());
    }
    let limits = state.hub.limits();
    if let Err(refusal) = limits.logins.begin(peer, limits.clock.now()) {
        let wait = refusal.retry_after().as_secs().max(1);
        tracing::info!(
            retry_after_s = wait,
            "Basic login refused: too many failed logins"
        );
        return Err(CompatError {
            retry_after: Some(wait),
            ..CompatError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed logins; retry in {wait} s"),
            )
        });
    }
    let user = user.ok_or_else(|| unauthorized("invalid login or password"))?;
    let _permit = auth
        .checks
        .acquire()
        .await
        .map_err(|_| CompatError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
    let (stored, pw) = (user.password_hash.clone(), password.clone());
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&stored, &pw))
        .await
        .unwrap_or(false);
    if !ok {
        return Err(unauthorized("invalid login or password"));
    }
    limits.logins.succeeded(peer);
    auth.remember(&user.password_hash, &password);
    Ok(user)
}

impl Caller {
    fn user(u: &crate::store::CompatUser) -> Self {
        Self {
            account: u.account_id.clone(),
            grant: Grant::All,
            jti: None,
        }
    }
}

/// The relay's JWT signer (its secret read from, or first written to, the store).
pub async fn signer(state: &AppState) -> CResult<&auth::Signer> {
    if let Some(s) = state.compat_auth.has_signer() {
        return Ok(s);
    }
    let candidate = crate::api::random_secret(32);
    let secret = state
        .db
        .call(move |s| s.relay_secret("jwt_hs256", &candidate))
        .await?;
    Ok(state.compat_auth.signer(|| secret.into_bytes()))
}

async fn bearer(state: &AppState, token: String) -> CResult<Caller> {
    let signer = signer(state).await?;
    let now = now_ms();
    let claims = signer
        .verify(&token, now / 1000)
        .ok_or_else(|| unauthorized("invalid or expired token"))?;
    let jti = claims.jti.clone();
    let row = state
        .db
        .call(move |s| s.token(&jti))
        .await?
        .filter(|t| t.revoked_at.is_none() && t.account_id == claims.sub && t.kind == claims.typ)
        .ok_or_else(|| unauthorized("invalid or revoked token"))?;
    Ok(Caller {
        account: row.account_id,
        grant: Grant::Scopes(claims.scopes),
        jti: Some(claims.jti),
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = CompatError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> CResult<Self> {
        let caller = Caller::authenticate(parts, state).await?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_string(), |m| m.as_str().to_string());
        let scope = required(parts.method.as_str(), &route);
        if !caller.grant.allows(scope) {
            return Err(CompatError::new(
                StatusCode::FORBIDDEN,
                format!("scope required: {scope}"),
            ));
        }
        Ok(caller)
    }
}

/// A JSON answer with a status.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_of_routes_and_grants() {
        assert_eq!(required("POST", "/3rdparty/v1/messages"), "messages:send");
        assert_eq!(
            required("GET", "/3rdparty/v1/message/{id}"),
            "messages:read"
        );
        assert_eq!(required("GET", "/3rdparty/v1/whatever"), "all:any");
        let send = Grant::Scopes(vec!["messages:send".into()]);
        assert!(send.allows("messages:send"));
        assert!(!send.allows("messages:read"));
        let any = Grant::Scopes(vec!["all:any".into()]);
        assert!(any.allows("devices:list"));
        assert!(
            !any.allows(auth::REFRESH_SCOPE),
            "refresh is matched exactly"
        );
        assert!(Grant::All.allows("settings:write"));
        assert!(!Grant::All.allows(auth::REFRESH_SCOPE));
    }
}
