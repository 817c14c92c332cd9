//! The suppression list as CSV (RFC 4180, the `csv` crate): `GET /v1/suppressions.csv`
//! exports it, `POST /v1/suppressions/import` adds numbers from a file.
//!
//! Export: a header row `number,keyword,created_at,phone,sim`, then one row per number,
//! oldest first (`created_at` RFC 3339; `phone` and `sim` empty for a number not added by a
//! keyword SMS). Import: `Content-Type: text/csv`, at most `MAX_BODY_BYTES` and
//! [`MAX_IMPORT_ROWS`] rows; a header row naming `number` and optionally `keyword` (in any
//! order, any case); each number E.164, each keyword 1 to 64 bytes (normalised; `import`
//! when the column is absent or the cell empty). A bad row refuses the whole file: a 400
//! `invalid_csv` that names the rows by number (the header is row 1), never their values,
//! and nothing is imported. Numbers already listed keep their entry.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Account;
use super::messages::is_e164;
use crate::AppState;
use crate::domain::auto_reply::MAX_KEYWORD_BYTES;
use crate::domain::optout::normalise;
use crate::error::{AppError, ErrorBody};
use crate::store::{Suppression, now_ms};
use crate::time_fmt::fmt_ms;

/// The most data rows an import may have.
pub const MAX_IMPORT_ROWS: usize = 50_000;
/// The keyword of an imported number whose row names none.
pub const IMPORT: &str = "import";
/// The most bad rows an error names.
const ROWS_NAMED: usize = 20;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportResult {
    /// Data rows read.
    pub rows: usize,
    /// Numbers added to the list.
    pub added: usize,
    /// Numbers already listed (or repeated in the file): left as they were.
    pub already_listed: usize,
}

/// `GET /v1/suppressions.csv`: the whole list.
#[utoipa::path(
    get,
    path = "/v1/suppressions.csv",
    tag = "suppressions",
    responses(
        (status = 200, description = "the list as CSV: number,keyword,created_at,phone,sim", content_type = "text/csv", body = String),
    ),
)]
pub async fn export(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Response, AppError> {
    let rows = state.db.call(move |s| s.all_suppressions(&account)).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |_| AppError::internal();
    w.write_record(["number", "keyword", "created_at", "phone", "sim"])
        .map_err(io)?;
    for s in rows {
        let sim = s.sim.map(|n| n.to_string()).unwrap_or_default();
        w.write_record([
            s.number.as_str(),
            s.keyword.as_str(),
            fmt_ms(s.created_at).as_str(),
            s.phone.as_deref().unwrap_or(""),
            sim.as_str(),
        ])
        .map_err(io)?;
    }
    let body = w.into_inner().map_err(|_| AppError::internal())?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}

/// `POST /v1/suppressions/import`: all rows or none.
#[utoipa::path(
    post,
    path = "/v1/suppressions/import",
    tag = "suppressions",
    request_body(content = String, content_type = "text/csv", description = "a header row (`number`, optionally `keyword`), then one number a row"),
    responses(
        (status = 200, description = "imported", body = ImportResult),
        (status = 400, description = "a bad row, header or file (`invalid_csv`, naming rows, never values): nothing imported", body = ErrorBody),
        (status = 413, description = "over the body limit (`body_too_large`)", body = ErrorBody),
        (status = 415, description = "not `text/csv` (`unsupported_media_type`)", body = ErrorBody),
    ),
)]
pub async fn import(
    State(state): State<AppState>,
    Account(account): Account,
    CsvBody(body): CsvBody,
) -> Result<axum::Json<ImportResult>, AppError> {
    let entries = parse_import(&body, now_ms())?;
    let rows = entries.len();
    let added = state
        .db
        .call(move |s| s.import_suppressions(&account, &entries))
        .await?;
    Ok(axum::Json(ImportResult {
        rows,
        added,
        already_listed: rows - added,
    }))
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::bad_request("invalid_csv", message)
}

/// Reads an import file into entries created `now`; any bad row refuses the whole file.
pub fn parse_import(body: &[u8], now: i64) -> Result<Vec<Suppression>, AppError> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = r
        .headers()
        .map_err(|_| invalid("the header row is not valid UTF-8 CSV"))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let Some(number_col) = col("number") else {
        return Err(invalid(
            "the first row must be a header naming the columns: number[,keyword]",
        ));
    };
    let keyword_col = col("keyword");
    if headers.len() > 1 + usize::from(keyword_col.is_some()) {
        return Err(invalid(
            "the header may name only the columns number and keyword",
        ));
    }
    let mut entries = Vec::new();
    let mut bad: Vec<usize> = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let row = i + 2;
        if i >= MAX_IMPORT_ROWS {
            return Err(invalid(format!(
                "the file has more than {MAX_IMPORT_ROWS} rows"
            )));
        }
        let Ok(rec) = rec else {
            bad.push(row);
            continue;
        };
        let number = rec.get(number_col).unwrap_or("");
        let keyword = keyword_col
            .and_then(|k| rec.get(k))
            .map(normalise)
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| IMPORT.to_string());
        if !is_e164(number) || keyword.len() > MAX_KEYWORD_BYTES {
            bad.push(row);
            continue;
        }
        entries.push(Suppression {
            cursor: 0,
            number: number.to_string(),
            keyword,
            phone: None,
            sim: None,
            created_at: now,
        });
    }
    if !bad.is_empty() {
        let named: Vec<String> = bad.iter().take(ROWS_NAMED).map(usize::to_string).collect();
        let more = if bad.len() > ROWS_NAMED { ", ..." } else { "" };
        return Err(invalid(format!(
            "{} rows are not valid (an E.164 number, a keyword of 1 to {MAX_KEYWORD_BYTES} bytes, \
             as many cells as the header): rows {}{more}; nothing was imported",
            bad.len(),
            named.join(", ")
        )));
    }
    Ok(entries)
}

/// A `text/csv` body within the relay's body limit.
#[derive(Debug)]
pub struct CsvBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for CsvBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        if !crate::error::content_type_is(&req, "text/csv") {
            return Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the file as Content-Type: text/csv",
            ));
        }
        Bytes::from_request(req, state)
            .await
            .map(CsvBody)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        format!("the body exceeds {} bytes", crate::MAX_BODY_BYTES),
                    )
                } else if crate::timed_io::is_body_timeout(&e) {
                    AppError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "body_timeout",
                        "the body did not arrive within the body read timeout",
                    )
                } else {
                    AppError::bad_request("invalid_body", "the body could not be read")
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_and_any_header_order() {
        let body = b"Keyword,NUMBER\n\"Opt, Out\",+15550000001\n,\"+15550000002\"\r\n stop , +15550000003 \n";
        let e = parse_import(body, 7).expect("valid");
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|s| (s.number.as_str(), s.keyword.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("+15550000001", "opt, out"),
                ("+15550000002", "import"),
                ("+15550000003", "stop")
            ]
        );
        assert!(e.iter().all(|s| s.created_at == 7 && s.phone.is_none()));
        assert_eq!(parse_import(b"number\n", 1).expect("empty").len(), 0);
    }

    #[test]
    fn bad_rows_are_named_by_row_never_by_value() {
        let body = b"number\n+15550000001\n5550000002\n+15550000003\nabc\n";
        let e = parse_import(body, 1).expect_err("refused");
        assert_eq!(e.code, "invalid_csv");
        assert!(e.message.contains("rows 3, 5"), "{}", e.message);
        assert!(!e.message.contains("555"), "{}", e.message);
        // A row with more cells than the header is bad too.
        let e = parse_import(b"number\n+15550000001,x\n", 1).expect_err("refused");
        assert!(e.message.contains("rows 2"), "{}", e.message);
        for body in [
            &b""[..],
            b"+15550000001\n",
            b"number,note\n+15550000001,x\n",
        ] {
            assert_eq!(
                parse_import(body, 1).expect_err("refused").code,
                "invalid_csv"
            );
        }
        let long = format!("number,keyword\n+15550000001,{}\n", "k".repeat(65));
        assert!(parse_import(long.as_bytes(), 1).is_err());
        let many = format!("number\n{}", "+15550000001\n".repeat(MAX_IMPORT_ROWS + 1));
        assert!(
            parse_import(many.as_bytes(), 1)
                .expect_err("refused")
                .message
                .contains("more than")
        );
    }
}
