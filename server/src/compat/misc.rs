//! The rest of the compatible API: devices (the account's phones), health (no auth), the
//! inbox (list, and refresh/export, which deliver the stored SMS to the SMS Gateway webhooks
//! again), logs (the account's message history), and JWTs (issue, refresh, revoke).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json as j;

use super::auth::{self, Claims, ISSUER, REFRESH_SCOPE};
use super::messages::{counted, parse_time, range};
use super::views::Device;
use super::{CResult, Caller, CompatError, Grant, json, signer};
use crate::AppState;
use crate::error::ApiJson;
use crate::store::{InboxQuery, TokenRow, now_ms};
use crate::time_fmt::fmt_ms;

// ---- devices ----

/// `GET /devices`.
pub async fn list_devices(State(state): State<AppState>, caller: Caller) -> CResult<Response> {
    let phones = state
        .db
        .call(move |s| s.list_phones(&caller.account))
        .await?;
    let devices: Vec<Device> = phones.into_iter().map(Device::from).collect();
    Ok(json(StatusCode::OK, &devices))
}

/// `DELETE /devices/{id}`: removes the phone (its recipients fail over to the account's other
/// phones, as a removal does); 204, or 404.
pub async fn remove_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> CResult<StatusCode> {
    crate::api::phones::remove_phone(&state, caller.account, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- health ----

/// `GET /health`, `/health/ready`, `/health/startup` (no auth): `pass` when the store
/// answers, 503 `fail` when it does not.
pub async fn health(State(state): State<AppState>) -> Response {
    let db = state.db.call(|s| s.counts().map(|_| ())).await;
    let (status, code) = match db {
        Ok(()) => ("pass", StatusCode::OK),
        Err(_) => ("fail", StatusCode::SERVICE_UNAVAILABLE),
    };
    let body = j!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "releaseId": concat!("simrelay-", env!("CARGO_PKG_VERSION")),
        "checks": {
            "database": {"status": status, "description": "the relay's store answers"},
            "phones:connected": {
                "status": "pass",
                "observedValue": state.hub.connected_count(),
                "observedUnit": "phones",
            },
        },
    });
    json(code, &body)
}

/// `GET /health/live`: the process answers.
pub async fn liveness() -> Response {
    json(
        StatusCode::OK,
        &j!({"status": "pass", "version": env!("CARGO_PKG_VERSION"), "checks": {}}),
    )
}

// ---- inbox ----

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxList {
    #[serde(rename = "type")]
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    device_id: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InboxMessage {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    sender: String,
    content_preview: String,
    created_at: String,
    device_id: String,
}

/// `GET /inbox`: the account's received SMS, newest first, `X-Total-Count`.
pub async fn list_inbox(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<InboxList>,
) -> CResult<Response> {
    let data = match q.kind.as_deref() {
        None | Some("") => None,
        Some("SMS") => Some(false),
        Some("DATA_SMS") => Some(true),
        // simrelay receives no MMS.
        Some("MMS" | "MMS_DOWNLOADED") => return Ok(empty_page()),
        Some(_) => {
            return Err(CompatError::bad_request(
                "type must be SMS, DATA_SMS, MMS or MMS_DOWNLOADED",
            ));
        }
    };
    let r = range(&q.from, &q.to, q.device_id, &q.offset, &q.limit)?;
    let query = InboxQuery {
        from: r.from,
        to: r.to,
        phone: r.phone,
        data,
        offset: r.offset,
        limit: r.limit,
    };
    let (items, total) = state
        .db
        .call(move |s| s.query_inbox(&caller.account, &query))
        .await?;
    let body: Vec<InboxMessage> = items
        .into_iter()
        .map(|i| InboxMessage {
            id: i.id,
            kind: if i.data_port.is_some() {
                "DATA_SMS"
            } else {
                "SMS"
            },
            sender: i.from,
            // A ciphertext is useless cut short.
            content_preview: if i.encrypted {
                i.text
            } else {
                i.text.chars().take(160).collect()
            },
            created_at: fmt_ms(i.received_at),
            device_id: i.phone,
        })
        .collect();
    Ok(counted(total, &body))
}

fn empty_page() -> Response {
    counted::<()>(0, &[])
}

/// The body of `POST /inbox/refresh` and of the exports.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refresh {
    since: String,
    until: String,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    message_types: Option<Vec<String>>,
    #[serde(default)]
    webhook_delivery: Option<String>,
    #[serde(default)]
    trigger_webhooks: Option<bool>,
}

async fn redeliver(state: &AppState, account: String, r: Refresh) -> CResult<()> {
    let since = parse_time("since", &r.since)?;
    let until = parse_time("until", &r.until)?;
    if since > until {
        return Err(CompatError::bad_request("since is after until"));
    }
    let mode = match (r.webhook_delivery.as_deref(), r.trigger_webhooks) {
        (Some("Disabled"), _) | (None, Some(false)) => return Ok(()),
        (Some("Batch"), _) => crate::store::Redelivery::Batch,
        (Some("Individual") | None, _) => crate::store::Redelivery::Individual,
        (Some(_), _) => {
            return Err(CompatError::bad_request(
                "webhookDelivery must be Disabled, Individual or Batch",
            ));
        }
    };
    let mut data = None;
    if let Some(types) = &r.message_types {
        let (sms, dsms) = (
            types.iter().any(|t| t == "SMS"),
            types.iter().any(|t| t == "DATA_SMS"),
        );
        if let Some(bad) = types
            .iter()
            .find(|t| !["SMS", "DATA_SMS", "MMS", "MMS_DOWNLOADED"].contains(&t.as_str()))
        {
            return Err(CompatError::bad_request(format!(
                "messageTypes: unknown type {bad:?}"
            )));
        }
        data = match (sms, dsms) {
            (true, true) => None,
            (true, false) => Some(false),
            (false, true) => Some(true),
            (false, false) => return Ok(()),
        };
    }
    let query = InboxQuery {
        from: Some(since),
        to: Some(until.saturating_add(1)),
        phone: r.device_id.filter(|d| !d.is_empty()),
        data,
        offset: 0,
        limit: 0,
    };
    let n = state
        .db
        .call(move |s| s.redeliver_received(&account, &query, mode, now_ms()))
        .await?;
    if n > 0 {
        state.webhook_kick.notify_one();
    }
    Ok(())
}

/// `POST /inbox/refresh`: delivers the SMS received in `since..=until` to the account's SMS
/// Gateway webhooks again (simrelay's phones push every SMS as it arrives, so the stored
/// inbox is complete and the phones need not be asked); 202.
pub async fn refresh_inbox(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<Refresh>,
) -> CResult<StatusCode> {
    redeliver(&state, caller.account, r).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /messages/inbox/export` (deprecated) and `POST /inbox/export`: as refresh; 202.
pub async fn export_inbox(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<Refresh>,
) -> CResult<Response> {
    redeliver(&state, caller.account, r).await?;
    let mut res = StatusCode::ACCEPTED.into_response();
    res.headers_mut()
        .insert("deprecation", HeaderValue::from_static("true"));
    Ok(res)
}

// ---- logs ----

#[derive(Debug, Default, Deserialize)]
pub struct LogsQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /logs?from&to`: the account's message history in that range (each change of a
/// recipient's state, newest first, at most 500), as log entries.
pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<LogsQuery>,
) -> CResult<Response> {
    let now = now_ms();
    let to =
        q.to.as_deref()
            .map(|v| parse_time("to", v))
            .transpose()?
            .unwrap_or(now);
    let from = q
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to - 24 * 3600 * 1000);
    let rows = state
        .db
        .call(move |s| s.account_history(&caller.account, from, to, 500))
        .await?;
    let body: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|row| {
            let (seq, message_id, h) = (row.seq, row.message_id, row.change);
            let failed = matches!(h.state.as_str(), "failed" | "expired");
            j!({
                "id": seq,
                "createdAt": fmt_ms(h.at),
                "message": format!("message {message_id} recipient {}: {}", h.idx, h.state),
                "priority": if failed { "WARN" } else { "INFO" },
                "module": "messages",
                "context": {
                    "messageId": message_id,
                    "recipient": h.idx,
                    "state": h.state.as_str(),
                    "deviceId": h.phone,
                    "error": h.error,
                },
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &body))
}

// ---- tokens ----

/// Default and longest lifetime of an access token, in seconds.
const ACCESS_TTL_S: i64 = 3600;
const MAX_ACCESS_TTL_S: i64 = 30 * 24 * 3600;
/// Lifetime of a refresh token.
const REFRESH_TTL_S: i64 = 30 * 24 * 3600;

#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    scopes: Vec<String>,
    #[serde(default)]
    ttl: Option<i64>,
}

/// The token answer, in upstream's snake_case and the Python client's camelCase at once.
#[derive(Debug, Serialize)]
struct TokenResponse {
    id: String,
    token_type: &'static str,
    access_token: String,
    expires_at: String,
    refresh_token: String,
    #[serde(rename = "tokenType")]
    token_type_camel: &'static str,
    #[serde(rename = "accessToken")]
    access_token_camel: String,
    #[serde(rename = "expiresAt")]
    expires_at_camel: String,
    #[serde(rename = "refreshToken")]
    refresh_token_camel: String,
}

async fn issue(
    state: &AppState,
    account: &str,
    scopes: Vec<String>,
    ttl_s: i64,
) -> CResult<TokenResponse> {
    let signer = signer(state).await?;
    let now = now_ms();
    let now_s = now / 1000;
    let access_jti = uuid::Uuid::now_v7().to_string();
    let refresh_jti = uuid::Uuid::now_v7().to_string();
    let access = Claims {
        iss: ISSUER.into(),
        sub: account.into(),
        jti: access_jti.clone(),
        iat: now_s,
        exp: now_s + ttl_s,
        scopes: scopes.clone(),
        typ: "access".into(),
    };
    let refresh = Claims {
        jti: refresh_jti.clone(),
        exp: now_s + REFRESH_TTL_S,
        scopes: vec![REFRESH_SCOPE.into()],
        typ: "refresh".into(),
        ..access.clone()
    };
    let rows = [
        TokenRow {
            jti: access_jti.clone(),
            account_id: account.into(),
            kind: "access".into(),
            scopes: scopes.join(","),
            expires_at: access.exp * 1000,
            revoked_at: None,
            created_at: now,
        },
        TokenRow {
            jti: refresh_jti,
            account_id: account.into(),
            kind: "refresh".into(),
            // What a refresh hands out again.
            scopes: scopes.join(","),
            expires_at: refresh.exp * 1000,
            revoked_at: None,
            created_at: now,
        },
    ];
    state
        .db
        .call(move |s| rows.iter().try_for_each(|r| s.insert_token(r)))
        .await?;
    let (a, r) = (signer.sign(&access), signer.sign(&refresh));
    let expires = fmt_ms(access.exp * 1000);
    Ok(TokenResponse {
        id: access_jti,
        token_type: "Bearer",
        access_token: a.clone(),
        expires_at: expires.clone(),
        refresh_token: r.clone(),
        token_type_camel: "Bearer",
        access_token_camel: a,
        expires_at_camel: expires,
        refresh_token_camel: r,
    })
}

/// `POST /auth/token`: 201 with an access token of the requested scopes (each one the
/// caller holds) and a refresh token.
pub async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TokenRequest>,
) -> CResult<Response> {
    if req.scopes.is_empty() {
        return Err(CompatError::bad_request("scopes must not be empty"));
    }
    for s in &req.scopes {
        if !auth::SCOPES.contains(&s.as_str()) {
            return Err(CompatError::bad_request(format!("unknown scope {s:?}")));
        }
        let held = match &caller.grant {
            Grant::All => true,
            Grant::Scopes(_) => caller.grant.allows(s),
        };
        if !held {
            return Err(CompatError::new(
                StatusCode::FORBIDDEN,
                format!("scope required: {s}"),
            ));
        }
    }
    let ttl = req.ttl.unwrap_or(ACCESS_TTL_S);
    if !(1..=MAX_ACCESS_TTL_S).contains(&ttl) {
        return Err(CompatError::bad_request(format!(
            "ttl must be 1 to {MAX_ACCESS_TTL_S} seconds"
        )));
    }
    let mut scopes = req.scopes;
    scopes.sort();
    scopes.dedup();
    let t = issue(&state, &caller.account, scopes, ttl).await?;
    Ok(json(StatusCode::CREATED, &t))
}

/// `POST /auth/token/refresh` with `Bearer <refresh token>`: a new pair with the scopes of
/// the first; the refresh token used is revoked (each works once).
pub async fn refresh_token(State(state): State<AppState>, caller: Caller) -> CResult<Response> {
    let jti = caller
        .jti
        .clone()
        .ok_or_else(|| CompatError::new(StatusCode::FORBIDDEN, "a refresh token is required"))?;
    let (acc, j) = (caller.account.clone(), jti.clone());
    let row = state
        .db
        .call(move |s| {
            let row = s.token(&j)?;
            let revoked = s.revoke_token(&acc, &j, now_ms())?;
            Ok::<_, crate::store::StoreError>(row.filter(|_| revoked))
        })
        .await?
        .filter(|r| r.kind == "refresh")
        .ok_or_else(|| CompatError::new(StatusCode::UNAUTHORIZED, "invalid refresh token"))?;
    let scopes: Vec<String> = row.scopes.split(',').map(str::to_string).collect();
    let t = issue(&state, &caller.account, scopes, ACCESS_TTL_S).await?;
    Ok(json(StatusCode::CREATED, &t))
}

/// `DELETE /auth/token/{jti}`: 204; the token is refused from then on, on every relay of the
/// store.
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(jti): Path<String>,
) -> CResult<StatusCode> {
    let found = state
        .db
        .call(move |s| s.revoke_token(&caller.account, &jti, now_ms()))
        .await?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(CompatError::not_found())
    }
}
