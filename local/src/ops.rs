//! Operator commands against a running local stack (never deployed): one reconciliation pass, and
//! the work queue's dead-letter queue listed and redriven.
//!
//!   POST /local/reconcile[?budget_ms=N]   one pass of the scheduled reconciler; answers its report
//!   GET  /local/dlq                       what waits in the dead-letter queue (nothing is consumed)
//!   POST /local/dlq/redrive               every dead letter back onto the work queue, in order
//!
//! `patchbay-local reconcile` and `patchbay-local dlq list|redrive` call these. On AWS the
//! reconciler runs on its schedule and a redrive is SQS `StartMessageMoveTask` (README runbook).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_adapters::http::ApiError;
use patchbay_adapters::Wiring;
use patchbay_reconciler::ReconcilerFunction;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub struct Ops {
    reconciler: ReconcilerFunction,
    sqs: aws_sdk_sqs::Client,
    work_queue_url: String,
    dlq_url: String,
}

/// One message waiting in the dead-letter queue.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeadLetter {
    pub message_id: String,
    /// The command's type (`sync_phone_number`, `send_sms`, …) and its deduplication id.
    pub command: String,
    pub command_id: String,
    pub group: String,
    /// Deliveries to the worker before it was moved here.
    pub receive_count: u32,
    pub body: Value,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Redrive {
    pub moved: usize,
    pub commands: Vec<String>,
}

#[derive(Deserialize)]
struct Budget {
    budget_ms: Option<u64>,
}

pub fn ops_routes(w: &Wiring, sqs: aws_sdk_sqs::Client, dlq_url: String) -> Router {
    let ops = Arc::new(Ops { reconciler: ReconcilerFunction::new(w), sqs, work_queue_url: w.config.work_queue_url.clone(), dlq_url });
    Router::new()
        .route("/local/reconcile", post(reconcile))
        .route("/local/dlq", get(list))
        .route("/local/dlq/redrive", post(redrive))
        .with_state(ops)
}

async fn reconcile(State(ops): State<Arc<Ops>>, Query(b): Query<Budget>) -> Result<Json<Value>, ApiError> {
    let budget = Duration::from_millis(b.budget_ms.unwrap_or(120_000));
    let report = ops.reconciler.pass(budget).await.map_err(|e| ApiError::unavailable("reconciler", &e))?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}

fn unavailable(e: impl std::error::Error + 'static) -> ApiError {
    ApiError::unavailable("dead-letter queue", &e)
}

impl Ops {
    /// One receive from the dead-letter queue, hidden for `hide` seconds (0: only looked at).
    async fn receive(&self, hide: i32) -> Result<Vec<(DeadLetter, String)>, ApiError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(hide)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| unavailable(aws_sdk_sqs::Error::from(e)))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let attrs = m.attributes.unwrap_or_default();
                let attr = |n: MessageSystemAttributeName| attrs.get(&n).cloned().unwrap_or_default();
                let body: Value = serde_json::from_str(m.body.as_deref().unwrap_or("null")).unwrap_or(Value::Null);
                let letter = DeadLetter {
                    message_id: m.message_id.unwrap_or_default(),
                    command: body["command"]["type"].as_str().unwrap_or("unreadable").to_owned(),
                    command_id: body["id"].as_str().unwrap_or_default().to_owned(),
                    group: attr(MessageSystemAttributeName::MessageGroupId),
                    receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount).parse().unwrap_or(0),
                    body,
                };
                (letter, m.receipt_handle.unwrap_or_default())
            })
            .collect())
    }
}

async fn list(State(ops): State<Arc<Ops>>) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    // FIFO: a receive shows at most one group's next messages; with visibility 0 nothing is hidden,
    // so pages repeat — keep the distinct ones.
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..10 {
        let page = ops.receive(0).await?;
        let before = seen.len();
        for (l, _) in page {
            seen.entry(l.message_id.clone()).or_insert(l);
        }
        if seen.len() == before {
            break;
        }
    }
    Ok(Json(seen.into_values().collect()))
}

async fn redrive(State(ops): State<Arc<Ops>>) -> Result<Json<Redrive>, ApiError> {
    let mut moved = Redrive { moved: 0, commands: Vec::new() };
    loop {
        let page = ops.receive(30).await?;
        if page.is_empty() {
            return Ok(Json(moved));
        }
        for (letter, receipt) in page {
            // A new deduplication id: the original one is still inside FIFO's 5-minute window when a
            // redrive follows quickly, and SQS would drop the copy as a duplicate.
            let dedup = format!("{}-redrive-{}", letter.command_id, letter.message_id);
            let dedup: String = dedup.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(128).collect();
            ops.sqs
                .send_message()
                .queue_url(&ops.work_queue_url)
                .message_body(letter.body.to_string())
                .message_group_id(&letter.group)
                .message_deduplication_id(dedup)
                .send()
                .await
                .map_err(|e| unavailable(aws_sdk_sqs::Error::from(e)))?;
            // Only once it is on the work queue does it leave the dead-letter queue.
            ops.sqs
                .delete_message()
                .queue_url(&ops.dlq_url)
                .receipt_handle(receipt)
                .send()
                .await
                .map_err(|e| unavailable(aws_sdk_sqs::Error::from(e)))?;
            moved.moved += 1;
            moved.commands.push(format!("{} {}", letter.command, letter.command_id));
        }
    }
}

/// `patchbay-local events tail`: a rule of the local stack's own on the event bus (every
/// `Source: patchbay` event) with a queue of its own as its target, as a team would add one, and
/// `GET /local/events/tail`, which takes what reached that queue: the events as the bus published them.
pub struct EventsTail {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl EventsTail {
    /// The queue, the rule and its target (idempotent: the same names again are the same resources).
    pub async fn subscribe(sdk: &aws_types::SdkConfig, bus: &str, stack: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let queue_url =
            sqs.create_queue().queue_name(format!("{stack}-events-tail")).send().await?.queue_url().unwrap_or_default().to_owned();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?;
        let arn = attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)).cloned().unwrap_or_default();
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let rule = format!("{stack}-events-tail");
        events.put_rule().name(&rule).event_bus_name(bus).event_pattern(r#"{"source": ["patchbay"]}"#).send().await?;
        let target = aws_sdk_eventbridge::types::Target::builder().id("tail").arn(arn).build()?;
        events.put_targets().rule(&rule).event_bus_name(bus).targets(target).send().await?;
        Ok(Self { sqs, queue_url })
    }

    /// What reached the queue since the last call (each event once), as EventBridge delivered it
    /// (`{"source", "detail-type", "detail": envelope, …}`).
    pub async fn take(&self) -> Result<Vec<Value>, aws_sdk_sqs::Error> {
        let out = self.sqs.receive_message().queue_url(&self.queue_url).max_number_of_messages(10).wait_time_seconds(0).send().await?;
        let mut events = Vec::new();
        for m in out.messages() {
            if let Some(wrapped) = m.body().and_then(|b| serde_json::from_str::<Value>(b).ok()) {
                events.push(wrapped);
            }
            if let Some(handle) = m.receipt_handle() {
                self.sqs.delete_message().queue_url(&self.queue_url).receipt_handle(handle).send().await?;
            }
        }
        Ok(events)
    }

    pub fn routes(self) -> Router {
        Router::new().route("/local/events/tail", get(tail)).with_state(Arc::new(self))
    }
}

async fn tail(State(t): State<Arc<EventsTail>>) -> Result<Json<Value>, ApiError> {
    let events: Vec<Value> =
        t.take().await.map_err(|e| ApiError::unavailable("the events tail queue", &e))?.into_iter().map(|w| w["detail"].clone()).collect();
    Ok(Json(serde_json::json!({"events": events})))
}
