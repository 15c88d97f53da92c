//! Assistants: what the assistants function and the number connection route call.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::kernel::error::{Conflict, StoreError};
use crate::kernel::ids::{AssistantId, IdempotencyKey, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;
use crate::kernel::provider::{CarrierName, Created};
use crate::kernel::sync::SyncState;
use crate::numbers::model::PhoneNumber;
use crate::numbers::ops::Carriers;
use crate::voice_ai::model::{Assistant, AssistantName, AssistantPatch, AssistantSettings};
use crate::voice_ai::ports::{AssistantWriter, VoiceAi};

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

pub struct Assistants<'a> {
    pub store: &'a dyn AssistantWriter,
    pub carriers: &'a Carriers,
}

impl Assistants<'_> {
    /// Create an assistant, its selected number's reservation and its saga (an outbox item) in one
    /// transaction; the worker runs the saga. A keyless retry that finds this same request's pending
    /// assistant answers it.
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
    ) -> Result<Created<AssistantPage>, AssistantError> {
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
        // A new assistant is answered as written (the worker may have moved it on already); a
        // replay answers it as it is now.
        Ok(match created {
            Created::New(a) => Created::New(AssistantPage { assistant: a, numbers: reserve.into_iter().collect() }),
            Created::Replayed(a) => Created::Replayed(self.get(user, a.id).await?),
        })
    }

    pub async fn get(&self, user: &UserId, id: AssistantId) -> Result<AssistantPage, AssistantError> {
        let assistant = self.store.get_assistant(user, id).await?;
        Ok(AssistantPage { numbers: self.connected(user, id).await?, assistant })
    }

    /// The user's numbers connected to the assistant.
    async fn connected(&self, user: &UserId, id: AssistantId) -> Result<Vec<PhoneNumber>, AssistantError> {
        Ok(self.store.all_numbers(user).await?.into_iter().filter(|n| n.assistant_id == Some(id)).collect())
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

    /// Change its settings and queue them for Vapi: `sync_state: pending` as written.
    pub async fn update(
        &self,
        user: &UserId,
        id: AssistantId,
        patch: &AssistantPatch,
        now: OffsetDateTime,
    ) -> Result<AssistantPage, AssistantError> {
        let assistant = self.store.update_assistant(user, id, patch, now).await?;
        // Answered from the write itself, never read back: the worker may have synced it already.
        Ok(AssistantPage { numbers: self.connected(user, id).await?, assistant })
    }

    pub async fn delete(&self, user: &UserId, id: AssistantId, now: OffsetDateTime) -> Result<Assistant, AssistantError> {
        Ok(self.store.mark_assistant_deleting(user, id, now).await?)
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
        self.store.connect_number(user, e164, assistant, now).await.map_err(|e| match e {
            StoreError::NotFound => AssistantError::NumberNotFound,
            other => other.into(),
        })
    }
}

/// The voice AI this deployment uses.
pub type VoiceAiClient = Arc<dyn VoiceAi>;
