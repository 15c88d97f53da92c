//! The worker's connection writes (`ConnectionSyncLedger`): what the carrier now holds for a connection and for a number's SIP side.

use async_trait::async_trait;
use patchbay_domain::dialer::ConnectionSyncLedger;
use patchbay_domain::{Conflict, ConnectionId, StoreError, SyncError, SyncState, UserId, E164};
use time::OffsetDateTime;

use crate::dynamo::errors::WriteFailure;
use crate::dynamo::keys::Key;
use crate::dynamo::numbers::NumberSide;
use crate::dynamo::table::{attr, n, s, DynamoStore};
use crate::wire::rfc3339;

#[async_trait]
impl ConnectionSyncLedger for DynamoStore {
    async fn record_connection_synced(
        &self,
        user: &UserId,
        id: ConnectionId,
        version: u64,
        carrier_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // The connection's call events name this id: they find their user through this route. Put
        // before the record says `synced`, so that whoever sees `synced` finds the route, and a failed
        // put is retried with the sync (after `synced`, a redelivery would find nothing to do).
        self.put_route(Key::connection_route(carrier_id), user, &id.to_string(), None).await?;
        self.write_connection(
            user,
            id,
            "SET #ss = :synced, #cid = :cid, #ua = :now REMOVE #se",
            "attribute_exists(pk) AND #v = :v AND #ss = :pending",
            &[("#ss", "sync_state"), ("#cid", "carrier_connection_id"), ("#se", "sync_error"), ("#v", "version"), ("#ua", "updated_at")],
            vec![
                (":synced", attr(&SyncState::Synced)),
                (":cid", s(carrier_id)),
                (":v", n(version)),
                (":pending", attr(&SyncState::Pending)),
                (":now", s(rfc3339(now))),
            ],
            Conflict::Stale,
        )
        .await
        .map(|_| ())
    }

    async fn record_connection_carrier_id(&self, user: &UserId, id: ConnectionId, carrier_id: &str) -> Result<(), StoreError> {
        self.write_connection(
            user,
            id,
            "SET #cid = :cid",
            "attribute_exists(pk) AND attribute_not_exists(#cid)",
            &[("#cid", "carrier_connection_id")],
            vec![(":cid", s(carrier_id))],
            Conflict::AlreadyExists,
        )
        .await
        .map(|_| ())
    }

    async fn record_connection_failed(
        &self,
        user: &UserId,
        id: ConnectionId,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let names = [("#ss", "sync_state"), ("#se", "sync_error"), ("#v", "version"), ("#ua", "updated_at")];
        // A change the carrier refused turns the connection `failed`; a refused delete stays
        // `deleting` (a repeated DELETE tries again), with the reason either way.
        let failed = self
            .update_item(
                &Key::connection(user, id),
                "SET #ss = :failed, #se = :e, #ua = :now",
                "attribute_exists(pk) AND #v = :v AND #ss = :pending",
                &names,
                vec![
                    (":failed", attr(&SyncState::Failed)),
                    (":e", attr(error)),
                    (":v", n(version)),
                    (":pending", attr(&SyncState::Pending)),
                    (":now", s(rfc3339(now))),
                ],
            )
            .await;
        match failed {
            Ok(_) => Ok(()),
            Err(WriteFailure::ConditionFailed) => match self
                .update_item(
                    &Key::connection(user, id),
                    "SET #se = :e, #ua = :now",
                    "attribute_exists(pk) AND #v = :v AND #ss = :deleting",
                    &names,
                    vec![(":e", attr(error)), (":v", n(version)), (":deleting", attr(&SyncState::Deleting)), (":now", s(rfc3339(now)))],
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(WriteFailure::ConditionFailed) => Err(StoreError::Conflict(Conflict::Stale)),
                Err(WriteFailure::Other(e)) => Err(e),
            },
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn purge_connection(&self, user: &UserId, id: ConnectionId, version: u64) -> Result<(), StoreError> {
        match self
            .delete_item(
                &Key::connection(user, id),
                "#v = :v AND #ss = :deleting",
                &[("#v", "version"), ("#ss", "sync_state")],
                vec![(":v", n(version)), (":deleting", attr(&SyncState::Deleting))],
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(WriteFailure::ConditionFailed) => Err(StoreError::Conflict(Conflict::Stale)),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn record_voice_synced(&self, user: &UserId, e164: &E164, version: u64, now: OffsetDateTime) -> Result<(), StoreError> {
        self.record_number_side(user, e164, version, NumberSide::Voice, Ok(()), now).await
    }

    async fn record_voice_failed(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.record_number_side(user, e164, version, NumberSide::Voice, Err(error), now).await
    }
}
