//! Adapters: everything that touches AWS or HTTP. The domain's ports are implemented here, and the
//! glue every function shares (configuration, clients built once per cold start, auth claims,
//! problem+json errors) lives here too.

pub mod carrier;
pub mod config;
pub mod delivery;
pub mod dynamo;
pub mod eventbridge;
pub mod http;
pub mod ondemand;
pub mod outbound;
pub mod providers;
pub mod secrets;
pub mod sqs;
pub mod telemetry;
pub mod tls;
pub mod voice_ai;
pub mod webhooks;
pub mod wire;
pub mod wiring;

pub use config::{CarrierKind, Config, ConfigError, VoiceAiKind};
pub use dynamo::DynamoStore;
pub use sqs::SqsQueue;
pub use wiring::Wiring;
