//! The sandbox carrier: a deterministic stand-in for Telnyx, for local runs and demos. A profile's
//! carrier id is derived from its Patchbay id, so a repeated create answers the same id, as an
//! idempotent carrier would. A name that starts with `sandbox-reject` is refused the way Telnyx
//! refuses a bad request (422), so the `failed` path can be seen end to end.

use async_trait::async_trait;
use patchbay_domain::ports::{CarrierError, CarrierProfileSpec, ProfileCarrier};
use patchbay_domain::CarrierProfileId;
use uuid::Uuid;

pub struct SandboxCarrier;

/// Namespace of the sandbox's derived ids.
const SANDBOX_NS: Uuid = Uuid::from_u128(0x5a1d_b0c5_0000_4000_8000_7061_7463_6862);

impl SandboxCarrier {
    fn check(spec: &CarrierProfileSpec) -> Result<(), CarrierError> {
        if spec.name.as_str().starts_with("sandbox-reject") {
            return Err(CarrierError::Permanent {
                status: 422,
                code: "10015".into(),
                message: "Invalid parameter: the sandbox rejects names that start with sandbox-reject".into(),
            });
        }
        Ok(())
    }

    pub fn carrier_id_for(spec: &CarrierProfileSpec) -> Result<CarrierProfileId, CarrierError> {
        let id = Uuid::new_v5(&SANDBOX_NS, spec.local_id.to_string().as_bytes());
        CarrierProfileId::parse(&format!("sbx-{}", id.hyphenated())).map_err(|e| CarrierError::Transient(e.message))
    }
}

#[async_trait]
impl ProfileCarrier for SandboxCarrier {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn create_messaging_profile(&self, spec: &CarrierProfileSpec) -> Result<CarrierProfileId, CarrierError> {
        Self::check(spec)?;
        Self::carrier_id_for(spec)
    }

    async fn update_messaging_profile(&self, _id: &CarrierProfileId, spec: &CarrierProfileSpec) -> Result<(), CarrierError> {
        Self::check(spec)
    }

    async fn delete_messaging_profile(&self, _id: &CarrierProfileId) -> Result<(), CarrierError> {
        Ok(())
    }
}
