//! Typed errors. Their variants decide the HTTP status at the edge; nothing here is a string blob.

use std::fmt;

/// A value from outside that does not parse. Names the field so a client can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The offending field, as the client spelled it (`name`, `whitelisted_destinations[2]`, `cursor`).
    pub field: String,
    /// A stable machine code (`too_long`, `invalid_country`, ...).
    pub code: &'static str,
    /// A human sentence saying what is wrong.
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code, message: message.into() }
    }

    /// The same error reported under another field name (e.g. an element of a list).
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

/// Why a write lost against the state in the table. Each one is a DynamoDB condition that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The per-user active pointer moved between our read and our transaction, more often than we retry.
    ActivationRace,
    /// The profile is being deleted; it can no longer be changed or activated.
    ProfileDeleting,
    /// The idempotency key was used before with a different request body.
    IdempotencyKeyReused,
    /// An item that must not exist already exists (a create hit an existing key).
    AlreadyExists,
    /// The item changed since it was read (version guard).
    Stale,
    /// Someone else owns (or is buying) this number.
    NumberUnavailable,
    /// The caller already owns (or is buying) this number.
    NumberAlreadyOwned,
    /// The number is not active (still being bought, failed, or being released).
    NumberNotActive,
    /// The number is on another messaging profile; unassign it there first.
    NumberOnAnotherProfile,
    /// The number is not on this messaging profile.
    NumberNotOnProfile,
    /// The profile still has numbers on it; unassign them first.
    ProfileHasNumbers,
    /// The sending number is on a profile that is not the user's active one.
    ProfileNotActive,
    /// The contact opted out (STOP); a START from them lifts it.
    ContactOptedOut,
    /// The SIP connection is being deleted.
    ConnectionDeleting,
    /// Numbers are still on the SIP connection; take them off first.
    ConnectionHasNumbers,
    /// The SIP connection already has a primary number.
    PrimaryTaken,
    /// The number is on another SIP connection.
    NumberOnAnotherConnection,
    /// The number's inbound voice already goes elsewhere (a voice-AI assistant, or a SIP connection).
    NumberVoiceInUse,
    /// The number is not on this SIP connection.
    NumberNotOnConnection,
    /// The number belongs to another carrier than the connection.
    CarrierMismatch,
    /// The SIP connection is deactivated.
    ConnectionInactive,
    /// The SIP connection is not at the carrier yet (pending or failed).
    ConnectionNotReady,
    /// The assistant is not active (still being made, failed, or being deleted).
    AssistantNotActive,
    /// The user has as many webhook endpoints as one may have.
    TooManyEndpoints,
}

impl Conflict {
    pub fn code(self) -> &'static str {
        match self {
            Conflict::ActivationRace => "activation_conflict",
            Conflict::ProfileDeleting => "profile_deleting",
            Conflict::IdempotencyKeyReused => "idempotency_key_reused",
            Conflict::AlreadyExists => "already_exists",
            Conflict::Stale => "stale_write",
            Conflict::NumberUnavailable => "number_unavailable",
            Conflict::NumberAlreadyOwned => "number_already_owned",
            Conflict::NumberNotActive => "number_not_active",
            Conflict::NumberOnAnotherProfile => "number_on_another_profile",
            Conflict::NumberNotOnProfile => "number_not_on_profile",
            Conflict::ProfileHasNumbers => "profile_has_numbers",
            Conflict::ProfileNotActive => "profile_not_active",
            Conflict::ContactOptedOut => "contact_opted_out",
            Conflict::ConnectionDeleting => "connection_deleting",
            Conflict::ConnectionHasNumbers => "connection_has_numbers",
            Conflict::PrimaryTaken => "primary_taken",
            Conflict::NumberOnAnotherConnection => "number_on_another_connection",
            Conflict::NumberVoiceInUse => "number_voice_in_use",
            Conflict::NumberNotOnConnection => "number_not_on_connection",
            Conflict::CarrierMismatch => "carrier_mismatch",
            Conflict::ConnectionInactive => "connection_inactive",
            Conflict::ConnectionNotReady => "connection_not_ready",
            Conflict::AssistantNotActive => "assistant_not_active",
            Conflict::TooManyEndpoints => "too_many_endpoints",
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conflict::ActivationRace => "another activation for this user committed first; retry the request",
            Conflict::ProfileDeleting => "the messaging profile is being deleted",
            Conflict::IdempotencyKeyReused => "this Idempotency-Key was already used with a different request",
            Conflict::AlreadyExists => "the resource already exists",
            Conflict::Stale => "the resource changed while the request ran; retry the request",
            Conflict::NumberUnavailable => "this number is not available",
            Conflict::NumberAlreadyOwned => "you already own this number (or are buying it)",
            Conflict::NumberNotActive => "the number is not active (still being bought, failed, or being released)",
            Conflict::NumberOnAnotherProfile => "the number is on another messaging profile; unassign it there first",
            Conflict::NumberNotOnProfile => "the number is not on this messaging profile",
            Conflict::ProfileHasNumbers => "the messaging profile still has phone numbers; unassign them first",
            Conflict::ProfileNotActive => "the sending number is on a messaging profile that is not your active one",
            Conflict::ContactOptedOut => "this contact opted out of messages (STOP); they can opt back in with START",
            Conflict::ConnectionDeleting => "the SIP connection is being deleted",
            Conflict::ConnectionHasNumbers => "phone numbers are still on the SIP connection; take them off first",
            Conflict::PrimaryTaken => "the SIP connection already has a primary number",
            Conflict::NumberOnAnotherConnection => "the number is on another SIP connection; take it off there first",
            Conflict::NumberVoiceInUse => "the number's calls already go elsewhere (a voice-AI assistant or a SIP connection)",
            Conflict::NumberNotOnConnection => "the number is not on this SIP connection",
            Conflict::CarrierMismatch => "the number and the SIP connection are at different carriers",
            Conflict::ConnectionInactive => "the SIP connection is deactivated",
            Conflict::ConnectionNotReady => "the SIP connection is not set up at the carrier yet",
            Conflict::AssistantNotActive => "the assistant is not active (still being made, failed, or being deleted)",
            Conflict::TooManyEndpoints => "you have as many webhook endpoints as one may have (20); delete one first",
        })
    }
}

/// What a store operation can fail with. `Contended` and `Unavailable` are infrastructure (collisions
/// and throttling that outlasted the retries; network, emulator down) and become a 503 or a retry;
/// `NotFound` and `Conflict` are outcomes a client can act on, each decided by a failed condition.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// Collisions with concurrent writes or throttling outlasted the store's retries; nothing was
    /// applied and the same request can simply be retried (503, 5xx to a carrier, SQS redelivery).
    #[error("store contention: {0}")]
    Contended(String),
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    #[error("corrupt item: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Worth retrying the whole request: nothing was decided.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Contended(_) | StoreError::Unavailable(_))
    }

    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
}
