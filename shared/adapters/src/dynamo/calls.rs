//! Calls and the dashboard's counters. A call item is merged from its events (version-guarded; a
//! collision reads again), and the counters move by what the event changed, in the same transaction
//! as the event's once-only guard: a duplicated or reordered event counts once. Counters are items
//! per user and UTC day (and per assistant and day), so a range is one Query.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use patchbay_domain::calls::{contribution_moves, Call, CallLedger, CallOutcome, CallReader, CallSource, CallUpdate, Counters, StatsRow};
use patchbay_domain::{AssistantId, ConnectionId, Cursor, Limit, Page, StoreError, UserId, E164};
use time::{Date, OffsetDateTime};

use super::errors::{Role, TxFailure};
use super::items::{CallItem, NumberItem, NumberOwnerItem, RouteItem, StatsItem};
use super::keys::{Key, STATS_PREFIX};
use super::stats::day_of;
use super::table::{backoff, from_item, s, to_item, DynamoStore, Item, Tx, RACE_ATTEMPTS, UNCONDITIONAL};

/// How long a call event's once-only guard is kept.
const CALL_EVENT_TTL_SECS: i64 = 7 * 24 * 3600;

fn call_from(item: Item) -> Result<Call, StoreError> {
    from_item::<CallItem>(item)?.try_into()
}

impl DynamoStore {
    /// A provider-to-user route put on its own (idempotent): a redelivered sync puts it again, so
    /// that a route lost to an older version of the code comes back.
    pub(super) async fn put_route(&self, key: Key, user: &UserId, resource_id: &str) -> Result<(), StoreError> {
        let item = route_item(key, user, resource_id)?;
        self.put_item(item, UNCONDITIONAL).await.map_err(|e| match e {
            super::errors::WriteFailure::Other(e) => e,
            super::errors::WriteFailure::ConditionFailed => StoreError::Corrupt("an unconditional put was refused".into()),
        })
    }

    /// A route's put, for the transaction that records the provider's id (`Role::ProviderRoute`):
    /// refused only if the provider's id already routes to another user.
    pub(super) fn route_put(&self, key: Key, user: &UserId, resource_id: &str) -> Result<TransactWriteItem, StoreError> {
        self.put(route_item(key, user, resource_id)?, "attribute_not_exists(pk) OR user_id = :u", &[], vec![(":u", s(user.to_string()))])
    }

    /// A route's delete, for the transaction that purges its resource (`Role::ProviderRoute`).
    pub(super) fn route_delete(&self, key: &Key, user: &UserId) -> Result<TransactWriteItem, StoreError> {
        self.delete(key, "attribute_not_exists(pk) OR user_id = :u", &[], vec![(":u", s(user.to_string()))])
    }
}

fn route_item(key: Key, user: &UserId, resource_id: &str) -> Result<Item, StoreError> {
    to_item(&RouteItem { pk: key.pk, sk: key.sk, user_id: user.to_string(), resource_id: resource_id.to_owned(), name: None })
}

#[async_trait]
impl CallLedger for DynamoStore {
    async fn apply_call_event(
        &self,
        user: &UserId,
        call_id: &str,
        source: CallSource,
        event: (&str, &str),
        update: &CallUpdate,
        now: OffsetDateTime,
    ) -> Result<CallOutcome, StoreError> {
        let key = Key::call(user, call_id);
        for attempt in 0..RACE_ATTEMPTS {
            let before = match self.get(&key).await? {
                Some(item) => call_from(item)?,
                None => Call::new(user.clone(), call_id.to_owned(), source, now),
            };
            let after = Call { version: before.version + 1, ..before.merge(update) };
            let mut guard = Key::scoped_event(event.0, event.1).to_item();
            guard.insert("expires_at".into(), AttributeValue::N((now.unix_timestamp() + CALL_EVENT_TTL_SECS).to_string()));
            let mut tx = Tx::new().with(Role::EventGuard, self.put(guard, "attribute_not_exists(pk)", &[], vec![])?);
            let record = to_item(&CallItem::from(&after))?;
            let condition = if before.version == 0 { "attribute_not_exists(pk)" } else { "#v = :v" };
            let (names, values): (&[(&str, &str)], _) = if before.version == 0 {
                (&[], vec![])
            } else {
                (&[("#v", "version")], vec![(":v", AttributeValue::N(before.version.to_string()))])
            };
            tx.push(Role::Record, self.put(record, condition, names, values)?);
            // Reported with it: `call.ended` once, `call.updated` when an ended call learns more.
            if let Some(e) = patchbay_domain::calls::events::changed(&before, &after, now) {
                tx.push(Role::Event, self.event_put(&e)?);
            }
            for m in contribution_moves(before.contribution().as_ref(), after.contribution().as_ref()) {
                let day = format!("{:04}-{:02}-{:02}", m.day.year(), u8::from(m.day.month()), m.day.day());
                tx.push(Role::Stats, self.stats_move(user, &day, None, &m.counters)?);
                if let Some((aid, name)) = &m.assistant {
                    tx.push(Role::Stats, self.stats_move(user, &day, Some((*aid, name)), &m.counters)?);
                }
            }
            match self.transact(tx).await {
                Ok(()) => return Ok(CallOutcome::Applied),
                Err(TxFailure::Refused(c)) if c.failed(Role::EventGuard) => return Ok(CallOutcome::Duplicate),
                // Another event of the same call was folded in meanwhile: read it again.
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the call kept changing while an event was folded in".into()))
    }

    async fn connection_route(&self, carrier_connection_id: &str) -> Result<Option<(UserId, ConnectionId)>, StoreError> {
        let Some(r) = self.get_as::<RouteItem>(&Key::connection_route(carrier_connection_id)).await? else { return Ok(None) };
        let user = UserId::parse(&r.user_id).map_err(|_| StoreError::Corrupt("route user".into()))?;
        let id = ConnectionId::parse(&r.resource_id).map_err(|_| StoreError::Corrupt("route connection".into()))?;
        Ok(Some((user, id)))
    }

    async fn assistant_route(&self, vapi_assistant_id: &str) -> Result<Option<(UserId, AssistantId)>, StoreError> {
        let Some(r) = self.get_as::<RouteItem>(&Key::assistant_route(vapi_assistant_id)).await? else { return Ok(None) };
        let user = UserId::parse(&r.user_id).map_err(|_| StoreError::Corrupt("route user".into()))?;
        let id = AssistantId::parse(&r.resource_id).map_err(|_| StoreError::Corrupt("route assistant".into()))?;
        Ok(Some((user, id)))
    }

    async fn assistant_name(&self, user: &UserId, id: AssistantId) -> Result<Option<String>, StoreError> {
        Ok(self.get_as::<super::items::AssistantItem>(&Key::assistant(user, id)).await?.map(|a| a.name))
    }

    async fn number_route(&self, e164: &E164) -> Result<Option<(UserId, Option<AssistantId>)>, StoreError> {
        let Some(owner) = self.get_as::<NumberOwnerItem>(&Key::number_owner(e164)).await? else { return Ok(None) };
        let user = UserId::parse(&owner.user_id).map_err(|_| StoreError::Corrupt("owner user".into()))?;
        let assistant = match self.get_as::<NumberItem>(&Key::number(&user, e164)).await? {
            Some(n) => n.assistant_id.as_deref().and_then(|a| AssistantId::parse(a).ok()),
            None => None,
        };
        Ok(Some((user, assistant)))
    }
}

#[async_trait]
impl CallReader for DynamoStore {
    async fn list_calls(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Call>, StoreError> {
        // The cursor is the last call's id; its index position is read back from it.
        let after = after.map(|c| Key::call(user, &c.position().unwrap_or_default()));
        self.index_page(&Key::calls_index(user), after, limit, call_from, |c| c.id.clone()).await
    }

    async fn stats(&self, user: &UserId, from: Date, to: Date) -> Result<Vec<StatsRow>, StoreError> {
        let (lo, hi) = (day_of(from.midnight().assume_utc()), day_of(to.midnight().assume_utc()));
        let req = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(Key::user_pk(user)))
            .expression_attribute_values(":lo", s(format!("{STATS_PREFIX}{lo}")))
            // `~` sorts after `#`: the last day's assistant rows are inside the range.
            .expression_attribute_values(":hi", s(format!("{STATS_PREFIX}{hi}~")))
            .consistent_read(true);
        let mut rows = Vec::new();
        let mut start = None;
        loop {
            let out = self.read(|| req.clone().set_exclusive_start_key(start.clone()).send()).await?;
            for item in out.items.unwrap_or_default() {
                let i: StatsItem = from_item(item)?;
                let fmt = time::macros::format_description!("[year]-[month]-[day]");
                let day = Date::parse(&i.day, &fmt).map_err(|_| StoreError::Corrupt("stats day".into()))?;
                let assistant = match &i.assistant_id {
                    Some(a) => Some((
                        AssistantId::parse(a).map_err(|_| StoreError::Corrupt("stats assistant".into()))?,
                        i.assistant_name.clone().unwrap_or_default(),
                    )),
                    None => None,
                };
                rows.push(StatsRow {
                    day,
                    assistant,
                    counters: Counters {
                        messages_sent: i.messages_sent,
                        messages_received: i.messages_received,
                        messages_delivered: i.messages_delivered,
                        messages_failed: i.messages_failed,
                        calls: i.calls,
                        call_seconds: i.call_seconds,
                        cost_micros: i.cost_micros,
                    },
                });
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(rows);
            }
        }
    }
}
