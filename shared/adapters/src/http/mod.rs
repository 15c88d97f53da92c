//! HTTP glue shared by every API function: problem+json errors, the authorizer's claims, strict JSON
//! bodies and query strings, and the router finish (fallbacks, body limit, /healthz).

pub mod app;
pub mod auth;
pub mod json;
pub mod path;
pub mod problem;
pub mod views;

pub use app::{accepted, finish, healthz};
pub use auth::AuthUser;
pub use json::{JsonBody, QueryParams, RawBody};
pub use path::{idempotency_key, E164Path, IdPath, ProfileNumberPath};
pub use problem::ApiError;
