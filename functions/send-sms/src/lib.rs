//! `POST /v1/messages`: send a text from one of the caller's numbers. Checks and writes happen in one
//! transaction (the number is the caller's, active, on the caller's active profile; the contact has
//! not opted out), with the send it starts (an outbox item): 202 with the message `queued`, its
//! segments and encoding.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use patchbay_adapters::http::{self, idempotency_key, ApiError, AuthUser, JsonBody};
use patchbay_adapters::wire::rfc3339;
use patchbay_adapters::Wiring;
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::messaging::{queue_send, Message, OutboundSms, Outbox, SendError};
use patchbay_domain::numbers::NumberReader;
use patchbay_domain::E164;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub struct SendApi {
    pub messages: Arc<dyn Outbox>,
    pub numbers: Arc<dyn NumberReader>,
}

impl SendApi {
    pub fn new(w: &Wiring) -> Self {
        Self { messages: w.store.clone(), numbers: w.store.clone() }
    }
}

pub fn router(api: Arc<SendApi>) -> Router {
    Router::new().route("/v1/messages", post(send)).with_state(api)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    from: String,
    to: String,
    text: String,
}

#[derive(Serialize)]
pub struct SentView {
    id: String,
    conversation_id: String,
    from: String,
    to: String,
    text: String,
    status: patchbay_domain::messaging::MessageStatus,
    segments: u32,
    encoding: patchbay_domain::messaging::Encoding,
    created_at: String,
}

impl From<&Message> for SentView {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.to_string(),
            conversation_id: m.conversation_id.to_string(),
            from: m.from.to_string(),
            to: m.to.to_string(),
            text: m.text.clone(),
            status: m.status,
            segments: m.segments,
            encoding: m.encoding,
            created_at: rfc3339(m.created_at),
        }
    }
}

async fn send(
    State(api): State<Arc<SendApi>>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SendBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let from = E164::parse(&body.from).map_err(|e| ApiError::unprocessable(e.at("from")))?;
    let to = E164::parse(&body.to).map_err(|e| ApiError::unprocessable(e.at("to")))?;
    let sms = OutboundSms::new(from, to, body.text).map_err(ApiError::unprocessable)?;
    let created = queue_send(api.messages.as_ref(), api.numbers.as_ref(), &user, sms, key.as_ref(), OffsetDateTime::now_utc())
        .await
        .map_err(|e| match e {
            SendError::NotOwned => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "number_not_owned", "`from` must be one of your numbers").with_field("from")
            }
            SendError::Store(e) => ApiError::from(e),
        })?;
    let (m, replayed) = match &created {
        Created::New(m) => (m, false),
        Created::Replayed(m) => (m, true),
    };
    Ok(http::accepted(SentView::from(m), &format!("/v1/conversations/{}/messages", m.conversation_id), replayed))
}
