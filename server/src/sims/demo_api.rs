//! The demo's own switches, served by `simrelay demo` only (never by `serve`): make one of
//! the simulated phones receive an SMS now, and make a phone's radio fail every send with "no
//! service" (so `failed` and the relay's failover to another phone can be seen). Both need the
//! demo account's key with the `phones` scope; a phone of another account is not found.
//!
//! - `POST /v1/demo/incoming` `{"from": "+15550001234", "text": "your code is 1234",
//!   "phone": optional phone id}` → `202 {"phone": id}` (the first phone by default);
//! - `POST /v1/demo/phones/{id}/radio` `{"failing": true|false}` → `200 {"phone", "failing"}`.

use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use simrelay_core::sim_modem::{SimBehaviour, SimModem};

use crate::AppState;
use crate::api::Account;
use crate::error::{ApiJson, AppError};

use super::sim_phones::SIM as DEMO_SIM;
/// Android's `RESULT_ERROR_NO_SERVICE`: what a failing radio answers (a SIM-bound failure,
/// so the relay moves the message to another phone unless it is held to this one).
const NO_SERVICE: i32 = 4;
/// Longest text the switch injects (ten concatenated parts of GSM-7).
const MAX_TEXT: usize = 1_530;

/// The demo's phones, filled in once they are paired.
#[derive(Debug, Clone, Default)]
pub struct DemoPhones {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    account: String,
    phones: Vec<(String, SimModem)>,
}

impl DemoPhones {
    /// Records the demo account and its phones (phone id, radio).
    pub fn set(&self, account: String, phones: Vec<(String, SimModem)>) {
        *self.lock() = Inner { account, phones };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The radio of `phone` (the first phone when `None`), if it is `account`'s.
    fn radio(&self, account: &str, phone: Option<&str>) -> Option<(String, SimModem)> {
        let inner = self.lock();
        if inner.account != account {
            return None;
        }
        inner
            .phones
            .iter()
            .find(|(id, _)| phone.is_none_or(|p| p == id))
            .cloned()
    }
}

/// How a demo phone's radio behaves when not failing.
pub fn demo_behaviour() -> SimBehaviour {
    SimBehaviour {
        latency_ms: 300,
        report_delay_ms: 1500,
        ..SimBehaviour::default()
    }
}

/// The demo's routes, to merge into the relay's.
pub fn routes(phones: DemoPhones) -> Router<AppState> {
    Router::new()
        .route("/v1/demo/incoming", post(incoming))
        .route("/v1/demo/phones/{id}/radio", post(radio))
        .layer(Extension(phones))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    from: String,
    text: String,
    #[serde(default)]
    phone: Option<String>,
}

#[derive(Debug, Serialize)]
struct Injected {
    phone: String,
}

async fn incoming(
    Account(account): Account,
    Extension(phones): Extension<DemoPhones>,
    ApiJson(req): ApiJson<Incoming>,
) -> Result<(StatusCode, Json<Injected>), AppError> {
    let sender_ok = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == ' ';
    if req.from.is_empty() || req.from.len() > 20 || !req.from.chars().all(sender_ok) {
        return Err(AppError::bad_request(
            "invalid_from",
            "from must be a phone number or a sender name of 1 to 20 letters and digits",
        ));
    }
    if req.text.is_empty() || req.text.chars().count() > MAX_TEXT {
        return Err(AppError::bad_request(
            "invalid_text",
            format!("text must have 1 to {MAX_TEXT} characters"),
        ));
    }
    let (phone, modem) = phones
        .radio(&account, req.phone.as_deref())
        .ok_or_else(AppError::not_found)?;
    modem.inject_incoming(Some(DEMO_SIM), &req.from, &req.text);
    tracing::info!(phone = %phone, "demo: an incoming SMS injected");
    Ok((StatusCode::ACCEPTED, Json(Injected { phone })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Radio {
    failing: bool,
}

#[derive(Debug, Serialize)]
struct RadioState {
    phone: String,
    failing: bool,
}

async fn radio(
    Account(account): Account,
    Extension(phones): Extension<DemoPhones>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Radio>,
) -> Result<Json<RadioState>, AppError> {
    let (phone, modem) = phones
        .radio(&account, Some(&id))
        .ok_or_else(AppError::not_found)?;
    let behaviour = if req.failing {
        SimBehaviour {
            fail_rate: 1.0,
            fail_code: NO_SERVICE,
            ..demo_behaviour()
        }
    } else {
        demo_behaviour()
    };
    modem.with_radio(|r| r.set_behaviour(DEMO_SIM, behaviour));
    tracing::info!(phone = %phone, failing = req.failing, "demo: radio switched");
    Ok(Json(RadioState {
        phone,
        failing: req.failing,
    }))
}
