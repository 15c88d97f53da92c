//! Writes: conditional single-item updates, puts and deletes, the items of a transaction, and the
//! idempotency guard.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update};
use patchbay_domain::{Conflict, IdempotencyKey, StoreError, UserId};
use time::OffsetDateTime;

use super::{built, condition_of, to_item, with_expression, DynamoStore, Item, Names, Values, IDEMPOTENCY_TTL};
use crate::dynamo::errors::WriteFailure;
use crate::dynamo::items::IdempotencyItem;
use crate::dynamo::keys::Key;

impl DynamoStore {
    /// One conditional UpdateItem that answers the new item.
    pub(crate) async fn update_item(
        &self,
        key: &Key,
        update: &str,
        condition: &str,
        names: Names<'_>,
        values: Values<'_>,
    ) -> Result<Option<Item>, WriteFailure> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .update_expression(update)
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew);
        let req = with_expression(req, names, values);
        Ok(self.call(|| req.clone().send()).await?.attributes)
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

    /// One conditional PutItem.
    pub(crate) async fn put_item(&self, item: Item, condition: &str) -> Result<(), WriteFailure> {
        let req = self.client.put_item().table_name(&self.table).set_item(Some(item)).set_condition_expression(condition_of(condition));
        self.call(|| req.clone().send()).await.map(|_| ())
    }

    /// One conditional DeleteItem.
    pub(crate) async fn delete_item(&self, key: &Key, condition: &str, names: Names<'_>, values: Values<'_>) -> Result<(), WriteFailure> {
        let req = self.client.delete_item().table_name(&self.table).set_key(Some(key.to_item())).condition_expression(condition);
        let req = with_expression(req, names, values);
        self.call(|| req.clone().send()).await.map(|_| ())
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
