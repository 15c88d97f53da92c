//! The event log's and the webhook endpoints' operations (what the events function calls).

use time::OffsetDateTime;

use crate::events::model::{DeliveryAttempt, EndpointPatch, NewEndpoint, WebhookEndpoint, WebhookSecret, ROTATION_OVERLAP};
use crate::events::ports::{DeliveryQueue, EndpointSecrets, EndpointStore, EventLog, EventPage, SecretStoreError, UrlGuard};
use crate::kernel::error::{StoreError, ValidationError};
use crate::kernel::event::{Event, EventId, EventType};
use crate::kernel::ids::{EndpointId, IdempotencyKey, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::provider::Created;

/// Why an endpoint operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretStoreError),
}

pub struct EventsApi<'a> {
    pub log: &'a dyn EventLog,
}

impl EventsApi<'_> {
    /// `GET /v1/events?after=&type=&limit=`: the caller's events, oldest first after `after`.
    pub async fn list(
        &self,
        user: &UserId,
        after: Option<&EventId>,
        event_type: Option<EventType>,
        limit: Limit,
    ) -> Result<EventPage, StoreError> {
        self.log.list_events(user, after, event_type, limit).await
    }
}

/// An endpoint as created or rotated: with its secret, which no later answer shows.
pub struct WithSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: Option<WebhookSecret>,
}

pub struct Endpoints<'a> {
    pub store: &'a dyn EndpointStore,
    pub secrets: &'a dyn EndpointSecrets,
    pub guard: &'a dyn UrlGuard,
    pub log: &'a dyn EventLog,
    pub queue: &'a dyn DeliveryQueue,
}

impl Endpoints<'_> {
    /// The secret is stored before the record names the endpoint (a crash between leaves an unused
    /// secret, never an endpoint that cannot sign). A replay of the same key answers the first
    /// endpoint, without a secret (shown once) and without storing another.
    pub async fn create(
        &self,
        user: &UserId,
        new: NewEndpoint,
        key: Option<(&IdempotencyKey, &str)>,
        now: OffsetDateTime,
    ) -> Result<Created<WithSecret>, EndpointError> {
        self.guard.check(&new.url).await?;
        let endpoint = WebhookEndpoint::new(user.clone(), new, now);
        let secret = WebhookSecret::generate();
        self.secrets.create_secret(endpoint.id, &secret).await?;
        match self.store.create_endpoint(&endpoint, key).await {
            Ok(Created::New(e)) => Ok(Created::New(WithSecret { endpoint: e, secret: Some(secret) })),
            Ok(Created::Replayed(e)) => {
                self.forget_secret(endpoint.id).await;
                Ok(Created::Replayed(WithSecret { endpoint: e, secret: None }))
            }
            Err(e) => {
                self.forget_secret(endpoint.id).await;
                Err(e.into())
            }
        }
    }

    async fn forget_secret(&self, id: EndpointId) {
        if let Err(e) = self.secrets.delete_secret(id).await {
            tracing::warn!(endpoint = %id, error = %e, "an unused webhook secret was not deleted");
        }
    }

    pub async fn get(&self, user: &UserId, id: EndpointId) -> Result<WebhookEndpoint, EndpointError> {
        Ok(self.store.get_endpoint(user, id).await?)
    }

    pub async fn list(&self, user: &UserId, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<WebhookEndpoint>, EndpointError> {
        Ok(self.store.list_endpoints(user, cursor, limit).await?)
    }

    pub async fn update(
        &self,
        user: &UserId,
        id: EndpointId,
        patch: &EndpointPatch,
        now: OffsetDateTime,
    ) -> Result<WebhookEndpoint, EndpointError> {
        if let Some(url) = &patch.url {
            self.guard.check(url).await?;
        }
        Ok(self.store.update_endpoint(user, id, patch, now).await?)
    }

    /// The record first, then its secret (a crash between leaves an orphan secret, never an endpoint
    /// without one).
    pub async fn delete(&self, user: &UserId, id: EndpointId) -> Result<(), EndpointError> {
        self.store.delete_endpoint(user, id).await?;
        self.secrets.delete_secret(id).await?;
        Ok(())
    }

    /// The endpoint's delivery attempts, newest first (404 for an endpoint that is not the caller's).
    pub async fn attempts(
        &self,
        user: &UserId,
        id: EndpointId,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<DeliveryAttempt>, EndpointError> {
        self.store.get_endpoint(user, id).await?;
        Ok(self.store.list_attempts(user, id, cursor, limit).await?)
    }

    /// A new secret, answered once; the previous one still signs for 24 hours.
    pub async fn rotate(&self, user: &UserId, id: EndpointId, now: OffsetDateTime) -> Result<WithSecret, EndpointError> {
        let endpoint = self.store.get_endpoint(user, id).await?;
        let secret = WebhookSecret::generate();
        self.secrets.rotate_secret(id, &secret, now + ROTATION_OVERLAP).await?;
        Ok(WithSecret { endpoint, secret: Some(secret) })
    }

    /// A `webhook_endpoint.test` event for this endpoint only, through the same path as every event.
    pub async fn test(&self, user: &UserId, id: EndpointId, now: OffsetDateTime) -> Result<Event, EndpointError> {
        let endpoint = self.store.get_endpoint(user, id).await?;
        let event = Event::new(
            EventType::WebhookEndpointTest,
            user,
            id.to_string(),
            endpoint.version,
            serde_json::json!({"endpoint_id": id.to_string()}),
            now,
        );
        self.log.put_event(&event).await?;
        Ok(event)
    }

    /// The log's events of `[since, until)` delivered to this endpoint again (the same ids, new
    /// attempts), whatever their first deliveries did; answers how many.
    pub async fn replay(
        &self,
        user: &UserId,
        id: EndpointId,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<usize, EndpointError> {
        if since >= until {
            return Err(ValidationError::new("since", "invalid_range", "must be before until").into());
        }
        let endpoint = self.store.get_endpoint(user, id).await?;
        let events: Vec<Event> = self
            .log
            .events_between(user, since, until)
            .await?
            .into_iter()
            .filter(|e| endpoint.event_types.is_empty() || endpoint.event_types.contains(&e.event_type))
            .filter(|e| e.event_type != EventType::WebhookEndpointTest || e.resource.id == id.to_string())
            .collect();
        self.queue.replay(id, &events).await?;
        Ok(events.len())
    }
}
