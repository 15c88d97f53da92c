//! The voice-AI half of the store: assistants, the reservation of a selected number in the
//! assistant's own transaction (the purchase's owner guard), and numbers connected to assistants.

mod sync;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::{NumberStatus, PhoneNumber};
use patchbay_domain::voice_ai::{Assistant, AssistantPatch, AssistantReader, AssistantStatus, AssistantWriter};
use patchbay_domain::{AssistantId, Conflict, Cursor, IdempotencyKey, Limit, Page, StoreError, SyncState, UserId, E164};
use time::OffsetDateTime;

use crate::dynamo::errors::{Role, TxFailure, WriteFailure};
use crate::dynamo::items::AssistantItem;
use crate::dynamo::keys::{Key, ASSISTANT_PREFIX};
use crate::dynamo::table::{attr, from_item, n, s, to_item, DynamoStore, Item, Tx, Values};
use crate::wire::rfc3339;

pub(super) fn assistant_from(item: Item) -> Result<Assistant, StoreError> {
    from_item::<AssistantItem>(item)?.try_into()
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
