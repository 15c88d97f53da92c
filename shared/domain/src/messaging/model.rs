//! Messages and conversations: a conversation is one of the user's numbers talking with one contact.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::kernel::error::ValidationError;
use crate::kernel::ids::{ConversationId, UserId};
use crate::kernel::phone::E164;
use crate::kernel::provider::CarrierName;
use crate::kernel::sync::SyncError;
use crate::messaging::sms::{segments, Encoding};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Where a message is. Outbound moves only forward: queued → sending → sent → delivered | failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    Received,
}

impl MessageStatus {
    /// The order statuses may move in; a receipt with a lower rank than the stored one changes nothing.
    pub fn rank(self) -> u8 {
        match self {
            Self::Queued => 1,
            Self::Sending => 2,
            Self::Sent => 3,
            Self::Delivered | Self::Failed => 4,
            Self::Received => 4,
        }
    }
}

/// A text message stored in a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Uuid,
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub from: E164,
    pub to: E164,
    pub text: String,
    pub segments: u32,
    pub encoding: Encoding,
    pub status: MessageStatus,
    pub carrier: CarrierName,
    pub carrier_message_id: Option<String>,
    pub created_at: OffsetDateTime,
}

/// An inbound SMS as a carrier's verified webhook reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    /// The carrier's id of this delivery attempt's event (Telnyx `data.id`, Twilio `MessageSid`):
    /// the same event retried carries the same id.
    pub event_id: String,
    pub carrier: CarrierName,
    pub carrier_message_id: String,
    pub from: E164,
    pub to: E164,
    pub text: String,
}

impl InboundSms {
    /// The message this SMS becomes in its owner's conversation.
    pub fn into_message(&self, owner: &UserId, now: OffsetDateTime) -> Message {
        let seg = segments(&self.text);
        Message {
            id: Uuid::now_v7(),
            user_id: owner.clone(),
            conversation_id: ConversationId::of(&self.to, &self.from),
            direction: Direction::Inbound,
            from: self.from.clone(),
            to: self.to.clone(),
            text: self.text.clone(),
            segments: seg.count,
            encoding: seg.encoding,
            status: MessageStatus::Received,
            carrier: self.carrier,
            carrier_message_id: Some(self.carrier_message_id.clone()),
            created_at: now,
        }
    }
}

/// A send request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSms {
    pub from: E164,
    pub to: E164,
    pub text: String,
}

impl OutboundSms {
    /// Telnyx and Twilio take up to 1,600 characters (10 segments of GSM-7).
    pub const MAX_CHARS: usize = 1600;

    pub fn new(from: E164, to: E164, text: String) -> Result<Self, ValidationError> {
        if text.is_empty() {
            return Err(ValidationError::new("text", "empty", "must not be empty"));
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new("text", "too_long", format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        if from == to {
            return Err(ValidationError::new("to", "same_as_from", "must differ from `from`"));
        }
        Ok(Self { from, to, text })
    }

    pub fn fingerprint(&self) -> String {
        format!("{}|{}|{}", self.from, self.to, self.text)
    }

    pub fn into_message(&self, user: &UserId, carrier: CarrierName, now: OffsetDateTime) -> Message {
        let seg = segments(&self.text);
        Message {
            id: Uuid::now_v7(),
            user_id: user.clone(),
            conversation_id: ConversationId::of(&self.from, &self.to),
            direction: Direction::Outbound,
            from: self.from.clone(),
            to: self.to.clone(),
            text: self.text.clone(),
            segments: seg.count,
            encoding: seg.encoding,
            status: MessageStatus::Queued,
            carrier,
            carrier_message_id: None,
            created_at: now,
        }
    }
}

/// A delivery receipt, as a verified webhook reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Once-only key of this receipt (Telnyx event id; Twilio `MessageSid:MessageStatus`).
    pub event_id: String,
    pub carrier: CarrierName,
    pub carrier_message_id: String,
    pub status: MessageStatus,
    /// The carrier's reason when `status` is `failed`.
    pub failure: Option<SyncError>,
}

/// What a receipt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    Applied,
    /// Late or duplicate: the stored status is already as far or further.
    Ignored,
    /// No message has this carrier id (yet): the carrier should retry.
    Unknown,
}

/// A contact of a user (created by a send, an inbound message, or `POST /v1/contacts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub phone_number: E164,
    pub name: Option<String>,
    pub external_id: Option<String>,
    /// STOP received and no START since: sends to them are refused.
    pub opted_out: bool,
    pub created_at: OffsetDateTime,
}

impl Contact {
    pub fn parse_name(raw: Option<&str>) -> Result<Option<String>, ValidationError> {
        if raw.is_some_and(|n| n.chars().count() > 100) {
            return Err(ValidationError::new("name", "invalid_name", "must be at most 100 characters, no control characters"));
        }
        match raw.map(str::trim) {
            None | Some("") => Ok(None),
            Some(n) if n.chars().any(char::is_control) => {
                Err(ValidationError::new("name", "invalid_name", "must be at most 100 characters, no control characters"))
            }
            Some(n) => Ok(Some(n.to_owned())),
        }
    }
    pub fn parse_external_id(raw: Option<&str>) -> Result<Option<String>, ValidationError> {
        match raw {
            None => Ok(None),
            Some(id) if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) => {
                Err(ValidationError::new("external_id", "invalid_external_id", "must be 1 to 128 characters, no control characters"))
            }
            Some(id) => Ok(Some(id.to_owned())),
        }
    }
}

/// A conversation as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub our_number: E164,
    pub contact: E164,
    pub unread: u64,
    pub last_message_at: OffsetDateTime,
    pub last_message_preview: String,
}

/// What became of an inbound webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Stored(Message),
    /// The same event again: acknowledged, nothing changed.
    Duplicate,
    /// Nobody owns the number it was sent to: acknowledged and dropped.
    NoOwner,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_round_trip_and_refuse_anything_else() {
        let ours = E164::parse("+12125550100").unwrap();
        let them = E164::parse("+14155550123").unwrap();
        let id = ConversationId::of(&ours, &them);
        assert_eq!(id.as_str(), "c12125550100-14155550123");
        assert_eq!(ConversationId::parse(id.as_str()).unwrap(), id);
        for bad in ["", "c", "c1-2", "x12125550100-14155550123", "c12125550100_14155550123", "c12125550100-1415555012x"] {
            assert!(ConversationId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_only_move_forward_by_rank() {
        use MessageStatus::*;
        assert!(Queued.rank() < Sending.rank() && Sending.rank() < Sent.rank() && Sent.rank() < Delivered.rank());
        assert_eq!(Delivered.rank(), Failed.rank());
    }
}
