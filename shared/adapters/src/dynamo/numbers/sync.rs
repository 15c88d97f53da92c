//! The worker's number writes (`NumberSyncLedger`): what the carrier did with a purchase, a release or a profile change.

use async_trait::async_trait;
use patchbay_domain::kernel::sync::was_given_up;
use patchbay_domain::numbers::{events, NumberStatus, NumberSyncLedger, PhoneNumber};
use patchbay_domain::{Conflict, StoreError, SyncError, UserId, E164};
use time::OffsetDateTime;

use super::{status, NumberSide};
use crate::dynamo::errors::{Role, TxFailure};
use crate::dynamo::keys::Key;
use crate::dynamo::table::{attr, n, s, DynamoStore, Tx};
use crate::wire::rfc3339;

#[async_trait]
impl NumberSyncLedger for DynamoStore {
    async fn record_order(&self, user: &UserId, e164: &E164, version: u64, order_id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        self.update_number(
            user,
            e164,
            "SET #o = :o, #ua = :now",
            "#v = :v AND #st = :pending",
            &[("#o", "carrier_order_id"), ("#v", "version"), ("#st", "status"), ("#ua", "updated_at")],
            vec![(":o", s(order_id)), (":v", n(version)), (":pending", status(NumberStatus::Pending)), (":now", s(rfc3339(now)))],
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
        // The record as it is (its carrier, its assistant) for the event; the write's condition
        // pins the version read by the caller.
        let current = self.number_or_404(user, e164).await?;
        let key = Key::number(user, e164);
        let record = self.update(
            &key,
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
        )?;
        let tx = Tx::new().with(Role::Record, record).with(Role::Event, self.event_put(&events::active(&current, carrier_number_id, now))?);
        self.transact_guarded(tx, &key).await
    }

    async fn record_purchase_failed(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let current = self.number_or_404(user, e164).await?;
        let tx = Tx::new()
            .with(
                Role::Record,
                self.update(
                    &Key::number(user, e164),
                    "SET #st = :failed, #f = :f, #ua = :now REMOVE #o",
                    "#v = :v AND #st = :pending",
                    &[("#st", "status"), ("#f", "failure"), ("#ua", "updated_at"), ("#o", "carrier_order_id"), ("#v", "version")],
                    vec![
                        (":failed", status(NumberStatus::Failed)),
                        (":f", attr(error)),
                        (":now", s(rfc3339(now))),
                        (":v", n(version)),
                        (":pending", status(NumberStatus::Pending)),
                    ],
                )?,
            )
            // The number is free again, for anyone.
            .with(Role::OwnerGuard, self.delete_guard(e164, user)?)
            .with(Role::Event, self.event_put(&events::purchase_failed(&current, error, now))?);
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            // The record moved on (another delivery recorded it first) or the guard is not ours.
            Err(TxFailure::Refused(_)) => Err(StoreError::Conflict(Conflict::Stale)),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn purge_released(&self, user: &UserId, e164: &E164, version: u64) -> Result<(), StoreError> {
        let current = match self.number_or_404(user, e164).await {
            Ok(n) => n,
            // Gone already: purged by an earlier delivery (its event with it).
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        let tx = Tx::new()
            .with(
                Role::Record,
                self.delete(
                    &Key::number(user, e164),
                    "#v = :v AND #st = :releasing",
                    &[("#v", "version"), ("#st", "status")],
                    vec![(":v", n(version)), (":releasing", status(NumberStatus::Releasing))],
                )?,
            )
            .with(Role::OwnerGuard, self.delete_guard(e164, user)?)
            .with(Role::Record, self.gone_mark(user, e164)?)
            .with(Role::Event, self.event_put(&events::released(&current, OffsetDateTime::now_utc()))?);
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Refused(_)) => Err(StoreError::Conflict(Conflict::Stale)),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn reset_given_up_sides(&self, number: &PhoneNumber, now: OffsetDateTime) -> Result<bool, StoreError> {
        let sides = [
            ("profile_sync", "profile_sync_error", Some(number.profile_sync), number.profile_sync_error.as_ref()),
            ("voice_sync", "voice_sync_error", number.voice_sync, number.voice_sync_error.as_ref()),
            ("assistant_sync", "assistant_sync_error", number.assistant_sync, number.assistant_sync_error.as_ref()),
        ];
        let mut reset = false;
        for (state, error, read, why) in sides {
            if read.is_some_and(|st| was_given_up(st, why)) {
                reset |= self.reset_exhausted(&Key::number(&number.user_id, &number.e164), state, error, now).await?;
            }
        }
        Ok(reset)
    }

    async fn record_number_profile_synced(&self, user: &UserId, e164: &E164, version: u64, now: OffsetDateTime) -> Result<(), StoreError> {
        self.record_number_side(user, e164, version, NumberSide::Profile, Ok(()), now).await
    }

    async fn record_number_profile_failed(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.record_number_side(user, e164, version, NumberSide::Profile, Err(error), now).await
    }
}
