//! The table toolkit every part of the store is written with: reads, conditional single-item
//! writes, transactions whose items carry a [`Role`], and the retry of collisions and throttling.
//!
//! Every call goes through [`DynamoStore::call`] or [`DynamoStore::transact`]: a failed condition
//! comes back as an outcome; a collision or throttling (no effect) is retried here with jittered,
//! bounded backoff and, when the retries run out, comes back as `StoreError::Contended`; anything
//! else is `StoreError::Unavailable`. Callers never see a collision as a conflict.

mod read;
mod write;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use patchbay_domain::{Cursor, Limit, Page, StoreError};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dynamo::errors::{classify_call, classify_tx, unavailable, Cancellation, HttpResponse, Kind, Role, TxFailure, WriteFailure};

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
#[derive(Default, Clone)]
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
    pub(crate) async fn call<T, E, F, Fut>(&self, send: F) -> Result<T, WriteFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.call_or_own(send, |_| None).await
    }

    /// [`call`](Self::call), for a conditional write that can recognise its own effect: when its
    /// condition fails, `own_effect` looks at the refusal (the item as it is, asked for with
    /// `ReturnValuesOnConditionCheckFailure`) and answers the call's output if the item already
    /// carries this very write (an SDK retry of an attempt that was applied, its answer lost).
    pub(crate) async fn call_or_own<T, E, F, Fut>(
        &self,
        mut send: F,
        own_effect: impl Fn(&SdkError<E, HttpResponse>) -> Option<T>,
    ) -> Result<T, WriteFailure>
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
                Kind::Refused => {
                    return match own_effect(&err) {
                        Some(out) => {
                            tracing::debug!("a conditional write met its own effect (its first answer was lost): applied");
                            Ok(out)
                        }
                        None => Err(WriteFailure::ConditionFailed),
                    }
                }
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
}
