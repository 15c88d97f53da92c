//! The webhook dispatcher: the webhook queue's consumer. Each message is an event from the bus (the
//! stack's rule puts EventBridge's wrapper there: `{"detail-type", "source", "detail": envelope}`)
//! or a replay the API put there (`{"replay": {"endpoint_id", "event"}}`). Every message of a batch
//! runs at once, so a slow endpoint holds up nobody else's deliveries (one event is one user's).
//!
//! A message whose deliveries failed goes back with its visibility set to the next step of the
//! retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; an endpoint's `Retry-After` honoured up
//! to 12 h); an endpoint that already took the event is not sent it again. On the queue's last
//! delivery the failure is recorded (`failed`) and the message moves to the alarmed dead-letter queue.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use patchbay_adapters::Wiring;
use patchbay_domain::events::{next_delay, Dispatcher, EndpointSecrets, EndpointStore, Job, WebhookSender, SCHEDULE};
use patchbay_domain::kernel::event::Event;
use patchbay_domain::kernel::ids::EndpointId;
use serde::Deserialize;
use time::OffsetDateTime;

pub struct WebhookDispatcher {
    pub store: Arc<dyn EndpointStore>,
    pub secrets: Arc<dyn EndpointSecrets>,
    pub sender: Arc<dyn WebhookSender>,
    /// Moves a failed message's visibility to its next attempt.
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: Option<String>,
    pub schedule: Vec<Duration>,
    /// The queue's `maxReceiveCount`: the delivery with this count is the last one.
    pub max_receive_count: u32,
}

impl WebhookDispatcher {
    pub fn new(w: &Wiring) -> Self {
        Self {
            store: w.store.clone(),
            secrets: w.endpoint_secrets(),
            sender: w.webhook_http(),
            sqs: w.sqs_client(),
            queue_url: w.config.webhook_queue_url.clone(),
            schedule: w.config.webhook_schedule.clone().unwrap_or_else(|| SCHEDULE.to_vec()),
            max_receive_count: w.config.webhook_max_receive_count,
        }
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let outcomes = futures::future::join_all(event.records.iter().map(|r| self.handle(r))).await;
        let mut response = SqsBatchResponse::default();
        for (record, ok) in event.records.iter().zip(outcomes) {
            if !ok {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// One message; `false` gives it back to the queue.
    pub async fn handle(&self, record: &SqsMessage) -> bool {
        let receive_count: u32 = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        let final_attempt = receive_count >= self.max_receive_count;
        let job = match read(record.body.as_deref().unwrap_or_default()) {
            Ok(job) => job,
            Err(why) => {
                // A retry cannot fix it: logged and dropped.
                tracing::error!(message = ?record.message_id, %why, "an unreadable webhook message was dropped");
                return true;
            }
        };
        let dispatcher = Dispatcher { store: self.store.as_ref(), secrets: self.secrets.as_ref(), sender: self.sender.as_ref() };
        let retry_after = match dispatcher.run(&job, final_attempt, OffsetDateTime::now_utc()).await {
            Ok(d) if d.failed == 0 => return true,
            Ok(d) => d.retry_after,
            Err(e) => {
                tracing::warn!(message = ?record.message_id, error = %e, "a webhook message goes back to the queue");
                None
            }
        };
        if !final_attempt {
            self.delay(record, next_delay(receive_count, &self.schedule, retry_after)).await;
        }
        false
    }

    /// The message comes back after `delay` (its visibility timeout, moved).
    async fn delay(&self, record: &SqsMessage, delay: Duration) {
        let (Some(url), Some(handle)) = (&self.queue_url, &record.receipt_handle) else { return };
        let moved = self
            .sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(handle)
            .visibility_timeout(delay.as_secs() as i32)
            .send()
            .await;
        if let Err(e) = moved {
            // It comes back after the queue's own visibility timeout instead.
            tracing::warn!(error = %e.into_service_error(), "a webhook message's next attempt could not be scheduled");
        }
    }
}

#[derive(Deserialize)]
struct Replay {
    endpoint_id: String,
    event: Event,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    detail: Option<Event>,
    #[serde(default)]
    replay: Option<Replay>,
}

/// A message's job: an event from the bus, or a replay.
pub fn read(body: &str) -> Result<Job, String> {
    let b: Body = serde_json::from_str(body).map_err(|e| format!("not a webhook message: {e}"))?;
    match (b.detail, b.replay) {
        (Some(event), None) => Ok(Job::Event(event)),
        (None, Some(r)) => Ok(Job::Replay { endpoint: EndpointId::parse(&r.endpoint_id).map_err(|e| e.message)?, event: r.event }),
        _ => Err("neither an event nor a replay".into()),
    }
}
