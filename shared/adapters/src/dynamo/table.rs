//! The table toolkit every part of the store is written with: reads, conditional single-item
//! writes, transactions whose items carry a [`Role`], and the retry of collisions and throttling.
//!
//! Every call goes through [`DynamoStore::call`] or [`DynamoStore::transact`]: a failed condition
//! comes back as an outcome; a collision or throttling (no effect) is retried here with jittered,
//! bounded backoff and, when the retries run out, comes back as `StoreError::Contended`; anything
//! else is `StoreError::Unavailable`. Callers never see a collision as a conflict.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use patchbay_domain::{Conflict, Cursor, IdempotencyKey, Limit, Page, StoreError, UserId};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use super::errors::{classify_call, classify_tx, unavailable, Cancellation, HttpResponse, Kind, Role, TxFailure, WriteFailure};
use super::items::IdempotencyItem;
use super::keys::{self, Key, GSI1, PK, SK};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Attempts of an operation that re-reads state moving under it (an activation, a delete, an
/// assignment) before it answers a conflict. Each attempt's calls are themselves retried on collisions.
pub const RACE_ATTEMPTS: u32 = 12;

/// How collisions and throttling are retried: `attempts` tries in all, full-jitter exponential
/// backoff from `base` up to `cap` between them.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// Eight tries, 10 ms doubling to 400 ms: at most about a second of waiting, and a 25% collision
    /// rate still gets through all but 1 in 65,000 times.
    fn default() -> Self {
        Self { attempts: 8, base: Duration::from_millis(10), cap: Duration::from_millis(400) }
    }
}

impl RetryPolicy {
    async fn pause(&self, attempt: u32) {
        let ceiling = self.base.saturating_mul(1 << attempt.min(16)).min(self.cap);
        let ms = rand::rng().random_range(1..=ceiling.as_millis().max(1) as u64);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retry: RetryPolicy,
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
/// A value as its item attribute, through the same serde names the items are written with: a
/// status in a condition is spelled exactly as it is stored.
pub(crate) fn attr<T: Serialize>(v: &T) -> AttributeValue {
    serde_dynamo::to_attribute_value(v).unwrap_or(AttributeValue::Null(true))
}
pub(crate) fn to_item<T: Serialize>(v: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(v).map_err(|e| StoreError::Corrupt(format!("serialise: {e}")))
}
pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(format!("deserialise: {e}")))
}
pub(crate) fn built<T, E: std::error::Error + Send + Sync + 'static>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(StoreError::unavailable)
}

/// The condition of a write that holds whatever is stored (an upsert, a counter, a route): none.
pub(crate) const UNCONDITIONAL: &str = "";

fn condition_of(condition: &str) -> Option<String> {
    (!condition.is_empty()).then(|| condition.to_owned())
}

/// A transaction being assembled: each item with its role.
#[derive(Default)]
pub(crate) struct Tx {
    items: Vec<TransactWriteItem>,
    roles: Vec<Role>,
}

impl Tx {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, role: Role, item: TransactWriteItem) -> Self {
        self.push(role, item);
        self
    }
    pub fn push(&mut self, role: Role, item: TransactWriteItem) {
        self.items.push(item);
        self.roles.push(role);
    }
}

/// Expression names and values, shared by every builder below.
pub(crate) type Names<'a> = &'a [(&'a str, &'a str)];
pub(crate) type Values<'a> = Vec<(&'a str, AttributeValue)>;

/// Expression names and values onto any of the SDK's request builders (they share no trait).
macro_rules! expression_builders {
    ($($builder:ty),* $(,)?) => {$(
        impl WithExpression for $builder {
            fn names_and_values(mut self, names: Names<'_>, values: Values<'_>) -> Self {
                for (k, v) in names {
                    self = self.expression_attribute_names(*k, *v);
                }
                for (k, v) in values {
                    self = self.expression_attribute_values(k, v);
                }
                self
            }
        }
    )*};
}

pub(crate) trait WithExpression: Sized {
    fn names_and_values(self, names: Names<'_>, values: Values<'_>) -> Self;
}

expression_builders!(
    aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder,
    aws_sdk_dynamodb::types::builders::PutBuilder,
    aws_sdk_dynamodb::types::builders::UpdateBuilder,
    aws_sdk_dynamodb::types::builders::DeleteBuilder,
    aws_sdk_dynamodb::types::builders::ConditionCheckBuilder,
);

fn with_expression<B: WithExpression>(builder: B, names: Names<'_>, values: Values<'_>) -> B {
    builder.names_and_values(names, values)
}

/// A page from a Query that asked for one item more than `limit`: the extra one only says that a
/// next page exists; the cursor is the last kept item's position.
pub(crate) fn page_cursor<T>(mut data: Vec<T>, limit: Limit, position: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if data.len() > usize::from(limit.get()) {
        data.truncate(usize::from(limit.get()));
        data.last().map(|x| Cursor::encode(&position(x)))
    } else {
        None
    };
    Page { data, next_cursor }
}

/// The pause between two attempts of a re-reading operation.
pub(crate) async fn backoff(attempt: u32) {
    let cap = 5u64 << attempt.min(5);
    let ms = rand::rng().random_range(1..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), retry: RetryPolicy::default() }
    }

    /// The same store with another retry policy (tests use it to see retries run out).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// One SDK call, retried while DynamoDB answers a collision or throttling. A failed condition
    /// comes back as `WriteFailure::ConditionFailed`, anything else as `WriteFailure::Other`.
    pub(crate) async fn call<T, E, F, Fut>(&self, mut send: F) -> Result<T, WriteFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempt = 0;
        loop {
            let err = match send().await {
                Ok(out) => return Ok(out),
                Err(e) => e,
            };
            match classify_call(&err) {
                Kind::Refused => return Err(WriteFailure::ConditionFailed),
                Kind::Retryable(why) => {
                    attempt += 1;
                    if attempt >= self.retry.attempts {
                        tracing::warn!(attempts = attempt, %why, "store call still colliding after retries");
                        return Err(WriteFailure::Other(StoreError::Contended(why)));
                    }
                    tracing::debug!(attempt, %why, "store call collided; retrying");
                    self.retry.pause(attempt - 1).await;
                }
                Kind::Other(_) => return Err(WriteFailure::Other(unavailable(err))),
            }
        }
    }

    /// A read (or any call without a condition): collisions and throttling retried, the rest unavailable.
    pub(crate) async fn read<T, E, F, Fut>(&self, send: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.call(send).await.map_err(|e| match e {
            WriteFailure::ConditionFailed => StoreError::Corrupt("a read answered ConditionalCheckFailed".into()),
            WriteFailure::Other(e) => e,
        })
    }

    /// One transaction; a cancellation that only collided or was throttled is sent again.
    pub(crate) async fn transact(&self, tx: Tx) -> Result<(), TxFailure> {
        let Tx { items, roles } = tx;
        let mut attempt = 0;
        loop {
            let err = match self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            match classify_tx(&err, &roles) {
                (Kind::Refused, Some(c)) => return Err(TxFailure::Refused(c)),
                (Kind::Refused, None) => return Err(TxFailure::Refused(Cancellation { reasons: Vec::new() })),
                (Kind::Retryable(why), _) => {
                    attempt += 1;
                    if attempt >= self.retry.attempts {
                        tracing::warn!(attempts = attempt, %why, "transaction still colliding after retries");
                        return Err(TxFailure::Other(StoreError::Contended(why)));
                    }
                    tracing::debug!(attempt, %why, "transaction collided; retrying");
                    self.retry.pause(attempt - 1).await;
                }
                (Kind::Other(why), _) if !why.is_empty() => {
                    tracing::error!(%why, "transaction refused as invalid");
                    return Err(TxFailure::Other(StoreError::Corrupt(why)));
                }
                (Kind::Other(_), _) => return Err(TxFailure::Other(unavailable(err))),
            }
        }
    }

    /// A strongly consistent GetItem.
    pub(crate) async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let req = self.client.get_item().table_name(&self.table).set_key(Some(key.to_item())).consistent_read(true);
        Ok(self.read(|| req.clone().send()).await?.item)
    }

    /// A strongly consistent GetItem, mapped to its item type.
    pub(crate) async fn get_as<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, StoreError> {
        self.get(key).await?.map(from_item).transpose()
    }

    /// One page of a partition's items whose sort key starts with `prefix`, in sort-key order
    /// (`forward`) or reverse, starting after `after` (a full sort key) if given.
    pub(crate) async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
        after_sk: Option<String>,
        limit: Option<i32>,
        forward: bool,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
            .scan_index_forward(forward)
            .set_limit(limit);
        if let Some(sk) = after_sk {
            req = req.set_exclusive_start_key(Some(HashMap::from([(keys::PK.to_owned(), s(pk)), (keys::SK.to_owned(), s(sk))])));
        }
        let out = self.read(|| req.clone().send()).await?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// One page of a list: `limit` items (one more is asked for, to know whether a next page exists)
    /// after the cursor's position, each mapped by `map`.
    #[allow(clippy::too_many_arguments)] // the Query's parts, then the mapping both ways
    pub(crate) async fn list_page<T>(
        &self,
        pk: &str,
        prefix: &str,
        cursor: Option<&Cursor>,
        limit: Limit,
        forward: bool,
        map: impl Fn(Item) -> Result<T, StoreError>,
        position: impl Fn(&T) -> String,
    ) -> Result<Page<T>, StoreError> {
        // The domain checked that the cursor decodes; a position that was never ours just starts the
        // page at that place inside this user's partition, which leaks nothing.
        let after = cursor.map(|c| format!("{prefix}{}", c.position().unwrap_or_default()));
        let (items, _) = self.query_prefix(pk, prefix, after, Some(i32::from(limit.get()) + 1), forward).await?;
        let data = items.into_iter().map(map).collect::<Result<Vec<_>, _>>()?;
        Ok(page_cursor(data, limit, position))
    }

    /// One page of a GSI1 list, newest first: `limit` items after the item whose table key is `after`
    /// (its index position is read back from it: `NotFound` if it is gone), each mapped by `map`.
    pub(crate) async fn index_page<T>(
        &self,
        index_pk: &str,
        after: Option<Key>,
        limit: Limit,
        map: impl Fn(Item) -> Result<T, StoreError>,
        position: impl Fn(&T) -> String,
    ) -> Result<Page<T>, StoreError> {
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(index_pk))
            .scan_index_forward(false)
            .limit(i32::from(limit.get()) + 1);
        if let Some(key) = after {
            let Some(item) = self.get(&key).await? else { return Err(StoreError::NotFound) };
            let Some(AttributeValue::S(g1sk)) = item.get("gsi1sk").cloned() else {
                return Err(StoreError::Corrupt(format!("{} has no gsi1sk", key.sk)));
            };
            req = req.set_exclusive_start_key(Some(HashMap::from([
                (PK.to_owned(), s(key.pk)),
                (SK.to_owned(), s(key.sk)),
                ("gsi1pk".to_owned(), s(index_pk)),
                ("gsi1sk".to_owned(), s(g1sk)),
            ])));
        }
        let out = self.read(|| req.clone().send()).await?;
        let data = out.items.unwrap_or_default().into_iter().map(map).collect::<Result<Vec<_>, _>>()?;
        Ok(page_cursor(data, limit, position))
    }

    /// Every item of a partition under `prefix` (for small sets, like a user's numbers).
    pub(crate) async fn query_all(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (items, last) = self.query_prefix(pk, prefix, after.take(), None, true).await?;
            out.extend(items);
            match last.and_then(|k| match k.get(keys::SK) {
                Some(AttributeValue::S(sk)) => Some(sk.clone()),
                _ => None,
            }) {
                Some(sk) => after = Some(sk),
                None => return Ok(out),
            }
        }
    }

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
