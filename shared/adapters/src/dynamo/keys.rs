//! Every key of the single table is built here, from typed inputs, and nowhere else.
//!
//! | item                 | pk            | sk                                   |
//! |----------------------|---------------|--------------------------------------|
//! | messaging profile    | `USER#{user}` | `PROFILE#{profile id}`               |
//! | active-profile pointer | `USER#{user}` | `ACTIVE_PROFILE`                   |
//! | idempotency guard    | `USER#{user}` | `IDEMPOTENCY#{scope}#{key}`          |
//! | phone number         | `USER#{user}` | `NUMBER#{e164}`                      |
//! | number owner guard   | `NUMBER#{e164}` | `OWNER`                            |
//! | removed number mark  | `USER#{user}` | `GONE#NUMBER#{e164}` (TTL, a day)    |
//! | conversation         | `USER#{user}` | `CONV#{conversation id}` (GSI1: `USER#{user}#CONVS` / `{last activity}#{id}`) |
//! | message              | `USER#{user}` | `MSG#{conversation id}#{message id}` |
//! | contact              | `USER#{user}` | `CONTACT#{e164}`                     |
//! | webhook event guard  | `EVENT#{carrier}#{event id}` | `EVENT` (TTL)         |
//! | carrier message route | `CARRIERMSG#{carrier message id}` | `MSG`            |
//! | SIP connection       | `USER#{user}` | `SIPCONN#{connection id}`            |
//! | voice-AI assistant   | `USER#{user}` | `ASSISTANT#{assistant id}`           |
//! | call                 | `USER#{user}` | `CALL#{call id}` (GSI1: `USER#{user}#CALLS` / `{start}#{id}`) |
//! | dashboard counters   | `USER#{user}` | `STATS#{day}`, `STATS#{day}#A#{assistant id}` |
//! | call event guard     | `EVENT#{vapi\|telnyx-call}#{event id}` | `EVENT` (TTL)   |
//! | connection route     | `TELNYXCONN#{carrier connection id}` | `ROUTE`          |
//! | Vapi assistant route | `VAPIASST#{vapi assistant id}` | `ROUTE`                |
//! | WebRTC token counter | `USER#{user}` | `RATE#WEBRTC#{unix minute}` (TTL)    |
//! | reconciler cursor + lease | `RECONCILER` | `CURSOR`                        |
//! | reported look-alike  | `RECONCILER#UNKNOWN#{kind}#{provider}` | `{provider id}` |
//! | outbox item (work a state change starts) | `USER#{user}` | `OUT#{command id}` (TTL) |
//! | event (the log, relayed to the bus) | `USER#{user}` | `EVT#{event id}` (TTL 30 days) |
//! | webhook endpoint     | `USER#{user}` | `WHEP#{endpoint id}`                  |
//! | webhook endpoint count | `USER#{user}` | `WHEPCOUNT`                         |
//! | webhook delivery (per endpoint and event) | `USER#{user}` | `WHDLV#{endpoint id}#{event id}` (TTL 30 days) |
//! | webhook delivery attempt | `USER#{user}` | `WHATT#{endpoint id}#{attempt id}` (TTL 30 days) |
//!
//! GSI2, the provider index: numbers `RECON#number#{carrier}`, SIP connections
//! `RECON#connection#{carrier}`, messaging profiles `RECON#profile`, assistants `RECON#assistant`;
//! sort key `{user}#{id}`. Set when the record is written, gone with it.

use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_domain::kernel::ids::EndpointId;
use patchbay_domain::{AssistantId, CarrierName, ConnectionId, ConversationId, IdempotencyKey, ProfileId, UserId, E164};
use std::collections::HashMap;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
/// The index that lists a user's conversations and calls by time (`gsi1pk`, `gsi1sk`).
pub const GSI1: &str = "GSI1";
/// The index that lists Patchbay's resources per provider, for the reconciler (`gsi2pk`, `gsi2sk`).
pub const GSI2: &str = "GSI2";
pub const PROFILE_PREFIX: &str = "PROFILE#";
pub const NUMBER_PREFIX: &str = "NUMBER#";
pub const CONTACT_PREFIX: &str = "CONTACT#";
pub const CONNECTION_PREFIX: &str = "SIPCONN#";
pub const ASSISTANT_PREFIX: &str = "ASSISTANT#";
pub const STATS_PREFIX: &str = "STATS#";
/// Outbox items; the relay's stream filter and `patchbay_outbox_relay::OUTBOX_PREFIX` name the same.
pub const OUTBOX_PREFIX: &str = "OUT#";
/// Event items (the event log, relayed to the bus); the relay's stream filter names the same.
pub const EVENT_PREFIX: &str = "EVT#";
pub const ENDPOINT_PREFIX: &str = "WHEP#";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    /// The provider-index partition of a kind (per carrier where each record names its own).
    pub fn provider_index(kind: patchbay_domain::reconcile::Kind, carrier: Option<CarrierName>) -> String {
        match carrier {
            Some(c) => format!("RECON#{}#{}", kind.as_str(), c.as_str()),
            None => format!("RECON#{}", kind.as_str()),
        }
    }

    /// A record's position in the provider index.
    pub fn provider_position(user: &UserId, id: &str) -> String {
        format!("{}#{id}", user.as_str())
    }

    /// A provider resource the reconciler reported as an unknown look-alike (reported once).
    pub fn unknown_resource(kind: patchbay_domain::reconcile::Kind, provider: &str, id: &str) -> Self {
        Self { pk: format!("RECONCILER#UNKNOWN#{}#{provider}", kind.as_str()), sk: id.to_owned() }
    }

    pub fn reconciler_cursor() -> Self {
        Self { pk: "RECONCILER".to_owned(), sk: "CURSOR".to_owned() }
    }

    pub fn user_pk(user: &UserId) -> String {
        format!("USER#{}", user.as_str())
    }

    pub fn profile(user: &UserId, id: ProfileId) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("{PROFILE_PREFIX}{id}") }
    }

    pub fn active_profile(user: &UserId) -> Self {
        Self { pk: Self::user_pk(user), sk: "ACTIVE_PROFILE".to_owned() }
    }

    pub fn number(user: &UserId, e164: &E164) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("{NUMBER_PREFIX}{}", e164.as_str()) }
    }

    /// The mark that the user's record of a number was removed (released or forgotten).
    pub fn number_gone(user: &UserId, e164: &E164) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("GONE#{NUMBER_PREFIX}{}", e164.as_str()) }
    }

    /// The one-owner guard of a number; also routes inbound traffic to its owner in one GetItem.
    pub fn number_owner(e164: &E164) -> Self {
        Self { pk: format!("{NUMBER_PREFIX}{}", e164.as_str()), sk: "OWNER".to_owned() }
    }

    pub fn conversation(user: &UserId, id: &ConversationId) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("CONV#{id}") }
    }

    /// The GSI1 partition that lists a user's conversations by activity.
    pub fn conversations_index(user: &UserId) -> String {
        format!("USER#{}#CONVS", user.as_str())
    }

    /// A conversation's GSI1 sort key: its last activity, then its id (unique, time-ordered).
    pub fn conversations_index_sk(last_activity: &str, id: &ConversationId) -> String {
        format!("{last_activity}#{id}")
    }

    /// Messages of one conversation share this sort-key prefix; ids are UUIDv7, so time-ordered.
    pub fn messages_prefix(id: &ConversationId) -> String {
        format!("MSG#{id}#")
    }

    pub fn message(user: &UserId, conversation: &ConversationId, message_id: &str) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("{}{message_id}", Self::messages_prefix(conversation)) }
    }

    pub fn connection(user: &UserId, id: ConnectionId) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("{CONNECTION_PREFIX}{id}") }
    }

    pub fn assistant(user: &UserId, id: AssistantId) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("{ASSISTANT_PREFIX}{id}") }
    }

    pub fn call(user: &UserId, id: &str) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("CALL#{id}") }
    }

    /// The GSI1 partition that lists a user's calls, newest first.
    pub fn calls_index(user: &UserId) -> String {
        format!("USER#{}#CALLS", user.as_str())
    }

    /// A day's counters (`assistant`: that assistant's share of the day).
    pub fn stats(user: &UserId, day: &str, assistant: Option<AssistantId>) -> Self {
        let sk = match assistant {
            Some(a) => format!("{STATS_PREFIX}{day}#A#{a}"),
            None => format!("{STATS_PREFIX}{day}"),
        };
        Self { pk: Self::user_pk(user), sk }
    }

    /// A once-only guard for an event of a source that is not a messaging carrier (`vapi`, `telnyx-call`).
    pub fn scoped_event(scope: &str, event_id: &str) -> Self {
        Self { pk: format!("EVENT#{scope}#{event_id}"), sk: "EVENT".to_owned() }
    }

    pub fn connection_route(carrier_connection_id: &str) -> Self {
        Self { pk: format!("TELNYXCONN#{carrier_connection_id}"), sk: "ROUTE".to_owned() }
    }

    pub fn assistant_route(vapi_assistant_id: &str) -> Self {
        Self { pk: format!("VAPIASST#{vapi_assistant_id}"), sk: "ROUTE".to_owned() }
    }

    /// One minute's WebRTC token counter of a user.
    pub fn token_counter(user: &UserId, unix_minute: i64) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("RATE#WEBRTC#{unix_minute}") }
    }

    pub fn contact(user: &UserId, e164: &E164) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("{CONTACT_PREFIX}{}", e164.as_str()) }
    }

    /// Routes a carrier's receipts to our message. Keyed by the carrier's message id alone: the
    /// sandbox's receipts come in Telnyx's format, and Telnyx (UUID), Twilio (`SM…`) and sandbox
    /// (`sbx-msg-…`) ids cannot collide.
    pub fn carrier_message(carrier_message_id: &str) -> Self {
        Self { pk: format!("CARRIERMSG#{carrier_message_id}"), sk: "MSG".to_owned() }
    }

    /// Once-only guard of a webhook event.
    pub fn webhook_event(carrier: CarrierName, event_id: &str) -> Self {
        Self { pk: format!("EVENT#{carrier}#{event_id}"), sk: "EVENT".to_owned() }
    }

    /// The outbox item of one command (its id names the state change: `sync-profile-{id}-v{n}`).
    pub fn outbox(user: &UserId, command_id: &str) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("{OUTBOX_PREFIX}{command_id}") }
    }

    /// A webhook endpoint.
    pub fn endpoint(user: &UserId, id: EndpointId) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("{ENDPOINT_PREFIX}{id}") }
    }

    /// How many webhook endpoints the user has (the limit's condition).
    pub fn endpoint_count(user: &UserId) -> Self {
        Self { pk: Self::user_pk(user), sk: "WHEPCOUNT".to_owned() }
    }

    /// The delivery of one event to one endpoint (its state).
    pub fn delivery(user: &UserId, id: EndpointId, event_id: &str) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("WHDLV#{id}#{event_id}") }
    }

    /// The attempts at an endpoint, time-ordered (`attempt` is a UUIDv7).
    pub fn attempts_prefix(id: EndpointId) -> String {
        format!("WHATT#{id}#")
    }

    /// One event of the user's log (its id is time-ordered, so the log sorts by time).
    pub fn event(user: &UserId, event_id: &str) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("{EVENT_PREFIX}{event_id}") }
    }

    pub fn idempotency(user: &UserId, scope: &str, key: &IdempotencyKey) -> Self {
        Self { pk: Self::user_pk(user), sk: format!("IDEMPOTENCY#{scope}#{}", key.as_str()) }
    }

    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([(PK.to_owned(), AttributeValue::S(self.pk.clone())), (SK.to_owned(), AttributeValue::S(self.sk.clone()))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable() {
        let u = UserId::parse("u-1").unwrap();
        let p = ProfileId::parse("0190f3c4-5c2a-7b3e-8f00-000000000001").unwrap();
        assert_eq!(Key::profile(&u, p), Key { pk: "USER#u-1".into(), sk: "PROFILE#0190f3c4-5c2a-7b3e-8f00-000000000001".into() });
        assert_eq!(Key::active_profile(&u).sk, "ACTIVE_PROFILE");
        let k = IdempotencyKey::parse("abc").unwrap();
        assert_eq!(Key::idempotency(&u, "create-profile", &k).sk, "IDEMPOTENCY#create-profile#abc");
        let n = E164::parse("+12125550123").unwrap();
        assert_eq!(Key::number(&u, &n).sk, "NUMBER#+12125550123");
        assert_eq!(Key::number_owner(&n), Key { pk: "NUMBER#+12125550123".into(), sk: "OWNER".into() });
    }
}
