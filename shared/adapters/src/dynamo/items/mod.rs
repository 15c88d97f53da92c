//! Item shapes and their mapping to domain types (serde_dynamo; no hand-built attribute maps), one
//! file per capability, named as the domain's modules are.

mod calls;
mod dialer;
mod messaging;
mod numbers;
mod profiles;
mod voice_ai;

use patchbay_domain::StoreError;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use calls::*;
pub use dialer::*;
pub use messaging::*;
pub use numbers::*;
pub use profiles::*;
pub use voice_ai::*;

/// An idempotency guard: which resource a key created, and a fingerprint of the request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyItem {
    pub pk: String,
    pub sk: String,
    pub resource_id: String,
    pub fingerprint: String,
    /// TTL attribute (epoch seconds); DynamoDB removes the item some time after.
    pub expires_at: i64,
}

/// An outbox item: the work a state change starts, written in the state change's own transaction
/// and relayed from the table's stream to the work queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxItem {
    pub pk: String,
    pub sk: String,
    /// The command envelope, as JSON (what the relay sends as the message body).
    pub work: String,
    /// TTL attribute (epoch seconds): kept a while to look at, then removed by DynamoDB.
    pub expires_at: i64,
}

/// One event of a user's log (`USER#{user}` / `EVT#{id}`), written in the transaction of the state
/// change it reports and relayed from the stream to the event bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventItem {
    pub pk: String,
    pub sk: String,
    /// The event's type (`message.delivered`), for the log's type filter.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The envelope, as JSON (what the relay publishes and the log answers).
    pub body: String,
    /// TTL attribute (epoch seconds): the log keeps 30 days.
    pub expires_at: i64,
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("messaging item: {what}"))
}

pub(crate) fn time(s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| corrupt("timestamp"))
}
