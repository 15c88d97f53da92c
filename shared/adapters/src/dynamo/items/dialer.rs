//! SIP connection items.

use patchbay_domain::dialer::{ConnectionName, PasswordVersion, SipConnection};
use patchbay_domain::reconcile::Kind;
use patchbay_domain::{CarrierName, ConnectionId, StoreError, SyncError, SyncState, UserId};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::dynamo::keys::Key;
use crate::wire::rfc3339;

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
    /// The secret's version id of the password in use (absent: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_version: Option<String>,
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
            password_version: c.password_version.as_ref().map(|v| v.as_str().to_owned()),
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
            password_version: i.password_version.clone().map(PasswordVersion::from_stored),
            version: i.version,
            created_at: time(&i.created_at)?,
            updated_at: time(&i.updated_at)?,
        })
    }
}
