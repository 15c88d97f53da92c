//! Carrier and Vapi webhooks (behind a Lambda function URL): verified before anything is parsed or
//! stored, then one GetItem (who owns the number) and one transaction (event guard, message,
//! conversation, contact). Nothing slow happens here: Telnyx wants its answer within 2 seconds.
//!
//! - `POST /webhooks/telnyx` (`telnyx.rs`): Ed25519 (`telnyx-signature-ed25519`, `telnyx-timestamp`);
//!   `message.received` is stored in the owner's conversation, `message.sent` and `message.finalized`
//!   are delivery receipts, `call.*` events go to the call log; other event types are acknowledged.
//! - `POST /webhooks/twilio/messages` and `/webhooks/twilio/status` (`twilio.rs`): HMAC-SHA1 over
//!   `PATCHBAY_PUBLIC_URL` + path and the form parameters; the inbound SMS is stored (the answer is
//!   empty TwiML), a status callback is a delivery receipt.
//! - `POST /webhooks/vapi` (`vapi.rs`): the shared secret header or the timed HMAC; call reports go
//!   to the call log.
//!
//! This file holds the state, the router and what the providers share: refusals, receipts, inbound
//! messages, timestamps.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use patchbay_adapters::http::ApiError;
use patchbay_adapters::ondemand::OnDemand;
use patchbay_adapters::webhooks::{WebhookError, WebhookKeys};
use patchbay_adapters::Wiring;
use patchbay_domain::calls::CallLedger;
use patchbay_domain::messaging::{self, Inbound, InboundSms, Inbox, Receipt};
use time::OffsetDateTime;

mod telnyx;
mod twilio;
mod vapi;

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
        .route("/webhooks/telnyx", post(telnyx::telnyx))
        .route("/webhooks/twilio/messages", post(twilio::twilio_message))
        .route("/webhooks/twilio/status", post(twilio::twilio_status))
        .route("/webhooks/vapi", post(vapi::vapi))
        .with_state(api)
}

fn refused(e: WebhookError) -> ApiError {
    tracing::warn!(reason = %e, "webhook refused");
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", format!("the webhook is not verified: {e}"))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn apply(api: &ReceiverApi, receipt: &Receipt) -> Result<Response, ApiError> {
    let outcome = messaging::apply_receipt(api.inbox.as_ref(), receipt, OffsetDateTime::now_utc()).await;
    tracing::info!(event = %receipt.event_id, carrier_message = %receipt.carrier_message_id, status = ?receipt.status, ?outcome, "receipt");
    outcome?;
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

fn rfc3339_opt(raw: Option<&str>) -> Option<OffsetDateTime> {
    raw.and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
}
