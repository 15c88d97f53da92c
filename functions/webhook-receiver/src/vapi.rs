//! Vapi webhooks: the server message shapes, and call reports folded into the call log.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use patchbay_adapters::http::{ApiError, RawBody};
use patchbay_adapters::webhooks::{verify_vapi, WebhookError};
use patchbay_domain::calls::{micros_of, CallUpdate, VapiCallMessage};
use patchbay_domain::messaging::InboxError;
use patchbay_domain::{calls, E164};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::{header, refused, rfc3339_opt, ReceiverApi};

#[derive(Deserialize)]
struct VapiEnvelope {
    message: VapiMessage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VapiMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    call: Option<VapiCall>,
    #[serde(default)]
    phone_number: Option<VapiNumber>,
    #[serde(default)]
    assistant: Option<VapiId>,
    #[serde(default)]
    customer: Option<VapiNumber>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    ended_at: Option<String>,
    #[serde(default)]
    ended_reason: Option<String>,
    #[serde(default)]
    cost: Option<f64>,
    #[serde(default)]
    duration_seconds: Option<f64>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    analysis: Option<VapiAnalysis>,
    #[serde(default)]
    artifact: Option<VapiArtifact>,
    #[serde(default)]
    recording_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VapiCall {
    id: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    assistant_id: Option<String>,
    #[serde(default)]
    customer: Option<VapiNumber>,
}

#[derive(Deserialize)]
struct VapiNumber {
    #[serde(default)]
    number: Option<String>,
}

#[derive(Deserialize)]
struct VapiId {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct VapiAnalysis {
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VapiArtifact {
    #[serde(default)]
    recording_url: Option<String>,
}

/// Vapi webhooks: verified (the shared secret header, or the timed HMAC) before anything is parsed.
/// `end-of-call-report` records the call once per call id; `status-update` may record it in
/// progress; other messages are acknowledged.
pub(crate) async fn vapi(State(api): State<Arc<ReceiverApi>>, headers: HeaderMap, RawBody(body): RawBody) -> Result<Response, ApiError> {
    let keys = api.secret_keys.get().await?;
    let secret = keys.vapi_secret.as_ref().ok_or_else(|| refused(WebhookError::MissingHeader("VAPI webhook secret (not configured)")))?;
    let now = OffsetDateTime::now_utc();
    verify_vapi(
        secret,
        header(&headers, "x-vapi-secret"),
        header(&headers, "x-signature"),
        header(&headers, "x-timestamp"),
        &body,
        now.unix_timestamp(),
    )
    .map_err(refused)?;
    let m: VapiEnvelope = serde_json::from_slice(&body).map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_webhook", "the body is not a Vapi server message").with_field("message")
    })?;
    let m = m.message;
    let ends = match m.kind.as_str() {
        "end-of-call-report" => true,
        "status-update" => false,
        other => {
            tracing::info!(message_type = %other, "vapi message acknowledged");
            return Ok(StatusCode::OK.into_response());
        }
    };
    let Some(call) = m.call else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_webhook", "message.call is missing").with_field("message.call"));
    };
    let started = rfc3339_opt(m.started_at.as_deref());
    let ended = rfc3339_opt(m.ended_at.as_deref());
    let update = CallUpdate {
        customer: m.customer.and_then(|c| c.number).or(call.customer.and_then(|c| c.number)),
        direction: call.kind.map(|k| match k.as_str() {
            "inboundPhoneCall" => "inbound".to_owned(),
            "outboundPhoneCall" => "outbound".to_owned(),
            other => other.to_owned(),
        }),
        started_at: started,
        ended_at: if ends { ended } else { None },
        duration_seconds: if ends {
            m.duration_seconds.map(|d| d.max(0.0).round() as u64).or_else(|| match (started, ended) {
                (Some(s), Some(e)) if e > s => Some((e - s).whole_seconds() as u64),
                _ => None,
            })
        } else {
            None
        },
        ended_reason: if ends { m.ended_reason } else { None },
        cost_micros: if ends { m.cost.and_then(micros_of) } else { None },
        summary: m.summary.or(m.analysis.and_then(|a| a.summary)),
        recording_url: m.recording_url.or(m.artifact.and_then(|a| a.recording_url)),
        ends,
        ..Default::default()
    };
    let event_id =
        if ends { format!("{}:end-of-call-report", call.id) } else { format!("{}:status:{}", call.id, m.status.unwrap_or_default()) };
    let message = VapiCallMessage {
        event_id,
        number: m.phone_number.and_then(|p| p.number).and_then(|n| E164::parse(&n).ok()),
        vapi_assistant_id: m.assistant.and_then(|a| a.id).or(call.assistant_id),
        call_id: call.id,
        update,
    };
    let outcome = calls::receive_vapi_call(api.calls.as_ref(), &message, now).await.map_err(InboxError::Store)?;
    tracing::info!(call = %message.call_id, ?outcome, "vapi call message");
    Ok(StatusCode::OK.into_response())
}
