//! The worker's connection writes (`ConnectionSyncLedger`): what the carrier now holds for a connection and for a number's SIP side.

use async_trait::async_trait;
use patchbay_domain::dialer::ConnectionSyncLedger;
use patchbay_domain::{Conflict, ConnectionId, StoreError, SyncError, SyncState, UserId, E164};
use time::OffsetDateTime;

use super::connection_from;
use crate::dynamo::errors::{Role, TxFailure, WriteFailure};
use crate::dynamo::keys::Key;
use crate::dynamo::numbers::NumberSide;
use crate::dynamo::table::{attr, n, s, DynamoStore, Tx};
use crate::wire::rfc3339;

impl DynamoStore {
    /// One transaction on a connection and its route: a refused record is read as gone (`NotFound`)
    /// or as `otherwise`; a refused route means the carrier id routes to another user's connection.
    async fn connection_tx(&self, user: &UserId, id: ConnectionId, tx: Tx, otherwise: Conflict) -> Result<(), StoreError> {
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Refused(c)) if c.failed(Role::Record) => Err(self.classify_connection_miss(user, id, otherwise).await),
            Err(TxFailure::Refused(_)) => Err(StoreError::Corrupt("the carrier connection already routes to another user".into())),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }
}

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
        // The connection's call events name this id and find their user through its route: the
        // route is in the same transaction as `synced`, so nobody sees one without the other.
        let tx = Tx::new()
            .with(
                Role::Record,
                self.update(
                    &Key::connection(user, id),
                    "SET #ss = :synced, #cid = :cid, #ua = :now REMOVE #se",
                    "attribute_exists(pk) AND #v = :v AND #ss = :pending",
                    &[
                        ("#ss", "sync_state"),
                        ("#cid", "carrier_connection_id"),
                        ("#se", "sync_error"),
                        ("#v", "version"),
                        ("#ua", "updated_at"),
                    ],
                    vec![
                        (":synced", attr(&SyncState::Synced)),
                        (":cid", s(carrier_id)),
                        (":v", n(version)),
                        (":pending", attr(&SyncState::Pending)),
                        (":now", s(rfc3339(now))),
                    ],
                )?,
            )
            .with(Role::ProviderRoute, self.route_put(Key::connection_route(carrier_id), user, &id.to_string())?);
        self.connection_tx(user, id, tx, Conflict::Stale).await
    }

    async fn record_connection_carrier_id(&self, user: &UserId, id: ConnectionId, carrier_id: &str) -> Result<(), StoreError> {
        // The carrier's connection exists and already sends events: its route goes with its id.
        let tx = Tx::new()
            .with(
                Role::Record,
                self.update(
                    &Key::connection(user, id),
                    "SET #cid = :cid",
                    "attribute_exists(pk) AND attribute_not_exists(#cid)",
                    &[("#cid", "carrier_connection_id")],
                    vec![(":cid", s(carrier_id))],
                )?,
            )
            .with(Role::ProviderRoute, self.route_put(Key::connection_route(carrier_id), user, &id.to_string())?);
        self.connection_tx(user, id, tx, Conflict::AlreadyExists).await
    }

    async fn ensure_connection_route(&self, user: &UserId, id: ConnectionId, carrier_id: &str) -> Result<(), StoreError> {
        self.put_route(Key::connection_route(carrier_id), user, &id.to_string()).await
    }

    async fn reset_given_up_connection(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.reset_exhausted(&Key::connection(user, id), "sync_state", "sync_error", now).await
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
        // The record and its call-event route go together (the carrier id read here is pinned by the
        // delete's version condition).
        let Some(c) = self.get(&Key::connection(user, id)).await?.map(connection_from).transpose()? else { return Ok(()) };
        let mut tx = Tx::new().with(
            Role::Record,
            self.delete(
                &Key::connection(user, id),
                "#v = :v AND #ss = :deleting",
                &[("#v", "version"), ("#ss", "sync_state")],
                vec![(":v", n(version)), (":deleting", attr(&SyncState::Deleting))],
            )?,
        );
        if let Some(cid) = &c.carrier_connection_id {
            tx = tx.with(Role::ProviderRoute, self.route_delete(&Key::connection_route(cid), user)?);
        }
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            // Gone already (this very purge, answered late): its effect holds.
            Err(TxFailure::Refused(c)) if c.failed(Role::Record) => match self.get(&Key::connection(user, id)).await? {
                None => Ok(()),
                Some(_) => Err(StoreError::Conflict(Conflict::Stale)),
            },
            Err(TxFailure::Refused(_)) => Err(StoreError::Corrupt("the connection's call route belongs to another user".into())),
            Err(TxFailure::Other(e)) => Err(e),
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
