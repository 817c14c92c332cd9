//! The HTTP API: routes, API-key authentication and scopes, and shared helpers.
//!
//! Every `/v1/*` route except `/v1/link` (the phones' WebSocket, authenticated by device
//! token) needs `Authorization: Bearer <api key>`. Keys are stored as SHA-256 hashes and
//! looked up on every request (a revoked key is refused at once); a key sees only its own
//! account, and a resource of another account is answered 404. The scope a route needs comes
//! from one table ([`auth::required`]) applied here, by the [`Caller`] extractor (and
//! [`Account`], which handlers take): a key without it gets 403 `insufficient_scope`.
//!
//! A request without an `Authorization` header may instead carry a dashboard session cookie
//! ([`crate::dashboard::session`]): it stands for the key or user that signed in, and a
//! state-changing request needs the session's CSRF token as well.
//!
//! What handlers answer is typed in [`views`] (one type per documented shape); every list
//! answers [`Page`], whose paging rule ([`page`]) the paged lists share. The routes and their
//! OpenAPI description (`GET /openapi.json`) are registered together, in [`openapi`].

pub mod auth;
pub mod bodies;
pub mod inbox;
pub mod keys;
pub mod limits;
pub mod messages;
pub mod openapi;
pub mod opt_out;
pub mod page;
pub mod phones;
pub mod pools;
pub mod suppressions;
pub mod suppressions_csv;
pub mod users;
pub mod views;
pub mod webhooks;

use axum::Router;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::AppError;
use auth::{Need, Scope, Scopes};
pub use page::{PAGE_MAX, Page, PageRequest, page_limit, parse_cursor};

/// All routes of the relay: the described ones of [`openapi::router`] and `/v1/link`, the
/// compatible API, the JSON 404 and 405.
pub fn routes() -> Router<AppState> {
    let (described, _) = openapi::router().split_for_parts();
    described
        .route(simrelay_protocol::WS_PATH, get(crate::hub::upgrade))
        .merge(crate::compat::routes())
        .merge(crate::dashboard::routes())
        .fallback(|| async { AppError::not_found() })
        .method_not_allowed_fallback(|| async {
            AppError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not take that method",
            )
        })
}

/// SHA-256 of a secret (API key, device token, pairing code), lowercase hex.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A random secret of `bytes` random bytes, hex encoded.
pub fn random_secret(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// The account of the request's API key, once the key was found to have the scope the route
/// needs (see [`Caller`]).
#[derive(Debug, Clone)]
pub struct Account(pub String);

/// The request's API key: authenticated, and checked against the scope table for the
/// request's method and matched route.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub account: String,
    pub scopes: Scopes,
}

impl Caller {
    /// Authenticates the `Authorization` header without checking a scope.
    pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Self, AppError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            // A signed-in dashboard page: its session cookie (and CSRF token) instead.
            return crate::dashboard::session_caller(parts, state).await;
        };
        let key = auth::parse_bearer(value.as_bytes())
            .map_err(|_| AppError::unauthorized("expected Authorization: Bearer <api key>"))?;
        match state.authenticate_key(key).await? {
            Some(k) => Ok(Caller {
                key_id: k.id,
                account: k.account_id,
                scopes: Scopes::from_stored(&k.scopes),
            }),
            None => Err(AppError::unauthorized("unknown or revoked API key")),
        }
    }

    /// 403 `insufficient_scope` unless the key allows `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AppError> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(insufficient_scope(scope.name()))
        }
    }
}

/// The 403 for a key that lacks a scope.
pub fn insufficient_scope(scope: &str) -> AppError {
    AppError::new(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        format!("this API key lacks the `{scope}` scope"),
    )
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let caller = Caller::authenticate(parts, state).await?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_string(), |m| m.as_str().to_string());
        match auth::required(parts.method.as_str(), &route) {
            Need::AnyKey => {}
            Need::Scope(scope) => caller.require(scope)?,
        }
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for Account {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Caller::from_request_parts(parts, state)
            .await
            .map(|c| Account(c.account))
    }
}

/// Parses an optional RFC 3339 field, naming it in the error.
pub fn parse_time(field: &'static str, value: Option<&str>) -> Result<Option<i64>, AppError> {
    match value {
        None => Ok(None),
        Some(v) => crate::time_fmt::parse_rfc3339(v).map(Some).ok_or_else(|| {
            AppError::bad_request(
                "invalid_time",
                format!("{field} must be an RFC 3339 timestamp"),
            )
        }),
    }
}

/// A phone-number filter as decoded from a query string. An unencoded `+` (`from=+1555...`)
/// arrives as a space, and a number never starts with one: a leading space before a digit is
/// the `+`. (`%2B` works as well; an alphanumeric sender keeps its inner spaces.)
pub fn phone_filter(value: Option<String>) -> Option<String> {
    value.map(|v| match v.strip_prefix(' ') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
        _ => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plus_in_a_phone_filter_is_never_a_space() {
        let f = |v: &str| phone_filter(Some(v.to_string())).expect("some");
        assert_eq!(f(" 15550001234"), "+15550001234");
        assert_eq!(f("+15550001234"), "+15550001234");
        assert_eq!(f("ACME Bank"), "ACME Bank");
        assert_eq!(f(" ACME"), " ACME");
        assert_eq!(phone_filter(None), None);
    }
}
