//! Carrier webhooks (behind a Lambda function URL): verified before anything is parsed or stored,
//! then one GetItem (who owns the number) and one transaction (event guard, message, conversation,
//! contact). Nothing slow happens here: Telnyx wants its answer within 2 seconds.
//!
//! - `POST /webhooks/telnyx`: Ed25519 (`telnyx-signature-ed25519`, `telnyx-timestamp`); `message.received`
//!   is stored in the owner's conversation; other event types are acknowledged.
//! - `POST /webhooks/twilio/messages`: HMAC-SHA1 over `PATCHBAY_PUBLIC_URL` + path and the form
//!   parameters; the inbound SMS is stored; the answer is empty TwiML.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use patchbay_adapters::http::{ApiError, RawBody};
use patchbay_adapters::ondemand::OnDemand;
use patchbay_adapters::webhooks::{verify_telnyx, verify_twilio, verify_vapi, WebhookError, WebhookKeys};
use patchbay_adapters::Wiring;
use patchbay_domain::calls::{micros_of, CallLedger, CallUpdate, SipCallEvent, VapiCallMessage};
use patchbay_domain::messaging::{Inbound, InboundSms, Inbox, InboxError, MessageStatus, Receipt};
use patchbay_domain::{calls, messaging, CarrierName, SyncError, E164};
use serde::Deserialize;
use time::OffsetDateTime;

pub struct ReceiverApi {
    pub inbox: Arc<dyn Inbox>,
    pub calls: Arc<dyn CallLedger>,
    /// The Telnyx key (a public key, from the environment). Without it, every Telnyx webhook is
    /// refused.
    pub keys: WebhookKeys,
    /// Every key, the carrier secret's (Twilio's auth token, Vapi's secret) included: read on the
    /// first Twilio or Vapi webhook, so a Telnyx webhook never waits for the secret. Without a
    /// token or secret, every webhook of that provider is refused.
    pub secret_keys: OnDemand<WebhookKeys>,
}

impl ReceiverApi {
    pub fn new(w: &Wiring) -> Self {
        Self { inbox: w.store.clone(), calls: w.store.clone(), keys: w.webhooks.clone(), secret_keys: w.webhooks_on_demand() }
    }
}

pub fn router(api: Arc<ReceiverApi>) -> Router {
    Router::new()
        .route("/webhooks/telnyx", post(telnyx))
        .route("/webhooks/twilio/messages", post(twilio_message))
        .route("/webhooks/twilio/status", post(twilio_status))
        .route("/webhooks/vapi", post(vapi))
        .with_state(api)
}

fn refused(e: WebhookError) -> ApiError {
    tracing::warn!(reason = %e, "webhook refused");
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", format!("the webhook is not verified: {e}"))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

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

/// Twilio's statuses, as Patchbay's.
fn twilio_status_of(s: &str) -> Option<MessageStatus> {
    match s {
        "queued" | "accepted" | "scheduled" | "sending" => Some(MessageStatus::Sending),
        "sent" => Some(MessageStatus::Sent),
        "delivered" | "read" => Some(MessageStatus::Delivered),
        "failed" | "undelivered" | "canceled" => Some(MessageStatus::Failed),
        _ => None,
    }
}

async fn apply(api: &ReceiverApi, receipt: &Receipt) -> Result<Response, ApiError> {
    let outcome = messaging::apply_receipt(api.inbox.as_ref(), receipt, OffsetDateTime::now_utc()).await;
    tracing::info!(event = %receipt.event_id, carrier_message = %receipt.carrier_message_id, status = ?receipt.status, ?outcome, "receipt");
    outcome?;
    Ok(StatusCode::OK.into_response())
}

async fn telnyx(State(api): State<Arc<ReceiverApi>>, headers: HeaderMap, RawBody(body): RawBody) -> Result<Response, ApiError> {
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

fn rfc3339_opt(raw: Option<&str>) -> Option<OffsetDateTime> {
    raw.and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
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
async fn vapi(State(api): State<Arc<ReceiverApi>>, headers: HeaderMap, RawBody(body): RawBody) -> Result<Response, ApiError> {
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

async fn store_inbound(api: &ReceiverApi, sms: &InboundSms, now: OffsetDateTime) -> Result<(), ApiError> {
    // Logged without the text: message bodies stay out of logs.
    match messaging::receive_sms(api.inbox.as_ref(), sms, now).await? {
        Inbound::Stored(m) => tracing::info!(event = %sms.event_id, message = %m.id, "inbound message stored"),
        Inbound::Duplicate => tracing::info!(event = %sms.event_id, "duplicate webhook acknowledged"),
        Inbound::NoOwner => tracing::info!(event = %sms.event_id, to = %sms.to, "inbound message to a number nobody owns dropped"),
    }
    Ok(())
}

/// Verify a Twilio form webhook against the public URL it was sent to; answers its parameters.
async fn verified_twilio_form(api: &ReceiverApi, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let keys = api.secret_keys.get().await?;
    let (Some(token), Some(base)) = (keys.twilio_token.as_ref(), keys.public_url.as_deref()) else {
        return Err(refused(WebhookError::MissingHeader("TWILIO auth token / PATCHBAY_PUBLIC_URL (not configured)")));
    };
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| refused(WebhookError::Malformed("form body")))?;
    let url = format!("{}{}", base.trim_end_matches('/'), uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path()));
    verify_twilio(token, header(headers, "x-twilio-signature"), &url, &params).map_err(refused)?;
    Ok(params)
}

/// Twilio status callbacks: deduplicated on (MessageSid, MessageStatus).
async fn twilio_status(
    State(api): State<Arc<ReceiverApi>>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let params = verified_twilio_form(&api, &uri, &headers, &body).await?;
    let get = |k: &str| params.iter().find(|(name, _)| name == k).map(|(_, v)| v.as_str());
    let bad = |f: &str| ApiError::new(StatusCode::BAD_REQUEST, "malformed_webhook", format!("{f} is missing")).with_field(f.to_owned());
    let sid = get("MessageSid").ok_or_else(|| bad("MessageSid"))?;
    let raw = get("MessageStatus").ok_or_else(|| bad("MessageStatus"))?;
    let Some(status) = twilio_status_of(raw) else { return Ok(StatusCode::OK.into_response()) };
    let failure = (status == MessageStatus::Failed).then(|| SyncError {
        code: get("ErrorCode").unwrap_or("undelivered").to_owned(),
        message: get("ErrorMessage").unwrap_or("the carrier could not deliver the message").to_owned(),
    });
    let receipt =
        Receipt { event_id: format!("{sid}:{raw}"), carrier: CarrierName::Twilio, carrier_message_id: sid.to_owned(), status, failure };
    apply(&api, &receipt).await
}

async fn twilio_message(
    State(api): State<Arc<ReceiverApi>>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let params = verified_twilio_form(&api, &uri, &headers, &body).await?;
    let get = |k: &str| params.iter().find(|(name, _)| name == k).map(|(_, v)| v.as_str());
    let bad = |f: &str| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_webhook", format!("{f} is missing or not E.164")).with_field(f.to_owned())
    };
    let sid = get("MessageSid").ok_or_else(|| bad("MessageSid"))?;
    let sms = InboundSms {
        event_id: sid.to_owned(),
        carrier: CarrierName::Twilio,
        carrier_message_id: sid.to_owned(),
        from: get("From").and_then(|f| E164::parse(f).ok()).ok_or_else(|| bad("From"))?,
        to: get("To").and_then(|t| E164::parse(t).ok()).ok_or_else(|| bad("To"))?,
        text: get("Body").unwrap_or("").to_owned(),
    };
    store_inbound(&api, &sms, OffsetDateTime::now_utc()).await?;
    Ok(([(header::CONTENT_TYPE, "text/xml")], "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>").into_response())
}
