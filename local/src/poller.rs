//! The local event source mapping: short-polls the work queue (a long poll would hold the
//! single-threaded emulator), hands each batch to the same `Worker::handle_batch` Lambda runs, and
//! deletes what succeeded. Failed messages stay, become visible again after the visibility timeout,
//! and after the template's maxReceiveCount the queue moves them to the dead-letter queue. Each batch
//! runs as one invocation of the fault layer's (`faults::invocation`): a killed one deletes nothing.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use patchbay_webhook_dispatcher::WebhookDispatcher;
use patchbay_worker::Worker;
use serde_json::json;
use tokio::sync::watch;

/// What a queue's event source mapping hands its batches to: the worker, the webhook dispatcher.
pub trait Handler: Send + Sync {
    fn handle_batch(&self, event: SqsEvent) -> impl std::future::Future<Output = SqsBatchResponse> + Send;
}

impl Handler for Worker {
    fn handle_batch(&self, event: SqsEvent) -> impl std::future::Future<Output = SqsBatchResponse> + Send {
        Worker::handle_batch(self, event)
    }
}

impl Handler for WebhookDispatcher {
    fn handle_batch(&self, event: SqsEvent) -> impl std::future::Future<Output = SqsBatchResponse> + Send {
        WebhookDispatcher::handle_batch(self, event)
    }
}

pub struct Poller {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// Visibility timeout per receive; `None` keeps the queue's (the template's 180 s).
    pub visibility_timeout: Option<i32>,
    /// Pause after an empty poll.
    pub idle: Duration,
}

impl Poller {
    /// Receive and handle one batch; returns how many messages it handled.
    pub async fn poll_once<H: Handler>(&self, worker: &H) -> Result<usize, aws_sdk_sqs::Error> {
        let mut req = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All);
        if let Some(v) = self.visibility_timeout {
            req = req.visibility_timeout(v);
        }
        let out = req.send().await?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
        let records: Vec<SqsMessage> = messages
            .iter()
            .filter_map(|m| {
                let attributes: serde_json::Map<String, serde_json::Value> =
                    m.attributes.as_ref().map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect()).unwrap_or_default();
                serde_json::from_value(json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": attributes,
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                }))
                .ok()
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({"Records": records})).unwrap_or_default();
        // One batch is one invocation: if the fault layer kills it, nothing is deleted and every
        // message comes back after its visibility timeout, as from a Lambda that died.
        let Ok(response) = crate::faults::invocation(worker.handle_batch(event)).await else {
            tracing::debug!(messages = messages.len(), "the worker's invocation was killed (fault layer)");
            return Ok(messages.len());
        };
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        for m in &messages {
            if failed.contains(&m.message_id().unwrap_or("")) {
                continue;
            }
            if let Some(handle) = m.receipt_handle() {
                self.sqs.delete_message().queue_url(&self.queue_url).receipt_handle(handle).send().await?;
            }
        }
        Ok(messages.len())
    }

    /// Poll until `stop` turns true.
    pub async fn run<H: Handler>(self, worker: H, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let pause = match self.poll_once(&worker).await {
                Ok(0) => self.idle,
                Ok(_) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!(error = %e, "polling the work queue failed");
                    Duration::from_secs(1)
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}
