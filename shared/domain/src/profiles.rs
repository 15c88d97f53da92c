//! Messaging profile operations: what the handlers and the worker call. Each one is a store
//! operation (a conditional write or a transaction) plus, where carrier work follows, one command.

use time::OffsetDateTime;

use crate::ports::{
    CarrierError, CarrierProfileSpec, Created, ProfileCarrier, ProfileSyncLedger, ProfileWriter, QueueError, WorkQueue, RETRIES_EXHAUSTED,
};
use crate::{
    Activation, CommandEnvelope, Conflict, Cursor, IdempotencyKey, Limit, MessagingProfile, NewProfile, Page, ProfileId, ProfilePatch,
    StoreError, SyncError, SyncState, UserId,
};

/// Why a profile operation failed; the edge maps each variant to a status.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("messaging profile not found")]
    NotFound,
    #[error("{0}")]
    Conflict(Conflict),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
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
    pub queue: &'a dyn WorkQueue,
}

impl Profiles<'_> {
    /// Create a profile (pending sync) and enqueue its mirror at the carrier. A replay with the same
    /// `Idempotency-Key` answers the stored profile and enqueues its sync again if it is still pending
    /// (the FIFO queue drops the copy if the first one went through).
    pub async fn create(
        &self,
        user: &UserId,
        input: NewProfile,
        key: Option<&IdempotencyKey>,
        now: OffsetDateTime,
    ) -> Result<Created<MessagingProfile>, ProfileError> {
        let fingerprint = input.fingerprint();
        let profile = MessagingProfile::new(user.clone(), input, now);
        let created = self.store.create_profile(&profile, key.map(|k| (k, fingerprint.as_str()))).await?;
        let stored = match &created {
            Created::New(p) | Created::Replayed(p) => p,
        };
        if stored.sync_state == SyncState::Pending || stored.sync_state == SyncState::Deleting {
            self.enqueue_sync(stored).await?;
        }
        Ok(created)
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
        let updated = self.store.update_profile(user, id, patch, now).await?;
        self.enqueue_sync(&updated).await?;
        Ok(updated)
    }

    /// Start a delete. Deleting a profile that is already being deleted answers it again (and
    /// re-enqueues its sync), so a retried DELETE is harmless.
    pub async fn delete(&self, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<MessagingProfile, ProfileError> {
        let deleting = self.store.mark_deleting(user, id, now).await?;
        self.enqueue_sync(&deleting).await?;
        Ok(deleting)
    }

    async fn enqueue_sync(&self, p: &MessagingProfile) -> Result<(), QueueError> {
        self.queue.enqueue(&CommandEnvelope::sync_profile(p.user_id.clone(), p.id, p.version)).await
    }
}

/// Make `id` the user's one active profile (no carrier work: activation is Patchbay's own rule).
pub async fn activate(store: &dyn ProfileWriter, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<Activation, ProfileError> {
    Ok(store.activate_profile(user, id, now).await?)
}

/// What one sync step did; logged by the worker and asserted on by tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The record is gone (purged earlier): nothing to do.
    Gone,
    /// Already in step with the carrier.
    UpToDate,
    Created,
    Updated,
    Deleted,
    /// The record moved on while the carrier call ran; the newer write's own command finishes the job.
    Superseded,
    /// The carrier refused for good; recorded on the profile.
    Failed(SyncError),
}

/// A sync's write after its carrier call: done, or `Superseded` when the record moved on meanwhile
/// (a failed version condition, or the record gone): the newer write's own command finishes the job.
pub fn settle(r: Result<(), StoreError>, done: SyncOutcome) -> Result<SyncOutcome, SyncRetry> {
    match r {
        Ok(()) => Ok(done),
        Err(StoreError::Conflict(_)) | Err(StoreError::NotFound) => Ok(SyncOutcome::Superseded),
        Err(e) => Err(SyncRetry::Store(e)),
    }
}

/// Why a sync step must be retried (the message goes back to the queue).
#[derive(Debug, thiserror::Error)]
pub enum SyncRetry {
    #[error("carrier: {0}")]
    Carrier(CarrierError),
    #[error("store: {0}")]
    Store(StoreError),
}

/// The worker side: bring the carrier's copy of one profile in line with the record.
///
/// `final_attempt` is true when the queue will not deliver this message again; a transient carrier
/// failure is then recorded as `failed` (the user sees why instead of `pending` for ever) and still
/// answered as a retry, so the message moves on to the dead-letter queue.
pub async fn sync_profile(
    store: &dyn ProfileSyncLedger,
    carrier: &dyn ProfileCarrier,
    user: &UserId,
    id: ProfileId,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let mut profile = match store.get_profile(user, id).await {
        Ok(p) => p,
        Err(StoreError::NotFound) => return Ok(SyncOutcome::Gone),
        Err(e) => return Err(SyncRetry::Store(e)),
    };
    // Its last delivery ran out of retries and moved it to the dead-letter queue; a delivery after
    // that is an operator's redrive (the queue delivers nothing else of a dead message), so the
    // failure was not final: back to pending, and on with the sync.
    if profile.sync_state == SyncState::Failed && profile.sync_error.as_ref().is_some_and(|e| e.code == RETRIES_EXHAUSTED) {
        match store.retry_exhausted(user, id, now).await {
            Ok(true) => match store.get_profile(user, id).await {
                Ok(p) => profile = p,
                Err(StoreError::NotFound) => return Ok(SyncOutcome::Gone),
                Err(e) => return Err(SyncRetry::Store(e)),
            },
            Ok(false) => {}
            Err(e) => return Err(SyncRetry::Store(e)),
        }
    }
    let spec = CarrierProfileSpec {
        local_id: profile.id,
        name: profile.name.clone(),
        whitelisted_destinations: profile.whitelisted_destinations.clone(),
    };

    let result = match (profile.sync_state, &profile.carrier_profile_id) {
        (SyncState::Synced, _) | (SyncState::Failed, _) => return Ok(SyncOutcome::UpToDate),
        (SyncState::Deleting, carrier_id) => {
            if let Some(cid) = carrier_id {
                match carrier.delete_messaging_profile(cid).await {
                    Ok(()) | Err(CarrierError::NotFound) => {}
                    Err(e) => return fail_or_retry(store, &profile, e, final_attempt, now).await,
                }
            }
            return match store.purge_profile(user, id, profile.version).await {
                Ok(()) | Err(StoreError::NotFound) => Ok(SyncOutcome::Deleted),
                Err(StoreError::Conflict(Conflict::Stale)) => Ok(SyncOutcome::Superseded),
                Err(e) => Err(SyncRetry::Store(e)),
            };
        }
        (SyncState::Pending, None) => match carrier.create_messaging_profile(&spec).await {
            Ok(cid) => {
                match store.record_synced(user, id, profile.version, &cid, now).await {
                    Ok(()) => Ok(SyncOutcome::Created),
                    Err(StoreError::Conflict(Conflict::Stale)) => {
                        // Renamed or deleted meanwhile: keep the id so the next sync does not create twice.
                        match store.record_carrier_id(user, id, &cid).await {
                            Ok(()) | Err(StoreError::NotFound) | Err(StoreError::Conflict(_)) => Ok(SyncOutcome::Superseded),
                            Err(e) => Err(SyncRetry::Store(e)),
                        }
                    }
                    Err(e) => Err(SyncRetry::Store(e)),
                }
            }
            Err(e) => return fail_or_retry(store, &profile, e, final_attempt, now).await,
        },
        (SyncState::Pending, Some(cid)) => match carrier.update_messaging_profile(cid, &spec).await {
            Ok(()) => match store.record_synced(user, id, profile.version, cid, now).await {
                Ok(()) => Ok(SyncOutcome::Updated),
                Err(StoreError::Conflict(Conflict::Stale)) => Ok(SyncOutcome::Superseded),
                Err(e) => Err(SyncRetry::Store(e)),
            },
            Err(e) => return fail_or_retry(store, &profile, e, final_attempt, now).await,
        },
    };
    result
}

async fn fail_or_retry(
    store: &dyn ProfileSyncLedger,
    profile: &MessagingProfile,
    error: CarrierError,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    if matches!(error, CarrierError::Transient(_)) && !final_attempt {
        return Err(SyncRetry::Carrier(error));
    }
    let sync_error = error.failure_reason();
    let state = if profile.is_deleting() { SyncState::Deleting } else { SyncState::Failed };
    let recorded = store.record_sync_failed(&profile.user_id, profile.id, profile.version, state, &sync_error, now).await;
    if let CarrierError::Transient(_) = error {
        // Out of attempts: the profile says why, and the message still goes on to the dead-letter
        // queue (by failing this last delivery) so an operator is alarmed.
        return Err(SyncRetry::Carrier(error));
    }
    match recorded {
        Ok(()) => Ok(SyncOutcome::Failed(sync_error)),
        Err(StoreError::Conflict(Conflict::Stale)) | Err(StoreError::NotFound) => Ok(SyncOutcome::Superseded),
        Err(e) => Err(SyncRetry::Store(e)),
    }
}
