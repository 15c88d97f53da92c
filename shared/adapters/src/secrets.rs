//! Carrier credentials from Secrets Manager, loaded once per cold start and held as secrets: they
//! are never logged, never formatted with `{:?}` into anything a user sees.

use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use patchbay_domain::dialer::{PasswordVersion, SecretError, SipPassword, SipSecrets};
use patchbay_domain::events::{EndpointSecrets, SecretStoreError, SigningKeys, WebhookSecret};
use patchbay_domain::kernel::ids::EndpointId;
use patchbay_domain::ConnectionId;
use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("could not read secret {id}: {source}")]
    Fetch {
        id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {id} is not the expected JSON object ({why})")]
    Shape { id: String, why: String },
}

/// What the carrier secret holds. Every field is optional: a deployment sets what it uses.
#[derive(Default, Deserialize)]
pub struct CarrierSecrets {
    #[serde(default)]
    pub telnyx_api_key: Option<SecretString>,
    /// Not a secret by itself, but kept beside its token.
    #[serde(default)]
    pub twilio_account_sid: Option<String>,
    #[serde(default)]
    pub twilio_auth_token: Option<SecretString>,
    /// Vapi's private API key.
    #[serde(default)]
    pub vapi_api_key: Option<SecretString>,
    /// What Vapi sends back in `X-Vapi-Secret` on its webhooks (set on every assistant's server).
    #[serde(default)]
    pub vapi_webhook_secret: Option<SecretString>,
}

impl std::fmt::Debug for CarrierSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierSecrets")
            .field("telnyx_api_key", &self.telnyx_api_key.as_ref().map(|_| "[set]"))
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_auth_token", &self.twilio_auth_token.as_ref().map(|_| "[set]"))
            .field("vapi_api_key", &self.vapi_api_key.as_ref().map(|_| "[set]"))
            .field("vapi_webhook_secret", &self.vapi_webhook_secret.as_ref().map(|_| "[set]"))
            .finish()
    }
}

impl CarrierSecrets {
    pub fn from_json(id: &str, json: &str) -> Result<Self, SecretsError> {
        // serde's message can quote the input; keep only its position so no secret reaches a log.
        serde_json::from_str::<CarrierSecrets>(json).map_err(|e| SecretsError::Shape {
            id: id.to_owned(),
            why: format!("{:?} at line {} column {}", e.classify(), e.line(), e.column()),
        })
    }

    /// The secret `CARRIER_SECRET_ID` names, or no credentials when it names none.
    pub async fn load_configured(aws: &aws_types::SdkConfig, config: &crate::Config) -> Result<Self, SecretsError> {
        match &config.carrier_secret_id {
            Some(id) => Self::load(&aws_sdk_secretsmanager::Client::new(aws), id).await,
            None => Ok(Self::default()),
        }
    }

    pub async fn load(client: &aws_sdk_secretsmanager::Client, id: &str) -> Result<Self, SecretsError> {
        let out = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| SecretsError::Fetch { id: id.to_owned(), source: Box::new(e.into_service_error()) })?;
        match out.secret_string() {
            Some(s) => Self::from_json(id, s),
            None => Err(SecretsError::Shape { id: id.to_owned(), why: "no SecretString".into() }),
        }
    }
}

/// SIP passwords in Secrets Manager: one secret per connection, named `{prefix}{connection id}` under
/// the stack's own prefix (the template grants the dialer function that prefix only).
#[derive(Clone)]
pub struct SipSecretStore {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
}

impl SipSecretStore {
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: &str) -> Self {
        Self { client, prefix: prefix.to_owned() }
    }

    fn name(&self, id: ConnectionId) -> String {
        format!("{}{id}", self.prefix)
    }
}

fn secret_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> SecretError {
    SecretError(Box::new(e))
}

/// The label a rotation's new version carries until the worker has pushed it (then `AWSCURRENT`).
const STAGED: &str = "PATCHBAY_STAGED";

#[async_trait::async_trait]
impl SipSecrets for SipSecretStore {
    async fn create_password(&self, id: ConnectionId, password: &SipPassword) -> Result<(), SecretError> {
        let name = self.name(id);
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description("Patchbay SIP connection password")
            .secret_string(password.expose())
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                // The connection's id is new, so this is our own create answered twice (its
                // answer lost): put the value over it, current.
                CreateSecretError::ResourceExistsException(_) => self
                    .client
                    .put_secret_value()
                    .secret_id(&name)
                    .secret_string(password.expose())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| secret_error(e.into_service_error())),
                other => Err(secret_error(other)),
            },
        }
    }

    async fn stage_password(&self, id: ConnectionId, version: &PasswordVersion, password: &SipPassword) -> Result<bool, SecretError> {
        // The version id is ours (the client request token), so the record can name it before the
        // worker reads it, and a repeat of this call is the same version. Never re-created: a
        // connection without its secret was deleted.
        let put = self
            .client
            .put_secret_value()
            .secret_id(self.name(id))
            .client_request_token(version.as_str())
            .secret_string(password.expose())
            .version_stages(STAGED)
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) => match e.into_service_error() {
                PutSecretValueError::ResourceNotFoundException(_) => Ok(false),
                other => Err(secret_error(other)),
            },
        }
    }

    async fn promote_password(&self, id: ConnectionId, version: &PasswordVersion) -> Result<(), SecretError> {
        let name = self.name(id);
        let current = match self.client.describe_secret().secret_id(&name).send().await {
            Ok(d) => d
                .version_ids_to_stages()
                .and_then(|m| m.iter().find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT")).map(|(v, _)| v.clone())),
            Err(e) => return Err(secret_error(e.into_service_error())),
        };
        if current.as_deref() == Some(version.as_str()) {
            return Ok(());
        }
        self.client
            .update_secret_version_stage()
            .secret_id(&name)
            .version_stage("AWSCURRENT")
            .move_to_version_id(version.as_str())
            .set_remove_from_version_id(current)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| secret_error(e.into_service_error()))
    }

    async fn get_password(&self, id: ConnectionId, version: Option<&PasswordVersion>) -> Result<Option<SipPassword>, SecretError> {
        let req = self.client.get_secret_value().secret_id(self.name(id)).set_version_id(version.map(|v| v.as_str().to_owned()));
        match req.send().await {
            Ok(out) => Ok(out.secret_string().map(|s| SipPassword::from_stored(s.to_owned()))),
            Err(e) => match e.into_service_error() {
                GetSecretValueError::ResourceNotFoundException(_) => Ok(None),
                other => Err(secret_error(other)),
            },
        }
    }

    async fn delete_password(&self, id: ConnectionId) -> Result<(), SecretError> {
        match self.client.delete_secret().secret_id(self.name(id)).force_delete_without_recovery(true).send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                DeleteSecretError::ResourceNotFoundException(_) => Ok(()),
                other => Err(secret_error(other)),
            },
        }
    }
}

/// Webhook endpoints' signing secrets, one Secrets Manager secret each (`{prefix}{endpoint id}`), its
/// value `{"current": "whsec_…", "previous": "whsec_…", "previous_until": epoch seconds}`.
pub struct WebhookSecretStore {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredKeys {
    current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_until: Option<i64>,
}

impl WebhookSecretStore {
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: &str) -> Self {
        Self { client, prefix: prefix.to_owned() }
    }

    fn name(&self, id: EndpointId) -> String {
        format!("{}{id}", self.prefix)
    }

    async fn read(&self, id: EndpointId) -> Result<Option<StoredKeys>, SecretStoreError> {
        match self.client.get_secret_value().secret_id(self.name(id)).send().await {
            Ok(out) => match out.secret_string() {
                Some(s) => serde_json::from_str(s).map(Some).map_err(|_| SecretStoreError("a webhook secret is not readable".into())),
                None => Ok(None),
            },
            Err(e) => match e.into_service_error() {
                GetSecretValueError::ResourceNotFoundException(_) => Ok(None),
                other => Err(SecretStoreError(other.to_string())),
            },
        }
    }

    async fn put(&self, id: EndpointId, keys: &StoredKeys) -> Result<(), SecretStoreError> {
        let value = serde_json::to_string(keys).map_err(|e| SecretStoreError(e.to_string()))?;
        self.client
            .put_secret_value()
            .secret_id(self.name(id))
            .secret_string(value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| SecretStoreError(e.into_service_error().to_string()))
    }
}

#[async_trait::async_trait]
impl EndpointSecrets for WebhookSecretStore {
    async fn create_secret(&self, id: EndpointId, secret: &WebhookSecret) -> Result<(), SecretStoreError> {
        let keys = StoredKeys { current: secret.expose().to_owned(), previous: None, previous_until: None };
        let value = serde_json::to_string(&keys).map_err(|e| SecretStoreError(e.to_string()))?;
        let created = self
            .client
            .create_secret()
            .name(self.name(id))
            .description("Patchbay webhook endpoint signing secret")
            .secret_string(value)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                // The endpoint's id is new: our own create answered twice.
                CreateSecretError::ResourceExistsException(_) => self.put(id, &keys).await,
                other => Err(SecretStoreError(other.to_string())),
            },
        }
    }

    async fn rotate_secret(&self, id: EndpointId, secret: &WebhookSecret, previous_until: OffsetDateTime) -> Result<(), SecretStoreError> {
        let Some(old) = self.read(id).await? else {
            return Err(SecretStoreError("the endpoint has no secret".into()));
        };
        let keys = StoredKeys {
            current: secret.expose().to_owned(),
            previous: Some(old.current),
            previous_until: Some(previous_until.unix_timestamp()),
        };
        self.put(id, &keys).await
    }

    async fn signing_keys(&self, id: EndpointId) -> Result<Option<SigningKeys>, SecretStoreError> {
        Ok(self.read(id).await?.map(|k| SigningKeys {
            current: WebhookSecret::from_stored(k.current),
            previous: match (k.previous, k.previous_until.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())) {
                (Some(p), Some(until)) => Some((WebhookSecret::from_stored(p), until)),
                _ => None,
            },
        }))
    }

    async fn delete_secret(&self, id: EndpointId) -> Result<(), SecretStoreError> {
        match self.client.delete_secret().secret_id(self.name(id)).force_delete_without_recovery(true).send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                DeleteSecretError::ResourceNotFoundException(_) => Ok(()),
                other => Err(SecretStoreError(other.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn parses_and_never_prints_the_key() {
        let s = CarrierSecrets::from_json("x", r#"{"telnyx_api_key":"KEY0123"}"#).unwrap();
        assert_eq!(s.telnyx_api_key.as_ref().unwrap().expose_secret(), "KEY0123");
        assert!(!format!("{s:?}").contains("KEY0123"));
        assert!(CarrierSecrets::from_json("x", "{}").unwrap().telnyx_api_key.is_none());
        let err = CarrierSecrets::from_json("x", r#"{"telnyx_api_key": 12345678}"#).unwrap_err().to_string();
        assert!(!err.contains("12345678"), "{err}");
    }
}
