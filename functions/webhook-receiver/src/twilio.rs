//! Twilio webhooks: signed form posts for inbound messages and status callbacks.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use patchbay_adapters::http::{ApiError, RawBody};
use patchbay_adapters::webhooks::{verify_twilio, WebhookError};
use patchbay_domain::messaging::{InboundSms, MessageStatus, Receipt};
use patchbay_domain::{CarrierName, SyncError, E164};
use time::OffsetDateTime;

use crate::{apply, header, refused, store_inbound, ReceiverApi};

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
pub(crate) async fn twilio_status(
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

pub(crate) async fn twilio_message(
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
