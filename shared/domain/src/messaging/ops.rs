//! Messaging's API side: queueing a send (the send-sms function), and conversations and contacts as
//! their owner reads and keeps them (the conversations function). Only the caller's conversations
//! exist for them.

use time::OffsetDateTime;

use crate::kernel::error::{Conflict, StoreError, ValidationError};
use crate::kernel::ids::{ConversationId, IdempotencyKey, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;
use crate::kernel::provider::Created;
use crate::messaging::model::{Contact, Conversation, Message, OutboundSms};
use crate::messaging::ports::{ConversationStore, Outbox};
use crate::numbers::ports::NumberReader;

/// Queue a send: the checks, the message and its send command (an outbox item) in one transaction.
/// A replay with the same key answers the first message.
pub async fn queue_send(
    store: &dyn Outbox,
    numbers: &dyn NumberReader,
    user: &UserId,
    sms: OutboundSms,
    key: Option<&IdempotencyKey>,
    now: OffsetDateTime,
) -> Result<Created<Message>, SendError> {
    let number = numbers.get_number(user, &sms.from).await.map_err(|e| match e {
        StoreError::NotFound => SendError::NotOwned,
        other => SendError::Store(other),
    })?;
    let message = sms.into_message(user, number.carrier, now);
    let fingerprint = sms.fingerprint();
    store.queue_outbound(&sms, &number, &message, key.map(|k| (k, fingerprint.as_str()))).await.map_err(|e| match e {
        StoreError::NotFound => SendError::NotOwned,
        other => SendError::Store(other),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the sending number is not yours")]
    NotOwned,
    #[error(transparent)]
    Store(StoreError),
}

/// Why a conversations request did not answer what was asked. Each variant decides one status.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// No such conversation of this user (another user's does not exist for them).
    #[error("conversation not found")]
    NotFound,
    /// A cursor that no page of this list ever answered.
    #[error("{0}")]
    InvalidCursor(ValidationError),
    /// `POST /v1/contacts` for a number the user already has.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    #[error(transparent)]
    Store(StoreError),
}

impl ConversationError {
    fn invalid_cursor() -> Self {
        ConversationError::InvalidCursor(ValidationError::new(
            "cursor",
            "invalid_cursor",
            "must be a next_cursor value from a previous page",
        ))
    }
}

fn store(e: StoreError) -> ConversationError {
    match e {
        StoreError::Conflict(c) => ConversationError::Conflict(c),
        other => ConversationError::Store(other),
    }
}

/// A cursor's position, checked to be what the list pages by.
fn position<T>(cursor: Option<&Cursor>, parse: impl Fn(&str) -> Option<T>) -> Result<(), ConversationError> {
    match cursor {
        Some(c) if c.position().as_deref().and_then(&parse).is_none() => Err(ConversationError::invalid_cursor()),
        _ => Ok(()),
    }
}

pub struct Conversations<'a> {
    pub store: &'a dyn ConversationStore,
}

impl Conversations<'_> {
    /// The user's conversations, newest activity first.
    pub async fn list(&self, user: &UserId, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<Conversation>, ConversationError> {
        position(cursor, |p| ConversationId::parse(p).ok())?;
        self.store.list_conversations(user, cursor, limit).await.map_err(|e| match e {
            // The cursor names a conversation the user does not have.
            StoreError::NotFound => ConversationError::invalid_cursor(),
            other => store(other),
        })
    }

    /// A conversation's messages, newest first (both directions).
    pub async fn messages(
        &self,
        user: &UserId,
        id: &ConversationId,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Message>, ConversationError> {
        position(cursor, |p| p.parse::<uuid::Uuid>().ok())?;
        self.store.list_messages(user, id, cursor, limit).await.map_err(|e| match e {
            StoreError::NotFound => ConversationError::NotFound,
            other => store(other),
        })
    }

    /// Unread back to zero.
    pub async fn mark_read(&self, user: &UserId, id: &ConversationId) -> Result<Conversation, ConversationError> {
        self.store.mark_read(user, id).await.map_err(|e| match e {
            StoreError::NotFound => ConversationError::NotFound,
            other => store(other),
        })
    }

    /// A new contact; `Conflict(AlreadyExists)` if the user has one with that number.
    pub async fn create_contact(
        &self,
        user: &UserId,
        phone_number: E164,
        name: Option<String>,
        external_id: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Contact, ConversationError> {
        let contact = Contact { phone_number, name, external_id, opted_out: false, created_at: now };
        self.store.create_contact(user, &contact).await.map_err(store)
    }

    /// The user's contacts in E.164 order.
    pub async fn contacts(&self, user: &UserId, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<Contact>, ConversationError> {
        position(cursor, |p| E164::parse(p).ok())?;
        self.store.list_contacts(user, cursor, limit).await.map_err(store)
    }
}
