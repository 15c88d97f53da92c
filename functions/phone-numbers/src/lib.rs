//! Phone numbers: search what carriers offer, buy (202 pending; the worker buys), list, show, release.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use patchbay_adapters::http::json::not_null;
use patchbay_adapters::http::views::{AvailableNumberView, NumberView, PageView};
use patchbay_adapters::http::{self, idempotency_key, ApiError, AuthUser, E164Path, JsonBody, QueryParams};
use patchbay_adapters::ondemand::OnDemand;
use patchbay_adapters::Wiring;
use patchbay_domain::kernel::provider::Created;
use patchbay_domain::numbers::{Carriers, NumberSearch, NumberWriter, Numbers, PhoneNumber, Release};
use patchbay_domain::voice_ai::{AssistantWriter, Assistants};
use patchbay_domain::{AssistantId, CarrierName, Cursor, Limit, ValidationError, E164};
use serde::Deserialize;
use time::OffsetDateTime;

pub struct NumbersApi {
    pub store: Arc<dyn NumberWriter>,
    /// Numbers connected to voice-AI assistants.
    pub assistants: Arc<dyn AssistantWriter>,
    /// Built from the carrier secret on the first search or purchase (a list never reads it).
    pub carriers: OnDemand<Carriers>,
}

/// What the operations that never pick a carrier (list, show, release, connect) are given.
static NO_CARRIERS: Carriers = Carriers::none();

impl NumbersApi {
    pub fn new(w: &Wiring) -> Self {
        Self { store: w.store.clone(), assistants: w.store.clone(), carriers: w.carriers_on_demand() }
    }

    fn assistant_ops(&self) -> Assistants<'_> {
        Assistants { store: self.assistants.as_ref(), carriers: &NO_CARRIERS }
    }

    fn ops(&self) -> Numbers<'_> {
        Numbers { store: self.store.as_ref(), carriers: &NO_CARRIERS }
    }

    /// `ops` for a search or a purchase, which pick a carrier: the carriers are built first.
    async fn carrier_ops(&self) -> Result<Numbers<'_>, ApiError> {
        Ok(Numbers { store: self.store.as_ref(), carriers: self.carriers.get().await? })
    }
}

pub fn router(api: Arc<NumbersApi>) -> Router {
    Router::new()
        .route("/v1/available-phone-numbers", get(search))
        .route("/v1/phone-numbers", get(list).post(buy))
        .route("/v1/phone-numbers/{e164}", get(show).delete(release).patch(connect))
        .with_state(api)
}

fn carrier_param(raw: Option<&str>) -> Result<Option<CarrierName>, ApiError> {
    raw.map(CarrierName::parse).transpose().map_err(ApiError::bad_request)
}

async fn search(State(api): State<Arc<NumbersApi>>, AuthUser(_): AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let query = NumberSearch::parse(q.get("country"), q.get("area_code"), q.get("limit")).map_err(ApiError::bad_request)?;
    let carrier = carrier_param(q.get("carrier"))?;
    let found = api.carrier_ops().await?.search(carrier, &query).await?;
    Ok(Json(serde_json::json!({ "data": found.iter().map(AvailableNumberView::from).collect::<Vec<_>>() })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuyBody {
    phone_number: String,
    #[serde(default, deserialize_with = "not_null")]
    carrier: Option<String>,
}

fn accepted(n: &PhoneNumber, replayed: bool) -> Response {
    http::accepted(NumberView::from(n), &format!("/v1/phone-numbers/{}", n.e164), replayed)
}

async fn buy(
    State(api): State<Arc<NumbersApi>>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<BuyBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let e164 = E164::parse(&body.phone_number).map_err(ApiError::unprocessable)?;
    let carrier = body.carrier.as_deref().map(CarrierName::parse).transpose().map_err(ApiError::unprocessable)?;
    match api.carrier_ops().await?.buy(&user, e164, carrier, key.as_ref(), OffsetDateTime::now_utc()).await? {
        Created::New(n) => Ok(accepted(&n, false)),
        Created::Replayed(n) => Ok(accepted(&n, true)),
    }
}

async fn list(State(api): State<Arc<NumbersApi>>, AuthUser(user): AuthUser, q: QueryParams) -> Result<Response, ApiError> {
    let limit = Limit::parse(q.get("limit")).map_err(ApiError::bad_request)?;
    let cursor = match q.get("cursor") {
        None => None,
        Some(raw) => {
            let c = Cursor::parse(raw).map_err(ApiError::bad_request)?;
            E164::parse(&c.position().unwrap_or_default()).map_err(|_| {
                ApiError::bad_request(ValidationError::new("cursor", "invalid_cursor", "must be a next_cursor value from a previous page"))
            })?;
            Some(c)
        }
    };
    let page = api.ops().list(&user, cursor.as_ref(), limit).await?;
    Ok(Json(PageView::<NumberView>::from(&page)).into_response())
}

async fn show(State(api): State<Arc<NumbersApi>>, AuthUser(user): AuthUser, E164Path(e164): E164Path) -> Result<Response, ApiError> {
    let n = api.ops().get(&user, &e164).await?;
    Ok(Json(NumberView::from(&n)).into_response())
}

async fn release(State(api): State<Arc<NumbersApi>>, AuthUser(user): AuthUser, E164Path(e164): E164Path) -> Result<Response, ApiError> {
    match api.ops().release(&user, &e164, OffsetDateTime::now_utc()).await? {
        Release::Releasing(n) => Ok((StatusCode::ACCEPTED, Json(NumberView::from(n.as_ref()))).into_response()),
        Release::Forgotten => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    /// An assistant id connects; `null` disconnects (required: an empty body is not a disconnect).
    assistant_id: Option<String>,
}

/// `PATCH /v1/phone-numbers/{e164}` `{assistant_id}`: the number's calls go to one of the caller's
/// assistants (or, with `null`, to none); Vapi follows (`assistant_sync`).
async fn connect(
    State(api): State<Arc<NumbersApi>>,
    AuthUser(user): AuthUser,
    E164Path(e164): E164Path,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    // Unknown fields and wrong types first, each named (`{"assistant_id": null, "colour": "red"}`
    // is about `colour`); then the one field this takes must be there.
    let parsed: ConnectBody = http::json::parse_json(body.to_string().as_bytes())?;
    if body.get("assistant_id").is_none() {
        return Err(ApiError::unprocessable(ValidationError::new(
            "assistant_id",
            "required",
            "must be given: an assistant id, or null to disconnect",
        )));
    }
    let body = parsed;
    let assistant =
        body.assistant_id.as_deref().map(AssistantId::parse).transpose().map_err(|e| ApiError::unprocessable(e.at("assistant_id")))?;
    let n = api.assistant_ops().connect(&user, &e164, assistant, OffsetDateTime::now_utc()).await?;
    Ok(http::accepted(NumberView::from(&n), &format!("/v1/phone-numbers/{}", n.e164), false))
}
