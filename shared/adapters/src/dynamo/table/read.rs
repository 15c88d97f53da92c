//! Reads: consistent GetItems, a partition's items by sort-key prefix, pages of a list or an index.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use patchbay_domain::{Cursor, Limit, Page, StoreError};
use serde::de::DeserializeOwned;

use super::{built, from_item, page_cursor, s, DynamoStore, Item};
use crate::dynamo::keys::{self, Key, GSI1, PK, SK};

/// The most keys one BatchGetItem may ask for.
const BATCH_GET_KEYS: usize = 100;

impl DynamoStore {
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

    /// Strongly consistent reads of items by key in one BatchGetItem per 100 keys (duplicates asked
    /// for once; what DynamoDB leaves unprocessed asked for again with the retry policy's pauses).
    /// Items that do not exist are absent from the answer, which is in no particular order.
    pub(crate) async fn batch_get(&self, keys: impl IntoIterator<Item = Key>) -> Result<Vec<Item>, StoreError> {
        let mut unique: Vec<Key> = Vec::new();
        for key in keys {
            if !unique.contains(&key) {
                unique.push(key);
            }
        }
        let mut out = Vec::new();
        for chunk in unique.chunks(BATCH_GET_KEYS) {
            let mut pending =
                built(KeysAndAttributes::builder().set_keys(Some(chunk.iter().map(Key::to_item).collect())).consistent_read(true).build())?;
            let mut attempt = 0;
            loop {
                let req = self.client.batch_get_item().request_items(&self.table, pending.clone());
                let answer = self.read(|| req.clone().send()).await?;
                out.extend(answer.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
                match answer.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys().is_empty()) {
                    None => break,
                    Some(_) if attempt + 1 >= self.retry.attempts => {
                        return Err(StoreError::Contended("BatchGetItem kept leaving keys unprocessed".into()));
                    }
                    Some(rest) => {
                        self.retry.pause(attempt).await;
                        attempt += 1;
                        pending = rest;
                    }
                }
            }
        }
        Ok(out)
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
}
