//! What the API shows: the JSON shapes of resources, built from domain types.

use patchbay_domain::{MessagingProfile, Page, SyncState};
use serde::Serialize;

use crate::dynamo::items::rfc3339;

#[derive(Debug, Serialize)]
pub struct SyncErrorView {
    pub code: String,
    pub message: String,
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
