//! The saga's and the number sync's assistant writes (`AssistantSyncLedger`): what Vapi now holds.

use async_trait::async_trait;
use patchbay_domain::numbers::{NumberStatus, PhoneNumber};
use patchbay_domain::voice_ai::{events, Assistant, AssistantStatus, AssistantSyncLedger};
use patchbay_domain::{AssistantId, Conflict, StoreError, SyncError, SyncState, UserId, E164};
use time::OffsetDateTime;

use super::assistant_from;
use crate::dynamo::errors::{Role, TxFailure};
use crate::dynamo::keys::Key;
use crate::dynamo::numbers::next_sync;
use crate::dynamo::table::{attr, backoff, n, s, DynamoStore, Tx, Values, RACE_ATTEMPTS};
use crate::wire::rfc3339;

#[async_trait]
impl AssistantSyncLedger for DynamoStore {
    async fn record_vapi_assistant(&self, user: &UserId, id: AssistantId, vapi_id: &str) -> Result<String, StoreError> {
        // Vapi's call reports name this id and find their user through its route: the id and its
        // route are one transaction. An id already stored (a lost answer, a concurrent saga) wins,
        // and its route is put.
        let tx = Tx::new()
            .with(
                Role::Record,
                self.update(
                    &Key::assistant(user, id),
                    "SET #va = :va",
                    "attribute_exists(pk) AND (attribute_not_exists(#va) OR #va = :va)",
                    &[("#va", "vapi_assistant_id")],
                    vec![(":va", s(vapi_id))],
                )?,
            )
            .with(Role::ProviderRoute, self.route_put(Key::assistant_route(vapi_id), user, &id.to_string())?);
        match self.transact(tx).await {
            Ok(()) => Ok(vapi_id.to_owned()),
            Err(TxFailure::Refused(c)) if c.failed(Role::Record) => {
                let kept = self.assistant_or_404(user, id).await?.vapi_assistant_id;
                let kept = kept.ok_or_else(|| StoreError::Contended("the Vapi id was not readable yet".into()))?;
                self.put_route(Key::assistant_route(&kept), user, &id.to_string()).await?;
                Ok(kept)
            }
            Err(TxFailure::Refused(_)) => Err(StoreError::Corrupt("the Vapi assistant already routes to another user".into())),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn ensure_assistant_route(&self, user: &UserId, id: AssistantId, vapi_id: &str) -> Result<(), StoreError> {
        self.put_route(Key::assistant_route(vapi_id), user, &id.to_string()).await
    }

    async fn record_assistant_active(&self, user: &UserId, id: AssistantId, version: u64, now: OffsetDateTime) -> Result<(), StoreError> {
        // The record as it is, for the event; the write pins the version the caller read.
        let a = self.assistant_or_404(user, id).await?;
        let key = Key::assistant(user, id);
        let record = self.update(
            &key,
            "SET #st = :active, #ss = :synced, #ua = :now",
            "attribute_exists(pk) AND #v = :v AND #st = :pending",
            &[("#st", "status"), ("#ss", "sync_state"), ("#v", "version"), ("#ua", "updated_at")],
            vec![
                (":active", attr(&AssistantStatus::Active)),
                (":synced", attr(&SyncState::Synced)),
                (":pending", attr(&AssistantStatus::Pending)),
                (":v", n(version)),
                (":now", s(rfc3339(now))),
            ],
        )?;
        let active = Assistant { status: AssistantStatus::Active, version, ..a };
        let tx = Tx::new().with(Role::Record, record).with(Role::Event, self.event_put(&events::active(&active, now))?);
        self.transact_guarded(tx, &key).await
    }

    async fn record_assistant_failed(
        &self,
        user: &UserId,
        id: AssistantId,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let a = self.assistant_or_404(user, id).await?;
        // A refused delete stays deleting (a repeated DELETE tries again); anything else fails. The
        // status read is pinned in the condition (crash-audit F17): a status that moved meanwhile
        // is a lost race, not overwritten.
        let status = if a.status == AssistantStatus::Deleting { AssistantStatus::Deleting } else { AssistantStatus::Failed };
        let key = Key::assistant(user, id);
        let record = self.update(
            &key,
            "SET #st = :st, #fl = :e, #ua = :now",
            "attribute_exists(pk) AND #v = :v AND #st = :read",
            &[("#st", "status"), ("#fl", "failure"), ("#v", "version"), ("#ua", "updated_at")],
            vec![(":st", attr(&status)), (":e", attr(error)), (":v", n(version)), (":now", s(rfc3339(now))), (":read", attr(&a.status))],
        )?;
        let mut tx = Tx::new().with(Role::Record, record);
        // `assistant.failed` when it fails for good (from pending, or an active one whose number's
        // step failed); a refused delete is no new state.
        if status == AssistantStatus::Failed && a.status != AssistantStatus::Failed {
            let failed = Assistant { status, failure: Some(error.clone()), version, ..a };
            tx.push(Role::Event, self.event_put(&events::failed(&failed, error, now))?);
        }
        self.transact_guarded(tx, &key).await
    }

    async fn record_assistant_sync(
        &self,
        user: &UserId,
        id: AssistantId,
        version: u64,
        outcome: Result<(), &SyncError>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let names = [("#ss", "sync_state"), ("#se", "sync_error"), ("#v", "version"), ("#ua", "updated_at")];
        let (update, mut values): (&str, Values<'_>) = match outcome {
            Ok(()) => ("SET #ss = :state, #ua = :now REMOVE #se", vec![(":state", attr(&SyncState::Synced))]),
            Err(e) => ("SET #ss = :state, #se = :e, #ua = :now", vec![(":state", attr(&SyncState::Failed)), (":e", attr(e))]),
        };
        values.extend([(":v", n(version)), (":now", s(rfc3339(now)))]);
        self.write_assistant(user, id, update, "attribute_exists(pk) AND #v = :v", &names, values, Conflict::Stale).await.map(|_| ())
    }

    async fn reset_given_up_assistant(&self, user: &UserId, id: AssistantId, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.reset_exhausted(&Key::assistant(user, id), "sync_state", "sync_error", now).await
    }

    async fn purge_assistant(&self, user: &UserId, id: AssistantId, version: u64) -> Result<(), StoreError> {
        // The record and its report route go together (the Vapi id read here is pinned by the
        // delete's version condition).
        let Some(a) = self.get(&Key::assistant(user, id)).await?.map(assistant_from).transpose()? else { return Ok(()) };
        let mut tx = Tx::new().with(
            Role::Record,
            self.delete(
                &Key::assistant(user, id),
                "#v = :v AND #st = :deleting",
                &[("#v", "version"), ("#st", "status")],
                vec![(":v", n(version)), (":deleting", attr(&AssistantStatus::Deleting))],
            )?,
        );
        if let Some(vapi_id) = &a.vapi_assistant_id {
            tx = tx.with(Role::ProviderRoute, self.route_delete(&Key::assistant_route(vapi_id), user)?);
        }
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Refused(c)) if c.failed(Role::Record) => match self.get(&Key::assistant(user, id)).await? {
                None => Ok(()),
                Some(_) => Err(StoreError::Conflict(Conflict::Stale)),
            },
            Err(TxFailure::Refused(_)) => Err(StoreError::Corrupt("the assistant's report route belongs to another user".into())),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn detach_number(
        &self,
        user: &UserId,
        e164: &E164,
        assistant: AssistantId,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.number_or_404(user, e164).await?;
            if current.assistant_id != Some(assistant) {
                // Detached already (a redelivery), or connected elsewhere since: nothing to do here.
                return Ok(current);
            }
            let tx = Tx::new()
                .with(
                    Role::Record,
                    self.update(
                        &Key::number(user, e164),
                        "SET #as = :pending, #v = #v + :one, #ua = :now REMOVE #ai, #ase",
                        "#v = :v AND #ai = :was",
                        &[
                            ("#ai", "assistant_id"),
                            ("#as", "assistant_sync"),
                            ("#ase", "assistant_sync_error"),
                            ("#v", "version"),
                            ("#ua", "updated_at"),
                        ],
                        vec![
                            (":pending", attr(&SyncState::Pending)),
                            (":one", n(1)),
                            (":now", s(rfc3339(now))),
                            (":v", n(current.version)),
                            (":was", s(assistant.to_string())),
                        ],
                    )?,
                )
                .with(Role::Outbox, self.outbox_put(user, &next_sync(&current))?);
            match self.transact(tx).await {
                Ok(()) => return self.number_or_404(user, e164).await,
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the number kept changing while it was detached".into()))
    }

    async fn compensate(
        &self,
        user: &UserId,
        id: AssistantId,
        version: u64,
        e164: &E164,
        reason: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let number = match self.number_or_404(user, e164).await {
            Ok(n) => Some(n),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        };
        if !number.is_some_and(|n| matches!(n.status, NumberStatus::Active | NumberStatus::Lost)) {
            // Nothing bought to give back (or its release is under way already).
            return self.record_assistant_failed(user, id, version, reason, now).await;
        }
        let fail = self.update(
            &Key::assistant(user, id),
            "SET #st = :failed, #fl = :e, #ua = :now",
            "#v = :v AND #st = :pending",
            &[("#st", "status"), ("#fl", "failure"), ("#v", "version"), ("#ua", "updated_at")],
            vec![
                (":failed", attr(&AssistantStatus::Failed)),
                (":pending", attr(&AssistantStatus::Pending)),
                (":e", attr(reason)),
                (":v", n(version)),
                (":now", s(rfc3339(now))),
            ],
        )?;
        let a = self.assistant_or_404(user, id).await?;
        let failed = Assistant { status: AssistantStatus::Failed, failure: Some(reason.clone()), version, ..a };
        let extra = vec![(Role::Assistant, fail), (Role::Event, self.event_put(&events::failed(&failed, reason, now))?)];
        match self.mark_releasing_with(user, e164, now, extra).await {
            Ok(_) => Ok(()),
            // It stopped being releasable meanwhile: the failure alone.
            Err(StoreError::Conflict(Conflict::NumberNotActive)) | Err(StoreError::NotFound) => {
                self.record_assistant_failed(user, id, version, reason, now).await
            }
            Err(e) => Err(e),
        }
    }

    async fn record_number_assistant(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        vapi_number_id: Option<&str>,
        outcome: Result<(), &SyncError>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut sets = vec!["#as = :state", "#ua = :now"];
        let mut removes = vec![];
        let mut values: Values<'_> = vec![(":v", n(version)), (":now", s(rfc3339(now)))];
        match outcome {
            Ok(()) => {
                values.push((":state", attr(&SyncState::Synced)));
                removes.push("#ase");
            }
            Err(e) => {
                values.push((":state", attr(&SyncState::Failed)));
                values.push((":e", attr(e)));
                sets.push("#ase = :e");
            }
        }
        match vapi_number_id {
            Some(id) => {
                sets.push("#vp = :vp");
                values.push((":vp", s(id)));
            }
            None => removes.push("#vp"),
        }
        let update = if removes.is_empty() {
            format!("SET {}", sets.join(", "))
        } else {
            format!("SET {} REMOVE {}", sets.join(", "), removes.join(", "))
        };
        self.update_number(
            user,
            e164,
            &update,
            "#v = :v",
            &[
                ("#as", "assistant_sync"),
                ("#ase", "assistant_sync_error"),
                ("#vp", "vapi_phone_number_id"),
                ("#v", "version"),
                ("#ua", "updated_at"),
            ],
            values,
        )
        .await
    }
}
