//! Assistant items.

use patchbay_domain::reconcile::Kind;
use patchbay_domain::voice_ai::{Assistant, AssistantName, AssistantSettings, AssistantStatus, ProviderChoice};
use patchbay_domain::{AssistantId, CarrierName, StoreError, SyncError, SyncState, UserId, E164};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::dynamo::keys::Key;
use crate::wire::rfc3339;

/// A voice-AI assistant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssistantItem {
    pub pk: String,
    pub sk: String,
    /// The provider index (GSI2): where the reconciler finds this record without a Scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    pub id: String,
    pub user_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ProviderChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<ProviderChoice>,
    pub status: AssistantStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<SyncError>,
    pub sync_state: SyncState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_error: Option<SyncError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vapi_assistant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_number: Option<String>,
    pub carrier: CarrierName,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Assistant> for AssistantItem {
    fn from(a: &Assistant) -> Self {
        let key = Key::assistant(&a.user_id, a.id);
        Self {
            pk: key.pk,
            sk: key.sk,
            gsi2pk: Some(Key::provider_index(Kind::Assistant, None)),
            gsi2sk: Some(Key::provider_position(&a.user_id, &a.id.to_string())),
            id: a.id.to_string(),
            user_id: a.user_id.to_string(),
            name: a.name.as_str().to_owned(),
            first_message: a.settings.first_message.clone(),
            system_prompt: a.settings.system_prompt.clone(),
            model: a.settings.model.clone(),
            voice: a.settings.voice.clone(),
            status: a.status,
            failure: a.failure.clone(),
            sync_state: a.sync_state,
            sync_error: a.sync_error.clone(),
            vapi_assistant_id: a.vapi_assistant_id.clone(),
            selected_number: a.selected_number.as_ref().map(|e| e.to_string()),
            carrier: a.carrier,
            version: a.version,
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

impl TryFrom<AssistantItem> for Assistant {
    type Error = StoreError;
    fn try_from(i: AssistantItem) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("assistant item {}: {what}", i.sk));
        let time = |s: &str| OffsetDateTime::parse(s, &Rfc3339).map_err(|_| corrupt("timestamp"));
        Ok(Assistant {
            user_id: UserId::parse(&i.user_id).map_err(|_| corrupt("user_id"))?,
            id: AssistantId::parse(&i.id).map_err(|_| corrupt("id"))?,
            name: AssistantName::parse(&i.name).map_err(|_| corrupt("name"))?,
            settings: AssistantSettings {
                first_message: i.first_message.clone(),
                system_prompt: i.system_prompt.clone(),
                model: i.model.clone(),
                voice: i.voice.clone(),
            },
            status: i.status,
            failure: i.failure.clone(),
            sync_state: i.sync_state,
            sync_error: i.sync_error.clone(),
            vapi_assistant_id: i.vapi_assistant_id.clone(),
            selected_number: match &i.selected_number {
                Some(e) => Some(E164::stored(e).map_err(|_| corrupt("selected_number"))?),
                None => None,
            },
            carrier: i.carrier,
            version: i.version,
            created_at: time(&i.created_at)?,
            updated_at: time(&i.updated_at)?,
        })
    }
}
