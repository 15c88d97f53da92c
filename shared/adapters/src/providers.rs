//! The provider factories: which carrier, dialer and voice-AI clients a deployment builds from its
//! configuration and the carrier secret. The one place (with `wiring`, which calls it) that names
//! the concrete provider clients; the clients never build or call each other.

use std::sync::Arc;

use patchbay_domain::dialer::{DialerCarrier, Dialers};
use patchbay_domain::kernel::provider::CarrierError;
use patchbay_domain::numbers::{Carriers, NumberCarrier};
use patchbay_domain::profiles::ProfileCarrier;
use patchbay_domain::voice_ai::VoiceAi;
use patchbay_domain::CarrierName;
use secrecy::ExposeSecret;

use crate::carrier::{SandboxCarrier, SandboxDialer, TelnyxClient, TwilioClient};
use crate::secrets::CarrierSecrets;
use crate::voice_ai::vapi::ImportCredentials;
use crate::voice_ai::{SandboxVoiceAi, VapiClient};
use crate::{CarrierKind, Config, VoiceAiKind};

/// The profile carrier this deployment uses, built once per cold start.
pub fn profile_carrier(config: &Config, secrets: &CarrierSecrets) -> Result<Arc<dyn ProfileCarrier>, CarrierError> {
    match config.carrier {
        CarrierKind::Sandbox => Ok(Arc::new(SandboxCarrier::default())),
        CarrierKind::Telnyx => {
            let key = secrets
                .telnyx_api_key
                .as_ref()
                .filter(|k| !k.expose_secret().is_empty())
                .ok_or_else(|| CarrierError::NotConfigured("telnyx_api_key is not set in the carrier secret".into()))?;
            Ok(Arc::new(
                TelnyxClient::new(&config.telnyx_base_url, key.clone(), config.carrier_timeout)?.with_public_url(config.public_url.clone()),
            ))
        }
    }
}

/// The number carriers this deployment has credentials for, built once per container (at cold
/// start, or on the first request that needs them). The sandbox is there only when it is the
/// configured carrier; Twilio and Telnyx when their credentials are set.
pub fn number_carriers(config: &Config, secrets: &CarrierSecrets) -> Result<Carriers, CarrierError> {
    let mut carriers = Carriers::default();
    if let Some(key) = secrets.telnyx_api_key.as_ref().filter(|k| !k.expose_secret().is_empty()) {
        carriers.telnyx =
            Some(Arc::new(TelnyxClient::new(&config.telnyx_base_url, key.clone(), config.carrier_timeout)?) as Arc<dyn NumberCarrier>);
    }
    if let (Some(sid), Some(token)) = (secrets.twilio_account_sid.as_deref(), secrets.twilio_auth_token.as_ref()) {
        if !sid.is_empty() && !token.expose_secret().is_empty() {
            let c = TwilioClient::new(&config.twilio_base_url, sid, token.clone(), config.public_url.clone(), config.carrier_timeout)?;
            carriers.twilio = Some(Arc::new(c) as Arc<dyn NumberCarrier>);
        }
    }
    carriers.default = Some(match config.carrier {
        CarrierKind::Sandbox => {
            carriers.sandbox = Some(Arc::new(SandboxCarrier::default()) as Arc<dyn NumberCarrier>);
            CarrierName::Sandbox
        }
        CarrierKind::Telnyx => CarrierName::Telnyx,
    });
    Ok(carriers)
}

/// The dialer carriers: Telnyx when its key is set, the sandbox when it is the configured carrier.
pub fn dialers(config: &Config, secrets: &CarrierSecrets) -> Result<Dialers, CarrierError> {
    let mut dialers = Dialers::default();
    if let Some(key) = secrets.telnyx_api_key.as_ref().filter(|k| !k.expose_secret().is_empty()) {
        dialers.telnyx =
            Some(Arc::new(TelnyxClient::new(&config.telnyx_base_url, key.clone(), config.carrier_timeout)?) as Arc<dyn DialerCarrier>);
    }
    dialers.default = Some(match config.carrier {
        CarrierKind::Sandbox => {
            dialers.sandbox = Some(Arc::new(SandboxDialer::default()) as Arc<dyn DialerCarrier>);
            CarrierName::Sandbox
        }
        CarrierKind::Telnyx => CarrierName::Telnyx,
    });
    Ok(dialers)
}

/// The voice AI: Vapi with its key (numbers imported with the Telnyx credential or the Twilio
/// account), or the sandbox.
pub fn voice_ai(config: &Config, secrets: &CarrierSecrets) -> Result<Arc<dyn VoiceAi>, CarrierError> {
    match config.voice_ai {
        VoiceAiKind::Sandbox => Ok(Arc::new(SandboxVoiceAi::default())),
        VoiceAiKind::Vapi => {
            let key = secrets
                .vapi_api_key
                .as_ref()
                .filter(|k| !k.expose_secret().is_empty())
                .ok_or_else(|| CarrierError::NotConfigured("vapi_api_key is not set in the carrier secret".into()))?;
            let import = ImportCredentials {
                telnyx_credential_id: config.vapi_telnyx_credential_id.clone(),
                twilio: match (secrets.twilio_account_sid.as_deref(), secrets.twilio_auth_token.as_ref()) {
                    (Some(sid), Some(token)) if !sid.is_empty() => Some((sid.to_owned(), token.clone())),
                    _ => None,
                },
            };
            Ok(Arc::new(VapiClient::new(&config.vapi_base_url, key.clone(), import, config.carrier_timeout)?))
        }
    }
}
