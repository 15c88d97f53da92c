//! What assistants need from outside: the store and the voice AI (Vapi, or the sandbox).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::kernel::error::StoreError;
use crate::kernel::ids::{AssistantId, IdempotencyKey, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;
use crate::kernel::provider::{CarrierError, CarrierName, Created};
use crate::kernel::sync::SyncError;
use crate::numbers::model::PhoneNumber;
use crate::numbers::ports::NumberReader;
use crate::voice_ai::model::{Assistant, AssistantPatch, AssistantSpec, NumberImport};

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
    /// Put a new assistant, in one transaction with, for a selected number, its reservation (the
    /// number's global owner guard, `attribute_not_exists`: `Conflict(NumberUnavailable)` /
    /// `Conflict(NumberAlreadyOwned)`, and its pending record, connected to the assistant: a number is
    /// created here or by a purchase, with the same owner guard) and, with a key, the key's guard.
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
    /// transaction of two items: the number's record (its assistant side, `assistant_sync` pending;
    /// on no SIP connection, since a number's calls go to one place: `Conflict(NumberVoiceInUse)`) and a
    /// condition check on the assistant (it exists and is active).
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
    /// The assistant's report route put again (idempotent): a redelivered saga that finds the Vapi
    /// id stored repairs a route lost before routes were written with their id.
    async fn ensure_assistant_route(&self, user: &UserId, id: AssistantId, vapi_id: &str) -> Result<(), StoreError>;
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
    /// A redrive: an active assistant whose settings change gave up goes back to `pending`; false
    /// when it was not in that state.
    async fn reset_given_up_assistant(&self, user: &UserId, id: AssistantId, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Disconnect a number from a deleting assistant (kept by its owner), with the number's sync (it
    /// takes the number off the assistant at Vapi) in the same transaction: a saga that stops after
    /// this leaves the Vapi side to that command, never to a list it can no longer rebuild.
    async fn detach_number(
        &self,
        user: &UserId,
        e164: &E164,
        assistant: AssistantId,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError>;
    /// Compensation, one transaction: the number the saga bought for an assistant Vapi refused goes
    /// to `releasing` (as `NumberWriter::mark_releasing` moves it, its release command with it) and
    /// the assistant (still pending at `version`) to `failed` with Vapi's reason.
    async fn compensate(
        &self,
        user: &UserId,
        id: AssistantId,
        version: u64,
        e164: &E164,
        reason: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
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
    async fn list_assistants(&self) -> Result<Vec<ListedAssistant>, CarrierError> {
        Err(CarrierError::NotConfigured(format!("{} cannot list assistants", self.name())))
    }
    /// Every number imported into the account (the reconciler).
    async fn list_numbers(&self) -> Result<Vec<ListedVoiceNumber>, CarrierError> {
        Err(CarrierError::NotConfigured(format!("{} cannot list numbers", self.name())))
    }
}

/// An assistant as the voice AI lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAssistant {
    pub id: String,
    pub name: String,
    /// `metadata.patchbay_assistant_id`: set on every assistant Patchbay creates.
    pub patchbay_id: Option<String>,
}

/// A number imported into the voice AI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVoiceNumber {
    pub id: String,
    pub e164: String,
    pub assistant_id: Option<String>,
}
