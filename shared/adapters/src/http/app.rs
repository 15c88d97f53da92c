//! What every API router gets: problem+json for unknown routes and methods, the body limit, and
//! `GET /healthz`.

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::json::MAX_BODY_BYTES;
use super::ApiError;

/// 202 Accepted with the resource, its `Location`, and `Idempotent-Replayed: true` on a replay.
pub fn accepted(body: impl serde::Serialize, location: &str, replayed: bool) -> Response {
    let mut res = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(loc) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    if replayed {
        res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

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
