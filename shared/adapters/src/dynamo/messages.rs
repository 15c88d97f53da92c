//! The messaging half of the store: conversations, messages, contacts, and the once-only guards of
//! webhook events, each webhook's effects in one transaction.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use patchbay_domain::messaging::{
    Contact, Conversation, ConversationId, Direction, Inbound, InboundSms, Message, MessageStatus, OutboundSms, Receipt, ReceiptOutcome,
};
use patchbay_domain::ports::{Created, MessageStore};
use patchbay_domain::sms::{keyword, Encoding, Keyword};
use patchbay_domain::{CarrierName, Conflict, Cursor, IdempotencyKey, Limit, NumberStatus, Page, StoreError, SyncError, UserId, E164};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::errors::{unavailable, TxFailure, WriteFailure};
use super::items::{rfc3339, NumberOwnerItem};
use super::keys::{self, Key};
use super::{built, from_item, n, page_cursor, s, to_item, DynamoStore, Item};

fn status_value(st: MessageStatus) -> AttributeValue {
    s(match st {
        MessageStatus::Queued => "queued",
        MessageStatus::Sending => "sending",
        MessageStatus::Sent => "sent",
        MessageStatus::Delivered => "delivered",
        MessageStatus::Failed => "failed",
        MessageStatus::Received => "received",
    })
}

/// Keyed by the carrier's message id alone: the sandbox's receipts come in Telnyx's format, and
/// Telnyx (UUID), Twilio (`SM…`) and sandbox (`sbx-msg-…`) ids cannot collide.
fn carrier_message_key(id: &str) -> Key {
    Key { pk: format!("CARRIERMSG#{id}"), sk: "MSG".to_owned() }
}

/// How long a webhook event id is remembered (carriers retry for minutes to hours, not days).
pub const EVENT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const PREVIEW_CHARS: usize = 80;
pub const GSI1: &str = "GSI1";

#[derive(Debug, Serialize, Deserialize)]
struct MessageItem {
    pk: String,
    sk: String,
    id: String,
    conversation_id: ConversationId,
    direction: Direction,
    from: String,
    to: String,
    text: String,
    segments: u32,
    encoding: Encoding,
    status: MessageStatus,
    carrier: CarrierName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    carrier_message_id: Option<String>,
    /// `status`'s rank: receipts are applied only if they move it forward.
    #[serde(default)]
    status_rank: u8,
    user_id: String,
    created_at: String,
}

/// Routes a carrier's receipts to the message: `CARRIERMSG#{carrier message id}` / `MSG`.
#[derive(Debug, Serialize, Deserialize)]
struct CarrierMessageItem {
    pk: String,
    sk: String,
    user_id: String,
    conversation_id: ConversationId,
    message_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ConversationItem {
    id: ConversationId,
    our_number: String,
    contact: String,
    #[serde(default)]
    unread: u64,
    last_message_at: String,
    #[serde(default)]
    last_message_preview: String,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("messaging item: {what}"))
}

fn time(s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| corrupt("timestamp"))
}

#[derive(Debug, Serialize, Deserialize)]
struct ContactItem {
    pk: String,
    sk: String,
    phone_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(default)]
    opted_out: bool,
    created_at: String,
}

impl TryFrom<ContactItem> for Contact {
    type Error = StoreError;
    fn try_from(i: ContactItem) -> Result<Self, StoreError> {
        Ok(Contact {
            phone_number: E164::parse(&i.phone_number).map_err(|_| corrupt("contact"))?,
            name: i.name,
            external_id: i.external_id,
            opted_out: i.opted_out,
            created_at: time(&i.created_at)?,
        })
    }
}

impl From<&Message> for MessageItem {
    fn from(m: &Message) -> Self {
        let key = Key::message(&m.user_id, &m.conversation_id, &m.id.to_string());
        Self {
            pk: key.pk,
            sk: key.sk,
            id: m.id.to_string(),
            conversation_id: m.conversation_id.clone(),
            direction: m.direction,
            from: m.from.to_string(),
            to: m.to.to_string(),
            text: m.text.clone(),
            segments: m.segments,
            encoding: m.encoding,
            status: m.status,
            carrier: m.carrier,
            carrier_message_id: m.carrier_message_id.clone(),
            status_rank: m.status.rank(),
            user_id: m.user_id.to_string(),
            created_at: rfc3339(m.created_at),
        }
    }
}

impl TryFrom<MessageItem> for Message {
    type Error = StoreError;
    fn try_from(i: MessageItem) -> Result<Self, StoreError> {
        Ok(Message {
            id: i.id.parse().map_err(|_| corrupt("message id"))?,
            user_id: UserId::parse(&i.user_id).map_err(|_| corrupt("user_id"))?,
            conversation_id: i.conversation_id,
            direction: i.direction,
            from: E164::parse(&i.from).map_err(|_| corrupt("from"))?,
            to: E164::parse(&i.to).map_err(|_| corrupt("to"))?,
            text: i.text,
            segments: i.segments,
            encoding: i.encoding,
            status: i.status,
            carrier: i.carrier,
            carrier_message_id: i.carrier_message_id,
            created_at: time(&i.created_at)?,
        })
    }
}

impl TryFrom<ConversationItem> for Conversation {
    type Error = StoreError;
    fn try_from(i: ConversationItem) -> Result<Self, StoreError> {
        Ok(Conversation {
            id: i.id,
            our_number: E164::parse(&i.our_number).map_err(|_| corrupt("our_number"))?,
            contact: E164::parse(&i.contact).map_err(|_| corrupt("contact"))?,
            unread: i.unread,
            last_message_at: time(&i.last_message_at)?,
            last_message_preview: i.last_message_preview,
        })
    }
}

impl DynamoStore {
    /// `from` → `to`, only if the message is in `from` (one conditional update). False if it was not.
    async fn move_status(&self, m: &Message, from: MessageStatus, to: MessageStatus) -> Result<bool, StoreError> {
        let key = Key::message(&m.user_id, &m.conversation_id, &m.id.to_string());
        let values = vec![(":to", status_value(to)), (":r", n(u64::from(to.rank()))), (":from", status_value(from))];
        match self.update_item(&key, "SET #st = :to, #r = :r", "#st = :from", &[("#st", "status"), ("#r", "status_rank")], values).await {
            Ok(_) => Ok(true),
            Err(WriteFailure::ConditionFailed) => Ok(false),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    /// The once-only guard of a webhook event (expires after `EVENT_TTL`), to go in its transaction.
    fn event_guard(&self, carrier: CarrierName, event_id: &str, now: OffsetDateTime) -> Result<(Key, TransactWriteItem), StoreError> {
        let key = Key::webhook_event(carrier, event_id);
        let mut item = key.to_item();
        item.insert("expires_at".into(), AttributeValue::N((now.unix_timestamp() + EVENT_TTL.as_secs() as i64).to_string()));
        let put = self.put(item, "attribute_not_exists(pk)", &[], vec![])?;
        Ok((key, put))
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
        at: &str,
        preview: String,
        unread: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        self.update(
            &Key::conversation(user, conv),
            "SET #id = :id, #ours = :ours, #contact = :contact, #last = :at, #preview = :preview, #g1pk = :g1pk, #g1sk = :g1sk ADD #unread :n",
            "attribute_not_exists(pk) OR attribute_exists(pk)",
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
                (":at", s(at)),
                (":preview", s(preview)),
                (":g1pk", s(Key::conversations_index(user))),
                (":g1sk", s(format!("{at}#{conv}"))),
                (":n", n(unread)),
            ],
        )
    }
}

#[async_trait]
impl MessageStore for DynamoStore {
    async fn number_owner(&self, e164: &E164) -> Result<Option<UserId>, StoreError> {
        match self.get(&Key::number_owner(e164)).await? {
            Some(item) => {
                let owner: NumberOwnerItem = from_item(item)?;
                Ok(Some(UserId::parse(&owner.user_id).map_err(|_| corrupt("owner"))?))
            }
            None => Ok(None),
        }
    }

    async fn record_inbound(&self, owner: &UserId, sms: &InboundSms, now: OffsetDateTime) -> Result<Inbound, StoreError> {
        let message = sms.into_message(owner, now);
        let at = rfc3339(now);
        let (guard_key, guard) = self.event_guard(sms.carrier, &sms.event_id, now)?;
        let preview: String = sms.text.chars().take(PREVIEW_CHARS).collect();
        let conv = &message.conversation_id;
        let items = vec![
            // Once only: the same event again cancels the whole transaction.
            guard,
            self.put(to_item(&MessageItem::from(&message))?, "attribute_not_exists(pk)", &[], vec![])?,
            // The conversation, created on its first message; unread moves with the message.
            self.conversation_upsert(owner, conv, &sms.to, &sms.from, &at, preview, 1)?,
            // The contact, created on first contact; STOP/START/HELP recorded with the message.
            match keyword(&sms.text) {
                Some(Keyword::OptOut) | Some(Keyword::OptIn) => self.update(
                    &Key::contact(owner, &sms.from),
                    "SET #p = :p, #c = if_not_exists(#c, :at), #o = :o, #oa = :at",
                    "attribute_not_exists(pk) OR attribute_exists(pk)",
                    &[("#p", "phone_number"), ("#c", "created_at"), ("#o", "opted_out"), ("#oa", "opt_changed_at")],
                    vec![
                        (":p", s(sms.from.as_str())),
                        (":at", s(&at)),
                        (":o", AttributeValue::Bool(keyword(&sms.text) == Some(Keyword::OptOut))),
                    ],
                )?,
                Some(Keyword::Help) => self.update(
                    &Key::contact(owner, &sms.from),
                    "SET #p = :p, #c = if_not_exists(#c, :at), #h = :at",
                    "attribute_not_exists(pk) OR attribute_exists(pk)",
                    &[("#p", "phone_number"), ("#c", "created_at"), ("#h", "last_help_at")],
                    vec![(":p", s(sms.from.as_str())), (":at", s(&at))],
                )?,
                None => self.update(
                    &Key::contact(owner, &sms.from),
                    "SET #p = :p, #c = if_not_exists(#c, :at)",
                    "attribute_not_exists(pk) OR attribute_exists(pk)",
                    &[("#p", "phone_number"), ("#c", "created_at")],
                    vec![(":p", s(sms.from.as_str())), (":at", s(&at))],
                )?,
            },
        ];
        match self.transact(items).await {
            Ok(()) => Ok(Inbound::Stored(message)),
            Err(TxFailure::Cancelled { reasons }) if TxFailure::condition_failed_at(&reasons, 0) => Ok(Inbound::Duplicate),
            // Another copy of the same event committed at the same moment.
            Err(TxFailure::Cancelled { reasons }) if TxFailure::conflicted(&reasons) => match self.get(&guard_key).await? {
                Some(_) => Ok(Inbound::Duplicate),
                None => Err(StoreError::Conflict(Conflict::Stale)),
            },
            Err(TxFailure::Cancelled { .. }) => Err(StoreError::Conflict(Conflict::Stale)),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn list_conversations(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Conversation>, StoreError> {
        let index_pk = Key::conversations_index(user);
        let mut req = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(&index_pk))
            .scan_index_forward(false)
            .limit(i32::from(limit.get()) + 1);
        if let Some(cursor) = after {
            // The cursor is the last conversation's id; its index position is read back from it.
            let position = cursor.position().unwrap_or_default();
            let id = ConversationId::parse(&position).map_err(|_| StoreError::NotFound)?;
            let Some(item) = self.get(&Key::conversation(user, &id)).await? else { return Err(StoreError::NotFound) };
            let g1sk = match item.get("gsi1sk") {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => return Err(corrupt("gsi1sk")),
            };
            let key = Key::conversation(user, &id);
            req = req.set_exclusive_start_key(Some(HashMap::from([
                (keys::PK.to_owned(), s(key.pk)),
                (keys::SK.to_owned(), s(key.sk)),
                ("gsi1pk".to_owned(), s(&index_pk)),
                ("gsi1sk".to_owned(), s(g1sk)),
            ])));
        }
        let out = req.send().await.map_err(unavailable)?;
        let data = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<ConversationItem>(i).and_then(Conversation::try_from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_cursor(data, limit, |c| c.id.to_string()))
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
        let mut req = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(Key::user_pk(user)))
            .expression_attribute_values(":prefix", s(Key::messages_prefix(conversation)))
            .consistent_read(true)
            .scan_index_forward(false)
            .limit(i32::from(limit.get()) + 1);
        if let Some(cursor) = after {
            let position = cursor.position().unwrap_or_default();
            let key = Key::message(user, conversation, &position);
            req = req.set_exclusive_start_key(Some(key.to_item()));
        }
        let out = req.send().await.map_err(unavailable)?;
        let data = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i: Item| from_item::<MessageItem>(i).and_then(Message::try_from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_cursor(data, limit, |m| m.id.to_string()))
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
            Ok(Some(item)) => from_item::<ConversationItem>(item).and_then(Conversation::try_from),
            Ok(None) => Err(corrupt("no item returned")),
            Err(WriteFailure::ConditionFailed) => Err(StoreError::NotFound),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn queue_outbound(
        &self,
        sms: &OutboundSms,
        message: &Message,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<Message>, StoreError> {
        let user = &message.user_id;
        // The number's profile, read to name it in the conditions below (which re-check it).
        let number = match self.get(&Key::number(user, &sms.from)).await? {
            Some(item) => patchbay_domain::PhoneNumber::try_from(from_item::<super::items::NumberItem>(item)?)?,
            None => return Err(StoreError::NotFound),
        };
        if number.status != NumberStatus::Active {
            return Err(StoreError::Conflict(Conflict::NumberNotActive));
        }
        let Some(profile) = number.messaging_profile_id else { return Err(StoreError::Conflict(Conflict::NumberNotOnProfile)) };
        let check = |key: Key,
                     condition: &str,
                     names: &[(&str, &str)],
                     values: Vec<(&str, AttributeValue)>|
         -> Result<TransactWriteItem, StoreError> {
            let mut c = ConditionCheck::builder().table_name(self.table()).set_key(Some(key.to_item())).condition_expression(condition);
            for (k, v) in names {
                c = c.expression_attribute_names(*k, *v);
            }
            for (k, v) in values {
                c = c.expression_attribute_values(k, v);
            }
            Ok(TransactWriteItem::builder().condition_check(built(c.build())?).build())
        };
        let at = rfc3339(message.created_at);
        let conv = &message.conversation_id;
        let preview: String = sms.text.chars().take(PREVIEW_CHARS).collect();
        let mut items = vec![
            check(
                Key::number(user, &sms.from),
                "#st = :active AND #mp = :p",
                &[("#st", "status"), ("#mp", "messaging_profile_id")],
                vec![(":active", s("active")), (":p", s(profile.to_string()))],
            )?,
            // Sends go out from the user's active profile's numbers only.
            check(Key::active_profile(user), "profile_id = :p", &[], vec![(":p", s(profile.to_string()))])?,
            // Patchbay's own suppression: an opted-out contact gets nothing.
            self.update(
                &Key::contact(user, &sms.to),
                "SET #p = :to, #c = if_not_exists(#c, :at)",
                "attribute_not_exists(#o) OR #o = :false",
                &[("#p", "phone_number"), ("#c", "created_at"), ("#o", "opted_out")],
                vec![(":to", s(sms.to.as_str())), (":at", s(&at)), (":false", AttributeValue::Bool(false))],
            )?,
            self.put(to_item(&MessageItem::from(message))?, "attribute_not_exists(pk)", &[], vec![])?,
            // Outbound messages do not raise unread.
            self.conversation_upsert(user, conv, &sms.from, &sms.to, &at, preview, 0)?,
        ];
        let idem = match idempotency {
            Some((key, fingerprint)) => {
                let resource = format!("{conv}/{}", message.id);
                let (k, put) = self.idempotency_put(user, "send-sms", key, &resource, fingerprint)?;
                items.push(put);
                Some((k, fingerprint))
            }
            None => None,
        };
        match self.transact(items).await {
            Ok(()) => Ok(Created::New(message.clone())),
            Err(TxFailure::Cancelled { reasons }) => {
                if let Some((k, fingerprint)) = idem {
                    if TxFailure::condition_failed_at(&reasons, 5) {
                        let resource = self.idempotent_resource(&k, fingerprint).await?;
                        let (c, id) = resource.split_once('/').ok_or_else(|| corrupt("idempotency resource"))?;
                        let c = ConversationId::parse(c).map_err(|_| corrupt("idempotency resource"))?;
                        return self.get_message(user, &c, id).await.map(Created::Replayed);
                    }
                }
                if TxFailure::condition_failed_at(&reasons, 0) {
                    return Err(StoreError::Conflict(Conflict::NumberNotActive));
                }
                if TxFailure::condition_failed_at(&reasons, 1) {
                    return Err(StoreError::Conflict(Conflict::ProfileNotActive));
                }
                if TxFailure::condition_failed_at(&reasons, 2) {
                    return Err(StoreError::Conflict(Conflict::ContactOptedOut));
                }
                Err(StoreError::Conflict(Conflict::Stale))
            }
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn get_message(&self, user: &UserId, conversation: &ConversationId, message_id: &str) -> Result<Message, StoreError> {
        match self.get(&Key::message(user, conversation, message_id)).await? {
            Some(item) => from_item::<MessageItem>(item).and_then(Message::try_from),
            None => Err(StoreError::NotFound),
        }
    }

    async fn claim_send(&self, m: &Message) -> Result<bool, StoreError> {
        self.move_status(m, MessageStatus::Queued, MessageStatus::Sending).await
    }

    async fn release_send(&self, m: &Message) -> Result<(), StoreError> {
        self.move_status(m, MessageStatus::Sending, MessageStatus::Queued).await.map(|_| ())
    }

    async fn record_sent(&self, m: &Message, carrier_message_id: &str) -> Result<(), StoreError> {
        let key = Key::message(&m.user_id, &m.conversation_id, &m.id.to_string());
        let index = carrier_message_key(carrier_message_id);
        let route = to_item(&CarrierMessageItem {
            pk: index.pk,
            sk: index.sk,
            user_id: m.user_id.to_string(),
            conversation_id: m.conversation_id.clone(),
            message_id: m.id.to_string(),
        })?;
        let items = vec![
            // Only forward: a receipt may already have moved it past `sent`.
            self.update(
                &key,
                "SET #cid = :cid, #st = :sent, #r = :r",
                "attribute_exists(pk) AND #r < :r",
                &[("#cid", "carrier_message_id"), ("#st", "status"), ("#r", "status_rank")],
                vec![
                    (":cid", s(carrier_message_id)),
                    (":sent", status_value(MessageStatus::Sent)),
                    (":r", n(u64::from(MessageStatus::Sent.rank()))),
                ],
            )?,
            self.put(route, "attribute_not_exists(pk)", &[], vec![])?,
        ];
        match self.transact(items).await {
            Ok(()) | Err(TxFailure::Cancelled { .. }) => Ok(()),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn record_send_failed(&self, m: &Message, error: &SyncError) -> Result<(), StoreError> {
        let key = Key::message(&m.user_id, &m.conversation_id, &m.id.to_string());
        let err = AttributeValue::M(HashMap::from([("code".to_owned(), s(&error.code)), ("message".to_owned(), s(&error.message))]));
        match self
            .update_item(
                &key,
                "SET #st = :failed, #r = :r, #f = :f",
                "attribute_exists(pk) AND #r < :r",
                &[("#st", "status"), ("#r", "status_rank"), ("#f", "failure")],
                vec![(":failed", status_value(MessageStatus::Failed)), (":r", n(u64::from(MessageStatus::Failed.rank()))), (":f", err)],
            )
            .await
        {
            Ok(_) | Err(WriteFailure::ConditionFailed) => Ok(()),
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
        match self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(c.clone()),
            Err(e) => match super::errors::classify_write(e) {
                WriteFailure::ConditionFailed => Err(StoreError::Conflict(Conflict::AlreadyExists)),
                WriteFailure::Other(e) => Err(e),
            },
        }
    }

    async fn list_contacts(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Contact>, StoreError> {
        let mut req = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(Key::user_pk(user)))
            .expression_attribute_values(":prefix", s("CONTACT#"))
            .consistent_read(true)
            .limit(i32::from(limit.get()) + 1);
        if let Some(cursor) = after {
            let position = cursor.position().unwrap_or_default();
            let e164 = E164::parse(&position).map_err(|_| StoreError::NotFound)?;
            req = req.set_exclusive_start_key(Some(Key::contact(user, &e164).to_item()));
        }
        let out = req.send().await.map_err(unavailable)?;
        let data = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| from_item::<ContactItem>(i).and_then(Contact::try_from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_cursor(data, limit, |c| c.phone_number.to_string()))
    }

    async fn apply_receipt(&self, r: &Receipt, now: OffsetDateTime) -> Result<ReceiptOutcome, StoreError> {
        let Some(route) = self.get(&carrier_message_key(&r.carrier_message_id)).await? else {
            return Ok(ReceiptOutcome::Unknown);
        };
        let route: CarrierMessageItem = from_item(route)?;
        let user = UserId::parse(&route.user_id).map_err(|_| corrupt("route user"))?;
        let (_, guard) = self.event_guard(r.carrier, &r.event_id, now)?;
        let rank = u64::from(r.status.rank());
        let mut update = "SET #st = :st, #r = :r, #at = :now".to_owned();
        let mut names = vec![("#st", "status"), ("#r", "status_rank"), ("#at", "status_at")];
        let mut values = vec![(":st", status_value(r.status)), (":r", n(rank)), (":now", s(rfc3339(now)))];
        if let Some(f) = &r.failure {
            update.push_str(", #f = :f");
            names.push(("#f", "failure"));
            values.push((":f", AttributeValue::M(HashMap::from([("code".to_owned(), s(&f.code)), ("message".to_owned(), s(&f.message))]))));
        }
        let items = vec![
            guard,
            // Never backwards: a late `sent` after `delivered` changes nothing.
            self.update(
                &Key::message(&user, &route.conversation_id, &route.message_id),
                &update,
                "attribute_exists(pk) AND #r < :r",
                &names,
                values,
            )?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(ReceiptOutcome::Applied),
            Err(TxFailure::Cancelled { .. }) => Ok(ReceiptOutcome::Ignored),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }
}
