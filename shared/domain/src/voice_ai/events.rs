//! The events of assistants: the saga finished (`assistant.active`) or failed for good
//! (`assistant.failed`), each written in the transaction that records it.

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::kernel::event::{Event, EventType};
use crate::kernel::sync::SyncError;
use crate::voice_ai::model::Assistant;

fn base(a: &Assistant) -> Value {
    json!({
        "assistant_id": a.id.to_string(),
        "name": a.name.as_str(),
        "phone_number": a.selected_number.as_ref().map(|n| n.as_str()),
        "vapi_assistant_id": a.vapi_assistant_id,
    })
}

/// `assistant.active`: created at Vapi, its number (if it picked one) bought and connected.
pub fn active(a: &Assistant, now: OffsetDateTime) -> Event {
    Event::new(EventType::AssistantActive, &a.user_id, a.id.to_string(), a.version, base(a), now)
}

/// `assistant.failed`: Vapi or the carrier refused a step, or the saga was given up.
pub fn failed(a: &Assistant, error: &SyncError, now: OffsetDateTime) -> Event {
    let mut data = base(a);
    data["failure"] = json!({"code": error.code, "reason": error.message});
    Event::new(EventType::AssistantFailed, &a.user_id, a.id.to_string(), a.version, data, now)
}
