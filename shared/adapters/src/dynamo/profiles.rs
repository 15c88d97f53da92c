//! The messaging-profile half of the store: profiles, the per-user active pointer, and the
//! activation transaction that keeps exactly one profile active.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Get, TransactGetItem};
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::profiles::{Activation, MessagingProfile, ProfilePatch, ProfileReader, ProfileSyncLedger, ProfileWriter};
use patchbay_domain::{
    CarrierProfileId, CommandEnvelope, Conflict, Cursor, IdempotencyKey, Limit, Page, ProfileId, StoreError, SyncError, SyncState, UserId,
};
use time::OffsetDateTime;

use super::errors::{Role, TxFailure, WriteFailure};
use super::items::{ActivePointerItem, ProfileItem};
use super::keys::{Key, PROFILE_PREFIX};
use super::table::{attr, backoff, built, from_item, n, s, to_item, DynamoStore, Tx, Values, RACE_ATTEMPTS};
use crate::wire::rfc3339;

pub(super) fn profile_from(item: super::table::Item) -> Result<MessagingProfile, StoreError> {
    from_item::<ProfileItem>(item)?.try_into()
}

fn pointer_profile(p: &Option<ActivePointerItem>) -> Option<ProfileId> {
    p.as_ref().and_then(|p| ProfileId::parse(&p.profile_id).ok())
}

impl DynamoStore {
    pub(crate) async fn get_profile_item(&self, user: &UserId, id: ProfileId) -> Result<Option<MessagingProfile>, StoreError> {
        self.get(&Key::profile(user, id)).await?.map(profile_from).transpose()
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

    /// One conditional UpdateItem on a profile; a failed condition is classified by a fresh read.
    #[allow(clippy::too_many_arguments)] // an UpdateItem's parts, plus the conflict it means
    async fn write_profile(
        &self,
        user: &UserId,
        id: ProfileId,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Values<'_>,
        otherwise: Conflict,
    ) -> Result<MessagingProfile, StoreError> {
        match self.update_mapped(&Key::profile(user, id), update, condition, names, values, profile_from).await? {
            Some(p) => Ok(p),
            None => Err(self.classify_profile_miss(user, id, otherwise).await),
        }
    }

    /// The pointer and the profile, read together as one serialisable snapshot.
    async fn read_pointer_and_profile(
        &self,
        user: &UserId,
        id: ProfileId,
    ) -> Result<(Option<ActivePointerItem>, Option<MessagingProfile>), StoreError> {
        let get = |key: Key| -> Result<TransactGetItem, StoreError> {
            Ok(TransactGetItem::builder().get(built(Get::builder().table_name(self.table()).set_key(Some(key.to_item())).build())?).build())
        };
        let req =
            self.client().transact_get_items().transact_items(get(Key::active_profile(user))?).transact_items(get(Key::profile(user, id))?);
        let out = self.read(|| req.clone().send()).await?;
        let mut responses = out.responses.unwrap_or_default().into_iter().map(|r| r.item);
        let pointer = responses.next().flatten().map(from_item::<ActivePointerItem>).transpose()?;
        let profile = responses.next().flatten().map(profile_from).transpose()?;
        Ok((pointer, profile))
    }
}

#[async_trait]
impl ProfileReader for DynamoStore {
    async fn get_profile(&self, user: &UserId, id: ProfileId) -> Result<MessagingProfile, StoreError> {
        self.get_profile_item(user, id).await?.ok_or(StoreError::NotFound)
    }

    async fn list_profiles(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<MessagingProfile>, StoreError> {
        self.list_page(&Key::user_pk(user), PROFILE_PREFIX, after, limit, true, profile_from, |p| p.id.to_string()).await
    }

    async fn active_profile(&self, user: &UserId) -> Result<Option<ProfileId>, StoreError> {
        Ok(pointer_profile(&self.get_as::<ActivePointerItem>(&Key::active_profile(user)).await?))
    }
}

#[async_trait]
impl ProfileWriter for DynamoStore {
    async fn create_profile(
        &self,
        profile: &MessagingProfile,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<MessagingProfile>, StoreError> {
        let item = to_item(&ProfileItem::from(profile))?;
        let work = CommandEnvelope::sync_profile(profile.user_id.clone(), profile.id, profile.version);
        let mut tx = Tx::new()
            .with(Role::Record, self.put(item, "attribute_not_exists(pk)", &[], vec![])?)
            .with(Role::Outbox, self.outbox_put(&profile.user_id, &work)?);
        let guard_key = match idempotency {
            Some((key, fingerprint)) => {
                let (guard_key, guard) =
                    self.idempotency_put(&profile.user_id, "create-profile", key, &profile.id.to_string(), fingerprint)?;
                tx.push(Role::Idempotency, guard);
                Some((guard_key, fingerprint))
            }
            None => None,
        };
        match self.transact(tx).await {
            Ok(()) => Ok(Created::New(profile.clone())),
            Err(TxFailure::Refused(c)) if c.failed(Role::Idempotency) => {
                let (guard_key, fingerprint) = guard_key.ok_or_else(|| StoreError::Corrupt("a guard refused without a key".into()))?;
                let resource = self.idempotent_resource(&guard_key, fingerprint).await?;
                let id = ProfileId::parse(&resource).map_err(|_| StoreError::Corrupt("idempotency resource_id".into()))?;
                match self.get_profile_item(&profile.user_id, id).await? {
                    Some(p) => Ok(Created::Replayed(p)),
                    None => Err(StoreError::NotFound),
                }
            }
            Err(TxFailure::Refused(_)) => Err(StoreError::Conflict(Conflict::AlreadyExists)),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn update_profile(
        &self,
        user: &UserId,
        id: ProfileId,
        patch: &ProfilePatch,
        now: OffsetDateTime,
    ) -> Result<MessagingProfile, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            // The version is read, so that the sync command names the version this write makes, and
            // the write is conditioned on it.
            let Some(current) = self.get_profile_item(user, id).await? else { return Err(StoreError::NotFound) };
            if current.is_deleting() {
                return Err(StoreError::Conflict(Conflict::ProfileDeleting));
            }
            let next = current.version + 1;
            let mut sets = vec!["#v = :next", "#ss = :pending", "#ua = :now"];
            let mut values = vec![
                (":next", n(next)),
                (":v", n(current.version)),
                (":pending", attr(&SyncState::Pending)),
                (":deleting", attr(&SyncState::Deleting)),
                (":now", s(rfc3339(now))),
            ];
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
            let tx = Tx::new()
                .with(
                    Role::Record,
                    self.update(&Key::profile(user, id), &update, "attribute_exists(pk) AND #v = :v AND #ss <> :deleting", &used, values)?,
                )
                .with(Role::Outbox, self.outbox_put(user, &CommandEnvelope::sync_profile(user.clone(), id, next))?);
            match self.transact(tx).await {
                Ok(()) => {
                    let mut p = current;
                    if let Some(name) = &patch.name {
                        p.name = name.clone();
                    }
                    if let Some(wl) = &patch.whitelisted_destinations {
                        p.whitelisted_destinations = wl.clone();
                    }
                    p.version = next;
                    p.sync_state = SyncState::Pending;
                    p.sync_error = None;
                    p.updated_at = now;
                    return Ok(p);
                }
                // Changed (or deleted) since it was read: read again.
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the profile kept changing while it was being updated".into()))
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
                // Already being deleted: its sync is written again (a repeated DELETE retries a
                // delete the carrier refused), as long as it is still deleting at that version.
                let work = CommandEnvelope::sync_profile(user.clone(), id, current.version);
                if self
                    .write_again(
                        &Key::profile(user, id),
                        "#v = :v AND #ss = :deleting",
                        &[("#v", "version"), ("#ss", "sync_state")],
                        vec![(":v", n(current.version)), (":deleting", attr(&SyncState::Deleting))],
                        user,
                        &work,
                    )
                    .await?
                {
                    return Ok(current);
                }
                backoff(attempt).await;
                continue;
            }
            let names = [("#v", "version"), ("#ss", "sync_state"), ("#ua", "updated_at"), ("#act", "active"), ("#nc", "assigned_count")];
            // Conditions pin the state we read (its version among it): if an activation, an
            // assignment or an update slips in between, the condition fails and we read again.
            let mark = self.update(
                &Key::profile(user, id),
                "SET #v = :next, #ss = :deleting, #ua = :now, #act = :false",
                // No number may be assigned meanwhile: assignments move the count in their own transaction.
                "attribute_exists(pk) AND #v = :v AND #ss <> :deleting AND #act = :was AND (attribute_not_exists(#nc) OR #nc = :zero)",
                &names,
                vec![
                    (":next", n(current.version + 1)),
                    (":v", n(current.version)),
                    (":deleting", attr(&SyncState::Deleting)),
                    (":now", s(rfc3339(now))),
                    (":false", AttributeValue::Bool(false)),
                    (":was", AttributeValue::Bool(current.active)),
                    (":zero", n(0)),
                ],
            )?;
            let work = CommandEnvelope::sync_profile(user.clone(), id, current.version + 1);
            let mut tx = Tx::new().with(Role::Record, mark).with(Role::Outbox, self.outbox_put(user, &work)?);
            if current.active {
                tx.push(
                    Role::ActivePointer,
                    self.delete(&Key::active_profile(user), "profile_id = :id", &[], vec![(":id", s(id.to_string()))])?,
                );
            }
            match self.transact(tx).await {
                Ok(()) => {
                    let mut p = current;
                    p.sync_state = SyncState::Deleting;
                    p.active = false;
                    p.version += 1;
                    p.updated_at = now;
                    return Ok(p);
                }
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        // The profile kept changing under us (activations, assignments): nothing was decided.
        Err(StoreError::Contended("the profile kept changing while it was being deleted".into()))
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

            let mut tx = Tx::new().with(
                Role::Record,
                self.update(
                    &Key::profile(user, id),
                    "SET #act = :true",
                    "attribute_exists(pk) AND #ss <> :deleting",
                    &[("#act", "active"), ("#ss", "sync_state")],
                    vec![(":true", AttributeValue::Bool(true)), (":deleting", attr(&SyncState::Deleting))],
                )?,
            );
            if let Some(old) = previous {
                tx.push(
                    Role::PreviousProfile,
                    self.update(
                        &Key::profile(user, old),
                        "SET #act = :false",
                        "attribute_exists(pk)",
                        &[("#act", "active")],
                        vec![(":false", AttributeValue::Bool(false))],
                    )?,
                );
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
            tx.push(
                Role::ActivePointer,
                match &pointer {
                    Some(p) => self.put(to_item(&next)?, "version = :seen", &[], vec![(":seen", n(p.version))])?,
                    None => self.put(to_item(&next)?, "attribute_not_exists(pk)", &[], vec![])?,
                },
            );

            match self.transact(tx).await {
                Ok(()) => {
                    let mut profile = profile;
                    profile.active = true;
                    tracing::info!(user = %user, profile = %id, previous = ?previous.map(|p| p.to_string()), attempt, "profile activated");
                    return Ok(Activation { profile, deactivated: previous });
                }
                // Lost the race (the pointer moved, or a profile changed state): read again.
                Err(TxFailure::Refused(c)) => {
                    tracing::debug!(user = %user, profile = %id, attempt, reasons = ?c.reasons, "activation lost a race; retrying");
                    backoff(attempt).await;
                }
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Conflict(Conflict::ActivationRace))
    }
}

#[async_trait]
impl ProfileSyncLedger for DynamoStore {
    async fn record_synced(
        &self,
        user: &UserId,
        id: ProfileId,
        version: u64,
        carrier_id: &CarrierProfileId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.write_profile(
            user,
            id,
            "SET #ss = :synced, #cid = :cid, #ua = :now REMOVE #se",
            "attribute_exists(pk) AND #v = :v AND #ss = :pending",
            &[("#ss", "sync_state"), ("#cid", "carrier_profile_id"), ("#se", "sync_error"), ("#v", "version"), ("#ua", "updated_at")],
            vec![
                (":synced", attr(&SyncState::Synced)),
                (":cid", s(carrier_id.as_str())),
                (":v", n(version)),
                (":pending", attr(&SyncState::Pending)),
                (":now", s(rfc3339(now))),
            ],
            Conflict::Stale,
        )
        .await
        .map(|_| ())
    }

    async fn record_carrier_id(&self, user: &UserId, id: ProfileId, carrier_id: &CarrierProfileId) -> Result<(), StoreError> {
        self.write_profile(
            user,
            id,
            "SET #cid = :cid",
            "attribute_exists(pk) AND attribute_not_exists(#cid)",
            &[("#cid", "carrier_profile_id")],
            vec![(":cid", s(carrier_id.as_str()))],
            Conflict::AlreadyExists,
        )
        .await
        .map(|_| ())
    }

    async fn record_sync_failed(
        &self,
        user: &UserId,
        id: ProfileId,
        version: u64,
        state: SyncState,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let state = if state == SyncState::Deleting { SyncState::Deleting } else { SyncState::Failed };
        self.write_profile(
            user,
            id,
            "SET #ss = :state, #se = :err, #ua = :now",
            "attribute_exists(pk) AND #v = :v",
            &[("#ss", "sync_state"), ("#se", "sync_error"), ("#v", "version"), ("#ua", "updated_at")],
            vec![(":state", attr(&state)), (":err", attr(error)), (":v", n(version)), (":now", s(rfc3339(now)))],
            Conflict::Stale,
        )
        .await
        .map(|_| ())
    }

    async fn purge_profile(&self, user: &UserId, id: ProfileId, version: u64) -> Result<(), StoreError> {
        match self
            .delete_item(
                &Key::profile(user, id),
                "#v = :v AND #ss = :deleting",
                &[("#v", "version"), ("#ss", "sync_state")],
                vec![(":v", n(version)), (":deleting", attr(&SyncState::Deleting))],
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(WriteFailure::ConditionFailed) => Err(self.classify_profile_miss(user, id, Conflict::Stale).await),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn retry_exhausted(&self, user: &UserId, id: ProfileId, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.reset_exhausted(&Key::profile(user, id), "sync_state", "sync_error", now).await
    }
}
