//! A number's SIP side as the store moves it: the connection's count and one primary slot move in
//! the same transaction as the number's assignment, with the conditions that hold "one primary per
//! connection" and "a number's calls go to one place".

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use patchbay_domain::numbers::{NumberRole, NumberStatus, PhoneNumber};
use patchbay_domain::{CommandEnvelope, Conflict, ConnectionId, StoreError, SyncState, UserId, E164};
use time::OffsetDateTime;

use crate::dynamo::errors::{Role, TxFailure};
use crate::dynamo::items::NumberItem;
use crate::dynamo::keys::Key;
use crate::dynamo::table::{attr, backoff, n, s, DynamoStore, Tx, Values, RACE_ATTEMPTS};
use crate::wire::rfc3339;

impl DynamoStore {
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

    /// A number's record and its connection in one transaction, guarded by the number's version; a
    /// number that moved meanwhile is read again.
    pub(super) async fn move_voice(
        &self,
        user: &UserId,
        e164: &E164,
        id: ConnectionId,
        plan: impl Fn(&NumberItem) -> Result<Step, StoreError>,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.number_item(user, e164).await?;
            let mv = match plan(&current)? {
                Step::Done => return current.try_into(),
                Step::Again => {
                    // Already as asked, the carrier's side still to come: its sync written again
                    // while the record is at that version with its voice side pending.
                    let number: PhoneNumber = current.try_into()?;
                    let (cond, values) = ("#vs = :pending", vec![(":pending", attr(&SyncState::Pending))]);
                    if self.again(&number, cond, values, &[("#vs", "voice_sync")]).await? {
                        return Ok(number);
                    }
                    backoff(attempt).await;
                    continue;
                }
                Step::Move(mv) => mv,
            };
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
            // Every move has its command, even one the carrier does not see (a role): a sync in flight
            // at the version this write supersedes leaves the rest to this one.
            let work = CommandEnvelope::sync_number(user.clone(), e164.clone(), current.version + 1);
            let tx = Tx::new()
                .with(Role::Record, self.update(&Key::number(user, e164), &update, &condition, &names, values)?)
                .with(Role::Connection, self.connection_side(user, id, e164, mv.delta, mv.take_primary, mv.give_primary)?)
                .with(Role::Outbox, self.outbox_put(user, &work)?);
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

/// What an assignment request asks of the number as read.
pub(super) enum Step {
    /// Nothing: it is as asked.
    Done,
    /// It is as asked, the carrier's side still pending: write its sync again.
    Again,
    Move(VoiceMove),
}

/// One change of a number's place on a connection.
pub(super) struct VoiceMove {
    /// Its role and caller-id flag after the change; `None` leaves the connection.
    pub(super) to: Option<(NumberRole, bool)>,
    /// The connection's number count moves by this much.
    pub(super) delta: i64,
    pub(super) take_primary: bool,
    pub(super) give_primary: bool,
    /// The carrier's routing must change (joining or leaving).
    pub(super) resync: bool,
}

pub(super) fn voice_of(item: &NumberItem) -> Option<(ConnectionId, NumberRole, bool)> {
    match (&item.sip_connection_id, item.sip_role) {
        (Some(c), Some(r)) => ConnectionId::parse(c).ok().map(|c| (c, r, item.sip_active.unwrap_or(true))),
        _ => None,
    }
}
