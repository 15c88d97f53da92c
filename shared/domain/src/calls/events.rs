//! The events of calls: `call.ended` when a call's events first say it ended, `call.updated` when
//! an ended call learns more (a late answer adds seconds, Vapi's report adds its cost and summary).
//! Built by the store from the call before and after an event is folded in, and written in the same
//! transaction, so a duplicate or a lost race writes none.

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::calls::model::{dollars, Call};
use crate::kernel::event::{rfc3339, Event, EventType};

/// What a receiver is told about a call.
fn data(c: &Call) -> Value {
    let u = &c.update;
    json!({
        "call_id": c.id,
        "source": c.source,
        "direction": u.direction,
        "from": u.from,
        "to": u.to,
        "phone_number": u.phone_number.as_ref().map(|n| n.as_str()),
        "assistant_id": u.assistant_id.map(|a| a.to_string()),
        "connection_id": u.connection_id.map(|id| id.to_string()),
        "started_at": rfc3339(c.started()),
        "answered_at": u.answered_at.map(rfc3339),
        "ended_at": u.ended_at.map(rfc3339),
        "duration_seconds": c.seconds(),
        "cost": u.cost_micros.map(dollars),
        "ended_reason": u.ended_reason,
        "summary": u.summary,
        "recording_url": u.recording_url,
    })
}

/// The event folding one event into `before` (giving `after`) reports, if any.
pub fn changed(before: &Call, after: &Call, now: OffsetDateTime) -> Option<Event> {
    let event_type = match (before.update.ends, after.update.ends) {
        (false, true) => EventType::CallEnded,
        (true, true) if data(before) != data(after) => EventType::CallUpdated,
        _ => return None,
    };
    Some(Event::new(event_type, &after.user_id, after.id.clone(), after.version, data(after), now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::model::{CallSource, CallUpdate};
    use crate::kernel::ids::UserId;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn a_call_ends_once_and_is_updated_only_when_something_changes() {
        let user = UserId::parse("alice").unwrap();
        let start = Call::new(user, "sip-1".into(), CallSource::Sip, at(0));
        let answered = Call { version: 1, ..start.merge(&CallUpdate { answered_at: Some(at(5)), ..Default::default() }) };
        assert_eq!(changed(&start, &answered, at(5)), None, "not ended yet");
        let hangup = CallUpdate { ended_at: Some(at(65)), ends: true, ..Default::default() };
        let ended = Call { version: 2, ..answered.merge(&hangup) };
        let e = changed(&answered, &ended, at(65)).unwrap();
        assert_eq!((e.event_type, e.resource.version, e.data["duration_seconds"].as_u64()), (EventType::CallEnded, 2, Some(60)));
        // The hangup again (another event id of the same fact): nothing new.
        let again = Call { version: 3, ..ended.merge(&hangup) };
        assert_eq!(changed(&ended, &again, at(66)), None);
        // A report adds a cost: the ended call is updated.
        let report = Call { version: 4, ..again.merge(&CallUpdate { cost_micros: Some(120_000), ends: true, ..Default::default() }) };
        let e = changed(&again, &report, at(70)).unwrap();
        assert_eq!((e.event_type, e.data["cost"].as_str()), (EventType::CallUpdated, Some("0.12")));
    }
}
