//! The local event source mapping of the table's stream: what Lambda does on AWS for the outbox
//! relay. It reads each shard of the emulator's stream from its start (TRIM_HORIZON), hands the new
//! records to the same `Relay::handle` the Lambda runs, in stream order, as an `aws_lambda_events`
//! DynamoDB event, and on a reported failure (or a killed invocation) reads again from the first
//! record not relayed. The template's filter (INSERTs of `OUT#` items) is applied by the relay in
//! code (`patchbay_outbox_relay::accepts`); moto never sees the mapping (local/stack.py leaves it out,
//! since moto's own would empty the stream).

use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use patchbay_outbox_relay::Relay;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

pub struct StreamPoller {
    pub client: aws_sdk_dynamodbstreams::Client,
    pub stream_arn: String,
    /// Pause after a poll that found nothing new.
    pub idle: Duration,
}

type StreamError = Box<dyn std::error::Error + Send + Sync>;

impl StreamPoller {
    /// Relay until `stop` turns true.
    pub async fn run(self, relay: Relay, mut stop: watch::Receiver<bool>) {
        let mut shards: Vec<(String, Option<String>)> = Vec::new();
        loop {
            if *stop.borrow() {
                return;
            }
            let busy = match self.poll(&relay, &mut shards).await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the table's stream failed");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(self.idle) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// One round over the shards; answers whether any record was read.
    pub async fn poll(&self, relay: &Relay, shards: &mut Vec<(String, Option<String>)>) -> Result<bool, StreamError> {
        if shards.is_empty() {
            let out = self.client.describe_stream().stream_arn(&self.stream_arn).send().await?;
            for shard in out.stream_description().map(|d| d.shards()).unwrap_or_default() {
                if let Some(id) = shard.shard_id() {
                    shards.push((id.to_owned(), None));
                }
            }
        }
        let mut busy = false;
        for (shard, iterator) in shards.iter_mut() {
            let it = match iterator.take() {
                Some(it) => it,
                None => self.iterator(shard, ShardIteratorType::TrimHorizon, None).await?,
            };
            let out = self.client.get_records().shard_iterator(&it).limit(100).send().await?;
            let records = out.records();
            *iterator = out.next_shard_iterator().map(str::to_owned);
            if records.is_empty() {
                continue;
            }
            busy = true;
            let first = records[0].dynamodb().and_then(|d| d.sequence_number()).unwrap_or_default().to_owned();
            let event: aws_lambda_events::event::dynamodb::Event =
                serde_json::from_value(json!({"Records": records.iter().map(|r| lambda_record(r, &self.stream_arn)).collect::<Vec<_>>()}))?;
            // One batch is one invocation: killed, it is read again from its first record.
            let again = match crate::faults::invocation(relay.handle(event)).await {
                Ok(response) => response.batch_item_failures.into_iter().find_map(|f| f.item_identifier),
                Err(crate::faults::Killed) => Some(first),
            };
            if let Some(sequence) = again {
                *iterator = Some(self.iterator(shard, ShardIteratorType::AtSequenceNumber, Some(&sequence)).await?);
                busy = false; // back off before the retry, as Lambda does
            }
        }
        Ok(busy)
    }

    async fn iterator(&self, shard: &str, kind: ShardIteratorType, sequence: Option<&str>) -> Result<String, StreamError> {
        let out = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_sequence_number(sequence.map(str::to_owned))
            .send()
            .await?;
        out.shard_iterator().map(str::to_owned).ok_or_else(|| "no shard iterator".into())
    }
}

/// A stream record as Lambda hands it to a function (`aws_lambda_events`' DynamoDB event record).
fn lambda_record(r: &Record, arn: &str) -> Value {
    let d = r.dynamodb();
    let image = |m: Option<&std::collections::HashMap<String, AttributeValue>>| -> Value {
        Value::Object(m.map(|m| m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect()).unwrap_or_default())
    };
    json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": r.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region(),
        "eventSourceARN": arn,
        "dynamodb": {
            "ApproximateCreationDateTime": d.and_then(|d| d.approximate_creation_date_time()).map_or(0, |t| t.secs()),
            "Keys": image(d.and_then(|d| d.keys())),
            "NewImage": image(d.and_then(|d| d.new_image())),
            "OldImage": image(d.and_then(|d| d.old_image())),
            "SequenceNumber": d.and_then(|d| d.sequence_number()),
            "SizeBytes": d.and_then(|d| d.size_bytes()).unwrap_or(0),
            "StreamViewType": d.and_then(|d| d.stream_view_type()).map(|v| v.as_str()),
        },
    })
}

/// An attribute value in DynamoDB's JSON form.
fn attribute(v: &AttributeValue) -> Value {
    use base64::Engine;
    let b64 = |b: &aws_smithy_types::Blob| base64::engine::general_purpose::STANDARD.encode(b.as_ref());
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::M(m) => json!({"M": Value::Object(m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<Map<_, _>>())}),
        AttributeValue::L(l) => json!({"L": l.iter().map(attribute).collect::<Vec<_>>()}),
        AttributeValue::Ss(ss) => json!({"SS": ss}),
        AttributeValue::Ns(ns) => json!({"NS": ns}),
        AttributeValue::B(b) => json!({"B": b64(b)}),
        AttributeValue::Bs(bs) => json!({"BS": bs.iter().map(b64).collect::<Vec<_>>()}),
        _ => Value::Null,
    }
}
