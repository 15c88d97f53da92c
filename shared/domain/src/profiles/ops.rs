//! Messaging profile operations: what the messaging-profiles and activate-profile functions call.
//! Each is one store operation (a conditional write or a transaction); where carrier work follows,
//! its command is an outbox item in that same transaction (relayed to the work queue from the
//! table's stream), never a separate send.

use time::OffsetDateTime;

use crate::kernel::error::{Conflict, StoreError};
use crate::kernel::ids::{IdempotencyKey, ProfileId, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::provider::Created;
use crate::profiles::model::{Activation, MessagingProfile, NewProfile, ProfilePatch};
use crate::profiles::ports::ProfileWriter;

/// Why a profile operation failed; the edge maps each variant to a status.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("messaging profile not found")]
    NotFound,
    #[error("{0}")]
    Conflict(Conflict),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ProfileError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ProfileError::NotFound,
            StoreError::Conflict(c) => ProfileError::Conflict(c),
            other => ProfileError::Store(other),
        }
    }
}

/// The API side: handlers hold one of these, built once per cold start.
pub struct Profiles<'a> {
    pub store: &'a dyn ProfileWriter,
}

impl Profiles<'_> {
    /// Create a profile (pending sync) and, in the same transaction, its mirror at the carrier (the
    /// sync command, an outbox item). A replay with the same `Idempotency-Key` answers the stored
    /// profile and writes nothing.
    pub async fn create(
        &self,
        user: &UserId,
        input: NewProfile,
        key: Option<&IdempotencyKey>,
        now: OffsetDateTime,
    ) -> Result<Created<MessagingProfile>, ProfileError> {
        let fingerprint = input.fingerprint();
        let profile = MessagingProfile::new(user.clone(), input, now);
        Ok(self.store.create_profile(&profile, key.map(|k| (k, fingerprint.as_str()))).await?)
    }

    pub async fn get(&self, user: &UserId, id: ProfileId) -> Result<MessagingProfile, ProfileError> {
        Ok(self.store.get_profile(user, id).await?)
    }

    pub async fn list(&self, user: &UserId, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<MessagingProfile>, ProfileError> {
        Ok(self.store.list_profiles(user, cursor, limit).await?)
    }

    pub async fn update(
        &self,
        user: &UserId,
        id: ProfileId,
        patch: &ProfilePatch,
        now: OffsetDateTime,
    ) -> Result<MessagingProfile, ProfileError> {
        Ok(self.store.update_profile(user, id, patch, now).await?)
    }

    /// Start a delete (its sync in the same transaction). Deleting a profile that is already being
    /// deleted answers it again and writes its sync again, so a retried DELETE is harmless and
    /// retries a delete the carrier refused.
    pub async fn delete(&self, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<MessagingProfile, ProfileError> {
        Ok(self.store.mark_deleting(user, id, now).await?)
    }
}

/// Make `id` the user's one active profile (no carrier work: activation is Patchbay's own rule).
pub async fn activate(store: &dyn ProfileWriter, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<Activation, ProfileError> {
    Ok(store.activate_profile(user, id, now).await?)
}
