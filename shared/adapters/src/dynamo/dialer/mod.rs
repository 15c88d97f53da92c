//! The dialer half of the store: SIP connections, numbers on them (kept on the number's record), the
//! one-primary slot and the number count on the connection, each moved in the assignment's own
//! transaction; the per-user WebRTC token counter.

mod sync;
mod voice;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_domain::dialer::{AssignmentPatch, ConnectionPatch, ConnectionReader, ConnectionWriter, SipConnection};
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::{NumberRole, NumberStatus, PhoneNumber};
use patchbay_domain::{Conflict, ConnectionId, Cursor, IdempotencyKey, Limit, Page, StoreError, SyncState, UserId, E164};
use time::OffsetDateTime;
use voice::{voice_of, VoiceMove};

use crate::dynamo::errors::{Role, TxFailure, WriteFailure};
use crate::dynamo::items::{ConnectionItem, NumberItem};
use crate::dynamo::keys::{Key, CONNECTION_PREFIX};
use crate::dynamo::table::{attr, from_item, n, s, to_item, DynamoStore, Item, Tx, Values};
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
