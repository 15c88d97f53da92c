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
