//! The one list envelope of the API, `{"items": [...], "next_cursor": "..." | null}`, and the
//! paging rule of every cursor-paged list (`GET /v1/messages`, `GET /v1/inbox`), written once.
//!
//! A paged list asks the store for `limit` rows after `cursor` (an opaque, non-negative
//! number: the store's row cursor), oldest first. A full page has a next cursor, its last
//! row's; a shorter one is the end (`null`). Lists that are never paged (phones, pools, keys,
//! webhooks, ...) answer the same envelope with `next_cursor: null`.

use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The most items a list page holds.
pub const PAGE_MAX: u32 = 500;

/// The page size when a request names none.
pub const PAGE_DEFAULT: u32 = 50;

/// The envelope of every list answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass it back as `cursor` for the next page; `null` at the end (always, for a list that
    /// is not paged).
    pub next_cursor: Option<String>,
}

/// A checked `cursor=&limit=` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows after this store cursor (`None`: from the start).
    pub after: Option<i64>,
    /// 1 to [`PAGE_MAX`].
    pub limit: u32,
}

impl PageRequest {
    /// Checks the query's `cursor` and `limit` (400 `invalid_query` for a bad one).
    pub fn parse(cursor: Option<&str>, limit: Option<u32>) -> Result<Self, AppError> {
        Ok(Self {
            after: parse_cursor(cursor)?,
            limit: page_limit(limit)?,
        })
    }
}

impl<T> Page<T> {
    /// A list that is not paged: every item, no next cursor.
    pub fn all<R>(rows: impl IntoIterator<Item = R>) -> Self
    where
        T: From<R>,
    {
        Self {
            items: rows.into_iter().map(T::from).collect(),
            next_cursor: None,
        }
    }

    /// One page of a paged list: `rows` is what the store answered for `req`, `cursor` a
    /// row's store cursor. A full page ends with the last row's cursor.
    pub fn of<R>(rows: Vec<R>, req: PageRequest, cursor: impl Fn(&R) -> i64) -> Self
    where
        T: From<R>,
    {
        let full = rows.len() >= req.limit as usize;
        let next_cursor = rows.last().filter(|_| full).map(|r| cursor(r).to_string());
        Self {
            items: rows.into_iter().map(T::from).collect(),
            next_cursor,
        }
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

/// A page size: [`PAGE_DEFAULT`] by default, 1 to [`PAGE_MAX`]; anything else is 400
/// `invalid_query` (a silently changed `limit` would hide a client's bug).
pub fn page_limit(limit: Option<u32>) -> Result<u32, AppError> {
    match limit {
        None => Ok(PAGE_DEFAULT),
        Some(n) if (1..=PAGE_MAX).contains(&n) => Ok(n),
        Some(_) => Err(AppError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {PAGE_MAX}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limit_refuses_zero_and_above_the_maximum() {
        assert_eq!(page_limit(None).expect("default"), PAGE_DEFAULT);
        assert_eq!(page_limit(Some(1)).expect("one"), 1);
        assert_eq!(page_limit(Some(PAGE_MAX)).expect("max"), PAGE_MAX);
        for bad in [0, PAGE_MAX + 1, u32::MAX] {
            let e = page_limit(Some(bad)).expect_err("refused");
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_query"));
        }
    }

    #[test]
    fn a_cursor_is_a_non_negative_number() {
        assert_eq!(parse_cursor(None).expect("none"), None);
        assert_eq!(parse_cursor(Some("17")).expect("17"), Some(17));
        for bad in ["-1", "x", "", "1.5"] {
            let e = parse_cursor(Some(bad)).expect_err(bad);
            assert_eq!(e.code, "invalid_query");
        }
    }

    /// A row of a paged list: (store cursor, value).
    #[derive(Debug, PartialEq, Serialize)]
    struct Item(u32);

    impl From<(i64, u32)> for Item {
        fn from((_, v): (i64, u32)) -> Self {
            Item(v)
        }
    }

    #[test]
    fn a_full_page_has_the_last_rows_cursor_and_a_short_one_ends() {
        let req = PageRequest::parse(None, Some(2)).expect("request");
        let full: Page<Item> = Page::of(vec![(10, 1), (12, 2)], req, |r| r.0);
        assert_eq!(full.next_cursor.as_deref(), Some("12"));
        assert_eq!(full.items, [Item(1), Item(2)]);
        let short: Page<Item> = Page::of(vec![(14, 3)], req, |r| r.0);
        assert_eq!(short.next_cursor, None);
        let empty: Page<Item> = Page::of(Vec::<(i64, u32)>::new(), req, |r| r.0);
        assert_eq!(empty.next_cursor, None);
    }

    #[test]
    fn every_list_has_the_same_envelope() {
        let page: Page<Item> = Page::all([(0, 7)]);
        assert_eq!(
            serde_json::to_value(&page).expect("serialises"),
            serde_json::json!({"items": [7], "next_cursor": null})
        );
        let req = PageRequest::parse(Some("3"), Some(1)).expect("request");
        assert_eq!(req.after, Some(3));
        let page: Page<Item> = Page::of(vec![(5, 8)], req, |r| r.0);
        assert_eq!(
            serde_json::to_string(&page).expect("serialises"),
            r#"{"items":[8],"next_cursor":"5"}"#
        );
    }
}
