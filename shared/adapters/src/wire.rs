//! Formats on the wire and in the table that every adapter shares.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A time as RFC 3339 (what the API answers, the table keeps and carriers send).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}
