//! The DynamoDB store: one table, keys from `keys`, items from `items`, every invariant a condition
//! expression or a transaction.

pub mod errors;
pub mod items;
pub mod keys;
mod messages;
mod numbers;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Get, Put, ReturnValue, TransactGetItem, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use patchbay_domain::ports::{Created, ProfileStore};
use patchbay_domain::{
    Activation, CarrierProfileId, Conflict, Cursor, IdempotencyKey, Limit, MessagingProfile, Page, ProfileId, ProfilePatch, StoreError,
    SyncError, SyncState, UserId,
};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use errors::{classify_tx, classify_write, unavailable, TxFailure, WriteFailure};
use items::{rfc3339, ActivePointerItem, IdempotencyItem, ProfileItem};
use keys::{Key, PROFILE_PREFIX};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Attempts of one activation (or delete) against state that moves under it before answering 409.
pub const RACE_ATTEMPTS: u32 = 12;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
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

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    pub(crate) async fn get_profile_item(&self, user: &UserId, id: ProfileId) -> Result<Option<MessagingProfile>, StoreError> {
        match self.get(&Key::profile(user, id)).await? {
            Some(item) => Ok(Some(from_item::<ProfileItem>(item)?.try_into()?)),
            None => Ok(None),
        }
    }

    /// After a failed condition on a profile write: absent (404) or there but in another state.
    async fn classify_profile_miss(&self, user: &UserId, id: ProfileId, otherwise: Conflict) -> StoreError {
        match self.get_profile_item(user, id).await {
            Ok(None) => StoreError::NotFound,
            Ok(Some(p)) if p.is_deleting() && otherwise != Conflict::Stale => StoreError::Conflict(Conflict::ProfileDeleting),
            Ok(Some(_)) => StoreError::Conflict(otherwise),
            Err(e) => e,
        }
    }

    /// One conditional UpdateItem that answers the new item.
    pub(crate) async fn update_item(
        &self,
        key: &Key,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<Item>, WriteFailure> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .update_expression(update)
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew);
        for (k, v) in names {
            req = req.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        Ok(req.send().await.map_err(classify_write)?.attributes)
    }

    /// One conditional UpdateItem on a profile that answers the new profile.
    pub(crate) async fn update_profile_item(
        &self,
        user: &UserId,
        id: ProfileId,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<MessagingProfile>, WriteFailure> {
        match self.update_item(&Key::profile(user, id), update, condition, names, values).await? {
            Some(item) => {
                let p = from_item::<ProfileItem>(item).and_then(MessagingProfile::try_from).map_err(WriteFailure::Other)?;
                Ok(Some(p))
            }
            None => Ok(None),
        }
    }

    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxFailure> {
        self.client.transact_write_items().set_transact_items(Some(items)).send().await.map(|_| ()).map_err(classify_tx)
    }

    pub(crate) fn put(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut p = Put::builder().table_name(&self.table).set_item(Some(item)).condition_expression(condition);
        for (k, v) in names {
            p = p.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            p = p.expression_attribute_values(k, v);
        }
        Ok(TransactWriteItem::builder().put(built(p.build())?).build())
    }

    pub(crate) fn update(
        &self,
        key: &Key,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .update_expression(update)
            .condition_expression(condition);
        for (k, v) in names {
            u = u.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            u = u.expression_attribute_values(k, v);
        }
        Ok(TransactWriteItem::builder().update(built(u.build())?).build())
    }

    /// The idempotency guard for `key` (scope: which operation), to go in the creating transaction.
    /// An expired guard that TTL has not removed yet no longer counts.
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
        let stored: IdempotencyItem = match self.get(guard_key).await? {
            Some(item) => from_item(item)?,
            None => return Err(StoreError::Conflict(Conflict::Stale)),
        };
        if stored.fingerprint != fingerprint {
            return Err(StoreError::Conflict(Conflict::IdempotencyKeyReused));
        }
        Ok(stored.resource_id)
    }

    /// The pointer and the profile, read together as one serialisable snapshot.
    async fn read_pointer_and_profile(
        &self,
        user: &UserId,
        id: ProfileId,
    ) -> Result<(Option<ActivePointerItem>, Option<MessagingProfile>), StoreError> {
        let get = |key: Key| -> Result<TransactGetItem, StoreError> {
            Ok(TransactGetItem::builder().get(built(Get::builder().table_name(&self.table).set_key(Some(key.to_item())).build())?).build())
        };
        let out = self
            .client
            .transact_get_items()
            .transact_items(get(Key::active_profile(user))?)
            .transact_items(get(Key::profile(user, id))?)
            .send()
            .await
            .map_err(unavailable)?;
        let mut responses = out.responses.unwrap_or_default().into_iter().map(|r| r.item);
        let pointer = match responses.next().flatten() {
            Some(item) => Some(from_item::<ActivePointerItem>(item)?),
            None => None,
        };
        let profile = match responses.next().flatten() {
            Some(item) => Some(from_item::<ProfileItem>(item)?.try_into()?),
            None => None,
        };
        Ok((pointer, profile))
    }
}

fn pointer_profile(p: &Option<ActivePointerItem>) -> Option<ProfileId> {
    p.as_ref().and_then(|p| ProfileId::parse(&p.profile_id).ok())
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

pub(crate) async fn backoff(attempt: u32) {
    let cap = 5u64 << attempt.min(5);
    let ms = rand::rng().random_range(1..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[async_trait]
impl ProfileStore for DynamoStore {
    async fn create_profile(
        &self,
        profile: &MessagingProfile,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<MessagingProfile>, StoreError> {
        let item = to_item(&ProfileItem::from(profile))?;
        let Some((key, fingerprint)) = idempotency else {
            return match self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(classify_write)
            {
                Ok(_) => Ok(Created::New(profile.clone())),
                Err(WriteFailure::ConditionFailed) => Err(StoreError::Conflict(Conflict::AlreadyExists)),
                Err(WriteFailure::Other(e)) => Err(e),
            };
        };

        let (guard_key, guard) = self.idempotency_put(&profile.user_id, "create-profile", key, &profile.id.to_string(), fingerprint)?;
        let items = vec![self.put(item, "attribute_not_exists(pk)", &[], vec![])?, guard];
        match self.transact(items).await {
            Ok(()) => Ok(Created::New(profile.clone())),
            Err(TxFailure::Cancelled { reasons }) if TxFailure::condition_failed_at(&reasons, 1) => {
                let resource = self.idempotent_resource(&guard_key, fingerprint).await?;
                let id = ProfileId::parse(&resource).map_err(|_| StoreError::Corrupt("idempotency resource_id".into()))?;
                match self.get_profile_item(&profile.user_id, id).await? {
                    Some(p) => Ok(Created::Replayed(p)),
                    None => Err(StoreError::NotFound),
                }
            }
            Err(TxFailure::Cancelled { .. }) => Err(StoreError::Conflict(Conflict::AlreadyExists)),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn get_profile(&self, user: &UserId, id: ProfileId) -> Result<MessagingProfile, StoreError> {
        self.get_profile_item(user, id).await?.ok_or(StoreError::NotFound)
    }

    async fn list_profiles(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<MessagingProfile>, StoreError> {
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(Key::user_pk(user)))
            .expression_attribute_values(":prefix", s(PROFILE_PREFIX))
            .consistent_read(true)
            // One more than asked, so the last page is known to be last.
            .limit(i32::from(limit.get()) + 1);
        if let Some(cursor) = after {
            // The domain checked that the cursor decodes; an id that was never ours just starts the
            // page at its position inside this user's partition, which leaks nothing.
            let position = cursor.position().unwrap_or_default();
            let mut start = Key::user_pk(user);
            let start_key = HashMap::from([
                (keys::PK.to_owned(), s(std::mem::take(&mut start))),
                (keys::SK.to_owned(), s(format!("{PROFILE_PREFIX}{position}"))),
            ]);
            req = req.set_exclusive_start_key(Some(start_key));
        }
        let out = req.send().await.map_err(unavailable)?;
        let data = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<ProfileItem>(i).and_then(MessagingProfile::try_from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_cursor(data, limit, |p| p.id.to_string()))
    }

    async fn update_profile(
        &self,
        user: &UserId,
        id: ProfileId,
        patch: &ProfilePatch,
        now: OffsetDateTime,
    ) -> Result<MessagingProfile, StoreError> {
        let mut sets = vec!["#v = #v + :one", "#ss = :pending", "#ua = :now"];
        let mut values = vec![(":one", n(1)), (":pending", s("pending")), (":deleting", s("deleting")), (":now", s(rfc3339(now)))];
        if let Some(name) = &patch.name {
            sets.push("#name = :name");
            values.push((":name", s(name.as_str())));
        }
        if let Some(wl) = &patch.whitelisted_destinations {
            sets.push("#wl = :wl");
            values.push((":wl", AttributeValue::L(wl.as_strings().into_iter().map(s).collect())));
        }
        let update = format!("SET {} REMOVE #se", sets.join(", "));
        let names = [
            ("#v", "version"),
            ("#ss", "sync_state"),
            ("#ua", "updated_at"),
            ("#name", "name"),
            ("#wl", "whitelisted_destinations"),
            ("#se", "sync_error"),
        ];
        // DynamoDB refuses names an expression does not use.
        let used: Vec<(&str, &str)> = names.iter().copied().filter(|(k, _)| update.contains(k)).collect();
        match self.update_profile_item(user, id, &update, "attribute_exists(pk) AND #ss <> :deleting", &used, values).await {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(StoreError::Corrupt("update returned no item".into())),
            Err(WriteFailure::ConditionFailed) => Err(self.classify_profile_miss(user, id, Conflict::ProfileDeleting).await),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn mark_deleting(&self, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<MessagingProfile, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let Some(item) = self.get(&Key::profile(user, id)).await? else { return Err(StoreError::NotFound) };
            let item: ProfileItem = from_item(item)?;
            if item.assigned_count > 0 {
                return Err(StoreError::Conflict(Conflict::ProfileHasNumbers));
            }
            let current = MessagingProfile::try_from(item)?;
            if current.is_deleting() {
                return Ok(current);
            }
            let key = Key::profile(user, id);
            let names = [("#v", "version"), ("#ss", "sync_state"), ("#ua", "updated_at"), ("#act", "active"), ("#nc", "assigned_count")];
            let values = || {
                vec![
                    (":one", n(1)),
                    (":deleting", s("deleting")),
                    (":now", s(rfc3339(now))),
                    (":false", AttributeValue::Bool(false)),
                    (":was", AttributeValue::Bool(current.active)),
                    (":zero", n(0)),
                ]
            };
            // Conditions pin the state we read: if an activation slips in between, we go round again.
            let mark = self.update(
                &key,
                "SET #v = #v + :one, #ss = :deleting, #ua = :now, #act = :false",
                // No number may be assigned meanwhile: assignments move the count in their own transaction.
                "attribute_exists(pk) AND #ss <> :deleting AND #act = :was AND (attribute_not_exists(#nc) OR #nc = :zero)",
                &names,
                values(),
            )?;
            let mut items = vec![mark];
            if current.active {
                let del = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(Key::active_profile(user).to_item()))
                    .condition_expression("profile_id = :id")
                    .expression_attribute_values(":id", s(id.to_string()));
                items.push(TransactWriteItem::builder().delete(built(del.build())?).build());
            }
            match self.transact(items).await {
                Ok(()) => {
                    let mut p = current;
                    p.sync_state = SyncState::Deleting;
                    p.active = false;
                    p.version += 1;
                    p.updated_at = now;
                    return Ok(p);
                }
                Err(TxFailure::Cancelled { .. }) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict(Conflict::Stale))
    }

    async fn activate_profile(&self, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<Activation, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let (pointer, profile) = self.read_pointer_and_profile(user, id).await?;
            let Some(profile) = profile else { return Err(StoreError::NotFound) };
            if profile.is_deleting() {
                return Err(StoreError::Conflict(Conflict::ProfileDeleting));
            }
            let previous = pointer_profile(&pointer);
            if previous == Some(id) {
                return Ok(Activation { profile, deactivated: None });
            }

            let names = [("#act", "active"), ("#ss", "sync_state")];
            let mut items = vec![self.update(
                &Key::profile(user, id),
                "SET #act = :true",
                "attribute_exists(pk) AND #ss <> :deleting",
                &names,
                vec![(":true", AttributeValue::Bool(true)), (":deleting", s("deleting"))],
            )?];
            if let Some(old) = previous {
                items.push(self.update(
                    &Key::profile(user, old),
                    "SET #act = :false",
                    "attribute_exists(pk)",
                    &[("#act", "active")],
                    vec![(":false", AttributeValue::Bool(false))],
                )?);
            }
            let pk = Key::active_profile(user);
            let next = ActivePointerItem {
                pk: pk.pk.clone(),
                sk: pk.sk.clone(),
                profile_id: id.to_string(),
                version: pointer.as_ref().map_or(1, |p| p.version + 1),
                updated_at: rfc3339(now),
            };
            // The guard: the pointer is still what we read. Every activation moves its version.
            items.push(match &pointer {
                Some(p) => self.put(to_item(&next)?, "version = :seen", &[], vec![(":seen", n(p.version))])?,
                None => self.put(to_item(&next)?, "attribute_not_exists(pk)", &[], vec![])?,
            });

            match self.transact(items).await {
                Ok(()) => {
                    let mut profile = profile;
                    profile.active = true;
                    tracing::info!(user = %user, profile = %id, previous = ?previous.map(|p| p.to_string()), attempt, "profile activated");
                    return Ok(Activation { profile, deactivated: previous });
                }
                // Lost the race (pointer moved, or the profile changed state): read again.
                Err(TxFailure::Cancelled { reasons }) => {
                    tracing::debug!(user = %user, profile = %id, attempt, ?reasons, "activation lost a race; retrying");
                    backoff(attempt).await;
                }
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict(Conflict::ActivationRace))
    }

    async fn active_profile(&self, user: &UserId) -> Result<Option<ProfileId>, StoreError> {
        match self.get(&Key::active_profile(user)).await? {
            Some(item) => Ok(pointer_profile(&Some(from_item::<ActivePointerItem>(item)?))),
            None => Ok(None),
        }
    }

    async fn record_synced(
        &self,
        user: &UserId,
        id: ProfileId,
        version: u64,
        carrier_id: &CarrierProfileId,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        match self
            .update_profile_item(
                user,
                id,
                "SET #ss = :synced, #cid = :cid REMOVE #se",
                "attribute_exists(pk) AND #v = :v AND #ss = :pending",
                &[("#ss", "sync_state"), ("#cid", "carrier_profile_id"), ("#se", "sync_error"), ("#v", "version")],
                vec![(":synced", s("synced")), (":cid", s(carrier_id.as_str())), (":v", n(version)), (":pending", s("pending"))],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(WriteFailure::ConditionFailed) => Err(self.classify_profile_miss(user, id, Conflict::Stale).await),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn record_carrier_id(&self, user: &UserId, id: ProfileId, carrier_id: &CarrierProfileId) -> Result<(), StoreError> {
        match self
            .update_profile_item(
                user,
                id,
                "SET #cid = :cid",
                "attribute_exists(pk) AND attribute_not_exists(#cid)",
                &[("#cid", "carrier_profile_id")],
                vec![(":cid", s(carrier_id.as_str()))],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(WriteFailure::ConditionFailed) => Err(self.classify_profile_miss(user, id, Conflict::AlreadyExists).await),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn record_sync_failed(
        &self,
        user: &UserId,
        id: ProfileId,
        version: u64,
        state: SyncState,
        error: &SyncError,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let state = match state {
            SyncState::Deleting => "deleting",
            _ => "failed",
        };
        let err = AttributeValue::M(HashMap::from([("code".to_owned(), s(&error.code)), ("message".to_owned(), s(&error.message))]));
        match self
            .update_profile_item(
                user,
                id,
                "SET #ss = :state, #se = :err",
                "attribute_exists(pk) AND #v = :v",
                &[("#ss", "sync_state"), ("#se", "sync_error"), ("#v", "version")],
                vec![(":state", s(state)), (":err", err), (":v", n(version))],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(WriteFailure::ConditionFailed) => Err(self.classify_profile_miss(user, id, Conflict::Stale).await),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn purge_profile(&self, user: &UserId, id: ProfileId, version: u64) -> Result<(), StoreError> {
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Key::profile(user, id).to_item()))
            .condition_expression("#v = :v AND #ss = :deleting")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#ss", "sync_state")
            .expression_attribute_values(":v", n(version))
            .expression_attribute_values(":deleting", s("deleting"))
            .send()
            .await
            .map_err(classify_write)
        {
            Ok(_) => Ok(()),
            Err(WriteFailure::ConditionFailed) => Err(self.classify_profile_miss(user, id, Conflict::Stale).await),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }
}
