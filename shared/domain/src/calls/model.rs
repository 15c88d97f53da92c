//! Calls and the per-user dashboard. A call record is merged from its events (Vapi's status updates
//! and end-of-call report; Telnyx's initiated, answered and hangup), which arrive duplicated and in
//! any order; what a call adds to the dashboard is a pure function of the merged record, so the store
//! moves the day's counters by the difference in the same transaction as the record.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::kernel::error::ValidationError;
use crate::kernel::ids::{AssistantId, ConnectionId, UserId};
use crate::kernel::phone::E164;

/// Where a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallSource {
    /// A Vapi assistant answered or placed it (end-of-call reports).
    Assistant,
    /// The dialer: a SIP connection's call (Telnyx call events).
    Sip,
}

/// What one event says about a call. Absent fields say nothing; times keep the first value seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallUpdate {
    pub assistant_id: Option<AssistantId>,
    pub assistant_name: Option<String>,
    pub connection_id: Option<ConnectionId>,
    pub phone_number: Option<E164>,
    pub customer: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub direction: Option<String>,
    pub started_at: Option<OffsetDateTime>,
    pub answered_at: Option<OffsetDateTime>,
    pub ended_at: Option<OffsetDateTime>,
    /// Vapi states the duration; for SIP calls it is answered → hangup.
    pub duration_seconds: Option<u64>,
    pub ended_reason: Option<String>,
    /// Integer micro-dollars.
    pub cost_micros: Option<i64>,
    pub summary: Option<String>,
    pub recording_url: Option<String>,
    /// Whether this event ends the call (an end-of-call report, a hangup).
    pub ends: bool,
}

/// A call of a user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub user_id: UserId,
    /// `vapi-{call id}` or `sip-{call session id}`: unique, and the same for every event of one call.
    pub id: String,
    pub source: CallSource,
    pub update: CallUpdate,
    /// The first time any event of the call was seen (orders calls whose start is not known yet).
    pub first_seen: OffsetDateTime,
    pub version: u64,
}

impl Call {
    pub fn new(user_id: UserId, id: String, source: CallSource, now: OffsetDateTime) -> Self {
        Self { user_id, id, source, update: CallUpdate::default(), first_seen: now, version: 0 }
    }

    /// The call with one more event folded in.
    pub fn merge(&self, e: &CallUpdate) -> Self {
        let u = &self.update;
        fn first<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            a.clone().or_else(|| b.clone())
        }
        fn latest<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            b.clone().or_else(|| a.clone())
        }
        let merged = CallUpdate {
            assistant_id: first(&u.assistant_id, &e.assistant_id),
            assistant_name: latest(&u.assistant_name, &e.assistant_name),
            connection_id: first(&u.connection_id, &e.connection_id),
            phone_number: first(&u.phone_number, &e.phone_number),
            customer: first(&u.customer, &e.customer),
            from: first(&u.from, &e.from),
            to: first(&u.to, &e.to),
            direction: first(&u.direction, &e.direction),
            started_at: first(&u.started_at, &e.started_at),
            answered_at: first(&u.answered_at, &e.answered_at),
            ended_at: first(&u.ended_at, &e.ended_at),
            duration_seconds: latest(&u.duration_seconds, &e.duration_seconds),
            ended_reason: first(&u.ended_reason, &e.ended_reason),
            cost_micros: latest(&u.cost_micros, &e.cost_micros),
            summary: latest(&u.summary, &e.summary),
            recording_url: latest(&u.recording_url, &e.recording_url),
            ends: u.ends || e.ends,
        };
        Self { update: merged, ..self.clone() }
    }

    /// When the call started, as well as it is known.
    pub fn started(&self) -> OffsetDateTime {
        self.update.started_at.or(self.update.answered_at).or(self.update.ended_at).unwrap_or(self.first_seen)
    }

    /// Seconds talked: Vapi's figure, or answered → ended for a SIP call (0 if never answered).
    pub fn seconds(&self) -> u64 {
        let u = &self.update;
        if let Some(d) = u.duration_seconds {
            return d;
        }
        match (u.answered_at, u.ended_at) {
            (Some(a), Some(e)) if e > a => (e - a).whole_seconds() as u64,
            _ => 0,
        }
    }

    /// What the call adds to the dashboard: nothing until it ended, then one call, its seconds and
    /// its cost, on the UTC day it started (and to its assistant's figures).
    pub fn contribution(&self) -> Option<Contribution> {
        if !self.update.ends {
            return None;
        }
        Some(Contribution {
            day: self.started().date(),
            assistant: self.update.assistant_id.map(|a| (a, self.update.assistant_name.clone().unwrap_or_default())),
            counters: Counters {
                calls: 1,
                call_seconds: self.seconds() as i64,
                cost_micros: self.update.cost_micros.unwrap_or(0),
                ..Default::default()
            },
        })
    }
}

/// The dashboard's counters (for one day, an assistant's day, or a range's total).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub messages_sent: i64,
    pub messages_received: i64,
    pub messages_delivered: i64,
    pub messages_failed: i64,
    pub calls: i64,
    pub call_seconds: i64,
    pub cost_micros: i64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.messages_sent += o.messages_sent;
        self.messages_received += o.messages_received;
        self.messages_delivered += o.messages_delivered;
        self.messages_failed += o.messages_failed;
        self.calls += o.calls;
        self.call_seconds += o.call_seconds;
        self.cost_micros += o.cost_micros;
    }

    pub fn minus(&self, o: &Counters) -> Counters {
        Counters {
            messages_sent: self.messages_sent - o.messages_sent,
            messages_received: self.messages_received - o.messages_received,
            messages_delivered: self.messages_delivered - o.messages_delivered,
            messages_failed: self.messages_failed - o.messages_failed,
            calls: self.calls - o.calls,
            call_seconds: self.call_seconds - o.call_seconds,
            cost_micros: self.cost_micros - o.cost_micros,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }
}

/// What one finished call adds, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    pub day: Date,
    pub assistant: Option<(AssistantId, String)>,
    pub counters: Counters,
}

/// The counter moves that take a call from `before` to `after` (at most two days, with their assistant).
pub fn contribution_moves(before: Option<&Contribution>, after: Option<&Contribution>) -> Vec<Contribution> {
    match (before, after) {
        (None, None) => vec![],
        (None, Some(a)) => vec![a.clone()],
        (Some(b), None) => vec![Contribution { counters: Counters::default().minus(&b.counters), ..b.clone() }],
        (Some(b), Some(a)) if b.day == a.day && b.assistant.as_ref().map(|x| x.0) == a.assistant.as_ref().map(|x| x.0) => {
            let d = a.counters.minus(&b.counters);
            if d.is_zero() {
                vec![]
            } else {
                vec![Contribution { counters: d, ..a.clone() }]
            }
        }
        (Some(b), Some(a)) => vec![Contribution { counters: Counters::default().minus(&b.counters), ..b.clone() }, a.clone()],
    }
}

/// Cost as the API answers it: a decimal string of US dollars (micro-dollar precision, trailing zeros cut to 2 places).
pub fn dollars(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let s = format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000);
    let trimmed = s.trim_end_matches('0');
    let dot = trimmed.find('.').unwrap_or(trimmed.len());
    if trimmed.len() - dot < 3 {
        format!("{}{}", trimmed, "0".repeat(3 - (trimmed.len() - dot)))
    } else {
        trimmed.to_owned()
    }
}

/// Vapi's float of US dollars as integer micro-dollars (rounded to the nearest).
pub fn micros_of(dollars: f64) -> Option<i64> {
    dollars.is_finite().then(|| (dollars * 1_000_000.0).round() as i64)
}

/// `from`/`to` of the dashboard: UTC days, at most 366, default the last 30.
pub fn day_range(from: Option<&str>, to: Option<&str>, today: Date) -> Result<(Date, Date), ValidationError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let parse = |field: &str, raw: &str| {
        Date::parse(raw, &fmt).map_err(|_| ValidationError::new(field, "invalid_date", "must be a date as YYYY-MM-DD"))
    };
    let to = to.map(|t| parse("to", t)).transpose()?.unwrap_or(today);
    let from = from.map(|f| parse("from", f)).transpose()?.unwrap_or(to - time::Duration::days(29));
    if from > to {
        return Err(ValidationError::new("from", "invalid_range", "must not be after to"));
    }
    if (to - from).whole_days() >= 366 {
        return Err(ValidationError::new("from", "range_too_long", "the range is at most 366 days"));
    }
    Ok((from, to))
}

/// `GET /v1/calls` filters.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub source: Option<CallSource>,
    pub assistant_id: Option<AssistantId>,
    pub phone_number: Option<E164>,
    /// UTC days, inclusive, on the call's start.
    pub from: Option<Date>,
    pub to: Option<Date>,
}

impl CallFilter {
    pub fn matches(&self, c: &Call) -> bool {
        let u = &c.update;
        let day = c.started().date();
        self.source.is_none_or(|s| s == c.source)
            && self.assistant_id.is_none_or(|a| u.assistant_id == Some(a))
            && self.phone_number.as_ref().is_none_or(|p| {
                u.phone_number.as_ref() == Some(p) || u.from.as_deref() == Some(p.as_str()) || u.to.as_deref() == Some(p.as_str())
            })
            && self.from.is_none_or(|f| day >= f)
            && self.to.is_none_or(|t| day <= t)
    }
}

/// One stored counter row: a day's, or an assistant's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRow {
    pub day: time::Date,
    pub assistant: Option<(AssistantId, String)>,
    pub counters: Counters,
}

/// The dashboard of a range: totals, every day (zeros included), and each assistant's share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    pub from: Date,
    pub to: Date,
    pub totals: Counters,
    pub days: Vec<(Date, Counters)>,
    pub assistants: Vec<(AssistantId, String, Counters)>,
}

impl Dashboard {
    /// From the stored rows of the range.
    pub fn from_rows(from: Date, to: Date, rows: &[StatsRow]) -> Self {
        let mut days = Vec::new();
        let mut d = from;
        while d <= to {
            days.push((d, Counters::default()));
            d = d.next_day().unwrap_or(d);
            if d == from {
                break;
            }
        }
        let mut totals = Counters::default();
        let mut assistants: Vec<(AssistantId, String, Counters)> = Vec::new();
        for r in rows.iter().filter(|r| r.day >= from && r.day <= to) {
            match &r.assistant {
                None => {
                    totals.add(&r.counters);
                    if let Some((_, c)) = days.iter_mut().find(|(day, _)| *day == r.day) {
                        c.add(&r.counters);
                    }
                }
                Some((id, name)) => match assistants.iter_mut().find(|(a, _, _)| a == id) {
                    Some((_, n, c)) => {
                        c.add(&r.counters);
                        if !name.is_empty() {
                            *n = name.clone();
                        }
                    }
                    None => assistants.push((*id, name.clone(), r.counters)),
                },
            }
        }
        Self { from, to, totals, days, assistants }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_795_316_400 + s).unwrap()
    }

    #[test]
    fn sip_events_in_any_order_end_in_the_same_record_and_count_once() {
        let init = CallUpdate { started_at: Some(at(0)), from: Some("+1".into()), ..Default::default() };
        let answered = CallUpdate { answered_at: Some(at(5)), ..Default::default() };
        let hangup = CallUpdate { ended_at: Some(at(65)), ended_reason: Some("normal_clearing".into()), ends: true, ..Default::default() };
        let u = UserId::parse("u").unwrap();
        let orders = [[&init, &answered, &hangup], [&hangup, &answered, &init], [&answered, &hangup, &init], [&hangup, &init, &answered]];
        let mut results = vec![];
        for order in orders {
            let mut c = Call::new(u.clone(), "sip-1".into(), CallSource::Sip, at(100));
            let mut total = Counters::default();
            for e in order {
                let next = c.merge(e);
                for m in contribution_moves(c.contribution().as_ref(), next.contribution().as_ref()) {
                    total.add(&m.counters);
                }
                // A duplicate changes nothing.
                let again = next.merge(e);
                assert!(contribution_moves(next.contribution().as_ref(), again.contribution().as_ref()).is_empty());
                c = next;
            }
            assert_eq!((total.calls, total.call_seconds), (1, 60));
            results.push(c.update);
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn money_and_ranges() {
        assert_eq!(dollars(1_234_500), "1.2345");
        assert_eq!(dollars(0), "0.00");
        assert_eq!(dollars(10_000_000), "10.00");
        assert_eq!(dollars(150_000), "0.15");
        assert_eq!(micros_of(0.0123456), Some(12_346));
        let today = Date::from_calendar_date(2026, time::Month::November, 23).unwrap();
        assert_eq!(day_range(None, None, today).unwrap().0, Date::from_calendar_date(2026, time::Month::October, 25).unwrap());
        assert_eq!(day_range(Some("2025-01-01"), None, today).unwrap_err().code, "range_too_long");
        assert_eq!(day_range(Some("2026-13-01"), None, today).unwrap_err().field, "from");
    }
}
