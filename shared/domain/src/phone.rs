//! Phone numbers and countries, parsed with libphonenumber's metadata (the `phonenumber` crate).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::ValidationError;

/// A dialable number in E.164 form (`+12125550123`). Only the canonical form is accepted, so a
/// number has exactly one spelling in keys and URLs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad = |m: &str| ValidationError::new("phone_number", "invalid_phone_number", m.to_owned());
        if !raw.starts_with('+') || raw.len() > 16 || !raw[1..].bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("must be an E.164 number: '+' then up to 15 digits, e.g. +12125550123"));
        }
        let parsed = phonenumber::parse(None, raw).map_err(|_| bad("is not a phone number"))?;
        if !parsed.is_valid() {
            return Err(bad("is not a valid number for its country"));
        }
        let canonical = parsed.format().mode(phonenumber::Mode::E164).to_string();
        if canonical != raw {
            return Err(bad("must be in canonical E.164 form"));
        }
        Ok(Self(canonical))
    }
    /// A number Patchbay itself stored (its table, its queue): checked when it came in, so only its
    /// shape is checked here. libphonenumber's first use loads its whole metadata (about 150 ms of CPU
    /// on a cold start, `scripts/bench cold`); a function that only reads what it stored never pays it.
    pub fn stored(raw: &str) -> Result<Self, ValidationError> {
        let digits = raw.strip_prefix('+').unwrap_or_default();
        if (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0') {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new("phone_number", "invalid_phone_number", "a stored number is not in E.164 form"))
        }
    }

    /// Serde's side of `stored`, for what Patchbay wrote itself (`#[serde(deserialize_with = …)]`).
    pub fn deserialize_stored<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::stored(&raw).map_err(serde::de::Error::custom)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for E164 {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<E164> for String {
    fn from(e: E164) -> String {
        e.0
    }
}
impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 3166-1 alpha-2 country that libphonenumber knows (`US`, `GB`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode(phonenumber::country::Id);

impl CountryCode {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad =
            || ValidationError::new("country", "invalid_country", "must be an ISO 3166-1 alpha-2 country code in upper case, e.g. US");
        if raw.len() != 2 || !raw.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        phonenumber::country::Id::from_str(raw).map(Self).map_err(|_| bad())
    }
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

/// A messaging destination filter: a country, or `*` for every destination (Telnyx's convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    All,
    Country(CountryCode),
}

impl Destination {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw == "*" {
            return Ok(Destination::All);
        }
        CountryCode::parse(raw)
            .map(Destination::Country)
            .map_err(|e| ValidationError::new(e.field, e.code, "must be '*' or an ISO 3166-1 alpha-2 country code in upper case, e.g. US"))
    }
    pub fn as_str(&self) -> &str {
        match self {
            Destination::All => "*",
            Destination::Country(c) => c.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_numbers_are_checked_for_shape_only() {
        assert_eq!(E164::stored("+12125550123").unwrap(), E164::parse("+12125550123").unwrap());
        for bad in ["", "+", "12125550123", "+1212555012a", "+0212555012", "+1234567890123456", " +12125550123"] {
            assert!(E164::stored(bad).is_err(), "{bad:?}");
        }
        let cmd: crate::Command =
            serde_json::from_str(r#"{"type": "sync_phone_number", "user_id": "u1", "phone_number": "+12125550123"}"#).unwrap();
        assert!(matches!(cmd, crate::Command::SyncPhoneNumber { phone_number, .. } if phone_number.as_str() == "+12125550123"));
        assert!(serde_json::from_str::<crate::Command>(r#"{"type": "sync_phone_number", "user_id": "u1", "phone_number": "12"}"#).is_err());
    }

    #[test]
    fn e164_accepts_canonical_valid_numbers_only() {
        assert_eq!(E164::parse("+12125550123").unwrap().as_str(), "+12125550123");
        assert_eq!(E164::parse("+447911123456").unwrap().as_str(), "+447911123456");
        for bad in
            ["12125550123", "+1 212 555 0123", "+1212555012", "+", "", "+1234567890123456", "+10005550123", "+１２１２５５５０１２３"]
        {
            assert!(E164::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn countries_and_destinations() {
        assert_eq!(CountryCode::parse("US").unwrap().as_str(), "US");
        assert!(CountryCode::parse("us").is_err());
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("USA").is_err());
        assert_eq!(Destination::parse("*").unwrap(), Destination::All);
        assert_eq!(Destination::parse("GB").unwrap().as_str(), "GB");
        assert!(Destination::parse("**").is_err());
    }
}
