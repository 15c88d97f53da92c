//! Events: what a product team is told when something happens. One envelope everywhere (the webhook
//! body, the EventBridge `Detail`, an item of `GET /v1/events`):
//!
//! ```json
//! {"id": "evt_…", "type": "message.delivered", "version": 1, "timestamp": "…", "user_id": "…",
//!  "resource": {"type": "message", "id": "…", "version": 4}, "data": {…}}
//! ```
//!
//! - `id`: `evt_` and a UUIDv7 in hex: time-ordered, no `.` (Standard Webhooks' `webhook-id`), the
//!   same across retries and replays.
//! - `version`: the schema version of this `type` (additive fields do not bump it).
//! - `resource.version`: monotonic per resource, so a receiver can drop an event older than one it
//!   already has (no order is promised).
//!
//! An event is written in the transaction of the state change it reports (the store's `EVT#` item),
//! so a committed change has exactly one and a change that did not happen has none. Each capability
//! builds its own events (`messaging::events`, …); this is only the vocabulary.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::kernel::error::ValidationError;
use crate::kernel::ids::UserId;

/// Days an event is kept (the log, replays), then removed by the table's TTL.
pub const EVENT_RETENTION_DAYS: i64 = 30;

macro_rules! catalogue {
    ($($variant:ident => $name:literal, $resource:literal;)*) => {
        /// The catalogue: every type an event can have.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $($variant,)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The type's name, as receivers see it (`resource.action`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            /// The kind of resource this type reports on (`resource.type`).
            pub fn resource(self) -> &'static str {
                match self {
                    $(EventType::$variant => $resource,)*
                }
            }
        }
    };
}

catalogue! {
    MessageReceived => "message.received", "message";
    MessageQueued => "message.queued", "message";
    MessageSent => "message.sent", "message";
    MessageDelivered => "message.delivered", "message";
    MessageFailed => "message.failed", "message";
    ContactOptedOut => "contact.opted_out", "contact";
    ContactOptedIn => "contact.opted_in", "contact";
    CallEnded => "call.ended", "call";
    CallUpdated => "call.updated", "call";
    PhoneNumberActive => "phone_number.active", "phone_number";
    PhoneNumberPurchaseFailed => "phone_number.purchase_failed", "phone_number";
    PhoneNumberReleased => "phone_number.released", "phone_number";
    AssistantActive => "assistant.active", "assistant";
    AssistantFailed => "assistant.failed", "assistant";
    WebhookEndpointTest => "webhook_endpoint.test", "webhook_endpoint";
}

impl EventType {
    /// The schema version this build emits for the type.
    pub fn schema_version(self) -> u32 {
        1
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        Self::ALL.iter().copied().find(|t| t.as_str() == raw).ok_or_else(|| {
            ValidationError::new(field, "unknown_event_type", format!("`{raw}` is not an event type (see the catalogue in docs/events.md)"))
        })
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse("type", &raw).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// An event's id: `evt_` and 32 lowercase hex digits of a UUIDv7 (time-ordered as text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    pub fn generate() -> Self {
        Self(format!("evt_{}", Uuid::now_v7().simple()))
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let hex = raw.strip_prefix("evt_").unwrap_or_default();
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(ValidationError::new(field, "invalid_event_id", "must be an event id (evt_ and 32 hex digits)"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("id", &s)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        id.0
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResource {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// Monotonic per resource: a receiver drops an event whose version is below one it has seen.
    pub version: u64,
}

/// The envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub user_id: String,
    pub resource: EventResource,
    pub data: Value,
}

impl Event {
    /// A new event of `event_type` about the resource `id` at `version`, with a fresh id.
    pub fn new(event_type: EventType, user: &UserId, id: impl Into<String>, version: u64, data: Value, now: OffsetDateTime) -> Self {
        Self {
            id: EventId::generate(),
            event_type,
            version: event_type.schema_version(),
            timestamp: now,
            user_id: user.as_str().to_owned(),
            resource: EventResource { kind: event_type.resource().to_owned(), id: id.into(), version },
            data: strip_nulls(data),
        }
    }

    /// The envelope as the JSON every consumer receives.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// When the table forgets it (epoch seconds).
    pub fn expires_at(&self) -> i64 {
        self.timestamp.unix_timestamp() + EVENT_RETENTION_DAYS * 24 * 3600
    }
}

/// Why the bus did not take every event of a batch.
#[derive(Debug, thiserror::Error)]
#[error("event bus refused event {first_failed} of the batch: {message}")]
pub struct PublishError {
    /// The index of the first event not published (the ones before it were).
    pub first_failed: usize,
    pub message: String,
}

/// The event bus (EventBridge): what the relay publishes each committed event to.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync {
    /// Publish up to `MAX_BATCH` events, in order.
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError>;
}

/// The most events one publish takes (EventBridge's `PutEvents` limit).
pub const MAX_BATCH: usize = 10;

/// A time as events carry it (RFC 3339, UTC).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Absent facts are left out of `data`, never sent as `null`.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_are_time_ordered_and_round_trip() {
        let a = EventId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = EventId::generate();
        assert!(a < b, "{a} then {b}");
        assert!(!a.as_str().contains('.'), "a webhook-id has no dot");
        assert_eq!(EventId::parse("after", a.as_str()).unwrap(), a);
        for bad in ["", "evt_", "evt_XYZ", "msg_0190f1e2a3b4c5d6e7f8091a2b3c4d5e", "evt_0190F1E2A3B4C5D6E7F8091A2B3C4D5E"] {
            assert_eq!(EventId::parse("after", bad).unwrap_err().field, "after", "{bad}");
        }
    }

    #[test]
    fn the_envelope_has_the_documented_shape() {
        let user = UserId::parse("alice").unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let e = Event::new(EventType::MessageDelivered, &user, "m-1", 4, json!({"status": "delivered", "failure": null}), now);
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["type"], "message.delivered");
        assert_eq!(v["version"], 1);
        assert_eq!(v["user_id"], "alice");
        assert_eq!(v["resource"], json!({"type": "message", "id": "m-1", "version": 4}));
        assert_eq!(v["data"], json!({"status": "delivered"}), "absent facts are left out");
        assert_eq!(v["timestamp"], "2027-01-15T08:00:00Z");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.expires_at(), 1_800_000_000 + 30 * 86_400);
    }

    #[test]
    fn every_type_parses_back_and_names_its_resource() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse("type", t.as_str()).unwrap(), *t);
            assert!(t.as_str().starts_with(t.resource()), "{t} reports on a {}", t.resource());
        }
        assert_eq!(EventType::ALL.len(), 15);
        assert_eq!(EventType::parse("event_types", "message.exploded").unwrap_err().field, "event_types");
    }
}
