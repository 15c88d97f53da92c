//! The events of messaging: each built where its state change is written, and written with it.
//!
//! A message's `resource.version` is its status rank (queued 1, sent 3, delivered/failed/received 4):
//! statuses only move forward, so a receiver keeps the event with the highest.

use serde_json::json;
use time::OffsetDateTime;

use crate::kernel::event::{Event, EventType};
use crate::kernel::ids::{ConversationId, ProfileId, UserId};
use crate::kernel::phone::E164;
use crate::kernel::provider::CarrierName;
use crate::kernel::sync::SyncError;
use crate::messaging::model::{Message, MessageStatus};
use crate::messaging::sms::Keyword;

fn rank(status: MessageStatus) -> u64 {
    u64::from(status.rank())
}

/// `message.received`: an inbound text stored in its owner's conversation.
pub fn received(m: &Message, now: OffsetDateTime) -> Event {
    let data = json!({
        "message_id": m.id.to_string(),
        "conversation_id": m.conversation_id.as_str(),
        "from": m.from.as_str(),
        "to": m.to.as_str(),
        "text": m.text,
        "segments": m.segments,
        "encoding": m.encoding,
        "carrier": m.carrier,
    });
    Event::new(EventType::MessageReceived, &m.user_id, m.id.to_string(), rank(m.status), data, now)
}

/// `message.queued`: a send accepted (answered 202), on the active profile `profile`.
pub fn queued(m: &Message, profile: ProfileId, now: OffsetDateTime) -> Event {
    let data = json!({
        "message_id": m.id.to_string(),
        "conversation_id": m.conversation_id.as_str(),
        "from": m.from.as_str(),
        "to": m.to.as_str(),
        "segments": m.segments,
        "encoding": m.encoding,
        "messaging_profile_id": profile.to_string(),
        "carrier": m.carrier,
    });
    Event::new(EventType::MessageQueued, &m.user_id, m.id.to_string(), rank(MessageStatus::Queued), data, now)
}

/// An outbound message moved forward, by a receipt or the worker.
pub struct StatusMove<'a> {
    pub user: &'a UserId,
    pub conversation: &'a ConversationId,
    pub message_id: &'a str,
    pub status: MessageStatus,
    pub carrier: Option<CarrierName>,
    pub carrier_message_id: Option<&'a str>,
    pub failure: Option<&'a SyncError>,
}

/// `message.sent`, `message.delivered` or `message.failed` for a move (`None` for a status that is
/// no event).
pub fn moved(m: StatusMove<'_>, now: OffsetDateTime) -> Option<Event> {
    let event_type = match m.status {
        MessageStatus::Sent => EventType::MessageSent,
        MessageStatus::Delivered => EventType::MessageDelivered,
        MessageStatus::Failed => EventType::MessageFailed,
        MessageStatus::Queued | MessageStatus::Sending | MessageStatus::Received => return None,
    };
    let (ours, contact) = m.conversation.numbers().unzip();
    let data = json!({
        "message_id": m.message_id,
        "conversation_id": m.conversation.as_str(),
        "from": ours.as_ref().map(E164::as_str),
        "to": contact.as_ref().map(E164::as_str),
        "status": m.status,
        "carrier": m.carrier,
        "carrier_message_id": m.carrier_message_id,
        "failure": m.failure.map(|f| json!({"code": f.code, "reason": f.message})),
        "status_at": crate::kernel::event::rfc3339(now),
    });
    Some(Event::new(event_type, m.user, m.message_id, rank(m.status), data, now))
}

/// `contact.opted_out` / `contact.opted_in`: a STOP- or START-like text changed whether the contact
/// may be texted (`None` for a keyword that changes nothing). `keyword` is the text as sent.
pub fn opt_change(user: &UserId, contact: &E164, number: &E164, keyword: Keyword, text: &str, now: OffsetDateTime) -> Option<Event> {
    let event_type = match keyword {
        Keyword::OptOut => EventType::ContactOptedOut,
        Keyword::OptIn => EventType::ContactOptedIn,
        Keyword::Help => return None,
    };
    let data = json!({
        "contact": contact.as_str(),
        "phone_number": number.as_str(),
        "keyword": text.trim().to_uppercase(),
    });
    // A contact has no version of its own; the time of the change orders its events.
    let version = (now.unix_timestamp_nanos() / 1_000_000) as u64;
    Some(Event::new(event_type, user, contact.as_str(), version, data, now))
}
