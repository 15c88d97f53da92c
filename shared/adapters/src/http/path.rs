//! Typed path parameters: a malformed id answers 400 naming `id`, never axum's plain-text rejection.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use patchbay_domain::{IdempotencyKey, PathId, ProfileId, ValidationError, E164};

use super::ApiError;

/// `/…/{id}`: one of Patchbay's ids; a malformed one answers 400 naming `id`.
pub struct IdPath<T>(pub T);

/// `/…/{e164}`: a number in canonical E.164 (`+12125550123`, or `%2B12125550123`).
pub struct E164Path(pub E164);

/// `/v1/messaging-profiles/{id}/phone-numbers/{e164}`.
pub struct ProfileNumberPath(pub ProfileId, pub E164);

fn bad_path() -> ApiError {
    ApiError::bad_request(ValidationError::new("path", "invalid_path", "the path does not hold usable parameters"))
}

fn e164_at(raw: &str) -> Result<E164, ApiError> {
    E164::parse(raw).map_err(|e| ApiError::bad_request(e.at("e164")))
}

impl<S: Send + Sync> FromRequestParts<S> for E164Path {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| bad_path())?;
        e164_at(&raw).map(E164Path)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ProfileNumberPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((id, e164)) = Path::<(String, String)>::from_request_parts(parts, state).await.map_err(|_| bad_path())?;
        Ok(ProfileNumberPath(ProfileId::parse(&id).map_err(ApiError::bad_request)?, e164_at(&e164)?))
    }
}

/// The optional `Idempotency-Key` header.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let raw = v.to_str().map_err(|_| {
                ApiError::bad_request(ValidationError::new("Idempotency-Key", "invalid_idempotency_key", "must be visible ASCII"))
            })?;
            IdempotencyKey::parse(raw).map(Some).map_err(ApiError::bad_request)
        }
    }
}

impl<S: Send + Sync, T: PathId> FromRequestParts<S> for IdPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| {
            ApiError::bad_request(patchbay_domain::ValidationError::new("id", "invalid_id", "the path does not hold a usable id"))
        })?;
        T::parse_path(&raw).map(IdPath).map_err(ApiError::bad_request)
    }
}
