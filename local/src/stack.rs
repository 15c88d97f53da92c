//! Creating the SAM template's resources in the emulator (`local/stack.py deploy`, which translates the
//! template and hands it to moto's CloudFormation) and the SDK configuration that points at it.

use std::process::Command;

use aws_credential_types::Credentials;
use aws_types::region::Region;
use serde::Deserialize;

use crate::emulator::{python, repo_root, Emulator, EmulatorError};

/// What the stack created, by the names the template gives them.
#[derive(Debug, Clone, Deserialize)]
pub struct StackInfo {
    pub stack: String,
    pub table: String,
    pub work_queue_url: String,
    pub dlq_url: String,
    /// The table's stream (the outbox relay reads it).
    pub stream_arn: String,
    pub secret_id: String,
    /// The custom event bus (the relay publishes every event to it).
    pub event_bus_name: String,
    /// The queue the bus's webhook rule feeds.
    pub webhook_queue_url: String,
    pub resources: Vec<String>,
}

pub struct StackOptions {
    /// Port of the emulator; 0 picks a free one.
    pub emulator_port: u16,
    pub stack_name: String,
    /// What the local stack stores in the carrier secret (JSON).
    pub secret_json: Option<String>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self { emulator_port: 0, stack_name: "patchbay-local".into(), secret_json: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error("local/stack.py deploy failed: {0}")]
    Deploy(String),
}

/// A running emulator with the template's resources in it.
pub struct LocalStack {
    pub emulator: Emulator,
    pub info: StackInfo,
    pub sdk: aws_types::SdkConfig,
}

impl LocalStack {
    pub async fn start(opts: StackOptions) -> Result<Self, StackError> {
        let emulator = Emulator::start(opts.emulator_port)?;
        let mut cmd = Command::new(python());
        cmd.arg(repo_root().join("local/stack.py")).args(["deploy", "--endpoint", &emulator.endpoint(), "--stack", &opts.stack_name]);
        if let Some(secret) = &opts.secret_json {
            cmd.args(["--secret-json", secret]);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .map_err(|e| StackError::Deploy(e.to_string()))?
            .map_err(|e| StackError::Deploy(e.to_string()))?;
        if !out.status.success() {
            return Err(StackError::Deploy(String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or("");
        let info: StackInfo = serde_json::from_str(line).map_err(|e| StackError::Deploy(format!("{e}: {stdout}")))?;
        let sdk = sdk_config(&emulator.endpoint()).await;
        Ok(Self { emulator, info, sdk })
    }

    /// The environment a function would see on Lambda (the template's variables), for this stack.
    pub fn function_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TABLE_NAME", self.info.table.clone()),
            ("WORK_QUEUE_URL", self.info.work_queue_url.clone()),
            ("CARRIER_SECRET_ID", self.info.secret_id.clone()),
            ("EVENT_BUS_NAME", self.info.event_bus_name.clone()),
            ("WEBHOOK_QUEUE_URL", self.info.webhook_queue_url.clone()),
            // Local receivers listen on http://127.0.0.1; never set on AWS.
            ("PATCHBAY_WEBHOOKS_ALLOW_LOOPBACK", std::env::var("PATCHBAY_WEBHOOKS_ALLOW_LOOPBACK").unwrap_or_else(|_| "true".into())),
        ]
    }

    /// The functions' configuration: the template's environment for this stack, then the process's.
    pub fn config(&self) -> Result<patchbay_adapters::Config, patchbay_adapters::ConfigError> {
        let overrides = self.function_env();
        patchbay_adapters::Config::from_lookup(|k| {
            overrides.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()).or_else(|| std::env::var(k).ok())
        })
    }
}

/// SDK configuration for the emulator: fixed test credentials, us-east-1, the emulator's endpoint,
/// the functions' HTTP client.
pub async fn sdk_config(endpoint: &str) -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(patchbay_adapters::tls::aws_http_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "patchbay-local"))
        .load()
        .await
}
