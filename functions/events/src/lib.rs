//! The event log: `GET /v1/events?after=&type=&limit=`, the caller's events oldest first after a
//! cursor (one Query), each in the envelope every consumer receives. The console polls it for live
//! updates; a webhook receiver that was down catches up from it.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use patchbay_adapters::http::{ApiError, AuthUser, QueryParams};
use patchbay_adapters::Wiring;
use patchbay_domain::events::{EventLog, EventsApi};
use patchbay_domain::kernel::event::{Event, EventId, EventType};
use patchbay_domain::Limit;
use serde::Serialize;

pub struct EventsFunction {
    pub log: Arc<dyn EventLog>,
}

impl EventsFunction {
    pub fn new(w: &Wiring) -> Self {
        Self { log: w.store.clone() }
    }
}

pub fn router(api: Arc<EventsFunction>) -> Router {
    Router::new().route("/v1/events", get(list)).with_state(api)
}

#[derive(Serialize)]
struct EventList<'a> {
    data: &'a [Event],
    /// Pass it as `after` for the next page; null when nothing follows yet (then poll with the last
    /// event's id).
    next_cursor: Option<String>,
}

async fn list(State(api): State<Arc<EventsFunction>>, auth: AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let user = auth.0;
    let limit = Limit::parse(q.get("limit")).map_err(ApiError::bad_request)?;
    let after = q.get("after").map(|a| EventId::parse("after", a)).transpose().map_err(ApiError::bad_request)?;
    let event_type = q.get("type").map(|t| EventType::parse("type", t)).transpose().map_err(ApiError::bad_request)?;
    let page = EventsApi { log: api.log.as_ref() }.list(&user, after.as_ref(), event_type, limit).await?;
    let body = EventList { data: &page.data, next_cursor: page.next_after.map(String::from) };
    Ok(Json(body).into_response())
}
