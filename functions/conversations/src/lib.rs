//! Conversations: list (newest activity first, unread counts, the contact's name, `?q=` to search),
//! a conversation's messages (newest first, both directions, a failed one's reason), mark read; and
//! contacts: list, create, show, rename. Only the caller's conversations and contacts exist for them.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_adapters::http::json::{not_null, present};
use patchbay_adapters::http::views::PageView;
use patchbay_adapters::http::{ApiError, AuthUser, E164Path, JsonBody, QueryParams};
use patchbay_adapters::wire::rfc3339;
use patchbay_adapters::Wiring;
use patchbay_domain::messaging::{Contact, ContactPatch, Conversation, ConversationSearch, ConversationStore, Conversations, Message};
use patchbay_domain::{ConversationId, Cursor, Limit, SyncError, ValidationError, E164};
use serde::Deserialize;
use serde::Serialize;
use time::OffsetDateTime;

pub struct ConversationsApi {
    pub store: Arc<dyn ConversationStore>,
}

impl ConversationsApi {
    pub fn new(w: &Wiring) -> Self {
        Self { store: w.store.clone() }
    }

    fn ops(&self) -> Conversations<'_> {
        Conversations { store: self.store.as_ref() }
    }
}

pub fn router(api: Arc<ConversationsApi>) -> Router {
    Router::new()
        .route("/v1/conversations", get(list))
        .route("/v1/conversations/{id}/messages", get(messages))
        .route("/v1/conversations/{id}/read", post(read))
        .route("/v1/contacts", get(list_contacts).post(create_contact))
        .route("/v1/contacts/{e164}", get(show_contact).patch(update_contact))
        .with_state(api)
}

struct ConversationPath(ConversationId);

impl<S: Send + Sync> FromRequestParts<S> for ConversationPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request(ValidationError::new("id", "invalid_id", "the path does not hold a usable id")))?;
        ConversationId::parse(&raw).map(ConversationPath).map_err(ApiError::bad_request)
    }
}

#[derive(Serialize)]
struct ConversationView {
    id: String,
    our_number: String,
    contact: String,
    contact_name: Option<String>,
    unread: u64,
    last_message_at: String,
    last_message_preview: String,
}

impl From<&Conversation> for ConversationView {
    fn from(c: &Conversation) -> Self {
        Self {
            id: c.id.to_string(),
            our_number: c.our_number.to_string(),
            contact: c.contact.to_string(),
            contact_name: c.contact_name.clone(),
            unread: c.unread,
            last_message_at: rfc3339(c.last_message_at),
            last_message_preview: c.last_message_preview.clone(),
        }
    }
}

#[derive(Serialize)]
struct MessageView {
    id: String,
    conversation_id: String,
    direction: patchbay_domain::messaging::Direction,
    from: String,
    to: String,
    text: String,
    segments: u32,
    encoding: patchbay_domain::messaging::Encoding,
    status: patchbay_domain::messaging::MessageStatus,
    failure: Option<SyncError>,
    created_at: String,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.to_string(),
            conversation_id: m.conversation_id.to_string(),
            direction: m.direction,
            from: m.from.to_string(),
            to: m.to.to_string(),
            text: m.text.clone(),
            segments: m.segments,
            encoding: m.encoding,
            status: m.status,
            failure: m.failure.clone(),
            created_at: rfc3339(m.created_at),
        }
    }
}

#[derive(Serialize)]
struct ContactView {
    phone_number: String,
    name: Option<String>,
    external_id: Option<String>,
    opted_out: bool,
    created_at: String,
}

impl From<&Contact> for ContactView {
    fn from(c: &Contact) -> Self {
        Self {
            phone_number: c.phone_number.to_string(),
            name: c.name.clone(),
            external_id: c.external_id.clone(),
            opted_out: c.opted_out,
            created_at: rfc3339(c.created_at),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    phone_number: String,
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    external_id: Option<String>,
}

async fn create_contact(
    State(api): State<Arc<ConversationsApi>>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody<ContactBody>,
) -> Result<Response, ApiError> {
    let phone_number = E164::parse(&body.phone_number).map_err(ApiError::unprocessable)?;
    let name = Contact::parse_name(body.name.as_deref()).map_err(ApiError::unprocessable)?;
    let external_id = Contact::parse_external_id(body.external_id.as_deref()).map_err(ApiError::unprocessable)?;
    let c = api.ops().create_contact(&user, phone_number, name, external_id, OffsetDateTime::now_utc()).await?;
    Ok((axum::http::StatusCode::CREATED, Json(ContactView::from(&c))).into_response())
}

async fn show_contact(
    State(api): State<Arc<ConversationsApi>>,
    AuthUser(user): AuthUser,
    E164Path(e164): E164Path,
) -> Result<Response, ApiError> {
    let c = api.ops().contact(&user, &e164).await?;
    Ok(Json(ContactView::from(&c)).into_response())
}

/// `PATCH /v1/contacts/{e164}`: absent is unchanged; a null name or external id clears it, as does a
/// blank name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactPatchBody {
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    external_id: Option<Option<String>>,
}

async fn update_contact(
    State(api): State<Arc<ConversationsApi>>,
    AuthUser(user): AuthUser,
    E164Path(e164): E164Path,
    JsonBody(body): JsonBody<ContactPatchBody>,
) -> Result<Response, ApiError> {
    let patch = ContactPatch::parse(body.name.as_ref().map(Option::as_deref), body.external_id.as_ref().map(Option::as_deref))
        .map_err(ApiError::unprocessable)?;
    let c = api.ops().update_contact(&user, &e164, &patch).await?;
    Ok(Json(ContactView::from(&c)).into_response())
}

async fn list_contacts(State(api): State<Arc<ConversationsApi>>, AuthUser(user): AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let (cursor, limit) = paging(&q)?;
    let p = api.ops().contacts(&user, cursor.as_ref(), limit).await?;
    Ok(Json(PageView::<ContactView>::from(&p)).into_response())
}

fn paging(q: &QueryParams) -> Result<(Option<Cursor>, Limit), ApiError> {
    let limit = Limit::parse(q.get("limit")).map_err(ApiError::bad_request)?;
    let cursor = q.get("cursor").map(Cursor::parse).transpose().map_err(ApiError::bad_request)?;
    Ok((cursor, limit))
}

async fn list(State(api): State<Arc<ConversationsApi>>, AuthUser(user): AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let (cursor, limit) = paging(&q)?;
    let search = q.get("q").map(ConversationSearch::parse).transpose().map_err(ApiError::bad_request)?;
    let p = api.ops().list(&user, search.as_ref(), cursor.as_ref(), limit).await?;
    Ok(Json(PageView::<ConversationView>::from(&p)).into_response())
}

async fn messages(
    State(api): State<Arc<ConversationsApi>>,
    AuthUser(user): AuthUser,
    ConversationPath(id): ConversationPath,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let (cursor, limit) = paging(&q)?;
    let p = api.ops().messages(&user, &id, cursor.as_ref(), limit).await?;
    Ok(Json(PageView::<MessageView>::from(&p)).into_response())
}

async fn read(
    State(api): State<Arc<ConversationsApi>>,
    AuthUser(user): AuthUser,
    ConversationPath(id): ConversationPath,
) -> Result<Response, ApiError> {
    let c = api.ops().mark_read(&user, &id).await?;
    Ok(Json(ConversationView::from(&c)).into_response())
}
