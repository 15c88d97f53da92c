//! Messaging profile items: the profile, the per-user active pointer.

use patchbay_domain::profiles::{MessagingProfile, ProfileName, WhitelistedDestinations};
use patchbay_domain::reconcile::Kind;
use patchbay_domain::{CarrierProfileId, ProfileId, StoreError, SyncError, SyncState, UserId};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::dynamo::keys::Key;
use crate::wire::rfc3339;

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
