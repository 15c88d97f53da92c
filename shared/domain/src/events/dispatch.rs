//! The webhook dispatcher's side: deliver one event to the endpoints that want it, signed, and
//! record every attempt. At least once: an endpoint whose delivery already succeeded is skipped when
//! the event comes again (a bus retry, a redelivered message), unless a replay asks for it.

use std::time::Duration;

use time::OffsetDateTime;

use crate::events::model::{DeliveryAttempt, WebhookEndpoint, DISABLE_AFTER_FAILING};
use crate::events::ports::{DeliveryState, EndpointSecrets, EndpointStore, WebhookSender};
use crate::kernel::error::StoreError;
use crate::kernel::event::{Event, EventType};
use crate::kernel::ids::{EndpointId, UserId};

/// What the dispatcher was handed.
#[derive(Debug, Clone)]
pub enum Job {
    /// An event from the bus: to every endpoint of its user that wants it (a test event: to the
    /// endpoint it names).
    Event(Event),
    /// A replay the user asked for: this event to this endpoint, whatever its first delivery did.
    Replay { endpoint: EndpointId, event: Event },
}

/// The retry schedule after each failed attempt (Standard Webhooks': 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 10 h), each step within SQS's 12-hour visibility limit.
pub const SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// What became of a job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dispatched {
    pub delivered: usize,
    /// Endpoints that failed and are to be tried again.
    pub failed: usize,
    /// The longest `Retry-After` a failed endpoint asked for.
    pub retry_after: Option<Duration>,
}

pub struct Dispatcher<'a> {
    pub store: &'a dyn EndpointStore,
    pub secrets: &'a dyn EndpointSecrets,
    pub sender: &'a dyn WebhookSender,
}

impl Dispatcher<'_> {
    /// Deliver `job`. `final_attempt`: the queue will not hand it over again, so a failure now is
    /// recorded as the delivery's end (`failed`).
    pub async fn run(&self, job: &Job, final_attempt: bool, now: OffsetDateTime) -> Result<Dispatched, StoreError> {
        let (event, replay) = match job {
            Job::Event(e) => (e, false),
            Job::Replay { event, .. } => (event, true),
        };
        let user = UserId::parse(&event.user_id).map_err(|_| StoreError::Corrupt(format!("event {} of no user", event.id)))?;
        let targets = self.targets(&user, job).await?;
        let mut out = Dispatched::default();
        for endpoint in targets {
            if !replay && self.store.delivery_state(&user, endpoint.id, &event.id).await? == Some(DeliveryState::Succeeded) {
                continue;
            }
            match self.deliver(&user, &endpoint, event, replay, final_attempt, now).await? {
                Attempt::Done => out.delivered += 1,
                Attempt::Again { retry_after } => {
                    out.failed += 1;
                    out.retry_after = out.retry_after.max(retry_after);
                }
            }
        }
        Ok(out)
    }

    async fn targets(&self, user: &UserId, job: &Job) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let one = |id: EndpointId| async move {
            match self.store.get_endpoint(user, id).await {
                Ok(e) if e.enabled => Ok(vec![e]),
                Ok(_) | Err(StoreError::NotFound) => Ok(vec![]),
                Err(e) => Err(e),
            }
        };
        match job {
            Job::Replay { endpoint, .. } => one(*endpoint).await,
            Job::Event(e) if e.event_type == EventType::WebhookEndpointTest => match EndpointId::parse(&e.resource.id) {
                Ok(id) => one(id).await,
                Err(_) => Ok(vec![]),
            },
            Job::Event(e) => Ok(self.store.all_endpoints(user).await?.into_iter().filter(|ep| ep.wants(e.event_type)).collect()),
        }
    }

    /// One attempt at one endpoint.
    async fn deliver(
        &self,
        user: &UserId,
        endpoint: &WebhookEndpoint,
        event: &Event,
        replay: bool,
        final_attempt: bool,
        now: OffsetDateTime,
    ) -> Result<Attempt, StoreError> {
        let keys = match self.secrets.signing_keys(endpoint.id).await {
            Ok(Some(keys)) => keys,
            // Deleted meanwhile (the record goes first, then the secret): nothing to deliver to.
            Ok(None) => return Ok(Attempt::Done),
            Err(e) => return Err(StoreError::Unavailable(Box::new(e))),
        };
        let body = event.to_json();
        let timestamp = now.unix_timestamp();
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("webhook-id", event.id.to_string()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", keys.header(event.id.as_str(), timestamp, &body, now)),
            ("user-agent", "Patchbay-Webhooks/1".to_owned()),
        ];
        let sent = self.sender.post(&endpoint.url, &headers, &body).await;
        let attempt = DeliveryAttempt {
            id: uuid::Uuid::now_v7().to_string(),
            endpoint_id: endpoint.id,
            event_id: event.id.to_string(),
            event_type: event.event_type,
            at: now,
            status: sent.status,
            duration_ms: sent.duration_ms,
            error: sent.error.clone(),
            replay,
        };
        let gone = sent.status == Some(410);
        let state = if attempt.succeeded() {
            DeliveryState::Succeeded
        } else if final_attempt || gone {
            DeliveryState::Failed
        } else {
            DeliveryState::Pending
        };
        self.store.record_attempt(user, &attempt, state).await?;
        if attempt.succeeded() {
            return Ok(Attempt::Done);
        }
        tracing::info!(endpoint = %endpoint.id, event = %event.id, status = ?sent.status, error = ?sent.error, "a webhook delivery failed");
        if gone {
            // 410 Gone: the receiver says it is not coming back.
            self.store.disable_endpoint(user, endpoint.id, "gone", None).await?;
            return Ok(Attempt::Done);
        }
        if endpoint.failing_since.is_some_and(|since| now - since >= DISABLE_AFTER_FAILING) {
            let cutoff = now - DISABLE_AFTER_FAILING;
            if self.store.disable_endpoint(user, endpoint.id, "failing", Some(cutoff)).await? {
                tracing::warn!(endpoint = %endpoint.id, "a webhook endpoint failing for five days was disabled");
                return Ok(Attempt::Done);
            }
        }
        Ok(if final_attempt { Attempt::Done } else { Attempt::Again { retry_after: sent.retry_after } })
    }
}

/// What one attempt at one endpoint leaves to do.
enum Attempt {
    /// Nothing more for this endpoint: delivered, turned off, gone, or out of attempts (recorded).
    Done,
    /// Try it again, not before `retry_after` if the endpoint asked.
    Again { retry_after: Option<Duration> },
}

/// The delay before the next attempt after `attempt` failed (1-based), at least what the endpoint
/// asked for, at most SQS's 12 hours.
pub fn next_delay(attempt: u32, schedule: &[Duration], retry_after: Option<Duration>) -> Duration {
    let step = schedule.get(attempt.saturating_sub(1) as usize).or(schedule.last()).copied().unwrap_or(Duration::from_secs(5));
    step.max(retry_after.unwrap_or_default()).min(Duration::from_secs(12 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_the_specifications_within_twelve_hours() {
        assert_eq!(next_delay(1, &SCHEDULE, None), Duration::from_secs(5));
        assert_eq!(next_delay(2, &SCHEDULE, None), Duration::from_secs(300));
        assert_eq!(next_delay(7, &SCHEDULE, None), Duration::from_secs(36_000));
        assert_eq!(next_delay(9, &SCHEDULE, None), Duration::from_secs(36_000), "past the end: the last step");
        assert_eq!(next_delay(1, &SCHEDULE, Some(Duration::from_secs(60))), Duration::from_secs(60), "Retry-After honoured");
        assert_eq!(next_delay(1, &SCHEDULE, Some(Duration::from_secs(86_400))), Duration::from_secs(43_200), "capped");
    }
}
