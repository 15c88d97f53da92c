//! `PUT` / `DELETE /v1/messaging-profiles/{id}/phone-numbers/{e164}`: put an owned, active number on
//! one of the caller's profiles or take it off. One transaction each (the number names at most one
//! profile; the profile's number count moves with it); the worker mirrors it to the carrier.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use patchbay_adapters::http::views::NumberView;
use patchbay_adapters::http::{ApiError, AuthUser, ProfileNumberPath};
use patchbay_adapters::Wiring;
use patchbay_domain::numbers;
use patchbay_domain::numbers::NumberWriter;
use time::OffsetDateTime;

pub struct AssignApi {
    pub store: Arc<dyn NumberWriter>,
}

impl AssignApi {
    pub fn new(w: &Wiring) -> Self {
        Self { store: w.store.clone() }
    }
}

pub fn router(api: Arc<AssignApi>) -> Router {
    Router::new().route("/v1/messaging-profiles/{id}/phone-numbers/{e164}", put(assign).delete(unassign)).with_state(api)
}

async fn assign(
    State(api): State<Arc<AssignApi>>,
    AuthUser(user): AuthUser,
    ProfileNumberPath(profile, e164): ProfileNumberPath,
) -> Result<Response, ApiError> {
    let n = numbers::assign(api.store.as_ref(), &user, &e164, profile, OffsetDateTime::now_utc()).await?;
    Ok((StatusCode::ACCEPTED, Json(NumberView::from(&n))).into_response())
}

async fn unassign(
    State(api): State<Arc<AssignApi>>,
    AuthUser(user): AuthUser,
    ProfileNumberPath(profile, e164): ProfileNumberPath,
) -> Result<Response, ApiError> {
    let n = numbers::unassign(api.store.as_ref(), &user, &e164, profile, OffsetDateTime::now_utc()).await?;
    Ok((StatusCode::ACCEPTED, Json(NumberView::from(&n))).into_response())
}
