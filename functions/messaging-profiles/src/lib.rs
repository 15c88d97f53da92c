//! Messaging profiles: create, list, show, rename/settings, delete. Each handler parses the request
//! into domain types, calls one operation and maps its typed result.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_adapters::http::json::not_null;
use patchbay_adapters::http::views::{PageView, ProfilePageView, ProfileView};
use patchbay_adapters::http::{self, idempotency_key, ApiError, AuthUser, IdPath, JsonBody, QueryParams};
use patchbay_adapters::Wiring;
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::NumberReader;
use patchbay_domain::profiles::{NewProfile, ProfileName, ProfilePatch, ProfileWriter, Profiles, WhitelistedDestinations};
use patchbay_domain::{Cursor, Limit, ProfileId, ValidationError};
use serde::Deserialize;
use time::OffsetDateTime;

/// What the handlers share, built once per cold start.
pub struct ProfilesApi {
    pub store: Arc<dyn ProfileWriter>,
    /// Read for the profile page (assigned and still-available numbers).
    pub numbers: Arc<dyn NumberReader>,
}

impl ProfilesApi {
    pub fn new(w: &Wiring) -> Self {
        Self { store: w.store.clone(), numbers: w.store.clone() }
    }

    fn ops(&self) -> Profiles<'_> {
        Profiles { store: self.store.as_ref() }
    }
}

pub fn router(api: Arc<ProfilesApi>) -> Router {
    Router::new()
        .route("/v1/messaging-profiles", post(create).get(list))
        .route("/v1/messaging-profiles/{id}", get(show).patch(update).delete(delete))
        .with_state(api)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default, deserialize_with = "not_null")]
    whitelisted_destinations: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    whitelisted_destinations: Option<Vec<String>>,
}

fn accepted(profile: &patchbay_domain::profiles::MessagingProfile, replayed: bool) -> Response {
    http::accepted(ProfileView::from(profile), &format!("/v1/messaging-profiles/{}", profile.id), replayed)
}

async fn create(
    State(api): State<Arc<ProfilesApi>>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let input = NewProfile {
        name: ProfileName::parse(&body.name).map_err(ApiError::unprocessable)?,
        whitelisted_destinations: match &body.whitelisted_destinations {
            Some(list) => WhitelistedDestinations::parse(list).map_err(ApiError::unprocessable)?,
            None => WhitelistedDestinations::all(),
        },
    };
    match api.ops().create(&user, input, key.as_ref(), OffsetDateTime::now_utc()).await? {
        Created::New(p) => Ok(accepted(&p, false)),
        Created::Replayed(p) => Ok(accepted(&p, true)),
    }
}

async fn list(State(api): State<Arc<ProfilesApi>>, AuthUser(user): AuthUser, query: QueryParams) -> Result<Response, ApiError> {
    let limit = Limit::parse(query.get("limit")).map_err(ApiError::bad_request)?;
    let cursor = match query.get("cursor") {
        None => None,
        Some(raw) => {
            let c = Cursor::parse(raw).map_err(ApiError::bad_request)?;
            // Profile cursors hold a profile id; anything else was not made by this API.
            let position = c.position().unwrap_or_default();
            ProfileId::parse(&position).map_err(|_| {
                ApiError::bad_request(ValidationError::new("cursor", "invalid_cursor", "must be a next_cursor value from a previous page"))
            })?;
            Some(c)
        }
    };
    let page = api.ops().list(&user, cursor.as_ref(), limit).await?;
    Ok(Json(PageView::<ProfileView>::from(&page)).into_response())
}

async fn show(State(api): State<Arc<ProfilesApi>>, AuthUser(user): AuthUser, IdPath(id): IdPath<ProfileId>) -> Result<Response, ApiError> {
    let p = api.ops().get(&user, id).await?;
    let numbers = api.numbers.all_numbers(&user).await?;
    Ok(Json(ProfilePageView::new(&p, &numbers)).into_response())
}

async fn update(
    State(api): State<Arc<ProfilesApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<ProfileId>,
    JsonBody(body): JsonBody<PatchBody>,
) -> Result<Response, ApiError> {
    let name = body.name.as_deref().map(ProfileName::parse).transpose().map_err(ApiError::unprocessable)?;
    let wl = body.whitelisted_destinations.as_deref().map(WhitelistedDestinations::parse).transpose().map_err(ApiError::unprocessable)?;
    let patch = ProfilePatch::new(name, wl).map_err(ApiError::unprocessable)?;
    let p = api.ops().update(&user, id, &patch, OffsetDateTime::now_utc()).await?;
    Ok(accepted(&p, false))
}

async fn delete(
    State(api): State<Arc<ProfilesApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<ProfileId>,
) -> Result<Response, ApiError> {
    let p = api.ops().delete(&user, id, OffsetDateTime::now_utc()).await?;
    Ok(accepted(&p, false))
}
