//! The worker side of messaging profiles: bring the carrier's copy in line with the record.

use time::OffsetDateTime;

use crate::kernel::error::{Conflict, StoreError};
use crate::kernel::ids::{CarrierProfileId, ProfileId, UserId};
use crate::kernel::provider::CarrierError;
use crate::kernel::sync::{gave_up, was_given_up, SyncError, SyncOutcome, SyncRetry, SyncState};
use crate::profiles::model::MessagingProfile;
use crate::profiles::ports::{CarrierProfileSpec, ProfileCarrier, ProfileSyncLedger};

/// The last delivery of a profile's sync failed: a profile still `pending` (or `deleting`) records
/// why (`retries_exhausted`; a delete stays deleting), and a redrive of the command resets it.
pub async fn give_up(
    store: &dyn ProfileSyncLedger,
    user: &UserId,
    id: ProfileId,
    reason: &SyncError,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    match store.get_profile(user, id).await {
        Ok(p) if matches!(p.sync_state, SyncState::Pending | SyncState::Deleting) => {
            gave_up(store.record_sync_failed(user, id, p.version, p.sync_state, reason, now).await)
        }
        Ok(_) | Err(StoreError::NotFound) => Ok(()),
        Err(e) => Err(e),
    }
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
    if was_given_up(profile.sync_state, profile.sync_error.as_ref()) {
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
        (SyncState::Pending, None) => match create_or_adopt(carrier, &spec).await {
            Ok((cid, outcome)) => {
                match store.record_synced(user, id, profile.version, &cid, now).await {
                    Ok(()) => Ok(outcome),
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

/// Create the carrier's copy, unless an earlier create of this record made it and only its answer
/// (or the write that recorded it) was lost: that one is adopted and brought up to date instead.
async fn create_or_adopt(carrier: &dyn ProfileCarrier, spec: &CarrierProfileSpec) -> Result<(CarrierProfileId, SyncOutcome), CarrierError> {
    match carrier.find_messaging_profile(spec).await? {
        Some(cid) => {
            carrier.update_messaging_profile(&cid, spec).await?;
            Ok((cid, SyncOutcome::Updated))
        }
        None => Ok((carrier.create_messaging_profile(spec).await?, SyncOutcome::Created)),
    }
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
