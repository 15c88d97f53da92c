//! The SQS FIFO work queue: one message group per resource, deduplicated by the command's id.

use async_trait::async_trait;
use patchbay_domain::kernel::work::{QueueError, WorkQueue};
use patchbay_domain::CommandEnvelope;

#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    async fn enqueue(&self, command: &CommandEnvelope) -> Result<(), QueueError> {
        let body = serde_json::to_string(command).map_err(|e| QueueError(Box::new(e)))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_group_id(command.group())
            .message_deduplication_id(&command.id)
            .send()
            .await
            .map_err(|e| QueueError(Box::new(e.into_service_error())))?;
        tracing::debug!(command = %command.id, "enqueued");
        Ok(())
    }
}

/// The webhook queue, for the deliveries the API puts there itself (a replay: each event to one
/// endpoint, `{"replay": {"endpoint_id", "event"}}`), ten to a `SendMessageBatch`.
#[derive(Clone)]
pub struct SqsWebhookQueue {
    client: aws_sdk_sqs::Client,
    url: Option<String>,
}

impl SqsWebhookQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: Option<String>) -> Self {
        Self { client, url }
    }
}

#[async_trait]
impl patchbay_domain::events::DeliveryQueue for SqsWebhookQueue {
    async fn replay(
        &self,
        endpoint: patchbay_domain::kernel::ids::EndpointId,
        events: &[patchbay_domain::kernel::event::Event],
    ) -> Result<(), patchbay_domain::StoreError> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        let unavailable = |e: String| patchbay_domain::StoreError::Unavailable(e.into());
        let Some(url) = &self.url else { return Err(unavailable("WEBHOOK_QUEUE_URL is not set".into())) };
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let body = serde_json::json!({"replay": {"endpoint_id": endpoint.to_string(), "event": e}}).to_string();
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| unavailable(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| unavailable(e.into_service_error().to_string()))?;
            if !out.failed().is_empty() {
                return Err(unavailable(format!("{} replay messages were refused", out.failed().len())));
            }
        }
        Ok(())
    }
}
