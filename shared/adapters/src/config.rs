//! Configuration from the environment, read once per cold start. Every variable is named in the
//! README and set by the SAM template (or by the local stack).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {why}")]
    Invalid { name: &'static str, why: String },
}

/// Which carrier mirrors messaging profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierKind {
    /// A deterministic simulated carrier: local runs, demos, tests.
    Sandbox,
    Telnyx,
}

/// Which voice AI runs assistants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceAiKind {
    /// A deterministic stand-in for Vapi: local runs, demos, tests.
    Sandbox,
    Vapi,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`: the single DynamoDB table.
    pub table_name: String,
    /// `WORK_QUEUE_URL`: the SQS FIFO work queue.
    pub work_queue_url: String,
    /// `CARRIER_SECRET_ID`: the Secrets Manager secret with carrier credentials (name or ARN).
    pub carrier_secret_id: Option<String>,
    /// `PATCHBAY_CARRIER`: `sandbox` or `telnyx` (default `sandbox`).
    pub carrier: CarrierKind,
    /// `TELNYX_BASE_URL` (default `https://api.telnyx.com/v2`).
    pub telnyx_base_url: String,
    /// `TWILIO_BASE_URL` (default `https://api.twilio.com`).
    pub twilio_base_url: String,
    /// `PATCHBAY_PUBLIC_URL`: the public base URL of the webhook receiver (Twilio's SmsUrl is built on it).
    pub public_url: Option<String>,
    /// `CARRIER_TIMEOUT_MS` (default 8000): one carrier call, connect to last byte.
    pub carrier_timeout: Duration,
    /// `WORKER_MAX_RECEIVE_COUNT` (default 5): the queue's redrive count, so the worker knows a last attempt.
    pub worker_max_receive_count: u32,
    /// `SIP_SECRET_PREFIX` (default `patchbay/sip/`): SIP passwords are the secrets under it, one per connection.
    pub sip_secret_prefix: String,
    /// `PATCHBAY_VOICE_AI`: `sandbox` or `vapi` (default `sandbox`).
    pub voice_ai: VoiceAiKind,
    /// `VAPI_BASE_URL` (default `https://api.vapi.ai`).
    pub vapi_base_url: String,
    /// `VAPI_TELNYX_CREDENTIAL_ID`: the Vapi credential Telnyx numbers are imported with.
    pub vapi_telnyx_credential_id: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |k: &'static str| get(k).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(k));
        let carrier = match get("PATCHBAY_CARRIER").as_deref().unwrap_or("sandbox") {
            "sandbox" => CarrierKind::Sandbox,
            "telnyx" => CarrierKind::Telnyx,
            other => {
                return Err(ConfigError::Invalid { name: "PATCHBAY_CARRIER", why: format!("{other:?} is not one of sandbox, telnyx") })
            }
        };
        let voice_ai = match get("PATCHBAY_VOICE_AI").as_deref().unwrap_or("sandbox") {
            "sandbox" => VoiceAiKind::Sandbox,
            "vapi" => VoiceAiKind::Vapi,
            other => return Err(ConfigError::Invalid { name: "PATCHBAY_VOICE_AI", why: format!("{other:?} is not one of sandbox, vapi") }),
        };
        let number = |k: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| ConfigError::Invalid { name: k, why: format!("{v:?} is not a whole number") }),
            }
        };
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            work_queue_url: required("WORK_QUEUE_URL")?,
            carrier_secret_id: get("CARRIER_SECRET_ID").filter(|v| !v.is_empty()),
            carrier,
            telnyx_base_url: get("TELNYX_BASE_URL").unwrap_or_else(|| "https://api.telnyx.com/v2".to_owned()),
            twilio_base_url: get("TWILIO_BASE_URL").unwrap_or_else(|| "https://api.twilio.com".to_owned()),
            public_url: get("PATCHBAY_PUBLIC_URL").filter(|v| !v.is_empty()),
            carrier_timeout: Duration::from_millis(number("CARRIER_TIMEOUT_MS", 8000)?),
            worker_max_receive_count: number("WORKER_MAX_RECEIVE_COUNT", 5)? as u32,
            sip_secret_prefix: get("SIP_SECRET_PREFIX").filter(|v| !v.is_empty()).unwrap_or_else(|| "patchbay/sip/".to_owned()),
            voice_ai,
            vapi_base_url: get("VAPI_BASE_URL").filter(|v| !v.is_empty()).unwrap_or_else(|| "https://api.vapi.ai".to_owned()),
            vapi_telnyx_credential_id: get("VAPI_TELNYX_CREDENTIAL_ID").filter(|v| !v.is_empty()),
        })
    }
}

/// The AWS SDK configuration, loaded once, on the one TLS stack (`tls`). `AWS_ENDPOINT_URL` (set by
/// the local stack) points every client at the emulator.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(crate::tls::aws_http_client()).load().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn names_the_missing_or_bad_variable() {
        let env: HashMap<&str, &str> = [("TABLE_NAME", "t")].into();
        let err = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
        assert!(err.to_string().contains("WORK_QUEUE_URL"), "{err}");
        let env: HashMap<&str, &str> = [("TABLE_NAME", "t"), ("WORK_QUEUE_URL", "q"), ("PATCHBAY_CARRIER", "pigeon")].into();
        let err = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
        assert!(err.to_string().contains("PATCHBAY_CARRIER"), "{err}");
        let env: HashMap<&str, &str> = [("TABLE_NAME", "t"), ("WORK_QUEUE_URL", "q")].into();
        let c = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.carrier, CarrierKind::Sandbox);
        assert_eq!(c.worker_max_receive_count, 5);
    }
}
