//! The event log: the user's `EVT#` items, oldest first (their ids are time-ordered), written by each
//! state change's own transaction (`DynamoStore::event_put`) and kept 30 days by TTL.

use async_trait::async_trait;
use patchbay_domain::events::{EventLog, EventPage};
use patchbay_domain::kernel::event::{Event, EventId, EventType};
use patchbay_domain::{Conflict, Limit, StoreError, UserId};
use time::OffsetDateTime;

use super::errors::{Role, TxFailure};
use super::items::EventItem;
use super::keys::{Key, EVENT_PREFIX};
use super::table::{from_item, s, DynamoStore, Tx};

#[async_trait]
impl EventLog for DynamoStore {
    async fn list_events(
        &self,
        user: &UserId,
        after: Option<&EventId>,
        event_type: Option<EventType>,
        limit: Limit,
    ) -> Result<EventPage, StoreError> {
        // Ids are all one length: `EVT#{after}~` sorts after `after` and before every later id; `EVT#~`
        // after every id (and before the partition's other items).
        let lo = match after {
            Some(a) => format!("{EVENT_PREFIX}{a}~"),
            None => EVENT_PREFIX.to_owned(),
        };
        let mut req = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(Key::user_pk(user)))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(format!("{EVENT_PREFIX}~")))
            .scan_index_forward(true)
            .limit(i32::from(limit.get()));
        if let Some(t) = event_type {
            req =
                req.filter_expression("#t = :t").expression_attribute_names("#t", "type").expression_attribute_values(":t", s(t.as_str()));
        }
        let out = self.read(|| req.clone().send()).await?;
        let data = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let i: EventItem = from_item(item)?;
                serde_json::from_str::<Event>(&i.body).map_err(|e| StoreError::Corrupt(format!("event {}: {e}", i.sk)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next_after = match out.last_evaluated_key.as_ref().and_then(|k| k.get("sk")) {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) => {
                let id = sk.strip_prefix(EVENT_PREFIX).unwrap_or_default();
                Some(EventId::parse("after", id).map_err(|_| StoreError::Corrupt(format!("event key {sk}")))?)
            }
            _ => None,
        };
        Ok(EventPage { data, next_after })
    }

    async fn events_between(&self, user: &UserId, since: OffsetDateTime, until: OffsetDateTime) -> Result<Vec<Event>, StoreError> {
        // An id begins with its time in milliseconds (12 hex digits): `EVT#evt_{since}` sorts before
        // every id of that millisecond and after, `EVT#evt_{until}` after every id before it.
        let bound = |t: OffsetDateTime| format!("{EVENT_PREFIX}evt_{:012x}", (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64);
        let req = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(Key::user_pk(user)))
            .expression_attribute_values(":lo", s(bound(since)))
            .expression_attribute_values(":hi", s(bound(until)))
            .scan_index_forward(true);
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self.read(|| req.clone().set_exclusive_start_key(start.clone()).send()).await?;
            for item in page.items.unwrap_or_default() {
                let i: EventItem = from_item(item)?;
                out.push(serde_json::from_str::<Event>(&i.body).map_err(|e| StoreError::Corrupt(format!("event {}: {e}", i.sk)))?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn put_event(&self, event: &Event) -> Result<(), StoreError> {
        self.transact(Tx::new().with(Role::Event, self.event_put(event)?)).await.map_err(|e| match e {
            TxFailure::Refused(_) => StoreError::Conflict(Conflict::AlreadyExists),
            TxFailure::Other(e) => e,
        })
    }
}
