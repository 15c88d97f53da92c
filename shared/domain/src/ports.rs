//! The ports: narrow traits the domain needs from the outside world. Adapters implement them;
//! handlers and the worker depend only on these.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{
    Activation, CarrierProfileId, CommandEnvelope, Cursor, IdempotencyKey, Limit, MessagingProfile,
    Page, ProfileId, ProfilePatch, StoreError, SyncError, SyncState, UserId, WhitelistedDestinations,
    ProfileName,
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

/// Messaging profile persistence. Every method is one conditional write or one transaction.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Put a new profile (`attribute_not_exists`). With a key, the key's guard item is written in the
    /// same transaction; a repeat with the same fingerprint answers `Replayed` with the current record,
    /// a different fingerprint `Conflict(IdempotencyKeyReused)`.
    async fn create_profile(
        &self,
        profile: &MessagingProfile,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<MessagingProfile>, StoreError>;

    /// The user's profile (a profile being deleted included); `NotFound` for absent or foreign ids.
    async fn get_profile(&self, user: &UserId, id: ProfileId) -> Result<MessagingProfile, StoreError>;

    /// The user's profiles in creation order.
    async fn list_profiles(&self, user: &UserId, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<MessagingProfile>, StoreError>;

    /// Apply a rename/settings change, bump the version and mark the profile pending sync.
    /// `Conflict(ProfileDeleting)` once a delete has started.
    async fn update_profile(&self, user: &UserId, id: ProfileId, patch: &ProfilePatch, now: OffsetDateTime) -> Result<MessagingProfile, StoreError>;

    /// Start a delete: the profile turns `deleting`, and if it was the active one the user's pointer
    /// is cleared in the same transaction, leaving the user with no active profile.
    async fn mark_deleting(&self, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<MessagingProfile, StoreError>;

    /// Make `id` the user's one active profile and the previous one inactive, in one transaction
    /// guarded by the pointer's version; a lost race is retried from a fresh read a bounded number of
    /// times before `Conflict(ActivationRace)`.
    async fn activate_profile(&self, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<Activation, StoreError>;

    /// The profile the user's pointer names, if any.
    async fn active_profile(&self, user: &UserId) -> Result<Option<ProfileId>, StoreError>;

    /// Worker: the carrier now matches `version`; record its id. `Conflict(Stale)` if the version moved.
    async fn record_synced(&self, user: &UserId, id: ProfileId, version: u64, carrier_id: &CarrierProfileId, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Worker: keep the carrier id of a copy that was created while the record moved on, so a later
    /// sync updates or deletes it instead of creating a second one.
    async fn record_carrier_id(&self, user: &UserId, id: ProfileId, carrier_id: &CarrierProfileId) -> Result<(), StoreError>;

    /// Worker: the carrier refused `version` for good. The profile takes `state` (`Failed`, or stays
    /// `Deleting` so a repeated DELETE tries again) with the reason. `Conflict(Stale)` if the version moved.
    async fn record_sync_failed(&self, user: &UserId, id: ProfileId, version: u64, state: SyncState, error: &SyncError, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Worker: remove a `deleting` profile once the carrier's copy is gone. `Conflict(Stale)` if the version moved.
    async fn purge_profile(&self, user: &UserId, id: ProfileId, version: u64) -> Result<(), StoreError>;
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

/// The carrier side of messaging profiles (Telnyx `/messaging_profiles`, or the sandbox).
#[async_trait]
pub trait ProfileCarrier: Send + Sync {
    fn name(&self) -> &'static str;
    async fn create_messaging_profile(&self, spec: &CarrierProfileSpec) -> Result<CarrierProfileId, CarrierError>;
    async fn update_messaging_profile(&self, id: &CarrierProfileId, spec: &CarrierProfileSpec) -> Result<(), CarrierError>;
    async fn delete_messaging_profile(&self, id: &CarrierProfileId) -> Result<(), CarrierError>;
}
