//! Outbound messages: the send API's one write (`Outbox`) and the worker's send ledger (`SendLedger`), with the counters a final status moves.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_domain::calls::Counters;
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::messaging::{events, Claim, Message, MessageStatus, OutboundSms, Outbox, SendLedger};
use patchbay_domain::numbers::NumberStatus;
use patchbay_domain::{CommandEnvelope, Conflict, ConversationId, IdempotencyKey, StoreError, SyncError, UserId};
use time::OffsetDateTime;

use super::{message_from, message_key, PREVIEW_CHARS};
use crate::dynamo::errors::{Role, TxFailure, WriteFailure};
use crate::dynamo::items::{corrupt, CarrierMessageItem, MessageItem};
use crate::dynamo::keys::Key;
use crate::dynamo::stats::day_of;
use crate::dynamo::table::{attr, backoff, n, s, to_item, DynamoStore, Tx, RACE_ATTEMPTS};
use crate::wire::rfc3339;

/// How many more times `record_sent` runs its transaction (each with the toolkit's own retries)
/// when collisions or throttling outlast one.
const RECORD_SENT_ROUNDS: u32 = 6;

#[async_trait]
impl Outbox for DynamoStore {
    async fn queue_outbound(
        &self,
        sms: &OutboundSms,
        sender: &patchbay_domain::numbers::PhoneNumber,
        message: &Message,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<Message>, StoreError> {
        let user = &message.user_id;
        // The number as the caller read it names its profile in the conditions below, which check
        // it again in the transaction (so a number moved or released since fails the send).
        if sender.user_id != *user || sender.e164 != sms.from {
            return Err(StoreError::NotFound);
        }
        let number = sender;
        if number.status != NumberStatus::Active {
            return Err(StoreError::Conflict(Conflict::NumberNotActive));
        }
        let Some(profile) = number.messaging_profile_id else { return Err(StoreError::Conflict(Conflict::NumberNotOnProfile)) };
        let at = rfc3339(message.created_at);
        let conv = &message.conversation_id;
        let preview: String = sms.text.chars().take(PREVIEW_CHARS).collect();
        let mut tx = Tx::new()
            .with(
                Role::SendingNumber,
                self.check(
                    &Key::number(user, &sms.from),
                    "#st = :active AND #mp = :p",
                    &[("#st", "status"), ("#mp", "messaging_profile_id")],
                    vec![(":active", attr(&NumberStatus::Active)), (":p", s(profile.to_string()))],
                )?,
            )
            // Sends go out from the user's active profile's numbers only.
            .with(
                Role::ActivePointer,
                self.check(&Key::active_profile(user), "profile_id = :p", &[], vec![(":p", s(profile.to_string()))])?,
            )
            // Patchbay's own suppression: an opted-out contact gets nothing.
            .with(
                Role::Contact,
                self.update(
                    &Key::contact(user, &sms.to),
                    "SET #p = :to, #c = if_not_exists(#c, :at)",
                    "attribute_not_exists(#o) OR #o = :false",
                    &[("#p", "phone_number"), ("#c", "created_at"), ("#o", "opted_out")],
                    vec![(":to", s(sms.to.as_str())), (":at", s(&at)), (":false", AttributeValue::Bool(false))],
                )?,
            )
            .with(Role::Record, self.put(to_item(&MessageItem::from(message))?, "attribute_not_exists(pk)", &[], vec![])?)
            // Outbound messages do not raise unread.
            .with(Role::Conversation, self.conversation_upsert(user, conv, &sms.from, &sms.to, message.created_at, preview, 0)?)
            // Accepted for sending: counted with the message.
            .with(
                Role::Stats,
                self.stats_move(user, &day_of(message.created_at), None, &Counters { messages_sent: 1, ..Default::default() })?,
            )
            // The send it starts: an outbox item, relayed to the work queue from the stream.
            .with(Role::Outbox, self.outbox_put(user, &CommandEnvelope::send_sms(user.clone(), conv.clone(), message.id.to_string()))?)
            .with(Role::Event, self.event_put(&events::queued(message, profile, message.created_at))?);
        let idem = match idempotency {
            Some((key, fingerprint)) => {
                let resource = format!("{conv}/{}", message.id);
                let (k, put) = self.idempotency_put(user, "send-sms", key, &resource, fingerprint)?;
                tx.push(Role::Idempotency, put);
                Some((k, fingerprint))
            }
            None => None,
        };
        match self.transact(tx).await {
            Ok(()) => Ok(Created::New(message.clone())),
            Err(TxFailure::Refused(c)) => {
                if let Some((k, fingerprint)) = idem.filter(|_| c.failed(Role::Idempotency)) {
                    let resource = self.idempotent_resource(&k, fingerprint).await?;
                    let (c, id) = resource.split_once('/').ok_or_else(|| corrupt("idempotency resource"))?;
                    let c = ConversationId::parse(c).map_err(|_| corrupt("idempotency resource"))?;
                    return self.get_message(user, &c, id).await.map(Created::Replayed);
                }
                let conflict = if c.failed(Role::SendingNumber) {
                    Conflict::NumberNotActive
                } else if c.failed(Role::ActivePointer) {
                    Conflict::ProfileNotActive
                } else if c.failed(Role::Contact) {
                    Conflict::ContactOptedOut
                } else {
                    return Err(StoreError::Corrupt(format!("send refused: {:?}", c.reasons)));
                };
                Err(StoreError::Conflict(conflict))
            }
            Err(TxFailure::Other(e)) => Err(e),
        }
    }
}

#[async_trait]
impl SendLedger for DynamoStore {
    async fn get_message(&self, user: &UserId, conversation: &ConversationId, message_id: &str) -> Result<Message, StoreError> {
        self.get(&Key::message(user, conversation, message_id)).await?.map(message_from).transpose()?.ok_or(StoreError::NotFound)
    }

    async fn claim_send(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        message_id: &str,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let now_s = now.unix_timestamp();
        let values = vec![
            (":to", attr(&MessageStatus::Sending)),
            (":r", n(u64::from(MessageStatus::Sending.rank()))),
            (":from", attr(&MessageStatus::Queued)),
            (":now", AttributeValue::N(now_s.to_string())),
            (":stale", AttributeValue::N((now_s - lease.as_secs() as i64).to_string())),
            (":none", n(0)),
        ];
        let key = Key::message(user, conversation, message_id);
        // One request instead of a read and a write. `previous_claim` keeps the claim it replaces
        // (0: none, claimed from `queued`), so the answer says whether this is a takeover.
        let claimed = self
            .update_mapped(
                &key,
                "SET #st = :to, #r = :r, #pc = if_not_exists(#ca, :none), #ca = :now",
                "#st = :from OR (#st = :to AND attribute_not_exists(#cid) AND (attribute_not_exists(#ca) OR #ca < :stale))",
                &[
                    ("#st", "status"),
                    ("#r", "status_rank"),
                    ("#ca", "claimed_at"),
                    ("#pc", "previous_claim"),
                    ("#cid", "carrier_message_id"),
                ],
                values,
                |item| {
                    let previous = matches!(item.get("previous_claim"), Some(AttributeValue::N(v)) if v != "0");
                    message_from(item).map(|m| if previous { Claim::Stale(m) } else { Claim::Fresh(m) })
                },
            )
            .await?;
        if let Some(claim) = claimed {
            return Ok(claim);
        }
        // Not claimable: held by a live lease, or past `sending`, or gone.
        Ok(match self.get(&key).await?.map(message_from).transpose()? {
            Some(m) if m.status == MessageStatus::Sending && m.carrier_message_id.is_none() => Claim::Held,
            _ => Claim::Done,
        })
    }

    async fn release_send(&self, m: &Message) -> Result<(), StoreError> {
        let values = vec![
            (":to", attr(&MessageStatus::Queued)),
            (":r", n(u64::from(MessageStatus::Queued.rank()))),
            (":from", attr(&MessageStatus::Sending)),
        ];
        match self
            .update_item(
                &message_key(m),
                "SET #st = :to, #r = :r REMOVE #ca, #pc",
                "#st = :from",
                &[("#st", "status"), ("#r", "status_rank"), ("#ca", "claimed_at"), ("#pc", "previous_claim")],
                values,
            )
            .await
        {
            Ok(_) | Err(WriteFailure::ConditionFailed) => Ok(()),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn record_sent(&self, m: &Message, carrier_message_id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let index = Key::carrier_message(carrier_message_id);
        let route = to_item(&CarrierMessageItem {
            pk: index.pk,
            sk: index.sk,
            user_id: m.user_id.to_string(),
            conversation_id: m.conversation_id.clone(),
            message_id: m.id.to_string(),
        })?;
        // The route may be there already (this very write, answered late and retried).
        let route_condition = "attribute_not_exists(pk) OR message_id = :mid";
        let route_values = || vec![(":mid", s(m.id.to_string()))];
        let tx = Tx::new()
            // Only forward: a receipt may already have moved it past `sent`.
            .with(
                Role::Record,
                self.update(
                    &message_key(m),
                    "SET #cid = :cid, #st = :sent, #r = :r, #at = :now",
                    "attribute_exists(pk) AND #r < :r",
                    &[("#cid", "carrier_message_id"), ("#st", "status"), ("#r", "status_rank"), ("#at", "status_at")],
                    vec![
                        (":cid", s(carrier_message_id)),
                        (":sent", attr(&MessageStatus::Sent)),
                        (":r", n(u64::from(MessageStatus::Sent.rank()))),
                        (":now", s(rfc3339(now))),
                    ],
                )?,
            )
            .with(Role::CarrierRoute, self.put(route.clone(), route_condition, &[], route_values())?);
        // Reported with it: the rank condition lets the move to `sent` through once (a receipt that
        // moved it first wrote the event instead).
        let id = m.id.to_string();
        let sent = events::moved(
            events::StatusMove {
                user: &m.user_id,
                conversation: &m.conversation_id,
                message_id: &id,
                status: MessageStatus::Sent,
                carrier: Some(m.carrier),
                carrier_message_id: Some(carrier_message_id),
                failure: None,
            },
            now,
        );
        let tx = match sent {
            Some(e) => tx.with(Role::Event, self.event_put(&e)?),
            None => tx,
        };
        // Nothing but this write knows the carrier's id: collisions and throttling are retried for
        // far longer than any other write's budget before the delivery gives up.
        let mut result = self.transact(tx.clone()).await;
        for attempt in 0..RECORD_SENT_ROUNDS {
            match &result {
                Err(TxFailure::Other(StoreError::Contended(_))) => {
                    backoff(attempt + RACE_ATTEMPTS / 2).await;
                    result = self.transact(tx.clone()).await;
                }
                _ => break,
            }
        }
        match result {
            Ok(()) => Ok(()),
            Err(TxFailure::Refused(c)) if c.failed(Role::CarrierRoute) => {
                Err(StoreError::Corrupt(format!("carrier message id {carrier_message_id} already routes to another message")))
            }
            // The message is already past `sent` (or gone): its route must still be there, so that
            // the carrier's receipts find it.
            Err(TxFailure::Refused(_)) => {
                let req = self.client().put_item().table_name(self.table()).set_item(Some(route)).condition_expression(route_condition);
                let req = route_values().into_iter().fold(req, |r, (k, v)| r.expression_attribute_values(k, v));
                match self.call(|| req.clone().send()).await {
                    Ok(_) => Ok(()),
                    Err(WriteFailure::ConditionFailed) => {
                        Err(StoreError::Corrupt(format!("carrier message id {carrier_message_id} already routes to another message")))
                    }
                    Err(WriteFailure::Other(e)) => Err(e),
                }
            }
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn record_send_failed(&self, m: &Message, error: &SyncError, now: OffsetDateTime) -> Result<(), StoreError> {
        let tx = Tx::new()
            .with(
                Role::Record,
                self.update(
                    &message_key(m),
                    "SET #st = :failed, #r = :r, #f = :f, #at = :now",
                    "attribute_exists(pk) AND #r < :r",
                    &[("#st", "status"), ("#r", "status_rank"), ("#f", "failure"), ("#at", "status_at")],
                    vec![
                        (":failed", attr(&MessageStatus::Failed)),
                        (":r", n(u64::from(MessageStatus::Failed.rank()))),
                        (":f", attr(error)),
                        (":now", s(rfc3339(now))),
                    ],
                )?,
            )
            .with(Role::Stats, self.stats_move(&m.user_id, &day_of(now), None, &Counters { messages_failed: 1, ..Default::default() })?);
        let id = m.id.to_string();
        let failed = events::moved(
            events::StatusMove {
                user: &m.user_id,
                conversation: &m.conversation_id,
                message_id: &id,
                status: MessageStatus::Failed,
                carrier: Some(m.carrier),
                carrier_message_id: m.carrier_message_id.as_deref(),
                failure: Some(error),
            },
            now,
        );
        let tx = match failed {
            Some(e) => tx.with(Role::Event, self.event_put(&e)?),
            None => tx,
        };
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            // Already final (or gone): nothing to record, nothing to count.
            Err(TxFailure::Refused(c)) if c.failed(Role::Record) => Ok(()),
            Err(TxFailure::Refused(c)) => Err(StoreError::Corrupt(format!("send failure refused: {:?}", c.reasons))),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }
}

/// The counter a move to `status` adds, if it is final.
pub(super) fn final_counter(status: MessageStatus) -> Option<Counters> {
    match status {
        MessageStatus::Delivered => Some(Counters { messages_delivered: 1, ..Default::default() }),
        MessageStatus::Failed => Some(Counters { messages_failed: 1, ..Default::default() }),
        _ => None,
    }
}
