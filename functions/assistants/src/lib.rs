//! Voice-AI assistants (`/v1/assistants`): create (a selected number reserved now, bought by the
//! worker's saga), list, show with connected numbers, change settings, delete.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use patchbay_adapters::http::json::not_null;
use patchbay_adapters::http::views::{NumberView, SyncErrorView};
use patchbay_adapters::http::{self, idempotency_key, ApiError, AuthUser, IdPath, JsonBody, QueryParams};
use patchbay_adapters::ondemand::OnDemand;
use patchbay_adapters::wire::rfc3339;
use patchbay_adapters::Wiring;
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::kernel::text::parse_text;
use patchbay_domain::numbers::Carriers;
use patchbay_domain::voice_ai::{
    AssistantName, AssistantPage, AssistantPatch, AssistantSettings, AssistantStatus, AssistantWriter, Assistants, ProviderChoice,
};
use patchbay_domain::{AssistantId, CarrierName, Cursor, Limit, SyncState, ValidationError, E164};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The longest first message and system prompt.
const FIRST_MESSAGE_MAX: usize = 1_000;
const PROMPT_MAX: usize = 20_000;

pub struct AssistantsApi {
    pub store: Arc<dyn AssistantWriter>,
    /// Built from the carrier secret on the first creation (which picks the carrier of the number it
    /// buys); the other routes never read it.
    pub carriers: OnDemand<Carriers>,
}

/// What the operations that never pick a carrier are given.
static NO_CARRIERS: Carriers = Carriers::none();

impl AssistantsApi {
    pub fn new(w: &Wiring) -> Self {
        Self { store: w.store.clone(), carriers: w.carriers_on_demand() }
    }

    fn ops(&self) -> Assistants<'_> {
        Assistants { store: self.store.as_ref(), carriers: &NO_CARRIERS }
    }

    /// `ops` for a creation, which picks a carrier: the carriers are built first.
    async fn carrier_ops(&self) -> Result<Assistants<'_>, ApiError> {
        Ok(Assistants { store: self.store.as_ref(), carriers: self.carriers.get().await? })
    }
}

pub fn router(api: Arc<AssistantsApi>) -> Router {
    Router::new()
        .route("/v1/assistants", post(create).get(list))
        .route("/v1/assistants/{id}", get(show).patch(update).delete(delete))
        .with_state(api)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelBody {
    provider: String,
    model: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoiceBody {
    provider: String,
    voice_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default, deserialize_with = "not_null")]
    first_message: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    system_prompt: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    model: Option<ModelBody>,
    #[serde(default, deserialize_with = "not_null")]
    voice: Option<VoiceBody>,
    #[serde(default, deserialize_with = "not_null")]
    selected_phone_number: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    carrier: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    first_message: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    system_prompt: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    model: Option<ModelBody>,
    #[serde(default, deserialize_with = "not_null")]
    voice: Option<VoiceBody>,
}

fn model(m: Option<&ModelBody>) -> Result<Option<ProviderChoice>, ApiError> {
    m.map(|m| ProviderChoice::parse("model", &m.provider, "model", &m.model)).transpose().map_err(ApiError::unprocessable)
}

fn voice(v: Option<&VoiceBody>) -> Result<Option<ProviderChoice>, ApiError> {
    v.map(|v| ProviderChoice::parse("voice", &v.provider, "voice_id", &v.voice_id)).transpose().map_err(ApiError::unprocessable)
}

#[derive(Serialize)]
struct ModelView {
    provider: String,
    model: String,
}

#[derive(Serialize)]
struct VoiceView {
    provider: String,
    voice_id: String,
}

#[derive(Serialize)]
struct AssistantView {
    id: String,
    name: String,
    first_message: Option<String>,
    system_prompt: Option<String>,
    model: Option<ModelView>,
    voice: Option<VoiceView>,
    status: AssistantStatus,
    failure: Option<SyncErrorView>,
    sync_state: SyncState,
    sync_error: Option<SyncErrorView>,
    vapi_assistant_id: Option<String>,
    /// The number picked at creation (bought by the saga).
    phone_number: Option<String>,
    /// How far Vapi has the picked number attached (`null` without one).
    phone_number_sync: Option<SyncState>,
    phone_number_sync_error: Option<SyncErrorView>,
    carrier: CarrierName,
    phone_numbers: Vec<NumberView>,
    created_at: String,
    updated_at: String,
}

impl From<&AssistantPage> for AssistantView {
    fn from(p: &AssistantPage) -> Self {
        let a = &p.assistant;
        let picked = a.selected_number.as_ref().and_then(|e| p.numbers.iter().find(|n| &n.e164 == e));
        Self {
            id: a.id.to_string(),
            name: a.name.as_str().to_owned(),
            first_message: a.settings.first_message.clone(),
            system_prompt: a.settings.system_prompt.clone(),
            model: a.settings.model.as_ref().map(|m| ModelView { provider: m.provider.clone(), model: m.name.clone() }),
            voice: a.settings.voice.as_ref().map(|v| VoiceView { provider: v.provider.clone(), voice_id: v.name.clone() }),
            status: a.status,
            failure: a.failure.as_ref().map(SyncErrorView::from),
            sync_state: a.sync_state,
            sync_error: a.sync_error.as_ref().map(SyncErrorView::from),
            vapi_assistant_id: a.vapi_assistant_id.clone(),
            phone_number: a.selected_number.as_ref().map(|e| e.to_string()),
            phone_number_sync: picked.and_then(|n| n.assistant_sync),
            phone_number_sync_error: picked.and_then(|n| n.assistant_sync_error.as_ref()).map(SyncErrorView::from),
            carrier: a.carrier,
            phone_numbers: p.numbers.iter().map(NumberView::from).collect(),
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
        }
    }
}

fn accepted(p: &AssistantPage, replayed: bool) -> Response {
    http::accepted(AssistantView::from(p), &format!("/v1/assistants/{}", p.assistant.id), replayed)
}

async fn create(
    State(api): State<Arc<AssistantsApi>>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let name = AssistantName::parse(&body.name).map_err(ApiError::unprocessable)?;
    let settings = AssistantSettings {
        first_message: parse_text("first_message", body.first_message.as_deref(), FIRST_MESSAGE_MAX).map_err(ApiError::unprocessable)?,
        system_prompt: parse_text("system_prompt", body.system_prompt.as_deref(), PROMPT_MAX).map_err(ApiError::unprocessable)?,
        model: model(body.model.as_ref())?,
        voice: voice(body.voice.as_ref())?,
    };
    let selected = body
        .selected_phone_number
        .as_deref()
        .map(E164::parse)
        .transpose()
        .map_err(|e| ApiError::unprocessable(e.at("selected_phone_number")))?;
    let carrier = body.carrier.as_deref().map(CarrierName::parse).transpose().map_err(|e| ApiError::unprocessable(e.at("carrier")))?;
    let now = OffsetDateTime::now_utc();
    let created = api.carrier_ops().await?.create(&user, name, settings, selected, carrier, key.as_ref(), now).await?;
    let (page, replayed) = match created {
        Created::New(p) => (p, false),
        Created::Replayed(p) => (p, true),
    };
    Ok(accepted(&page, replayed))
}

async fn list(State(api): State<Arc<AssistantsApi>>, AuthUser(user): AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let limit = Limit::parse(q.get("limit")).map_err(ApiError::bad_request)?;
    let cursor = match q.get("cursor") {
        None => None,
        Some(raw) => {
            let c = Cursor::parse(raw).map_err(ApiError::bad_request)?;
            AssistantId::parse(&c.position().unwrap_or_default()).map_err(|_| {
                ApiError::bad_request(ValidationError::new("cursor", "invalid_cursor", "must be a next_cursor value from a previous page"))
            })?;
            Some(c)
        }
    };
    let page = api.ops().list(&user, cursor.as_ref(), limit).await?;
    let data: Vec<AssistantView> = page.data.iter().map(AssistantView::from).collect();
    Ok(Json(serde_json::json!({"data": data, "next_cursor": page.next_cursor.as_ref().map(|c| c.as_str())})).into_response())
}

async fn show(
    State(api): State<Arc<AssistantsApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<AssistantId>,
) -> Result<Response, ApiError> {
    Ok(Json(AssistantView::from(&api.ops().get(&user, id).await?)).into_response())
}

async fn update(
    State(api): State<Arc<AssistantsApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<AssistantId>,
    JsonBody(body): JsonBody<PatchBody>,
) -> Result<Response, ApiError> {
    let patch = AssistantPatch {
        name: body.name.as_deref().map(AssistantName::parse).transpose().map_err(ApiError::unprocessable)?,
        first_message: parse_text("first_message", body.first_message.as_deref(), FIRST_MESSAGE_MAX).map_err(ApiError::unprocessable)?,
        system_prompt: parse_text("system_prompt", body.system_prompt.as_deref(), PROMPT_MAX).map_err(ApiError::unprocessable)?,
        model: model(body.model.as_ref())?,
        voice: voice(body.voice.as_ref())?,
    };
    if patch == AssistantPatch::default() {
        return Err(ApiError::unprocessable(ValidationError::new("body", "empty_patch", "at least one setting must be given")));
    }
    Ok(accepted(&api.ops().update(&user, id, &patch, OffsetDateTime::now_utc()).await?, false))
}

async fn delete(
    State(api): State<Arc<AssistantsApi>>,
    AuthUser(user): AuthUser,
    IdPath(id): IdPath<AssistantId>,
) -> Result<Response, ApiError> {
    // Answered from the write itself: the worker may purge the assistant before a read could run.
    let assistant = api.ops().delete(&user, id, OffsetDateTime::now_utc()).await?;
    Ok(accepted(&AssistantPage { assistant, numbers: Vec::new() }, false))
}
