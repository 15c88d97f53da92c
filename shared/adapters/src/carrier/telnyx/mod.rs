//! Telnyx API v2 client, following `../shared/providers/telnyx_spec3.yml`: the client and messaging
//! profiles here (`POST /messaging_profiles`, `PATCH /messaging_profiles/{id}`, `DELETE /messaging_profiles/{id}`,
//! Bearer auth, answers `{"data": {...}}`, errors `{"errors": [{"code", "title", "detail"}]}`);
//! phone numbers in `numbers`, the dialer in `dialer`.

mod dialer;
mod numbers;

use std::time::Duration;

use async_trait::async_trait;
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::profiles::{CarrierProfileSpec, ListedProfile, ProfileCarrier};
use patchbay_domain::CarrierProfileId;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

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

/// A messaging profile of the account (`GET /messaging_profiles`).
#[derive(Deserialize)]
struct ListedTelnyxProfile {
    id: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<String>,
}

/// Pages of 250 the reconciler follows at most before it gives up on a listing.
const LIST_PAGES: usize = 1000;
const LIST_PAGE: usize = 250;

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
}

/// Telnyx ids are strings in some answers and numbers in others.
fn id_string(v: &serde_json::Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}
