//! The messaging half of the store: conversations, messages, contacts, and the once-only guards of
//! webhook events, each webhook's effects in one transaction.

mod outbound;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use outbound::final_counter;
use patchbay_domain::calls::Counters;
use patchbay_domain::messaging::{
    events, keyword, Contact, ContactPatch, Conversation, ConversationStore, Inbound, InboundSms, Inbox, Keyword, Message, Receipt,
    ReceiptOutcome,
};
use patchbay_domain::{CarrierName, Conflict, ConversationId, Cursor, Limit, Page, StoreError, UserId, E164};
use time::OffsetDateTime;

use crate::dynamo::errors::{Role, TxFailure, WriteFailure};
use crate::dynamo::items::{corrupt, CarrierMessageItem, ContactItem, ConversationItem, MessageItem, NumberOwnerItem};
use crate::dynamo::keys::{Key, CONTACT_PREFIX};
use crate::dynamo::stats::day_of;
use crate::dynamo::table::{attr, backoff, from_item, n, s, to_item, DynamoStore, Item, Tx, RACE_ATTEMPTS, UNCONDITIONAL};
use crate::wire::rfc3339;

/// How long a webhook event id is remembered (carriers retry for minutes to hours, not days).
pub const EVENT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const PREVIEW_CHARS: usize = 80;

fn message_from(item: Item) -> Result<Message, StoreError> {
    from_item::<MessageItem>(item)?.try_into()
}

fn conversation_from(item: Item) -> Result<Conversation, StoreError> {
    from_item::<ConversationItem>(item)?.try_into()
}

fn contact_from(item: Item) -> Result<Contact, StoreError> {
    from_item::<ContactItem>(item)?.try_into()
}

fn message_key(m: &Message) -> Key {
    Key::message(&m.user_id, &m.conversation_id, &m.id.to_string())
}

impl DynamoStore {
    /// The once-only guard of a webhook event (expires after `EVENT_TTL`), to go in its transaction
    /// under `Role::EventGuard`.
    fn event_guard(&self, carrier: CarrierName, event_id: &str, now: OffsetDateTime) -> Result<TransactWriteItem, StoreError> {
        let mut item = Key::webhook_event(carrier, event_id).to_item();
        item.insert("expires_at".into(), AttributeValue::N((now.unix_timestamp() + EVENT_TTL.as_secs() as i64).to_string()));
        self.put(item, "attribute_not_exists(pk)", &[], vec![])
    }

    /// The conversation's upsert inside a message's transaction: created on its first message, its
    /// activity (and GSI1 position) moved, unread raised by `unread`.
    #[allow(clippy::too_many_arguments)]
    fn conversation_upsert(
        &self,
        user: &UserId,
        conv: &ConversationId,
        ours: &E164,
        contact: &E164,
        at: OffsetDateTime,
        preview: String,
        unread: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        // The index key is the fixed-width time (it sorts as the times do); the attribute is RFC 3339.
        let (last, index_sk) = (rfc3339(at), Key::conversations_index_sk(&crate::wire::sortable(at), conv));
        self.update(
            &Key::conversation(user, conv),
            "SET #id = :id, #ours = :ours, #contact = :contact, #last = :at, #preview = :preview, #g1pk = :g1pk, #g1sk = :g1sk ADD #unread :n",
            UNCONDITIONAL,
            &[
                ("#id", "id"),
                ("#ours", "our_number"),
                ("#contact", "contact"),
                ("#last", "last_message_at"),
                ("#preview", "last_message_preview"),
                ("#g1pk", "gsi1pk"),
                ("#g1sk", "gsi1sk"),
                ("#unread", "unread"),
            ],
            vec![
                (":id", s(conv.as_str())),
                (":ours", s(ours.as_str())),
                (":contact", s(contact.as_str())),
                (":at", s(last)),
                (":preview", s(preview)),
                (":g1pk", s(Key::conversations_index(user))),
                (":g1sk", s(index_sk)),
                (":n", n(unread)),
            ],
        )
    }

    /// Each conversation's `contact_name`, read from the user's contacts as they are now: one
    /// BatchGetItem for a page (at most 100 conversations, so at most 100 contact keys).
    async fn name_contacts(&self, user: &UserId, conversations: &mut [Conversation]) -> Result<(), StoreError> {
        if conversations.is_empty() {
            return Ok(());
        }
        let items = self.batch_get(conversations.iter().map(|c| Key::contact(user, &c.contact))).await?;
        let mut names = std::collections::HashMap::new();
        for item in items {
            let contact: ContactItem = from_item(item)?;
            if let Some(name) = contact.name {
                names.insert(contact.phone_number, name);
            }
        }
        for c in conversations {
            c.contact_name = names.get(c.contact.as_str()).cloned();
        }
        Ok(())
    }

    /// The contact's upsert inside an inbound message's transaction: created on first contact;
    /// STOP/START/HELP recorded with the message. A STOP or START is conditioned on the opt-out the
    /// caller read (`was`), so whether it changed anything (and so its event) is decided by the write.
    fn contact_upsert(&self, owner: &UserId, sms: &InboundSms, at: &str, was: bool) -> Result<TransactWriteItem, StoreError> {
        let key = Key::contact(owner, &sms.from);
        let always = UNCONDITIONAL;
        let base = [("#p", "phone_number"), ("#c", "created_at")];
        let values = |extra: Vec<(&'static str, AttributeValue)>| {
            let mut v = vec![(":p", s(sms.from.as_str())), (":at", s(at))];
            v.extend(extra);
            v
        };
        match keyword(&sms.text) {
            Some(k @ (Keyword::OptOut | Keyword::OptIn)) => self.update(
                &key,
                "SET #p = :p, #c = if_not_exists(#c, :at), #o = :o, #oa = :at",
                if was { "#o = :was" } else { "attribute_not_exists(#o) OR #o = :was" },
                &[base[0], base[1], ("#o", "opted_out"), ("#oa", "opt_changed_at")],
                values(vec![(":o", AttributeValue::Bool(k == Keyword::OptOut)), (":was", AttributeValue::Bool(was))]),
            ),
            Some(Keyword::Help) => self.update(
                &key,
                "SET #p = :p, #c = if_not_exists(#c, :at), #h = :at",
                always,
                &[base[0], base[1], ("#h", "last_help_at")],
                values(vec![]),
            ),
            None => self.update(&key, "SET #p = :p, #c = if_not_exists(#c, :at)", always, &base, values(vec![])),
        }
    }
}

#[async_trait]
impl Inbox for DynamoStore {
    async fn number_owner(&self, e164: &E164) -> Result<Option<UserId>, StoreError> {
        match self.get_as::<NumberOwnerItem>(&Key::number_owner(e164)).await? {
            Some(owner) => Ok(Some(UserId::parse(&owner.user_id).map_err(|_| corrupt("owner"))?)),
            None => Ok(None),
        }
    }

    async fn record_inbound(&self, owner: &UserId, sms: &InboundSms, now: OffsetDateTime) -> Result<Inbound, StoreError> {
        let opt = keyword(&sms.text).filter(|k| matches!(k, Keyword::OptOut | Keyword::OptIn));
        for attempt in 0..RACE_ATTEMPTS {
            // Whether a STOP or START changes the contact is read here and pinned in the write.
            let was = match opt {
                Some(_) => self.get_as::<ContactItem>(&Key::contact(owner, &sms.from)).await?.is_some_and(|c| c.opted_out),
                None => false,
            };
            match self.try_record_inbound(owner, sms, opt, was, now).await? {
                Some(outcome) => return Ok(outcome),
                None => backoff(attempt).await,
            }
        }
        Err(StoreError::Contended("the contact's opt-out kept changing under an inbound text".into()))
    }

    async fn apply_receipt(&self, r: &Receipt, now: OffsetDateTime) -> Result<ReceiptOutcome, StoreError> {
        self.apply_receipt_tx(r, now).await
    }
}

impl DynamoStore {
    /// One attempt at an inbound text; `None` when the contact's opt-out moved since it was read.
    async fn try_record_inbound(
        &self,
        owner: &UserId,
        sms: &InboundSms,
        opt: Option<Keyword>,
        was: bool,
        now: OffsetDateTime,
    ) -> Result<Option<Inbound>, StoreError> {
        let message = sms.into_message(owner, now);
        let at = rfc3339(now);
        let preview: String = sms.text.chars().take(PREVIEW_CHARS).collect();
        let mut tx = Tx::new()
            // Once only: the same event again cancels the whole transaction.
            .with(Role::EventGuard, self.event_guard(sms.carrier, &sms.event_id, now)?)
            // Still the owner's: a number released since it was looked up routes nowhere.
            .with(Role::OwnerGuard, self.check(&Key::number_owner(&sms.to), "user_id = :u", &[], vec![(":u", s(owner.as_str()))])?)
            .with(Role::Message, self.put(to_item(&MessageItem::from(&message))?, "attribute_not_exists(pk)", &[], vec![])?)
            // The conversation, created on its first message; unread moves with the message.
            .with(Role::Conversation, self.conversation_upsert(owner, &message.conversation_id, &sms.to, &sms.from, now, preview, 1)?)
            .with(Role::Contact, self.contact_upsert(owner, sms, &at, was)?)
            // The dashboard counts it with it.
            .with(Role::Stats, self.stats_move(owner, &day_of(now), None, &Counters { messages_received: 1, ..Default::default() })?)
            .with(Role::Event, self.event_put(&events::received(&message, now))?);
        // A STOP that opts the contact out (or a START that opts it back in) is an event of its own.
        if let Some(e) =
            opt.filter(|k| (*k == Keyword::OptOut) != was).and_then(|k| events::opt_change(owner, &sms.from, &sms.to, k, &sms.text, now))
        {
            tx.push(Role::Event, self.event_put(&e)?);
        }
        match self.transact(tx).await {
            Ok(()) => Ok(Some(Inbound::Stored(Box::new(message)))),
            Err(TxFailure::Refused(c)) if c.failed(Role::EventGuard) => Ok(Some(Inbound::Duplicate)),
            Err(TxFailure::Refused(c)) if c.failed(Role::OwnerGuard) => Ok(Some(Inbound::NoOwner)),
            Err(TxFailure::Refused(c)) if c.failed(Role::Contact) => Ok(None),
            Err(TxFailure::Refused(c)) => Err(StoreError::Corrupt(format!("inbound message refused: {:?}", c.reasons))),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn apply_receipt_tx(&self, r: &Receipt, now: OffsetDateTime) -> Result<ReceiptOutcome, StoreError> {
        let Some(route) = self.get_as::<CarrierMessageItem>(&Key::carrier_message(&r.carrier_message_id)).await? else {
            return Ok(ReceiptOutcome::Unknown);
        };
        let user = UserId::parse(&route.user_id).map_err(|_| corrupt("route user"))?;
        let mut update = "SET #st = :st, #r = :r, #at = :now".to_owned();
        let mut names = vec![("#st", "status"), ("#r", "status_rank"), ("#at", "status_at")];
        let mut values = vec![(":st", attr(&r.status)), (":r", n(u64::from(r.status.rank()))), (":now", s(rfc3339(now)))];
        if let Some(f) = &r.failure {
            update.push_str(", #f = :f");
            names.push(("#f", "failure"));
            values.push((":f", attr(f)));
        }
        let mut tx = Tx::new()
            .with(Role::EventGuard, self.event_guard(r.carrier, &r.event_id, now)?)
            // Never backwards: a late `sent` after `delivered` changes nothing.
            .with(
                Role::Record,
                self.update(
                    &Key::message(&user, &route.conversation_id, &route.message_id),
                    &update,
                    "attribute_exists(pk) AND #r < :r",
                    &names,
                    values,
                )?,
            );
        // The forward move to a final status is counted with it (delivered and failed share the last
        // rank, so a message is counted as one of them at most once).
        if let Some(counted) = final_counter(r.status) {
            tx.push(Role::Stats, self.stats_move(&user, &day_of(now), None, &counted)?);
        }
        // And reported with it: the rank condition lets one move to each status through, once.
        let moved = events::moved(
            events::StatusMove {
                user: &user,
                conversation: &route.conversation_id,
                message_id: &route.message_id,
                status: r.status,
                carrier: Some(r.carrier),
                carrier_message_id: Some(&r.carrier_message_id),
                failure: r.failure.as_ref(),
            },
            now,
        );
        if let Some(e) = moved {
            tx.push(Role::Event, self.event_put(&e)?);
        }
        match self.transact(tx).await {
            Ok(()) => Ok(ReceiptOutcome::Applied),
            // A duplicate event, or a status that would not move the message forward.
            Err(TxFailure::Refused(c)) if c.failed(Role::EventGuard) || c.failed(Role::Record) => Ok(ReceiptOutcome::Ignored),
            Err(TxFailure::Refused(c)) => Err(StoreError::Corrupt(format!("receipt refused: {:?}", c.reasons))),
            // Collisions that outlasted the retries: the carrier retries the webhook.
            Err(TxFailure::Other(e)) => Err(e),
        }
    }
}

#[async_trait]
impl ConversationStore for DynamoStore {
    async fn list_conversations(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Conversation>, StoreError> {
        // The cursor is the last conversation's id; its index position is read back from it.
        let after = match after {
            Some(cursor) => Some(Key::conversation(
                user,
                &ConversationId::parse(&cursor.position().unwrap_or_default()).map_err(|_| StoreError::NotFound)?,
            )),
            None => None,
        };
        let mut page = self.index_page(&Key::conversations_index(user), after, limit, conversation_from, |c| c.id.to_string()).await?;
        self.name_contacts(user, &mut page.data).await?;
        Ok(page)
    }

    async fn list_messages(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        after: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Message>, StoreError> {
        if self.get(&Key::conversation(user, conversation)).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        self.list_page(&Key::user_pk(user), &Key::messages_prefix(conversation), after, limit, false, message_from, |m| m.id.to_string())
            .await
    }

    async fn mark_read(&self, user: &UserId, conversation: &ConversationId) -> Result<Conversation, StoreError> {
        match self
            .update_item(
                &Key::conversation(user, conversation),
                "SET #u = :zero",
                "attribute_exists(pk)",
                &[("#u", "unread")],
                vec![(":zero", n(0))],
            )
            .await
        {
            Ok(Some(item)) => {
                let mut c = conversation_from(item)?;
                self.name_contacts(user, std::slice::from_mut(&mut c)).await?;
                Ok(c)
            }
            Ok(None) => Err(corrupt("no item returned")),
            Err(WriteFailure::ConditionFailed) => Err(StoreError::NotFound),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn create_contact(&self, user: &UserId, c: &Contact) -> Result<Contact, StoreError> {
        let key = Key::contact(user, &c.phone_number);
        let item = to_item(&ContactItem {
            pk: key.pk,
            sk: key.sk,
            phone_number: c.phone_number.to_string(),
            name: c.name.clone(),
            external_id: c.external_id.clone(),
            opted_out: false,
            created_at: rfc3339(c.created_at),
        })?;
        match self.put_item(item, "attribute_not_exists(pk)").await {
            Ok(()) => Ok(c.clone()),
            Err(WriteFailure::ConditionFailed) => Err(StoreError::Conflict(Conflict::AlreadyExists)),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn list_contacts(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Contact>, StoreError> {
        self.list_page(&Key::user_pk(user), CONTACT_PREFIX, after, limit, true, contact_from, |c| c.phone_number.to_string()).await
    }

    async fn get_contact(&self, user: &UserId, phone_number: &E164) -> Result<Contact, StoreError> {
        self.get(&Key::contact(user, phone_number)).await?.map(contact_from).unwrap_or(Err(StoreError::NotFound))
    }

    async fn update_contact(&self, user: &UserId, phone_number: &E164, patch: &ContactPatch) -> Result<Contact, StoreError> {
        // Only the fields the patch names: a value is set, a null removed. The opt-out, and whatever
        // an inbound text or a send writes, is left as it is.
        let (mut sets, mut removes, mut names, mut values) = (vec![], vec![], vec![], vec![]);
        for (name, attribute, value, field) in [("#n", "name", ":n", &patch.name), ("#x", "external_id", ":x", &patch.external_id)] {
            match field {
                None => continue,
                Some(Some(v)) => {
                    sets.push(format!("{name} = {value}"));
                    values.push((value, s(v.as_str())));
                }
                Some(None) => removes.push(name),
            }
            names.push((name, attribute));
        }
        let mut update = Vec::new();
        if !sets.is_empty() {
            update.push(format!("SET {}", sets.join(", ")));
        }
        if !removes.is_empty() {
            update.push(format!("REMOVE {}", removes.join(", ")));
        }
        // Only a failed `attribute_exists` (no such contact) is a 404.
        self.update_mapped(&Key::contact(user, phone_number), &update.join(" "), "attribute_exists(pk)", &names, values, contact_from)
            .await?
            .ok_or(StoreError::NotFound)
    }
}
