//! Query-string parsing with the server's leniency rules (`web/params.go`).
//!
//! Paging values never fail (bad → default, too big → clamped); ids and timestamps
//! that are present but malformed are 400s.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use super::super::error::{ApiError, ApiResult};
use super::super::ids::is_valid_id;

pub const PER_PAGE_DEFAULT: usize = 60;
pub const PER_PAGE_MAX: usize = 200;

/// The decoded query string; last value wins for repeated keys.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid_param())?;
        Ok(Params(map))
    }
}

/// Page number and clamped page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    pub page: usize,
    pub per_page: usize,
}

impl Paging {
    /// The slice of `items` this page covers.
    pub fn slice<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .skip(self.page.saturating_mul(self.per_page))
            .take(self.per_page)
            .collect()
    }
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Go `strconv.ParseBool` truthiness; anything else is false.
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }

    pub fn paging(&self) -> Paging {
        let parse = |key| self.get(key).and_then(|v| v.parse::<i64>().ok());
        let page = parse("page").filter(|p| *p >= 0).unwrap_or(0);
        let per_page = match parse("per_page") {
            Some(n) if n >= 0 => n.min(PER_PAGE_MAX as i64),
            _ => PER_PAGE_DEFAULT as i64,
        };
        Paging {
            page: usize::try_from(page).unwrap_or(0),
            per_page: usize::try_from(per_page).unwrap_or(PER_PAGE_DEFAULT),
        }
    }

    /// A present integer must parse (400 otherwise); absent is `None`.
    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        self.get(key)
            .map(|v| v.parse::<i64>().map_err(|_| ApiError::invalid_param()))
            .transpose()
    }

    /// A present id must be well-formed (400 otherwise); absent is `None`.
    pub fn id(&self, key: &str) -> ApiResult<Option<&str>> {
        match self.get(key) {
            Some(v) if !is_valid_id(v) => Err(ApiError::invalid_param()),
            other => Ok(other),
        }
    }
}

/// A path id that must be well-formed.
pub fn path_id(id: &str) -> ApiResult<&str> {
    if is_valid_id(id) {
        Ok(id)
    } else {
        Err(ApiError::invalid_param())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn paging_defaults_and_clamps() {
        let p = |pairs| params(pairs).paging();
        assert_eq!(
            p(&[]),
            Paging {
                page: 0,
                per_page: 60
            }
        );
        assert_eq!(p(&[("per_page", "1000")]).per_page, 200);
        assert_eq!(p(&[("per_page", "0")]).per_page, 0);
        assert_eq!(
            p(&[("per_page", "x"), ("page", "-3")]),
            Paging {
                page: 0,
                per_page: 60
            }
        );
        assert_eq!(p(&[("page", "2")]).page, 2);
    }

    #[test]
    fn ints_and_ids_are_validated() {
        let q = params(&[("since", "12x"), ("before", "nope"), ("t", "true")]);
        assert!(q.int("since").is_err());
        assert!(q.id("before").is_err());
        assert_eq!(q.int("absent").ok(), Some(None));
        assert!(q.flag("t"));
        assert!(!q.flag("since"));
    }
}
