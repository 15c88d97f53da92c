//! The number half of the store: a global one-owner guard per number, the user's record beside it,
//! and every move between states a condition or a transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use patchbay_domain::ports::{Created, NumberStore};
use patchbay_domain::{
    Conflict, Cursor, IdempotencyKey, Limit, NumberStatus, Page, PhoneNumber, ProfileId, StoreError, SyncError, UserId, E164,
};
use std::collections::HashMap;
use time::OffsetDateTime;

use super::errors::{classify_write, unavailable, TxFailure, WriteFailure};
use super::items::{rfc3339, NumberItem, NumberOwnerItem};
use super::keys::{self, Key, NUMBER_PREFIX};
use super::{backoff, built, from_item, n, page_cursor, s, to_item, DynamoStore, Item, RACE_ATTEMPTS};

fn number_from(item: Item) -> Result<PhoneNumber, StoreError> {
    from_item::<NumberItem>(item)?.try_into()
}

fn status(st: NumberStatus) -> AttributeValue {
    s(match st {
        NumberStatus::Pending => "pending",
        NumberStatus::Active => "active",
        NumberStatus::Failed => "failed",
        NumberStatus::Releasing => "releasing",
    })
}

fn error_map(e: &SyncError) -> AttributeValue {
    AttributeValue::M(HashMap::from([("code".to_owned(), s(&e.code)), ("message".to_owned(), s(&e.message))]))
}

impl DynamoStore {
    fn delete_guard(&self, e164: &E164, user: &UserId) -> Result<TransactWriteItem, StoreError> {
        let d = Delete::builder()
            .table_name(self.table())
            .set_key(Some(Key::number_owner(e164).to_item()))
            .condition_expression("user_id = :u")
            .expression_attribute_values(":u", s(user.as_str()));
        Ok(TransactWriteItem::builder().delete(built(d.build())?).build())
    }

    fn profile_count(&self, user: &UserId, profile: ProfileId, delta: i64, must_be_live: bool) -> Result<TransactWriteItem, StoreError> {
        let condition = if must_be_live { "attribute_exists(pk) AND #ss <> :deleting" } else { "attribute_exists(pk)" };
        let mut values = vec![(":d", AttributeValue::N(delta.to_string()))];
        let mut names = vec![("#nc", "assigned_count")];
        if must_be_live {
            values.push((":deleting", s("deleting")));
            names.push(("#ss", "sync_state"));
        }
        self.update(&Key::profile(user, profile), "ADD #nc :d", condition, &names, values)
    }

    /// The Query over a user's number records, in E.164 order.
    fn numbers_query(&self, user: &UserId) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(Key::user_pk(user)))
            .expression_attribute_values(":prefix", s(NUMBER_PREFIX))
            .consistent_read(true)
    }

    async fn number_or_404(&self, user: &UserId, e164: &E164) -> Result<PhoneNumber, StoreError> {
        match self.get(&Key::number(user, e164)).await? {
            Some(item) => number_from(item),
            None => Err(StoreError::NotFound),
        }
    }

    /// A version-guarded single-item update of a number record.
    async fn update_number(
        &self,
        user: &UserId,
        e164: &E164,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        match self.update_item(&Key::number(user, e164), update, condition, names, values).await {
            Ok(_) => Ok(()),
            Err(WriteFailure::ConditionFailed) => match self.get(&Key::number(user, e164)).await? {
                None => Err(StoreError::NotFound),
                Some(_) => Err(StoreError::Conflict(Conflict::Stale)),
            },
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }
}

#[async_trait]
impl NumberStore for DynamoStore {
    async fn create_purchase(
        &self,
        number: &PhoneNumber,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<PhoneNumber>, StoreError> {
        let guard_key = Key::number_owner(&number.e164);
        let guard = to_item(&NumberOwnerItem {
            pk: guard_key.pk.clone(),
            sk: guard_key.sk.clone(),
            user_id: number.user_id.to_string(),
            carrier: number.carrier,
        })?;
        let mut items = vec![
            // One owner per number, for everyone.
            self.put(guard, "attribute_not_exists(pk)", &[], vec![])?,
            // The caller's own earlier failed purchase may be replaced; nothing else.
            self.put(
                to_item(&NumberItem::from(number))?,
                "attribute_not_exists(pk) OR #st = :failed",
                &[("#st", "status")],
                vec![(":failed", status(NumberStatus::Failed))],
            )?,
        ];
        let idem = match idempotency {
            Some((key, fingerprint)) => {
                let (k, put) = self.idempotency_put(&number.user_id, "buy-number", key, number.e164.as_str(), fingerprint)?;
                items.push(put);
                Some((k, fingerprint))
            }
            None => None,
        };
        match self.transact(items).await {
            Ok(()) => Ok(Created::New(number.clone())),
            Err(TxFailure::Cancelled { reasons }) => {
                if let Some((k, fingerprint)) = idem {
                    if TxFailure::condition_failed_at(&reasons, 2) {
                        let e164 = self.idempotent_resource(&k, fingerprint).await?;
                        let e164 = E164::parse(&e164).map_err(|_| StoreError::Corrupt("idempotency resource_id".into()))?;
                        return self.number_or_404(&number.user_id, &e164).await.map(Created::Replayed);
                    }
                }
                if TxFailure::condition_failed_at(&reasons, 0) {
                    let owner: Option<NumberOwnerItem> = match self.get(&guard_key).await? {
                        Some(item) => Some(from_item(item)?),
                        None => None,
                    };
                    return Err(StoreError::Conflict(match owner {
                        Some(o) if o.user_id == number.user_id.as_str() => Conflict::NumberAlreadyOwned,
                        _ => Conflict::NumberUnavailable,
                    }));
                }
                if TxFailure::conflicted(&reasons) {
                    return Err(StoreError::Conflict(Conflict::NumberUnavailable));
                }
                Err(StoreError::Conflict(Conflict::NumberAlreadyOwned))
            }
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn get_number(&self, user: &UserId, e164: &E164) -> Result<PhoneNumber, StoreError> {
        self.number_or_404(user, e164).await
    }

    async fn list_numbers(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<PhoneNumber>, StoreError> {
        let mut req = self.numbers_query(user).limit(i32::from(limit.get()) + 1);
        if let Some(cursor) = after {
            let position = cursor.position().unwrap_or_default();
            req = req.set_exclusive_start_key(Some(HashMap::from([
                (keys::PK.to_owned(), s(Key::user_pk(user))),
                (keys::SK.to_owned(), s(format!("{NUMBER_PREFIX}{position}"))),
            ])));
        }
        let out = req.send().await.map_err(unavailable)?;
        let data = out.items.unwrap_or_default().into_iter().map(number_from).collect::<Result<Vec<_>, _>>()?;
        Ok(page_cursor(data, limit, |n| n.e164.to_string()))
    }

    async fn all_numbers(&self, user: &UserId) -> Result<Vec<PhoneNumber>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self.numbers_query(user).set_exclusive_start_key(start).send().await.map_err(unavailable)?;
            for item in page.items.unwrap_or_default() {
                out.push(number_from(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn record_order(&self, user: &UserId, e164: &E164, version: u64, order_id: &str) -> Result<(), StoreError> {
        self.update_number(
            user,
            e164,
            "SET #o = :o",
            "#v = :v AND #st = :pending",
            &[("#o", "carrier_order_id"), ("#v", "version"), ("#st", "status")],
            vec![(":o", s(order_id)), (":v", n(version)), (":pending", status(NumberStatus::Pending))],
        )
        .await
    }

    async fn record_active(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        carrier_number_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.update_number(
            user,
            e164,
            "SET #st = :active, #cid = :cid, #ua = :now REMOVE #o, #f",
            "#v = :v AND #st = :pending",
            &[
                ("#st", "status"),
                ("#cid", "carrier_number_id"),
                ("#ua", "updated_at"),
                ("#o", "carrier_order_id"),
                ("#f", "failure"),
                ("#v", "version"),
            ],
            vec![
                (":active", status(NumberStatus::Active)),
                (":cid", s(carrier_number_id)),
                (":now", s(rfc3339(now))),
                (":v", n(version)),
                (":pending", status(NumberStatus::Pending)),
            ],
        )
        .await
    }

    async fn record_purchase_failed(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let items = vec![
            self.update(
                &Key::number(user, e164),
                "SET #st = :failed, #f = :f, #ua = :now REMOVE #o",
                "#v = :v AND #st = :pending",
                &[("#st", "status"), ("#f", "failure"), ("#ua", "updated_at"), ("#o", "carrier_order_id"), ("#v", "version")],
                vec![
                    (":failed", status(NumberStatus::Failed)),
                    (":f", error_map(error)),
                    (":now", s(rfc3339(now))),
                    (":v", n(version)),
                    (":pending", status(NumberStatus::Pending)),
                ],
            )?,
            // The number is free again, for anyone.
            self.delete_guard(e164, user)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled { .. }) => Err(StoreError::Conflict(Conflict::Stale)),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn mark_releasing(&self, user: &UserId, e164: &E164, now: OffsetDateTime) -> Result<PhoneNumber, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.number_or_404(user, e164).await?;
            match current.status {
                NumberStatus::Releasing => return Ok(current),
                NumberStatus::Active => {}
                _ => return Err(StoreError::Conflict(Conflict::NumberNotActive)),
            }
            let mut items = vec![self.update(
                &Key::number(user, e164),
                "SET #st = :releasing, #v = #v + :one, #ua = :now, #ps = :synced REMOVE #mp",
                "#v = :v AND #st = :active",
                &[("#st", "status"), ("#v", "version"), ("#ua", "updated_at"), ("#ps", "profile_sync"), ("#mp", "messaging_profile_id")],
                vec![
                    (":releasing", status(NumberStatus::Releasing)),
                    (":one", n(1)),
                    (":now", s(rfc3339(now))),
                    (":synced", s("synced")),
                    (":v", n(current.version)),
                    (":active", status(NumberStatus::Active)),
                ],
            )?];
            // Off its profile first: the profile's count moves with it.
            if let Some(p) = current.messaging_profile_id {
                items.push(self.profile_count(user, p, -1, false)?);
            }
            match self.transact(items).await {
                Ok(()) => return self.number_or_404(user, e164).await,
                Err(TxFailure::Cancelled { .. }) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict(Conflict::Stale))
    }

    async fn forget_failed(&self, user: &UserId, e164: &E164) -> Result<(), StoreError> {
        match self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(Key::number(user, e164).to_item()))
            .condition_expression("#st = :failed")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":failed", status(NumberStatus::Failed))
            .send()
            .await
            .map_err(classify_write)
        {
            Ok(_) => Ok(()),
            Err(WriteFailure::ConditionFailed) => Err(StoreError::Conflict(Conflict::Stale)),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn purge_released(&self, user: &UserId, e164: &E164, version: u64) -> Result<(), StoreError> {
        let record = Delete::builder()
            .table_name(self.table())
            .set_key(Some(Key::number(user, e164).to_item()))
            .condition_expression("#v = :v AND #st = :releasing")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":v", n(version))
            .expression_attribute_values(":releasing", status(NumberStatus::Releasing));
        let items = vec![TransactWriteItem::builder().delete(built(record.build())?).build(), self.delete_guard(e164, user)?];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Cancelled { .. }) => Err(StoreError::Conflict(Conflict::Stale)),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn assign_number(&self, user: &UserId, e164: &E164, profile: ProfileId, now: OffsetDateTime) -> Result<PhoneNumber, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.number_or_404(user, e164).await?;
            if current.status != NumberStatus::Active {
                return Err(StoreError::Conflict(Conflict::NumberNotActive));
            }
            match current.messaging_profile_id {
                Some(p) if p == profile => return Ok(current),
                Some(_) => return Err(StoreError::Conflict(Conflict::NumberOnAnotherProfile)),
                None => {}
            }
            let items = vec![
                self.update(
                    &Key::number(user, e164),
                    "SET #mp = :p, #ps = :pending, #v = #v + :one, #ua = :now REMOVE #pe",
                    "#v = :v AND #st = :active AND attribute_not_exists(#mp)",
                    &[
                        ("#mp", "messaging_profile_id"),
                        ("#ps", "profile_sync"),
                        ("#pe", "profile_sync_error"),
                        ("#v", "version"),
                        ("#ua", "updated_at"),
                        ("#st", "status"),
                    ],
                    vec![
                        (":p", s(profile.to_string())),
                        (":pending", s("pending")),
                        (":one", n(1)),
                        (":now", s(rfc3339(now))),
                        (":v", n(current.version)),
                        (":active", status(NumberStatus::Active)),
                    ],
                )?,
                // The profile must exist and not be deleting; its count moves in the same step.
                self.profile_count(user, profile, 1, true)?,
            ];
            match self.transact(items).await {
                Ok(()) => return self.number_or_404(user, e164).await,
                Err(TxFailure::Cancelled { reasons }) if TxFailure::condition_failed_at(&reasons, 1) => {
                    return Err(match self.get_profile_item(user, profile).await? {
                        None => StoreError::NotFound,
                        Some(_) => StoreError::Conflict(Conflict::ProfileDeleting),
                    });
                }
                Err(TxFailure::Cancelled { .. }) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict(Conflict::Stale))
    }

    async fn unassign_number(
        &self,
        user: &UserId,
        e164: &E164,
        profile: ProfileId,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.number_or_404(user, e164).await?;
            if current.messaging_profile_id != Some(profile) {
                return Err(StoreError::Conflict(Conflict::NumberNotOnProfile));
            }
            let items = vec![
                self.update(
                    &Key::number(user, e164),
                    "SET #ps = :pending, #v = #v + :one, #ua = :now REMOVE #mp, #pe",
                    "#v = :v AND #mp = :p",
                    &[
                        ("#mp", "messaging_profile_id"),
                        ("#ps", "profile_sync"),
                        ("#pe", "profile_sync_error"),
                        ("#v", "version"),
                        ("#ua", "updated_at"),
                    ],
                    vec![
                        (":pending", s("pending")),
                        (":one", n(1)),
                        (":now", s(rfc3339(now))),
                        (":v", n(current.version)),
                        (":p", s(profile.to_string())),
                    ],
                )?,
                self.profile_count(user, profile, -1, false)?,
            ];
            match self.transact(items).await {
                Ok(()) => return self.number_or_404(user, e164).await,
                Err(TxFailure::Cancelled { .. }) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict(Conflict::Stale))
    }

    async fn record_number_profile_synced(&self, user: &UserId, e164: &E164, version: u64) -> Result<(), StoreError> {
        self.update_number(
            user,
            e164,
            "SET #ps = :synced REMOVE #pe",
            "#v = :v",
            &[("#ps", "profile_sync"), ("#pe", "profile_sync_error"), ("#v", "version")],
            vec![(":synced", s("synced")), (":v", n(version))],
        )
        .await
    }

    async fn record_number_profile_failed(&self, user: &UserId, e164: &E164, version: u64, error: &SyncError) -> Result<(), StoreError> {
        self.update_number(
            user,
            e164,
            "SET #ps = :failed, #pe = :e",
            "#v = :v",
            &[("#ps", "profile_sync"), ("#pe", "profile_sync_error"), ("#v", "version")],
            vec![(":failed", s("failed")), (":e", error_map(error)), (":v", n(version))],
        )
        .await
    }
}
