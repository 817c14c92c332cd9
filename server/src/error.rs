//! The one error type of the HTTP API and the JSON extractors that produce it.
//!
//! Every failure answers `{"error": {"code": "...", "message": "..."}}` with a 4xx or 5xx
//! status. Messages name the field or rule at fault, never a phone number or a message body.
//! Bad input is logged at debug level at most; internal faults are logged as errors.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// An API error: a status, a stable machine code and a human sentence.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error, see the relay's log",
        )
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "the relay's disk is full; nothing was stored",
            ),
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "the database is unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the relay's database is unavailable; nothing was stored, retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, status = %self.status, "request failed");
        } else {
            tracing::debug!(code = self.code, status = %self.status, "request refused");
        }
        (self.status, Json(ErrorBody::from(self))).into_response()
    }
}

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}` (also read
/// back by the command line's client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The `error` of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable (`invalid_number`, `wait_timeout`, ...).
    #[schema(value_type = String)]
    pub code: Cow<'static, str>,
    /// A sentence naming the field or rule at fault.
    pub message: String,
}

impl From<AppError> for ErrorBody {
    fn from(e: AppError) -> Self {
        Self {
            error: ErrorDetail {
                code: Cow::Borrowed(e.code),
                message: e.message,
            },
        }
    }
}

pub use simrelay_protocol::describe_json_error;

/// A JSON body: the content type must be JSON, the size within the body limit, unknown fields
/// are refused by the target type; every failure becomes an [`AppError`].
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !content_type_is(&req, "application/json") {
            return Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        let too_large = || {
            AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body exceeds {} bytes", crate::MAX_BODY_BYTES),
            )
        };
        // An announced oversize body is refused before any of it is read.
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > crate::MAX_BODY_BYTES as u64) {
            return Err(too_large());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else if crate::timed_io::is_body_timeout(&e) {
                AppError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    "the body did not arrive within the body read timeout",
                )
            } else {
                AppError::bad_request("invalid_body", "the body could not be read")
            }
        })?;
        decode_json(&bytes).map(ApiJson)
    }
}

/// Whether the request's `Content-Type` is `mime` (parameters such as `charset` aside).
pub fn content_type_is(req: &Request, mime: &str) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let given = v.split(';').next().unwrap_or("").trim();
            given.eq_ignore_ascii_case(mime)
        })
}

/// Decodes a JSON request body into `T`; a failure is a 400 that names the rule or field at
/// fault and never quotes the body. [`ApiJson`] uses it after its header and size checks.
///
/// A value of the wrong type names its field by its path in the body (`priority`, `to[2]`,
/// `members[0].sub_id`), as long as every key on the path is a short identifier (see
/// [`field_path`]); otherwise the message says "a field".
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let refused = |e: &serde_json::Error, path: Option<String>| {
        let (code, message) = describe_json_error(e);
        let message = match path {
            Some(field) if is_wrong_type(e) => message.replacen("a field", &field, 1),
            _ => message,
        };
        AppError::bad_request(code, message)
    };
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| refused(e.inner(), field_path(e.path())))?;
    de.end().map_err(|e| refused(&e, None))?;
    Ok(value)
}

/// A data error that is not about a field's presence (unknown, missing, repeated): a value of
/// the wrong type, or one its type refuses.
fn is_wrong_type(e: &serde_json::Error) -> bool {
    let text = e.to_string();
    e.is_data()
        && !["unknown field", "missing field", "duplicate field"]
            .iter()
            .any(|p| text.starts_with(p))
}

/// Longest key a field path quotes (as `describe_json_error` quotes unknown fields).
const MAX_PATH_KEY: usize = 32;

/// A key that may be quoted: a letter or `_`, then letters, digits and `_`, at most 32
/// characters and 4 digits. A caller's key can be anything (a phone number, a text).
fn quotable_key(key: &str) -> bool {
    key.len() <= MAX_PATH_KEY
        && key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && key.bytes().filter(u8::is_ascii_digit).count() <= 4
}

/// The path of the value at fault (`members[0].sub_id`), `None` for the body itself or for a
/// path through a key that may not be quoted.
pub fn field_path(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if quotable_key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Query parameters with unknown ones refused by the target type.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(e) => {
                let text = e.body_text();
                let message = if text.contains("unknown field") {
                    "unknown query parameter".to_string()
                } else if let Some(name) = query_field(&text) {
                    format!("{name} has the wrong type or an invalid value")
                } else {
                    "a query parameter is missing or invalid".to_string()
                };
                Err(AppError::bad_request("invalid_query", message))
            }
        }
    }
}

/// The parameter named by axum's query rejection (`Failed to deserialize query string:
/// limit: invalid digit found in string`), when it is a quotable key.
fn query_field(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("Failed to deserialize query string: ")?;
    let (name, _) = rest.split_once(": ")?;
    quotable_key(name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/protocol.md, "Errors".
    #[test]
    fn an_error_has_the_documented_shape() {
        let body = ErrorBody::from(AppError::bad_request("invalid_text", "text is empty"));
        assert_eq!(
            serde_json::to_string(&body).expect("serialises"),
            r#"{"error":{"code":"invalid_text","message":"text is empty"}}"#
        );
        let back: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"x","message":"y"}}"#).expect("reads back");
        assert_eq!(
            (back.error.code.as_ref(), back.error.message.as_str()),
            ("x", "y")
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        to: Vec<String>,
        #[serde(default)]
        priority: Option<i32>,
        #[serde(default)]
        members: Vec<Member>,
        #[serde(default)]
        tags: std::collections::HashMap<String, u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Member {
        phone: String,
        sub_id: i64,
    }

    fn refusal(body: &str) -> (&'static str, String) {
        let e = decode_json::<Body>(body.as_bytes()).expect_err("refused");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        (e.code, e.message)
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let (code, m) = refusal(r#"{"to": ["+15551230001"], "priority": "high"}"#);
        assert_eq!(code, "invalid_body");
        assert!(m.starts_with("priority has the wrong type"), "{m}");
        assert!(!m.contains("high"), "the value is never quoted: {m}");
        let (_, m) = refusal(r#"{"to": ["+15551230001", 15551230002]}"#);
        assert!(m.starts_with("to[1] has the wrong type"), "{m}");
        assert!(!m.contains("1555"), "{m}");
        let (_, m) = refusal(r#"{"to": [], "members": [{"phone": "p", "sub_id": "one"}]}"#);
        assert!(m.starts_with("members[0].sub_id has the wrong type"), "{m}");
        let (_, m) = refusal(r#"{"to": "+15551230001"}"#);
        assert!(m.starts_with("to has the wrong type"), "{m}");
    }

    #[test]
    fn a_path_through_a_callers_key_is_not_quoted() {
        let (_, m) = refusal(r#"{"to": [], "tags": {"ok_tag": "x"}}"#);
        assert!(m.starts_with("tags.ok_tag has the wrong type"), "{m}");
        let (_, m) = refusal(r#"{"to": [], "tags": {"+15551230001": "x"}}"#);
        assert!(m.starts_with("a field has the wrong type"), "{m}");
        assert!(!m.contains("1555"), "{m}");
    }

    #[test]
    fn presence_errors_and_bad_json_keep_their_messages() {
        let (code, m) = refusal(r#"{"to": [], "colour": 1}"#);
        assert_eq!(code, "invalid_body");
        assert!(m.starts_with("unknown field `colour`"), "{m}");
        let (_, m) = refusal(r#"{"priority": 1}"#);
        assert!(m.starts_with("missing field `to`"), "{m}");
        let (code, _) = refusal(r#"{"to": []} trailing"#);
        assert_eq!(code, "invalid_json");
        let (code, _) = refusal(r#"{"to": ["#);
        assert_eq!(code, "invalid_json");
        let (_, m) = refusal("[]");
        assert!(
            m.starts_with("a field has the wrong type"),
            "the body itself: {m}"
        );
    }

    #[test]
    fn a_query_rejection_names_a_quotable_parameter() {
        let text = "Failed to deserialize query string: limit: invalid digit found in string";
        assert_eq!(query_field(text), Some("limit"));
        let odd = "Failed to deserialize query string: unknown variant `x`, expected one of: a";
        assert_eq!(query_field(odd), None);
        assert_eq!(query_field("something else: x: y"), None);
    }
}
