//! Keyset pagination for newest-first lists: the cursor is the (created_at, id) of the last item
//! of the previous page, opaque to clients (base64url of `<micros>:<uuid>`).
//!
//! A cursor comes back from the client, so it is input like any other: anything that is not a
//! cursor this API could have issued (garbage, another encoding, a timestamp before 1970 or after
//! 9999 such as 100000 BC, which chrono represents and Postgres cannot) is a 400 before any query
//! runs, never a database error.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use lambda_http::Request;
use uuid::Uuid;

use crate::platform::error::ApiError;
use crate::platform::http::query_param;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

/// The oldest timestamp a cursor may carry: the Unix epoch (rows are stamped `now()`).
const EARLIEST_MICROS: i64 = 0;
/// The newest: 9999-12-31T23:59:59.999999Z, far inside what Postgres' timestamptz holds.
const LATEST_MICROS: i64 = 253_402_300_799_999_999;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_at.timestamp_micros(), self.id))
    }

    pub fn decode(raw: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::bad_request("`cursor` is not a cursor returned by this API");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        if !(EARLIEST_MICROS..=LATEST_MICROS).contains(&micros) {
            return Err(invalid());
        }
        let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
        let id = Uuid::parse_str(id).map_err(|_| invalid())?;
        Ok(Cursor { created_at, id })
    }
}

pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// A page from a query that fetched `limit + 1` rows: the extra row only says that there is a
    /// next page (one query, no COUNT), and the cursor is the last row kept.
    pub fn from_rows_plus_one(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let limit = limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

/// `?limit=` (1–100, default 50) and `?cursor=` from the query string; bad values are a 400.
pub fn page_params(req: &Request) -> Result<(u32, Option<Cursor>), ApiError> {
    let limit = match query_param(req, "limit")? {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "`limit` must be an integer from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    let cursor = query_param(req, "cursor")?.map(Cursor::decode).transpose()?;
    Ok((limit, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "%%%", "bm90LWEtY3Vyc29y", &URL_SAFE_NO_PAD.encode("12:not-a-uuid")] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
        // Timestamps chrono holds but Postgres (or any real row) cannot: refused before a query.
        let id = Uuid::new_v4();
        for micros in [-3_000_000_000_000_000_000_i64, -1, 253_402_300_800_000_000, i64::MAX] {
            let raw = URL_SAFE_NO_PAD.encode(format!("{micros}:{id}"));
            assert!(Cursor::decode(&raw).is_err(), "{micros}");
        }
        let latest = URL_SAFE_NO_PAD.encode(format!("{LATEST_MICROS}:{id}"));
        assert!(Cursor::decode(&latest).is_ok());
    }
}
