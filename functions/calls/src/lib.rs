//! Calls and the per-user dashboard: `GET /v1/calls` (newest first, filtered) and
//! `GET /v1/dashboard?from=&to=` (one Query over the user's per-day counters).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use patchbay_adapters::http::{ApiError, AuthUser, QueryParams};
use patchbay_adapters::wire::rfc3339;
use patchbay_adapters::Wiring;
use patchbay_domain::calls::{day_range, dollars, Call, CallFilter, CallReader, CallSource, CallsApi, Counters, Dashboard};
use patchbay_domain::{AssistantId, Cursor, Limit, ValidationError, E164};
use serde::Serialize;
use time::OffsetDateTime;

pub struct CallsFunction {
    pub store: Arc<dyn CallReader>,
}

impl CallsFunction {
    pub fn new(w: &Wiring) -> Self {
        Self { store: w.store.clone() }
    }

    fn ops(&self) -> CallsApi<'_> {
        CallsApi { store: self.store.as_ref() }
    }
}

pub fn router(api: Arc<CallsFunction>) -> Router {
    Router::new().route("/v1/calls", get(list)).route("/v1/dashboard", get(dashboard)).with_state(api)
}

#[derive(Serialize)]
struct CallView {
    id: String,
    source: CallSource,
    status: &'static str,
    assistant_id: Option<String>,
    connection_id: Option<String>,
    phone_number: Option<String>,
    customer: Option<String>,
    from: Option<String>,
    to: Option<String>,
    direction: Option<String>,
    started_at: String,
    answered_at: Option<String>,
    ended_at: Option<String>,
    duration_seconds: u64,
    ended_reason: Option<String>,
    hangup_cause: Option<String>,
    /// US dollars, as a decimal string.
    cost: Option<String>,
    summary: Option<String>,
    recording_url: Option<String>,
}

impl From<&Call> for CallView {
    fn from(c: &Call) -> Self {
        let u = &c.update;
        let sip = c.source == CallSource::Sip;
        Self {
            id: c.id.clone(),
            source: c.source,
            status: if u.ends { "ended" } else { "in_progress" },
            assistant_id: u.assistant_id.map(|a| a.to_string()),
            connection_id: u.connection_id.map(|c| c.to_string()),
            phone_number: u.phone_number.as_ref().map(|e| e.to_string()),
            customer: u.customer.clone(),
            from: u.from.clone(),
            to: u.to.clone(),
            direction: u.direction.clone(),
            started_at: rfc3339(c.started()),
            answered_at: u.answered_at.map(rfc3339),
            ended_at: u.ended_at.map(rfc3339),
            duration_seconds: c.seconds(),
            ended_reason: if sip { None } else { u.ended_reason.clone() },
            hangup_cause: if sip { u.ended_reason.clone() } else { None },
            cost: u.cost_micros.map(dollars),
            summary: u.summary.clone(),
            recording_url: u.recording_url.clone(),
        }
    }
}

fn bad(field: &str, code: &'static str, message: &str) -> ApiError {
    ApiError::bad_request(ValidationError::new(field, code, message))
}

async fn list(State(api): State<Arc<CallsFunction>>, AuthUser(user): AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let limit = Limit::parse(q.get("limit")).map_err(ApiError::bad_request)?;
    let cursor = q.get("cursor").map(Cursor::parse).transpose().map_err(ApiError::bad_request)?;
    let day = |field: &str| -> Result<Option<time::Date>, ApiError> {
        match q.get(field) {
            None => Ok(None),
            Some(raw) => {
                let fmt = time::macros::format_description!("[year]-[month]-[day]");
                time::Date::parse(raw, &fmt).map(Some).map_err(|_| bad(field, "invalid_date", "must be a date as YYYY-MM-DD"))
            }
        }
    };
    let filter = CallFilter {
        source: match q.get("source") {
            None => None,
            Some("assistant") => Some(CallSource::Assistant),
            Some("sip") => Some(CallSource::Sip),
            Some(_) => return Err(bad("source", "invalid_source", "must be assistant or sip")),
        },
        assistant_id: q.get("assistant_id").map(AssistantId::parse).transpose().map_err(|e| ApiError::bad_request(e.at("assistant_id")))?,
        phone_number: q.get("phone_number").map(E164::parse).transpose().map_err(|e| ApiError::bad_request(e.at("phone_number")))?,
        from: day("from")?,
        to: day("to")?,
    };
    let page = api.ops().list(&user, &filter, cursor.as_ref(), limit).await.map_err(|e| match e {
        patchbay_domain::StoreError::NotFound => bad("cursor", "invalid_cursor", "must be a next_cursor value from a previous page"),
        other => other.into(),
    })?;
    let data: Vec<CallView> = page.data.iter().map(CallView::from).collect();
    Ok(Json(serde_json::json!({"data": data, "next_cursor": page.next_cursor.as_ref().map(|c| c.as_str())})).into_response())
}

#[derive(Serialize)]
struct CountersView {
    messages_sent: i64,
    messages_received: i64,
    messages_delivered: i64,
    messages_failed: i64,
    calls: i64,
    call_seconds: i64,
    cost: String,
}

impl From<&Counters> for CountersView {
    fn from(c: &Counters) -> Self {
        Self {
            messages_sent: c.messages_sent,
            messages_received: c.messages_received,
            messages_delivered: c.messages_delivered,
            messages_failed: c.messages_failed,
            calls: c.calls,
            call_seconds: c.call_seconds,
            cost: dollars(c.cost_micros),
        }
    }
}

fn date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn dashboard_view(d: &Dashboard) -> serde_json::Value {
    serde_json::json!({
        "from": date(d.from),
        "to": date(d.to),
        "totals": CountersView::from(&d.totals),
        "days": d.days.iter().map(|(day, c)| {
            let mut v = serde_json::to_value(CountersView::from(c)).unwrap_or_default();
            v["date"] = serde_json::Value::String(date(*day));
            v
        }).collect::<Vec<_>>(),
        "assistants": d.assistants.iter().map(|(id, name, c)| serde_json::json!({
            "assistant_id": id.to_string(), "name": name, "calls": c.calls, "call_seconds": c.call_seconds, "cost": dollars(c.cost_micros),
        })).collect::<Vec<_>>(),
    })
}

async fn dashboard(State(api): State<Arc<CallsFunction>>, AuthUser(user): AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let (from, to) = day_range(q.get("from"), q.get("to"), OffsetDateTime::now_utc().date()).map_err(ApiError::bad_request)?;
    let d = api.ops().dashboard(&user, from, to).await?;
    Ok(Json(dashboard_view(&d)).into_response())
}
