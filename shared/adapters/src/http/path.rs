//! Typed path parameters: a malformed id answers 400 naming `id`, never axum's plain-text rejection.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use patchbay_domain::ProfileId;

use super::ApiError;

pub struct ProfileIdPath(pub ProfileId);

impl<S: Send + Sync> FromRequestParts<S> for ProfileIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| {
            ApiError::bad_request(patchbay_domain::ValidationError::new("id", "invalid_id", "the path does not hold a usable id"))
        })?;
        ProfileId::parse(&raw).map(ProfileIdPath).map_err(ApiError::bad_request)
    }
}
