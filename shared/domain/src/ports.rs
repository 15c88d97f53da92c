//! The ports: narrow traits the domain needs from the outside world. Adapters implement them;
//! handlers and the worker depend only on these.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::calls::{Call, CallSource, CallUpdate, Counters};
use crate::dialer::{
    AssignmentPatch, CarrierConnection, ConnectionId, ConnectionPatch, ConnectionSpec, NumberRole, SipConnection, SipPassword, WebrtcToken,
};
use crate::messaging::{Contact, Conversation, ConversationId, Inbound, InboundSms, Message, OutboundSms, Receipt, ReceiptOutcome};
use crate::voice_ai::{Assistant, AssistantId, AssistantPatch, AssistantSpec, NumberImport};
use crate::{
    Activation, AvailableNumber, CarrierName, CarrierProfileId, CommandEnvelope, Cursor, IdempotencyKey, Limit, MessagingProfile,
    NumberSearch, Page, PhoneNumber, ProfileId, ProfileName, ProfilePatch, StoreError, SyncError, SyncState, UserId,
    WhitelistedDestinations, E164,
};

/// How a create went: a new record, or the record an earlier request with the same key made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created<T> {
    New(T),
    Replayed(T),
}

impl<T> Created<T> {
    pub fn into_inner(self) -> T {
        match self {
            Created::New(t) | Created::Replayed(t) => t,
        }
    }
}

/// Messaging profile persistence, split by who needs it: reads (every profile user), the API's writes
/// and the worker's sync ledger. Every write is one conditional write or one transaction.
#[async_trait]
pub trait ProfileReader: Send + Sync {
    /// The user's profile (a profile being deleted included); `NotFound` for absent or foreign ids.
    async fn get_profile(&self, user: &UserId, id: ProfileId) -> Result<MessagingProfile, StoreError>;

    /// The user's profiles in creation order.
    async fn list_profiles(&self, user: &UserId, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<MessagingProfile>, StoreError>;

    /// The profile the user's pointer names, if any.
    async fn active_profile(&self, user: &UserId) -> Result<Option<ProfileId>, StoreError>;
}

/// The API's profile writes.
#[async_trait]
pub trait ProfileWriter: ProfileReader + Send + Sync {
    /// Put a new profile (`attribute_not_exists`). With a key, the key's guard item is written in the
    /// same transaction; a repeat with the same fingerprint answers `Replayed` with the current record,
    /// a different fingerprint `Conflict(IdempotencyKeyReused)`.
    async fn create_profile(
        &self,
        profile: &MessagingProfile,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<MessagingProfile>, StoreError>;

    /// Apply a rename/settings change, bump the version and mark the profile pending sync.
    /// `Conflict(ProfileDeleting)` once a delete has started.
    async fn update_profile(
        &self,
        user: &UserId,
        id: ProfileId,
        patch: &ProfilePatch,
        now: OffsetDateTime,
    ) -> Result<MessagingProfile, StoreError>;

    /// Start a delete: the profile turns `deleting`, and if it was the active one the user's pointer
    /// is cleared in the same transaction, leaving the user with no active profile.
    async fn mark_deleting(&self, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<MessagingProfile, StoreError>;

    /// Make `id` the user's one active profile and the previous one inactive, in one transaction
    /// guarded by the pointer's version; a lost race is retried from a fresh read a bounded number of
    /// times before `Conflict(ActivationRace)`.
    async fn activate_profile(&self, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<Activation, StoreError>;
}

/// The worker's profile writes: what the carrier now holds.
#[async_trait]
pub trait ProfileSyncLedger: ProfileReader + Send + Sync {
    /// Worker: the carrier now matches `version`; record its id. `Conflict(Stale)` if the version moved.
    async fn record_synced(
        &self,
        user: &UserId,
        id: ProfileId,
        version: u64,
        carrier_id: &CarrierProfileId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Worker: keep the carrier id of a copy that was created while the record moved on, so a later
    /// sync updates or deletes it instead of creating a second one.
    async fn record_carrier_id(&self, user: &UserId, id: ProfileId, carrier_id: &CarrierProfileId) -> Result<(), StoreError>;

    /// Worker: the carrier refused `version` for good. The profile takes `state` (`Failed`, or stays
    /// `Deleting` so a repeated DELETE tries again) with the reason. `Conflict(Stale)` if the version moved.
    async fn record_sync_failed(
        &self,
        user: &UserId,
        id: ProfileId,
        version: u64,
        state: SyncState,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Worker: remove a `deleting` profile once the carrier's copy is gone. `Conflict(Stale)` if the version moved.
    async fn purge_profile(&self, user: &UserId, id: ProfileId, version: u64) -> Result<(), StoreError>;

    /// Worker, on a command redelivered after its retries ran out (a dead-letter redrive): a profile that failed only because
    /// its retries ran out (`retries_exhausted`) goes back to `pending` with a new version; `false`
    /// when it is in any other state (nothing to retry).
    async fn retry_exhausted(&self, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<bool, StoreError>;
}

/// Why the queue could not take a command.
#[derive(Debug, thiserror::Error)]
#[error("work queue unavailable: {0}")]
pub struct QueueError(#[source] pub Box<dyn std::error::Error + Send + Sync + 'static>);

/// The SQS work queue.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    async fn enqueue(&self, command: &CommandEnvelope) -> Result<(), QueueError>;
}

/// What the carrier is asked to hold for a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierProfileSpec {
    /// Our id, for carriers (the sandbox) that derive theirs from it; not sent to Telnyx.
    pub local_id: ProfileId,
    pub name: ProfileName,
    pub whitelisted_destinations: WhitelistedDestinations,
}

/// The recorded reason of a sync whose transient failures outlasted its deliveries.
pub const RETRIES_EXHAUSTED: &str = "retries_exhausted";

/// A carrier call that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// The carrier refused the request and will refuse it again (a 4xx other than 408/429).
    #[error("carrier refused the request ({status}): {code}: {message}")]
    Permanent { status: u16, code: String, message: String },
    /// Worth retrying after a pause: 408, 429, 5xx, timeouts, connection failures.
    #[error("carrier call failed, retryable: {0}")]
    Transient(String),
    /// The carrier has no such resource.
    #[error("carrier has no such resource")]
    NotFound,
    /// The carrier is not configured (missing credentials).
    #[error("carrier not configured: {0}")]
    NotConfigured(String),
}

impl CarrierError {
    /// What is recorded on a resource when a carrier call ends for good: the carrier's own code
    /// (or `http_{status}` when it sent none) and message. The one mapping every sync uses.
    pub fn failure_reason(&self) -> SyncError {
        let (code, message) = match self {
            CarrierError::Permanent { status, code, message } => {
                (if code.is_empty() { format!("http_{status}") } else { code.clone() }, message.clone())
            }
            CarrierError::NotFound => ("not_found".to_owned(), "the carrier has no such resource".to_owned()),
            CarrierError::NotConfigured(m) => ("carrier_not_configured".to_owned(), m.clone()),
            CarrierError::Transient(m) => (RETRIES_EXHAUSTED.to_owned(), format!("gave up after repeated transient failures; last: {m}")),
        };
        SyncError { code, message }
    }
}

/// The carrier side of messaging profiles (Telnyx `/messaging_profiles`, or the sandbox).
#[async_trait]
pub trait ProfileCarrier: Send + Sync {
    fn name(&self) -> &'static str;
    async fn create_messaging_profile(&self, spec: &CarrierProfileSpec) -> Result<CarrierProfileId, CarrierError>;
    async fn update_messaging_profile(&self, id: &CarrierProfileId, spec: &CarrierProfileSpec) -> Result<(), CarrierError>;
    async fn delete_messaging_profile(&self, id: &CarrierProfileId) -> Result<(), CarrierError>;
    /// Every messaging profile of the account (the reconciler).
    async fn list_messaging_profiles(&self) -> Result<Vec<crate::reconcile::ListedProfile>, CarrierError> {
        Err(CarrierError::NotConfigured(format!("{} cannot list messaging profiles", self.name())))
    }
}

/// Phone number persistence. Ownership is a global guard item per number, written with
/// `attribute_not_exists` in the same transaction as the user's record. Reads here; the API's writes
/// and the worker's sync ledger below.
#[async_trait]
pub trait NumberReader: Send + Sync {
    async fn get_number(&self, user: &UserId, e164: &E164) -> Result<PhoneNumber, StoreError>;

    /// The user's numbers in E.164 order.
    async fn list_numbers(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<PhoneNumber>, StoreError>;

    /// Every number of the user (for a profile page: a user has few numbers).
    async fn all_numbers(&self, user: &UserId) -> Result<Vec<PhoneNumber>, StoreError>;
}

/// The API's number writes: purchases, releases, profile assignments.
#[async_trait]
pub trait NumberWriter: NumberReader + Send + Sync {
    /// Start a purchase: guard + pending record (+ idempotency guard) in one transaction.
    /// `Conflict(NumberUnavailable)` if another user holds the number, `Conflict(NumberAlreadyOwned)`
    /// if the caller does; with a key, a repeat answers `Replayed`.
    async fn create_purchase(
        &self,
        number: &PhoneNumber,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<PhoneNumber>, StoreError>;

    /// Start a release: `releasing`, off its profile (the profile's count goes down in the same transaction).
    async fn mark_releasing(&self, user: &UserId, e164: &E164, now: OffsetDateTime) -> Result<PhoneNumber, StoreError>;

    /// Remove a failed purchase's record (its guard is already free).
    async fn forget_failed(&self, user: &UserId, e164: &E164) -> Result<(), StoreError>;

    /// Put an active number on a profile (at most one profile per number; the profile must exist and
    /// not be deleting; its number count goes up in the same transaction).
    async fn assign_number(&self, user: &UserId, e164: &E164, profile: ProfileId, now: OffsetDateTime) -> Result<PhoneNumber, StoreError>;

    async fn unassign_number(&self, user: &UserId, e164: &E164, profile: ProfileId, now: OffsetDateTime)
        -> Result<PhoneNumber, StoreError>;
}

/// The worker's number writes: what the carrier did with a purchase, a release or a profile change.
#[async_trait]
pub trait NumberSyncLedger: NumberReader + Send + Sync {
    /// Worker: remember the carrier's order id (guarded by version and `pending`).
    async fn record_order(&self, user: &UserId, e164: &E164, version: u64, order_id: &str, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Worker: the carrier sold us the number.
    async fn record_active(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        carrier_number_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Worker: the purchase failed for good; the record says why and the guard is freed, in one transaction.
    async fn record_purchase_failed(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Worker: the carrier released it: record and guard go, in one transaction.
    async fn purge_released(&self, user: &UserId, e164: &E164, version: u64) -> Result<(), StoreError>;

    /// Worker: the carrier has the number on the profile the record names (at `version`).
    async fn record_number_profile_synced(&self, user: &UserId, e164: &E164, version: u64, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Worker: the carrier refused the profile change for good (`profile_sync: failed`, with why).
    async fn record_number_profile_failed(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// What the carrier account says about a number before we buy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// The account owns it and it is in service: adopt this id.
    Owned(String),
    /// The account has it, but an order for it has not completed (Telnyx `purchase-pending`): it is
    /// not owned yet, and buying it again would be refused. Wait for that order.
    Pending,
    /// The account does not have it.
    NotOwned,
}

/// What a purchase call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purchase {
    /// Bought; the carrier's id for the number.
    Done(String),
    /// An order is running (Telnyx); follow it with `order_status`.
    Ordered(String),
}

/// The carrier side of phone numbers.
#[async_trait]
pub trait NumberCarrier: Send + Sync {
    fn name(&self) -> CarrierName;
    async fn search(&self, query: &NumberSearch) -> Result<Vec<AvailableNumber>, CarrierError>;
    /// Whether this account already has `e164` (a purchase that went through before a lost answer).
    async fn find_owned(&self, e164: &E164) -> Result<Ownership, CarrierError>;
    async fn buy(&self, e164: &E164) -> Result<Purchase, CarrierError>;
    /// Follow an order: `Done(id)`, still `Ordered`, or an error (`Permanent` when the order failed).
    async fn order_status(&self, order_id: &str, e164: &E164) -> Result<Purchase, CarrierError>;
    async fn release(&self, carrier_number_id: &str) -> Result<(), CarrierError>;
    /// Put the number on a messaging profile at the carrier (`None` takes it off). Carriers without
    /// messaging profiles (Twilio) accept and do nothing.
    async fn set_messaging_profile(&self, carrier_number_id: &str, profile: Option<&CarrierProfileId>) -> Result<(), CarrierError>;
    /// Send a text from one of this account's numbers; answers the carrier's message id.
    async fn send_sms(&self, from: &E164, to: &E164, text: &str, profile: Option<&CarrierProfileId>) -> Result<String, CarrierError>;
    /// Every number of the account, in service (the reconciler).
    async fn list_numbers(&self) -> Result<Vec<crate::reconcile::ListedNumber>, CarrierError> {
        Err(CarrierError::NotConfigured(format!("{} cannot list numbers", self.name())))
    }
}

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
    /// The user's conversations, newest activity first.
    async fn list_conversations(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Conversation>, StoreError>;

    /// A conversation's messages, newest first (both directions).
    async fn list_messages(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        after: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Message>, StoreError>;

    /// Unread back to zero.
    async fn mark_read(&self, user: &UserId, conversation: &ConversationId) -> Result<Conversation, StoreError>;

    /// Create a contact (`attribute_not_exists`); `Conflict(AlreadyExists)` if the user has it.
    async fn create_contact(&self, user: &UserId, contact: &Contact) -> Result<Contact, StoreError>;

    /// The user's contacts in E.164 order.
    async fn list_contacts(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Contact>, StoreError>;
}

/// The send API's one write.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Queue an outbound message in one transaction: the number is the caller's, active and on the
    /// caller's active profile (condition checks), the contact has not opted out (condition on its
    /// upsert), the message and its conversation are written, and the idempotency guard with them.
    async fn queue_outbound(
        &self,
        sms: &OutboundSms,
        sender: &PhoneNumber,
        message: &Message,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<Message>, StoreError>;
}

/// The worker's send: claim a queued message once and record what the carrier said.
#[async_trait]
pub trait SendLedger: Send + Sync {
    async fn get_message(&self, user: &UserId, conversation: &ConversationId, message_id: &str) -> Result<Message, StoreError>;

    /// Worker: `queued` → `sending`, so a redelivered command never sends twice; answers the message
    /// as claimed, `None` if it is not queued (or gone).
    async fn claim_send(&self, user: &UserId, conversation: &ConversationId, message_id: &str) -> Result<Option<Message>, StoreError>;

    /// Worker: a transient carrier failure: `sending` → `queued`, to be retried.
    async fn release_send(&self, message: &Message) -> Result<(), StoreError>;

    /// Worker: the carrier took it: `sent`, its id, and the index receipts are routed by, in one transaction.
    /// A redelivered write after a lost answer is harmless; a message already past `sent` keeps its
    /// status and still gets its route.
    async fn record_sent(&self, message: &Message, carrier_message_id: &str, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Worker: the send failed for good (`failed`, with why), unless the message is already final.
    async fn record_send_failed(&self, message: &Message, error: &SyncError, now: OffsetDateTime) -> Result<(), StoreError>;
}

/// SIP connection reads.
#[async_trait]
pub trait ConnectionReader: Send + Sync {
    /// The user's connection (one being deleted included); `NotFound` for absent or foreign ids.
    async fn get_connection(&self, user: &UserId, id: ConnectionId) -> Result<SipConnection, StoreError>;
    /// The user's connections in creation order.
    async fn list_connections(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<SipConnection>, StoreError>;
}

/// The dialer API's writes. Every rule is a condition in the same write.
#[async_trait]
pub trait ConnectionWriter: ConnectionReader + NumberReader {
    /// Put a new connection (`attribute_not_exists`), with the key's guard in the same transaction.
    async fn create_connection(
        &self,
        connection: &SipConnection,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<SipConnection>, StoreError>;
    /// Rename or (de)activate; bumps the version, `pending`. `Conflict(ConnectionDeleting)` once deleting.
    async fn update_connection(
        &self,
        user: &UserId,
        id: ConnectionId,
        patch: &ConnectionPatch,
        now: OffsetDateTime,
    ) -> Result<SipConnection, StoreError>;
    /// A new password is in the secret store: bump the version and mark `pending` so the worker pushes it.
    async fn password_rotated(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<SipConnection, StoreError>;
    /// Start a delete (`deleting`), only while no number is on the connection
    /// (`Conflict(ConnectionHasNumbers)`).
    async fn mark_connection_deleting(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<SipConnection, StoreError>;
    /// Put one of the user's active numbers on a connection with a role, in one transaction: the
    /// number is on no other connection and no voice-AI assistant, the connection is not deleting, and
    /// a `primary` takes the connection's one primary slot (`Conflict(PrimaryTaken)`). Putting a number
    /// already there changes its role.
    async fn assign_voice(
        &self,
        user: &UserId,
        e164: &E164,
        id: ConnectionId,
        role: NumberRole,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError>;
    /// Change a number's role or whether it is offered as a caller id.
    async fn update_voice(
        &self,
        user: &UserId,
        e164: &E164,
        id: ConnectionId,
        patch: &AssignmentPatch,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError>;
    /// Take a number off a connection (its primary slot and count with it).
    async fn unassign_voice(&self, user: &UserId, e164: &E164, id: ConnectionId, now: OffsetDateTime) -> Result<PhoneNumber, StoreError>;
    /// Remember the connection's telephony credential; the first one stored wins and is answered.
    async fn remember_telephony_credential(&self, user: &UserId, id: ConnectionId, credential_id: &str) -> Result<String, StoreError>;
    /// Take one of the user's `per_minute` WebRTC tokens for this minute: false when they are all taken.
    async fn take_token(&self, user: &UserId, now: OffsetDateTime, per_minute: u32) -> Result<bool, StoreError>;
}

/// The worker's connection writes: what the carrier now holds.
#[async_trait]
pub trait ConnectionSyncLedger: ConnectionReader + NumberReader {
    async fn record_connection_synced(
        &self,
        user: &UserId,
        id: ConnectionId,
        version: u64,
        carrier_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Keep the carrier id of a connection created while the record moved on.
    async fn record_connection_carrier_id(&self, user: &UserId, id: ConnectionId, carrier_id: &str) -> Result<(), StoreError>;
    /// The carrier refused `version` for good: `failed` with why (a deleting connection stays deleting).
    async fn record_connection_failed(
        &self,
        user: &UserId,
        id: ConnectionId,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Remove a `deleting` connection once the carrier's copy and the secret are gone.
    async fn purge_connection(&self, user: &UserId, id: ConnectionId, version: u64) -> Result<(), StoreError>;
    /// The carrier has the number on the connection its record names (or on none).
    async fn record_voice_synced(&self, user: &UserId, e164: &E164, version: u64, now: OffsetDateTime) -> Result<(), StoreError>;
    async fn record_voice_failed(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// Why the secret store did not answer.
#[derive(Debug, thiserror::Error)]
#[error("secret store unavailable: {0}")]
pub struct SecretError(#[source] pub Box<dyn std::error::Error + Send + Sync + 'static>);

/// Where SIP passwords live (Secrets Manager, one secret per connection), and nowhere else.
#[async_trait]
pub trait SipSecrets: Send + Sync {
    /// Store (create or replace) the connection's password.
    async fn put_password(&self, id: ConnectionId, password: &SipPassword) -> Result<(), SecretError>;
    async fn get_password(&self, id: ConnectionId) -> Result<Option<SipPassword>, SecretError>;
    /// Delete it for good (no recovery window); absent is done.
    async fn delete_password(&self, id: ConnectionId) -> Result<(), SecretError>;
}

/// The carrier side of the dialer (Telnyx credential connections and telephony credentials, or the sandbox).
#[async_trait]
pub trait DialerCarrier: Send + Sync {
    fn name(&self) -> CarrierName;
    async fn create_credential_connection(&self, spec: &ConnectionSpec) -> Result<String, CarrierError>;
    /// The account's connection with this SIP user name (one created before a lost answer).
    async fn find_credential_connection(&self, user_name: &str) -> Result<Option<String>, CarrierError>;
    async fn update_credential_connection(&self, id: &str, spec: &ConnectionSpec) -> Result<(), CarrierError>;
    async fn delete_credential_connection(&self, id: &str) -> Result<(), CarrierError>;
    async fn list_credential_connections(&self) -> Result<Vec<CarrierConnection>, CarrierError>;
    async fn create_telephony_credential(&self, connection_id: &str, name: &str) -> Result<String, CarrierError>;
    async fn delete_telephony_credential(&self, id: &str) -> Result<(), CarrierError>;
    async fn webrtc_token(&self, credential_id: &str, now: OffsetDateTime) -> Result<WebrtcToken, CarrierError>;
    /// Route a number's inbound voice to a connection (`None`: to none).
    async fn set_number_connection(&self, carrier_number_id: &str, connection_id: Option<&str>) -> Result<(), CarrierError>;
}

/// Assistant reads.
#[async_trait]
pub trait AssistantReader: Send + Sync {
    /// The user's assistant (one being deleted included); `NotFound` for absent or foreign ids.
    async fn get_assistant(&self, user: &UserId, id: AssistantId) -> Result<Assistant, StoreError>;
    /// The user's assistants in creation order.
    async fn list_assistants(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Assistant>, StoreError>;
}

/// The assistants API's writes.
#[async_trait]
pub trait AssistantWriter: AssistantReader + NumberReader {
    /// Put a new assistant, and with a selected number its reservation in the same transaction: the
    /// number's global owner guard (`attribute_not_exists`: `Conflict(NumberUnavailable)` /
    /// `Conflict(NumberAlreadyOwned)`) and its pending record, connected to the assistant.
    async fn create_assistant(
        &self,
        assistant: &Assistant,
        reserve: Option<&PhoneNumber>,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<Assistant>, StoreError>;
    /// Change settings; bumps the version, `sync_state: pending`. `Conflict(AssistantNotActive)`
    /// unless active (a pending one is being made, a deleting one is going).
    async fn update_assistant(
        &self,
        user: &UserId,
        id: AssistantId,
        patch: &AssistantPatch,
        now: OffsetDateTime,
    ) -> Result<Assistant, StoreError>;
    /// Start a delete (`deleting`).
    async fn mark_assistant_deleting(&self, user: &UserId, id: AssistantId, now: OffsetDateTime) -> Result<Assistant, StoreError>;
    /// Connect an active number to an active assistant of the user, or disconnect it (`None`), in one
    /// transaction: the number is on no SIP connection (`Conflict(NumberVoiceInUse)`), the assistant
    /// exists and is active. Marks the number's `assistant_sync` pending.
    async fn connect_number(
        &self,
        user: &UserId,
        e164: &E164,
        assistant: Option<AssistantId>,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError>;
}

/// The saga's and the number sync's writes.
#[async_trait]
pub trait AssistantSyncLedger: AssistantReader + NumberReader {
    /// Keep Vapi's id for the assistant; the first one stored wins and is answered.
    async fn record_vapi_assistant(&self, user: &UserId, id: AssistantId, vapi_id: &str) -> Result<String, StoreError>;
    /// The saga finished: `active`. `Conflict(Stale)` if the version moved.
    async fn record_assistant_active(&self, user: &UserId, id: AssistantId, version: u64, now: OffsetDateTime) -> Result<(), StoreError>;
    /// The saga ended for good (or a delete was refused): the reason, and `failed` unless deleting.
    async fn record_assistant_failed(
        &self,
        user: &UserId,
        id: AssistantId,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// A settings change reached Vapi (`Ok`) or was refused.
    async fn record_assistant_sync(
        &self,
        user: &UserId,
        id: AssistantId,
        version: u64,
        outcome: Result<(), &SyncError>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    async fn purge_assistant(&self, user: &UserId, id: AssistantId, version: u64) -> Result<(), StoreError>;
    /// Disconnect a number from a deleting assistant (kept by its owner).
    async fn detach_number(
        &self,
        user: &UserId,
        e164: &E164,
        assistant: AssistantId,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError>;
    /// Compensation: release a number the saga bought for an assistant Vapi refused.
    async fn release_reserved(&self, user: &UserId, e164: &E164, now: OffsetDateTime) -> Result<PhoneNumber, StoreError>;
    /// What Vapi did with a number's connection: its Vapi id (or none), `assistant_sync` synced or failed.
    async fn record_number_assistant(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        vapi_number_id: Option<&str>,
        outcome: Result<(), &SyncError>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// Vapi (or the sandbox voice AI).
#[async_trait]
pub trait VoiceAi: Send + Sync {
    fn name(&self) -> &'static str;
    async fn create_assistant(&self, spec: &AssistantSpec) -> Result<String, CarrierError>;
    /// The assistant made for this Patchbay id before a lost answer (by its metadata).
    async fn find_assistant(&self, local_id: AssistantId) -> Result<Option<String>, CarrierError>;
    async fn update_assistant(&self, id: &str, spec: &AssistantSpec) -> Result<(), CarrierError>;
    async fn delete_assistant(&self, id: &str) -> Result<(), CarrierError>;
    /// Import a number, attached to an assistant; answers Vapi's phone number id.
    async fn import_number(&self, import: &NumberImport) -> Result<String, CarrierError>;
    /// The imported number with these digits (one imported before a lost answer).
    async fn find_number(&self, e164: &E164) -> Result<Option<String>, CarrierError>;
    /// Attach an imported number (of `carrier`: Vapi's update is typed by provider) to an assistant.
    async fn attach_number(&self, id: &str, carrier: CarrierName, assistant_id: &str) -> Result<(), CarrierError>;
    /// Remove an import (Vapi's `assistantId` cannot be set to null: a detached number is not imported).
    async fn remove_number(&self, id: &str) -> Result<(), CarrierError>;
    /// Every assistant of the account (the reconciler).
    async fn list_assistants(&self) -> Result<Vec<crate::reconcile::ListedAssistant>, CarrierError> {
        Err(CarrierError::NotConfigured(format!("{} cannot list assistants", self.name())))
    }
    /// Every number imported into the account (the reconciler).
    async fn list_numbers(&self) -> Result<Vec<crate::reconcile::ListedVoiceNumber>, CarrierError> {
        Err(CarrierError::NotConfigured(format!("{} cannot list numbers", self.name())))
    }
}

/// How a call event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Applied,
    /// The same event again: nothing changed.
    Duplicate,
}

/// Calls as the webhooks record them, with the dashboard's counters moved in the same transaction.
#[async_trait]
pub trait CallLedger: Send + Sync {
    /// Fold one event into the user's call (made on its first event), with the event's once-only guard
    /// (`scope`, `event_id`) and the counters' moves by what the event changed, in one transaction.
    async fn apply_call_event(
        &self,
        user: &UserId,
        call_id: &str,
        source: CallSource,
        event: (&str, &str),
        update: &CallUpdate,
        now: OffsetDateTime,
    ) -> Result<CallOutcome, StoreError>;
    /// The user and connection a Telnyx credential connection id belongs to.
    async fn connection_route(&self, carrier_connection_id: &str) -> Result<Option<(UserId, ConnectionId)>, StoreError>;
    /// The user and assistant (with its name) a Vapi assistant id belongs to.
    async fn assistant_route(&self, vapi_assistant_id: &str) -> Result<Option<(UserId, AssistantId, String)>, StoreError>;
    /// The owner of a number, and the assistant its calls go to.
    async fn number_route(&self, e164: &E164) -> Result<Option<(UserId, Option<AssistantId>)>, StoreError>;
}

/// What the calls API reads.
#[async_trait]
pub trait CallReader: Send + Sync {
    /// The user's calls, newest first.
    async fn list_calls(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Call>, StoreError>;
    /// The user's counters from `from` to `to` (UTC days), per day and per assistant and day: one Query.
    async fn stats(&self, user: &UserId, from: time::Date, to: time::Date) -> Result<Vec<StatsRow>, StoreError>;
}

/// One stored counter row: a day's, or an assistant's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRow {
    pub day: time::Date,
    pub assistant: Option<(AssistantId, String)>,
    pub counters: Counters,
}
