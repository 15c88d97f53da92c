//! The sandbox carrier: a deterministic stand-in for Telnyx, for local runs and demos. A profile's
//! carrier id is derived from its Patchbay id, so a repeated create answers the same id, as an
//! idempotent carrier would. A name that starts with `sandbox-reject` is refused the way Telnyx
//! refuses a bad request (422), so the `failed` path can be seen end to end.
//!
//! Numbers: a deterministic inventory per area code (US and CA): `+1 {area code} 555 0100` to `0149`
//! are for sale; `0150` to `0199` exist but are refused at purchase the way Twilio refuses a number
//! someone else took (21422), for the failure path. Without an area code: 212 (US) or 416 (CA).

use async_trait::async_trait;
use patchbay_domain::ports::{CarrierError, CarrierProfileSpec, NumberCarrier, ProfileCarrier, Purchase};
use patchbay_domain::{AvailableNumber, CarrierName, CarrierProfileId, NumberSearch, E164};
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

impl SandboxCarrier {
    fn inventory(q: &NumberSearch) -> Vec<AvailableNumber> {
        let area = match (q.country.as_str(), &q.area_code) {
            ("US" | "CA", Some(a)) => a.as_str().to_owned(),
            ("US", None) => "212".to_owned(),
            ("CA", None) => "416".to_owned(),
            _ => return Vec::new(),
        };
        (100..150)
            .filter_map(|line| E164::parse(&format!("+1{area}5550{line}")).ok())
            .take(usize::from(q.limit))
            .map(|e| AvailableNumber { phone_number: e, region: None, locality: Some(format!("Sandbox {area}")), sms: true, voice: true })
            .collect()
    }
}

#[async_trait]
impl NumberCarrier for SandboxCarrier {
    fn name(&self) -> CarrierName {
        CarrierName::Sandbox
    }

    async fn search(&self, q: &NumberSearch) -> Result<Vec<AvailableNumber>, CarrierError> {
        Ok(Self::inventory(q))
    }

    async fn find_owned(&self, _e164: &E164) -> Result<Option<String>, CarrierError> {
        Ok(None)
    }

    async fn buy(&self, e164: &E164) -> Result<Purchase, CarrierError> {
        let digits = e164.as_str().trim_start_matches('+');
        let line: u32 = digits.get(digits.len().saturating_sub(4)..).and_then(|l| l.parse().ok()).unwrap_or(0);
        let sandbox_exchange = digits.len() == 11 && digits.starts_with('1') && &digits[4..7] == "555";
        if !sandbox_exchange || !(100..150).contains(&line) {
            return Err(CarrierError::Permanent {
                status: 400,
                code: "21422".into(),
                message: "Phone number is not available (sandbox: only +1 NPA 555 0100-0149 are for sale)".into(),
            });
        }
        Ok(Purchase::Done(format!("sbx-PN{digits}")))
    }

    async fn order_status(&self, _order_id: &str, e164: &E164) -> Result<Purchase, CarrierError> {
        self.buy(e164).await
    }

    async fn release(&self, _carrier_number_id: &str) -> Result<(), CarrierError> {
        Ok(())
    }

    async fn set_messaging_profile(&self, _carrier_number_id: &str, _profile: Option<&CarrierProfileId>) -> Result<(), CarrierError> {
        Ok(())
    }
}
