//! The dialer half of the store: SIP connections, numbers on them (kept on the number's record), the
//! one-primary slot and the number count on the connection, each moved in the assignment's own
//! transaction; the per-user WebRTC token counter.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use patchbay_domain::dialer::{AssignmentPatch, ConnectionPatch, ConnectionReader, ConnectionSyncLedger, ConnectionWriter, SipConnection};
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::{NumberRole, NumberStatus, PhoneNumber};
use patchbay_domain::{Conflict, ConnectionId, Cursor, IdempotencyKey, Limit, Page, StoreError, SyncError, SyncState, UserId, E164};
use time::OffsetDateTime;

use super::errors::{Role, TxFailure, WriteFailure};
use super::items::{ConnectionItem, NumberItem};
use super::keys::{Key, CONNECTION_PREFIX};
use super::numbers::NumberSide;
use super::table::{attr, backoff, from_item, n, s, to_item, DynamoStore, Item, Tx, Values, RACE_ATTEMPTS};
use crate::wire::rfc3339;

pub(super) fn connection_from(item: Item) -> Result<SipConnection, StoreError> {
    from_item::<ConnectionItem>(item)?.try_into()
}

/// How long a minute's token counter is kept (TTL), past its minute.
const COUNTER_TTL_SECS: i64 = 180;

impl DynamoStore {
    async fn connection_item(&self, user: &UserId, id: ConnectionId) -> Result<Option<ConnectionItem>, StoreError> {
        self.get_as::<ConnectionItem>(&Key::connection(user, id)).await
    }

    async fn number_item(&self, user: &UserId, e164: &E164) -> Result<NumberItem, StoreError> {
        self.get_as::<NumberItem>(&Key::number(user, e164)).await?.ok_or(StoreError::NotFound)
    }

    /// The connection side of a number joining, leaving or changing role: its count moves by
    /// `delta`, and the primary slot is taken (`attribute_not_exists` or already this number) or
    /// given back (only by the number holding it). A live connection only, unless it is a leave.
    pub(crate) fn connection_side(
        &self,
        user: &UserId,
        id: ConnectionId,
        e164: &E164,
        delta: i64,
        take_primary: bool,
        give_primary: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = "ADD #nc :d".to_owned();
        let mut condition = "attribute_exists(pk)".to_owned();
        let mut names = vec![("#nc", "number_count")];
        let mut values: Values<'_> = vec![(":d", AttributeValue::N(delta.to_string()))];
        if delta >= 0 {
            condition.push_str(" AND #ss <> :deleting");
            names.push(("#ss", "sync_state"));
            values.push((":deleting", attr(&SyncState::Deleting)));
        }
        if take_primary {
            update.push_str(" SET #pn = :e");
            condition.push_str(" AND (attribute_not_exists(#pn) OR #pn = :e)");
        } else if give_primary {
            update.push_str(" REMOVE #pn");
            condition.push_str(" AND #pn = :e");
        }
        if take_primary || give_primary {
            names.push(("#pn", "primary_number"));
            values.push((":e", s(e164.as_str())));
        }
        self.update(&Key::connection(user, id), &update, &condition, &names, values)
    }

    /// After a connection write's condition failed: absent, deleting, or `otherwise`.
    async fn classify_connection_miss(&self, user: &UserId, id: ConnectionId, otherwise: Conflict) -> StoreError {
        match self.connection_item(user, id).await {
            Ok(None) => StoreError::NotFound,
            Ok(Some(c)) if c.sync_state == SyncState::Deleting => StoreError::Conflict(Conflict::ConnectionDeleting),
            Ok(Some(_)) => StoreError::Conflict(otherwise),
            Err(e) => e,
        }
    }

    #[allow(clippy::too_many_arguments)] // an UpdateItem's parts, plus the conflict it means
    async fn write_connection(
        &self,
        user: &UserId,
        id: ConnectionId,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Values<'_>,
        otherwise: Conflict,
    ) -> Result<SipConnection, StoreError> {
        match self.update_mapped(&Key::connection(user, id), update, condition, names, values, connection_from).await? {
            Some(c) => Ok(c),
            None => Err(self.classify_connection_miss(user, id, otherwise).await),
        }
    }

    /// A number's record and its connection in one transaction, guarded by the number's version; a
    /// number that moved meanwhile is read again.
    async fn move_voice(
        &self,
        user: &UserId,
        e164: &E164,
        id: ConnectionId,
        plan: impl Fn(&NumberItem) -> Result<Option<VoiceMove>, StoreError>,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.number_item(user, e164).await?;
            let Some(mv) = plan(&current)? else { return current.try_into() };
            let mut values: Values<'_> = vec![(":one", n(1)), (":now", s(rfc3339(now))), (":v", n(current.version))];
            let mut names = vec![("#v", "version"), ("#ua", "updated_at")];
            let (update, condition) = match &mv.to {
                Some((role, active)) => {
                    values.extend([
                        (":c", s(id.to_string())),
                        (":r", attr(role)),
                        (":a", AttributeValue::Bool(*active)),
                        (":active", attr(&NumberStatus::Active)),
                    ]);
                    names.extend([
                        ("#sc", "sip_connection_id"),
                        ("#sr", "sip_role"),
                        ("#sa", "sip_active"),
                        ("#st", "status"),
                        ("#ai", "assistant_id"),
                    ]);
                    let mut update = "SET #sc = :c, #sr = :r, #sa = :a, #v = #v + :one, #ua = :now".to_owned();
                    if mv.resync {
                        update.push_str(", #vs = :pending REMOVE #vse");
                        values.push((":pending", attr(&SyncState::Pending)));
                        names.extend([("#vs", "voice_sync"), ("#vse", "voice_sync_error")]);
                    }
                    // The number's calls go to one place: not while a voice-AI assistant has them.
                    (update, "#v = :v AND #st = :active AND attribute_not_exists(#ai)".to_owned())
                }
                None => {
                    values.push((":pending", attr(&SyncState::Pending)));
                    names.extend([
                        ("#sc", "sip_connection_id"),
                        ("#sr", "sip_role"),
                        ("#sa", "sip_active"),
                        ("#vs", "voice_sync"),
                        ("#vse", "voice_sync_error"),
                    ]);
                    ("SET #vs = :pending, #v = #v + :one, #ua = :now REMOVE #sc, #sr, #sa, #vse".to_owned(), "#v = :v".to_owned())
                }
            };
            let tx = Tx::new()
                .with(Role::Record, self.update(&Key::number(user, e164), &update, &condition, &names, values)?)
                .with(Role::Connection, self.connection_side(user, id, e164, mv.delta, mv.take_primary, mv.give_primary)?);
            match self.transact(tx).await {
                Ok(()) => return self.number_item(user, e164).await?.try_into(),
                Err(TxFailure::Refused(c)) if c.failed(Role::Connection) => {
                    let Some(conn) = self.connection_item(user, id).await? else { return Err(StoreError::NotFound) };
                    if conn.sync_state == SyncState::Deleting {
                        return Err(StoreError::Conflict(Conflict::ConnectionDeleting));
                    }
                    if mv.take_primary && conn.primary_number.as_deref().is_some_and(|p| p != e164.as_str()) {
                        return Err(StoreError::Conflict(Conflict::PrimaryTaken));
                    }
                    backoff(attempt).await
                }
                // The number changed since it was read: read it again.
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the number kept changing while its connection changed".into()))
    }
}

/// One change of a number's place on a connection.
struct VoiceMove {
    /// Its role and caller-id flag after the change; `None` leaves the connection.
    to: Option<(NumberRole, bool)>,
    /// The connection's number count moves by this much.
    delta: i64,
    take_primary: bool,
    give_primary: bool,
    /// The carrier's routing must change (joining or leaving).
    resync: bool,
}

fn voice_of(item: &NumberItem) -> Option<(ConnectionId, NumberRole, bool)> {
    match (&item.sip_connection_id, item.sip_role) {
        (Some(c), Some(r)) => ConnectionId::parse(c).ok().map(|c| (c, r, item.sip_active.unwrap_or(true))),
        _ => None,
    }
}

#[async_trait]
impl ConnectionReader for DynamoStore {
    async fn get_connection(&self, user: &UserId, id: ConnectionId) -> Result<SipConnection, StoreError> {
        self.get(&Key::connection(user, id)).await?.map(connection_from).transpose()?.ok_or(StoreError::NotFound)
    }

    async fn list_connections(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<SipConnection>, StoreError> {
        self.list_page(&Key::user_pk(user), CONNECTION_PREFIX, after, limit, true, connection_from, |c| c.id.to_string()).await
    }
}

#[async_trait]
impl ConnectionWriter for DynamoStore {
    async fn create_connection(
        &self,
        connection: &SipConnection,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<SipConnection>, StoreError> {
        let item = to_item(&ConnectionItem::from(connection))?;
        let mut tx = Tx::new().with(Role::Record, self.put(item, "attribute_not_exists(pk)", &[], vec![])?);
        let guard = match idempotency {
            Some((key, fingerprint)) => {
                let (guard_key, guard) =
                    self.idempotency_put(&connection.user_id, "create-sip-connection", key, &connection.id.to_string(), fingerprint)?;
                tx.push(Role::Idempotency, guard);
                Some((guard_key, fingerprint))
            }
            None => None,
        };
        match self.transact(tx).await {
            Ok(()) => Ok(Created::New(connection.clone())),
            Err(TxFailure::Refused(c)) if c.failed(Role::Idempotency) => {
                let (guard_key, fingerprint) = guard.ok_or_else(|| StoreError::Corrupt("idempotency guard without a key".into()))?;
                let resource = self.idempotent_resource(&guard_key, fingerprint).await?;
                let id = ConnectionId::parse(&resource).map_err(|_| StoreError::Corrupt("idempotency resource_id".into()))?;
                Ok(Created::Replayed(self.get_connection(&connection.user_id, id).await?))
            }
            Err(TxFailure::Refused(_)) => Err(StoreError::Conflict(Conflict::AlreadyExists)),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn update_connection(
        &self,
        user: &UserId,
        id: ConnectionId,
        patch: &ConnectionPatch,
        now: OffsetDateTime,
    ) -> Result<SipConnection, StoreError> {
        let mut update = "SET #ss = :pending, #v = #v + :one, #ua = :now".to_owned();
        let mut names = vec![("#ss", "sync_state"), ("#v", "version"), ("#ua", "updated_at"), ("#se", "sync_error")];
        let mut values: Values<'_> = vec![
            (":pending", attr(&SyncState::Pending)),
            (":one", n(1)),
            (":now", s(rfc3339(now))),
            (":deleting", attr(&SyncState::Deleting)),
        ];
        if let Some(name) = &patch.name {
            update.push_str(", #nm = :nm");
            names.push(("#nm", "name"));
            values.push((":nm", s(name.as_str())));
        }
        if let Some(active) = patch.active {
            update.push_str(", #ac = :ac");
            names.push(("#ac", "active"));
            values.push((":ac", AttributeValue::Bool(active)));
        }
        update.push_str(" REMOVE #se");
        self.write_connection(user, id, &update, "attribute_exists(pk) AND #ss <> :deleting", &names, values, Conflict::ConnectionDeleting)
            .await
    }

    async fn password_rotated(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<SipConnection, StoreError> {
        self.update_connection(user, id, &ConnectionPatch::default(), now).await
    }

    async fn mark_connection_deleting(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<SipConnection, StoreError> {
        self.write_connection(
            user,
            id,
            "SET #ss = :deleting, #v = #v + :one, #ua = :now",
            "attribute_exists(pk) AND (attribute_not_exists(#nc) OR #nc = :zero)",
            &[("#ss", "sync_state"), ("#v", "version"), ("#ua", "updated_at"), ("#nc", "number_count")],
            vec![(":deleting", attr(&SyncState::Deleting)), (":one", n(1)), (":now", s(rfc3339(now))), (":zero", n(0))],
            Conflict::ConnectionHasNumbers,
        )
        .await
        .map_err(|e| match e {
            // A deleting connection with numbers cannot exist: it is the count that refused.
            StoreError::Conflict(Conflict::ConnectionDeleting) => StoreError::Conflict(Conflict::ConnectionHasNumbers),
            other => other,
        })
    }

    async fn assign_voice(
        &self,
        user: &UserId,
        e164: &E164,
        id: ConnectionId,
        role: NumberRole,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError> {
        let connection = self.get_connection(user, id).await?;
        self.move_voice(
            user,
            e164,
            id,
            |n| {
                if n.status != NumberStatus::Active {
                    return Err(StoreError::Conflict(Conflict::NumberNotActive));
                }
                if n.carrier != connection.carrier {
                    return Err(StoreError::Conflict(Conflict::CarrierMismatch));
                }
                if n.assistant_id.is_some() {
                    return Err(StoreError::Conflict(Conflict::NumberVoiceInUse));
                }
                match voice_of(n) {
                    Some((c, _, _)) if c != id => Err(StoreError::Conflict(Conflict::NumberOnAnotherConnection)),
                    Some((_, r, _)) if r == role => Ok(None),
                    Some((_, r, active)) => Ok(Some(VoiceMove {
                        to: Some((role, active)),
                        delta: 0,
                        take_primary: role == NumberRole::Primary,
                        give_primary: r == NumberRole::Primary,
                        resync: false,
                    })),
                    None => Ok(Some(VoiceMove {
                        to: Some((role, true)),
                        delta: 1,
                        take_primary: role == NumberRole::Primary,
                        give_primary: false,
                        resync: true,
                    })),
                }
            },
            now,
        )
        .await
    }

    async fn update_voice(
        &self,
        user: &UserId,
        e164: &E164,
        id: ConnectionId,
        patch: &AssignmentPatch,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError> {
        self.move_voice(
            user,
            e164,
            id,
            |n| match voice_of(n) {
                Some((c, r, active)) if c == id => {
                    let (role, active_after) = (patch.role.unwrap_or(r), patch.active.unwrap_or(active));
                    if (role, active_after) == (r, active) {
                        return Ok(None);
                    }
                    Ok(Some(VoiceMove {
                        to: Some((role, active_after)),
                        delta: 0,
                        take_primary: role == NumberRole::Primary && r != NumberRole::Primary,
                        give_primary: r == NumberRole::Primary && role != NumberRole::Primary,
                        resync: false,
                    }))
                }
                _ => Err(StoreError::Conflict(Conflict::NumberNotOnConnection)),
            },
            now,
        )
        .await
    }

    async fn unassign_voice(&self, user: &UserId, e164: &E164, id: ConnectionId, now: OffsetDateTime) -> Result<PhoneNumber, StoreError> {
        self.move_voice(
            user,
            e164,
            id,
            |n| match voice_of(n) {
                Some((c, r, _)) if c == id => {
                    Ok(Some(VoiceMove { to: None, delta: -1, take_primary: false, give_primary: r == NumberRole::Primary, resync: true }))
                }
                _ => Err(StoreError::Conflict(Conflict::NumberNotOnConnection)),
            },
            now,
        )
        .await
    }

    async fn remember_telephony_credential(&self, user: &UserId, id: ConnectionId, credential_id: &str) -> Result<String, StoreError> {
        match self
            .update_item(
                &Key::connection(user, id),
                "SET #tc = :tc",
                "attribute_exists(pk) AND attribute_not_exists(#tc)",
                &[("#tc", "telephony_credential_id")],
                vec![(":tc", s(credential_id))],
            )
            .await
        {
            Ok(_) => Ok(credential_id.to_owned()),
            Err(WriteFailure::ConditionFailed) => match self.connection_item(user, id).await? {
                None => Err(StoreError::NotFound),
                Some(c) => c.telephony_credential_id.ok_or_else(|| StoreError::Contended("the credential was not readable yet".into())),
            },
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn take_token(&self, user: &UserId, now: OffsetDateTime, per_minute: u32) -> Result<bool, StoreError> {
        let minute = now.unix_timestamp().div_euclid(60);
        match self
            .update_item(
                &Key::token_counter(user, minute),
                "ADD #n :one SET #exp = :exp",
                "attribute_not_exists(#n) OR #n < :max",
                &[("#n", "tokens"), ("#exp", "expires_at")],
                vec![
                    (":one", n(1)),
                    (":max", n(u64::from(per_minute))),
                    (":exp", AttributeValue::N((minute * 60 + COUNTER_TTL_SECS).to_string())),
                ],
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(WriteFailure::ConditionFailed) => Ok(false),
            Err(WriteFailure::Other(e)) => Err(e),
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
        .await?;
        // The connection's call events name this id: they find their user through this route.
        self.put_route(Key::connection_route(carrier_id), user, &id.to_string(), None).await
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
