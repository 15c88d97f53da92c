//! What every API router gets: problem+json for unknown routes and methods, the body limit, and
//! `GET /healthz`.

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::json::MAX_BODY_BYTES;
use super::ApiError;

pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

/// Adds the shared routes and behaviour to a function's router.
pub fn finish(router: Router) -> Router {
    router
        .route("/healthz", get(healthz))
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}
