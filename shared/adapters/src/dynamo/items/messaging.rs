//! Messaging items: messages, the carrier-message route receipts find them by, conversations, contacts.

use patchbay_domain::messaging::{Contact, Conversation, Direction, Encoding, Message, MessageStatus};
use patchbay_domain::{CarrierName, ConversationId, StoreError, SyncError, UserId, E164};
use serde::{Deserialize, Serialize};

use super::{corrupt, time};
use crate::dynamo::keys::Key;
use crate::wire::rfc3339;

// Messaging: messages, their carrier routes, conversations and contacts.

#[derive(Debug, Serialize, Deserialize)]
pub struct MessageItem {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub text: String,
    pub segments: u32,
    pub encoding: Encoding,
    pub status: MessageStatus,
    pub carrier: CarrierName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_message_id: Option<String>,
    /// `status`'s rank: receipts are applied only if they move it forward.
    #[serde(default)]
    pub status_rank: u8,
    /// Why it failed: set with `failed` by a receipt (`apply_receipt_tx`) or the worker
    /// (`record_send_failed`), never written by `From<&Message>` (a new message has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<SyncError>,
    pub user_id: String,
    pub created_at: String,
}

impl From<&Message> for MessageItem {
    fn from(m: &Message) -> Self {
        let key = Key::message(&m.user_id, &m.conversation_id, &m.id.to_string());
        Self {
            pk: key.pk,
            sk: key.sk,
            id: m.id.to_string(),
            conversation_id: m.conversation_id.clone(),
            direction: m.direction,
            from: m.from.to_string(),
            to: m.to.to_string(),
            text: m.text.clone(),
            segments: m.segments,
            encoding: m.encoding,
            status: m.status,
            carrier: m.carrier,
            carrier_message_id: m.carrier_message_id.clone(),
            status_rank: m.status.rank(),
            failure: m.failure.clone(),
            user_id: m.user_id.to_string(),
            created_at: rfc3339(m.created_at),
        }
    }
}

/// Routes a carrier's receipts to the message: `CARRIERMSG#{carrier message id}` / `MSG`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CarrierMessageItem {
    pub pk: String,
    pub sk: String,
    pub user_id: String,
    pub conversation_id: ConversationId,
    pub message_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ConversationItem {
    pub id: ConversationId,
    pub our_number: String,
    pub contact: String,
    #[serde(default)]
    pub unread: u64,
    pub last_message_at: String,
    #[serde(default)]
    pub last_message_preview: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ContactItem {
    pub pk: String,
    pub sk: String,
    pub phone_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default)]
    pub opted_out: bool,
    pub created_at: String,
}

impl TryFrom<ContactItem> for Contact {
    type Error = StoreError;
    fn try_from(i: ContactItem) -> Result<Self, StoreError> {
        Ok(Contact {
            phone_number: E164::stored(&i.phone_number).map_err(|_| corrupt("contact"))?,
            name: i.name,
            external_id: i.external_id,
            opted_out: i.opted_out,
            created_at: time(&i.created_at)?,
        })
    }
}

impl TryFrom<MessageItem> for Message {
    type Error = StoreError;
    fn try_from(i: MessageItem) -> Result<Self, StoreError> {
        Ok(Message {
            id: i.id.parse().map_err(|_| corrupt("message id"))?,
            user_id: UserId::parse(&i.user_id).map_err(|_| corrupt("user_id"))?,
            conversation_id: i.conversation_id,
            direction: i.direction,
            from: E164::stored(&i.from).map_err(|_| corrupt("from"))?,
            to: E164::stored(&i.to).map_err(|_| corrupt("to"))?,
            text: i.text,
            segments: i.segments,
            encoding: i.encoding,
            status: i.status,
            carrier: i.carrier,
            carrier_message_id: i.carrier_message_id,
            // Only a failed message has a reason (a receipt writes one only with `failed`).
            failure: i.failure.filter(|_| i.status == MessageStatus::Failed),
            created_at: time(&i.created_at)?,
        })
    }
}

impl TryFrom<ConversationItem> for Conversation {
    type Error = StoreError;
    fn try_from(i: ConversationItem) -> Result<Self, StoreError> {
        Ok(Conversation {
            id: i.id,
            our_number: E164::stored(&i.our_number).map_err(|_| corrupt("our_number"))?,
            contact: E164::stored(&i.contact).map_err(|_| corrupt("contact"))?,
            // Not on the conversation's item: the store reads it from the contact.
            contact_name: None,
            unread: i.unread,
            last_message_at: time(&i.last_message_at)?,
            last_message_preview: i.last_message_preview,
        })
    }
}
