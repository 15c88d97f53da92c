//! Call items, the dashboard's counter items, and the provider-to-user routes call events are found by.

use patchbay_domain::calls::{Call, CallSource, CallUpdate};
use patchbay_domain::{AssistantId, ConnectionId, StoreError, UserId, E164};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::dynamo::keys::Key;
use crate::wire::rfc3339;

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
            // When the call started, as a key that sorts as the time does: the list is newest first.
            gsi1sk: format!("{}#{}", crate::wire::sortable(c.started()), c.id),
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
