//! Carrier clients behind the domain's carrier ports: Telnyx (built from its official OpenAPI spec)
//! and the sandbox. Which one runs is configuration (`PATCHBAY_CARRIER`).

pub mod sandbox;
pub mod telnyx;

use std::sync::Arc;

use patchbay_domain::ports::{CarrierError, ProfileCarrier};
use secrecy::ExposeSecret;

use crate::secrets::CarrierSecrets;
use crate::{CarrierKind, Config};

pub use sandbox::SandboxCarrier;
pub use telnyx::TelnyxClient;

/// The profile carrier this deployment uses, built once per cold start.
pub fn profile_carrier(config: &Config, secrets: &CarrierSecrets) -> Result<Arc<dyn ProfileCarrier>, CarrierError> {
    match config.carrier {
        CarrierKind::Sandbox => Ok(Arc::new(SandboxCarrier)),
        CarrierKind::Telnyx => {
            let key = secrets
                .telnyx_api_key
                .as_ref()
                .filter(|k| !k.expose_secret().is_empty())
                .ok_or_else(|| CarrierError::NotConfigured("telnyx_api_key is not set in the carrier secret".into()))?;
            Ok(Arc::new(TelnyxClient::new(&config.telnyx_base_url, key.clone(), config.carrier_timeout)?))
        }
    }
}

/// Retry or not, from an HTTP status: 408, 425, 429 and 5xx are worth another try.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || status >= 500
}
