//! Writes: conditional single-item updates, puts and deletes, the items of a transaction, and the
//! idempotency guard.
//!
//! **A write that meets its own effect succeeded.** DynamoDB can apply a write and lose its answer
//! (a 500 or a timeout after the commit); the SDK then sends it again. A transaction is safe (the SDK
//! keeps its `ClientRequestToken`, DynamoDB answers the repeat with the first answer), a single-item
//! write is not: its repeat fails its own condition. So every conditional single-item update and put
//! stamps the item with a fresh `write_id` and asks for the item back when its condition fails
//! (`ReturnValuesOnConditionCheckFailure: ALL_OLD`): an item that carries this call's `write_id` is
//! this write, applied, and the call succeeds with that item. A conditional delete that finds no
//! item at all has its effect too (the item is gone).

use aws_sdk_dynamodb::operation::delete_item::{DeleteItemError, DeleteItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use patchbay_domain::kernel::event::Event;
use patchbay_domain::kernel::sync::RETRIES_EXHAUSTED;
use patchbay_domain::{CommandEnvelope, Conflict, IdempotencyKey, StoreError, SyncState, UserId};
use time::OffsetDateTime;

use super::{built, condition_of, to_item, with_expression, DynamoStore, Item, Names, Tx, Values, IDEMPOTENCY_TTL};
use crate::dynamo::errors::{HttpResponse, Role, TxFailure, WriteFailure};
use crate::dynamo::items::{EventItem, IdempotencyItem, OutboxItem};
use crate::dynamo::keys::Key;
use aws_sdk_dynamodb::error::SdkError;

impl DynamoStore {
    /// One conditional UpdateItem that answers the new item (recognising its own effect, see above).
    pub(crate) async fn update_item(
        &self,
        key: &Key,
        update: &str,
        condition: &str,
        names: Names<'_>,
        values: Values<'_>,
    ) -> Result<Option<Item>, WriteFailure> {
        let write_id = new_write_id();
        let update = stamped(update);
        let mut names = names.to_vec();
        names.push((WRITE_ID_NAME, WRITE_ID));
        let mut values = values;
        values.push((WRITE_ID_VALUE, AttributeValue::S(write_id.clone())));
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .update_expression(update)
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let req = with_expression(req, &names, values);
        let own = |err: &SdkError<UpdateItemError, HttpResponse>| match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(e)) => e
                .item()
                .filter(|old| carries(old, &write_id))
                .map(|old| UpdateItemOutput::builder().set_attributes(Some(old.clone())).build()),
            _ => None,
        };
        Ok(self.call_or_own(|| req.clone().send(), own).await?.attributes)
    }

    /// One conditional UpdateItem answering the item as it now is, mapped; `None` when the condition
    /// failed (the caller reads why).
    #[allow(clippy::too_many_arguments)] // an UpdateItem's parts, then the mapping
    pub(crate) async fn update_mapped<T>(
        &self,
        key: &Key,
        update: &str,
        condition: &str,
        names: Names<'_>,
        values: Values<'_>,
        map: impl Fn(Item) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self.update_item(key, update, condition, names, values).await {
            Ok(Some(item)) => map(item).map(Some),
            Ok(None) => Err(StoreError::Corrupt("update returned no item".into())),
            Err(WriteFailure::ConditionFailed) => Ok(None),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    /// A version-guarded update of one record: `Conflict(Stale)` when its condition failed and the
    /// record is there (it moved on), `NotFound` when it is gone.
    pub(crate) async fn update_guarded(
        &self,
        key: &Key,
        update: &str,
        condition: &str,
        names: Names<'_>,
        values: Values<'_>,
    ) -> Result<(), StoreError> {
        match self.update_item(key, update, condition, names, values).await {
            Ok(_) => Ok(()),
            Err(WriteFailure::ConditionFailed) => match self.get(key).await? {
                None => Err(StoreError::NotFound),
                Some(_) => Err(StoreError::Conflict(patchbay_domain::Conflict::Stale)),
            },
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    /// A redrive's reset: a sync state (`state`, with its error in `error`) that its command's last
    /// delivery recorded `failed` / `retries_exhausted` goes back to `pending`, the record's version
    /// bumped; false when it was not in that state (nothing to reset, or someone else reset it).
    pub(crate) async fn reset_exhausted(&self, key: &Key, state: &str, error: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        match self
            .update_item(
                key,
                "SET #ss = :pending, #v = #v + :one, #ua = :now REMOVE #se",
                "#ss = :failed AND #se.#code = :exhausted",
                &[("#ss", state), ("#se", error), ("#code", "code"), ("#v", "version"), ("#ua", "updated_at")],
                vec![
                    (":pending", super::attr(&SyncState::Pending)),
                    (":failed", super::attr(&SyncState::Failed)),
                    (":exhausted", AttributeValue::S(RETRIES_EXHAUSTED.to_owned())),
                    (":one", AttributeValue::N("1".into())),
                    (":now", AttributeValue::S(crate::wire::rfc3339(now))),
                ],
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(WriteFailure::ConditionFailed) => Ok(false),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    /// One PutItem; a conditional one recognises its own effect (see above).
    pub(crate) async fn put_item(&self, mut item: Item, condition: &str) -> Result<(), WriteFailure> {
        if condition_of(condition).is_none() {
            let req = self.client.put_item().table_name(&self.table).set_item(Some(item));
            return self.call(|| req.clone().send()).await.map(|_| ());
        }
        let write_id = new_write_id();
        item.insert(WRITE_ID.to_owned(), AttributeValue::S(write_id.clone()));
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let own = |err: &SdkError<PutItemError, HttpResponse>| match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(e)) => {
                e.item().filter(|old| carries(old, &write_id)).map(|_| PutItemOutput::builder().build())
            }
            _ => None,
        };
        self.call_or_own(|| req.clone().send(), own).await.map(|_| ())
    }

    /// One conditional DeleteItem. Its condition failing on an item that is not there at all is its
    /// own effect (an applied attempt whose answer was lost, or a delete that somebody else made):
    /// the item is gone, as asked.
    pub(crate) async fn delete_item(&self, key: &Key, condition: &str, names: Names<'_>, values: Values<'_>) -> Result<(), WriteFailure> {
        let req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let req = with_expression(req, names, values);
        let gone = |err: &SdkError<DeleteItemError, HttpResponse>| match err.as_service_error() {
            Some(DeleteItemError::ConditionalCheckFailedException(e)) if e.item().is_none_or(|old| old.is_empty()) => {
                Some(DeleteItemOutput::builder().build())
            }
            _ => None,
        };
        self.call_or_own(|| req.clone().send(), gone).await.map(|_| ())
    }

    /// A conditional Put, for a transaction.
    pub(crate) fn put(&self, item: Item, condition: &str, names: Names<'_>, values: Values<'_>) -> Result<TransactWriteItem, StoreError> {
        let p = Put::builder().table_name(&self.table).set_item(Some(item)).set_condition_expression(condition_of(condition));
        let p = with_expression(p, names, values);
        Ok(TransactWriteItem::builder().put(built(p.build())?).build())
    }

    /// A conditional Update, for a transaction.
    pub(crate) fn update(
        &self,
        key: &Key,
        update: &str,
        condition: &str,
        names: Names<'_>,
        values: Values<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .update_expression(update)
            .set_condition_expression(condition_of(condition));
        let u = with_expression(u, names, values);
        Ok(TransactWriteItem::builder().update(built(u.build())?).build())
    }

    /// A conditional Delete, for a transaction.
    pub(crate) fn delete(&self, key: &Key, condition: &str, names: Names<'_>, values: Values<'_>) -> Result<TransactWriteItem, StoreError> {
        let d = Delete::builder().table_name(&self.table).set_key(Some(key.to_item())).condition_expression(condition);
        let d = with_expression(d, names, values);
        Ok(TransactWriteItem::builder().delete(built(d.build())?).build())
    }

    /// A ConditionCheck, for a transaction.
    pub(crate) fn check(&self, key: &Key, condition: &str, names: Names<'_>, values: Values<'_>) -> Result<TransactWriteItem, StoreError> {
        let c = ConditionCheck::builder().table_name(&self.table).set_key(Some(key.to_item())).condition_expression(condition);
        let c = with_expression(c, names, values);
        Ok(TransactWriteItem::builder().condition_check(built(c.build())?).build())
    }

    /// The outbox item of `work`, to go in the transaction of the state change that starts it
    /// (`Role::Outbox`). Unconditional: the same command again (a replayed write) is the same item.
    pub(crate) fn outbox_put(&self, user: &UserId, work: &CommandEnvelope) -> Result<TransactWriteItem, StoreError> {
        self.outbox_item(Key::outbox(user, &work.id), work)
    }

    /// The same command written again by a repeated request (a DELETE of what is already being
    /// deleted): an item of its own, so that the stream relays it again; the queue's deduplication
    /// still drops it if the first one went through less than five minutes ago.
    pub(crate) fn outbox_put_again(&self, user: &UserId, work: &CommandEnvelope) -> Result<TransactWriteItem, StoreError> {
        self.outbox_item(Key::outbox(user, &format!("{}#again-{}", work.id, uuid::Uuid::new_v4())), work)
    }

    /// A version-guarded transaction about the record at `key`: `Conflict(Stale)` when it was refused
    /// and the record is there (it moved on), `NotFound` when it is gone (as `update_guarded`).
    pub(crate) async fn transact_guarded(&self, tx: Tx, key: &Key) -> Result<(), StoreError> {
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Refused(_)) => match self.get(key).await? {
                None => Err(StoreError::NotFound),
                Some(_) => Err(StoreError::Conflict(Conflict::Stale)),
            },
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    /// A repeated request that finds its change already made (a DELETE of what is being deleted, an
    /// assignment already in place but not yet synced): its command written again, in one
    /// transaction with a check that the record is still as read (`condition`). `Ok(false)`: the
    /// record moved on meanwhile, read it again.
    #[allow(clippy::too_many_arguments)] // a ConditionCheck's parts, then the command
    pub(crate) async fn write_again(
        &self,
        key: &Key,
        condition: &str,
        names: Names<'_>,
        values: Values<'_>,
        user: &UserId,
        work: &CommandEnvelope,
    ) -> Result<bool, StoreError> {
        let tx =
            Tx::new().with(Role::Record, self.check(key, condition, names, values)?).with(Role::Outbox, self.outbox_put_again(user, work)?);
        match self.transact(tx).await {
            Ok(()) => Ok(true),
            Err(TxFailure::Refused(_)) => Ok(false),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    /// The item of `event`, to go in the transaction of the state change it reports (`Role::Event`).
    /// The event's id is fresh per change, so the item is new; a transaction repeated with its token
    /// is not applied twice, one refused writes none.
    pub(crate) fn event_put(&self, event: &Event) -> Result<TransactWriteItem, StoreError> {
        let key =
            Key::event(&UserId::parse(&event.user_id).map_err(|_| StoreError::Corrupt("an event of no user".into()))?, event.id.as_str());
        let item = to_item(&EventItem {
            pk: key.pk,
            sk: key.sk,
            event_type: event.event_type.as_str().to_owned(),
            body: event.to_json(),
            expires_at: event.expires_at(),
        })?;
        self.put(item, "attribute_not_exists(pk)", &[], vec![])
    }

    fn outbox_item(&self, key: Key, work: &CommandEnvelope) -> Result<TransactWriteItem, StoreError> {
        let item = to_item(&OutboxItem {
            pk: key.pk,
            sk: key.sk,
            work: serde_json::to_string(work).map_err(|e| StoreError::Corrupt(format!("a command that is not JSON: {e}")))?,
            expires_at: OffsetDateTime::now_utc().unix_timestamp() + OUTBOX_TTL.as_secs() as i64,
        })?;
        self.put(item, "", &[], vec![])
    }

    /// The idempotency guard for `key` (scope: which operation), to go in the creating transaction
    /// under `Role::Idempotency`. An expired guard that TTL has not removed yet no longer counts.
    pub(crate) fn idempotency_put(
        &self,
        user: &UserId,
        scope: &str,
        key: &IdempotencyKey,
        resource_id: &str,
        fingerprint: &str,
    ) -> Result<(Key, TransactWriteItem), StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let guard_key = Key::idempotency(user, scope, key);
        let guard = to_item(&IdempotencyItem {
            pk: guard_key.pk.clone(),
            sk: guard_key.sk.clone(),
            resource_id: resource_id.to_owned(),
            fingerprint: fingerprint.to_owned(),
            expires_at: now + IDEMPOTENCY_TTL.as_secs() as i64,
        })?;
        let put =
            self.put(guard, "attribute_not_exists(pk) OR expires_at < :now", &[], vec![(":now", AttributeValue::N(now.to_string()))])?;
        Ok((guard_key, put))
    }

    /// After the guard's condition failed: the resource the key made, if the request is the same.
    pub(crate) async fn idempotent_resource(&self, guard_key: &Key, fingerprint: &str) -> Result<String, StoreError> {
        let Some(stored) = self.get_as::<IdempotencyItem>(guard_key).await? else {
            // The guard expired between the failed condition and this read: the client retries.
            return Err(StoreError::Contended("the idempotency guard expired while it was read".into()));
        };
        if stored.fingerprint != fingerprint {
            return Err(StoreError::Conflict(Conflict::IdempotencyKeyReused));
        }
        Ok(stored.resource_id)
    }
}

/// How long an outbox item is kept after it was written (it is relayed within seconds).
const OUTBOX_TTL: std::time::Duration = std::time::Duration::from_secs(3 * 24 * 3600);

/// The attribute a conditional single-item write stamps with its own id.
pub(crate) const WRITE_ID: &str = "write_id";
const WRITE_ID_NAME: &str = "#pb_write_id";
const WRITE_ID_VALUE: &str = ":pb_write_id";

fn new_write_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `item` carries the write `write_id`.
fn carries(item: &Item, write_id: &str) -> bool {
    matches!(item.get(WRITE_ID), Some(AttributeValue::S(w)) if w == write_id)
}

/// `update` with `#pb_write_id = :pb_write_id` in its SET clause (one is added when it has none;
/// DynamoDB takes clauses in any order, each once).
fn stamped(update: &str) -> String {
    let set = update.match_indices("SET ").map(|(i, _)| i).find(|&i| i == 0 || update[..i].ends_with(char::is_whitespace));
    match set {
        Some(i) => format!("{}SET {WRITE_ID_NAME} = {WRITE_ID_VALUE}, {}", &update[..i], &update[i + 4..]),
        None => format!("SET {WRITE_ID_NAME} = {WRITE_ID_VALUE} {update}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_id_joins_the_set_clause_or_makes_one() {
        assert_eq!(stamped("SET #a = :a, #b = :b"), "SET #pb_write_id = :pb_write_id, #a = :a, #b = :b");
        assert_eq!(stamped("REMOVE #x SET #a = :a"), "REMOVE #x SET #pb_write_id = :pb_write_id, #a = :a");
        assert_eq!(stamped("ADD #n :one"), "SET #pb_write_id = :pb_write_id ADD #n :one");
        assert_eq!(stamped("REMOVE #RESET"), "SET #pb_write_id = :pb_write_id REMOVE #RESET", "a name ending in SET is not the clause");
    }

    #[test]
    fn an_item_carries_only_its_own_write() {
        let mut item = Item::new();
        assert!(!carries(&item, "w1"));
        item.insert(WRITE_ID.into(), AttributeValue::S("w1".into()));
        assert!(carries(&item, "w1"));
        assert!(!carries(&item, "w2"));
    }
}
