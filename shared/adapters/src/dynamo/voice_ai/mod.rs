//! The voice-AI half of the store: assistants, the reservation of a selected number in the
//! assistant's own transaction (the purchase's owner guard), and numbers connected to assistants.

mod sync;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::{NumberStatus, PhoneNumber};
use patchbay_domain::voice_ai::{Assistant, AssistantPatch, AssistantReader, AssistantStatus, AssistantWriter};
use patchbay_domain::{AssistantId, CommandEnvelope, Conflict, Cursor, IdempotencyKey, Limit, Page, StoreError, SyncState, UserId, E164};
use time::OffsetDateTime;

use crate::dynamo::errors::{Role, TxFailure};
use crate::dynamo::items::AssistantItem;
use crate::dynamo::keys::{Key, ASSISTANT_PREFIX};
use crate::dynamo::table::{attr, backoff, from_item, n, s, to_item, DynamoStore, Item, Tx, Values, RACE_ATTEMPTS};
use crate::wire::rfc3339;

pub(super) fn assistant_from(item: Item) -> Result<Assistant, StoreError> {
    from_item::<AssistantItem>(item)?.try_into()
}

/// The assistant's saga at its version.
pub(super) fn saga_command(a: &Assistant) -> CommandEnvelope {
    CommandEnvelope::sync_assistant(a.user_id.clone(), a.id, a.version)
}

impl DynamoStore {
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

    /// After a keyless create with a number was refused by the number's owner guard: the caller's
    /// own assistant that reserved it, when it is the one this request would have made (a retry of a
    /// request whose answer was lost: the same fingerprint, made within the keyless retry window,
    /// pending or already active by the time the retry came).
    async fn own_pending_assistant(&self, assistant: &Assistant, number: &PhoneNumber) -> Result<Option<Assistant>, StoreError> {
        let Some(mine) =
            self.get(&Key::number(&number.user_id, &number.e164)).await?.map(crate::dynamo::numbers::number_from).transpose()?
        else {
            return Ok(None);
        };
        let Some(id) = mine.assistant_id else { return Ok(None) };
        match self.assistant_or_404(&assistant.user_id, id).await {
            // Pending, or already active by the time the retry came.
            Ok(a)
                if matches!(a.status, AssistantStatus::Pending | AssistantStatus::Active)
                    && a.fingerprint() == assistant.fingerprint()
                    && assistant.created_at - a.created_at < crate::dynamo::numbers::KEYLESS_RETRY_WINDOW =>
            {
                Ok(Some(a))
            }
            Ok(_) | Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
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
        // The saga (it buys the reserved number): an outbox item of the same transaction.
        tx.push(Role::Outbox, self.outbox_put(&assistant.user_id, &saga_command(assistant))?);
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
                    Some(number) if c.failed(Role::OwnerGuard) => match self.own_pending_assistant(assistant, number).await? {
                        // A keyless retry of this same request whose answer was lost.
                        Some(mine) => Ok(Created::Replayed(mine)),
                        None => Err(self.purchase_refused(&c, number).await),
                    },
                    Some(number) if c.failed(Role::Record) => Err(self.purchase_refused(&c, number).await),
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
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.assistant_or_404(user, id).await?;
            if current.status != AssistantStatus::Active {
                return Err(StoreError::Conflict(Conflict::AssistantNotActive));
            }
            let mut values = values.clone();
            values.push((":was", n(current.version)));
            let next = current.patched(patch, now);
            let tx = Tx::new()
                .with(Role::Record, self.update(&Key::assistant(user, id), &update, "#v = :was AND #st = :active", &names, values)?)
                .with(Role::Outbox, self.outbox_put(user, &saga_command(&next))?);
            match self.transact(tx).await {
                // Answered as the write left it, never read back (the worker may have synced it).
                Ok(()) => return Ok(next),
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the assistant kept changing while it was being updated".into()))
    }

    async fn mark_assistant_deleting(&self, user: &UserId, id: AssistantId, now: OffsetDateTime) -> Result<Assistant, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.assistant_or_404(user, id).await?;
            let key = Key::assistant(user, id);
            // Every arm returns, or falls through to read again after a lost race.
            match current.status {
                // A saga still running finishes first (its number is being bought): then the delete.
                AssistantStatus::Pending => return Err(StoreError::Conflict(Conflict::AssistantNotActive)),
                // Already being deleted: its saga written again (a repeated DELETE retries a delete
                // that stopped), as long as it is still deleting at that version.
                AssistantStatus::Deleting => {
                    let (names, values) = (
                        [("#v", "version"), ("#st", "status")],
                        vec![(":v", n(current.version)), (":deleting", attr(&AssistantStatus::Deleting))],
                    );
                    if self.write_again(&key, "#v = :v AND #st = :deleting", &names, values, user, &saga_command(&current)).await? {
                        return Ok(current);
                    }
                }
                AssistantStatus::Active | AssistantStatus::Failed => {
                    let mut after = current.clone();
                    after.status = AssistantStatus::Deleting;
                    after.version += 1;
                    after.updated_at = now;
                    let tx = Tx::new()
                        .with(
                            Role::Record,
                            self.update(
                                &key,
                                "SET #st = :deleting, #v = #v + :one, #ua = :now",
                                "#v = :v AND #st = :was",
                                &[("#st", "status"), ("#v", "version"), ("#ua", "updated_at")],
                                vec![
                                    (":deleting", attr(&AssistantStatus::Deleting)),
                                    (":was", attr(&current.status)),
                                    (":one", n(1)),
                                    (":v", n(current.version)),
                                    (":now", s(rfc3339(now))),
                                ],
                            )?,
                        )
                        .with(Role::Outbox, self.outbox_put(user, &saga_command(&after))?);
                    match self.transact(tx).await {
                        Ok(()) => return Ok(after),
                        Err(TxFailure::Refused(_)) => {}
                        Err(TxFailure::Other(e)) => return Err(e),
                    }
                }
            }
            backoff(attempt).await;
        }
        Err(StoreError::Contended("the assistant kept changing while it was being deleted".into()))
    }

    async fn connect_number(
        &self,
        user: &UserId,
        e164: &E164,
        assistant: Option<AssistantId>,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.number_or_404(user, e164).await?;
            if current.assistant_id == assistant && current.assistant_sync != Some(SyncState::Failed) {
                if current.assistant_sync != Some(SyncState::Pending) {
                    return Ok(current);
                }
                // As asked already, Vapi's side still to come: its sync written again.
                if self
                    .again(&current, "#as = :pending", vec![(":pending", attr(&SyncState::Pending))], &[("#as", "assistant_sync")])
                    .await?
                {
                    return Ok(current);
                }
                backoff(attempt).await;
                continue;
            }
            let work = CommandEnvelope::sync_number(user.clone(), e164.clone(), current.version + 1);
            let names = [
                ("#ai", "assistant_id"),
                ("#as", "assistant_sync"),
                ("#ase", "assistant_sync_error"),
                ("#v", "version"),
                ("#ua", "updated_at"),
                ("#st", "status"),
                ("#sc", "sip_connection_id"),
            ];
            let mut values: Values<'_> =
                vec![(":pending", attr(&SyncState::Pending)), (":one", n(1)), (":now", s(rfc3339(now))), (":v", n(current.version))];
            let Some(a) = assistant else {
                let update = "SET #as = :pending, #v = #v + :one, #ua = :now REMOVE #ai, #ase";
                let used: Vec<(&str, &str)> = names.iter().copied().filter(|(k, _)| update.contains(k)).collect();
                let tx = Tx::new()
                    .with(Role::Record, self.update(&Key::number(user, e164), update, "#v = :v", &used, values)?)
                    .with(Role::Outbox, self.outbox_put(user, &work)?);
                match self.transact(tx).await {
                    Ok(()) => return self.number_or_404(user, e164).await,
                    Err(TxFailure::Refused(_)) => {
                        backoff(attempt).await;
                        continue;
                    }
                    Err(TxFailure::Other(e)) => return Err(e),
                }
            };
            if current.status != NumberStatus::Active {
                return Err(StoreError::Conflict(Conflict::NumberNotActive));
            }
            if current.voice.is_some() {
                return Err(StoreError::Conflict(Conflict::NumberVoiceInUse));
            }
            values.extend([(":a", s(a.to_string())), (":active", attr(&NumberStatus::Active))]);
            let tx = Tx::new()
                .with(
                    Role::Record,
                    self.update(
                        &Key::number(user, e164),
                        "SET #ai = :a, #as = :pending, #v = #v + :one, #ua = :now REMOVE #ase",
                        "#v = :v AND #st = :active AND attribute_not_exists(#sc)",
                        &names,
                        values,
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
                )
                .with(Role::Outbox, self.outbox_put(user, &work)?);
            match self.transact(tx).await {
                Ok(()) => return self.number_or_404(user, e164).await,
                Err(TxFailure::Refused(c)) if c.failed(Role::Assistant) => {
                    return Err(match self.get(&Key::assistant(user, a)).await? {
                        None => StoreError::NotFound,
                        Some(_) => StoreError::Conflict(Conflict::AssistantNotActive),
                    })
                }
                // The number changed since it was read: read it again.
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the number kept changing while it was connected".into()))
    }
}
