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
    /// Patchbay's public base URL: a messaging profile's `webhook_url` is built from it.
    public_url: Option<String>,
}

#[derive(Serialize)]
struct ProfileBody<'a> {
    name: &'a str,
    whitelisted_destinations: Vec<String>,
    /// Where Telnyx posts the profile's messaging events, with our profile id in its query: the
    /// mark that lets a create whose answer was lost be found and adopted instead of made twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<String>,
}

/// The query parameter of a profile's `webhook_url` that names our profile.
const PROFILE_MARK: &str = "patchbay_profile";

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
        Ok(Self { http: http::Client::new(timeout), base: base.trim_end_matches('/').to_owned(), api_key, public_url: None })
    }

    /// Patchbay's public base URL (`PATCHBAY_PUBLIC_URL`). With it, each messaging profile posts its
    /// events to `{url}/webhooks/telnyx` and carries our profile id, so a lost create is found again;
    /// without it, profiles have no webhook and cannot be found.
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url.map(|u| u.trim_end_matches('/').to_owned()).filter(|u| !u.is_empty());
        self
    }

    fn profile_body<'a>(&self, spec: &'a CarrierProfileSpec) -> ProfileBody<'a> {
        ProfileBody {
            name: spec.name.as_str(),
            whitelisted_destinations: spec.whitelisted_destinations.as_strings(),
            webhook_url: self.public_url.as_ref().map(|base| format!("{base}/webhooks/telnyx?{PROFILE_MARK}={}", spec.local_id)),
        }
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
    #[serde(default)]
    webhook_url: Option<String>,
}

impl ListedTelnyxProfile {
    /// Our profile id, when the profile's webhook URL carries Patchbay's mark.
    fn mark(&self) -> Option<String> {
        let url = self.webhook_url.as_deref()?;
        let (_, query) = url.split_once('?')?;
        query.split('&').find_map(|pair| match pair.split_once('=') {
            Some((PROFILE_MARK, v)) if !v.is_empty() => Some(v.to_owned()),
            _ => None,
        })
    }
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
        let body = self.profile_body(spec);
        let res = self.send(self.http.post(self.url("/messaging_profiles")).json(&body)).await?;
        let env: DataEnvelope = res.json().map_err(|e| CarrierError::Transient(format!("telnyx answer unreadable: {}", e)))?;
        CarrierProfileId::parse(&env.data.id).map_err(|_| CarrierError::Transient("telnyx answered an unusable profile id".into()))
    }

    async fn find_messaging_profile(&self, spec: &CarrierProfileSpec) -> Result<Option<CarrierProfileId>, CarrierError> {
        if self.public_url.is_none() {
            // Nothing we create carries a mark without a webhook URL.
            return Ok(None);
        }
        // Profiles of this name (the record's current one), first page: a lost create made one of
        // them moments ago. One renamed since is not found here; the reconciler reports it.
        let query = [("filter[name][eq]", spec.name.as_str().to_owned()), ("page[size]", LIST_PAGE.to_string())];
        let list: ListEnvelope<ListedTelnyxProfile> =
            self.send(self.http.get(self.url("/messaging_profiles")).query(&query)).await?.json().map_err(unreadable)?;
        let ours = spec.local_id.to_string();
        Ok(list
            .data
            .into_iter()
            .filter(|p| p.mark().as_deref() == Some(ours.as_str()))
            .find_map(|p| p.id.as_ref().map(id_string))
            .and_then(|id| CarrierProfileId::parse(&id).ok()))
    }

    async fn update_messaging_profile(&self, id: &CarrierProfileId, spec: &CarrierProfileSpec) -> Result<(), CarrierError> {
        let body = self.profile_body(spec);
        self.send(self.http.patch(self.url(&format!("/messaging_profiles/{}", id.as_str()))).json(&body)).await?;
        Ok(())
    }

    async fn delete_messaging_profile(&self, id: &CarrierProfileId) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/messaging_profiles/{}", id.as_str())))).await?;
        Ok(())
    }

    async fn list_messaging_profiles(&self) -> Result<Vec<ListedProfile>, CarrierError> {
        let list: Vec<ListedTelnyxProfile> = self.list_all("/messaging_profiles").await?;
        // A profile whose webhook URL carries our mark is Patchbay's (the name is the user's).
        Ok(list
            .into_iter()
            .map(|p| ListedProfile {
                patchbay: p.mark().is_some(),
                id: p.id.as_ref().map(id_string).unwrap_or_default(),
                name: p.name.unwrap_or_default(),
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
