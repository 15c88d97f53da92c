//! Telnyx webhooks: the envelope and payload shapes, messages, delivery receipts and call events.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use patchbay_adapters::http::{ApiError, RawBody};
use patchbay_adapters::webhooks::{verify_telnyx, WebhookError};
use patchbay_domain::calls::{CallUpdate, SipCallEvent};
use patchbay_domain::messaging::{InboundSms, InboxError, MessageStatus, Receipt};
use patchbay_domain::{calls, CarrierName, SyncError, E164};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::{apply, header, refused, rfc3339_opt, store_inbound, ReceiverApi};

#[derive(Deserialize)]
struct TelnyxEnvelope {
    data: TelnyxEvent,
}

#[derive(Deserialize)]
struct TelnyxEvent {
    id: String,
    event_type: String,
    #[serde(default)]
    occurred_at: Option<String>,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

/// A call event's payload (`call.initiated`, `call.answered`, `call.hangup`).
#[derive(Deserialize)]
struct TelnyxCallPayload {
    call_session_id: Option<String>,
    call_control_id: Option<String>,
    connection_id: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
    #[serde(default)]
    hangup_cause: Option<String>,
}

#[derive(Deserialize)]
struct TelnyxPayload {
    id: Option<String>,
    from: Option<TelnyxParty>,
    #[serde(default)]
    to: Vec<TelnyxParty>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    errors: Vec<TelnyxErrorEntry>,
}

#[derive(Deserialize)]
struct TelnyxParty {
    phone_number: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct TelnyxErrorEntry {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    title: Option<String>,
}

/// Telnyx's outbound statuses, as Patchbay's.
fn telnyx_status(s: &str) -> Option<MessageStatus> {
    match s {
        "queued" | "sending" => Some(MessageStatus::Sending),
        "sent" | "delivery_unconfirmed" => Some(MessageStatus::Sent),
        "delivered" => Some(MessageStatus::Delivered),
        "sending_failed" | "delivery_failed" | "expired" => Some(MessageStatus::Failed),
        _ => None,
    }
}

pub(crate) async fn telnyx(State(api): State<Arc<ReceiverApi>>, headers: HeaderMap, RawBody(body): RawBody) -> Result<Response, ApiError> {
    let key = api.keys.telnyx_key.as_ref().ok_or_else(|| refused(WebhookError::MissingHeader("TELNYX_PUBLIC_KEY (not configured)")))?;
    let now = OffsetDateTime::now_utc();
    verify_telnyx(key, header(&headers, "telnyx-signature-ed25519"), header(&headers, "telnyx-timestamp"), &body, now.unix_timestamp())
        .map_err(refused)?;
    let envelope: TelnyxEnvelope = serde_json::from_slice(&body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "malformed_webhook", "the body is not a Telnyx webhook").with_field("body"))?;
    let event = envelope.data;
    if matches!(event.event_type.as_str(), "call.initiated" | "call.answered" | "call.hangup") {
        return sip_call(&api, event, now).await;
    }
    let is_receipt = matches!(event.event_type.as_str(), "message.sent" | "message.finalized");
    if event.event_type != "message.received" && !is_receipt {
        tracing::info!(event = %event.id, event_type = %event.event_type, "webhook acknowledged");
        return Ok(StatusCode::OK.into_response());
    }
    let p: TelnyxPayload = event
        .payload
        .and_then(|p| serde_json::from_value(p).ok())
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "malformed_webhook", "no message payload").with_field("data.payload"))?;
    if is_receipt {
        let id = p
            .id
            .clone()
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "malformed_webhook", "no message id").with_field("data.payload.id"))?;
        let Some(status) = p.to.iter().find_map(|t| t.status.as_deref()).and_then(telnyx_status) else {
            return Ok(StatusCode::OK.into_response());
        };
        let failure = (status == MessageStatus::Failed).then(|| {
            let first = p.errors.first();
            SyncError {
                code: first
                    .and_then(|e| e.code.as_ref())
                    .map(|c| c.as_str().map(str::to_owned).unwrap_or_else(|| c.to_string()))
                    .unwrap_or_else(|| "delivery_failed".into()),
                message: first.and_then(|e| e.title.clone()).unwrap_or_else(|| "the carrier could not deliver the message".into()),
            }
        });
        return apply(&api, &Receipt { event_id: event.id, carrier: CarrierName::Telnyx, carrier_message_id: id, status, failure }).await;
    }
    let from = p.from.and_then(|f| f.phone_number);
    let to = p.to.into_iter().find_map(|t| t.phone_number);
    let sms = match (from.as_deref().map(E164::parse), to.as_deref().map(E164::parse)) {
        (Some(Ok(from)), Some(Ok(to))) => InboundSms {
            event_id: event.id.clone(),
            carrier: CarrierName::Telnyx,
            carrier_message_id: p.id.unwrap_or_else(|| event.id.clone()),
            from,
            to,
            text: p.text.unwrap_or_default(),
        },
        _ => {
            // Short codes and alphanumeric senders are not E.164 contacts; acknowledged, not stored.
            tracing::warn!(event = %event.id, "inbound message without E.164 parties dropped");
            return Ok(StatusCode::OK.into_response());
        }
    };
    store_inbound(&api, &sms, now).await?;
    Ok(StatusCode::OK.into_response())
}

/// A dialer call event: folded into the call of the connection's owner, once per event.
async fn sip_call(api: &ReceiverApi, event: TelnyxEvent, now: OffsetDateTime) -> Result<Response, ApiError> {
    let bad = |f: &str| ApiError::new(StatusCode::BAD_REQUEST, "malformed_webhook", format!("{f} is missing")).with_field(f.to_owned());
    let p: TelnyxCallPayload = event.payload.and_then(|p| serde_json::from_value(p).ok()).ok_or_else(|| bad("data.payload"))?;
    let call_id = p.call_session_id.or(p.call_control_id).ok_or_else(|| bad("data.payload.call_session_id"))?;
    let Some(connection) = p.connection_id else {
        tracing::info!(event = %event.id, "call event without a connection acknowledged");
        return Ok(StatusCode::OK.into_response());
    };
    let at = rfc3339_opt(event.occurred_at.as_deref()).unwrap_or(now);
    let mut update = CallUpdate { from: p.from, to: p.to, direction: p.direction, ..Default::default() };
    match event.event_type.as_str() {
        "call.initiated" => update.started_at = Some(at),
        "call.answered" => update.answered_at = Some(at),
        _ => {
            update.started_at = rfc3339_opt(p.start_time.as_deref());
            update.ended_at = Some(rfc3339_opt(p.end_time.as_deref()).unwrap_or(at));
            update.ended_reason = p.hangup_cause;
            update.ends = true;
        }
    }
    let e = SipCallEvent { event_id: event.id.clone(), call_id, carrier_connection_id: connection, update };
    let outcome = calls::receive_sip_call(api.calls.as_ref(), &e, now).await.map_err(InboxError::Store)?;
    tracing::info!(event = %event.id, event_type = %event.event_type, ?outcome, "call event");
    Ok(StatusCode::OK.into_response())
}
