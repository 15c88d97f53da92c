//! `POST /v1/messaging-profiles/{id}/activate`: make the profile the user's one active profile. The
//! store does it in one TransactWriteItems guarded by the per-user pointer's version.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use patchbay_adapters::http::views::ProfileView;
use patchbay_adapters::http::{ApiError, AuthUser, IdPath};
use patchbay_adapters::Wiring;
use patchbay_domain::profiles::ProfileWriter;
use patchbay_domain::{profiles, ProfileId};
use serde::Serialize;
use time::OffsetDateTime;

pub struct ActivateApi {
    pub store: Arc<dyn ProfileWriter>,
}

impl ActivateApi {
    pub fn new(w: &Wiring) -> Self {
        Self { store: w.store.clone() }
    }
}

#[derive(Serialize)]
struct ActivationView {
    active_profile: ProfileView,
    /// The profile this activation turned off, if another one was active.
    deactivated_profile_id: Option<String>,
}

pub fn router(api: Arc<ActivateApi>) -> Router {
    Router::new().route("/v1/messaging-profiles/{id}/activate", post(activate)).with_state(api)
}

async fn activate(
    State(api): State<Arc<ActivateApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<ProfileId>,
) -> Result<Response, ApiError> {
    let a = profiles::activate(api.store.as_ref(), &user, id, OffsetDateTime::now_utc()).await?;
    Ok(Json(ActivationView { active_profile: ProfileView::from(&a.profile), deactivated_profile_id: a.deactivated.map(|d| d.to_string()) })
        .into_response())
}
