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
    /// `EVENT_BUS_NAME`: the custom EventBridge bus the outbox relay publishes events to.
    pub event_bus_name: Option<String>,
    /// `WEBHOOK_QUEUE_URL`: the queue the bus's webhook rule feeds (replays are put there too).
    pub webhook_queue_url: Option<String>,
    /// `WEBHOOK_SECRET_PREFIX` (default `patchbay/webhooks/`): endpoints' signing secrets are the
    /// secrets under it, one per endpoint.
    pub webhook_secret_prefix: String,
    /// `PATCHBAY_WEBHOOKS_ALLOW_LOOPBACK` (`true` only on the local stack): endpoint URLs may be
    /// `http` to a loopback address. Never set on AWS.
    pub webhooks_allow_loopback: bool,
    /// `WEBHOOK_RETRY_SCHEDULE`: seconds between attempts, comma-separated (default the Standard
    /// Webhooks schedule, 5 s to 10 h; tests shorten it).
    pub webhook_schedule: Option<Vec<Duration>>,
    /// `WEBHOOK_MAX_RECEIVE_COUNT` (default 8): the webhook queue's redrive count.
    pub webhook_max_receive_count: u32,
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
            event_bus_name: get("EVENT_BUS_NAME").filter(|v| !v.is_empty()),
            webhook_queue_url: get("WEBHOOK_QUEUE_URL").filter(|v| !v.is_empty()),
            webhook_secret_prefix: get("WEBHOOK_SECRET_PREFIX")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "patchbay/webhooks/".to_owned()),
            webhooks_allow_loopback: get("PATCHBAY_WEBHOOKS_ALLOW_LOOPBACK").as_deref() == Some("true"),
            webhook_schedule: match get("WEBHOOK_RETRY_SCHEDULE").filter(|v| !v.is_empty()) {
                None => None,
                Some(v) => {
                    Some(v.split(',').map(|s| s.trim().parse::<u64>().map(Duration::from_secs)).collect::<Result<Vec<_>, _>>().map_err(
                        |_| ConfigError::Invalid { name: "WEBHOOK_RETRY_SCHEDULE", why: format!("{v:?} is not seconds, comma-separated") },
                    )?)
                }
            },
            webhook_max_receive_count: number("WEBHOOK_MAX_RECEIVE_COUNT", 8)? as u32,
        })
    }
}

/// The AWS SDK configuration of a Lambda function, built once from its environment: the region
/// (`AWS_REGION`), the execution role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`: Lambda sets them for the sandbox's lifetime), `AWS_ENDPOINT_URL` (the local
/// emulator) and `AWS_MAX_ATTEMPTS`, on the one TLS stack (`tls`). What aws-config's loader would
/// produce on Lambda, without its providers for profiles, SSO, STS web identity, IMDS and ECS, which a
/// Lambda never uses and which were a twelfth of each binary (`scripts/bench cold`).
pub fn aws_sdk_config() -> Result<aws_types::SdkConfig, ConfigError> {
    aws_sdk_config_from(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

pub fn aws_sdk_config_from(get: impl Fn(&str) -> Option<String>) -> Result<aws_types::SdkConfig, ConfigError> {
    use aws_credential_types::{provider::SharedCredentialsProvider, Credentials};
    use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
    use aws_types::region::Region;

    let need = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
    let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")).ok_or(ConfigError::Missing("AWS_REGION"))?;
    let credentials =
        Credentials::new(need("AWS_ACCESS_KEY_ID")?, need("AWS_SECRET_ACCESS_KEY")?, get("AWS_SESSION_TOKEN"), None, "Environment");
    let mut retry = aws_smithy_types::retry::RetryConfig::standard();
    if let Some(raw) = get("AWS_MAX_ATTEMPTS") {
        let attempts = raw
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(ConfigError::Invalid { name: "AWS_MAX_ATTEMPTS", why: format!("{raw:?} is not a positive number") })?;
        retry = retry.with_max_attempts(attempts);
    }
    let mut builder = aws_types::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(crate::tls::aws_http_client())
        .retry_config(retry)
        // aws-config's default: 3.1 s to connect, no limit on a whole call (the functions' own
        // deadlines and the SDK's retries bound it).
        .timeout_config(aws_smithy_types::timeout::TimeoutConfig::builder().connect_timeout(std::time::Duration::from_millis(3100)).build())
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .identity_cache(aws_smithy_runtime::client::identity::IdentityCache::lazy().build());
    if let Some(sleep) = aws_smithy_async::rt::sleep::default_async_sleep() {
        builder = builder.sleep_impl(sleep);
    }
    if let Some(endpoint) = get("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_sdk_configuration_comes_from_the_lambda_environment() {
        let lambda: HashMap<&str, &str> = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_MAX_ATTEMPTS", "5"),
        ]
        .into();
        let sdk = aws_sdk_config_from(|k| lambda.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), None);
        assert_eq!(sdk.retry_config().map(|r| r.max_attempts()), Some(5));
        assert!(sdk.credentials_provider().is_some() && sdk.http_client().is_some() && sdk.sleep_impl().is_some());
        for missing in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            let err = aws_sdk_config_from(|k| (k != missing).then(|| lambda.get(k).map(|v| v.to_string())).flatten()).unwrap_err();
            assert!(err.to_string().contains(missing), "{err}");
        }
        let err = aws_sdk_config_from(|k| if k == "AWS_MAX_ATTEMPTS" { Some("0".into()) } else { lambda.get(k).map(|v| v.to_string()) })
            .unwrap_err();
        assert!(err.to_string().contains("AWS_MAX_ATTEMPTS"), "{err}");
    }

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
