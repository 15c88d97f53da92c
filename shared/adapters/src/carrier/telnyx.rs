//! Telnyx API v2 client (messaging profiles), following `../shared/providers/telnyx_spec3.yml`:
//! `POST /messaging_profiles`, `PATCH /messaging_profiles/{id}`, `DELETE /messaging_profiles/{id}`,
//! Bearer auth, answers `{"data": {...}}`, errors `{"errors": [{"code", "title", "detail"}]}`.

use std::time::Duration;

use async_trait::async_trait;
use patchbay_domain::ports::{CarrierError, CarrierProfileSpec, ProfileCarrier};
use patchbay_domain::CarrierProfileId;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::is_retryable_status;

pub struct TelnyxClient {
    http: reqwest::Client,
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
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CarrierError::NotConfigured(format!("http client: {e}")))?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), api_key })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, CarrierError> {
        let res = req
            .bearer_auth(self.api_key.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| CarrierError::Transient(describe(e)))?;
        let status = res.status().as_u16();
        if res.status().is_success() {
            return Ok(res);
        }
        let body: ErrorsEnvelope = res.json().await.unwrap_or_default();
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

/// A transport error in words, without the URL's query (none carries secrets, but keep it short).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "telnyx did not answer in time".into()
    } else if e.is_connect() {
        "could not connect to telnyx".into()
    } else {
        format!("telnyx request failed: {}", e.without_url())
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
        let env: DataEnvelope = res.json().await.map_err(|e| CarrierError::Transient(format!("telnyx answer unreadable: {}", e.without_url())))?;
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
}
