//! The outbox relay: a state change and the work it starts (and the event it reports) are one
//! transaction. The API, the webhook receiver and the worker write the follow-up command as an
//! outbox item (`USER#{user}` / `OUT#{command id}`, attribute `work`: the command envelope as JSON)
//! and the event as an event item (`USER#{user}` / `EVT#{event id}`, attribute `body`: the envelope
//! as JSON) in the state change's own transaction; this function reads the table's stream and sends
//! each new outbox item's command to the FIFO work queue (message group and deduplication id from the
//! command) and publishes each new event item to the event bus (EventBridge, `Source: patchbay`,
//! `DetailType`: the event's type), so no path does "write, then send" and nothing is lost between
//! the two.
//!
//! On AWS the event source mapping filters the stream to INSERTs of `OUT#` and `EVT#` items, bisects
//! a failing batch and takes partial batch responses; the local stack polls the emulator's stream
//! and applies the same filter (`accepts`). A record whose send fails is reported, with everything
//! after it, so that the stream is read again from there (a record sent twice is dropped by the
//! queue's deduplication on the command id; an event published twice carries the same id, which
//! every consumer deduplicates on).

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use patchbay_domain::kernel::event::{self as ev, EventBus};
use patchbay_domain::kernel::work::WorkQueue;
use patchbay_domain::CommandEnvelope;

/// The sort-key prefix of outbox items.
pub const OUTBOX_PREFIX: &str = "OUT#";
/// The sort-key prefix of event items.
pub const EVENT_PREFIX: &str = "EVT#";

pub struct Relay {
    pub queue: Arc<dyn WorkQueue>,
    pub bus: Arc<dyn EventBus>,
}

/// What an item carries, read from its stream image.
#[derive(Debug, PartialEq)]
pub enum Outboxed {
    /// Not an outbox or event item's insert (the filter lets nothing else through on AWS).
    Other,
    /// An item that cannot be read: logged and skipped (a retry cannot fix it, and it would hold
    /// every record behind it).
    Unreadable(String),
    Work(CommandEnvelope),
    Event(Box<ev::Event>),
}

fn sort_key(record: &EventRecord) -> Option<&str> {
    match record.change.keys.get("sk") {
        Some(serde_dynamo::AttributeValue::S(sk)) => Some(sk),
        _ => None,
    }
}

/// The event source mapping's filter, in code: an INSERT of an `OUT#` or `EVT#` item.
pub fn accepts(record: &EventRecord) -> bool {
    record.event_name == "INSERT" && sort_key(record).is_some_and(|sk| sk.starts_with(OUTBOX_PREFIX) || sk.starts_with(EVENT_PREFIX))
}

fn string<'a>(record: &'a EventRecord, attribute: &str) -> Result<&'a str, String> {
    match record.change.new_image.get(attribute) {
        Some(serde_dynamo::AttributeValue::S(s)) => Ok(s),
        Some(_) => Err(format!("{attribute} is not a string")),
        None => Err(format!("an item without {attribute}")),
    }
}

pub fn read(record: &EventRecord) -> Outboxed {
    if !accepts(record) {
        return Outboxed::Other;
    }
    if sort_key(record).is_some_and(|sk| sk.starts_with(EVENT_PREFIX)) {
        return match string(record, "body")
            .and_then(|json| serde_json::from_str::<ev::Event>(json).map_err(|e| format!("body is not an event: {e}")))
        {
            Ok(event) => Outboxed::Event(Box::new(event)),
            Err(why) => Outboxed::Unreadable(why),
        };
    }
    match string(record, "work")
        .and_then(|json| serde_json::from_str::<CommandEnvelope>(json).map_err(|e| format!("work is not a command: {e}")))
    {
        Ok(envelope) => Outboxed::Work(envelope),
        Err(why) => Outboxed::Unreadable(why),
    }
}

fn failure_at(record: &EventRecord) -> DynamoDbEventResponse {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(record.change.sequence_number.clone().unwrap_or_default());
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure);
    response
}

impl Relay {
    /// One batch, in stream order. Consecutive events go to the bus together (up to ten a call);
    /// the first record whose send fails is reported (with its sequence number), and the batch stops
    /// there: Lambda reads the stream again from that record.
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        // Events read but not yet published, with their records.
        let mut pending: Vec<(&EventRecord, ev::Event)> = Vec::new();
        for record in &event.records {
            match read(record) {
                Outboxed::Other => {}
                Outboxed::Unreadable(why) => {
                    tracing::error!(event_id = %record.event_id, %why, "an unreadable stream item was skipped");
                }
                Outboxed::Event(e) => {
                    pending.push((record, *e));
                    if pending.len() == ev::MAX_BATCH {
                        if let Err(failed) = self.publish(&mut pending).await {
                            return failure_at(failed);
                        }
                    }
                }
                Outboxed::Work(envelope) => {
                    // The events before it go first: the stream's order is kept.
                    if let Err(failed) = self.publish(&mut pending).await {
                        return failure_at(failed);
                    }
                    if let Err(e) = self.queue.enqueue(&envelope).await {
                        tracing::warn!(command = %envelope.id, error = %e, "relaying a command failed; the stream is read again from it");
                        return failure_at(record);
                    }
                    tracing::debug!(command = %envelope.id, "relayed");
                }
            }
        }
        match self.publish(&mut pending).await {
            Ok(()) => DynamoDbEventResponse::default(),
            Err(failed) => failure_at(failed),
        }
    }

    /// Publish what is pending; on a refusal, the record of the first event not published.
    async fn publish<'a>(&self, pending: &mut Vec<(&'a EventRecord, ev::Event)>) -> Result<(), &'a EventRecord> {
        if pending.is_empty() {
            return Ok(());
        }
        let events: Vec<ev::Event> = pending.iter().map(|(_, e)| e.clone()).collect();
        let result = self.bus.publish(&events).await;
        let batch = std::mem::take(pending);
        match result {
            Ok(()) => {
                tracing::debug!(events = batch.len(), "published");
                Ok(())
            }
            Err(e) => {
                let (record, event) = &batch[e.first_failed.min(batch.len() - 1)];
                tracing::warn!(event = %event.id, error = %e, "publishing an event failed; the stream is read again from it");
                Err(record)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use patchbay_domain::kernel::event::{EventType, PublishError};
    use patchbay_domain::kernel::work::QueueError;
    use patchbay_domain::UserId;

    use super::*;

    /// A bus that records what it was sent (one entry per call), and refuses the event ids it is told to.
    #[derive(Default)]
    struct Bus {
        calls: Mutex<Vec<Vec<String>>>,
        refuse: Vec<String>,
    }

    #[async_trait]
    impl EventBus for Bus {
        async fn publish(&self, events: &[ev::Event]) -> Result<(), PublishError> {
            assert!(events.len() <= ev::MAX_BATCH);
            let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
            if let Some(i) = ids.iter().position(|id| self.refuse.contains(id)) {
                self.calls.lock().unwrap().push(ids[..i].to_vec());
                return Err(PublishError { first_failed: i, message: "throttled".into() });
            }
            self.calls.lock().unwrap().push(ids);
            Ok(())
        }
    }

    fn relay(queue: &Arc<Queue>, bus: &Arc<Bus>) -> Relay {
        Relay { queue: queue.clone(), bus: bus.clone() }
    }

    /// An event item's INSERT, shaped like the sample's records, with sequence number `seq`.
    fn event_record(seq: u32) -> (EventRecord, ev::Event) {
        let user = UserId::parse("user-1").unwrap();
        let e = ev::Event::new(
            EventType::MessageReceived,
            &user,
            format!("m-{seq}"),
            4,
            serde_json::json!({"text": "hi"}),
            time::OffsetDateTime::now_utc(),
        );
        let mut r = sample().records[0].clone();
        let sk = serde_dynamo::AttributeValue::S(format!("EVT#{}", e.id));
        r.change.keys.insert("sk".into(), sk.clone());
        let image: std::collections::HashMap<String, serde_dynamo::AttributeValue> =
            [("sk".to_owned(), sk), ("body".to_owned(), serde_dynamo::AttributeValue::S(e.to_json()))].into_iter().collect();
        r.change.new_image = image.into();
        r.change.sequence_number = Some(format!("2222{seq:020}"));
        (r, e)
    }

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
        let response = relay(&queue, &Arc::new(Bus::default())).handle(sample()).await;
        assert!(response.batch_item_failures.is_empty());
        let pid = "01a24b85-f0ea-7cfe-9fb5-4adc071e2876";
        assert_eq!(*queue.sent.lock().unwrap(), vec![format!("sync-profile-{pid}-v1"), format!("sync-profile-{pid}-v2")]);
    }

    #[tokio::test]
    async fn a_failed_send_is_reported_and_nothing_after_it_is_sent() {
        let pid = "01a24b85-f0ea-7cfe-9fb5-4adc071e2876";
        let queue = Arc::new(Queue { refuse: vec![format!("sync-profile-{pid}-v1")], ..Default::default() });
        let response = relay(&queue, &Arc::new(Bus::default())).handle(sample()).await;
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
        let response = relay(&queue, &Arc::new(Bus::default())).handle(event).await;
        assert!(response.batch_item_failures.is_empty(), "an unreadable item cannot be fixed by a retry");
        assert!(queue.sent.lock().unwrap().is_empty());
        assert_eq!(read(&sample().records[0]), Outboxed::Work(serde_json::from_str(
            r#"{"id":"sync-profile-01a24b85-f0ea-7cfe-9fb5-4adc071e2876-v1","command":{"type":"sync_messaging_profile","user_id":"user-1","profile_id":"01a24b85-f0ea-7cfe-9fb5-4adc071e2876"}}"#
        ).unwrap()));
    }

    #[tokio::test]
    async fn events_are_published_in_batches_of_ten_in_stream_order_around_commands() {
        let (queue, bus) = (Arc::new(Queue::default()), Arc::new(Bus::default()));
        let mut event = sample();
        let (mut records, mut ids) = (Vec::new(), Vec::new());
        for seq in 0..12 {
            let (r, e) = event_record(seq);
            records.push(r);
            ids.push(e.id.to_string());
        }
        // twelve events, a command, one more event
        let (last, last_event) = event_record(12);
        event.records = records.into_iter().chain([event.records[0].clone(), last]).collect();
        let response = relay(&queue, &bus).handle(event).await;
        assert!(response.batch_item_failures.is_empty());
        let calls = bus.calls.lock().unwrap().clone();
        assert_eq!(calls, vec![ids[..10].to_vec(), ids[10..].to_vec(), vec![last_event.id.to_string()]]);
        assert_eq!(queue.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_refused_event_is_reported_and_nothing_after_it_is_sent() {
        let (r0, e0) = event_record(0);
        let (r1, e1) = event_record(1);
        let (r2, _) = event_record(2);
        let queue = Arc::new(Queue::default());
        let bus = Arc::new(Bus { refuse: vec![e1.id.to_string()], ..Default::default() });
        let mut event = sample();
        let command = event.records[0].clone();
        event.records = vec![r0, r1.clone(), r2, command];
        let response = relay(&queue, &bus).handle(event).await;
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(failed, vec![r1.change.sequence_number.clone()], "read again from the refused event");
        assert_eq!(*bus.calls.lock().unwrap(), vec![vec![e0.id.to_string()]], "the one before it went out");
        assert!(queue.sent.lock().unwrap().is_empty(), "the command after it waits, in order");
        assert!(matches!(read(&event_record(3).0), Outboxed::Event(_)));
    }
}
