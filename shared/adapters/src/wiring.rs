//! One builder for what every function is made of: the store, the work queue, the carriers and the
//! webhook keys, built once per cold start. Each function's `main`, the local stack and the tests
//! build their handlers from a `Wiring` (`XApi::new(&wiring)`, `Worker::new(&wiring)`), so adding a
//! port is one field here and one line in the handlers that use it.

use std::sync::Arc;

use aws_config::SdkConfig;
use patchbay_domain::assistant_ops::VapiServer;
use patchbay_domain::dialer_ops::Dialers;
use patchbay_domain::number_ops::Carriers;
use patchbay_domain::ports::{ProfileCarrier, SipSecrets, VoiceAi};

use crate::carrier::{self, SandboxCarrier, SandboxDialer};
use crate::secrets::{CarrierSecrets, SipSecretStore};
use crate::voice_ai::SandboxVoiceAi;
use crate::webhooks::WebhookKeys;
use crate::{config, Config, DynamoStore, SqsQueue};

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Clone)]
pub struct Wiring {
    pub config: Config,
    pub store: Arc<DynamoStore>,
    pub queue: Arc<SqsQueue>,
    /// The number carriers (search, buy, release, send).
    pub carriers: Carriers,
    /// The carrier that mirrors messaging profiles.
    pub profile_carrier: Arc<dyn ProfileCarrier>,
    /// What webhooks are verified with.
    pub webhooks: WebhookKeys,
    /// The dialer carriers (credential connections, WebRTC tokens).
    pub dialers: Dialers,
    /// Where SIP passwords live.
    pub sip_secrets: Arc<dyn SipSecrets>,
    /// Vapi, or the sandbox voice AI.
    pub voice_ai: Arc<dyn VoiceAi>,
    /// Where Vapi sends call reports (`PATCHBAY_PUBLIC_URL`) and the secret it sends with them.
    pub vapi_server: VapiServer,
}

/// Whether a function calls carriers (and so reads the carrier secret at cold start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// The store and the queue are all it uses: no Secrets Manager call, no secret permission.
    None,
    /// Carrier clients and the Twilio webhook token from the carrier secret.
    Carrier,
}

impl Wiring {
    /// Clients on `sdk` for `config`, with the sandbox as the only carrier and no webhook keys.
    pub fn new(sdk: &SdkConfig, config: Config) -> Self {
        Self {
            store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table_name)),
            queue: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.work_queue_url)),
            carriers: Carriers {
                sandbox: Some(Arc::new(SandboxCarrier::default())),
                default: Some(patchbay_domain::CarrierName::Sandbox),
                ..Default::default()
            },
            profile_carrier: Arc::new(SandboxCarrier::default()),
            webhooks: WebhookKeys::default(),
            dialers: Dialers {
                sandbox: Some(Arc::new(SandboxDialer::default())),
                default: Some(patchbay_domain::CarrierName::Sandbox),
                ..Default::default()
            },
            sip_secrets: Arc::new(SipSecretStore::new(aws_sdk_secretsmanager::Client::new(sdk), &config.sip_secret_prefix)),
            voice_ai: Arc::new(SandboxVoiceAi::default()),
            vapi_server: VapiServer { url: config.public_url.clone(), secret: None },
            config,
        }
    }

    /// What a Lambda function runs with: the configuration and AWS SDK settings from the
    /// environment, and with `Secrets::Carrier` the carriers and webhook keys.
    pub async fn from_env(secrets: Secrets) -> Result<Self, BoxError> {
        let config = Config::from_env()?;
        let sdk = config::aws_sdk_config().await;
        let wiring = Self::new(&sdk, config);
        match secrets {
            Secrets::None => Ok(wiring),
            Secrets::Carrier => wiring.load_carriers(&sdk).await,
        }
    }

    /// Reads the carrier secret the configuration names and builds the carriers, the profile carrier
    /// and the webhook keys (`TELNYX_PUBLIC_KEY` from the environment, the Twilio token from the secret).
    pub async fn load_carriers(self, sdk: &SdkConfig) -> Result<Self, BoxError> {
        let secrets = CarrierSecrets::load_configured(sdk, &self.config).await?;
        let carriers = carrier::number_carriers(&self.config, &secrets)?;
        let profile_carrier = carrier::profile_carrier(&self.config, &secrets)?;
        let dialers = carrier::dialers(&self.config, &secrets)?;
        let voice_ai = carrier::voice_ai(&self.config, &secrets)?;
        let vapi_server = VapiServer {
            url: self.config.public_url.clone(),
            secret: secrets.vapi_webhook_secret.as_ref().map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned()),
        };
        let telnyx = std::env::var("TELNYX_PUBLIC_KEY").ok().filter(|k| !k.is_empty());
        let webhooks = WebhookKeys::new(telnyx.as_deref(), secrets.twilio_auth_token.clone(), self.config.public_url.clone())?
            .with_vapi_secret(secrets.vapi_webhook_secret.clone());
        Ok(Self { carriers, profile_carrier, webhooks, dialers, voice_ai, vapi_server, ..self })
    }

    pub fn with_carriers(self, carriers: Carriers) -> Self {
        Self { carriers, ..self }
    }

    pub fn with_profile_carrier(self, profile_carrier: Arc<dyn ProfileCarrier>) -> Self {
        Self { profile_carrier, ..self }
    }

    pub fn with_voice_ai(self, voice_ai: Arc<dyn VoiceAi>) -> Self {
        Self { voice_ai, ..self }
    }

    pub fn with_dialers(self, dialers: Dialers) -> Self {
        Self { dialers, ..self }
    }

    pub fn with_webhooks(self, webhooks: WebhookKeys) -> Self {
        Self { webhooks, ..self }
    }

    /// The queue's `maxReceiveCount`: the worker's delivery with this count is the last one.
    pub fn max_receive_count(&self) -> u32 {
        self.config.worker_max_receive_count
    }
}
