//! The worker side of assistants. The create is a saga the worker runs one idempotent step at a time,
//! resumable from any redelivery: buy the selected number (the purchase path: never twice, a lost
//! answer adopted) → create the Vapi assistant (a lost answer found by its metadata) → import the
//! number into Vapi attached to it → `active`. A refused purchase fails it with the reservation
//! freed; a refused assistant releases the bought number; a refused attach leaves the assistant
//! active and the number's `assistant_sync: failed`, repaired by connecting it again. The number's
//! assistant side (`AssistantRoute`) is one of the number's call routes.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::kernel::error::StoreError;
use crate::kernel::ids::{AssistantId, UserId};
use crate::kernel::provider::CarrierError;
use crate::kernel::sync::{gave_up, settle, was_given_up, SyncError, SyncOutcome, SyncRetry, SyncState};

use crate::numbers::model::{NumberStatus, PhoneNumber};
use crate::numbers::ports::{CallRoute, NumberSyncLedger};
use crate::numbers::sync::{purchase, PurchasePorts};
use crate::voice_ai::model::{Assistant, AssistantSpec, AssistantStatus, NumberImport};
use crate::voice_ai::ops::VapiServer;
use crate::voice_ai::ports::{AssistantSyncLedger, VoiceAi};

/// The number's assistant side, one of its call routes: Vapi has the number attached to the assistant
/// its record names (imported on first connection), or not imported at all; and before a release,
/// Vapi lets go of the import.
#[derive(Clone, Copy)]
pub struct AssistantRoute<'a> {
    pub store: &'a dyn AssistantSyncLedger,
    pub voice_ai: &'a dyn VoiceAi,
}

#[async_trait]
impl CallRoute for AssistantRoute<'_> {
    fn pending(&self, n: &PhoneNumber) -> bool {
        n.assistant_sync == Some(SyncState::Pending)
    }

    async fn give_up(&self, n: &PhoneNumber, reason: &SyncError, now: OffsetDateTime) -> Result<(), StoreError> {
        if !self.pending(n) {
            return Ok(());
        }
        let vapi_id = n.vapi_phone_number_id.as_deref();
        gave_up(self.store.record_number_assistant(&n.user_id, &n.e164, n.version, vapi_id, Err(reason), now).await)
    }

    async fn push(&self, n: &PhoneNumber, final_attempt: bool, now: OffsetDateTime) -> Result<SyncOutcome, SyncRetry> {
        let AssistantRoute { store, voice_ai } = *self;
        if !self.pending(n) {
            return Ok(SyncOutcome::UpToDate);
        }
        let (user, e164) = (&n.user_id, &n.e164);
        let target = match n.assistant_id {
            None => None,
            Some(aid) => match store.get_assistant(user, aid).await {
                Ok(a) => match a.vapi_assistant_id {
                    Some(v) => Some(v),
                    None => return Err(SyncRetry::Carrier(CarrierError::Transient("the assistant is not at Vapi yet".into()))),
                },
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(SyncRetry::Store(e)),
            },
        };
        let result: Result<Option<String>, CarrierError> = match (&target, &n.vapi_phone_number_id) {
            (Some(assistant), Some(id)) => voice_ai.attach_number(id, n.carrier, assistant).await.map(|()| Some(id.clone())),
            (Some(assistant), None) => match voice_ai.find_number(e164).await {
                Ok(Some(id)) => voice_ai.attach_number(&id, n.carrier, assistant).await.map(|()| Some(id)),
                Ok(None) => voice_ai
                    .import_number(&NumberImport { e164: e164.clone(), carrier: n.carrier, assistant_id: assistant.clone() })
                    .await
                    .map(Some),
                Err(e) => Err(e),
            },
            (None, Some(id)) => match voice_ai.remove_number(id).await {
                Ok(()) | Err(CarrierError::NotFound) => Ok(None),
                Err(e) => Err(e),
            },
            // Disconnected with no Vapi id on record: an import whose id was never stored (recorded
            // on a version that had moved on, or lost to a crash) may still route the number's calls
            // to an assistant. Look it up by its digits and remove what is there (crash-audit F12).
            (None, None) => match voice_ai.find_number(e164).await {
                Ok(Some(id)) => match voice_ai.remove_number(&id).await {
                    Ok(()) | Err(CarrierError::NotFound) => Ok(None),
                    Err(e) => Err(e),
                },
                Ok(None) | Err(CarrierError::NotFound) => Ok(None),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(id) => settle(store.record_number_assistant(user, e164, n.version, id.as_deref(), Ok(()), now).await, SyncOutcome::Updated),
            Err(e @ CarrierError::Transient(_)) if !final_attempt => Err(SyncRetry::Carrier(e)),
            Err(e) => {
                let reason = e.failure_reason();
                let kept = n.vapi_phone_number_id.as_deref();
                settle(store.record_number_assistant(user, e164, n.version, kept, Err(&reason), now).await, SyncOutcome::Failed(reason))
            }
        }
    }

    /// Out of Vapi before the carrier releases the number: an imported number would keep routing
    /// calls to the assistant. A refusal other than a transient one is logged and the release goes on.
    async fn before_release(&self, n: &PhoneNumber) -> Result<(), SyncRetry> {
        // A number that was ever connected, with no Vapi id on record, is looked up by its digits
        // (an import whose id was never stored).
        let vapi_id = match (&n.vapi_phone_number_id, n.assistant_sync) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(_)) => match self.voice_ai.find_number(&n.e164).await {
                Ok(found) => found,
                Err(e @ CarrierError::Transient(_)) => return Err(SyncRetry::Carrier(e)),
                Err(e) => {
                    tracing::warn!(number = %n.e164, error = %e, "could not look the number up at vapi; releasing it anyway");
                    None
                }
            },
            (None, None) => None,
        };
        if let Some(vapi_id) = vapi_id.as_deref() {
            match self.voice_ai.remove_number(vapi_id).await {
                Ok(()) | Err(CarrierError::NotFound) => {}
                Err(e @ CarrierError::Transient(_)) => return Err(SyncRetry::Carrier(e)),
                Err(e) => tracing::warn!(number = %n.e164, error = %e, "vapi refused to remove the number; releasing it anyway"),
            }
        }
        Ok(())
    }
}

/// Everything the assistant saga touches.
#[derive(Clone, Copy)]
pub struct SagaPorts<'a> {
    pub assistants: AssistantRoute<'a>,
    /// Step 1 buys the selected number through the purchase alone.
    pub purchase: PurchasePorts<'a>,
    pub server: &'a VapiServer,
}

fn spec(a: &Assistant, server: &VapiServer) -> AssistantSpec {
    AssistantSpec {
        local_id: a.id,
        name: a.name.as_str().to_owned(),
        settings: a.settings.clone(),
        server_url: server.url.as_ref().map(|u| format!("{}/webhooks/vapi", u.trim_end_matches('/'))),
        server_secret: server.secret.clone(),
    }
}

/// The last delivery of an assistant's saga failed: a pending assistant fails (`retries_exhausted`:
/// it can then be deleted), a delete stays deleting with why, a settings change is recorded failed.
/// A number reserved for it and still pending with no carrier order open is failed with it (its
/// purchase is the saga's own step: no other command would settle it).
pub async fn give_up(
    store: &dyn AssistantSyncLedger,
    numbers: &dyn NumberSyncLedger,
    user: &UserId,
    id: AssistantId,
    reason: &SyncError,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let a = match store.get_assistant(user, id).await {
        Ok(a) => a,
        Err(StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e),
    };
    if let (AssistantStatus::Pending, Some(e164)) = (a.status, &a.selected_number) {
        match numbers.get_number(user, e164).await {
            Ok(n) if n.status == NumberStatus::Pending && n.carrier_order_id.is_none() && n.assistant_id == Some(id) => {
                gave_up(numbers.record_purchase_failed(user, e164, n.version, reason, now).await)?;
            }
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    match a.status {
        AssistantStatus::Pending | AssistantStatus::Deleting => {
            gave_up(store.record_assistant_failed(user, id, a.version, reason, now).await)
        }
        AssistantStatus::Active if a.sync_state == SyncState::Pending => {
            gave_up(store.record_assistant_sync(user, id, a.version, Err(reason), now).await)
        }
        _ => Ok(()),
    }
}

/// The worker side: run the assistant's saga from wherever it stands.
pub async fn sync_assistant(
    ports: SagaPorts<'_>,
    user: &UserId,
    id: AssistantId,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let SagaPorts { assistants, purchase: buying, server } = ports;
    let store = assistants.store;
    let read = || async {
        match store.get_assistant(user, id).await {
            Ok(a) => Ok(Some(a)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(SyncRetry::Store(e)),
        }
    };
    let Some(mut a) = read().await? else { return Ok(SyncOutcome::Gone) };
    // A redrive of a settings change whose last delivery gave up: back to pending, and pushed. (A
    // saga that gave up failed the assistant and freed its number: it stays failed, to be deleted.)
    if a.status == AssistantStatus::Active
        && was_given_up(a.sync_state, a.sync_error.as_ref())
        && store.reset_given_up_assistant(user, id, now).await.map_err(SyncRetry::Store)?
    {
        let Some(again) = read().await? else { return Ok(SyncOutcome::Gone) };
        a = again;
    }
    let voice_ai = assistants.voice_ai;
    match a.status {
        AssistantStatus::Failed => Ok(SyncOutcome::UpToDate),
        AssistantStatus::Deleting => {
            // Its numbers first: disconnected at Vapi and kept by their owner.
            let on: Vec<PhoneNumber> =
                store.all_numbers(user).await.map_err(SyncRetry::Store)?.into_iter().filter(|n| n.assistant_id == Some(id)).collect();
            for n in on {
                let n = store.detach_number(user, &n.e164, id, now).await.map_err(SyncRetry::Store)?;
                assistants.push(&n, final_attempt, now).await?;
            }
            if let Some(vapi_id) = &a.vapi_assistant_id {
                match voice_ai.delete_assistant(vapi_id).await {
                    Ok(()) | Err(CarrierError::NotFound) => {}
                    Err(e @ CarrierError::Transient(_)) if !final_attempt => return Err(SyncRetry::Carrier(e)),
                    Err(e) => {
                        let reason = e.failure_reason();
                        return settle(store.record_assistant_failed(user, id, a.version, &reason, now).await, SyncOutcome::Failed(reason));
                    }
                }
            }
            settle(store.purge_assistant(user, id, a.version).await, SyncOutcome::Deleted)
        }
        AssistantStatus::Active if a.sync_state == SyncState::Pending => {
            let Some(vapi_id) = &a.vapi_assistant_id else { return Ok(SyncOutcome::UpToDate) };
            match voice_ai.update_assistant(vapi_id, &spec(&a, server)).await {
                Ok(()) => settle(store.record_assistant_sync(user, id, a.version, Ok(()), now).await, SyncOutcome::Updated),
                Err(e @ CarrierError::Transient(_)) if !final_attempt => Err(SyncRetry::Carrier(e)),
                Err(e) => {
                    let reason = e.failure_reason();
                    settle(store.record_assistant_sync(user, id, a.version, Err(&reason), now).await, SyncOutcome::Failed(reason))
                }
            }
        }
        AssistantStatus::Active => {
            // A redelivery repairs a report route lost before routes were written with their id.
            if let Some(vapi_id) = &a.vapi_assistant_id {
                store.ensure_assistant_route(user, id, vapi_id).await.map_err(SyncRetry::Store)?;
            }
            Ok(SyncOutcome::UpToDate)
        }
        AssistantStatus::Pending => {
            // Step 1: the selected number, through the purchase path.
            if let Some(e164) = &a.selected_number {
                let mut n = match store.get_number(user, e164).await {
                    Ok(n) => Some(n),
                    Err(StoreError::NotFound) => None,
                    Err(e) => return Err(SyncRetry::Store(e)),
                };
                if n.as_ref().is_some_and(|n| n.status == NumberStatus::Pending) {
                    let bought = purchase(buying, user, e164, final_attempt, now).await;
                    n = store.get_number(user, e164).await.map(Some).or_else(|e| match e {
                        StoreError::NotFound => Ok(None),
                        e => Err(SyncRetry::Store(e)),
                    })?;
                    // Still pending: the purchase's own retry (or its order) decides.
                    if n.as_ref().is_some_and(|n| n.status == NumberStatus::Pending) {
                        bought?;
                    }
                }
                match n {
                    Some(n) if n.status == NumberStatus::Active => {}
                    Some(n) if n.status == NumberStatus::Pending => {
                        return Err(SyncRetry::Carrier(CarrierError::Transient("the number's purchase is still running".into())))
                    }
                    other => {
                        // Refused (the reservation is already freed), or gone: no Vapi assistant.
                        let reason = other.and_then(|n| n.failure).unwrap_or_else(|| SyncError {
                            code: "number_unavailable".into(),
                            message: "the selected number could not be bought".into(),
                        });
                        return settle(store.record_assistant_failed(user, id, a.version, &reason, now).await, SyncOutcome::Failed(reason));
                    }
                }
            }
            // Step 2: the Vapi assistant, found again after a lost answer rather than made twice.
            let vapi_id = match &a.vapi_assistant_id {
                Some(v) => {
                    store.ensure_assistant_route(user, id, v).await.map_err(SyncRetry::Store)?;
                    v.clone()
                }
                None => {
                    let made = match voice_ai.find_assistant(id).await {
                        Ok(Some(v)) => Ok(v),
                        Ok(None) => voice_ai.create_assistant(&spec(&a, server)).await,
                        Err(e) => Err(e),
                    };
                    match made {
                        Ok(v) => store.record_vapi_assistant(user, id, &v).await.map_err(SyncRetry::Store)?,
                        Err(e @ CarrierError::Transient(_)) if !final_attempt => return Err(SyncRetry::Carrier(e)),
                        Err(e) => {
                            let reason = e.failure_reason();
                            // Compensation: the number bought for it goes back, in the same
                            // transaction as the failure it answers (Vapi's reason kept).
                            let recorded = match &a.selected_number {
                                Some(e164) => store.compensate(user, id, a.version, e164, &reason, now).await,
                                None => store.record_assistant_failed(user, id, a.version, &reason, now).await,
                            };
                            return settle(recorded, SyncOutcome::Failed(reason));
                        }
                    }
                }
            };
            tracing::info!(assistant = %id, vapi_assistant = %vapi_id, "assistant at Vapi");
            // Step 3: the number imported into Vapi, attached; a refusal stays on the number.
            if let Some(e164) = &a.selected_number {
                let n = store.get_number(user, e164).await.map_err(SyncRetry::Store)?;
                assistants.push(&n, final_attempt, now).await?;
            }
            settle(store.record_assistant_active(user, id, a.version, now).await, SyncOutcome::Created)
        }
    }
}
