//! Webhook endpoints, their deliveries and every attempt. An endpoint and the user's endpoint count
//! move in one transaction (the count's condition holds the limit); an attempt and its delivery's
//! state are one transaction; a delivery that succeeded is never marked failed by a late attempt.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use patchbay_domain::events::{DeliveryAttempt, DeliveryState, EndpointPatch, EndpointStore, EndpointUrl, WebhookEndpoint, MAX_ENDPOINTS};
use patchbay_domain::kernel::event::EventType;
use patchbay_domain::kernel::ids::EndpointId;
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::{Conflict, Cursor, IdempotencyKey, Limit, Page, StoreError, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::errors::{Role, TxFailure, WriteFailure};
use super::items::time;
use super::keys::{Key, ENDPOINT_PREFIX};
use super::table::{backoff, from_item, n, s, to_item, DynamoStore, Item, Tx, RACE_ATTEMPTS};
use crate::wire::rfc3339;

/// Deliveries and attempts are kept as long as the events they deliver.
const KEPT_DAYS: i64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EndpointItem {
    pk: String,
    sk: String,
    id: String,
    user_id: String,
    url: String,
    #[serde(default)]
    event_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failing_since: Option<String>,
    version: u64,
    created_at: String,
    updated_at: String,
}

impl From<&WebhookEndpoint> for EndpointItem {
    fn from(e: &WebhookEndpoint) -> Self {
        let key = Key::endpoint(&e.user_id, e.id);
        Self {
            pk: key.pk,
            sk: key.sk,
            id: e.id.to_string(),
            user_id: e.user_id.to_string(),
            url: e.url.as_str().to_owned(),
            event_types: e.event_types.iter().map(|t| t.as_str().to_owned()).collect(),
            description: e.description.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(rfc3339),
            version: e.version,
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

impl TryFrom<EndpointItem> for WebhookEndpoint {
    type Error = StoreError;
    fn try_from(i: EndpointItem) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("webhook endpoint {}: {what}", i.id));
        Ok(Self {
            user_id: UserId::parse(&i.user_id).map_err(|_| corrupt("user"))?,
            id: EndpointId::parse(&i.id).map_err(|_| corrupt("id"))?,
            url: EndpointUrl::parse(&i.url).map_err(|_| corrupt("url"))?,
            event_types: i
                .event_types
                .iter()
                .map(|t| EventType::parse("event_types", t))
                .collect::<Result<_, _>>()
                .map_err(|_| corrupt("event types"))?,
            description: i.description.clone(),
            enabled: i.enabled,
            disabled_reason: i.disabled_reason.clone(),
            failing_since: i.failing_since.as_deref().map(time).transpose()?,
            version: i.version,
            created_at: time(&i.created_at)?,
            updated_at: time(&i.updated_at)?,
        })
    }
}

fn endpoint_from(item: Item) -> Result<WebhookEndpoint, StoreError> {
    from_item::<EndpointItem>(item)?.try_into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AttemptItem {
    pk: String,
    sk: String,
    endpoint_id: String,
    event_id: String,
    event_type: String,
    at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default)]
    replay: bool,
    expires_at: i64,
}

fn attempt_from(item: Item) -> Result<DeliveryAttempt, StoreError> {
    let i: AttemptItem = from_item(item)?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("delivery attempt {}: {what}", i.sk));
    Ok(DeliveryAttempt {
        id: i.sk.rsplit('#').next().unwrap_or_default().to_owned(),
        endpoint_id: EndpointId::parse(&i.endpoint_id).map_err(|_| corrupt("endpoint"))?,
        event_id: i.event_id.clone(),
        event_type: EventType::parse("event_type", &i.event_type).map_err(|_| corrupt("event type"))?,
        at: time(&i.at)?,
        status: i.status,
        duration_ms: i.duration_ms,
        error: i.error.clone(),
        replay: i.replay,
    })
}

fn state_name(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => "pending",
        DeliveryState::Succeeded => "succeeded",
        DeliveryState::Failed => "failed",
    }
}

impl DynamoStore {
    async fn endpoint_or_404(&self, user: &UserId, id: EndpointId) -> Result<WebhookEndpoint, StoreError> {
        self.get(&Key::endpoint(user, id)).await?.map(endpoint_from).transpose()?.ok_or(StoreError::NotFound)
    }
}

#[async_trait]
impl EndpointStore for DynamoStore {
    async fn create_endpoint(
        &self,
        e: &WebhookEndpoint,
        key: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<WebhookEndpoint>, StoreError> {
        let user = &e.user_id;
        let mut tx =
            Tx::new().with(Role::Record, self.put(to_item(&EndpointItem::from(e))?, "attribute_not_exists(pk)", &[], vec![])?).with(
                Role::ProfileCount,
                self.update(
                    &Key::endpoint_count(user),
                    "ADD #c :one",
                    "attribute_not_exists(#c) OR #c < :max",
                    &[("#c", "count")],
                    vec![(":one", n(1)), (":max", n(MAX_ENDPOINTS as u64))],
                )?,
            );
        let guard = match key {
            Some((k, fingerprint)) => {
                let (guard, put) = self.idempotency_put(user, "create-webhook-endpoint", k, &e.id.to_string(), fingerprint)?;
                tx.push(Role::Idempotency, put);
                Some((guard, fingerprint))
            }
            None => None,
        };
        match self.transact(tx).await {
            Ok(()) => Ok(Created::New(e.clone())),
            Err(TxFailure::Refused(c)) if c.failed(Role::Idempotency) => {
                let Some((guard, fingerprint)) = guard else {
                    return Err(StoreError::Corrupt("an idempotency refusal without a key".into()));
                };
                let id = self.idempotent_resource(&guard, fingerprint).await?;
                let id = EndpointId::parse(&id).map_err(|_| StoreError::Corrupt("idempotency resource".into()))?;
                Ok(Created::Replayed(self.endpoint_or_404(user, id).await?))
            }
            Err(TxFailure::Refused(c)) if c.failed(Role::ProfileCount) => Err(StoreError::Conflict(Conflict::TooManyEndpoints)),
            Err(TxFailure::Refused(c)) => Err(StoreError::Corrupt(format!("endpoint create refused: {:?}", c.reasons))),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn get_endpoint(&self, user: &UserId, id: EndpointId) -> Result<WebhookEndpoint, StoreError> {
        self.endpoint_or_404(user, id).await
    }

    async fn list_endpoints(&self, user: &UserId, cursor: Option<&Cursor>, limit: Limit) -> Result<Page<WebhookEndpoint>, StoreError> {
        self.list_page(&Key::user_pk(user), ENDPOINT_PREFIX, cursor, limit, true, endpoint_from, |e| e.id.to_string()).await
    }

    async fn all_endpoints(&self, user: &UserId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        self.query_all(&Key::user_pk(user), ENDPOINT_PREFIX).await?.into_iter().map(endpoint_from).collect()
    }

    async fn update_endpoint(
        &self,
        user: &UserId,
        id: EndpointId,
        patch: &EndpointPatch,
        now: OffsetDateTime,
    ) -> Result<WebhookEndpoint, StoreError> {
        for attempt in 0..RACE_ATTEMPTS {
            let current = self.endpoint_or_404(user, id).await?;
            let mut next = current.clone();
            if let Some(url) = &patch.url {
                next.url = url.clone();
            }
            if let Some(types) = &patch.event_types {
                next.event_types = types.clone();
            }
            if let Some(d) = &patch.description {
                next.description = d.clone();
            }
            if let Some(enabled) = patch.enabled {
                next.enabled = enabled;
                if enabled {
                    // Turned back on by its user: a fresh start.
                    next.disabled_reason = None;
                    next.failing_since = None;
                }
            }
            next.version = current.version + 1;
            next.updated_at = now;
            let put = self.put(to_item(&EndpointItem::from(&next))?, "#v = :v", &[("#v", "version")], vec![(":v", n(current.version))])?;
            match self.transact(Tx::new().with(Role::Record, put)).await {
                Ok(()) => return Ok(next),
                // Changed (or deleted) since it was read: read it again.
                Err(TxFailure::Refused(_)) => backoff(attempt).await,
                Err(TxFailure::Other(e)) => return Err(e),
            }
        }
        Err(StoreError::Contended("the webhook endpoint kept changing".into()))
    }

    async fn delete_endpoint(&self, user: &UserId, id: EndpointId) -> Result<(), StoreError> {
        let tx = Tx::new().with(Role::Record, self.delete(&Key::endpoint(user, id), "attribute_exists(pk)", &[], vec![])?).with(
            Role::ProfileCount,
            self.update(
                &Key::endpoint_count(user),
                "ADD #c :minus",
                "#c > :zero",
                &[("#c", "count")],
                vec![(":minus", AttributeValue::N("-1".into())), (":zero", n(0))],
            )?,
        );
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Refused(c)) if c.failed(Role::Record) => Err(StoreError::NotFound),
            Err(TxFailure::Refused(c)) => Err(StoreError::Corrupt(format!("endpoint delete refused: {:?}", c.reasons))),
            Err(TxFailure::Other(e)) => Err(e),
        }
    }

    async fn delivery_state(
        &self,
        user: &UserId,
        id: EndpointId,
        event: &patchbay_domain::kernel::event::EventId,
    ) -> Result<Option<DeliveryState>, StoreError> {
        let Some(item) = self.get(&Key::delivery(user, id, event.as_str())).await? else { return Ok(None) };
        Ok(match item.get("state") {
            Some(AttributeValue::S(v)) if v == "succeeded" => Some(DeliveryState::Succeeded),
            Some(AttributeValue::S(v)) if v == "failed" => Some(DeliveryState::Failed),
            _ => Some(DeliveryState::Pending),
        })
    }

    async fn record_attempt(&self, user: &UserId, a: &DeliveryAttempt, state: DeliveryState) -> Result<(), StoreError> {
        let expires = a.at.unix_timestamp() + KEPT_DAYS * 86_400;
        let attempt_key = Key { pk: Key::user_pk(user), sk: format!("{}{}", Key::attempts_prefix(a.endpoint_id), a.id) };
        let item = to_item(&AttemptItem {
            pk: attempt_key.pk,
            sk: attempt_key.sk,
            endpoint_id: a.endpoint_id.to_string(),
            event_id: a.event_id.clone(),
            event_type: a.event_type.as_str().to_owned(),
            at: rfc3339(a.at),
            status: a.status,
            duration_ms: a.duration_ms,
            error: a.error.clone(),
            replay: a.replay,
            expires_at: expires,
        })?;
        // A delivery that succeeded stays so: a late failure of the same event (a replay, a redelivered
        // message) adds its attempt only.
        let guard = if state == DeliveryState::Succeeded { "" } else { "attribute_not_exists(#st) OR #st <> :done" };
        let mut values =
            vec![(":st", s(state_name(state))), (":at", s(rfc3339(a.at))), (":x", AttributeValue::N(expires.to_string())), (":one", n(1))];
        if !guard.is_empty() {
            values.push((":done", s("succeeded")));
        }
        let delivery = self.update(
            &Key::delivery(user, a.endpoint_id, &a.event_id),
            "SET #st = :st, #at = :at, #x = :x ADD #n :one",
            guard,
            &[("#st", "state"), ("#at", "updated_at"), ("#x", "expires_at"), ("#n", "attempts")],
            values,
        )?;
        let tx = Tx::new().with(Role::Message, self.put(item.clone(), "", &[], vec![])?).with(Role::Record, delivery);
        match self.transact(tx).await {
            Ok(()) => {}
            Err(TxFailure::Refused(c)) if c.failed(Role::Record) => {
                // Already succeeded: the attempt alone.
                self.transact(Tx::new().with(Role::Message, self.put(item, "", &[], vec![])?)).await.map_err(|e| match e {
                    TxFailure::Refused(_) => StoreError::Corrupt("a delivery attempt refused".into()),
                    TxFailure::Other(e) => e,
                })?;
            }
            Err(TxFailure::Refused(c)) => return Err(StoreError::Corrupt(format!("delivery attempt refused: {:?}", c.reasons))),
            Err(TxFailure::Other(e)) => return Err(e),
        }
        // The endpoint's failing streak: started by a failure if none runs, ended by a success.
        let (update, values): (&str, Vec<(&str, AttributeValue)>) =
            if a.succeeded() { ("REMOVE #fs", vec![]) } else { ("SET #fs = if_not_exists(#fs, :now)", vec![(":now", s(rfc3339(a.at)))]) };
        match self
            .update_item(&Key::endpoint(user, a.endpoint_id), update, "attribute_exists(pk)", &[("#fs", "failing_since")], values)
            .await
        {
            Ok(_) | Err(WriteFailure::ConditionFailed) => Ok(()),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn disable_endpoint(
        &self,
        user: &UserId,
        id: EndpointId,
        reason: &str,
        failing_before: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        let mut condition = "#en = :true".to_owned();
        let mut names = vec![("#en", "enabled"), ("#dr", "disabled_reason"), ("#v", "version")];
        let mut values: Vec<(&str, AttributeValue)> =
            vec![(":true", AttributeValue::Bool(true)), (":false", AttributeValue::Bool(false)), (":r", s(reason)), (":one", n(1))];
        if let Some(cutoff) = failing_before {
            condition.push_str(" AND #fs <= :cutoff");
            names.push(("#fs", "failing_since"));
            values.push((":cutoff", s(rfc3339(cutoff))));
        }
        match self.update_item(&Key::endpoint(user, id), "SET #en = :false, #dr = :r, #v = #v + :one", &condition, &names, values).await {
            Ok(_) => Ok(true),
            Err(WriteFailure::ConditionFailed) => Ok(false),
            Err(WriteFailure::Other(e)) => Err(e),
        }
    }

    async fn list_attempts(
        &self,
        user: &UserId,
        id: EndpointId,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<DeliveryAttempt>, StoreError> {
        self.list_page(&Key::user_pk(user), &Key::attempts_prefix(id), cursor, limit, false, attempt_from, |a| a.id.clone()).await
    }
}
