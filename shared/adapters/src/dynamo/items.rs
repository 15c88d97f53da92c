//! Item shapes and their mapping to domain types (serde_dynamo; no hand-built attribute maps).

use patchbay_domain::calls::{Call, CallSource, CallUpdate};
use patchbay_domain::dialer::{ConnectionName, SipConnection};
use patchbay_domain::messaging::{Contact, Conversation, Direction, Encoding, Message, MessageStatus};
use patchbay_domain::numbers::{NumberRole, NumberStatus, PhoneNumber, VoiceAssignment};
use patchbay_domain::profiles::{MessagingProfile, ProfileName, WhitelistedDestinations};
use patchbay_domain::reconcile::Kind;
use patchbay_domain::voice_ai::{Assistant, AssistantName, AssistantSettings, AssistantStatus, ProviderChoice};
use patchbay_domain::{
    AssistantId, CarrierName, CarrierProfileId, ConnectionId, ConversationId, ProfileId, StoreError, SyncError, SyncState, UserId, E164,
};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::keys::Key;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileItem {
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
    pub whitelisted_destinations: Vec<String>,
    pub active: bool,
    pub sync_state: SyncState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_error: Option<SyncError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_profile_id: Option<String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    /// How many numbers are on the profile; moved in the same transaction as each assignment, and
    /// a delete is conditioned on it being zero.
    #[serde(default)]
    pub assigned_count: u64,
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

impl From<&MessagingProfile> for ProfileItem {
    fn from(p: &MessagingProfile) -> Self {
        let key = Key::profile(&p.user_id, p.id);
        Self {
            pk: key.pk,
            sk: key.sk,
            gsi2pk: Some(Key::provider_index(Kind::Profile, None)),
            gsi2sk: Some(Key::provider_position(&p.user_id, &p.id.to_string())),
            id: p.id.to_string(),
            user_id: p.user_id.to_string(),
            name: p.name.as_str().to_owned(),
            whitelisted_destinations: p.whitelisted_destinations.as_strings(),
            active: p.active,
            sync_state: p.sync_state,
            sync_error: p.sync_error.clone(),
            carrier_profile_id: p.carrier_profile_id.as_ref().map(|c| c.as_str().to_owned()),
            version: p.version,
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
            assigned_count: 0,
        }
    }
}

impl TryFrom<ProfileItem> for MessagingProfile {
    type Error = StoreError;
    fn try_from(i: ProfileItem) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("profile item {}: {what}", i.sk));
        let time = |s: &str| OffsetDateTime::parse(s, &Rfc3339).map_err(|_| corrupt("timestamp"));
        Ok(MessagingProfile {
            id: ProfileId::parse(&i.id).map_err(|_| corrupt("id"))?,
            user_id: UserId::parse(&i.user_id).map_err(|_| corrupt("user_id"))?,
            name: ProfileName::parse(&i.name).map_err(|_| corrupt("name"))?,
            whitelisted_destinations: WhitelistedDestinations::parse(&i.whitelisted_destinations)
                .map_err(|_| corrupt("whitelisted_destinations"))?,
            active: i.active,
            sync_state: i.sync_state,
            sync_error: i.sync_error.clone(),
            carrier_profile_id: match &i.carrier_profile_id {
                Some(c) => Some(CarrierProfileId::parse(c).map_err(|_| corrupt("carrier_profile_id"))?),
                None => None,
            },
            version: i.version,
            created_at: time(&i.created_at)?,
            updated_at: time(&i.updated_at)?,
        })
    }
}

/// The per-user active pointer: which profile is active, and a version every activation bumps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivePointerItem {
    pub pk: String,
    pub sk: String,
    pub profile_id: String,
    pub version: u64,
    pub updated_at: String,
}

/// An idempotency guard: which resource a key created, and a fingerprint of the request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyItem {
    pub pk: String,
    pub sk: String,
    pub resource_id: String,
    pub fingerprint: String,
    /// TTL attribute (epoch seconds); DynamoDB removes the item some time after.
    pub expires_at: i64,
}

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

// Messaging: messages, their carrier routes, conversations and contacts.

#[derive(Debug, Serialize, Deserialize)]
pub struct MessageItem {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub text: String,
    pub segments: u32,
    pub encoding: Encoding,
    pub status: MessageStatus,
    pub carrier: CarrierName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_message_id: Option<String>,
    /// `status`'s rank: receipts are applied only if they move it forward.
    #[serde(default)]
    pub status_rank: u8,
    pub user_id: String,
    pub created_at: String,
}

/// Routes a carrier's receipts to the message: `CARRIERMSG#{carrier message id}` / `MSG`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CarrierMessageItem {
    pub pk: String,
    pub sk: String,
    pub user_id: String,
    pub conversation_id: ConversationId,
    pub message_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ConversationItem {
    pub id: ConversationId,
    pub our_number: String,
    pub contact: String,
    #[serde(default)]
    pub unread: u64,
    pub last_message_at: String,
    #[serde(default)]
    pub last_message_preview: String,
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("messaging item: {what}"))
}

fn time(s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| corrupt("timestamp"))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ContactItem {
    pub pk: String,
    pub sk: String,
    pub phone_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default)]
    pub opted_out: bool,
    pub created_at: String,
}

impl TryFrom<ContactItem> for Contact {
    type Error = StoreError;
    fn try_from(i: ContactItem) -> Result<Self, StoreError> {
        Ok(Contact {
            phone_number: E164::stored(&i.phone_number).map_err(|_| corrupt("contact"))?,
            name: i.name,
            external_id: i.external_id,
            opted_out: i.opted_out,
            created_at: time(&i.created_at)?,
        })
    }
}

impl From<&Message> for MessageItem {
    fn from(m: &Message) -> Self {
        let key = Key::message(&m.user_id, &m.conversation_id, &m.id.to_string());
        Self {
            pk: key.pk,
            sk: key.sk,
            id: m.id.to_string(),
            conversation_id: m.conversation_id.clone(),
            direction: m.direction,
            from: m.from.to_string(),
            to: m.to.to_string(),
            text: m.text.clone(),
            segments: m.segments,
            encoding: m.encoding,
            status: m.status,
            carrier: m.carrier,
            carrier_message_id: m.carrier_message_id.clone(),
            status_rank: m.status.rank(),
            user_id: m.user_id.to_string(),
            created_at: rfc3339(m.created_at),
        }
    }
}

impl TryFrom<MessageItem> for Message {
    type Error = StoreError;
    fn try_from(i: MessageItem) -> Result<Self, StoreError> {
        Ok(Message {
            id: i.id.parse().map_err(|_| corrupt("message id"))?,
            user_id: UserId::parse(&i.user_id).map_err(|_| corrupt("user_id"))?,
            conversation_id: i.conversation_id,
            direction: i.direction,
            from: E164::stored(&i.from).map_err(|_| corrupt("from"))?,
            to: E164::stored(&i.to).map_err(|_| corrupt("to"))?,
            text: i.text,
            segments: i.segments,
            encoding: i.encoding,
            status: i.status,
            carrier: i.carrier,
            carrier_message_id: i.carrier_message_id,
            created_at: time(&i.created_at)?,
        })
    }
}

impl TryFrom<ConversationItem> for Conversation {
    type Error = StoreError;
    fn try_from(i: ConversationItem) -> Result<Self, StoreError> {
        Ok(Conversation {
            id: i.id,
            our_number: E164::stored(&i.our_number).map_err(|_| corrupt("our_number"))?,
            contact: E164::stored(&i.contact).map_err(|_| corrupt("contact"))?,
            unread: i.unread,
            last_message_at: time(&i.last_message_at)?,
            last_message_preview: i.last_message_preview,
        })
    }
}

/// A user's SIP connection. No password: that lives in Secrets Manager only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionItem {
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
    pub carrier: CarrierName,
    pub active: bool,
    pub sync_state: SyncState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_error: Option<SyncError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_connection_id: Option<String>,
    pub sip_username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephony_credential_id: Option<String>,
    /// How many numbers are on it; moved in the same transaction as each assignment, and a delete is
    /// conditioned on it being zero.
    #[serde(default)]
    pub number_count: u32,
    /// The number holding the one primary slot, set and cleared in the assignment's transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_number: Option<String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&SipConnection> for ConnectionItem {
    fn from(c: &SipConnection) -> Self {
        let key = Key::connection(&c.user_id, c.id);
        Self {
            pk: key.pk,
            sk: key.sk,
            gsi2pk: Some(Key::provider_index(Kind::Connection, Some(c.carrier))),
            gsi2sk: Some(Key::provider_position(&c.user_id, &c.id.to_string())),
            id: c.id.to_string(),
            user_id: c.user_id.to_string(),
            name: c.name.as_str().to_owned(),
            carrier: c.carrier,
            active: c.active,
            sync_state: c.sync_state,
            sync_error: c.sync_error.clone(),
            carrier_connection_id: c.carrier_connection_id.clone(),
            sip_username: c.sip_username.clone(),
            telephony_credential_id: c.telephony_credential_id.clone(),
            number_count: c.number_count,
            primary_number: None,
            version: c.version,
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

impl TryFrom<ConnectionItem> for SipConnection {
    type Error = StoreError;
    fn try_from(i: ConnectionItem) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("connection item {}: {what}", i.sk));
        let time = |s: &str| OffsetDateTime::parse(s, &Rfc3339).map_err(|_| corrupt("timestamp"));
        Ok(SipConnection {
            user_id: UserId::parse(&i.user_id).map_err(|_| corrupt("user_id"))?,
            id: ConnectionId::parse(&i.id).map_err(|_| corrupt("id"))?,
            name: ConnectionName::parse(&i.name).map_err(|_| corrupt("name"))?,
            carrier: i.carrier,
            active: i.active,
            sync_state: i.sync_state,
            sync_error: i.sync_error.clone(),
            carrier_connection_id: i.carrier_connection_id.clone(),
            sip_username: i.sip_username.clone(),
            telephony_credential_id: i.telephony_credential_id.clone(),
            number_count: i.number_count,
            version: i.version,
            created_at: time(&i.created_at)?,
            updated_at: time(&i.updated_at)?,
        })
    }
}

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

/// A call, as merged from its events so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallItem {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    pub id: String,
    pub user_id: String,
    pub source: CallSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    pub ended: bool,
    pub first_seen: String,
    pub version: u64,
}

impl From<&Call> for CallItem {
    fn from(c: &Call) -> Self {
        let key = Key::call(&c.user_id, &c.id);
        let u = &c.update;
        let t = |x: Option<OffsetDateTime>| x.map(rfc3339);
        Self {
            pk: key.pk,
            sk: key.sk,
            gsi1pk: Key::calls_index(&c.user_id),
            gsi1sk: format!("{}#{}", rfc3339(c.started()), c.id),
            id: c.id.clone(),
            user_id: c.user_id.to_string(),
            source: c.source,
            assistant_id: u.assistant_id.map(|a| a.to_string()),
            assistant_name: u.assistant_name.clone(),
            connection_id: u.connection_id.map(|c| c.to_string()),
            phone_number: u.phone_number.as_ref().map(|e| e.to_string()),
            customer: u.customer.clone(),
            from: u.from.clone(),
            to: u.to.clone(),
            direction: u.direction.clone(),
            started_at: t(u.started_at),
            answered_at: t(u.answered_at),
            ended_at: t(u.ended_at),
            duration_seconds: u.duration_seconds,
            ended_reason: u.ended_reason.clone(),
            cost_micros: u.cost_micros,
            summary: u.summary.clone(),
            recording_url: u.recording_url.clone(),
            ended: u.ends,
            first_seen: rfc3339(c.first_seen),
            version: c.version,
        }
    }
}

impl TryFrom<CallItem> for Call {
    type Error = StoreError;
    fn try_from(i: CallItem) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("call item {}: {what}", i.sk));
        let time = |s: &str| OffsetDateTime::parse(s, &Rfc3339).map_err(|_| corrupt("timestamp"));
        let opt_time = |s: &Option<String>| s.as_deref().map(time).transpose();
        Ok(Call {
            user_id: UserId::parse(&i.user_id).map_err(|_| corrupt("user_id"))?,
            id: i.id.clone(),
            source: i.source,
            update: CallUpdate {
                assistant_id: i.assistant_id.as_deref().map(AssistantId::parse).transpose().map_err(|_| corrupt("assistant_id"))?,
                assistant_name: i.assistant_name.clone(),
                connection_id: i.connection_id.as_deref().map(ConnectionId::parse).transpose().map_err(|_| corrupt("connection_id"))?,
                phone_number: i.phone_number.as_deref().map(E164::stored).transpose().map_err(|_| corrupt("phone_number"))?,
                customer: i.customer.clone(),
                from: i.from.clone(),
                to: i.to.clone(),
                direction: i.direction.clone(),
                started_at: opt_time(&i.started_at)?,
                answered_at: opt_time(&i.answered_at)?,
                ended_at: opt_time(&i.ended_at)?,
                duration_seconds: i.duration_seconds,
                ended_reason: i.ended_reason.clone(),
                cost_micros: i.cost_micros,
                summary: i.summary.clone(),
                recording_url: i.recording_url.clone(),
                ends: i.ended,
            },
            first_seen: time(&i.first_seen)?,
            version: i.version,
        })
    }
}

/// A day's counters (or an assistant's day), moved with `ADD` in the events' own transactions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsItem {
    pub pk: String,
    pub sk: String,
    pub day: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_name: Option<String>,
    #[serde(default)]
    pub messages_sent: i64,
    #[serde(default)]
    pub messages_received: i64,
    #[serde(default)]
    pub messages_delivered: i64,
    #[serde(default)]
    pub messages_failed: i64,
    #[serde(default)]
    pub calls: i64,
    #[serde(default)]
    pub call_seconds: i64,
    #[serde(default)]
    pub cost_micros: i64,
}

/// A route from a provider's id to a user's resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteItem {
    pub pk: String,
    pub sk: String,
    pub user_id: String,
    pub resource_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
