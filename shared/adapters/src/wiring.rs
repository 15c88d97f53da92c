//! One builder for what every function is made of: the store, the work queue, the carriers and the
//! webhook keys, built once per cold start. Each function's `main`, the local stack and the tests
//! build their handlers from a `Wiring` (`XApi::new(&wiring)`, `Worker::new(&wiring)`), so adding a
//! port is one field here and one line in the handlers that use it.

use std::sync::{Arc, OnceLock};

use aws_types::SdkConfig;
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

/// Every port a function may use. The store, the queue and the webhook keys are built with it; the
/// carriers, the dialers, the voice AI and the SIP secret store when a handler first asks for them
/// (the sandbox's, unless they were built from the carrier secret: `load_carriers`, or
/// `load_secret` and the `*_from_secret` calls). A function links only the adapters its handlers ask
/// for: a function that never calls `dialers()` does not carry the dialer clients in its binary
/// (`scripts/bench cold` measures the sizes). A function whose handler uses a carrier port must build
/// it from the secret in its `main`, or it gets the sandbox's.
#[derive(Clone)]
pub struct Wiring {
    pub config: Config,
    pub store: Arc<DynamoStore>,
    pub queue: Arc<SqsQueue>,
    /// What webhooks are verified with.
    pub webhooks: WebhookKeys,
    /// Where Vapi sends call reports (`PATCHBAY_PUBLIC_URL`) and the secret it sends with them.
    pub vapi_server: VapiServer,
    sdk: SdkConfig,
    /// The carrier secret, once `load_secret` read it.
    secrets: Option<Arc<CarrierSecrets>>,
    carriers: OnceLock<Carriers>,
    profile_carrier: OnceLock<Arc<dyn ProfileCarrier>>,
    dialers: OnceLock<Dialers>,
    sip_secrets: OnceLock<Arc<dyn SipSecrets>>,
    voice_ai: OnceLock<Arc<dyn VoiceAi>>,
}

impl Wiring {
    /// The store and the queue on `sdk` for `config`; every other port is built when first asked for.
    fn base(sdk: &SdkConfig, config: Config) -> Self {
        Self {
            store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table_name)),
            queue: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.work_queue_url)),
            webhooks: WebhookKeys::default(),
            vapi_server: VapiServer { url: config.public_url.clone(), secret: None },
            sdk: sdk.clone(),
            secrets: None,
            carriers: OnceLock::new(),
            profile_carrier: OnceLock::new(),
            dialers: OnceLock::new(),
            sip_secrets: OnceLock::new(),
            voice_ai: OnceLock::new(),
            config,
        }
    }

    /// Every port built now, the sandbox as the only carrier and no webhook keys: the local stack and
    /// the tests, whose handlers share one sandbox.
    pub fn new(sdk: &SdkConfig, config: Config) -> Self {
        let wiring = Self::base(sdk, config);
        let _ = (wiring.carriers(), wiring.profile_carrier(), wiring.dialers(), wiring.sip_secrets(), wiring.voice_ai());
        wiring
    }

    /// What a Lambda function starts with: the configuration and AWS SDK settings from the
    /// environment, the store and the queue. Functions that call carriers or verify webhooks add
    /// `load_secret` (and the ports they use from it) or `load_carriers`; the others read no secret.
    pub async fn from_env() -> Result<Self, BoxError> {
        let config = Config::from_env()?;
        let sdk = config::aws_sdk_config()?;
        Ok(Self::base(&sdk, config))
    }

    /// Reads the carrier secret the configuration names and builds every carrier port from it (the
    /// number carriers, the profile carrier, the dialers, the voice AI) and the webhook keys: the
    /// worker and the reconciler, which use them all.
    pub async fn load_carriers(self) -> Result<Self, BoxError> {
        self.load_secret().await?.carriers_from_secret()?.profile_carrier_from_secret()?.dialers_from_secret()?.voice_ai_from_secret()
    }

    /// Reads the carrier secret the configuration names and builds the webhook keys from it (the
    /// Twilio auth token, Vapi's secret; `TELNYX_PUBLIC_KEY` from the environment). The webhook
    /// receiver needs nothing more; the other functions build the ports they use from it with the
    /// `*_from_secret` calls, so each links only its own carrier clients.
    pub async fn load_secret(self) -> Result<Self, BoxError> {
        let secrets = Arc::new(CarrierSecrets::load_configured(&self.sdk, &self.config).await?);
        let wiring = self.webhook_keys_from(&secrets)?;
        Ok(Self { secrets: Some(secrets), ..wiring })
    }

    fn secret(&self) -> Result<&CarrierSecrets, BoxError> {
        self.secrets.as_deref().ok_or_else(|| "the carrier secret is not loaded (call load_secret first)".into())
    }

    /// The number carriers the secret has credentials for (search, buy, release, send).
    pub fn carriers_from_secret(self) -> Result<Self, BoxError> {
        let carriers = carrier::number_carriers(&self.config, self.secret()?)?;
        Ok(self.with_carriers(carriers))
    }

    /// The configured profile carrier (Telnyx needs its key in the secret).
    pub fn profile_carrier_from_secret(self) -> Result<Self, BoxError> {
        let profile_carrier = carrier::profile_carrier(&self.config, self.secret()?)?;
        Ok(self.with_profile_carrier(profile_carrier))
    }

    /// The dialer carriers the secret has credentials for.
    pub fn dialers_from_secret(self) -> Result<Self, BoxError> {
        let dialers = carrier::dialers(&self.config, self.secret()?)?;
        Ok(self.with_dialers(dialers))
    }

    /// The configured voice AI (Vapi needs its key in the secret).
    pub fn voice_ai_from_secret(self) -> Result<Self, BoxError> {
        let voice_ai = carrier::voice_ai(&self.config, self.secret()?)?;
        Ok(self.with_voice_ai(voice_ai))
    }

    fn webhook_keys_from(self, secrets: &CarrierSecrets) -> Result<Self, BoxError> {
        let vapi_server = VapiServer {
            url: self.config.public_url.clone(),
            secret: secrets.vapi_webhook_secret.as_ref().map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned()),
        };
        let telnyx = std::env::var("TELNYX_PUBLIC_KEY").ok().filter(|k| !k.is_empty());
        let webhooks = WebhookKeys::new(telnyx.as_deref(), secrets.twilio_auth_token.clone(), self.config.public_url.clone())?
            .with_vapi_secret(secrets.vapi_webhook_secret.clone());
        Ok(Self { webhooks, vapi_server, ..self })
    }

    /// The number carriers (search, buy, release, send).
    pub fn carriers(&self) -> &Carriers {
        self.carriers.get_or_init(|| Carriers {
            sandbox: Some(Arc::new(SandboxCarrier::default())),
            default: Some(patchbay_domain::CarrierName::Sandbox),
            ..Default::default()
        })
    }

    /// The carrier that mirrors messaging profiles.
    pub fn profile_carrier(&self) -> &Arc<dyn ProfileCarrier> {
        self.profile_carrier.get_or_init(|| Arc::new(SandboxCarrier::default()))
    }

    /// The dialer carriers (credential connections, WebRTC tokens).
    pub fn dialers(&self) -> &Dialers {
        self.dialers.get_or_init(|| Dialers {
            sandbox: Some(Arc::new(SandboxDialer::default())),
            default: Some(patchbay_domain::CarrierName::Sandbox),
            ..Default::default()
        })
    }

    /// Where SIP passwords live.
    pub fn sip_secrets(&self) -> &Arc<dyn SipSecrets> {
        self.sip_secrets
            .get_or_init(|| Arc::new(SipSecretStore::new(aws_sdk_secretsmanager::Client::new(&self.sdk), &self.config.sip_secret_prefix)))
    }

    /// Vapi, or the sandbox voice AI.
    pub fn voice_ai(&self) -> &Arc<dyn VoiceAi> {
        self.voice_ai.get_or_init(|| Arc::new(SandboxVoiceAi::default()))
    }

    pub fn with_carriers(self, carriers: Carriers) -> Self {
        Self { carriers: OnceLock::from(carriers), ..self }
    }

    pub fn with_profile_carrier(self, profile_carrier: Arc<dyn ProfileCarrier>) -> Self {
        Self { profile_carrier: OnceLock::from(profile_carrier), ..self }
    }

    pub fn with_voice_ai(self, voice_ai: Arc<dyn VoiceAi>) -> Self {
        Self { voice_ai: OnceLock::from(voice_ai), ..self }
    }

    pub fn with_dialers(self, dialers: Dialers) -> Self {
        Self { dialers: OnceLock::from(dialers), ..self }
    }

    pub fn with_webhooks(self, webhooks: WebhookKeys) -> Self {
        Self { webhooks, ..self }
    }

    /// The queue's `maxReceiveCount`: the worker's delivery with this count is the last one.
    pub fn max_receive_count(&self) -> u32 {
        self.config.worker_max_receive_count
    }
}
