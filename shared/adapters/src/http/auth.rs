//! The caller, as API Gateway's JWT authorizer names it: `requestContext.authorizer.jwt.claims.sub`.
//! lambda_http puts the request context in the request's extensions; the local stack's dev
//! authorizer puts the same context in the same place, so this code cannot tell them apart.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lambda_http::request::RequestContext;
use patchbay_domain::UserId;

use super::ApiError;

#[derive(Debug, Clone)]
pub struct AuthUser(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let sub = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).and_then(|jwt| jwt.claims.get("sub")).cloned()
            }
            _ => None,
        };
        let sub = sub.ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        UserId::parse(&sub).map(AuthUser).map_err(|_| ApiError::unauthorized("the token's subject is not usable"))
    }
}
