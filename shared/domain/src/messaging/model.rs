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
    /// Why a `failed` message failed: the carrier's error from its receipt (Telnyx's `errors[0]`,
    /// Twilio's `ErrorCode`) or from the send, or the worker's own (`send_outcome_unknown`,
    /// `retries_exhausted`, `number_released`). `None` for any message that did not fail.
    pub failure: Option<SyncError>,
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
            failure: None,
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
            failure: None,
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

/// What `PATCH /v1/contacts/{e164}` changes: absent is unchanged, `Some(None)` clears. At least one
/// is given; the rest of the contact (its opt-out, when it was created) is never touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPatch {
    pub name: Option<Option<String>>,
    pub external_id: Option<Option<String>>,
}

impl ContactPatch {
    /// Each field as the body gives it: `None` absent, `Some(None)` null. A name is checked and
    /// trimmed as at creation, and null or blank clears it; an external id is 1 to 128 characters, and
    /// null clears it.
    pub fn parse(name: Option<Option<&str>>, external_id: Option<Option<&str>>) -> Result<Self, ValidationError> {
        if name.is_none() && external_id.is_none() {
            return Err(ValidationError::new("body", "empty_patch", "name at least one of: name, external_id"));
        }
        Ok(Self { name: name.map(Contact::parse_name).transpose()?, external_id: external_id.map(Contact::parse_external_id).transpose()? })
    }
}

/// A conversation as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: ConversationId,
    pub our_number: E164,
    pub contact: E164,
    /// The name of the user's contact with that number, as it is now (read with the conversation,
    /// never copied onto it, so a renamed contact shows its new name).
    pub contact_name: Option<String>,
    pub unread: u64,
    pub last_message_at: OffsetDateTime,
    pub last_message_preview: String,
}

/// A search of the user's conversations (`GET /v1/conversations?q=`): a conversation matches when
/// its contact's number or our number contains the digits of the query, or its contact's name
/// contains the query, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSearch {
    /// The query's digits, in order (`"(415) 555"` → `"415555"`); empty when it has none, and then
    /// it matches no number.
    digits: String,
    /// The query, trimmed and lower-cased.
    text: String,
}

impl ConversationSearch {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad = || ValidationError::new("q", "invalid_search", format!("must be 1 to {} characters, not only spaces", Self::MAX_CHARS));
        let text = raw.trim();
        if text.is_empty() || raw.chars().count() > Self::MAX_CHARS {
            return Err(bad());
        }
        Ok(Self { digits: text.chars().filter(char::is_ascii_digit).collect(), text: text.to_lowercase() })
    }

    pub fn matches(&self, c: &Conversation) -> bool {
        let digits = |n: &E164| !self.digits.is_empty() && n.as_str().contains(&self.digits);
        digits(&c.contact) || digits(&c.our_number) || c.contact_name.as_ref().is_some_and(|n| n.to_lowercase().contains(&self.text))
    }
}

/// What became of an inbound webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Stored: the message as written (boxed: the other outcomes carry nothing).
    Stored(Box<Message>),
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

    fn conversation(ours: &str, contact: &str, name: Option<&str>) -> Conversation {
        let (ours, contact) = (E164::parse(ours).unwrap(), E164::parse(contact).unwrap());
        Conversation {
            id: ConversationId::of(&ours, &contact),
            our_number: ours,
            contact,
            contact_name: name.map(str::to_owned),
            unread: 0,
            last_message_at: OffsetDateTime::UNIX_EPOCH,
            last_message_preview: String::new(),
        }
    }

    #[test]
    fn a_search_matches_the_digits_of_either_number_or_the_name_ignoring_case() {
        let ada = conversation("+12125550100", "+14155550123", Some("Ada Lovelace"));
        let unnamed = conversation("+12125550100", "+14155550124", None);
        let q = |raw: &str| ConversationSearch::parse(raw).unwrap();
        // The contact's digits, however the query spells them; our number's digits.
        for raw in ["555-0123", "(415) 555 0123", "0123"] {
            assert!(q(raw).matches(&ada), "{raw}");
            assert!(!q(raw).matches(&unnamed), "{raw}");
        }
        assert!(q("+1 415").matches(&ada) && q("+1 415").matches(&unnamed));
        assert!(q("2125550100").matches(&unnamed));
        // The name, ignoring case and the query's surrounding spaces.
        for raw in ["ada", " LOVE ", "Ada Lovelace"] {
            assert!(q(raw).matches(&ada), "{raw}");
            assert!(!q(raw).matches(&unnamed), "{raw}");
        }
        // A query without digits matches no number (not every number), and a wrong name nothing.
        assert!(!q("grace").matches(&ada));
        assert!(!q("x").matches(&unnamed));
        assert!(!q("999").matches(&ada));
    }

    #[test]
    fn a_search_is_1_to_100_characters_not_only_spaces() {
        for bad in ["", "   ", "\t", &"a".repeat(101)] {
            assert_eq!(ConversationSearch::parse(bad).unwrap_err().field, "q", "{bad:?}");
        }
        assert!(ConversationSearch::parse(&"a".repeat(100)).is_ok());
    }

    #[test]
    fn a_contact_patch_changes_something_and_clears_with_null_or_blank() {
        assert_eq!(ContactPatch::parse(None, None).unwrap_err().code, "empty_patch");
        let p = ContactPatch::parse(Some(Some("  Ada King ")), None).unwrap();
        assert_eq!((p.name, p.external_id), (Some(Some("Ada King".to_owned())), None));
        // Null or blank clears the name; null clears the external id, which is never blank.
        for cleared in [None, Some(""), Some("   ")] {
            assert_eq!(ContactPatch::parse(Some(cleared), None).unwrap().name, Some(None), "{cleared:?}");
        }
        assert_eq!(ContactPatch::parse(None, Some(None)).unwrap().external_id, Some(None));
        assert_eq!(ContactPatch::parse(None, Some(Some(""))).unwrap_err().field, "external_id");
        assert_eq!(ContactPatch::parse(None, Some(Some(&"x".repeat(129)))).unwrap_err().field, "external_id");
        // Names are bounded as at creation (counted before trimming).
        assert!(ContactPatch::parse(Some(Some(&"é".repeat(100))), None).is_ok());
        assert_eq!(ContactPatch::parse(Some(Some(&"é".repeat(101))), None).unwrap_err().field, "name");
        assert_eq!(ContactPatch::parse(Some(Some("a\u{7}b")), Some(None)).unwrap_err().field, "name");
    }

    #[test]
    fn statuses_only_move_forward_by_rank() {
        use MessageStatus::*;
        assert!(Queued.rank() < Sending.rank() && Sending.rank() < Sent.rank() && Sent.rank() < Delivered.rank());
        assert_eq!(Delivered.rank(), Failed.rank());
    }
}
