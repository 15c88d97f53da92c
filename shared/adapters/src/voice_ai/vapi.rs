//! Vapi client, following `../shared/providers/vapi_openapi.json`: `POST/GET/PATCH/DELETE /assistant`,
//! `POST/GET/PATCH/DELETE /phone-number`, Bearer auth, errors `{message, error, statusCode}`.

use std::time::Duration;

use async_trait::async_trait;
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::voice_ai::{AssistantSpec, ListedAssistant, ListedVoiceNumber, NumberImport, VoiceAi};
use patchbay_domain::{AssistantId, CarrierName, E164};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::outbound::is_retryable_status;
use crate::outbound::{self as http, RequestBuilder, Response};

/// How a number is imported: Vapi's Telnyx credential id, or the Twilio account's SID and token.
#[derive(Clone, Default)]
pub struct ImportCredentials {
    pub telnyx_credential_id: Option<String>,
    pub twilio: Option<(String, SecretString)>,
}

pub struct VapiClient {
    http: http::Client,
    base: String,
    api_key: SecretString,
    import: ImportCredentials,
}

/// The model used when a system prompt is given without one.
const DEFAULT_MODEL: (&str, &str) = ("openai", "gpt-4o");
/// Lists read at most this many (a user's assistants and numbers are few; Vapi's maximum page).
const LIST_LIMIT: &str = "1000";

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "assistantId")]
    assistant_id: Option<String>,
    #[serde(default, rename = "createdAt")]
    created_at: Option<String>,
}

/// Pages of 1,000 the reconciler follows at most.
const LIST_PAGES: usize = 100;

/// Vapi's name for a carrier (its phone number DTOs are typed by it).
fn provider(carrier: CarrierName) -> Result<&'static str, CarrierError> {
    match carrier {
        CarrierName::Telnyx => Ok("telnyx"),
        CarrierName::Twilio => Ok("twilio"),
        CarrierName::Sandbox => {
            Err(CarrierError::NotConfigured("sandbox numbers exist only locally and cannot be imported into Vapi".into()))
        }
    }
}

impl VapiClient {
    pub fn new(base: &str, api_key: SecretString, import: ImportCredentials, timeout: Duration) -> Result<Self, CarrierError> {
        Ok(Self { http: http::Client::new(timeout), base: base.trim_end_matches('/').to_owned(), api_key, import })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: RequestBuilder<'_>) -> Result<Response, CarrierError> {
        let res = req.bearer_auth(self.api_key.expose_secret()).send().await.map_err(|e| {
            CarrierError::Transient(if e.is_timeout() {
                "vapi did not answer in time".into()
            } else {
                format!("vapi request failed: {}", e)
            })
        })?;
        let status = res.status();
        if res.is_success() {
            return Ok(res);
        }
        let body: Value = res.json().unwrap_or(Value::Null);
        let message = match &body["message"] {
            Value::String(m) => m.clone(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "),
            _ => body["error"].as_str().map(str::to_owned).unwrap_or_else(|| format!("HTTP {status}")),
        };
        if status == 404 {
            return Err(CarrierError::NotFound);
        }
        if is_retryable_status(status) {
            return Err(CarrierError::Transient(format!("vapi answered {status}: {message}")));
        }
        Err(CarrierError::Permanent { status, code: format!("vapi_{status}"), message })
    }

    fn assistant_body(spec: &AssistantSpec, with_metadata: bool) -> Value {
        let s = &spec.settings;
        let mut body = Map::new();
        body.insert("name".into(), json!(spec.name));
        if let Some(m) = &s.first_message {
            body.insert("firstMessage".into(), json!(m));
        }
        if s.model.is_some() || s.system_prompt.is_some() {
            let (provider, model) = s.model.as_ref().map(|m| (m.provider.as_str(), m.name.as_str())).unwrap_or(DEFAULT_MODEL);
            let mut m = json!({"provider": provider, "model": model});
            if let Some(p) = &s.system_prompt {
                m["messages"] = json!([{"role": "system", "content": p}]);
            }
            body.insert("model".into(), m);
        }
        if let Some(v) = &s.voice {
            body.insert("voice".into(), json!({"provider": v.provider, "voiceId": v.name}));
        }
        if let Some(url) = &spec.server_url {
            let mut server = json!({"url": url});
            if let Some(secret) = &spec.server_secret {
                server["headers"] = json!({"X-Vapi-Secret": secret});
            }
            body.insert("server".into(), server);
        }
        if with_metadata {
            body.insert("metadata".into(), json!({"patchbay_assistant_id": spec.local_id.to_string()}));
        }
        Value::Object(body)
    }

    async fn list(&self, path: &str) -> Result<Vec<Listed>, CarrierError> {
        self.list_page(path, None).await
    }

    async fn list_page(&self, path: &str, created_before: Option<&str>) -> Result<Vec<Listed>, CarrierError> {
        let mut query = vec![("limit", LIST_LIMIT)];
        if let Some(before) = created_before {
            query.push(("createdAtLt", before));
        }
        let res = self.send(self.http.get(self.url(path)).query(&query)).await?;
        res.json().map_err(|e| CarrierError::Transient(format!("vapi answer unreadable: {}", e)))
    }

    /// The whole listing: Vapi answers newest first, 1,000 at most; the next page is what was created
    /// before the oldest of this one.
    async fn list_all(&self, path: &str) -> Result<Vec<Listed>, CarrierError> {
        let mut out: Vec<Listed> = Vec::new();
        let mut before: Option<String> = None;
        for _ in 0..LIST_PAGES {
            let page = self.list_page(path, before.as_deref()).await?;
            let full = page.len() >= 1000;
            let oldest = page.iter().filter_map(|l| l.created_at.clone()).min();
            out.extend(page);
            match (full, oldest) {
                (true, Some(o)) => before = Some(o),
                (true, None) => return Err(CarrierError::Transient(format!("vapi listed a full page of {path} without createdAt"))),
                (false, _) => return Ok(out),
            }
        }
        Err(CarrierError::Transient(format!("vapi listed more than {LIST_PAGES} pages of {path}")))
    }
}

#[async_trait]
impl VoiceAi for VapiClient {
    fn name(&self) -> &'static str {
        "vapi"
    }

    async fn create_assistant(&self, spec: &AssistantSpec) -> Result<String, CarrierError> {
        let res = self.send(self.http.post(self.url("/assistant")).json(&Self::assistant_body(spec, true))).await?;
        let created: Created = res.json().map_err(|e| CarrierError::Transient(format!("vapi answer unreadable: {}", e)))?;
        Ok(created.id)
    }

    async fn find_assistant(&self, local_id: AssistantId) -> Result<Option<String>, CarrierError> {
        let ours = local_id.to_string();
        Ok(self
            .list("/assistant")
            .await?
            .into_iter()
            .find(|a| a.metadata.as_ref().and_then(|m| m["patchbay_assistant_id"].as_str()) == Some(ours.as_str()))
            .map(|a| a.id))
    }

    async fn update_assistant(&self, id: &str, spec: &AssistantSpec) -> Result<(), CarrierError> {
        self.send(self.http.patch(self.url(&format!("/assistant/{id}"))).json(&Self::assistant_body(spec, false))).await?;
        Ok(())
    }

    async fn delete_assistant(&self, id: &str) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/assistant/{id}")))).await?;
        Ok(())
    }

    async fn import_number(&self, import: &NumberImport) -> Result<String, CarrierError> {
        // Sandbox numbers are refused here: they exist only locally.
        let mut body = json!({"provider": provider(import.carrier)?, "number": import.e164.as_str(), "assistantId": import.assistant_id});
        if import.carrier == CarrierName::Telnyx {
            let credential = self.import.telnyx_credential_id.as_deref().ok_or_else(|| {
                CarrierError::NotConfigured("VAPI_TELNYX_CREDENTIAL_ID is not set: Telnyx numbers cannot be imported into Vapi".into())
            })?;
            body["credentialId"] = json!(credential);
        } else {
            let (sid, token) =
                self.import.twilio.as_ref().ok_or_else(|| {
                    CarrierError::NotConfigured("no Twilio credentials: Twilio numbers cannot be imported into Vapi".into())
                })?;
            body["twilioAccountSid"] = json!(sid);
            body["twilioAuthToken"] = json!(token.expose_secret());
        }
        let res = self.send(self.http.post(self.url("/phone-number")).json(&body)).await?;
        let created: Created = res.json().map_err(|e| CarrierError::Transient(format!("vapi answer unreadable: {}", e)))?;
        Ok(created.id)
    }

    async fn find_number(&self, e164: &E164) -> Result<Option<String>, CarrierError> {
        Ok(self.list("/phone-number").await?.into_iter().find(|n| n.number.as_deref() == Some(e164.as_str())).map(|n| n.id))
    }

    async fn attach_number(&self, id: &str, carrier: CarrierName, assistant_id: &str) -> Result<(), CarrierError> {
        let body = json!({"provider": provider(carrier)?, "assistantId": assistant_id});
        self.send(self.http.patch(self.url(&format!("/phone-number/{id}"))).json(&body)).await?;
        Ok(())
    }

    async fn remove_number(&self, id: &str) -> Result<(), CarrierError> {
        self.send(self.http.delete(self.url(&format!("/phone-number/{id}")))).await?;
        Ok(())
    }

    async fn list_assistants(&self) -> Result<Vec<ListedAssistant>, CarrierError> {
        Ok(self
            .list_all("/assistant")
            .await?
            .into_iter()
            .map(|a| ListedAssistant {
                patchbay_id: a.metadata.as_ref().and_then(|m| m["patchbay_assistant_id"].as_str()).map(str::to_owned),
                name: a.name.unwrap_or_default(),
                id: a.id,
            })
            .collect())
    }

    async fn list_numbers(&self) -> Result<Vec<ListedVoiceNumber>, CarrierError> {
        Ok(self
            .list_all("/phone-number")
            .await?
            .into_iter()
            .map(|n| ListedVoiceNumber {
                e164: n.number.unwrap_or_default(),
                assistant_id: n.assistant_id.filter(|a| !a.is_empty()),
                id: n.id,
            })
            .collect())
    }
}
