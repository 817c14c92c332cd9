//! The HTTP API: routes, API-key authentication and shared helpers.
//!
//! Every `/v1/*` route except `/v1/link` (the phones' WebSocket, authenticated by device
//! token) needs `Authorization: Bearer <api key>`. Keys are stored as SHA-256 hashes; a key
//! sees only its own account, and a resource of another account is answered 404.

pub mod bodies;
pub mod inbox;
pub mod messages;
pub mod phones;
pub mod pools;
pub mod webhooks;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, post};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::AppError;

/// All routes of the relay.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(crate::metrics::healthz))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/v1/messages", post(messages::create).get(messages::list))
        .route(
            "/v1/messages/{id}",
            get(messages::get_one).delete(messages::cancel),
        )
        .route("/v1/inbox", get(inbox::list))
        .route("/v1/inbox/wait", get(inbox::wait))
        .route("/v1/phones", get(phones::list))
        .route("/v1/phones/{id}", axum::routing::delete(phones::remove))
        .route("/v1/pairing-codes", post(phones::create_pairing_code))
        .route("/v1/pools", post(pools::create).get(pools::list))
        .route("/v1/pools/{name}", axum::routing::delete(pools::delete))
        .route("/v1/pools/{name}/stats", get(pools::stats))
        .route("/v1/sims", get(pools::sims))
        .route(
            "/v1/sims/{phone}/{sub_id}",
            axum::routing::patch(pools::patch_sim),
        )
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/v1/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/webhooks/{id}/ping", post(webhooks::ping))
        .route(
            "/v1/webhooks/{id}/deliveries/{event_id}/redeliver",
            post(webhooks::redeliver),
        )
        .route(simrelay_protocol::WS_PATH, get(crate::hub::upgrade))
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

/// The account of the request's API key.
#[derive(Debug, Clone)]
pub struct Account(pub String);

impl FromRequestParts<AppState> for Account {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| AppError::unauthorized("missing Authorization: Bearer <api key>"))?;
        let key = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| AppError::unauthorized("expected Authorization: Bearer <api key>"))?;
        match state.account_for_key_hash(hash_secret(key)).await? {
            Some(account) => Ok(Account(account)),
            None => Err(AppError::unauthorized("unknown API key")),
        }
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

/// Parses an opaque list cursor.
pub fn parse_cursor(value: Option<&str>) -> Result<Option<i64>, AppError> {
    match value {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 0)
            .map(Some)
            .ok_or_else(|| AppError::bad_request("invalid_query", "cursor is not valid")),
    }
}

/// Clamps a page size (default 50, at most 500).
pub fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(50).clamp(1, 500)
}
