//! The voice-AI half of the store: assistants, the reservation of a selected number in the
//! assistant's own transaction (the purchase's owner guard), and numbers connected to assistants.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::{NumberStatus, NumberWriter, PhoneNumber};
use patchbay_domain::voice_ai::{Assistant, AssistantPatch, AssistantReader, AssistantStatus, AssistantSyncLedger, AssistantWriter};
use patchbay_domain::{AssistantId, Conflict, Cursor, IdempotencyKey, Limit, Page, StoreError, SyncError, SyncState, UserId, E164};
use time::OffsetDateTime;

use super::errors::{Role, TxFailure, WriteFailure};
use super::items::AssistantItem;
use super::keys::{Key, ASSISTANT_PREFIX};
use super::table::{attr, from_item, n, s, to_item, DynamoStore, Item, Tx, Values};
use crate::wire::rfc3339;

pub(super) fn assistant_from(item: Item) -> Result<Assistant, StoreError> {
    from_item::<AssistantItem>(item)?.try_into()
}

impl DynamoStore {
    /// Keep Vapi's id for the assistant; the first one stored wins and is answered.
    async fn keep_vapi_assistant(&self, user: &UserId, id: AssistantId, vapi_id: &str) -> Result<String, StoreError> {
        match self
            .update_item(
                &Key::assistant(user, id),
                "SET #va = :va",
                "attribute_exists(pk) AND attribute_not_exists(#va)",
                &[("#va", "vapi_assistant_id")],
                vec![(":va", s(vapi_id))],
            )
            .await
        {
            Ok(_) => Ok(vapi_id.to_owned()),
            Err(WriteFailure::ConditionFailed) => {
                let a = self.assistant_or_404(user, id).await?;
                a.vapi_assistant_id.ok_or_else(|| StoreError::Contended("the Vapi id was not readable yet".into()))
            }
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn assistant_or_404(&self, user: &UserId, id: AssistantId) -> Result<Assistant, StoreError> {
        self.get(&Key::assistant(user, id)).await?.map(assistant_from).transpose()?.ok_or(StoreError::NotFound)
    }

    /// One conditional UpdateItem on an assistant; a failed condition is read as absent or `otherwise`.
    #[allow(clippy::too_many_arguments)] // an UpdateItem's parts, plus the conflict it means
    async fn write_assistant(
        &self,
        user: &UserId,
        id: AssistantId,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Values<'_>,
        otherwise: Conflict,
    ) -> Result<Assistant, StoreError> {
        match self.update_mapped(&Key::assistant(user, id), update, condition, names, values, assistant_from).await? {
            Some(a) => Ok(a),
            None => match self.get(&Key::assistant(user, id)).await? {
                None => Err(StoreError::NotFound),
                Some(_) => Err(StoreError::Conflict(otherwise)),
            },
        }
    }

    /// A number's assistant connection, moved in one conditional write (version-guarded).
    async fn set_number_assistant(
        &self,
        user: &UserId,
        e164: &E164,
        assistant: Option<AssistantId>,
        extra_condition: &str,
        extra_values: Values<'_>,
        now: OffsetDateTime,
    ) -> Result<(), WriteFailure> {
        let mut values: Values<'_> = vec![(":pending", attr(&SyncState::Pending)), (":one", n(1)), (":now", s(rfc3339(now)))];
        values.extend(extra_values);
        let update = match assistant {
            Some(a) => {
                values.push((":a", s(a.to_string())));
                "SET #ai = :a, #as = :pending, #v = #v + :one, #ua = :now REMOVE #ase"
            }
            None => "SET #as = :pending, #v = #v + :one, #ua = :now REMOVE #ai, #ase",
        };
        self.update_item(
            &Key::number(user, e164),
            update,
            &format!("attribute_exists(pk){extra_condition}"),
            &[
                ("#ai", "assistant_id"),
                ("#as", "assistant_sync"),
                ("#ase", "assistant_sync_error"),
                ("#v", "version"),
                ("#ua", "updated_at"),
                ("#st", "status"),
                ("#sc", "sip_connection_id"),
            ]
            .into_iter()
            .filter(|(k, _)| update.contains(k) || extra_condition.contains(k))
            .collect::<Vec<_>>(),
            values,
        )
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl AssistantReader for DynamoStore {
    async fn get_assistant(&self, user: &UserId, id: AssistantId) -> Result<Assistant, StoreError> {
        self.assistant_or_404(user, id).await
    }

    async fn list_assistants(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Assistant>, StoreError> {
        self.list_page(&Key::user_pk(user), ASSISTANT_PREFIX, after, limit, true, assistant_from, |a| a.id.to_string()).await
    }
}

#[async_trait]
impl AssistantWriter for DynamoStore {
    async fn create_assistant(
        &self,
        assistant: &Assistant,
        reserve: Option<&PhoneNumber>,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<Assistant>, StoreError> {
        let mut tx = match reserve {
            Some(number) => self.purchase_tx(number)?,
            None => Tx::new(),
        };
        tx.push(Role::Assistant, self.put(to_item(&AssistantItem::from(assistant))?, "attribute_not_exists(pk)", &[], vec![])?);
        let guard = match idempotency {
            Some((key, fingerprint)) => {
                let (k, put) = self.idempotency_put(&assistant.user_id, "create-assistant", key, &assistant.id.to_string(), fingerprint)?;
                tx.push(Role::Idempotency, put);
                Some((k, fingerprint))
            }
            None => None,
        };
        match self.transact(tx).await {
            Ok(()) => Ok(Created::New(assistant.clone())),
            Err(TxFailure::Refused(c)) => {
                if let Some((k, fingerprint)) = guard.filter(|_| c.failed(Role::Idempotency)) {
                    let resource = self.idempotent_resource(&k, fingerprint).await?;
                    let id = AssistantId::parse(&resource).map_err(|_| StoreError::Corrupt("idempotency resource_id".into()))?;
                    return self.assistant_or_404(&assistant.user_id, id).await.map(Created::Replayed);
                }
                match reserve {
                    Some(number) if c.failed(Role::OwnerGuard) || c.failed(Role::Record) => Err(self.purchase_refused(&c, number).await),
                    _ => Err(StoreError::Conflict(Conflict::AlreadyExists)),
                }
            }
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn update_assistant(
        &self,
        user: &UserId,
        id: AssistantId,
        patch: &AssistantPatch,
        now: OffsetDateTime,
    ) -> Result<Assistant, StoreError> {
        let mut sets = vec!["#ss = :pending", "#v = #v + :one", "#ua = :now"];
        let mut names = vec![("#ss", "sync_state"), ("#v", "version"), ("#ua", "updated_at"), ("#se", "sync_error"), ("#st", "status")];
        let mut values: Values<'_> = vec![
            (":pending", attr(&SyncState::Pending)),
            (":one", n(1)),
            (":now", s(rfc3339(now))),
            (":active", attr(&AssistantStatus::Active)),
        ];
        let fields: [(&str, &str, &str, &str, Option<AttributeValue>); 5] = [
            ("#nm = :nm", "#nm", "name", ":nm", patch.name.as_ref().map(|n| s(n.as_str()))),
            ("#fm = :fm", "#fm", "first_message", ":fm", patch.first_message.as_ref().map(|t| s(t.as_str()))),
            ("#sp = :sp", "#sp", "system_prompt", ":sp", patch.system_prompt.as_ref().map(|t| s(t.as_str()))),
            ("#md = :md", "#md", "model", ":md", patch.model.as_ref().map(attr)),
            ("#vc = :vc", "#vc", "voice", ":vc", patch.voice.as_ref().map(attr)),
        ];
        for (set, name, attribute, placeholder, value) in fields {
            if let Some(v) = value {
                sets.push(set);
                names.push((name, attribute));
                values.push((placeholder, v));
            }
        }
        let update = format!("SET {} REMOVE #se", sets.join(", "));
        self.write_assistant(user, id, &update, "attribute_exists(pk) AND #st = :active", &names, values, Conflict::AssistantNotActive)
            .await
    }

    async fn mark_assistant_deleting(&self, user: &UserId, id: AssistantId, now: OffsetDateTime) -> Result<Assistant, StoreError> {
        // A saga still running finishes first (its number is being bought): then the delete.
        self.write_assistant(
            user,
            id,
            "SET #st = :deleting, #v = #v + :one, #ua = :now",
            "attribute_exists(pk) AND #st <> :pending",
            &[("#st", "status"), ("#v", "version"), ("#ua", "updated_at")],
            vec![
                (":deleting", attr(&AssistantStatus::Deleting)),
                (":pending", attr(&AssistantStatus::Pending)),
                (":one", n(1)),
                (":now", s(rfc3339(now))),
            ],
            Conflict::AssistantNotActive,
        )
        .await
    }

    async fn connect_number(
        &self,
        user: &UserId,
        e164: &E164,
        assistant: Option<AssistantId>,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError> {
        let current = self.number_or_404(user, e164).await?;
        if current.assistant_id == assistant && current.assistant_sync != Some(SyncState::Failed) {
            return Ok(current);
        }
        let Some(a) = assistant else {
            match self.set_number_assistant(user, e164, None, " AND #v = :v", vec![(":v", n(current.version))], now).await {
                Ok(()) => return self.number_or_404(user, e164).await,
                Err(WriteFailure::ConditionFailed) => {
                    return Err(StoreError::Contended("the number changed while it was disconnected".into()))
                }
                Err(WriteFailure::Other(e)) => return Err(e),
            }
        };
        if current.status != NumberStatus::Active {
            return Err(StoreError::Conflict(Conflict::NumberNotActive));
        }
        if current.voice.is_some() {
            return Err(StoreError::Conflict(Conflict::NumberVoiceInUse));
        }
        let tx = Tx::new()
            .with(
                Role::Record,
                self.update(
                    &Key::number(user, e164),
                    "SET #ai = :a, #as = :pending, #v = #v + :one, #ua = :now REMOVE #ase",
                    "#v = :v AND #st = :active AND attribute_not_exists(#sc)",
                    &[
                        ("#ai", "assistant_id"),
                        ("#as", "assistant_sync"),
                        ("#ase", "assistant_sync_error"),
                        ("#v", "version"),
                        ("#ua", "updated_at"),
                        ("#st", "status"),
                        ("#sc", "sip_connection_id"),
                    ],
                    vec![
                        (":a", s(a.to_string())),
                        (":pending", attr(&SyncState::Pending)),
                        (":one", n(1)),
                        (":now", s(rfc3339(now))),
                        (":v", n(current.version)),
                        (":active", attr(&NumberStatus::Active)),
                    ],
                )?,
            )
            .with(
                Role::Assistant,
                self.check(
                    &Key::assistant(user, a),
                    "#st = :active",
                    &[("#st", "status")],
                    vec![(":active", attr(&AssistantStatus::Active))],
                )?,
            );
        match self.transact(tx).await {
            Ok(()) => self.number_or_404(user, e164).await,
            Err(TxFailure::Refused(c)) if c.failed(Role::Assistant) => Err(match self.get(&Key::assistant(user, a)).await? {
                None => StoreError::NotFound,
                Some(_) => StoreError::Conflict(Conflict::AssistantNotActive),
            }),
            Err(TxFailure::Refused(_)) => {
                let now_n = self.number_or_404(user, e164).await?;
                Err(if now_n.voice.is_some() {
                    StoreError::Conflict(Conflict::NumberVoiceInUse)
                } else if now_n.status != NumberStatus::Active {
                    StoreError::Conflict(Conflict::NumberNotActive)
                } else {
                    StoreError::Contended("the number changed while it was connected".into())
                })
            }
            Err(TxFailure::Other(e)) => Err(e),
        }
    }
}

#[async_trait]
impl AssistantSyncLedger for DynamoStore {
    async fn record_vapi_assistant(&self, user: &UserId, id: AssistantId, vapi_id: &str) -> Result<String, StoreError> {
        let kept = self.keep_vapi_assistant(user, id, vapi_id).await?;
        // Vapi's call reports name this id: they find their user (and the assistant's name) through it.
        let name = self.assistant_or_404(user, id).await?.name.as_str().to_owned();
        self.put_route(Key::assistant_route(&kept), user, &id.to_string(), Some(&name)).await?;
        Ok(kept)
    }

    async fn record_assistant_active(&self, user: &UserId, id: AssistantId, version: u64, now: OffsetDateTime) -> Result<(), StoreError> {
        self.write_assistant(
            user,
            id,
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
            Conflict::Stale,
        )
        .await
        .map(|_| ())
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
        // A refused delete stays deleting (a repeated DELETE tries again); anything else fails.
        let status = if a.status == AssistantStatus::Deleting { AssistantStatus::Deleting } else { AssistantStatus::Failed };
        self.write_assistant(
            user,
            id,
            "SET #st = :st, #fl = :e, #ua = :now",
            "attribute_exists(pk) AND #v = :v",
            &[("#st", "status"), ("#fl", "failure"), ("#v", "version"), ("#ua", "updated_at")],
            vec![(":st", attr(&status)), (":e", attr(error)), (":v", n(version)), (":now", s(rfc3339(now)))],
            Conflict::Stale,
        )
        .await
        .map(|_| ())
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

    async fn purge_assistant(&self, user: &UserId, id: AssistantId, version: u64) -> Result<(), StoreError> {
        match self
            .delete_item(
                &Key::assistant(user, id),
                "#v = :v AND #st = :deleting",
                &[("#v", "version"), ("#st", "status")],
                vec![(":v", n(version)), (":deleting", attr(&AssistantStatus::Deleting))],
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(WriteFailure::ConditionFailed) => Err(StoreError::Conflict(Conflict::Stale)),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn detach_number(
        &self,
        user: &UserId,
        e164: &E164,
        assistant: AssistantId,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError> {
        match self.set_number_assistant(user, e164, None, " AND #ai = :was", vec![(":was", s(assistant.to_string()))], now).await {
            Ok(()) | Err(WriteFailure::ConditionFailed) => self.number_or_404(user, e164).await,
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn release_reserved(&self, user: &UserId, e164: &E164, now: OffsetDateTime) -> Result<PhoneNumber, StoreError> {
        self.mark_releasing(user, e164, now).await
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
