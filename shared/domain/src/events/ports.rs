//! What the event log and the webhooks need from outside: the store, the secret store, the URL guard,
//! the HTTP sender and the webhook queue.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::events::model::{DeliveryAttempt, EndpointPatch, EndpointUrl, SigningKeys, WebhookEndpoint, WebhookSecret};
use crate::kernel::error::{StoreError, ValidationError};
use crate::kernel::event::{Event, EventId, EventType};
use crate::kernel::ids::{EndpointId, IdempotencyKey, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::provider::Created;

/// One page of the log, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub data: Vec<Event>,
    /// Where the next page starts (pass it as `after`); `None` when the log has nothing after it yet.
    /// With a type filter, a page can hold fewer events than asked for and still have a next one.
    pub next_after: Option<EventId>,
}

#[async_trait]
pub trait EventLog: Send + Sync {
    /// The user's events after `after` (all of them when `None`), of `event_type` if given, oldest
    /// first; one Query.
    async fn list_events(
        &self,
        user: &UserId,
        after: Option<&EventId>,
        event_type: Option<EventType>,
        limit: Limit,
    ) -> Result<EventPage, StoreError>;
    /// The user's events whose time is in `[since, until)`, oldest first (a replay's window).
    async fn events_between(&self, user: &UserId, since: OffsetDateTime, until: OffsetDateTime) -> Result<Vec<Event>, StoreError>;
    /// Write `event` on its own (an event no state change carries: a test delivery).
    async fn put_event(&self, event: &Event) -> Result<(), StoreError>;
}

/// A delivery's state, per endpoint and event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Succeeded,
    Failed,
}

/// The webhook endpoints and their deliveries.
#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// Create it, with the idempotency guard of `key` (a repeat replays the first endpoint); refused
    /// with `Conflict::TooMany` at `MAX_ENDPOINTS`.
    async fn create_endpoint(
        &self,
        e: &WebhookEndpoint,
        key: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<WebhookEndpoint>, StoreError>;
    async fn get_endpoint(&self, user: &UserId, id: EndpointId) -> Result<WebhookEndpoint, StoreError>;
    async fn list_endpoints(&self, user: &UserId, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<WebhookEndpoint>, StoreError>;
    /// Every endpoint of the user (a fan-out).
    async fn all_endpoints(&self, user: &UserId) -> Result<Vec<WebhookEndpoint>, StoreError>;
    async fn update_endpoint(
        &self,
        user: &UserId,
        id: EndpointId,
        patch: &EndpointPatch,
        now: OffsetDateTime,
    ) -> Result<WebhookEndpoint, StoreError>;
    async fn delete_endpoint(&self, user: &UserId, id: EndpointId) -> Result<(), StoreError>;
    /// A delivery of `event` to the endpoint so far.
    async fn delivery_state(&self, user: &UserId, id: EndpointId, event: &EventId) -> Result<Option<DeliveryState>, StoreError>;
    /// One attempt: its log entry, the delivery's state, and the endpoint's failing streak (started
    /// on a failure if none runs, ended by a success), in one transaction.
    async fn record_attempt(&self, user: &UserId, attempt: &DeliveryAttempt, state: DeliveryState) -> Result<(), StoreError>;
    /// Disable it (`reason`) if it is enabled and, for `failing`, has failed since before `cutoff`;
    /// answers whether this call disabled it.
    async fn disable_endpoint(
        &self,
        user: &UserId,
        id: EndpointId,
        reason: &str,
        failing_before: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError>;
    /// The endpoint's attempts, newest first.
    async fn list_attempts(
        &self,
        user: &UserId,
        id: EndpointId,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<DeliveryAttempt>, StoreError>;
}

/// Why the secret store could not be used.
#[derive(Debug, thiserror::Error)]
#[error("secret store unavailable: {0}")]
pub struct SecretStoreError(pub String);

/// Where endpoints' signing secrets are kept (Secrets Manager): never the table, a log or a queue.
#[async_trait]
pub trait EndpointSecrets: Send + Sync {
    async fn create_secret(&self, id: EndpointId, secret: &WebhookSecret) -> Result<(), SecretStoreError>;
    /// The new secret becomes current; the one it replaces still signs until `previous_until`.
    async fn rotate_secret(&self, id: EndpointId, secret: &WebhookSecret, previous_until: OffsetDateTime) -> Result<(), SecretStoreError>;
    async fn signing_keys(&self, id: EndpointId) -> Result<Option<SigningKeys>, SecretStoreError>;
    /// Delete it for good; absent is done.
    async fn delete_secret(&self, id: EndpointId) -> Result<(), SecretStoreError>;
}

/// Whether a URL may be called: it resolves only to addresses no webhook is kept from
/// (`model::forbidden`). Checked at registration; the sender checks again at every send.
#[async_trait]
pub trait UrlGuard: Send + Sync {
    async fn check(&self, url: &EndpointUrl) -> Result<(), ValidationError>;
}

/// What one POST to an endpoint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// The endpoint's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

/// The HTTP client deliveries go out with: resolves and checks the host at send time (no DNS
/// rebinding), follows no redirect, reads at most a small part of the answer, gives up after a
/// short timeout.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn post(&self, url: &EndpointUrl, headers: &[(&'static str, String)], body: &str) -> SendOutcome;
}

/// The webhook queue, for what the API puts there itself (a replay's deliveries).
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    async fn replay(&self, endpoint: EndpointId, events: &[Event]) -> Result<(), StoreError>;
}
