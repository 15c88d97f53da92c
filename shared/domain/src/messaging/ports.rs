//! What messaging needs from outside: the store's inbox, conversations, outbox and send ledger.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::kernel::error::StoreError;
use crate::kernel::ids::{ConversationId, IdempotencyKey, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;
use crate::kernel::provider::Created;
use crate::kernel::sync::SyncError;
use crate::messaging::model::{Contact, ContactPatch, Conversation, Inbound, InboundSms, Message, OutboundSms, Receipt, ReceiptOutcome};
use crate::numbers::model::PhoneNumber;

/// What the webhook receiver writes. Every webhook effect is one transaction that also writes the
/// event's guard, so a retried webhook changes nothing.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Who owns `e164` (one GetItem on the number's owner guard).
    async fn number_owner(&self, e164: &E164) -> Result<Option<UserId>, StoreError>;

    /// Store an inbound SMS in its owner's conversation: the event guard, the message, the
    /// conversation (created if new, unread + 1) and the contact (created if new), in one transaction.
    async fn record_inbound(&self, owner: &UserId, sms: &InboundSms, now: OffsetDateTime) -> Result<Inbound, StoreError>;

    /// A delivery receipt: the event guard and the status (only forward, by rank) in one transaction.
    async fn apply_receipt(&self, receipt: &Receipt, now: OffsetDateTime) -> Result<ReceiptOutcome, StoreError>;
}

/// Conversations and contacts, as their owner reads and keeps them.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// The user's conversations, newest activity first, each with its contact's name as the
    /// contact is now (`None` when the user has no contact, or an unnamed one, with that number).
    async fn list_conversations(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Conversation>, StoreError>;

    /// A conversation's messages, newest first (both directions).
    async fn list_messages(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        after: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Message>, StoreError>;

    /// Unread back to zero; answers the conversation with its contact's name.
    async fn mark_read(&self, user: &UserId, conversation: &ConversationId) -> Result<Conversation, StoreError>;

    /// Create a contact (`attribute_not_exists`); `Conflict(AlreadyExists)` if the user has it.
    async fn create_contact(&self, user: &UserId, contact: &Contact) -> Result<Contact, StoreError>;

    /// The user's contacts in E.164 order.
    async fn list_contacts(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Contact>, StoreError>;

    /// One of the user's contacts (one GetItem); `NotFound` if the user has none with that number.
    async fn get_contact(&self, user: &UserId, phone_number: &E164) -> Result<Contact, StoreError>;

    /// Change a contact's name and external id as the patch says (one UpdateItem conditioned on
    /// `attribute_exists`), nothing else of it; answers the contact as changed, `NotFound` if the
    /// user has none with that number.
    async fn update_contact(&self, user: &UserId, phone_number: &E164, patch: &ContactPatch) -> Result<Contact, StoreError>;
}

/// The send API's one write.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Queue an outbound message in one transaction: condition checks on the sending number's record
    /// (the caller's, active, on a profile) and on the user's active-profile pointer (naming that
    /// profile), the contact's upsert (not opted out), the message, its conversation, the day's `sent`
    /// counter, its send (`CommandEnvelope::send_sms`, an outbox item), and with a key the key's guard.
    /// A replay with the same key answers the first message and writes nothing.
    async fn queue_outbound(
        &self,
        sms: &OutboundSms,
        sender: &PhoneNumber,
        message: &Message,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<Message>, StoreError>;
}

/// What a send's claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Claimed from `queued`: nobody asked the carrier yet.
    Fresh(Message),
    /// Taken over from a claim whose lease ran out: the carrier may have it already.
    Stale(Message),
    /// Claimed by a delivery whose lease still runs: retry later (its holder may have died).
    Held,
    /// Nothing left to send (sent, final, or gone).
    Done,
}

/// The worker's send: claim a queued message once and record what the carrier said.
#[async_trait]
pub trait SendLedger: Send + Sync {
    async fn get_message(&self, user: &UserId, conversation: &ConversationId, message_id: &str) -> Result<Message, StoreError>;

    /// Worker: `queued` → `sending` with a lease (when it was claimed), so a redelivered command
    /// never sends twice; or a `sending` message with no carrier id whose lease ran out (its holder
    /// died, or lost its `record_sent`) taken over as `Claim::Stale`.
    async fn claim_send(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        message_id: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Claim, StoreError>;

    /// Worker: a transient carrier failure: `sending` → `queued` (the lease given back), to be retried.
    async fn release_send(&self, message: &Message) -> Result<(), StoreError>;

    /// Worker: the carrier took it: `sent`, its id, and the index receipts are routed by, in one transaction.
    /// A redelivered write after a lost answer is harmless; a message already past `sent` keeps its
    /// status and still gets its route.
    async fn record_sent(&self, message: &Message, carrier_message_id: &str, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Worker: the send failed for good (`failed`, with why), unless the message is already final.
    async fn record_send_failed(&self, message: &Message, error: &SyncError, now: OffsetDateTime) -> Result<(), StoreError>;
}
