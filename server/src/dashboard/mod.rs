//! The web dashboard, served by the relay at `/` of its own port.
//!
//! One page (`assets/`: HTML, a script and a style sheet, embedded in the binary, nothing
//! fetched from elsewhere) that is a client of the relay's own `/v1` API: the browser signs in
//! here ([`session`]) and its cookie then stands for the key or user that signed in, with the
//! same scopes, on every `/v1` route. The few things the page needs that the API has no route
//! for live under `/ui`: the session itself, a QR code of a pairing link, the part counts of
//! texts before sending, and the hourly figures of the charts.

pub mod session;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::auth::{MAX_KEY_LEN, Scopes};
use crate::api::views::Timestamp;
use crate::api::{Caller, hash_secret};
use crate::config::TlsMode;
use crate::domain::RecipientStatus;
use crate::error::{ApiJson, AppError};
use crate::store::now_ms;
use session::{Principal, Session};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// What the page may load and run: only itself (and the QR images it makes from blobs).
const CSP: &str = "default-src 'self'; img-src 'self' blob:; style-src 'self'; \
    script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/ui/session", get(current).post(sign_in).delete(sign_out))
        .route("/ui/qr", post(qr))
        .route("/ui/preview", post(preview))
        .route("/ui/stats", get(stats))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// The caller a session cookie stands for: used by [`Caller::authenticate`] when a request
/// has no `Authorization` header. State-changing methods need the CSRF token too.
pub async fn session_caller(parts: &Parts, state: &AppState) -> Result<Caller, AppError> {
    let (_, session, scopes) = live_session(&parts.headers, state).await.map_err(|e| {
        if e.status == StatusCode::UNAUTHORIZED && session::cookie_token(&parts.headers).is_none() {
            AppError::unauthorized("missing Authorization: Bearer <api key>")
        } else {
            e
        }
    })?;
    if !session::is_safe(&parts.method) && !session::csrf_ok(&session, &parts.headers) {
        return Err(csrf_refused());
    }
    Ok(Caller {
        key_id: match &session.principal {
            Principal::Key { hash } => format!("session:key:{}", &hash[..8]),
            Principal::User { login } => format!("session:user:{login}"),
        },
        account: session.account,
        scopes,
    })
}

fn csrf_refused() -> AppError {
    AppError::new(
        StatusCode::FORBIDDEN,
        "csrf_token_missing",
        "a signed-in page must send its X-CSRF-Token with this request",
    )
}

/// The request's session with what it may do now: its key must still exist unrevoked, its
/// user must still exist (else the session ends).
async fn live_session(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<(String, Session, Scopes), AppError> {
    let token = session::cookie_token(headers)
        .ok_or_else(|| AppError::unauthorized("not signed in"))?
        .to_string();
    let session = state
        .sessions
        .get(&token, now_ms())
        .ok_or_else(|| AppError::unauthorized("the session ended; sign in again"))?;
    let scopes = match &session.principal {
        Principal::Key { hash } => state
            .authenticate_key_hash(hash.clone())
            .await?
            .filter(|k| k.account_id == session.account)
            .map(|k| Scopes::from_stored(&k.scopes)),
        Principal::User { login } => {
            let login = login.clone();
            let user = state.db.call(move |s| s.compat_user(&login)).await?;
            user.filter(|u| u.account_id == session.account)
                .map(|_| Scopes::account())
        }
    };
    match scopes {
        Some(scopes) => Ok((token, session, scopes)),
        None => {
            state.sessions.remove(&token);
            Err(AppError::unauthorized(
                "the key or user of this session is gone; sign in again",
            ))
        }
    }
}

/// Body of `POST /ui/session`: a user's login and password, or an API key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

/// A session as the page sees it.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub account: String,
    /// The user that signed in (absent for a key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    pub scopes: Vec<&'static str>,
    /// Send it back as `X-CSRF-Token` with every state-changing request.
    pub csrf: String,
    pub expires_at: Timestamp,
}

fn view(session: Session, scopes: Scopes) -> SessionView {
    SessionView {
        account: session.account,
        login: match session.principal {
            Principal::User { login } => Some(login),
            Principal::Key { .. } => None,
        },
        scopes: scopes.names(),
        csrf: session.csrf,
        expires_at: Timestamp(session.expires_at),
    }
}

fn secure(state: &AppState) -> bool {
    !matches!(state.config.tls, TlsMode::Off)
}

/// `GET /ui/session`: the signed-in session, 401 when there is none.
async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionView>, AppError> {
    let (_, session, scopes) = live_session(&headers, &state).await?;
    Ok(Json(view(session, scopes)))
}

/// `POST /ui/session`: signs in and sets the session cookie. Wrong credentials answer 401
/// without saying which part was wrong; password attempts go through the login throttle.
async fn sign_in(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, AppError> {
    let (principal, account, scopes) = match body {
        SignIn {
            key: Some(key),
            login: None,
            password: None,
        } => {
            if key.is_empty() || key.len() > MAX_KEY_LEN {
                return Err(AppError::unauthorized("unknown or revoked API key"));
            }
            let found = state
                .authenticate_key(&key)
                .await?
                .ok_or_else(|| AppError::unauthorized("unknown or revoked API key"))?;
            let hash = hash_secret(&key);
            let scopes = Scopes::from_stored(&found.scopes);
            (Principal::Key { hash }, found.account_id, scopes)
        }
        SignIn {
            key: None,
            login: Some(login),
            password: Some(password),
        } => {
            let peer = peer.map(|Extension(ConnectInfo(a))| a.ip());
            let user = crate::compat::check_login(&state, peer, login, password)
                .await
                .map_err(|e| {
                    let code = match e.status {
                        StatusCode::TOO_MANY_REQUESTS => "too_many_logins",
                        StatusCode::UNAUTHORIZED => "unauthorized",
                        _ => "unavailable",
                    };
                    AppError::new(e.status, code, e.message)
                })?;
            (
                Principal::User { login: user.login },
                user.account_id,
                Scopes::account(),
            )
        }
        _ => {
            return Err(AppError::bad_request(
                "invalid_body",
                "send either `key`, or `login` and `password`",
            ));
        }
    };
    let (token, session) = state.sessions.create(principal, account, now_ms());
    let cookie = session::set_cookie(&token, secure(&state));
    let mut response = Json(view(session, scopes)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("hex token"),
    );
    Ok(response)
}

/// `DELETE /ui/session`: signs out (with the CSRF token) and clears the cookie.
async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let (token, session, _) = live_session(&headers, &state).await?;
    if !session::csrf_ok(&session, &headers) {
        return Err(csrf_refused());
    }
    state.sessions.remove(&token);
    let cookie = session::set_cookie("", secure(&state));
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("ascii"),
        )],
    )
        .into_response())
}

/// Longest text `POST /ui/qr` draws.
pub const MAX_QR_TEXT: usize = 1024;

/// Body of `POST /ui/qr`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrText {
    pub text: String,
}

/// `POST /ui/qr`: an SVG QR code of `text` (the pairing link a phone's camera scans). A POST,
/// so that the pairing code it holds never sits in a URL.
async fn qr(_: Caller, ApiJson(body): ApiJson<QrText>) -> Result<Response, AppError> {
    if body.text.is_empty() || body.text.len() > MAX_QR_TEXT {
        return Err(AppError::bad_request(
            "invalid_text",
            format!("text must be 1 to {MAX_QR_TEXT} bytes"),
        ));
    }
    let code = qrcode::QrCode::new(body.text.as_bytes())
        .map_err(|_| AppError::bad_request("invalid_text", "text does not fit in a QR code"))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// Texts `POST /ui/preview` counts at once (a CSV upload's rows).
pub const MAX_PREVIEW_TEXTS: usize = 1000;

/// Body of `POST /ui/preview`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewTexts {
    pub texts: Vec<String>,
}

/// How one text goes on the air.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TextPreview {
    pub parts: u32,
    pub encoding: simrelay_protocol::segment::Encoding,
    /// Characters as the encoding counts them (septets or UTF-16 units).
    pub units: usize,
}

/// `POST /ui/preview`: the parts each text is sent as, as the phone will cut it.
async fn preview(
    _: Caller,
    ApiJson(body): ApiJson<PreviewTexts>,
) -> Result<Json<Previews>, AppError> {
    if body.texts.len() > MAX_PREVIEW_TEXTS {
        return Err(AppError::bad_request(
            "too_many_texts",
            format!("at most {MAX_PREVIEW_TEXTS} texts at once"),
        ));
    }
    Ok(Json(Previews {
        items: body.texts.iter().map(|t| text_preview(t)).collect(),
    }))
}

/// What `POST /ui/preview` answers: one preview per text, in order.
#[derive(Debug, Serialize)]
pub struct Previews {
    pub items: Vec<TextPreview>,
}

fn text_preview(text: &str) -> TextPreview {
    let parts = simrelay_protocol::segment::parts(text);
    let (encoding, units) = (parts.encoding, parts.units);
    TextPreview {
        parts: u32::try_from(parts.count()).unwrap_or(u32::MAX),
        encoding,
        units,
    }
}

/// Query of `GET /ui/stats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Hours back from now (1 to 168, default 24).
    #[serde(default)]
    pub hours: Option<u32>,
}

/// Recipients that reached the radio, were delivered, or failed.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Outcomes {
    /// Handed to the network: `sent`, `delivered` and `unknown`.
    pub sent: u32,
    pub delivered: u32,
    /// `failed` and `expired`.
    pub failed: u32,
}

impl Outcomes {
    fn add(&mut self, state: RecipientStatus, n: u32) {
        match state {
            RecipientStatus::Delivered => {
                self.sent += n;
                self.delivered += n;
            }
            RecipientStatus::Sent | RecipientStatus::Unknown => self.sent += n,
            RecipientStatus::Failed | RecipientStatus::Expired => self.failed += n,
            _ => {}
        }
    }
}

/// One hour of the charts.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HourOutcomes {
    pub hour: Timestamp,
    #[serde(flatten)]
    pub outcomes: Outcomes,
}

/// One SIM's totals over the window.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SimOutcomes {
    pub phone: Option<String>,
    pub sub_id: Option<i32>,
    #[serde(flatten)]
    pub outcomes: Outcomes,
}

/// What `GET /ui/stats` answers.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub hours: Vec<HourOutcomes>,
    pub sims: Vec<SimOutcomes>,
}

const HOUR_MS: i64 = 3_600_000;

/// `GET /ui/stats?hours=24`: recipients per hour and per SIM, by the hour of their last
/// change (a recipient sent in one hour and delivered in the next counts in the second).
async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Stats>, AppError> {
    let hours = q.hours.unwrap_or(24);
    if !(1..=168).contains(&hours) {
        return Err(AppError::bad_request(
            "invalid_hours",
            "hours must be 1 to 168",
        ));
    }
    let now = now_ms();
    let first = (now.div_euclid(HOUR_MS) - i64::from(hours) + 1) * HOUR_MS;
    let account = caller.account;
    let rows = state
        .db
        .call(move |s| s.outcomes_since(&account, first))
        .await?;
    Ok(Json(aggregate(&rows, first, hours)))
}

fn aggregate(rows: &[crate::store::tx::OutcomeRow], first: i64, hours: u32) -> Stats {
    let mut by_hour: Vec<Outcomes> = vec![Outcomes::default(); hours as usize];
    let mut by_sim: BTreeMap<(Option<String>, Option<i32>), Outcomes> = BTreeMap::new();
    for r in rows {
        if let Some(slot) = usize::try_from((r.hour - first).div_euclid(HOUR_MS))
            .ok()
            .and_then(|i| by_hour.get_mut(i))
        {
            slot.add(r.state, r.count);
        }
        by_sim
            .entry((r.phone.clone(), r.sim))
            .or_default()
            .add(r.state, r.count);
    }
    Stats {
        hours: by_hour
            .into_iter()
            .enumerate()
            .map(|(i, outcomes)| HourOutcomes {
                hour: Timestamp(first + i64::try_from(i).expect("at most 168") * HOUR_MS),
                outcomes,
            })
            .collect(),
        sims: by_sim
            .into_iter()
            .map(|((phone, sub_id), outcomes)| SimOutcomes {
                phone,
                sub_id,
                outcomes,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tx::OutcomeRow;

    #[test]
    fn charts_count_by_hour_and_sim() {
        let row = |hour: i64, sim: i32, state, count| OutcomeRow {
            hour: hour * HOUR_MS,
            phone: Some("p1".into()),
            sim: Some(sim),
            state,
            count,
        };
        let rows = [
            row(10, 1, RecipientStatus::Delivered, 3),
            row(10, 1, RecipientStatus::Sent, 2),
            row(11, 2, RecipientStatus::Failed, 1),
            row(11, 2, RecipientStatus::Expired, 1),
            row(11, 2, RecipientStatus::Unknown, 4),
            row(7, 1, RecipientStatus::Delivered, 9), // before the window: SIM totals only
        ];
        let s = aggregate(&rows, 10 * HOUR_MS, 3);
        let h: Vec<Outcomes> = s.hours.iter().map(|h| h.outcomes).collect();
        let o = |sent, delivered, failed| Outcomes {
            sent,
            delivered,
            failed,
        };
        assert_eq!(h, vec![o(5, 3, 0), o(4, 0, 2), o(0, 0, 0)]);
        assert_eq!(s.hours[2].hour, Timestamp(12 * HOUR_MS));
        let sims: Vec<(Option<i32>, Outcomes)> =
            s.sims.iter().map(|x| (x.sub_id, x.outcomes)).collect();
        assert_eq!(sims, vec![(Some(1), o(14, 12, 0)), (Some(2), o(4, 0, 2))]);
    }

    #[test]
    fn previews_count_parts_like_the_phone() {
        let p = text_preview(&"a".repeat(161));
        assert_eq!(p.parts, 2);
        assert_eq!(p.units, 161);
        assert_eq!(text_preview("héllo").parts, 1);
        assert_eq!(
            text_preview("ünïcødé ✓").encoding,
            simrelay_protocol::segment::Encoding::Ucs2
        );
    }
}
