//! Telnyx API v2 client (messaging profiles), following `../shared/providers/telnyx_spec3.yml`:
//! `POST /messaging_profiles`, `PATCH /messaging_profiles/{id}`, `DELETE /messaging_profiles/{id}`,
//! Bearer auth, answers `{"data": {...}}`, errors `{"errors": [{"code", "title", "detail"}]}`.

use std::time::Duration;

use async_trait::async_trait;
use patchbay_domain::dialer::{jwt_expiry, CarrierConnection, ConnectionSpec, DialerCarrier, WebrtcToken, TOKEN_LIFETIME};
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::numbers::{AvailableNumber, ListedNumber, NumberCarrier, NumberSearch, Ownership, Purchase};
use patchbay_domain::profiles::{CarrierProfileSpec, ListedProfile, ProfileCarrier};
use patchbay_domain::{CarrierName, CarrierProfileId, E164};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::outbound::is_retryable_status;
use crate::outbound::{self as http, RequestBuilder, Response};

pub struct TelnyxClient {
    http: http::Client,
    base: String,
    api_key: SecretString,
}

#[derive(Serialize)]
struct ProfileBody<'a> {
    name: &'a str,
    whitelisted_destinations: Vec<String>,
}

#[derive(Deserialize)]
struct DataEnvelope {
    data: ProfileData,
}

#[derive(Deserialize)]
struct ProfileData {
    id: String,
}

#[derive(Deserialize, Default)]
struct ErrorsEnvelope {
    #[serde(default)]
    errors: Vec<TelnyxError>,
}

#[derive(Deserialize)]
struct TelnyxError {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl TelnyxClient {
    pub fn new(base: &str, api_key: SecretString, timeout: Duration) -> Result<Self, CarrierError> {
        Ok(Self { http: http::Client::new(timeout), base: base.trim_end_matches('/').to_owned(), api_key })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: RequestBuilder<'_>) -> Result<Response, CarrierError> {
        self.send_accepting(req, "application/json").await
    }

    /// `send` for an answer that is not JSON (a token is `text/plain`); errors are still JSON.
    async fn send_accepting(&self, req: RequestBuilder<'_>, accept: &str) -> Result<Response, CarrierError> {
        let res = req
            .bearer_auth(self.api_key.expose_secret())
            .header("accept", accept)
            .send()
            .await
            .map_err(|e| CarrierError::Transient(describe(e)))?;
        let status = res.status();
        if res.is_success() {
            return Ok(res);
        }
        let body: ErrorsEnvelope = res.json().unwrap_or_default();
        let first = body.errors.into_iter().next();
        let code = first
            .as_ref()
            .and_then(|e| e.code.as_ref())
            .map(|c| c.as_str().map(str::to_owned).unwrap_or_else(|| c.to_string()))
            .unwrap_or_default();
        let message = first
            .map(|e| match (e.title, e.detail) {
                (Some(t), Some(d)) => format!("{t}: {d}"),
                (t, d) => t.or(d).unwrap_or_default(),
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        if status == 404 {
            return Err(CarrierError::NotFound);
        }
        if is_retryable_status(status) {
            return Err(CarrierError::Transient(format!("telnyx answered {status}: {code} {message}")));
        }
        Err(CarrierError::Permanent { status, code, message })
    }
}

#[derive(Deserialize)]
struct ListEnvelope<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
}

#[derive(Deserialize)]
struct TelnyxAvailable {
    phone_number: Option<String>,
    #[serde(default)]
    region_information: Vec<RegionInfo>,
    #[serde(default)]
    features: Vec<Feature>,
}

#[derive(Deserialize)]
struct RegionInfo {
    region_type: Option<String>,
    region_name: Option<String>,
}

#[derive(Deserialize)]
struct Feature {
    name: Option<String>,
}

/// A number of the account (`GET /phone_numbers`): its id and `status`.
#[derive(Deserialize)]
struct OwnedNumber {
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    messaging_profile_id: Option<String>,
    #[serde(default)]
    customer_reference: Option<String>,
}

/// A messaging profile of the account (`GET /messaging_profiles`).
#[derive(Deserialize)]
struct ListedTelnyxProfile {
    id: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<String>,
}

/// The order reference Patchbay puts on every number it orders: how the reconciler tells its numbers
/// from the rest of the account.
const CUSTOMER_REFERENCE: &str = "patchbay";
/// Pages of 250 the reconciler follows at most before it gives up on a listing.
const LIST_PAGES: usize = 1000;
const LIST_PAGE: usize = 250;

#[derive(Deserialize)]
struct OrderEnvelope {
    data: NumberOrder,
}

#[derive(Deserialize)]
struct NumberOrder {
    id: Option<String>,
    status: Option<String>,
}

#[derive(Serialize)]
struct OrderBody<'a> {
    phone_numbers: [OrderNumber<'a>; 1],
    customer_reference: &'static str,
}

#[derive(Serialize)]
struct OrderNumber<'a> {
    phone_number: &'a str,
}

#[derive(Serialize)]
struct MessagingBody<'a> {
    /// A profile id assigns; `""` takes the number off its profile.
    messaging_profile_id: &'a str,
}

fn unreadable(e: http::Error) -> CarrierError {
    CarrierError::Transient(format!("telnyx answer unreadable: {}", e))
}

/// A transport error in words, without the URL's query (none carries secrets, but keep it short).
fn describe(e: http::Error) -> String {
    if e.is_timeout() {
        "telnyx did not answer in time".into()
    } else if e.is_connect() {
        "could not connect to telnyx".into()
    } else {
        format!("telnyx request failed: {}", e)
    }
}

#[async_trait]
impl ProfileCarrier for TelnyxClient {
    fn name(&self) -> &'static str {
        "telnyx"
    }

    async fn create_messaging_profile(&self, spec: &CarrierProfileSpec) -> Result<CarrierProfileId, CarrierError> {
        let body = ProfileBody { name: spec.name.as_str(), whitelisted_destinations: spec.whitelisted_destinations.as_strings() };
        let res = self.send(self.http.post(self.url("/messaging_profiles")).json(&body)).await?;
        let env: DataEnvelope = res.json().map_err(|e| CarrierError::Transient(format!("telnyx answer unreadable: {}", e)))?;
        CarrierProfileId::parse(&env.data.id).map_err(|_| CarrierError::Transient("telnyx answered an unusable profile id".into()))
    }

    async fn update_messaging_profile(&self, id: &CarrierProfileId, spec: &CarrierProfileSpec) -> Result<(), CarrierError> {
        let body = ProfileBody { name: spec.name.as_str(), whitelisted_destinations: spec.whitelisted_destinations.as_strings() };
        self.send(self.http.patch(self.url(&format!("/messaging_profiles/{}", id.as_str()))).json(&body)).await?;
        Ok(())
    }

    async fn delete_messaging_profile(&self, id: &CarrierProfileId) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/messaging_profiles/{}", id.as_str())))).await?;
        Ok(())
    }

    async fn list_messaging_profiles(&self) -> Result<Vec<ListedProfile>, CarrierError> {
        let list: Vec<ListedTelnyxProfile> = self.list_all("/messaging_profiles").await?;
        // Telnyx profiles carry nothing of Patchbay's (the name is the user's), so none is reported as a look-alike.
        Ok(list
            .into_iter()
            .map(|p| ListedProfile {
                id: p.id.as_ref().map(id_string).unwrap_or_default(),
                name: p.name.unwrap_or_default(),
                patchbay: false,
            })
            .collect())
    }
}

impl TelnyxClient {
    /// Every page of a `{data: [...]}` listing, 250 at a time.
    async fn list_all<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, CarrierError> {
        let mut out = Vec::new();
        for page in 1..=LIST_PAGES {
            let query = [("page[number]", page.to_string()), ("page[size]", LIST_PAGE.to_string())];
            let list: ListEnvelope<T> = self.send(self.http.get(self.url(path)).query(&query)).await?.json().map_err(unreadable)?;
            let n = list.data.len();
            out.extend(list.data);
            if n < LIST_PAGE {
                return Ok(out);
            }
        }
        Err(CarrierError::Transient(format!("telnyx listed more than {LIST_PAGES} pages of {path}")))
    }

    async fn order(&self, order_id: &str) -> Result<NumberOrder, CarrierError> {
        let res = self.send(self.http.get(self.url(&format!("/number_orders/{order_id}")))).await?;
        Ok(res.json::<OrderEnvelope>().map_err(unreadable)?.data)
    }

    /// An order's outcome: its number's id once it succeeded.
    async fn settle(&self, order: NumberOrder, e164: &E164) -> Result<Purchase, CarrierError> {
        let id = order.id.clone().unwrap_or_default();
        match order.status.as_deref() {
            Some("success") => match self.find_owned(e164).await? {
                Ownership::Owned(number_id) => Ok(Purchase::Done(number_id)),
                Ownership::Pending | Ownership::NotOwned => Ok(Purchase::Ordered(id)),
            },
            Some("failure") => Err(CarrierError::Permanent {
                status: 200,
                code: "number_order_failed".into(),
                message: format!("telnyx number order {id} failed"),
            }),
            _ if id.is_empty() => Err(CarrierError::Transient("telnyx answered an order without an id".into())),
            _ => Ok(Purchase::Ordered(id)),
        }
    }
}

#[async_trait]
impl NumberCarrier for TelnyxClient {
    fn name(&self) -> CarrierName {
        CarrierName::Telnyx
    }

    async fn search(&self, q: &NumberSearch) -> Result<Vec<AvailableNumber>, CarrierError> {
        let mut query: Vec<(&str, String)> = vec![
            ("filter[country_code]", q.country.as_str().to_owned()),
            ("filter[limit]", q.limit.to_string()),
            ("filter[features][]", "sms".to_owned()),
        ];
        if let Some(a) = &q.area_code {
            query.push(("filter[national_destination_code]", a.as_str().to_owned()));
        }
        let res = self.send(self.http.get(self.url("/available_phone_numbers")).query(&query)).await?;
        let list: ListEnvelope<TelnyxAvailable> = res.json().map_err(unreadable)?;
        Ok(list
            .data
            .into_iter()
            .filter_map(|a| {
                let e164 = E164::parse(a.phone_number.as_deref()?).ok()?;
                let region = |kind: &str| {
                    a.region_information.iter().find(|r| r.region_type.as_deref() == Some(kind)).and_then(|r| r.region_name.clone())
                };
                let has = |name: &str| a.features.iter().any(|f| f.name.as_deref() == Some(name));
                Some(AvailableNumber {
                    phone_number: e164,
                    region: region("state"),
                    locality: region("rate_center"),
                    sms: has("sms"),
                    voice: has("voice"),
                })
            })
            .take(usize::from(q.limit))
            .collect())
    }

    async fn find_owned(&self, e164: &E164) -> Result<Ownership, CarrierError> {
        let res = self.send(self.http.get(self.url("/phone_numbers")).query(&[("filter[phone_number]", e164.as_str())])).await?;
        let list: ListEnvelope<OwnedNumber> = res.json().map_err(unreadable)?;
        // Only a number in service is owned; `purchase-pending` is an order that has not completed
        // (and may still fail); `purchase-failed`, `deleted` and the like are not ours.
        let mut pending = false;
        for n in list.data {
            match (n.id, n.status.as_deref()) {
                (Some(id), Some("active") | None) => return Ok(Ownership::Owned(id)),
                (_, Some("purchase-pending")) => pending = true,
                _ => {}
            }
        }
        Ok(if pending { Ownership::Pending } else { Ownership::NotOwned })
    }

    async fn list_numbers(&self) -> Result<Vec<ListedNumber>, CarrierError> {
        let list: Vec<OwnedNumber> = self.list_all("/phone_numbers").await?;
        Ok(list
            .into_iter()
            // In service, or on its way out but still the account's; not an order or a port that has not completed.
            .filter(|n| {
                !matches!(
                    n.status.as_deref(),
                    Some("deleted" | "ported-out" | "purchase-failed" | "purchase-pending" | "port-pending" | "port-failed")
                )
            })
            .filter_map(|n| {
                let e164 = E164::parse(n.phone_number.as_deref()?).ok()?;
                let patchbay = n.customer_reference.as_deref() == Some(CUSTOMER_REFERENCE);
                Some(ListedNumber { e164, id: n.id?, messaging_profile_id: n.messaging_profile_id.filter(|m| !m.is_empty()), patchbay })
            })
            .collect())
    }

    async fn buy(&self, e164: &E164) -> Result<Purchase, CarrierError> {
        let body = OrderBody { phone_numbers: [OrderNumber { phone_number: e164.as_str() }], customer_reference: CUSTOMER_REFERENCE };
        let res = self.send(self.http.post(self.url("/number_orders")).json(&body)).await?;
        let order = res.json::<OrderEnvelope>().map_err(unreadable)?.data;
        self.settle(order, e164).await
    }

    async fn order_status(&self, order_id: &str, e164: &E164) -> Result<Purchase, CarrierError> {
        let order = self.order(order_id).await?;
        self.settle(order, e164).await
    }

    async fn release(&self, carrier_number_id: &str) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/phone_numbers/{carrier_number_id}")))).await?;
        Ok(())
    }

    async fn set_messaging_profile(&self, carrier_number_id: &str, profile: Option<&CarrierProfileId>) -> Result<(), CarrierError> {
        let body = MessagingBody { messaging_profile_id: profile.map(|p| p.as_str()).unwrap_or("") };
        self.send(self.http.patch(self.url(&format!("/phone_numbers/{carrier_number_id}/messaging"))).json(&body)).await?;
        Ok(())
    }

    async fn send_sms(&self, from: &E164, to: &E164, text: &str, profile: Option<&CarrierProfileId>) -> Result<String, CarrierError> {
        let mut body = serde_json::json!({"from": from.as_str(), "to": to.as_str(), "text": text});
        if let Some(p) = profile {
            body["messaging_profile_id"] = serde_json::Value::String(p.as_str().to_owned());
        }
        let res = self.send(self.http.post(self.url("/messages")).json(&body)).await?;
        let sent: DataEnvelope = res.json().map_err(unreadable)?;
        Ok(sent.data.id)
    }
}

/// A credential connection as Telnyx answers it. Its answer also carries `password`: never read,
/// never logged.
#[derive(Deserialize)]
struct TelnyxConnection {
    id: serde_json::Value,
    #[serde(default)]
    connection_name: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

#[derive(Deserialize)]
struct ConnectionEnvelope {
    data: TelnyxConnection,
}

#[derive(Deserialize)]
struct IdOnly {
    id: serde_json::Value,
}

#[derive(Deserialize)]
struct IdEnvelope {
    data: IdOnly,
}

/// Telnyx ids are strings in some answers and numbers in others.
fn id_string(v: &serde_json::Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

#[derive(Serialize)]
struct ConnectionBody<'a> {
    connection_name: &'a str,
    user_name: &'a str,
    password: &'a str,
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_event_url: Option<&'a str>,
}

impl<'a> ConnectionBody<'a> {
    fn of(spec: &'a ConnectionSpec) -> Self {
        Self {
            connection_name: &spec.name,
            user_name: &spec.user_name,
            password: spec.password.expose(),
            active: spec.active,
            webhook_event_url: spec.webhook_event_url.as_deref(),
        }
    }
}

/// How many connections one list page asks for, and how many pages are read at most.
const CONNECTION_PAGE: usize = 250;
const CONNECTION_PAGES: u32 = 40;

impl TelnyxClient {
    /// The account's credential connections, every page (optionally those whose name contains `name`).
    async fn connections(&self, name: Option<&str>) -> Result<Vec<CarrierConnection>, CarrierError> {
        let mut out = Vec::new();
        for page in 1..=CONNECTION_PAGES {
            let mut query = vec![("page[number]".to_owned(), page.to_string()), ("page[size]".to_owned(), CONNECTION_PAGE.to_string())];
            if let Some(n) = name {
                query.push(("filter[connection_name][contains]".to_owned(), n.to_owned()));
            }
            let res = self.send(self.http.get(self.url("/credential_connections")).query(&query)).await?;
            let list: ListEnvelope<TelnyxConnection> = res.json().map_err(unreadable)?;
            let n = list.data.len();
            out.extend(list.data.into_iter().map(|c| CarrierConnection {
                id: id_string(&c.id),
                name: c.connection_name.unwrap_or_default(),
                user_name: c.user_name,
                active: c.active.unwrap_or(true),
            }));
            if n < CONNECTION_PAGE {
                break;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl DialerCarrier for TelnyxClient {
    fn name(&self) -> CarrierName {
        CarrierName::Telnyx
    }

    async fn create_credential_connection(&self, spec: &ConnectionSpec) -> Result<String, CarrierError> {
        let res = self.send(self.http.post(self.url("/credential_connections")).json(&ConnectionBody::of(spec))).await?;
        let created: ConnectionEnvelope = res.json().map_err(unreadable)?;
        Ok(id_string(&created.data.id))
    }

    async fn find_credential_connection(&self, user_name: &str) -> Result<Option<String>, CarrierError> {
        Ok(self.connections(None).await?.into_iter().find(|c| c.user_name.as_deref() == Some(user_name)).map(|c| c.id))
    }

    async fn update_credential_connection(&self, id: &str, spec: &ConnectionSpec) -> Result<(), CarrierError> {
        self.send(self.http.patch(self.url(&format!("/credential_connections/{id}"))).json(&ConnectionBody::of(spec))).await?;
        Ok(())
    }

    async fn delete_credential_connection(&self, id: &str) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/credential_connections/{id}")))).await?;
        Ok(())
    }

    async fn list_credential_connections(&self) -> Result<Vec<CarrierConnection>, CarrierError> {
        self.connections(None).await
    }

    async fn create_telephony_credential(&self, connection_id: &str, name: &str) -> Result<String, CarrierError> {
        let body = serde_json::json!({"connection_id": connection_id, "name": name});
        let res = self.send(self.http.post(self.url("/telephony_credentials")).json(&body)).await?;
        let created: IdEnvelope = res.json().map_err(unreadable)?;
        Ok(id_string(&created.data.id))
    }

    async fn delete_telephony_credential(&self, id: &str) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/telephony_credentials/{id}")))).await?;
        Ok(())
    }

    async fn webrtc_token(&self, credential_id: &str, now: OffsetDateTime) -> Result<WebrtcToken, CarrierError> {
        let res =
            self.send_accepting(self.http.post(self.url(&format!("/telephony_credentials/{credential_id}/token"))), "text/plain").await?;
        let token = res.text().map_err(unreadable)?.trim().to_owned();
        if token.split('.').count() != 3 {
            return Err(CarrierError::Transient("telnyx answered a token that is not a JWT".into()));
        }
        let expires_at = jwt_expiry(&token).unwrap_or(now + TOKEN_LIFETIME);
        Ok(WebrtcToken { token, expires_at })
    }

    async fn set_number_connection(&self, carrier_number_id: &str, connection_id: Option<&str>) -> Result<(), CarrierError> {
        let body = serde_json::json!({"connection_id": connection_id.unwrap_or("")});
        self.send(self.http.patch(self.url(&format!("/phone_numbers/{carrier_number_id}"))).json(&body)).await?;
        Ok(())
    }
}
