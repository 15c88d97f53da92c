//! The reconciler's half of the store: pages of the provider index (GSI2, never a Scan), the
//! version-guarded writes a pass makes, and the pass's cursor with its lease.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_domain::numbers::{NumberStatus, PhoneNumber};
use patchbay_domain::reconcile::{Indexed, Kind, PassCursor, ReconcileLedger, Resync, Segment};
use patchbay_domain::{AssistantId, CommandEnvelope, Conflict, ConnectionId, ProfileId, StoreError, SyncState, UserId, E164};
use time::OffsetDateTime;

use super::dialer::connection_from;
use super::errors::{Role, TxFailure, WriteFailure};
use super::keys::{Key, GSI2, PK, SK};
use super::numbers::{next_sync, number_from, owner_guard};
use super::profiles::profile_from;
use super::table::{attr, n, s, DynamoStore, Item, Tx};
use super::voice_ai::assistant_from;
use crate::wire::rfc3339;

/// The user a re-sync is about.
fn user_of<'a>(what: &Resync<'a>) -> &'a UserId {
    match *what {
        Resync::NumberProfile(x) | Resync::NumberAssistant(x, _) => &x.user_id,
        Resync::Profile(p, _) => &p.user_id,
        Resync::Connection(c) => &c.user_id,
        Resync::Assistant(a) => &a.user_id,
    }
}

/// Records per index page: small enough for a pass to stop soon after its time is up.
const PAGE: i32 = 100;

fn indexed(kind: Kind, item: Item) -> Result<Indexed, StoreError> {
    Ok(match kind {
        Kind::Number => Indexed::Number(number_from(item)?),
        Kind::Profile => Indexed::Profile(profile_from(item)?),
        Kind::Connection => Indexed::Connection(connection_from(item)?),
        Kind::Assistant => Indexed::Assistant(assistant_from(item)?),
    })
}

fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

#[async_trait]
impl ReconcileLedger for DynamoStore {
    async fn indexed_page(&self, segment: &Segment, after: Option<&str>) -> Result<(Vec<Indexed>, Option<String>), StoreError> {
        let index_pk = Key::provider_index(segment.kind, segment.carrier);
        let mut req = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(GSI2)
            .key_condition_expression("gsi2pk = :pk")
            .expression_attribute_values(":pk", s(&index_pk))
            .limit(PAGE);
        if let Some(after) = after {
            // The cursor is the last record's table key and index position, as DynamoDB wants it back.
            let start: HashMap<String, String> =
                serde_json::from_str(after).map_err(|_| StoreError::Corrupt("reconciler cursor".into()))?;
            req = req.set_exclusive_start_key(Some(start.into_iter().map(|(k, v)| (k, s(v))).collect()));
        }
        let out = self.read(|| req.clone().send()).await?;
        let items = out.items.unwrap_or_default().into_iter().map(|i| indexed(segment.kind, i)).collect::<Result<Vec<_>, _>>()?;
        let next = match out.last_evaluated_key {
            Some(k) if !k.is_empty() => {
                let key: HashMap<&str, String> =
                    [PK, SK, "gsi2pk", "gsi2sk"].into_iter().filter_map(|name| text(&k, name).map(|v| (name, v))).collect();
                Some(serde_json::to_string(&key).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            }
            _ => None,
        };
        Ok((items, next))
    }

    async fn set_number_lost(&self, num: &PhoneNumber, lost: bool, now: OffsetDateTime) -> Result<(), StoreError> {
        let (from, to) = if lost { (NumberStatus::Active, NumberStatus::Lost) } else { (NumberStatus::Lost, NumberStatus::Active) };
        let key = Key::number(&num.user_id, &num.e164);
        // No version bump without its command: a sync in flight at the old version leaves the rest
        // to this one.
        let tx = Tx::new()
            .with(
                Role::Record,
                self.update(
                    &key,
                    "SET #st = :to, #v = #v + :one, #ua = :now",
                    "#v = :v AND #st = :from",
                    &[("#st", "status"), ("#v", "version"), ("#ua", "updated_at")],
                    vec![(":to", attr(&to)), (":from", attr(&from)), (":one", n(1)), (":v", n(num.version)), (":now", s(rfc3339(now)))],
                )?,
            )
            .with(Role::Outbox, self.outbox_put(&num.user_id, &next_sync(num))?);
        self.transact_guarded(tx, &key).await
    }

    async fn adopt_number(&self, num: &PhoneNumber, carrier_number_id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let guard = owner_guard(num)?;
        let tx = Tx::new()
            .with(
                Role::Record,
                self.update(
                    &Key::number(&num.user_id, &num.e164),
                    "SET #st = :active, #cid = :cid, #v = #v + :one, #ua = :now REMOVE #o, #f",
                    "#v = :v AND #st = :was",
                    &[
                        ("#st", "status"),
                        ("#cid", "carrier_number_id"),
                        ("#v", "version"),
                        ("#ua", "updated_at"),
                        ("#o", "carrier_order_id"),
                        ("#f", "failure"),
                    ],
                    vec![
                        (":active", attr(&NumberStatus::Active)),
                        (":cid", s(carrier_number_id)),
                        (":one", n(1)),
                        (":now", s(rfc3339(now))),
                        (":v", n(num.version)),
                        (":was", attr(&num.status)),
                    ],
                )?,
            )
            // A failed purchase gave its guard up: take it again, unless someone else bought the number since.
            .with(
                Role::OwnerGuard,
                self.put(guard, "attribute_not_exists(pk) OR user_id = :u", &[], vec![(":u", s(num.user_id.as_str()))])?,
            )
            .with(Role::Outbox, self.outbox_put(&num.user_id, &next_sync(num))?);
        // A purchase the carrier completed after all (a pending or failed one) is news to the user; a
        // lost number found again is not a purchase.
        let tx = if matches!(num.status, NumberStatus::Pending | NumberStatus::Failed) {
            let adopted = PhoneNumber { version: num.version + 1, ..num.clone() };
            tx.with(Role::Event, self.event_put(&patchbay_domain::numbers::events::active(&adopted, carrier_number_id, now))?)
        } else {
            tx
        };
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Refused(c)) if c.failed(Role::OwnerGuard) => Err(StoreError::Conflict(Conflict::NumberUnavailable)),
            Err(TxFailure::Refused(_)) => Err(StoreError::Conflict(Conflict::Stale)),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn mark_resync(&self, what: Resync<'_>, now: OffsetDateTime) -> Result<u64, StoreError> {
        let pending = attr(&SyncState::Pending);
        let synced = attr(&SyncState::Synced);
        let (key, version, state, extra) = match what {
            Resync::NumberProfile(x) => (Key::number(&x.user_id, &x.e164), x.version, "profile_sync", ""),
            Resync::NumberAssistant(x, gone) => {
                (Key::number(&x.user_id, &x.e164), x.version, "assistant_sync", if gone { " REMOVE vapi_phone_number_id" } else { "" })
            }
            Resync::Profile(p, recreate) => {
                (Key::profile(&p.user_id, p.id), p.version, "sync_state", if recreate { " REMOVE carrier_profile_id" } else { "" })
            }
            Resync::Connection(c) => (Key::connection(&c.user_id, c.id), c.version, "sync_state", ""),
            Resync::Assistant(a) => (Key::assistant(&a.user_id, a.id), a.version, "sync_state", ""),
        };
        // Only from `synced`: a change the user made meanwhile has its own sync under way. The sync
        // that pushes our copy again is an outbox item of the same transaction.
        let tx = Tx::new()
            .with(
                Role::Record,
                self.update(
                    &key,
                    &format!("SET #s = :pending, #v = #v + :one, #ua = :now{extra}"),
                    "#v = :v AND #s = :synced",
                    &[("#s", state), ("#v", "version"), ("#ua", "updated_at")],
                    vec![(":pending", pending), (":synced", synced), (":one", n(1)), (":v", n(version)), (":now", s(rfc3339(now)))],
                )?,
            )
            .with(Role::Outbox, self.outbox_put(user_of(&what), &what.command(version + 1))?);
        self.transact_guarded(tx, &key).await?;
        Ok(version + 1)
    }

    async fn requeue(&self, user: &UserId, kind: Kind, id: &str, version: u64, command: &CommandEnvelope) -> Result<(), StoreError> {
        let corrupt = || StoreError::Corrupt(format!("a {} id the index named: {id}", kind.as_str()));
        let key = match kind {
            Kind::Number => Key::number(user, &E164::stored(id).map_err(|_| corrupt())?),
            Kind::Profile => Key::profile(user, ProfileId::parse(id).map_err(|_| corrupt())?),
            Kind::Connection => Key::connection(user, ConnectionId::parse(id).map_err(|_| corrupt())?),
            Kind::Assistant => Key::assistant(user, AssistantId::parse(id).map_err(|_| corrupt())?),
        };
        match self.write_again(&key, "#v = :v", &[("#v", "version")], vec![(":v", n(version))], user, command).await? {
            true => Ok(()),
            false => Err(StoreError::Conflict(Conflict::Stale)),
        }
    }

    async fn begin_pass(&self, pass_id: &str, now: OffsetDateTime, lease_seconds: i64) -> Result<Option<PassCursor>, StoreError> {
        let now_s = now.unix_timestamp();
        let taken = self
            .update_item(
                &Key::reconciler_cursor(),
                "SET #l = :until, #p = :pass",
                "attribute_not_exists(#l) OR #l < :now",
                &[("#l", "lease_until"), ("#p", "lease_pass")],
                vec![(":until", n((now_s + lease_seconds).max(0) as u64)), (":pass", s(pass_id)), (":now", n(now_s.max(0) as u64))],
            )
            .await;
        match taken {
            Ok(Some(item)) => Ok(Some(PassCursor {
                segment: match item.get("segment") {
                    Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
                    _ => 0,
                },
                after: text(&item, "after"),
                passes: match item.get("passes") {
                    Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
                    _ => 0,
                },
            })),
            Ok(None) => Ok(Some(PassCursor::default())),
            Err(WriteFailure::ConditionFailed) => Ok(None),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn note_unknown(&self, kind: Kind, provider: &str, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let key = Key::unknown_resource(kind, provider, id);
        let item: Item =
            HashMap::from([(PK.to_owned(), s(key.pk)), (SK.to_owned(), s(key.sk)), ("first_seen".to_owned(), s(rfc3339(now)))]);
        match self.put_item(item, "attribute_not_exists(pk)").await {
            Ok(()) => Ok(true),
            Err(WriteFailure::ConditionFailed) => Ok(false),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn end_pass(&self, pass_id: &str, cursor: &PassCursor) -> Result<(), StoreError> {
        let (update, mut values) = match &cursor.after {
            Some(after) => ("SET #sg = :sg, #a = :a, #ps = :ps REMOVE #l, #p", vec![(":a", s(after))]),
            None => ("SET #sg = :sg, #ps = :ps REMOVE #l, #p, #a", vec![]),
        };
        values.extend([(":sg", n(cursor.segment as u64)), (":ps", n(cursor.passes)), (":pass", s(pass_id))]);
        match self
            .update_item(
                &Key::reconciler_cursor(),
                update,
                "#p = :pass",
                &[("#sg", "segment"), ("#a", "after"), ("#ps", "passes"), ("#l", "lease_until"), ("#p", "lease_pass")],
                values,
            )
            .await
        {
            Ok(_) => Ok(()),
            // The lease ran out and another pass took it: that pass's cursor wins.
            Err(WriteFailure::ConditionFailed) => Err(StoreError::Conflict(Conflict::Stale)),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }
}
