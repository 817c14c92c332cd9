//! `/v1/phones` (presence, SIMs, queue depth; removing a phone) and `/v1/pairing-codes`
//! (one-time codes a phone exchanges for its device token over `/v1/link`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::views::{self, Timestamp};
use super::{Account, Page, hash_secret};
use crate::AppState;
use crate::error::{AppError, ErrorBody};
use crate::store::now_ms;

/// Pairing codes use this alphabet: no 0/O, 1/I/L, so they can be read aloud and typed.
pub const PAIRING_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const PAIRING_CODE_LEN: usize = 8;
pub const PAIRING_TTL_MS: i64 = 10 * 60 * 1000;

/// A fresh pairing code.
pub fn new_pairing_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..PAIRING_CODE_LEN)
        .map(|_| char::from(PAIRING_ALPHABET[rng.random_range(0..PAIRING_ALPHABET.len())]))
        .collect()
}

/// Canonical form of a typed code (upper case, no spaces or dashes).
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `GET /v1/phones`.
#[utoipa::path(
    get,
    path = "/v1/phones",
    tag = "phones",
    responses(
        (status = 200, description = "the account's phones (not paged)", body = Page<views::Phone>),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Json<Page<views::Phone>>, AppError> {
    let rows = state.db.call(move |s| s.list_phones(&account)).await?;
    let is_online = state.online_check().await?;
    Ok(Json(Page::all(rows.into_iter().map(|p| {
        let online = is_online(&p.id);
        views::Phone::new(p, online)
    }))))
}

/// `DELETE /v1/phones/{id}`: the phone's token stops working, its link is closed, and its
/// recipients end as `crate::domain::phone_gone` describes. 404 for another account's phone.
#[utoipa::path(
    delete,
    path = "/v1/phones/{id}",
    tag = "phones",
    params(("id" = String, Path, description = "the phone id")),
    responses(
        (status = 200, description = "removed; what became of its recipients", body = views::PhoneRemoval),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<String>,
) -> Result<Json<views::PhoneRemoval>, AppError> {
    remove_phone(&state, account, id).await.map(Json)
}

/// Removes the account's phone `id` (for `DELETE /v1/phones/{id}` and the compatible API's
/// device removal); `not_found` for another account's phone.
pub async fn remove_phone(
    state: &AppState,
    account: String,
    id: String,
) -> Result<views::PhoneRemoval, AppError> {
    let now = now_ms();
    let removed = {
        // Under the presence lock, so that a link authenticating right now either registers
        // before (and is closed below) or finds the phone removed.
        let _presence = state.hub.presence().await;
        let phone = id.clone();
        let removed = state
            .db
            .call(move |s| s.remove_phone(&account, &phone, now))
            .await?
            .ok_or_else(AppError::not_found)?;
        state.hub.close(&id);
        removed
    };
    tracing::info!(phone = %id, "phone removed");
    state.route_kick.notify_one();
    state.webhook_kick.notify_one();
    Ok(views::PhoneRemoval {
        id,
        removed_at: Timestamp(now),
        recipients: removed.into(),
    })
}

/// The relay's WebSocket base URL (`wss://host:port`) for phones, which connect to it plus
/// `/v1/link`: from the configured `public_url`, else the address the relay listens on. Never
/// from the request's `Host`, which the caller controls (a pairing answer shown to a phone's
/// owner must not point the phone at a host of the caller's choosing).
fn ws_url(state: &AppState) -> String {
    if let Some(base) = &state.config.public_url {
        let base = base.trim_end_matches('/');
        return if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.to_string()
        };
    }
    let scheme = if state.tls_fingerprint.is_some() {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{}", state.config.listen)
}

/// `POST /v1/pairing-codes`: a code valid for ten minutes, usable once.
#[utoipa::path(
    post,
    path = "/v1/pairing-codes",
    tag = "phones",
    responses(
        (status = 201, description = "a one-time code a phone exchanges for its device token", body = views::PairingCode),
    ),
)]
pub async fn create_pairing_code(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<(StatusCode, Json<views::PairingCode>), AppError> {
    let code = new_pairing_code();
    let hash = hash_secret(&code);
    let now = now_ms();
    let expires = now + PAIRING_TTL_MS;
    let base = ws_url(&state);
    state
        .db
        .call(move |s| s.create_pairing_code(&account, &hash, now, expires))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(views::PairingCode {
            code,
            expires_at: Timestamp(expires),
            link_url: format!("{base}{}", simrelay_protocol::WS_PATH),
            ws_url: base,
            tls_fingerprint: state.tls_fingerprint.clone(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet() {
        let code = new_pairing_code();
        assert_eq!(code.len(), PAIRING_CODE_LEN);
        assert!(code.bytes().all(|b| PAIRING_ALPHABET.contains(&b)));
        assert_eq!(normalize_code("abcd-efgh"), "ABCDEFGH");
    }
}
