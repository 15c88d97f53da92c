//! Assistants: what the assistants function, the number connection route and the worker call. The
//! create is a saga the worker runs one idempotent step at a time, resumable from any redelivery:
//! buy the selected number (the purchase path: never twice, a lost answer adopted) → create the Vapi
//! assistant (a lost answer found by its metadata) → import the number into Vapi attached to it →
//! `active`. A refused purchase fails it with the reservation freed; a refused assistant releases
//! the bought number; a refused attach leaves the assistant active and the number's
//! `assistant_sync: failed`, repaired by connecting it again.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::number_ops::{sync_number, Carriers, NumberPorts};
use crate::ports::{AssistantSyncLedger, AssistantWriter, CarrierError, Created, QueueError, VoiceAi, WorkQueue};
use crate::profiles::{settle, SyncOutcome, SyncRetry};
use crate::voice_ai::{
    Assistant, AssistantId, AssistantName, AssistantPatch, AssistantSettings, AssistantSpec, AssistantStatus, NumberImport,
};
use crate::{
    CarrierName, CommandEnvelope, Conflict, Cursor, IdempotencyKey, Limit, NumberStatus, Page, PhoneNumber, StoreError, SyncError,
    SyncState, UserId, E164,
};

/// Why an assistants request did not do what was asked. Each variant decides one status.
#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    #[error("assistant not found")]
    NotFound,
    #[error("phone number not found")]
    NumberNotFound,
    #[error("conflict: {0}")]
    Conflict(Conflict),
    #[error("no credentials for {0}")]
    CarrierNotConfigured(CarrierName),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<StoreError> for AssistantError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AssistantError::NotFound,
            StoreError::Conflict(c) => AssistantError::Conflict(c),
            other => AssistantError::Store(other),
        }
    }
}

/// Where Vapi sends call reports, and the secret it sends back.
#[derive(Debug, Clone, Default)]
pub struct VapiServer {
    pub url: Option<String>,
    pub secret: Option<String>,
}

/// An assistant with the numbers connected to it.
#[derive(Debug, Clone)]
pub struct AssistantPage {
    pub assistant: Assistant,
    pub numbers: Vec<PhoneNumber>,
}

fn saga_command(a: &Assistant) -> CommandEnvelope {
    CommandEnvelope::sync_assistant(a.user_id.clone(), a.id, a.version)
}

pub struct Assistants<'a> {
    pub store: &'a dyn AssistantWriter,
    pub queue: &'a dyn WorkQueue,
    pub carriers: &'a Carriers,
}

impl Assistants<'_> {
    /// Create an assistant (and reserve its selected number), then hand the saga to the worker.
    #[allow(clippy::too_many_arguments)] // the request's parts
    pub async fn create(
        &self,
        user: &UserId,
        name: AssistantName,
        settings: AssistantSettings,
        selected: Option<E164>,
        carrier: Option<CarrierName>,
        key: Option<&IdempotencyKey>,
        now: OffsetDateTime,
    ) -> Result<Created<Assistant>, AssistantError> {
        let (carrier, _) = self.carriers.pick(carrier).map_err(AssistantError::CarrierNotConfigured)?;
        let assistant = Assistant::new(user.clone(), name, settings, selected.clone(), carrier, now);
        let reserve = selected.map(|e164| {
            let mut n = PhoneNumber::new_purchase(user.clone(), e164, carrier, now);
            n.assistant_id = Some(assistant.id);
            n.assistant_sync = Some(SyncState::Pending);
            n
        });
        let fingerprint = assistant.fingerprint();
        let created = self.store.create_assistant(&assistant, reserve.as_ref(), key.map(|k| (k, fingerprint.as_str()))).await?;
        let a = match &created {
            Created::New(a) | Created::Replayed(a) => a,
        };
        if a.status == AssistantStatus::Pending {
            self.queue.enqueue(&saga_command(a)).await?;
        }
        Ok(created)
    }

    pub async fn get(&self, user: &UserId, id: AssistantId) -> Result<AssistantPage, AssistantError> {
        let assistant = self.store.get_assistant(user, id).await?;
        let numbers = self.store.all_numbers(user).await?.into_iter().filter(|n| n.assistant_id == Some(id)).collect();
        Ok(AssistantPage { assistant, numbers })
    }

    pub async fn list(&self, user: &UserId, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<AssistantPage>, AssistantError> {
        let p = self.store.list_assistants(user, cursor, limit).await?;
        let numbers = if p.data.is_empty() { Vec::new() } else { self.store.all_numbers(user).await? };
        Ok(Page {
            data: p
                .data
                .into_iter()
                .map(|a| {
                    let on = numbers.iter().filter(|n| n.assistant_id == Some(a.id)).cloned().collect();
                    AssistantPage { assistant: a, numbers: on }
                })
                .collect(),
            next_cursor: p.next_cursor,
        })
    }

    pub async fn update(
        &self,
        user: &UserId,
        id: AssistantId,
        patch: &AssistantPatch,
        now: OffsetDateTime,
    ) -> Result<Assistant, AssistantError> {
        let a = self.store.update_assistant(user, id, patch, now).await?;
        self.queue.enqueue(&saga_command(&a)).await?;
        Ok(a)
    }

    pub async fn delete(&self, user: &UserId, id: AssistantId, now: OffsetDateTime) -> Result<Assistant, AssistantError> {
        let a = self.store.mark_assistant_deleting(user, id, now).await?;
        self.queue.enqueue(&saga_command(&a)).await?;
        Ok(a)
    }

    /// Connect a number to one of the caller's assistants, or disconnect it (`None`); Vapi follows.
    pub async fn connect(
        &self,
        user: &UserId,
        e164: &E164,
        assistant: Option<AssistantId>,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, AssistantError> {
        if let Some(id) = assistant {
            self.store.get_assistant(user, id).await?;
        }
        let n = self.store.connect_number(user, e164, assistant, now).await.map_err(|e| match e {
            StoreError::NotFound => AssistantError::NumberNotFound,
            other => other.into(),
        })?;
        self.queue.enqueue(&CommandEnvelope::sync_number(user.clone(), e164.clone(), n.version)).await?;
        Ok(n)
    }
}

/// What the number sync needs to put a number on its assistant at Vapi.
#[derive(Clone, Copy)]
pub struct AssistantPorts<'a> {
    pub store: &'a dyn AssistantSyncLedger,
    pub voice_ai: &'a dyn VoiceAi,
}

/// The worker side (a step of the number's sync): Vapi has the number attached to the assistant its
/// record names (imported on first connection), or not imported at all.
pub async fn assistant_step(
    ports: AssistantPorts<'_>,
    n: &PhoneNumber,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let AssistantPorts { store, voice_ai } = ports;
    if n.assistant_sync != Some(SyncState::Pending) {
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
        (None, None) => Ok(None),
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

/// Everything the assistant saga touches.
#[derive(Clone, Copy)]
pub struct SagaPorts<'a> {
    pub assistants: AssistantPorts<'a>,
    pub numbers: NumberPorts<'a>,
    pub queue: &'a dyn WorkQueue,
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

/// The worker side: run the assistant's saga from wherever it stands.
pub async fn sync_assistant(
    ports: SagaPorts<'_>,
    user: &UserId,
    id: AssistantId,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let SagaPorts { assistants, numbers, queue, server } = ports;
    let store = assistants.store;
    let a = match store.get_assistant(user, id).await {
        Ok(a) => a,
        Err(StoreError::NotFound) => return Ok(SyncOutcome::Gone),
        Err(e) => return Err(SyncRetry::Store(e)),
    };
    let voice_ai = assistants.voice_ai;
    match a.status {
        AssistantStatus::Failed => Ok(SyncOutcome::UpToDate),
        AssistantStatus::Deleting => {
            // Its numbers first: disconnected at Vapi and kept by their owner.
            let on: Vec<PhoneNumber> =
                store.all_numbers(user).await.map_err(SyncRetry::Store)?.into_iter().filter(|n| n.assistant_id == Some(id)).collect();
            for n in on {
                let n = store.detach_number(user, &n.e164, id, now).await.map_err(SyncRetry::Store)?;
                assistant_step(assistants, &n, final_attempt, now).await?;
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
        AssistantStatus::Active => Ok(SyncOutcome::UpToDate),
        AssistantStatus::Pending => {
            // Step 1: the selected number, through the purchase path.
            if let Some(e164) = &a.selected_number {
                let mut n = match store.get_number(user, e164).await {
                    Ok(n) => Some(n),
                    Err(StoreError::NotFound) => None,
                    Err(e) => return Err(SyncRetry::Store(e)),
                };
                if n.as_ref().is_some_and(|n| n.status == NumberStatus::Pending) {
                    let bought = sync_number(numbers, user, e164, final_attempt, now).await;
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
                Some(v) => v.clone(),
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
                            // Compensation: the number bought for it goes back.
                            if let Some(e164) = &a.selected_number {
                                let released = store.release_reserved(user, e164, now).await.map_err(SyncRetry::Store)?;
                                queue
                                    .enqueue(&CommandEnvelope::sync_number(user.clone(), e164.clone(), released.version))
                                    .await
                                    .map_err(|q| SyncRetry::Carrier(CarrierError::Transient(q.to_string())))?;
                            }
                            let reason = e.failure_reason();
                            return settle(
                                store.record_assistant_failed(user, id, a.version, &reason, now).await,
                                SyncOutcome::Failed(reason),
                            );
                        }
                    }
                }
            };
            tracing::info!(assistant = %id, vapi_assistant = %vapi_id, "assistant at Vapi");
            // Step 3: the number imported into Vapi, attached; a refusal stays on the number.
            if let Some(e164) = &a.selected_number {
                let n = store.get_number(user, e164).await.map_err(SyncRetry::Store)?;
                assistant_step(assistants, &n, final_attempt, now).await?;
            }
            settle(store.record_assistant_active(user, id, a.version, now).await, SyncOutcome::Created)
        }
    }
}

/// The voice AI this deployment uses.
pub type VoiceAiClient = Arc<dyn VoiceAi>;
