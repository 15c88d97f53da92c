//! The number half of the store: a global one-owner guard per number, the user's record beside it,
//! and every move between states a condition or a transaction.

mod sync;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::{NumberReader, NumberStatus, NumberWriter, PhoneNumber};
use patchbay_domain::{
    CommandEnvelope, Conflict, Cursor, IdempotencyKey, Limit, Page, ProfileId, StoreError, SyncError, SyncState, UserId, E164,
};
use time::OffsetDateTime;

use crate::dynamo::errors::{Cancellation, Role, TxFailure};
use crate::dynamo::items::{NumberItem, NumberOwnerItem};
use crate::dynamo::keys::{Key, NUMBER_PREFIX};
use crate::dynamo::table::{attr, backoff, from_item, n, s, to_item, DynamoStore, Item, Tx, Values, RACE_ATTEMPTS};
use crate::wire::rfc3339;

pub(super) fn number_from(item: Item) -> Result<PhoneNumber, StoreError> {
    from_item::<NumberItem>(item)?.try_into()
}

/// The two carrier-side aspects of an active number the worker syncs.
pub(super) enum NumberSide {
    /// The messaging profile it is on.
    Profile,
    /// The SIP connection its calls go to.
    Voice,
}

/// The number's global one-owner guard item, naming `number`'s user.
pub(super) fn owner_guard(number: &PhoneNumber) -> Result<Item, StoreError> {
    let key = Key::number_owner(&number.e164);
    to_item(&NumberOwnerItem { pk: key.pk, sk: key.sk, user_id: number.user_id.to_string(), carrier: number.carrier })
}

fn status(st: NumberStatus) -> AttributeValue {
    attr(&st)
}

/// How long after a keyless create its retry (the same request, its answer lost) is recognised by
/// the record it made, and answered with it rather than refused as a second create.
pub(crate) const KEYLESS_RETRY_WINDOW: time::Duration = time::Duration::minutes(5);

/// The number's sync at its version.
pub(crate) fn sync_command(n: &PhoneNumber) -> CommandEnvelope {
    CommandEnvelope::sync_number(n.user_id.clone(), n.e164.clone(), n.version)
}

/// The number's sync at the version the write about to be made gives it.
pub(crate) fn next_sync(current: &PhoneNumber) -> CommandEnvelope {
    CommandEnvelope::sync_number(current.user_id.clone(), current.e164.clone(), current.version + 1)
}

impl DynamoStore {
    fn delete_guard(&self, e164: &E164, user: &UserId) -> Result<TransactWriteItem, StoreError> {
        self.delete(&Key::number_owner(e164), "user_id = :u", &[], vec![(":u", s(user.as_str()))])
    }

    fn profile_count(&self, user: &UserId, profile: ProfileId, delta: i64, must_be_live: bool) -> Result<TransactWriteItem, StoreError> {
        let condition = if must_be_live { "attribute_exists(pk) AND #ss <> :deleting" } else { "attribute_exists(pk)" };
        let mut values = vec![(":d", AttributeValue::N(delta.to_string()))];
        let mut names = vec![("#nc", "assigned_count")];
        if must_be_live {
            values.push((":deleting", attr(&SyncState::Deleting)));
            names.push(("#ss", "sync_state"));
        }
        self.update(&Key::profile(user, profile), "ADD #nc :d", condition, &names, values)
    }

    /// A purchase's writes (or a reservation's): the number's global one-owner guard and the
    /// user's pending record, which may replace only the user's own earlier failed purchase.
    /// With an assistant's reservation the saga buys the number (its command is the assistant's);
    /// a plain purchase's sync is an outbox item of this same transaction.
    pub(super) fn purchase_tx(&self, number: &PhoneNumber) -> Result<Tx, StoreError> {
        let guard = owner_guard(number)?;
        let mut tx = Tx::new();
        if number.assistant_id.is_none() {
            tx.push(Role::Outbox, self.outbox_put(&number.user_id, &sync_command(number))?);
        }
        Ok(tx
            // One owner per number, for everyone.
            .with(Role::OwnerGuard, self.put(guard, "attribute_not_exists(pk)", &[], vec![])?)
            .with(
                Role::Record,
                self.put(
                    to_item(&NumberItem::from(number))?,
                    "attribute_not_exists(pk) OR #st = :failed",
                    &[("#st", "status")],
                    vec![(":failed", status(NumberStatus::Failed))],
                )?,
            ))
    }

    /// After a keyless purchase (or reservation) was refused by the owner guard: the caller's own
    /// record for the number, when it is the one this request would have made (a retry of a request
    /// whose answer was lost: the same carrier, made within [`KEYLESS_RETRY_WINDOW`], pending or
    /// already bought by the time the retry came), so that the retry answers it instead of 409.
    pub(super) async fn own_recent(&self, number: &PhoneNumber) -> Result<Option<PhoneNumber>, StoreError> {
        let Some(item) = self.get(&Key::number(&number.user_id, &number.e164)).await? else { return Ok(None) };
        let stored = number_from(item)?;
        let same = matches!(stored.status, NumberStatus::Pending | NumberStatus::Active)
            && stored.carrier == number.carrier
            && stored.assistant_id.is_some() == number.assistant_id.is_some()
            && number.created_at - stored.created_at < KEYLESS_RETRY_WINDOW;
        Ok(same.then_some(stored))
    }

    /// Why a purchase's transaction was refused: someone else holds the number, or the caller does.
    pub(super) async fn purchase_refused(&self, c: &Cancellation, number: &PhoneNumber) -> StoreError {
        if c.failed(Role::OwnerGuard) {
            return match self.get_as::<NumberOwnerItem>(&Key::number_owner(&number.e164)).await {
                Ok(Some(o)) if o.user_id == number.user_id.as_str() => StoreError::Conflict(Conflict::NumberAlreadyOwned),
                Ok(_) => StoreError::Conflict(Conflict::NumberUnavailable),
                Err(e) => e,
            };
        }
        // The caller's own record is there and not a failed purchase.
        StoreError::Conflict(Conflict::NumberAlreadyOwned)
    }

    pub(super) async fn number_or_404(&self, user: &UserId, e164: &E164) -> Result<PhoneNumber, StoreError> {
        self.get(&Key::number(user, e164)).await?.map(number_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// What the carrier did about one side of a number (its messaging profile, or where its calls
    /// go): `synced`, or `failed` with why; guarded by the version the worker read.
    pub(super) async fn record_number_side(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        side: NumberSide,
        outcome: Result<(), &SyncError>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (state, error) = match side {
            NumberSide::Profile => ("profile_sync", "profile_sync_error"),
            NumberSide::Voice => ("voice_sync", "voice_sync_error"),
        };
        let names = [("#s", state), ("#e", error), ("#v", "version"), ("#ua", "updated_at")];
        let (update, mut values) = match outcome {
            Ok(()) => ("SET #s = :state, #ua = :now REMOVE #e", vec![(":state", attr(&SyncState::Synced))]),
            Err(e) => ("SET #s = :state, #e = :e, #ua = :now", vec![(":state", attr(&SyncState::Failed)), (":e", attr(e))]),
        };
        values.extend([(":v", n(version)), (":now", s(rfc3339(now)))]);
        self.update_number(user, e164, update, "#v = :v", &names, values).await
    }

    /// The mark that the user's record of `e164` was removed, kept a day (TTL), in the removing
    /// transaction.
    pub(crate) fn gone_mark(&self, user: &UserId, e164: &E164) -> Result<TransactWriteItem, StoreError> {
        let key = Key::number_gone(user, e164);
        let expires = OffsetDateTime::now_utc().unix_timestamp() + 24 * 3600;
        let item: Item = [("pk", s(key.pk)), ("sk", s(key.sk)), ("expires_at", AttributeValue::N(expires.to_string()))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        self.put(item, "", &[], vec![])
    }

    /// A repeated request that finds its change made: the number's sync at its current version
    /// written again, as long as the record is still at that version and `condition` holds.
    pub(crate) async fn again(
        &self,
        current: &PhoneNumber,
        condition: &str,
        mut values: Values<'_>,
        names: &[(&str, &str)],
    ) -> Result<bool, StoreError> {
        let mut names = names.to_vec();
        names.push(("#v", "version"));
        values.push((":v", n(current.version)));
        let key = Key::number(&current.user_id, &current.e164);
        self.write_again(&key, &format!("#v = :v AND {condition}"), &names, values, &current.user_id, &sync_command(current)).await
    }

    /// A number's release: `releasing` (off its profile and its SIP connection, their counts and
    /// slot moved in the same transaction) with its sync as an outbox item; `extra` joins the same
    /// transaction (a saga's compensation fails its assistant there, `Conflict(Stale)` if that
    /// refuses).
    pub(crate) async fn mark_releasing_with(
        &self,
        user: &UserId,
        e164: &E164,
        now: OffsetDateTime,
        extra: Vec<(Role, TransactWriteItem)>,
    ) -> Result<PhoneNumber, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.number_or_404(user, e164).await?;
            match current.status {
                NumberStatus::Releasing => {
                    // Already being released: its sync written again (a repeated DELETE retries a
                    // release that stopped), as long as it is still releasing at that version.
                    if self.again(&current, "#st = :was", vec![(":was", status(NumberStatus::Releasing))], &[("#st", "status")]).await? {
                        return Ok(current);
                    }
                    backoff(attempt).await;
                    continue;
                }
                // A lost number is released like an active one (the carrier's release finds nothing).
                NumberStatus::Active | NumberStatus::Lost => {}
                _ => return Err(StoreError::Conflict(Conflict::NumberNotActive)),
            }
            let mut tx = Tx::new()
                .with(
                    Role::Record,
                    self.update(
                        &Key::number(user, e164),
                        "SET #st = :releasing, #v = #v + :one, #ua = :now, #ps = :synced REMOVE #mp, #sc, #sr, #sa, #vs, #vse",
                        "#v = :v AND #st = :was",
                        &[
                            ("#st", "status"),
                            ("#v", "version"),
                            ("#ua", "updated_at"),
                            ("#ps", "profile_sync"),
                            ("#mp", "messaging_profile_id"),
                            ("#sc", "sip_connection_id"),
                            ("#sr", "sip_role"),
                            ("#sa", "sip_active"),
                            ("#vs", "voice_sync"),
                            ("#vse", "voice_sync_error"),
                        ],
                        vec![
                            (":releasing", status(NumberStatus::Releasing)),
                            (":one", n(1)),
                            (":now", s(rfc3339(now))),
                            (":synced", attr(&SyncState::Synced)),
                            (":v", n(current.version)),
                            (":was", status(current.status)),
                        ],
                    )?,
                )
                .with(Role::Outbox, self.outbox_put(user, &next_sync(&current))?);
            // Off its profile first: the profile's count moves with it.
            if let Some(p) = current.messaging_profile_id {
                tx.push(Role::ProfileCount, self.profile_count(user, p, -1, false)?);
            }
            // Off its SIP connection too (the carrier drops its routing with the number).
            if let Some(v) = &current.voice {
                let primary = v.role == patchbay_domain::numbers::NumberRole::Primary;
                tx.push(Role::Connection, self.connection_side(user, v.connection_id, e164, -1, false, primary)?);
            }
            for (role, item) in &extra {
                tx.push(*role, item.clone());
            }
            match self.transact(tx).await {
                // Answered as the write left it, never read back: the release may be done (and the
                // record gone) by the time a read would run.
                Ok(()) => {
                    let mut after = current;
                    after.status = NumberStatus::Releasing;
                    after.version += 1;
                    after.updated_at = now;
                    after.profile_sync = SyncState::Synced;
                    after.messaging_profile_id = None;
                    after.voice = None;
                    after.voice_sync = None;
                    after.voice_sync_error = None;
                    return Ok(after);
                }
                Err(TxFailure::Refused(c)) if extra.iter().any(|(role, _)| c.failed(*role)) => {
                    return Err(StoreError::Conflict(Conflict::Stale))
                }
                // The record changed since it was read: read it again.
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the number kept changing while it was being released".into()))
    }

    /// A version-guarded single-item update of a number record.
    pub(super) async fn update_number(
        &self,
        user: &UserId,
        e164: &E164,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        self.update_guarded(&Key::number(user, e164), update, condition, names, values).await
    }
}

#[async_trait]
impl NumberReader for DynamoStore {
    async fn get_number(&self, user: &UserId, e164: &E164) -> Result<PhoneNumber, StoreError> {
        self.number_or_404(user, e164).await
    }

    async fn list_numbers(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<PhoneNumber>, StoreError> {
        self.list_page(&Key::user_pk(user), NUMBER_PREFIX, after, limit, true, number_from, |n| n.e164.to_string()).await
    }

    async fn all_numbers(&self, user: &UserId) -> Result<Vec<PhoneNumber>, StoreError> {
        self.query_all(&Key::user_pk(user), NUMBER_PREFIX).await?.into_iter().map(number_from).collect()
    }
}

#[async_trait]
impl NumberWriter for DynamoStore {
    async fn create_purchase(
        &self,
        number: &PhoneNumber,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<PhoneNumber>, StoreError> {
        let mut tx = self.purchase_tx(number)?;
        let idem = match idempotency {
            Some((key, fingerprint)) => {
                let (k, put) = self.idempotency_put(&number.user_id, "buy-number", key, number.e164.as_str(), fingerprint)?;
                tx.push(Role::Idempotency, put);
                Some((k, fingerprint))
            }
            None => None,
        };
        match self.transact(tx).await {
            Ok(()) => Ok(Created::New(number.clone())),
            Err(TxFailure::Refused(c)) => {
                if let Some((k, fingerprint)) = idem.filter(|_| c.failed(Role::Idempotency)) {
                    let e164 = self.idempotent_resource(&k, fingerprint).await?;
                    let e164 = E164::stored(&e164).map_err(|_| StoreError::Corrupt("idempotency resource_id".into()))?;
                    return self.number_or_404(&number.user_id, &e164).await.map(Created::Replayed);
                }
                if c.failed(Role::OwnerGuard) {
                    if let Some(mine) = self.own_recent(number).await? {
                        return Ok(Created::Replayed(mine));
                    }
                }
                Err(self.purchase_refused(&c, number).await)
            }
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn mark_releasing(&self, user: &UserId, e164: &E164, now: OffsetDateTime) -> Result<PhoneNumber, StoreError> {
        self.mark_releasing_with(user, e164, now, Vec::new()).await
    }

    async fn forget_failed(&self, user: &UserId, e164: &E164) -> Result<(), StoreError> {
        let tx = Tx::new()
            .with(
                Role::Record,
                self.delete(
                    &Key::number(user, e164),
                    "#st = :failed",
                    &[("#st", "status")],
                    vec![(":failed", status(NumberStatus::Failed))],
                )?,
            )
            .with(Role::Record, self.gone_mark(user, e164)?);
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Refused(_)) => match self.was_removed(user, e164).await? {
                // Forgotten already (this very call, its answer lost and sent again).
                true => Ok(()),
                false => Err(StoreError::Conflict(Conflict::Stale)),
            },
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn was_removed(&self, user: &UserId, e164: &E164) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Ok(self.get(&Key::number_gone(user, e164)).await?.is_some_and(|i| match i.get("expires_at") {
            Some(AttributeValue::N(v)) => v.parse::<i64>().is_ok_and(|at| at > now),
            _ => false,
        }))
    }

    async fn assign_number(&self, user: &UserId, e164: &E164, profile: ProfileId, now: OffsetDateTime) -> Result<PhoneNumber, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.number_or_404(user, e164).await?;
            if current.status != NumberStatus::Active {
                return Err(StoreError::Conflict(Conflict::NumberNotActive));
            }
            match current.messaging_profile_id {
                Some(p) if p == profile && current.profile_sync != SyncState::Pending => return Ok(current),
                // On it already, the carrier's copy still to come: its sync written again.
                Some(p) if p == profile => {
                    let (cond, values) =
                        ("#mp = :p AND #ps = :pending", vec![(":p", s(p.to_string())), (":pending", attr(&SyncState::Pending))]);
                    if self.again(&current, cond, values, &[("#mp", "messaging_profile_id"), ("#ps", "profile_sync")]).await? {
                        return Ok(current);
                    }
                    backoff(attempt).await;
                    continue;
                }
                Some(_) => return Err(StoreError::Conflict(Conflict::NumberOnAnotherProfile)),
                None => {}
            }
            let tx = Tx::new()
                .with(
                    Role::Record,
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
                            (":pending", attr(&SyncState::Pending)),
                            (":one", n(1)),
                            (":now", s(rfc3339(now))),
                            (":v", n(current.version)),
                            (":active", status(NumberStatus::Active)),
                        ],
                    )?,
                )
                // The profile must exist and not be deleting; its count moves in the same step.
                .with(Role::ProfileCount, self.profile_count(user, profile, 1, true)?)
                .with(Role::Outbox, self.outbox_put(user, &next_sync(&current))?);
            match self.transact(tx).await {
                Ok(()) => return self.number_or_404(user, e164).await,
                Err(TxFailure::Refused(c)) if c.failed(Role::ProfileCount) => {
                    return Err(match self.get_profile_item(user, profile).await? {
                        None => StoreError::NotFound,
                        Some(_) => StoreError::Conflict(Conflict::ProfileDeleting),
                    });
                }
                // The number changed since it was read: read it again.
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the number kept changing while it was being assigned".into()))
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
            if current.messaging_profile_id.is_none() && current.profile_sync == SyncState::Pending {
                // Off every profile already, the carrier's copy still to come (a retry of an
                // unassign whose answer was lost): its sync written again, answered as done.
                let (cond, values) = ("attribute_not_exists(#mp) AND #ps = :pending", vec![(":pending", attr(&SyncState::Pending))]);
                if self.again(&current, cond, values, &[("#mp", "messaging_profile_id"), ("#ps", "profile_sync")]).await? {
                    return Ok(current);
                }
                backoff(attempt).await;
                continue;
            }
            if current.messaging_profile_id != Some(profile) {
                return Err(StoreError::Conflict(Conflict::NumberNotOnProfile));
            }
            let tx = Tx::new()
                .with(
                    Role::Record,
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
                            (":pending", attr(&SyncState::Pending)),
                            (":one", n(1)),
                            (":now", s(rfc3339(now))),
                            (":v", n(current.version)),
                            (":p", s(profile.to_string())),
                        ],
                    )?,
                )
                .with(Role::ProfileCount, self.profile_count(user, profile, -1, false)?)
                .with(Role::Outbox, self.outbox_put(user, &next_sync(&current))?);
            match self.transact(tx).await {
                Ok(()) => return self.number_or_404(user, e164).await,
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the number kept changing while it was being unassigned".into()))
    }
}
