//! The local stand-in for API Gateway's JWT authorizer. It accepts HS256 development tokens signed
//! with `PATCHBAY_DEV_JWT_SECRET` and puts their claims where API Gateway puts a JWT authorizer's
//! claims (`requestContext.authorizer.jwt.claims`), so handlers read them with the same code as on
//! Lambda. A request without a token goes through unauthenticated (the handler answers 401, as it
//! would without claims); a request with a bad token is refused here with 401, as API Gateway does.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::request::RequestContext;
use patchbay_adapters::http::ApiError;
use serde_json::{json, Map, Value};

/// The development secret when `PATCHBAY_DEV_JWT_SECRET` is not set. Local use only.
pub const DEFAULT_DEV_JWT_SECRET: &str = "patchbay-local-dev-secret";

#[derive(Clone)]
pub struct DevAuth {
    decoding: Arc<DecodingKey>,
    encoding: Arc<EncodingKey>,
}

impl DevAuth {
    pub fn new(secret: &str) -> Self {
        Self {
            decoding: Arc::new(DecodingKey::from_secret(secret.as_bytes())),
            encoding: Arc::new(EncodingKey::from_secret(secret.as_bytes())),
        }
    }

    pub fn from_env() -> Self {
        Self::new(&std::env::var("PATCHBAY_DEV_JWT_SECRET").unwrap_or_else(|_| DEFAULT_DEV_JWT_SECRET.to_owned()))
    }

    /// A development token for `sub`, valid for `ttl_secs`.
    pub fn mint(&self, sub: &str, ttl_secs: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        encode(&Header::new(Algorithm::HS256), &json!({"sub": sub, "iat": now, "exp": now + ttl_secs}), &self.encoding)
    }

    fn verify(&self, token: &str) -> Result<Map<String, Value>, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        decode::<Map<String, Value>>(token, &self.decoding, &validation).map(|d| d.claims).map_err(|e| e.to_string())
    }
}

/// The request context API Gateway (HTTP API, payload 2.0) builds for a request with these claims.
pub fn request_context(method: &str, path: &str, claims: &Map<String, Value>) -> Option<RequestContext> {
    // API Gateway hands JWT claims to the function as strings.
    let claims: Map<String, Value> =
        claims.iter().map(|(k, v)| (k.clone(), Value::String(v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))).collect();
    let ctx = json!({
        "routeKey": "$default",
        "accountId": "123456789012",
        "stage": "$default",
        "requestId": uuid_like(),
        "apiId": "local",
        "domainName": "127.0.0.1",
        "time": "",
        "timeEpoch": time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": ""},
        "authorizer": {"jwt": {"claims": claims, "scopes": null}},
    });
    serde_json::from_value(ctx).ok().map(RequestContext::ApiGatewayV2)
}

fn uuid_like() -> String {
    format!("{:x}", time::OffsetDateTime::now_utc().unix_timestamp_nanos())
}

pub async fn middleware(State(auth): State<DevAuth>, mut req: Request, next: Next) -> Response {
    let header = req.headers().get(AUTHORIZATION).map(|v| v.to_str().map(str::to_owned));
    match header {
        None => next.run(req).await,
        Some(Err(_)) => ApiError::unauthorized("the Authorization header is not readable").into_response(),
        Some(Ok(value)) => {
            let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
                return ApiError::unauthorized("use Authorization: Bearer <token>").into_response();
            };
            match auth.verify(token.trim()) {
                Ok(claims) => {
                    let method = req.method().as_str().to_owned();
                    let path = req.uri().path().to_owned();
                    if let Some(ctx) = request_context(&method, &path, &claims) {
                        req.extensions_mut().insert(ctx);
                    }
                    next.run(req).await
                }
                Err(why) => ApiError::unauthorized(format!("invalid token: {why}")).into_response(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_and_verifies() {
        let a = DevAuth::new("s1");
        let t = a.mint("alice", 60).unwrap();
        assert_eq!(a.verify(&t).unwrap()["sub"], "alice");
        assert!(DevAuth::new("s2").verify(&t).is_err());
        assert!(a.verify(&a.mint("alice", -120).unwrap()).is_err());
        let ctx = request_context("GET", "/x", &a.verify(&t).unwrap()).unwrap();
        let RequestContext::ApiGatewayV2(ctx) = ctx else { panic!("v2 context") };
        assert_eq!(ctx.authorizer.unwrap().jwt.unwrap().claims["sub"], "alice");
    }
}
