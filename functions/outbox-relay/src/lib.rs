//! The outbox relay: a state change and the work it starts are one transaction. The API, the webhook
//! receiver and the worker write the follow-up command as an outbox item (`USER#{user}` /
//! `OUT#{command id}`, attribute `work`: the command envelope as JSON) in the state change's own
//! transaction; this function reads the table's stream and sends each new outbox item's command to
//! the FIFO work queue (message group and deduplication id from the command), so no path does
//! "write, then send" and nothing is lost between the two.
//!
//! On AWS the event source mapping filters the stream to INSERTs of `OUT#` items, bisects a failing
//! batch and takes partial batch responses; the local stack polls the emulator's stream and applies
//! the same filter (`accepts`). A record whose send fails is reported, with everything after it,
//! so that the stream is read again from there (a record sent twice is dropped by the queue's
//! deduplication on the command id).

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use patchbay_domain::kernel::work::WorkQueue;
use patchbay_domain::CommandEnvelope;

/// The sort-key prefix of outbox items.
pub const OUTBOX_PREFIX: &str = "OUT#";

pub struct Relay {
    pub queue: Arc<dyn WorkQueue>,
}

/// What an outbox item carries, read from its stream image.
#[derive(Debug, PartialEq)]
pub enum Outboxed {
    /// Not an outbox item's insert (the filter lets nothing else through on AWS).
    Other,
    /// An item whose `work` cannot be read: logged and skipped (a retry cannot fix it, and it would
    /// hold every record behind it).
    Unreadable(String),
    Work(CommandEnvelope),
}

/// The event source mapping's filter, in code: an INSERT of an `OUT#` item.
pub fn accepts(record: &EventRecord) -> bool {
    record.event_name == "INSERT"
        && matches!(record.change.keys.get("sk"), Some(serde_dynamo::AttributeValue::S(sk)) if sk.starts_with(OUTBOX_PREFIX))
}

pub fn read(record: &EventRecord) -> Outboxed {
    if !accepts(record) {
        return Outboxed::Other;
    }
    match record.change.new_image.get("work") {
        Some(serde_dynamo::AttributeValue::S(json)) => match serde_json::from_str::<CommandEnvelope>(json) {
            Ok(envelope) => Outboxed::Work(envelope),
            Err(e) => Outboxed::Unreadable(format!("work is not a command: {e}")),
        },
        Some(_) => Outboxed::Unreadable("work is not a string".into()),
        None => Outboxed::Unreadable("an outbox item without work".into()),
    }
}

impl Relay {
    /// One batch, in stream order. The first record whose send fails is reported (with its sequence
    /// number), and the batch stops there: Lambda reads the stream again from that record.
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for record in &event.records {
            match read(record) {
                Outboxed::Other => {}
                Outboxed::Unreadable(why) => {
                    tracing::error!(event_id = %record.event_id, %why, "an unreadable outbox item was skipped");
                }
                Outboxed::Work(envelope) => {
                    if let Err(e) = self.queue.enqueue(&envelope).await {
                        tracing::warn!(command = %envelope.id, error = %e, "relaying a command failed; the stream is read again from it");
                        let id = record.change.sequence_number.clone().unwrap_or_default();
                        let mut failure = DynamoDbBatchItemFailure::default();
                        failure.item_identifier = Some(id);
                        response.batch_item_failures.push(failure);
                        return response;
                    }
                    tracing::debug!(command = %envelope.id, "relayed");
                }
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use patchbay_domain::kernel::work::QueueError;

    use super::*;

    /// A queue that records what it was sent, and refuses the ids it is told to.
    #[derive(Default)]
    struct Queue {
        sent: Mutex<Vec<String>>,
        refuse: Vec<String>,
    }

    #[async_trait]
    impl WorkQueue for Queue {
        async fn enqueue(&self, command: &CommandEnvelope) -> Result<(), QueueError> {
            if self.refuse.contains(&command.id) {
                return Err(QueueError("SQS is down".into()));
            }
            self.sent.lock().unwrap().push(command.id.clone());
            Ok(())
        }
    }

    fn sample() -> Event {
        serde_json::from_str(include_str!("../../../events/outbox-relay/batch.json")).expect("a DynamoDB stream event")
    }

    #[tokio::test]
    async fn each_outbox_insert_is_relayed_in_stream_order() {
        let queue = Arc::new(Queue::default());
        let response = Relay { queue: queue.clone() }.handle(sample()).await;
        assert!(response.batch_item_failures.is_empty());
        let pid = "01a24b85-f0ea-7cfe-9fb5-4adc071e2876";
        assert_eq!(*queue.sent.lock().unwrap(), vec![format!("sync-profile-{pid}-v1"), format!("sync-profile-{pid}-v2")]);
    }

    #[tokio::test]
    async fn a_failed_send_is_reported_and_nothing_after_it_is_sent() {
        let pid = "01a24b85-f0ea-7cfe-9fb5-4adc071e2876";
        let queue = Arc::new(Queue { refuse: vec![format!("sync-profile-{pid}-v1")], ..Default::default() });
        let response = Relay { queue: queue.clone() }.handle(sample()).await;
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(failed, vec![Some("111100000000000000000001".to_owned())], "the stream is read again from the failed record");
        assert!(queue.sent.lock().unwrap().is_empty(), "the record after it waits for the retry, in order");
    }

    #[tokio::test]
    async fn other_records_and_unreadable_items_are_skipped() {
        let mut event = sample();
        event.records[0].event_name = "MODIFY".into();
        event.records[1].change.new_image.insert("work".into(), serde_dynamo::AttributeValue::S("not json".into()));
        let queue = Arc::new(Queue::default());
        let response = Relay { queue: queue.clone() }.handle(event).await;
        assert!(response.batch_item_failures.is_empty(), "an unreadable item cannot be fixed by a retry");
        assert!(queue.sent.lock().unwrap().is_empty());
        assert_eq!(read(&sample().records[0]), Outboxed::Work(serde_json::from_str(
            r#"{"id":"sync-profile-01a24b85-f0ea-7cfe-9fb5-4adc071e2876-v1","command":{"type":"sync_messaging_profile","user_id":"user-1","profile_id":"01a24b85-f0ea-7cfe-9fb5-4adc071e2876"}}"#
        ).unwrap()));
    }
}
