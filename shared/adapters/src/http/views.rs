//! What the API shows: the JSON shapes of resources, built from domain types.

use patchbay_domain::numbers::{AvailableNumber, NumberStatus, PhoneNumber};
use patchbay_domain::profiles::MessagingProfile;
use patchbay_domain::{CarrierName, Page, SyncError, SyncState};
use serde::Serialize;

use crate::wire::rfc3339;

#[derive(Debug, Serialize)]
pub struct SyncErrorView {
    pub code: String,
    pub message: String,
}

impl From<&SyncError> for SyncErrorView {
    fn from(e: &SyncError) -> Self {
        Self { code: e.code.clone(), message: e.message.clone() }
    }
}

#[derive(Debug, Serialize)]
pub struct ProfileView {
    pub id: String,
    pub name: String,
    pub whitelisted_destinations: Vec<String>,
    pub active: bool,
    pub sync_state: SyncState,
    pub sync_error: Option<SyncErrorView>,
    pub carrier_profile_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&MessagingProfile> for ProfileView {
    fn from(p: &MessagingProfile) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.as_str().to_owned(),
            whitelisted_destinations: p.whitelisted_destinations.as_strings(),
            active: p.active,
            sync_state: p.sync_state,
            sync_error: p.sync_error.as_ref().map(|e| SyncErrorView { code: e.code.clone(), message: e.message.clone() }),
            carrier_profile_id: p.carrier_profile_id.as_ref().map(|c| c.as_str().to_owned()),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PageView<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<'a, D: 'a, T: From<&'a D>> From<&'a Page<D>> for PageView<T> {
    fn from(p: &'a Page<D>) -> Self {
        Self { data: p.data.iter().map(T::from).collect(), next_cursor: p.next_cursor.as_ref().map(|c| c.as_str().to_owned()) }
    }
}

#[derive(Debug, Serialize)]
pub struct NumberView {
    pub phone_number: String,
    pub carrier: CarrierName,
    pub status: NumberStatus,
    pub failure: Option<SyncErrorView>,
    pub messaging_profile_id: Option<String>,
    /// Whether the carrier has the number on `messaging_profile_id` yet.
    pub profile_sync: SyncState,
    pub profile_sync_error: Option<SyncErrorView>,
    /// The SIP connection the number's calls go to, if any.
    pub sip_connection_id: Option<String>,
    /// The voice-AI assistant the number's calls go to, if any, and whether Vapi has it so yet.
    pub assistant_id: Option<String>,
    pub assistant_sync: Option<SyncState>,
    pub assistant_sync_error: Option<SyncErrorView>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&PhoneNumber> for NumberView {
    fn from(n: &PhoneNumber) -> Self {
        Self {
            phone_number: n.e164.to_string(),
            carrier: n.carrier,
            status: n.status,
            failure: n.failure.as_ref().map(|e| SyncErrorView { code: e.code.clone(), message: e.message.clone() }),
            messaging_profile_id: n.messaging_profile_id.map(|p| p.to_string()),
            profile_sync: n.profile_sync,
            profile_sync_error: n.profile_sync_error.as_ref().map(SyncErrorView::from),
            sip_connection_id: n.voice.as_ref().map(|v| v.connection_id.to_string()),
            assistant_id: n.assistant_id.map(|a| a.to_string()),
            assistant_sync: n.assistant_sync,
            assistant_sync_error: n.assistant_sync_error.as_ref().map(SyncErrorView::from),
            created_at: rfc3339(n.created_at),
            updated_at: rfc3339(n.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AvailableNumberView {
    pub phone_number: String,
    pub region: Option<String>,
    pub locality: Option<String>,
    pub sms: bool,
    pub voice: bool,
}

impl From<&AvailableNumber> for AvailableNumberView {
    fn from(a: &AvailableNumber) -> Self {
        Self {
            phone_number: a.phone_number.to_string(),
            region: a.region.clone(),
            locality: a.locality.clone(),
            sms: a.sms,
            voice: a.voice,
        }
    }
}

/// A profile's page: the profile, the numbers on it, and the user's active numbers on no profile.
#[derive(Debug, Serialize)]
pub struct ProfilePageView {
    #[serde(flatten)]
    pub profile: ProfileView,
    pub assigned_numbers: Vec<NumberView>,
    pub available_numbers: Vec<NumberView>,
}

impl ProfilePageView {
    pub fn new(p: &MessagingProfile, numbers: &[PhoneNumber]) -> Self {
        Self {
            profile: ProfileView::from(p),
            assigned_numbers: numbers.iter().filter(|n| n.messaging_profile_id == Some(p.id)).map(NumberView::from).collect(),
            available_numbers: numbers
                .iter()
                .filter(|n| n.messaging_profile_id.is_none() && n.status == NumberStatus::Active)
                .map(NumberView::from)
                .collect(),
        }
    }
}
