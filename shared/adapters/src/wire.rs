//! Formats on the wire and in the table that every adapter shares.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A time as RFC 3339 (what the API answers, the table keeps and carriers send).
/// A time as an index sort key: RFC 3339 in UTC with all nine fractional digits, so that the keys
/// sort as the times do (`rfc3339` drops trailing zeros, and `…:50.5Z` sorts before `…:50Z`).
pub fn sortable(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_keys_sort_as_the_times_do() {
        let base = time::macros::datetime!(2026-12-06 09:40:00 UTC);
        let times =
            [base, base + time::Duration::milliseconds(500), base + time::Duration::milliseconds(120), base + time::Duration::seconds(1)];
        let mut by_key: Vec<_> = times.iter().map(|t| (sortable(*t), *t)).collect();
        by_key.sort();
        let mut by_time = times.to_vec();
        by_time.sort();
        assert_eq!(by_key.into_iter().map(|(_, t)| t).collect::<Vec<_>>(), by_time);
        assert_eq!(sortable(base), "2026-12-06T09:40:00.000000000Z");
    }
}
