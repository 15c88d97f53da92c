//! What messaging profiles need from outside: the store (reads, the API's writes, the worker's sync
//! ledger) and the carrier's copy. Every write is one conditional write or one transaction.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::kernel::error::StoreError;
use crate::kernel::ids::{CarrierProfileId, IdempotencyKey, ProfileId, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::provider::{CarrierError, Created};
use crate::kernel::sync::{SyncError, SyncState};
use crate::profiles::model::{Activation, MessagingProfile, ProfileName, ProfilePatch, WhitelistedDestinations};

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
    /// Put a new profile (`attribute_not_exists`) and, in the same transaction, the work it starts:
    /// its sync (`CommandEnvelope::sync_profile` of its version, an outbox item). With a key, the
    /// key's guard item is written in that transaction too; a repeat with the same fingerprint
    /// answers `Replayed` with the current record (and writes nothing), a different fingerprint
    /// `Conflict(IdempotencyKeyReused)`.
    async fn create_profile(
        &self,
        profile: &MessagingProfile,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<MessagingProfile>, StoreError>;

    /// Apply a rename/settings change, bump the version and mark the profile pending sync, with the
    /// sync of the new version (an outbox item) in the same transaction. `Conflict(ProfileDeleting)`
    /// once a delete has started.
    async fn update_profile(
        &self,
        user: &UserId,
        id: ProfileId,
        patch: &ProfilePatch,
        now: OffsetDateTime,
    ) -> Result<MessagingProfile, StoreError>;

    /// Start a delete: the profile turns `deleting`, and if it was the active one the user's pointer
    /// is cleared in the same transaction, leaving the user with no active profile; the sync that
    /// deletes it at the carrier (an outbox item) is in that transaction too. A profile already
    /// `deleting` is answered as it is (its sync was written when it turned `deleting`).
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

/// What the carrier is asked to hold for a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierProfileSpec {
    /// Our id: the sandbox derives its id from it; Telnyx carries it in the profile's webhook URL.
    pub local_id: ProfileId,
    pub name: ProfileName,
    pub whitelisted_destinations: WhitelistedDestinations,
}

/// The carrier side of messaging profiles (Telnyx `/messaging_profiles`, or the sandbox).
#[async_trait]
pub trait ProfileCarrier: Send + Sync {
    fn name(&self) -> &'static str;
    async fn create_messaging_profile(&self, spec: &CarrierProfileSpec) -> Result<CarrierProfileId, CarrierError>;
    /// The profile an earlier create of this record made, when the carrier can tell (a create whose
    /// answer was lost is adopted, not made twice). Carriers that derive their id from ours need not.
    async fn find_messaging_profile(&self, _spec: &CarrierProfileSpec) -> Result<Option<CarrierProfileId>, CarrierError> {
        Ok(None)
    }
    async fn update_messaging_profile(&self, id: &CarrierProfileId, spec: &CarrierProfileSpec) -> Result<(), CarrierError>;
    async fn delete_messaging_profile(&self, id: &CarrierProfileId) -> Result<(), CarrierError>;
    /// Every messaging profile of the account (the reconciler).
    async fn list_messaging_profiles(&self) -> Result<Vec<ListedProfile>, CarrierError> {
        Err(CarrierError::NotConfigured(format!("{} cannot list messaging profiles", self.name())))
    }
}

/// A messaging profile as the carrier lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedProfile {
    pub id: String,
    pub name: String,
    pub patchbay: bool,
}
