//! The dialer half of the store: SIP connections, numbers on them (kept on the number's record), the
//! one-primary slot and the number count on the connection, each moved in the assignment's own
//! transaction; the per-user WebRTC token counter.

mod sync;
mod voice;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_domain::dialer::{AssignmentPatch, ConnectionPatch, ConnectionReader, ConnectionWriter, PasswordVersion, SipConnection};
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::{NumberRole, NumberStatus, PhoneNumber};
use patchbay_domain::{CommandEnvelope, Conflict, ConnectionId, Cursor, IdempotencyKey, Limit, Page, StoreError, SyncState, UserId, E164};
use time::OffsetDateTime;
use voice::{voice_of, Step, VoiceMove};

use crate::dynamo::errors::{Role, TxFailure, WriteFailure};
use crate::dynamo::items::{ConnectionItem, NumberItem};
use crate::dynamo::keys::{Key, CONNECTION_PREFIX};
use crate::dynamo::table::{attr, backoff, from_item, n, s, to_item, DynamoStore, Item, Tx, Values, RACE_ATTEMPTS};
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

    /// A change of a live connection made from what was read: `update` pinned to the version read
    /// (and not deleting), the connection's sync at the next version in the same transaction;
    /// answered as the write left it (`after` applied to what was read), never read back.
    pub(super) async fn bump_connection(
        &self,
        user: &UserId,
        id: ConnectionId,
        update: &str,
        names: &[(&str, &str)],
        values: Values<'_>,
        after: impl Fn(SipConnection) -> SipConnection,
    ) -> Result<SipConnection, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.get_connection(user, id).await?;
            if current.sync_state == SyncState::Deleting {
                return Err(StoreError::Conflict(Conflict::ConnectionDeleting));
            }
            let mut names = names.to_vec();
            // The condition's names, unless the update already names them.
            for pinned in [("#v", "version"), ("#ss", "sync_state")] {
                if !names.contains(&pinned) {
                    names.push(pinned);
                }
            }
            let mut values = values.clone();
            values.extend([(":was", n(current.version)), (":deleting", attr(&SyncState::Deleting))]);
            let next = after(current.clone());
            let tx = Tx::new()
                .with(Role::Record, self.update(&Key::connection(user, id), update, "#v = :was AND #ss <> :deleting", &names, values)?)
                .with(Role::Outbox, self.outbox_put(user, &sync_command(&next))?);
            match self.transact(tx).await {
                Ok(()) => return Ok(next),
                // It changed since it was read (or went): read it again.
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the connection kept changing while it was being changed".into()))
    }
}

/// The connection's sync at its version.
pub(super) fn sync_command(c: &SipConnection) -> CommandEnvelope {
    CommandEnvelope::sync_connection(c.user_id.clone(), c.id, c.version)
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
        let mut tx = Tx::new()
            .with(Role::Record, self.put(item, "attribute_not_exists(pk)", &[], vec![])?)
            .with(Role::Outbox, self.outbox_put(&connection.user_id, &sync_command(connection))?);
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
        let mut sets = vec!["#ss = :pending", "#v = #v + :one", "#ua = :now"];
        let mut names = vec![("#ss", "sync_state"), ("#v", "version"), ("#ua", "updated_at"), ("#se", "sync_error")];
        let mut values: Values<'_> = vec![(":pending", attr(&SyncState::Pending)), (":one", n(1)), (":now", s(rfc3339(now)))];
        if let Some(name) = &patch.name {
            sets.push("#nm = :nm");
            names.push(("#nm", "name"));
            values.push((":nm", s(name.as_str())));
        }
        if let Some(active) = patch.active {
            sets.push("#ac = :ac");
            names.push(("#ac", "active"));
            values.push((":ac", AttributeValue::Bool(active)));
        }
        let update = format!("SET {} REMOVE #se", sets.join(", "));
        self.bump_connection(user, id, &update, &names, values, |c| c.patched(patch, now)).await
    }

    async fn password_rotated(
        &self,
        user: &UserId,
        id: ConnectionId,
        password: &PasswordVersion,
        now: OffsetDateTime,
    ) -> Result<SipConnection, StoreError> {
        self.bump_connection(
            user,
            id,
            "SET #ss = :pending, #v = #v + :one, #ua = :now, #pv = :pv REMOVE #se",
            &[("#ss", "sync_state"), ("#v", "version"), ("#ua", "updated_at"), ("#se", "sync_error"), ("#pv", "password_version")],
            vec![(":pending", attr(&SyncState::Pending)), (":one", n(1)), (":now", s(rfc3339(now))), (":pv", s(password.as_str()))],
            |c| {
                let mut c = c.patched(&ConnectionPatch::default(), now);
                c.password_version = Some(password.clone());
                c
            },
        )
        .await
    }

    async fn mark_connection_deleting(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<SipConnection, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.get_connection(user, id).await?;
            let key = Key::connection(user, id);
            if current.sync_state == SyncState::Deleting {
                // Already being deleted: its sync written again (a repeated DELETE retries a delete
                // the carrier refused), as long as it is still deleting at that version.
                let (names, values) = (
                    [("#v", "version"), ("#ss", "sync_state")],
                    vec![(":v", n(current.version)), (":deleting", attr(&SyncState::Deleting))],
                );
                if self.write_again(&key, "#v = :v AND #ss = :deleting", &names, values, user, &sync_command(&current)).await? {
                    return Ok(current);
                }
                backoff(attempt).await;
                continue;
            }
            if current.number_count > 0 {
                return Err(StoreError::Conflict(Conflict::ConnectionHasNumbers));
            }
            let mut after = current.clone();
            after.sync_state = SyncState::Deleting;
            after.version += 1;
            after.updated_at = now;
            let tx = Tx::new()
                .with(
                    Role::Record,
                    self.update(
                        &key,
                        "SET #ss = :deleting, #v = #v + :one, #ua = :now",
                        // No number may join meanwhile: assignments move the count in their own transaction.
                        "#v = :v AND (attribute_not_exists(#nc) OR #nc = :zero)",
                        &[("#ss", "sync_state"), ("#v", "version"), ("#ua", "updated_at"), ("#nc", "number_count")],
                        vec![
                            (":deleting", attr(&SyncState::Deleting)),
                            (":one", n(1)),
                            (":now", s(rfc3339(now))),
                            (":v", n(current.version)),
                            (":zero", n(0)),
                        ],
                    )?,
                )
                .with(Role::Outbox, self.outbox_put(user, &sync_command(&after))?);
            match self.transact(tx).await {
                Ok(()) => return Ok(after),
                // It changed since it was read: read it again.
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the connection kept changing while it was being deleted".into()))
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
                    Some((_, r, _)) if r == role && n.voice_sync == Some(SyncState::Pending) => Ok(Step::Again),
                    Some((_, r, _)) if r == role => Ok(Step::Done),
                    Some((_, r, active)) => Ok(Step::Move(VoiceMove {
                        to: Some((role, active)),
                        delta: 0,
                        take_primary: role == NumberRole::Primary,
                        give_primary: r == NumberRole::Primary,
                        resync: false,
                    })),
                    None => Ok(Step::Move(VoiceMove {
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
                        return Ok(Step::Done);
                    }
                    Ok(Step::Move(VoiceMove {
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
                Some((c, r, _)) if c == id => Ok(Step::Move(VoiceMove {
                    to: None,
                    delta: -1,
                    take_primary: false,
                    give_primary: r == NumberRole::Primary,
                    resync: true,
                })),
                // Off every connection already, the carrier's side still to come (a retry of an
                // unassign whose answer was lost).
                None if n.voice_sync == Some(SyncState::Pending) && n.assistant_id.is_none() => Ok(Step::Again),
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
