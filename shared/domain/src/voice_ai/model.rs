//! Voice AI: Vapi assistants of a user, created by a saga that buys an optional selected number
//! (reserved at request time, bought only then), creates the assistant and imports the number into
//! Vapi attached to it; and the user's numbers connected to assistants.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::kernel::error::ValidationError;
use crate::kernel::ids::{AssistantId, UserId};
use crate::kernel::phone::E164;
use crate::kernel::provider::CarrierName;
use crate::kernel::sync::{SyncError, SyncState};

/// An assistant's name: 1 to 40 characters (Vapi's limit), trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssistantName(String);

impl AssistantName {
    pub const MAX_CHARS: usize = 40;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        crate::kernel::text::display_name(raw, Self::MAX_CHARS).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A provider and one of its names (`model: {provider, model}`, `voice: {provider, voice_id}`):
/// 1 to 64 visible characters each; the provider (Vapi) decides whether it knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderChoice {
    pub provider: String,
    pub name: String,
}

impl ProviderChoice {
    pub fn parse(field: &str, provider: &str, name_field: &str, name: &str) -> Result<Self, ValidationError> {
        let ok = |s: &str| (1..=64).contains(&s.chars().count()) && s.chars().all(|c| c.is_ascii_graphic());
        if !ok(provider) {
            return Err(ValidationError::new(format!("{field}.provider"), "invalid_provider", "must be 1 to 64 visible ASCII characters"));
        }
        if !ok(name) {
            return Err(ValidationError::new(format!("{field}.{name_field}"), "invalid_name", "must be 1 to 64 visible ASCII characters"));
        }
        Ok(Self { provider: provider.to_owned(), name: name.to_owned() })
    }
}

/// What an assistant says and how.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssistantSettings {
    pub first_message: Option<String>,
    pub system_prompt: Option<String>,
    pub model: Option<ProviderChoice>,
    pub voice: Option<ProviderChoice>,
}

/// Where an assistant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssistantStatus {
    /// The saga runs: the selected number is reserved (being bought), the Vapi assistant not yet made.
    Pending,
    /// At Vapi, answering calls.
    Active,
    /// The saga ended for good (`failure` says why); nothing is left at a provider.
    Failed,
    /// Deleted by the user: its numbers are disconnected (and kept), then the Vapi assistant goes.
    Deleting,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assistant {
    pub user_id: UserId,
    pub id: AssistantId,
    pub name: AssistantName,
    pub settings: AssistantSettings,
    pub status: AssistantStatus,
    pub failure: Option<SyncError>,
    /// A settings change waiting for Vapi (`pending`), done (`synced`) or refused (`failed`).
    pub sync_state: SyncState,
    pub sync_error: Option<SyncError>,
    pub vapi_assistant_id: Option<String>,
    /// The number picked in the form: reserved with the assistant, bought by the saga.
    pub selected_number: Option<E164>,
    pub carrier: CarrierName,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Assistant {
    pub fn new(
        user_id: UserId,
        name: AssistantName,
        settings: AssistantSettings,
        selected_number: Option<E164>,
        carrier: CarrierName,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            user_id,
            id: AssistantId::new_v7(),
            name,
            settings,
            status: AssistantStatus::Pending,
            failure: None,
            sync_state: SyncState::Pending,
            sync_error: None,
            vapi_assistant_id: None,
            selected_number,
            carrier,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// The request fingerprint for `Idempotency-Key` replays.
    pub fn fingerprint(&self) -> String {
        let s = &self.settings;
        format!(
            "assistant\n{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{}",
            self.name.as_str(),
            s.first_message,
            s.system_prompt,
            s.model,
            s.voice,
            self.selected_number.as_ref().map(E164::as_str),
            self.carrier
        )
    }
}

impl Assistant {
    /// As a settings change leaves it: the patch applied, its sync pending at the next version.
    pub fn patched(mut self, patch: &AssistantPatch, now: OffsetDateTime) -> Self {
        if let Some(name) = &patch.name {
            self.name = name.clone();
        }
        let s = &mut self.settings;
        if let Some(v) = &patch.first_message {
            s.first_message = Some(v.clone());
        }
        if let Some(v) = &patch.system_prompt {
            s.system_prompt = Some(v.clone());
        }
        if let Some(v) = &patch.model {
            s.model = Some(v.clone());
        }
        if let Some(v) = &patch.voice {
            s.voice = Some(v.clone());
        }
        self.sync_state = SyncState::Pending;
        self.sync_error = None;
        self.version += 1;
        self.updated_at = now;
        self
    }
}

/// A settings change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssistantPatch {
    pub name: Option<AssistantName>,
    pub first_message: Option<String>,
    pub system_prompt: Option<String>,
    pub model: Option<ProviderChoice>,
    pub voice: Option<ProviderChoice>,
}

/// What Vapi is asked to hold for an assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssistantSpec {
    pub local_id: AssistantId,
    pub name: String,
    pub settings: AssistantSettings,
    /// `{PATCHBAY_PUBLIC_URL}/webhooks/vapi`, where call reports go.
    pub server_url: Option<String>,
    /// Sent back by Vapi in `X-Vapi-Secret` so the receiver can verify it.
    pub server_secret: Option<String>,
}

/// How a number is imported into Vapi: the carrier's credentials Vapi uses to route its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberImport {
    pub e164: E164,
    pub carrier: CarrierName,
    pub assistant_id: String,
}
