//! The event bus: each committed event to a custom EventBridge bus, `Source: patchbay`,
//! `DetailType`: the event's type, `Detail`: the envelope. Teams add their own rules on the bus; the
//! stack's own rule feeds the webhook dispatcher's queue.

use async_trait::async_trait;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use patchbay_domain::kernel::event::{Event, EventBus, PublishError, MAX_BATCH};

/// Every event's `Source` on the bus (a rule matches `{"source": ["patchbay"]}`).
pub const SOURCE: &str = "patchbay";

#[derive(Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    /// The bus's name or ARN (`EVENT_BUS_NAME`); `None` refuses every publish, saying so.
    bus: Option<String>,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: Option<String>) -> Self {
        Self { client, bus }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        let Some(bus) = &self.bus else {
            return Err(PublishError { first_failed: 0, message: "EVENT_BUS_NAME is not set".into() });
        };
        if events.is_empty() {
            return Ok(());
        }
        let entries = events
            .iter()
            .take(MAX_BATCH)
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(bus)
                    .source(SOURCE)
                    .detail_type(e.event_type.as_str())
                    .detail(e.to_json())
                    .time(DateTime::from_secs(e.timestamp.unix_timestamp()))
                    .build()
            })
            .collect::<Vec<_>>();
        let out =
            self.client.put_events().set_entries(Some(entries)).send().await.map_err(|e| PublishError {
                first_failed: 0,
                message: format!("{}", aws_sdk_eventbridge::error::DisplayErrorContext(e)),
            })?;
        if out.failed_entry_count() == 0 {
            return Ok(());
        }
        // Entries answer in the request's order; the first with an error code was not published.
        let (first_failed, why) = out
            .entries()
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.error_code().map(|code| (i, format!("{code}: {}", r.error_message().unwrap_or_default()))))
            .unwrap_or((0, "some entries failed".into()));
        Err(PublishError { first_failed, message: why })
    }
}
