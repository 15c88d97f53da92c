//! One builder for what every function is made of: the store, the work queue, the carriers and the
//! webhook keys, built once per cold start. Each function's `main`, the local stack and the tests
//! build their handlers from a `Wiring` (`XApi::new(&wiring)`, `Worker::new(&wiring)`), so adding a
//! port is one field here and one line in the handlers that use it.

use std::sync::{Arc, OnceLock};

use aws_types::SdkConfig;
use patchbay_domain::dialer::{Dialers, SipSecrets};
use patchbay_domain::kernel::event::EventBus;
use patchbay_domain::numbers::Carriers;
use patchbay_domain::profiles::ProfileCarrier;
use patchbay_domain::voice_ai::{VapiServer, VoiceAi};

use crate::carrier::{SandboxCarrier, SandboxDialer};
use crate::delivery::WebhookHttp;
use crate::eventbridge::EventBridgeBus;
use crate::ondemand::{BoxError, OnDemand, SecretSource};
use crate::providers;
use crate::secrets::WebhookSecretStore;
use crate::secrets::{CarrierSecrets, SipSecretStore};
use crate::sqs::SqsWebhookQueue;
use crate::voice_ai::SandboxVoiceAi;
use crate::webhooks::WebhookKeys;
use crate::{config, Config, DynamoStore, SqsQueue};

/// Every port a function may use. The store, the queue and the webhook keys are built with it; the
/// carriers, the dialers, the voice AI and the SIP secret store when a handler first asks for them
/// (the sandbox's, unless they were built from the carrier secret: `load_carriers`, or
/// `load_secret` and the `*_from_secret` calls). A function links only the adapters its handlers ask
/// for: a function that never calls `dialers()` does not carry the dialer clients in its binary
/// (`scripts/bench cold` measures the sizes). A function whose handler uses a carrier port must build
/// it from the secret in its `main`, or it gets the sandbox's.
///
/// The API functions and the webhook receiver instead take their carrier ports `*_on_demand`: built
/// from the carrier secret on the first request that needs one (a search, a purchase, a WebRTC
/// token, a Twilio or Vapi webhook), so a cold start reads no secret and a list never waits for it.
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
    /// The carrier secret, read once (by `load_secret`, or by the first on-demand port that needs it).
    source: Arc<SecretSource>,
    /// `webhooks` holds what the secret gives (by `load_secret`, `with_webhooks` or `new`), not only
    /// the environment's Telnyx key.
    webhooks_complete: bool,
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
            source: Arc::new(SecretSource::new(sdk, &config)),
            webhooks_complete: false,
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
        let wiring = Self { webhooks_complete: true, ..Self::base(sdk, config) };
        let _ = (wiring.carriers(), wiring.profile_carrier(), wiring.dialers(), wiring.sip_secrets(), wiring.voice_ai());
        wiring
    }

    /// What `from_env` builds from a configuration: the store, the queue, the Telnyx webhook key from
    /// the environment; the carrier secret is read when something first needs it.
    pub fn deferred(sdk: &SdkConfig, config: Config) -> Result<Self, BoxError> {
        let base = Self::base(sdk, config);
        let webhooks = environment_webhook_keys(&base.config)?;
        Ok(Self { webhooks, ..base })
    }

    /// What a Lambda function starts with: the configuration and AWS SDK settings from the
    /// environment, the store, the queue and the Telnyx webhook key. No secret is read: the API
    /// functions and the webhook receiver take their carrier ports `*_on_demand`; the worker and the
    /// reconciler, which need every carrier for nearly every message, add `load_carriers`.
    pub async fn from_env() -> Result<Self, BoxError> {
        let config = Config::from_env()?;
        let sdk = config::aws_sdk_config()?;
        Self::deferred(&sdk, config)
    }

    /// The endpoints' signing secrets (Secrets Manager, under `WEBHOOK_SECRET_PREFIX`).
    pub fn endpoint_secrets(&self) -> Arc<WebhookSecretStore> {
        Arc::new(WebhookSecretStore::new(aws_sdk_secretsmanager::Client::new(&self.sdk), &self.config.webhook_secret_prefix))
    }

    /// The guarded HTTP client webhook URLs are checked and called with.
    pub fn webhook_http(&self) -> Arc<WebhookHttp> {
        Arc::new(WebhookHttp::new(self.config.webhooks_allow_loopback))
    }

    /// The webhook queue (replays).
    pub fn webhook_queue(&self) -> Arc<SqsWebhookQueue> {
        Arc::new(SqsWebhookQueue::new(aws_sdk_sqs::Client::new(&self.sdk), self.config.webhook_queue_url.clone()))
    }

    /// An SQS client on this wiring's SDK configuration (the dispatcher moves its messages' visibility).
    pub fn sqs_client(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// The event bus the outbox relay publishes to (`EVENT_BUS_NAME`; unset, every publish is
    /// refused, saying so). Built by the relay only: no other function links the EventBridge client.
    pub fn event_bus(&self) -> Arc<dyn EventBus> {
        Arc::new(EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&self.sdk), self.config.event_bus_name.clone()))
    }

    /// Reads the carrier secret the configuration names and builds every carrier port from it (the
    /// number carriers, the profile carrier, the dialers, the voice AI) and the webhook keys: the
    /// worker and the reconciler, which use them all.
    pub async fn load_carriers(self) -> Result<Self, BoxError> {
        self.load_secret().await?.carriers_from_secret()?.profile_carrier_from_secret()?.dialers_from_secret()?.voice_ai_from_secret()
    }

    /// Reads the carrier secret the configuration names now and builds the webhook keys from it (the
    /// Twilio auth token, Vapi's secret; `TELNYX_PUBLIC_KEY` from the environment); the ports it
    /// holds are then built with the `*_from_secret` calls, so a function links only its own
    /// carrier clients.
    pub async fn load_secret(self) -> Result<Self, BoxError> {
        let secrets = self.source.get().await?;
        let (webhooks, vapi_server) = webhook_keys(&self.config, &secrets)?;
        Ok(Self { webhooks, vapi_server, webhooks_complete: true, ..self })
    }

    fn secret(&self) -> Result<&CarrierSecrets, BoxError> {
        self.source.loaded().ok_or_else(|| "the carrier secret is not loaded (call load_secret first)".into())
    }

    /// The number carriers the secret has credentials for (search, buy, release, send).
    pub fn carriers_from_secret(self) -> Result<Self, BoxError> {
        let carriers = providers::number_carriers(&self.config, self.secret()?)?;
        Ok(self.with_carriers(carriers))
    }

    /// The configured profile carrier (Telnyx needs its key in the secret).
    pub fn profile_carrier_from_secret(self) -> Result<Self, BoxError> {
        let profile_carrier = providers::profile_carrier(&self.config, self.secret()?)?;
        Ok(self.with_profile_carrier(profile_carrier))
    }

    /// The dialer carriers the secret has credentials for.
    pub fn dialers_from_secret(self) -> Result<Self, BoxError> {
        let dialers = providers::dialers(&self.config, self.secret()?)?;
        Ok(self.with_dialers(dialers))
    }

    /// The configured voice AI (Vapi needs its key in the secret).
    pub fn voice_ai_from_secret(self) -> Result<Self, BoxError> {
        let voice_ai = providers::voice_ai(&self.config, self.secret()?)?;
        Ok(self.with_voice_ai(voice_ai))
    }

    /// The number carriers, built from the carrier secret on the first request that needs them
    /// (those built already, by `new` or `carriers_from_secret`, as they are).
    pub fn carriers_on_demand(&self) -> OnDemand<Carriers> {
        match self.carriers.get() {
            Some(built) => OnDemand::ready(built.clone()),
            None => OnDemand::from_secret(&self.source, |config, secrets| Ok(providers::number_carriers(config, secrets)?)),
        }
    }

    /// The dialer carriers, built from the carrier secret on the first request that needs them.
    pub fn dialers_on_demand(&self) -> OnDemand<Dialers> {
        match self.dialers.get() {
            Some(built) => OnDemand::ready(built.clone()),
            None => OnDemand::from_secret(&self.source, |config, secrets| Ok(providers::dialers(config, secrets)?)),
        }
    }

    /// Every webhook key, the secret's (the Twilio auth token, Vapi's secret) included, read on the
    /// first webhook that needs one. `webhooks` has the Telnyx key from the environment at once.
    pub fn webhooks_on_demand(&self) -> OnDemand<WebhookKeys> {
        if self.webhooks_complete {
            return OnDemand::ready(self.webhooks.clone());
        }
        OnDemand::from_secret(&self.source, |config, secrets| Ok(webhook_keys(config, secrets)?.0))
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
        Self { webhooks, webhooks_complete: true, ..self }
    }

    /// The queue's `maxReceiveCount`: the worker's delivery with this count is the last one.
    pub fn max_receive_count(&self) -> u32 {
        self.config.worker_max_receive_count
    }
}

/// The Telnyx webhook key (`TELNYX_PUBLIC_KEY`, a public key, from the environment) and the public
/// URL: what a webhook receiver has before it reads the carrier secret.
fn environment_webhook_keys(config: &Config) -> Result<WebhookKeys, BoxError> {
    let telnyx = std::env::var("TELNYX_PUBLIC_KEY").ok().filter(|k| !k.is_empty());
    Ok(WebhookKeys::new(telnyx.as_deref(), None, config.public_url.clone())?)
}

/// Every webhook key, and where Vapi sends its reports with the secret it sends.
fn webhook_keys(config: &Config, secrets: &CarrierSecrets) -> Result<(WebhookKeys, VapiServer), BoxError> {
    let vapi_server = VapiServer {
        url: config.public_url.clone(),
        secret: secrets.vapi_webhook_secret.as_ref().map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned()),
    };
    let webhooks = WebhookKeys { twilio_token: secrets.twilio_auth_token.clone(), ..environment_webhook_keys(config)? }
        .with_vapi_secret(secrets.vapi_webhook_secret.clone());
    Ok((webhooks, vapi_server))
}
