//! Phone number items: the user's record and the number's global owner guard.

use patchbay_domain::numbers::{NumberRole, NumberStatus, PhoneNumber, VoiceAssignment};
use patchbay_domain::reconcile::Kind;
use patchbay_domain::{AssistantId, CarrierName, ConnectionId, ProfileId, StoreError, SyncError, SyncState, UserId, E164};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::dynamo::keys::Key;
use crate::wire::rfc3339;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NumberItem {
    pub pk: String,
    pub sk: String,
    /// The provider index (GSI2): where the reconciler finds this record without a Scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    pub phone_number: String,
    pub user_id: String,
    pub carrier: CarrierName,
    pub status: NumberStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_number_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<SyncError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_profile_id: Option<String>,
    pub profile_sync: SyncState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_sync_error: Option<SyncError>,
    /// The SIP connection the number's voice goes to, its role and whether it is offered as a caller id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_connection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_role: Option<NumberRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_sync: Option<SyncState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_sync_error: Option<SyncError>,
    /// The voice-AI assistant the number's calls go to, whether Vapi has it so, and Vapi's id for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_sync: Option<SyncState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_sync_error: Option<SyncError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vapi_phone_number_id: Option<String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&PhoneNumber> for NumberItem {
    fn from(n: &PhoneNumber) -> Self {
        let key = Key::number(&n.user_id, &n.e164);
        Self {
            pk: key.pk,
            sk: key.sk,
            gsi2pk: Some(Key::provider_index(Kind::Number, Some(n.carrier))),
            gsi2sk: Some(Key::provider_position(&n.user_id, n.e164.as_str())),
            phone_number: n.e164.to_string(),
            user_id: n.user_id.to_string(),
            carrier: n.carrier,
            status: n.status,
            carrier_number_id: n.carrier_number_id.clone(),
            carrier_order_id: n.carrier_order_id.clone(),
            failure: n.failure.clone(),
            messaging_profile_id: n.messaging_profile_id.map(|p| p.to_string()),
            profile_sync: n.profile_sync,
            profile_sync_error: n.profile_sync_error.clone(),
            sip_connection_id: n.voice.as_ref().map(|v| v.connection_id.to_string()),
            sip_role: n.voice.as_ref().map(|v| v.role),
            sip_active: n.voice.as_ref().map(|v| v.active),
            voice_sync: n.voice_sync,
            voice_sync_error: n.voice_sync_error.clone(),
            assistant_id: n.assistant_id.map(|a| a.to_string()),
            assistant_sync: n.assistant_sync,
            assistant_sync_error: n.assistant_sync_error.clone(),
            vapi_phone_number_id: n.vapi_phone_number_id.clone(),
            version: n.version,
            created_at: rfc3339(n.created_at),
            updated_at: rfc3339(n.updated_at),
        }
    }
}

impl TryFrom<NumberItem> for PhoneNumber {
    type Error = StoreError;
    fn try_from(i: NumberItem) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("number item {}: {what}", i.sk));
        let time = |s: &str| OffsetDateTime::parse(s, &Rfc3339).map_err(|_| corrupt("timestamp"));
        Ok(PhoneNumber {
            e164: E164::stored(&i.phone_number).map_err(|_| corrupt("phone_number"))?,
            user_id: UserId::parse(&i.user_id).map_err(|_| corrupt("user_id"))?,
            carrier: i.carrier,
            status: i.status,
            carrier_number_id: i.carrier_number_id.clone(),
            carrier_order_id: i.carrier_order_id.clone(),
            failure: i.failure.clone(),
            messaging_profile_id: match &i.messaging_profile_id {
                Some(p) => Some(ProfileId::parse(p).map_err(|_| corrupt("messaging_profile_id"))?),
                None => None,
            },
            profile_sync: i.profile_sync,
            profile_sync_error: i.profile_sync_error.clone(),
            voice: match (&i.sip_connection_id, i.sip_role) {
                (Some(c), Some(role)) => Some(VoiceAssignment {
                    connection_id: ConnectionId::parse(c).map_err(|_| corrupt("sip_connection_id"))?,
                    role,
                    active: i.sip_active.unwrap_or(true),
                }),
                _ => None,
            },
            voice_sync: i.voice_sync,
            voice_sync_error: i.voice_sync_error.clone(),
            assistant_id: match &i.assistant_id {
                Some(a) => Some(AssistantId::parse(a).map_err(|_| corrupt("assistant_id"))?),
                None => None,
            },
            assistant_sync: i.assistant_sync,
            assistant_sync_error: i.assistant_sync_error.clone(),
            vapi_phone_number_id: i.vapi_phone_number_id.clone(),
            version: i.version,
            created_at: time(&i.created_at)?,
            updated_at: time(&i.updated_at)?,
        })
    }
}

/// The global one-owner guard of a number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NumberOwnerItem {
    pub pk: String,
    pub sk: String,
    pub user_id: String,
    pub carrier: CarrierName,
}
