//! Carrier credentials from Secrets Manager, loaded once per cold start and held as secrets: they
//! are never logged, never formatted with `{:?}` into anything a user sees.

use secrecy::SecretString;
use serde::Deserialize;

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
}

impl std::fmt::Debug for CarrierSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierSecrets")
            .field("telnyx_api_key", &self.telnyx_api_key.as_ref().map(|_| "[set]"))
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_auth_token", &self.twilio_auth_token.as_ref().map(|_| "[set]"))
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
    pub async fn load_configured(aws: &aws_config::SdkConfig, config: &crate::Config) -> Result<Self, SecretsError> {
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
