//! Events: the log (`GET /v1/events?after=&type=&limit=`, the caller's events oldest first after a
//! cursor, one Query) and the webhook endpoints that receive them (`/v1/webhook-endpoints`: CRUD, a
//! secret rotation, a test delivery, the attempts, a replay). An endpoint's signing secret is in two
//! answers only (the create and the rotation); it is never logged, stored in the table or queued.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_adapters::http::json::{not_null, present};
use patchbay_adapters::http::{idempotency_key, ApiError, AuthUser, IdPath, JsonBody, QueryParams};
use patchbay_adapters::wire::rfc3339;
use patchbay_adapters::Wiring;
use patchbay_domain::events::{
    parse_description, parse_event_types, DeliveryAttempt, DeliveryQueue, EndpointPatch, EndpointSecrets, EndpointStore, EndpointUrl,
    Endpoints, EventLog, EventsApi, NewEndpoint, UrlGuard, WebhookEndpoint, WebhookSecret, WithSecret,
};
use patchbay_domain::kernel::event::{Event, EventId, EventType};
use patchbay_domain::kernel::ids::EndpointId;
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::{Cursor, Limit, ValidationError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub struct EventsFunction {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn EndpointStore>,
    pub secrets: Arc<dyn EndpointSecrets>,
    pub guard: Arc<dyn UrlGuard>,
    pub queue: Arc<dyn DeliveryQueue>,
}

impl EventsFunction {
    pub fn new(w: &Wiring) -> Self {
        Self {
            log: w.store.clone(),
            store: w.store.clone(),
            secrets: w.endpoint_secrets(),
            guard: w.webhook_http(),
            queue: w.webhook_queue(),
        }
    }

    fn endpoints(&self) -> Endpoints<'_> {
        Endpoints {
            store: self.store.as_ref(),
            secrets: self.secrets.as_ref(),
            guard: self.guard.as_ref(),
            log: self.log.as_ref(),
            queue: self.queue.as_ref(),
        }
    }
}

pub fn router(api: Arc<EventsFunction>) -> Router {
    Router::new()
        .route("/v1/events", get(list_events))
        .route("/v1/webhook-endpoints", post(create).get(list))
        .route("/v1/webhook-endpoints/{id}", get(show).patch(update).delete(delete))
        .route("/v1/webhook-endpoints/{id}/rotate-secret", post(rotate))
        .route("/v1/webhook-endpoints/{id}/test", post(test))
        .route("/v1/webhook-endpoints/{id}/deliveries", get(deliveries))
        .route("/v1/webhook-endpoints/{id}/replay", post(replay))
        .with_state(api)
}

#[derive(Serialize)]
struct EventList<'a> {
    data: &'a [Event],
    /// Pass it as `after` for the next page; null when nothing follows yet (then poll with the last
    /// event's id).
    next_cursor: Option<String>,
}

async fn list_events(State(api): State<Arc<EventsFunction>>, AuthUser(user): AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let limit = Limit::parse(q.get("limit")).map_err(ApiError::bad_request)?;
    let after = q.get("after").map(|a| EventId::parse("after", a)).transpose().map_err(ApiError::bad_request)?;
    let event_type = q.get("type").map(|t| EventType::parse("type", t)).transpose().map_err(ApiError::bad_request)?;
    let page = EventsApi { log: api.log.as_ref() }.list(&user, after.as_ref(), event_type, limit).await?;
    Ok(Json(EventList { data: &page.data, next_cursor: page.next_after.map(String::from) }).into_response())
}

#[derive(Serialize)]
struct EndpointView {
    id: String,
    url: String,
    event_types: Vec<EventType>,
    description: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<String>,
    created_at: String,
    updated_at: String,
    /// Only in the answers that made it (the create, a rotation): shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl EndpointView {
    fn new(e: &WebhookEndpoint, secret: Option<&WebhookSecret>) -> Self {
        Self {
            id: e.id.to_string(),
            url: e.url.as_str().to_owned(),
            event_types: e.event_types.clone(),
            description: e.description.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(rfc3339),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
            secret: secret.map(|s| s.expose().to_owned()),
        }
    }
}

fn url_field(raw: &str) -> Result<EndpointUrl, ApiError> {
    EndpointUrl::parse(raw).map_err(ApiError::unprocessable)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    #[serde(default, deserialize_with = "not_null")]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    enabled: Option<bool>,
}

async fn create(
    State(api): State<Arc<EventsFunction>>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let new = NewEndpoint {
        url: url_field(&body.url)?,
        event_types: parse_event_types(body.event_types.as_deref().unwrap_or_default()).map_err(ApiError::unprocessable)?,
        description: parse_description(body.description.as_deref()).map_err(ApiError::unprocessable)?,
        enabled: body.enabled.unwrap_or(true),
    };
    let fingerprint = format!(
        "{}|{:?}|{:?}|{}",
        new.url.as_str(),
        new.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        new.description,
        new.enabled
    );
    let created = api.endpoints().create(&user, new, key.as_ref().map(|k| (k, fingerprint.as_str())), OffsetDateTime::now_utc()).await?;
    let (status, WithSecret { endpoint, secret }) = match created {
        Created::New(w) => (StatusCode::CREATED, w),
        Created::Replayed(w) => (StatusCode::OK, w),
    };
    let location = format!("/v1/webhook-endpoints/{}", endpoint.id);
    Ok((status, [("location", location)], Json(EndpointView::new(&endpoint, secret.as_ref()))).into_response())
}

async fn list(State(api): State<Arc<EventsFunction>>, AuthUser(user): AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let limit = Limit::parse(q.get("limit")).map_err(ApiError::bad_request)?;
    let cursor = q.get("cursor").map(Cursor::parse).transpose().map_err(ApiError::bad_request)?;
    let page = api.endpoints().list(&user, cursor.as_ref(), limit).await?;
    let data: Vec<EndpointView> = page.data.iter().map(|e| EndpointView::new(e, None)).collect();
    Ok(Json(serde_json::json!({"data": data, "next_cursor": page.next_cursor.map(|c| c.as_str().to_owned())})).into_response())
}

async fn show(
    State(api): State<Arc<EventsFunction>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<EndpointId>,
) -> Result<Response, ApiError> {
    Ok(Json(EndpointView::new(&api.endpoints().get(&user, id).await?, None)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "not_null")]
    url: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    event_types: Option<Vec<String>>,
    /// Absent: unchanged; null or blank: cleared.
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "not_null")]
    enabled: Option<bool>,
}

async fn update(
    State(api): State<Arc<EventsFunction>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<EndpointId>,
    JsonBody(body): JsonBody<PatchBody>,
) -> Result<Response, ApiError> {
    let patch = EndpointPatch {
        url: body.url.as_deref().map(url_field).transpose()?,
        event_types: body.event_types.as_deref().map(parse_event_types).transpose().map_err(ApiError::unprocessable)?,
        description: body.description.map(|d| parse_description(d.as_deref())).transpose().map_err(ApiError::unprocessable)?,
        enabled: body.enabled,
    };
    if patch == EndpointPatch::default() {
        return Err(ApiError::unprocessable(ValidationError::new(
            "body",
            "empty_patch",
            "name at least one of url, event_types, description, enabled",
        )));
    }
    let e = api.endpoints().update(&user, id, &patch, OffsetDateTime::now_utc()).await?;
    Ok(Json(EndpointView::new(&e, None)).into_response())
}

async fn delete(
    State(api): State<Arc<EventsFunction>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<EndpointId>,
) -> Result<Response, ApiError> {
    api.endpoints().delete(&user, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rotate(
    State(api): State<Arc<EventsFunction>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<EndpointId>,
) -> Result<Response, ApiError> {
    let WithSecret { endpoint, secret } = api.endpoints().rotate(&user, id, OffsetDateTime::now_utc()).await?;
    Ok(Json(EndpointView::new(&endpoint, secret.as_ref())).into_response())
}

async fn test(
    State(api): State<Arc<EventsFunction>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<EndpointId>,
) -> Result<Response, ApiError> {
    let event = api.endpoints().test(&user, id, OffsetDateTime::now_utc()).await?;
    Ok((StatusCode::ACCEPTED, Json(event)).into_response())
}

#[derive(Serialize)]
struct AttemptView {
    id: String,
    event_id: String,
    event_type: EventType,
    at: String,
    status: Option<u16>,
    duration_ms: u64,
    error: Option<String>,
    succeeded: bool,
    replay: bool,
}

impl From<&DeliveryAttempt> for AttemptView {
    fn from(a: &DeliveryAttempt) -> Self {
        Self {
            id: a.id.clone(),
            event_id: a.event_id.clone(),
            event_type: a.event_type,
            at: rfc3339(a.at),
            status: a.status,
            duration_ms: a.duration_ms,
            error: a.error.clone(),
            succeeded: a.succeeded(),
            replay: a.replay,
        }
    }
}

async fn deliveries(
    State(api): State<Arc<EventsFunction>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<EndpointId>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let limit = Limit::parse(q.get("limit")).map_err(ApiError::bad_request)?;
    let cursor = q.get("cursor").map(Cursor::parse).transpose().map_err(ApiError::bad_request)?;
    let page = api.endpoints().attempts(&user, id, cursor.as_ref(), limit).await?;
    let data: Vec<AttemptView> = page.data.iter().map(AttemptView::from).collect();
    Ok(Json(serde_json::json!({"data": data, "next_cursor": page.next_cursor.map(|c| c.as_str().to_owned())})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    since: String,
    #[serde(default, deserialize_with = "not_null")]
    until: Option<String>,
}

fn time_field(field: &str, raw: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::unprocessable(ValidationError::new(field, "invalid_time", "must be an RFC 3339 time")))
}

async fn replay(
    State(api): State<Arc<EventsFunction>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<EndpointId>,
    JsonBody(body): JsonBody<ReplayBody>,
) -> Result<Response, ApiError> {
    let now = OffsetDateTime::now_utc();
    let since = time_field("since", &body.since)?;
    let until = body.until.as_deref().map(|u| time_field("until", u)).transpose()?.unwrap_or(now);
    let replayed = api.endpoints().replay(&user, id, since, until).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"replayed": replayed}))).into_response())
}
