//! The events of phone numbers: bought (`phone_number.active`), a purchase refused or given up
//! (`phone_number.purchase_failed`), released (`phone_number.released`). Each is written by the store
//! in the transaction that makes the change, whose version condition lets it through once.

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::kernel::event::{Event, EventType};
use crate::kernel::sync::SyncError;
use crate::numbers::model::PhoneNumber;

fn base(n: &PhoneNumber) -> Value {
    json!({
        "phone_number": n.e164.as_str(),
        "carrier": n.carrier,
        "assistant_id": n.assistant_id.map(|a| a.to_string()),
    })
}

fn with(mut v: Value, extra: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
        a.extend(b);
    }
    v
}

/// `phone_number.active`: the carrier sold it (`n` as it was, pending).
pub fn active(n: &PhoneNumber, carrier_number_id: &str, now: OffsetDateTime) -> Event {
    let data = with(base(n), json!({"carrier_number_id": carrier_number_id}));
    Event::new(EventType::PhoneNumberActive, &n.user_id, n.e164.as_str(), n.version, data, now)
}

/// `phone_number.purchase_failed`: the carrier refused it, or its purchase was given up.
pub fn purchase_failed(n: &PhoneNumber, error: &SyncError, now: OffsetDateTime) -> Event {
    let data = with(base(n), json!({"failure": {"code": error.code, "reason": error.message}}));
    Event::new(EventType::PhoneNumberPurchaseFailed, &n.user_id, n.e164.as_str(), n.version, data, now)
}

/// `phone_number.released`: it left the account and the user's list.
pub fn released(n: &PhoneNumber, now: OffsetDateTime) -> Event {
    Event::new(EventType::PhoneNumberReleased, &n.user_id, n.e164.as_str(), n.version, base(n), now)
}
