//! `application/problem+json` (RFC 9457) errors with a stable machine `code` and, for bad input, the
//! offending `field`. Infrastructure failures are logged with their cause and reach the client opaque.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use patchbay_domain::dialer::DialerError;
use patchbay_domain::events::EndpointError;
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::messaging::{ConversationError, InboxError};
use patchbay_domain::numbers::NumberError;
use patchbay_domain::profiles::ProfileError;
use patchbay_domain::voice_ai::AssistantError;
use patchbay_domain::{CarrierName, StoreError, ValidationError};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// When a carrier refused or failed: its name, code and message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<CarrierProblem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CarrierProblem {
    pub name: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    pub field: Option<String>,
    pub carrier: Option<Box<CarrierProblem>>,
    /// Seconds for `Retry-After` (429; 503 answers 1 s).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { status, code: code.into(), detail: detail.into(), field: None, carrier: None, retry_after: None }
    }
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    /// A body that parsed but does not hold valid values: 422 naming the field.
    pub fn unprocessable(e: ValidationError) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, e.message).with_field(e.field)
    }
    /// A bad path segment, query parameter or header: 400 naming it.
    pub fn bad_request(e: ValidationError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.code, e.message).with_field(e.field)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }
    /// The store or the queue failed: logged with its cause, answered without it.
    pub fn unavailable(what: &str, cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %cause, source = ?cause.source().map(|s| s.to_string()), "{what} unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "a backing service did not answer; retry the request (with the same Idempotency-Key, if any)",
        )
    }
    /// Collisions with concurrent writes outlasted the store's retries; nothing was applied. 503 with
    /// `Retry-After`: the same request (with the same Idempotency-Key) can simply be sent again.
    pub fn contended(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(error = %cause, "store contention outlasted the retries");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "contention",
            "the request collided with concurrent changes; retry it (with the same Idempotency-Key, if any)",
        )
    }
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("https://patchbay.dev/problems/{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.clone(),
            field: self.field.clone(),
            carrier: self.carrier.as_deref().cloned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

/// A carrier port whose credentials could not be read: 503, the cause logged, never answered.
impl From<crate::ondemand::Unavailable> for ApiError {
    fn from(e: crate::ondemand::Unavailable) -> Self {
        Self::unavailable("carrier credentials", &e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ProfileError::from(e).into()
    }
}

impl From<ProfileError> for ApiError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::NotFound => ApiError::not_found("messaging profile not found"),
            ProfileError::Conflict(c) => ApiError::new(StatusCode::CONFLICT, c.code(), c.to_string()),
            ProfileError::Store(StoreError::Corrupt(m)) => ApiError::internal(&std::io::Error::other(format!("corrupt item: {m}"))),
            ProfileError::Store(e @ StoreError::Contended(_)) => ApiError::contended(&e),
            ProfileError::Store(e) => ApiError::unavailable("store", &e),
        }
    }
}

impl ApiError {
    /// A carrier call made while answering (a search): 502 when it refused, 503 when it failed.
    pub fn carrier(name: CarrierName, e: CarrierError) -> Self {
        let (status, code, message) = match e {
            CarrierError::Permanent { status, code, message } => {
                (StatusCode::BAD_GATEWAY, if code.is_empty() { format!("http_{status}") } else { code }, message)
            }
            CarrierError::NotFound => (StatusCode::BAD_GATEWAY, "not_found".to_owned(), "the carrier answered 404".to_owned()),
            CarrierError::Transient(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable".to_owned(), m),
            CarrierError::NotConfigured(m) => (StatusCode::SERVICE_UNAVAILABLE, "not_configured".to_owned(), m),
        };
        tracing::warn!(carrier = %name, %code, %message, "carrier call failed");
        let mut err = ApiError::new(status, "carrier_error", format!("{name} answered {code}: {message}"));
        err.carrier = Some(Box::new(CarrierProblem { name: name.to_string(), code, message }));
        err
    }
}

impl From<NumberError> for ApiError {
    fn from(e: NumberError) -> Self {
        match e {
            NumberError::NotFound => ApiError::not_found("phone number not found"),
            NumberError::Conflict(c) => ApiError::new(StatusCode::CONFLICT, c.code(), c.to_string()),
            NumberError::CarrierNotConfigured(name) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "carrier_not_configured",
                format!("this deployment has no credentials for {name}"),
            )
            .with_field("carrier"),
            NumberError::Carrier(name, e) => ApiError::carrier(name, e),
            NumberError::Store(e) => ProfileError::Store(e).into(),
        }
    }
}

impl From<ConversationError> for ApiError {
    fn from(e: ConversationError) -> Self {
        match e {
            ConversationError::NotFound => ApiError::not_found("conversation not found"),
            ConversationError::ContactNotFound => ApiError::not_found("contact not found"),
            ConversationError::InvalidCursor(v) => ApiError::bad_request(v),
            ConversationError::Conflict(c) => ApiError::new(StatusCode::CONFLICT, c.code(), c.to_string()),
            ConversationError::Store(e) => ProfileError::Store(e).into(),
        }
    }
}

impl From<InboxError> for ApiError {
    /// Every answer but 2xx makes the carrier deliver the webhook again: so a failure is never a 4xx.
    fn from(e: InboxError) -> Self {
        match e {
            InboxError::UnknownMessage => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unknown_message", "no message has this id yet; retry later")
            }
            InboxError::Store(e @ StoreError::Contended(_)) => ApiError::contended(&e),
            InboxError::Store(e @ StoreError::Unavailable(_)) => ApiError::unavailable("store", &e),
            // Not a condition a webhook can fail on: a defect, logged; the carrier retries.
            InboxError::Store(e) => ApiError::internal(&e),
        }
    }
}

impl From<DialerError> for ApiError {
    fn from(e: DialerError) -> Self {
        match e {
            DialerError::NotFound => ApiError::not_found("SIP connection not found"),
            DialerError::NumberNotFound => ApiError::not_found("phone number not found"),
            DialerError::Conflict(c) => ApiError::new(StatusCode::CONFLICT, c.code(), c.to_string()),
            DialerError::CarrierNotConfigured(name) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "carrier_not_configured",
                format!("this deployment has no dialer credentials for {name}"),
            )
            .with_field("carrier"),
            DialerError::Carrier(name, e) => ApiError::carrier(name, e),
            DialerError::RateLimited { retry_after } => {
                let mut err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("at most {} WebRTC tokens a minute; retry in {retry_after} s", patchbay_domain::dialer::TOKENS_PER_MINUTE),
                );
                err.retry_after = Some(retry_after.max(1));
                err
            }
            DialerError::Store(e) => ProfileError::Store(e).into(),
            DialerError::Secrets(e) => ApiError::unavailable("secret store", &e),
        }
    }
}

impl From<AssistantError> for ApiError {
    fn from(e: AssistantError) -> Self {
        match e {
            AssistantError::NotFound => ApiError::not_found("assistant not found"),
            AssistantError::NumberNotFound => ApiError::not_found("phone number not found"),
            AssistantError::Conflict(c) => ApiError::new(StatusCode::CONFLICT, c.code(), c.to_string()),
            AssistantError::CarrierNotConfigured(name) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "carrier_not_configured",
                format!("this deployment has no credentials for {name}"),
            )
            .with_field("carrier"),
            AssistantError::Store(e) => ProfileError::Store(e).into(),
        }
    }
}

impl From<EndpointError> for ApiError {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::Invalid(v) => ApiError::unprocessable(v),
            EndpointError::Store(StoreError::NotFound) => ApiError::not_found("webhook endpoint not found"),
            EndpointError::Store(StoreError::Conflict(c)) => ApiError::new(StatusCode::CONFLICT, c.code(), c.to_string()),
            EndpointError::Store(e) => ProfileError::Store(e).into(),
            EndpointError::Secrets(e) => ApiError::unavailable("secret store", &e),
        }
    }
}
