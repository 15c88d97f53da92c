//! The dialer: SIP connections (`/v1/sip-connections`), the caller's numbers on them by role, and
//! short-lived WebRTC tokens. A SIP password appears in two answers only (the create that made it and
//! the rotation that replaced it); it is never logged, stored in the table or put on the queue.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use patchbay_adapters::http::json::not_null;
use patchbay_adapters::http::views::SyncErrorView;
use patchbay_adapters::http::{self, idempotency_key, ApiError, AuthUser, IdPath, JsonBody, QueryParams};
use patchbay_adapters::ondemand::OnDemand;
use patchbay_adapters::wire::rfc3339;
use patchbay_adapters::Wiring;
use patchbay_domain::dialer::{
    AssignmentPatch, CarrierListing, ConnectionName, ConnectionPage, ConnectionPatch, ConnectionWriter, Dialer, Dialers, IssuedToken,
    SipPassword, SipSecrets,
};
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::NumberRole;
use patchbay_domain::{CarrierName, ConnectionId, Cursor, Limit, SyncState, ValidationError, E164};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub struct SipConnectionsApi {
    pub store: Arc<dyn ConnectionWriter>,
    pub secrets: Arc<dyn SipSecrets>,
    /// Built from the carrier secret on the first creation, carrier listing or WebRTC token; the
    /// other routes never read it.
    pub dialers: OnDemand<Dialers>,
}

/// What the operations that never pick a carrier are given.
static NO_DIALERS: Dialers = Dialers::none();

impl SipConnectionsApi {
    pub fn new(w: &Wiring) -> Self {
        Self { store: w.store.clone(), secrets: w.sip_secrets().clone(), dialers: w.dialers_on_demand() }
    }

    fn ops(&self) -> Dialer<'_> {
        Dialer { store: self.store.as_ref(), secrets: self.secrets.as_ref(), dialers: &NO_DIALERS }
    }

    /// `ops` for what picks a carrier (a creation, a carrier listing, a token): the dialers first.
    async fn carrier_ops(&self) -> Result<Dialer<'_>, ApiError> {
        let dialers = self.dialers.get().await?;
        Ok(Dialer { store: self.store.as_ref(), secrets: self.secrets.as_ref(), dialers })
    }
}

pub fn router(api: Arc<SipConnectionsApi>) -> Router {
    Router::new()
        .route("/v1/sip-connections", post(create).get(list))
        .route("/v1/sip-connections/{id}", get(show).patch(update).delete(delete))
        .route("/v1/sip-connections/{id}/password", post(rotate))
        .route("/v1/sip-connections/{id}/webrtc-token", post(token))
        .route("/v1/sip-connections/{id}/phone-numbers/{e164}", put(assign).patch(update_assignment).delete(unassign))
        .with_state(api)
}

/// `/v1/sip-connections/{id}/phone-numbers/{e164}`.
struct ConnectionNumberPath(ConnectionId, E164);

impl<S: Send + Sync> FromRequestParts<S> for ConnectionNumberPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((id, e164)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request(ValidationError::new("path", "invalid_path", "the path does not hold usable parameters")))?;
        Ok(ConnectionNumberPath(
            ConnectionId::parse(&id).map_err(ApiError::bad_request)?,
            E164::parse(&e164).map_err(|e| ApiError::bad_request(e.at("e164")))?,
        ))
    }
}

#[derive(Serialize)]
struct NumberOnConnectionView {
    phone_number: String,
    role: NumberRole,
    active: bool,
    /// Whether the carrier routes the number's calls to this connection yet.
    sync_state: SyncState,
    sync_error: Option<SyncErrorView>,
}

#[derive(Serialize)]
struct ConnectionView {
    id: String,
    name: String,
    carrier: CarrierName,
    active: bool,
    sync_state: SyncState,
    sync_error: Option<SyncErrorView>,
    carrier_connection_id: Option<String>,
    sip_username: String,
    phone_numbers: Vec<NumberOnConnectionView>,
    default_caller_id: Option<String>,
    created_at: String,
    updated_at: String,
    /// Only in the answer that made the password (create, rotation): shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    sip_password: Option<String>,
}

impl ConnectionView {
    fn new(p: &ConnectionPage, password: Option<&SipPassword>) -> Self {
        let c = &p.connection;
        Self {
            id: c.id.to_string(),
            name: c.name.as_str().to_owned(),
            carrier: c.carrier,
            active: c.active,
            sync_state: c.sync_state,
            sync_error: c.sync_error.as_ref().map(SyncErrorView::from),
            carrier_connection_id: c.carrier_connection_id.clone(),
            sip_username: c.sip_username.clone(),
            phone_numbers: p
                .numbers
                .iter()
                .zip(&p.sync)
                .map(|((e, v), (state, err))| NumberOnConnectionView {
                    phone_number: e.to_string(),
                    role: v.role,
                    active: v.active,
                    sync_state: *state,
                    sync_error: err.as_ref().map(SyncErrorView::from),
                })
                .collect(),
            default_caller_id: p.default_caller_id().map(|e| e.to_string()),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            sip_password: password.map(|p| p.expose().to_owned()),
        }
    }
}

fn bare(c: patchbay_domain::dialer::SipConnection) -> ConnectionPage {
    ConnectionPage { connection: c, numbers: Vec::new(), sync: Vec::new() }
}

fn accepted(p: &ConnectionPage, password: Option<&SipPassword>, replayed: bool) -> Response {
    http::accepted(ConnectionView::new(p, password), &format!("/v1/sip-connections/{}", p.connection.id), replayed)
}

fn carrier_field(raw: Option<&str>, field: &str) -> Result<Option<CarrierName>, ApiError> {
    match raw {
        None => Ok(None),
        Some("telnyx") => Ok(Some(CarrierName::Telnyx)),
        Some("sandbox") => Ok(Some(CarrierName::Sandbox)),
        Some(_) => Err(ApiError::unprocessable(ValidationError::new(field, "invalid_carrier", "must be one of telnyx, sandbox"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default, deserialize_with = "not_null")]
    carrier: Option<String>,
}

async fn create(
    State(api): State<Arc<SipConnectionsApi>>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let name = ConnectionName::parse(&body.name).map_err(ApiError::unprocessable)?;
    let carrier = carrier_field(body.carrier.as_deref(), "carrier")?;
    let (created, password) = api.carrier_ops().await?.create(&user, name, carrier, key.as_ref(), OffsetDateTime::now_utc()).await?;
    Ok(match created {
        Created::New(c) => accepted(&bare(c), password.as_ref(), false),
        Created::Replayed(c) => accepted(&api.ops().get(&user, c.id).await?, password.as_ref(), true),
    })
}

#[derive(Serialize)]
struct CarrierConnectionView {
    id: String,
    name: String,
    user_name: Option<String>,
    active: bool,
    known: bool,
    patchbay_id: Option<String>,
}

impl From<&CarrierListing> for CarrierConnectionView {
    fn from(l: &CarrierListing) -> Self {
        Self {
            id: l.connection.id.clone(),
            name: l.connection.name.clone(),
            user_name: l.connection.user_name.clone(),
            active: l.connection.active,
            known: l.known.is_some(),
            patchbay_id: l.known.map(|id| id.to_string()),
        }
    }
}

fn flag(q: &QueryParams, name: &str) -> Result<bool, ApiError> {
    match q.get(name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::bad_request(ValidationError::new(name, "invalid_boolean", "must be true or false"))),
    }
}

async fn list(State(api): State<Arc<SipConnectionsApi>>, AuthUser(user): AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let include_inactive = flag(&q, "include_inactive")?;
    let carrier = carrier_field(q.get("carrier"), "carrier").map_err(|e| ApiError { status: StatusCode::BAD_REQUEST, ..e })?;
    match q.get("source") {
        None | Some("patchbay") => {}
        Some("carrier") => {
            let listed = api.carrier_ops().await?.list_at_carrier(&user, carrier).await?;
            let data: Vec<CarrierConnectionView> = listed.iter().map(CarrierConnectionView::from).collect();
            return Ok(Json(serde_json::json!({"data": data, "next_cursor": null})).into_response());
        }
        Some(_) => {
            return Err(ApiError::bad_request(ValidationError::new("source", "invalid_source", "must be patchbay or carrier")));
        }
    }
    let limit = Limit::parse(q.get("limit")).map_err(ApiError::bad_request)?;
    let cursor = match q.get("cursor") {
        None => None,
        Some(raw) => {
            let c = Cursor::parse(raw).map_err(ApiError::bad_request)?;
            ConnectionId::parse(&c.position().unwrap_or_default()).map_err(|_| {
                ApiError::bad_request(ValidationError::new("cursor", "invalid_cursor", "must be a next_cursor value from a previous page"))
            })?;
            Some(c)
        }
    };
    let page = api.ops().list(&user, cursor.as_ref(), limit, include_inactive).await?;
    let data: Vec<ConnectionView> = page.data.iter().map(|p| ConnectionView::new(p, None)).collect();
    Ok(Json(serde_json::json!({"data": data, "next_cursor": page.next_cursor.as_ref().map(|c| c.as_str())})).into_response())
}

async fn show(
    State(api): State<Arc<SipConnectionsApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<ConnectionId>,
) -> Result<Response, ApiError> {
    Ok(Json(ConnectionView::new(&api.ops().get(&user, id).await?, None)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    active: Option<bool>,
}

async fn update(
    State(api): State<Arc<SipConnectionsApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<ConnectionId>,
    JsonBody(body): JsonBody<PatchBody>,
) -> Result<Response, ApiError> {
    let patch = ConnectionPatch {
        name: body.name.as_deref().map(ConnectionName::parse).transpose().map_err(ApiError::unprocessable)?,
        active: body.active,
    };
    if patch == ConnectionPatch::default() {
        return Err(ApiError::unprocessable(ValidationError::new("body", "empty_patch", "name or active must be given")));
    }
    api.ops().update(&user, id, &patch, OffsetDateTime::now_utc()).await?;
    Ok(accepted(&api.ops().get(&user, id).await?, None, false))
}

async fn delete(
    State(api): State<Arc<SipConnectionsApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<ConnectionId>,
) -> Result<Response, ApiError> {
    let c = api.ops().delete(&user, id, OffsetDateTime::now_utc()).await?;
    Ok(accepted(&bare(c), None, false))
}

async fn rotate(
    State(api): State<Arc<SipConnectionsApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<ConnectionId>,
) -> Result<Response, ApiError> {
    let (_, password) = api.ops().rotate_password(&user, id, OffsetDateTime::now_utc()).await?;
    Ok(accepted(&api.ops().get(&user, id).await?, Some(&password), false))
}

#[derive(Serialize)]
struct TokenView {
    token: String,
    expires_at: String,
    connection_id: String,
    caller_ids: Vec<String>,
}

impl From<&IssuedToken> for TokenView {
    fn from(t: &IssuedToken) -> Self {
        Self {
            token: t.token.token.clone(),
            expires_at: rfc3339(t.token.expires_at),
            connection_id: t.connection_id.to_string(),
            caller_ids: t.caller_ids.iter().map(|e| e.to_string()).collect(),
        }
    }
}

async fn token(
    State(api): State<Arc<SipConnectionsApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<ConnectionId>,
) -> Result<Response, ApiError> {
    let t = api.carrier_ops().await?.token(&user, id, OffsetDateTime::now_utc()).await?;
    Ok((StatusCode::CREATED, Json(TokenView::from(&t))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignmentPatchBody {
    #[serde(default, deserialize_with = "not_null")]
    role: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    active: Option<bool>,
}

async fn assign(
    State(api): State<Arc<SipConnectionsApi>>,
    AuthUser(user): AuthUser,
    ConnectionNumberPath(id, e164): ConnectionNumberPath,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Response, ApiError> {
    let role = NumberRole::parse(&body.role).map_err(ApiError::unprocessable)?;
    let page = api.ops().assign(&user, id, &e164, role, OffsetDateTime::now_utc()).await?;
    Ok(accepted(&page, None, false))
}

async fn update_assignment(
    State(api): State<Arc<SipConnectionsApi>>,
    AuthUser(user): AuthUser,
    ConnectionNumberPath(id, e164): ConnectionNumberPath,
    JsonBody(body): JsonBody<AssignmentPatchBody>,
) -> Result<Response, ApiError> {
    let patch = AssignmentPatch {
        role: body.role.as_deref().map(NumberRole::parse).transpose().map_err(ApiError::unprocessable)?,
        active: body.active,
    };
    if patch == AssignmentPatch::default() {
        return Err(ApiError::unprocessable(ValidationError::new("body", "empty_patch", "role or active must be given")));
    }
    let page = api.ops().update_assignment(&user, id, &e164, &patch, OffsetDateTime::now_utc()).await?;
    Ok(Json(ConnectionView::new(&page, None)).into_response())
}

async fn unassign(
    State(api): State<Arc<SipConnectionsApi>>,
    AuthUser(user): AuthUser,
    ConnectionNumberPath(id, e164): ConnectionNumberPath,
) -> Result<Response, ApiError> {
    let page = api.ops().unassign(&user, id, &e164, OffsetDateTime::now_utc()).await?;
    Ok(accepted(&page, None, false))
}
