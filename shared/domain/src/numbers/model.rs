//! Phone numbers: searching, buying, releasing. The number record is the junction where a number's
//! three sides meet: its messaging profile, its SIP connection (`VoiceAssignment`) and its
//! voice-AI assistant.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::kernel::error::ValidationError;
use crate::kernel::ids::{AssistantId, ConnectionId, ProfileId, UserId};
use crate::kernel::phone::{CountryCode, E164};
use crate::kernel::provider::CarrierName;
use crate::kernel::sync::{SyncError, SyncState};

/// An area code (national destination code). In the North American plan (US, CA, …): three digits,
/// the first 2–9. Elsewhere: 1 to 5 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaCode(String);

impl AreaCode {
    pub fn parse(raw: &str, country: CountryCode) -> Result<Self, ValidationError> {
        let nanp = matches!(country.as_str(), "US" | "CA" | "PR" | "GU" | "VI" | "AS" | "MP");
        let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
        let ok = if nanp { digits && raw.len() == 3 && !raw.starts_with(['0', '1']) } else { digits && raw.len() <= 5 };
        if !ok {
            let why = if nanp { "must be three digits, the first 2-9 (e.g. 212)" } else { "must be 1 to 5 digits" };
            return Err(ValidationError::new("area_code", "invalid_area_code", why));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A search for numbers to buy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberSearch {
    pub country: CountryCode,
    pub area_code: Option<AreaCode>,
    /// 1 to 50, default 10.
    pub limit: u8,
}

impl NumberSearch {
    pub const DEFAULT_LIMIT: u8 = 10;
    pub const MAX_LIMIT: u8 = 50;

    pub fn parse(country: Option<&str>, area_code: Option<&str>, limit: Option<&str>) -> Result<Self, ValidationError> {
        let country = CountryCode::parse(country.unwrap_or("US"))?;
        let area_code = area_code.map(|a| AreaCode::parse(a, country)).transpose()?;
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if (1..=Self::MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ValidationError::new(
                        "limit",
                        "out_of_range",
                        format!("must be a whole number from 1 to {}", Self::MAX_LIMIT),
                    ))
                }
            },
        };
        Ok(Self { country, area_code, limit })
    }
}

/// A number a carrier offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailableNumber {
    pub phone_number: E164,
    pub region: Option<String>,
    pub locality: Option<String>,
    pub sms: bool,
    pub voice: bool,
}

/// Where a number is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberStatus {
    /// Bought in Patchbay, the carrier purchase is queued or under way.
    Pending,
    Active,
    /// The carrier refused or never completed the purchase; `failure` says why. The number is free again.
    Failed,
    /// Release requested; the worker releases it at the carrier, then the record and its guard go.
    Releasing,
    /// The reconciler found the carrier no longer has it (deleted in the carrier's portal, ported
    /// away). Kept and shown, not silently deleted: the user can still release it, which clears its
    /// profile and connection. Becomes active again if the carrier lists it again.
    Lost,
}

/// A number a user owns (or is buying).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    pub e164: E164,
    pub user_id: UserId,
    pub carrier: CarrierName,
    pub status: NumberStatus,
    /// Twilio's `PN…` sid or Telnyx's phone number id, once bought.
    pub carrier_number_id: Option<String>,
    /// Telnyx's number order id while the order runs (so a retry follows it instead of ordering again).
    pub carrier_order_id: Option<String>,
    pub failure: Option<SyncError>,
    /// The messaging profile the number is on.
    pub messaging_profile_id: Option<ProfileId>,
    /// Whether the carrier has the number on the right profile yet (Telnyx mirrors it).
    pub profile_sync: SyncState,
    /// Why the carrier refused the last profile change, when `profile_sync` is `failed`.
    pub profile_sync_error: Option<SyncError>,
    /// The SIP connection the number's inbound voice goes to, and its role there.
    pub voice: Option<VoiceAssignment>,
    /// Whether the carrier has the number on that connection (or off every one) yet; `None` when
    /// the number was never put on a connection.
    pub voice_sync: Option<SyncState>,
    /// Why the carrier refused the last connection change, when `voice_sync` is `failed`.
    pub voice_sync_error: Option<SyncError>,
    /// The voice-AI assistant the number's calls go to.
    pub assistant_id: Option<AssistantId>,
    /// Whether Vapi has the number attached to that assistant (or none) yet.
    pub assistant_sync: Option<SyncState>,
    pub assistant_sync_error: Option<SyncError>,
    /// Vapi's id for the imported number.
    pub vapi_phone_number_id: Option<String>,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl PhoneNumber {
    pub fn new_purchase(user_id: UserId, e164: E164, carrier: CarrierName, now: OffsetDateTime) -> Self {
        Self {
            e164,
            user_id,
            carrier,
            status: NumberStatus::Pending,
            carrier_number_id: None,
            carrier_order_id: None,
            failure: None,
            messaging_profile_id: None,
            profile_sync: SyncState::Synced,
            profile_sync_error: None,
            voice: None,
            voice_sync: None,
            voice_sync_error: None,
            assistant_id: None,
            assistant_sync: None,
            assistant_sync_error: None,
            vapi_phone_number_id: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// The request fingerprint stored with a purchase's idempotency key.
    pub fn purchase_fingerprint(e164: &E164, carrier: CarrierName) -> String {
        format!("{}|{}", e164.as_str(), carrier.as_str())
    }
}

/// A number's place on a connection, kept on the number's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceAssignment {
    pub connection_id: ConnectionId,
    pub role: NumberRole,
    /// Offered as a caller id (a deactivated assignment stays on the connection).
    pub active: bool,
}

/// What a number is on a connection, in caller-ID order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberRole {
    Primary,
    Secondary,
    Backup,
}

impl NumberRole {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "primary" => Ok(Self::Primary),
            "secondary" => Ok(Self::Secondary),
            "backup" => Ok(Self::Backup),
            _ => Err(ValidationError::new("role", "invalid_role", "must be one of primary, secondary, backup")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_codes_follow_the_numbering_plan() {
        let us = CountryCode::parse("US").unwrap();
        let gb = CountryCode::parse("GB").unwrap();
        assert!(AreaCode::parse("212", us).is_ok());
        for bad in ["012", "112", "21", "2123", "21a", ""] {
            assert_eq!(AreaCode::parse(bad, us).unwrap_err().field, "area_code", "{bad}");
        }
        assert!(AreaCode::parse("20", gb).is_ok());
        assert!(AreaCode::parse("123456", gb).is_err());
    }

    #[test]
    fn search_defaults_and_bounds() {
        let s = NumberSearch::parse(None, Some("415"), None).unwrap();
        assert_eq!((s.country.as_str(), s.limit), ("US", 10));
        assert_eq!(NumberSearch::parse(Some("US"), None, Some("51")).unwrap_err().field, "limit");
        assert_eq!(NumberSearch::parse(Some("US"), None, Some("0")).unwrap_err().field, "limit");
        assert_eq!(NumberSearch::parse(Some("usa"), None, None).unwrap_err().field, "country");
        assert_eq!(NumberSearch::parse(Some("ZZ"), None, None).unwrap_err().field, "country");
        assert_eq!(CarrierName::parse("verizon").unwrap_err().field, "carrier");
    }
}
