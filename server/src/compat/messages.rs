//! `/messages` (and the legacy `/message`): send, state, list and cancel, translated to the
//! relay's own messages. A message without `deviceId` is routed like any other (across the
//! account's phones, with failover); `deviceId` pins it to that phone.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::views::{MessageState, ProcessState};
use super::{CResult, Caller, CompatError, json};
use crate::AppState;
use crate::api::messages::MAX_TEXT_CHARS;
use crate::error::ApiJson;
use crate::store::{CancelOutcome, CreateOutcome, MessageQuery, NewMessage, PhoneRow, now_ms};

/// Longest ciphertext accepted for an encrypted text or number.
const MAX_CIPHERTEXT: usize = 8192;
/// Most recipients of one message (upstream's limit).
const MAX_NUMBERS: usize = 100;
/// A data SMS carries at most this many bytes (one part with a port header).
pub const MAX_DATA_BYTES: usize = 133;

#[derive(Debug, Deserialize)]
pub struct TextMessage {
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub struct DataMessage {
    pub data: String,
    pub port: i64,
}

/// The body of `POST /messages`, as both clients send it (unknown fields are ignored, as
/// upstream does).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendBody {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub text_message: Option<TextMessage>,
    #[serde(default)]
    pub data_message: Option<DataMessage>,
    #[serde(default)]
    pub mms_message: Option<serde_json::Value>,
    #[serde(default)]
    pub phone_numbers: Vec<String>,
    #[serde(default)]
    pub sim_number: Option<i64>,
    #[serde(default)]
    pub ttl: Option<i64>,
    #[serde(default)]
    pub valid_until: Option<String>,
    #[serde(default)]
    pub schedule_at: Option<String>,
    #[serde(default)]
    pub with_delivery_report: Option<bool>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub is_encrypted: Option<bool>,
    #[serde(default)]
    pub device_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendQuery {
    #[serde(default)]
    pub skip_phone_validation: Option<String>,
    #[serde(default)]
    pub device_active_within: Option<String>,
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A timestamp as the clients send it: RFC 3339, or `isoformat()` without a zone (taken as
/// UTC).
pub fn parse_time(field: &str, v: &str) -> CResult<i64> {
    crate::time_fmt::parse_rfc3339(v)
        .or_else(|| crate::time_fmt::parse_rfc3339(&format!("{v}Z")))
        .ok_or_else(|| CompatError::bad_request(format!("{field} is not an ISO 8601 timestamp")))
}

/// A number for the radio: separators dropped, `00` read as `+`; it must then be E.164.
pub fn normalize_number(n: &str) -> Option<String> {
    let kept: String = n
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let e164 = match kept.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => kept,
    };
    crate::api::messages::is_e164(&e164).then_some(e164)
}

/// Checks a send and turns it into a [`NewMessage`] (the phone pin and SIM are resolved by
/// [`send`], which knows the phones).
pub fn validate(account: &str, b: &SendBody, q: &SendQuery, now: i64) -> CResult<NewMessage> {
    let encrypted = b.is_encrypted.unwrap_or(false);
    let kinds = [
        b.message.is_some(),
        b.text_message.is_some(),
        b.data_message.is_some(),
        b.mms_message.is_some(),
    ];
    if b.mms_message.is_some() {
        return Err(CompatError::bad_request(
            "mmsMessage is not supported: simrelay sends SMS and data SMS",
        ));
    }
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(CompatError::bad_request(
            "exactly one of message, textMessage and dataMessage is required",
        ));
    }
    let (text, data_port) = match (&b.message, &b.text_message, &b.data_message) {
        (Some(t), _, _) | (_, Some(TextMessage { text: t }), _) => (t.clone(), None),
        (_, _, Some(d)) => {
            let port = u16::try_from(d.port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| CompatError::bad_request("dataMessage.port must be 1..65535"))?;
            if !encrypted {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&d.data)
                    .map_err(|_| CompatError::bad_request("dataMessage.data is not base64"))?;
                if bytes.is_empty() || bytes.len() > MAX_DATA_BYTES {
                    return Err(CompatError::bad_request(format!(
                        "dataMessage.data must decode to 1 to {MAX_DATA_BYTES} bytes"
                    )));
                }
            }
            (d.data.clone(), Some(port))
        }
        _ => unreachable!("one kind is present"),
    };
    let chars = text.chars().count();
    let max = if encrypted {
        MAX_CIPHERTEXT
    } else {
        MAX_TEXT_CHARS
    };
    if chars == 0 || chars > max {
        return Err(CompatError::bad_request(format!(
            "the message text must have 1 to {max} characters"
        )));
    }
    if b.phone_numbers.is_empty() || b.phone_numbers.len() > MAX_NUMBERS {
        return Err(CompatError::bad_request(format!(
            "phoneNumbers must list 1 to {MAX_NUMBERS} numbers"
        )));
    }
    let skip = encrypted || is_true(q.skip_phone_validation.as_deref());
    let mut to: Vec<String> = Vec::with_capacity(b.phone_numbers.len());
    for (i, n) in b.phone_numbers.iter().enumerate() {
        let n = if encrypted {
            if n.is_empty() || n.len() > MAX_CIPHERTEXT {
                return Err(CompatError::bad_request(format!(
                    "phoneNumbers[{i}] is not a ciphertext"
                )));
            }
            n.clone()
        } else if skip {
            let t = n.trim();
            if t.is_empty() || t.len() > 128 {
                return Err(CompatError::bad_request(format!(
                    "phoneNumbers[{i}] must have 1 to 128 characters"
                )));
            }
            t.to_string()
        } else {
            normalize_number(n).ok_or_else(|| {
                CompatError::bad_request(format!(
                    "phoneNumbers[{i}] is not a phone number in international format (+ and \
                     country code)"
                ))
            })?
        };
        if !encrypted && to.contains(&n) {
            return Err(CompatError::bad_request(format!(
                "phoneNumbers[{i}] repeats an earlier number"
            )));
        }
        to.push(n);
    }
    if let Some(id) = &b.id
        && (id.is_empty()
            || id.len() > 36
            || !id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-')))
    {
        return Err(CompatError::bad_request(
            "id must be 1 to 36 characters of A-Z a-z 0-9 . _ : -",
        ));
    }
    let priority = b.priority.unwrap_or(0);
    if !(-128..=127).contains(&priority) {
        return Err(CompatError::bad_request("priority must be -128..127"));
    }
    if b.ttl.is_some() && b.valid_until.is_some() {
        return Err(CompatError::bad_request(
            "ttl and validUntil cannot be given together",
        ));
    }
    let valid_until = match (b.ttl, &b.valid_until) {
        (Some(ttl), _) if ttl < 5 => {
            return Err(CompatError::bad_request("ttl must be at least 5 seconds"));
        }
        (Some(ttl), _) => Some(now.saturating_add(ttl.saturating_mul(1000))),
        (None, Some(v)) => Some(parse_time("validUntil", v)?),
        (None, None) => None,
    };
    if valid_until.is_some_and(|v| v <= now) {
        return Err(CompatError::bad_request("validUntil is in the past"));
    }
    let schedule_at = b
        .schedule_at
        .as_deref()
        .map(|s| parse_time("scheduleAt", s))
        .transpose()?;
    if schedule_at.is_some_and(|s| s <= now) {
        return Err(CompatError::bad_request("scheduleAt must be in the future"));
    }
    if let (Some(s), Some(v)) = (schedule_at, valid_until)
        && s >= v
    {
        return Err(CompatError::bad_request(
            "scheduleAt is not before the message expires",
        ));
    }
    if b.sim_number.is_some_and(|s| !(1..=3).contains(&s)) {
        return Err(CompatError::bad_request("simNumber must be 1..3"));
    }
    if b.device_id
        .as_deref()
        .is_some_and(|d| d.is_empty() || d.len() > 64)
    {
        return Err(CompatError::bad_request("deviceId is not a device id"));
    }
    // The body hash makes a retried send with the same id idempotent, and a different one a
    // conflict.
    let mut h = Sha256::new();
    h.update(b"smsgate\0");
    h.update(text.as_bytes());
    for n in &to {
        h.update([0]);
        h.update(n.as_bytes());
    }
    h.update(format!(
        "\0{priority}\0{valid_until:?}\0{schedule_at:?}\0{:?}\0{:?}\0{encrypted}\0{data_port:?}\0{:?}",
        b.sim_number, b.device_id, b.with_delivery_report
    ));
    Ok(NewMessage {
        account_id: account.to_string(),
        id: b
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        body_hash: hex::encode(h.finalize()),
        to,
        text,
        priority: i32::try_from(priority).expect("checked range"),
        valid_until,
        schedule_at,
        phone_id: b.device_id.clone(),
        sim: None,
        pool: None,
        delivery_report: b.with_delivery_report.unwrap_or(true),
        encrypted,
        data_port,
        created_at: now,
        suppression_override: None,
    })
}

/// The sub_id of SIM slot `sim_number` (1-based) on the pinned phone, or on the only phone
/// that has such a slot; the phone is pinned too in that case.
fn resolve_sim(
    phones: &[PhoneRow],
    device: Option<&str>,
    sim_number: i64,
) -> CResult<(String, i32)> {
    let slot = i32::try_from(sim_number - 1).expect("checked range");
    let slot_of = |p: &PhoneRow| {
        p.status
            .as_ref()
            .and_then(|s| s.sims.iter().find(|s| s.slot == slot).map(|s| s.sub_id))
    };
    match device {
        Some(d) => {
            let p = phones
                .iter()
                .find(|p| p.id == d)
                .ok_or_else(|| CompatError::bad_request("deviceId is not one of your devices"))?;
            let sub = slot_of(p).ok_or_else(|| {
                CompatError::bad_request("the device reports no SIM in that simNumber")
            })?;
            Ok((p.id.clone(), sub))
        }
        None => {
            let with: Vec<(&PhoneRow, i32)> = phones
                .iter()
                .filter_map(|p| slot_of(p).map(|s| (p, s)))
                .collect();
            match with.as_slice() {
                [(p, s)] => Ok((p.id.clone(), *s)),
                [] => Err(CompatError::bad_request(
                    "no device reports a SIM in that simNumber",
                )),
                _ => Err(CompatError::bad_request(
                    "several devices have that simNumber: give deviceId too",
                )),
            }
        }
    }
}

/// `POST /messages`, `POST /message`: 202 with the message's state and its `Location`.
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SendQuery>,
    ApiJson(body): ApiJson<SendBody>,
) -> CResult<Response> {
    let mut m = validate(&caller.account, &body, &q, now_ms())?;
    if let Some(n) = body.sim_number {
        let acc = caller.account.clone();
        let phones = state.db.call(move |s| s.list_phones(&acc)).await?;
        let (phone, sub) = resolve_sim(&phones, body.device_id.as_deref(), n)?;
        m.phone_id = Some(phone);
        m.sim = Some(sub);
    }
    match state.committer.create(m).await? {
        CreateOutcome::Created(v) | CreateOutcome::Existing(v) => {
            state.created(&v);
            let location = format!("{}/messages/{}", super::PREFIX, v.id);
            let mut res = json(StatusCode::ACCEPTED, &MessageState::from(v));
            if let Ok(l) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, l);
            }
            Ok(res)
        }
        CreateOutcome::Conflict => Err(CompatError::new(
            StatusCode::CONFLICT,
            "a message with this id already exists",
        )),
        CreateOutcome::UnknownPhone => Err(CompatError::bad_request(
            "deviceId is not one of your devices",
        )),
        CreateOutcome::UnknownPool => Err(CompatError::bad_request("unknown pool")),
        // The compatible API never asks for an override; kept for completeness.
        CreateOutcome::OverrideNotAllowed => Err(CompatError::new(
            StatusCode::FORBIDDEN,
            "an override of the suppression list is not allowed for this account",
        )),
        o @ (CreateOutcome::LimitReached { .. } | CreateOutcome::DestinationNotAllowed { .. }) => {
            let e = crate::api::limits::refusal(&state, &o).expect("a limit's refusal");
            Err(CompatError::new(e.status, e.message))
        }
    }
}

/// `GET /messages/{id}`, `GET /message/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> CResult<Response> {
    let v = state
        .db
        .call(move |s| s.get_message(&caller.account, &id))
        .await?
        .ok_or_else(CompatError::not_found)?;
    Ok(json(StatusCode::OK, &MessageState::from(v)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    from: Option<String>,
    to: Option<String>,
    state: Option<String>,
    device_id: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
    sort: Option<String>,
}

/// The parameters the paged lists (messages, inbox) share, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub phone: Option<String>,
    pub offset: u32,
    /// 1 to 100 (50 when absent).
    pub limit: u32,
}

/// Parses `from`, `to`, `deviceId`, `offset` and `limit`.
pub fn range(
    from: &Option<String>,
    to: &Option<String>,
    device_id: Option<String>,
    offset: &Option<String>,
    limit: &Option<String>,
) -> CResult<Range> {
    let time = |field, v: &Option<String>| v.as_deref().map(|v| parse_time(field, v)).transpose();
    Ok(Range {
        from: time("from", from)?,
        to: time("to", to)?,
        phone: device_id.filter(|d| !d.is_empty()),
        offset: number("offset", offset.as_deref(), 0)?,
        limit: number("limit", limit.as_deref(), 50)?.clamp(1, 100),
    })
}

/// A JSON array answer with its `X-Total-Count`.
pub fn counted<T: serde::Serialize>(total: u64, body: &[T]) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    (headers, json(StatusCode::OK, &body)).into_response()
}

/// A numeric query parameter (`default` when absent).
pub fn number(field: &str, v: Option<&str>, default: u32) -> CResult<u32> {
    v.map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| CompatError::bad_request(format!("{field} must be a number")))
    })
}

/// `GET /messages?from&to&state&deviceId&limit&offset&sort`: a JSON array, `X-Total-Count`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> CResult<Response> {
    let states = match q.state.as_deref() {
        None | Some("") => Vec::new(),
        Some(s) => ProcessState::parse(s)
            .ok_or_else(|| CompatError::bad_request("state is not a message state"))?
            .ours()
            .to_vec(),
    };
    let newest_first = match q.sort.as_deref() {
        None | Some("-created_at") => true,
        Some("created_at") => false,
        Some(_) => {
            return Err(CompatError::bad_request(
                "sort is created_at or -created_at",
            ));
        }
    };
    let r = range(&q.from, &q.to, q.device_id, &q.offset, &q.limit)?;
    let query = MessageQuery {
        from: r.from,
        to: r.to,
        states,
        phone: r.phone,
        offset: r.offset,
        limit: r.limit,
        newest_first,
    };
    let (views, total) = state
        .db
        .call(move |s| s.query_messages(&caller.account, &query))
        .await?;
    let body: Vec<MessageState> = views.into_iter().map(MessageState::from).collect();
    Ok(counted(total, &body))
}

/// `DELETE /messages/{id}`: cancels what no radio has taken; 409 when nothing can be.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> CResult<Response> {
    let now = now_ms();
    match state
        .db
        .call(move |s| s.cancel_message(&caller.account, &id, now))
        .await?
    {
        CancelOutcome::NotFound => Err(CompatError::not_found()),
        CancelOutcome::NotCancellable(_) => Err(CompatError::new(
            StatusCode::CONFLICT,
            "the message is not pending: a phone's radio has it or it is final",
        )),
        CancelOutcome::Cancelled { view, phones } => {
            for p in &phones {
                state.hub.kick(p);
            }
            Ok(json(StatusCode::OK, &MessageState::from(view)))
        }
    }
}
