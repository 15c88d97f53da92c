//! Phone numbers and countries, validated with libphonenumber's metadata.
//!
//! The metadata is a compact table generated from libphonenumber's `PhoneNumberMetadata.xml`
//! (`scripts/gen-phone-metadata`, the file `metadata.rs`): per territory only its calling code,
//! leading digits and the national-number patterns and lengths of its number types. A calling code's
//! patterns are compiled the first time a number with that code is checked (tens of microseconds),
//! instead of the whole metadata on the first number of any country (the `phonenumber` crate's
//! ~150 ms and ~4.5 MiB on a cold start). The test `matches_the_phonenumber_crate` holds it to the
//! crate's answers.

use regex_lite::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{LazyLock, OnceLock};

use crate::kernel::error::ValidationError;

mod metadata;

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
        let (code, national) = split_calling_code(&raw[1..]).ok_or_else(|| bad("does not start with a country calling code"))?;
        if !code.is_valid(national, Match::Whole) {
            return Err(bad("is not a valid number for its country"));
        }
        Ok(Self(raw.to_owned()))
    }
    /// A number Patchbay itself stored (its table, its queue): checked when it came in, so only its
    /// shape is checked here, and reading a page of stored items compiles no calling code's patterns.
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
pub struct CountryCode(&'static str);

impl CountryCode {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad =
            || ValidationError::new("country", "invalid_country", "must be an ISO 3166-1 alpha-2 country code in upper case, e.g. US");
        if raw.len() != 2 || !raw.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        metadata::CODES.iter().flat_map(|(_, territories)| territories.iter()).find(|t| t.id == raw).map(|t| Self(t.id)).ok_or_else(bad)
    }
    pub fn as_str(&self) -> &str {
        self.0
    }
}

/// A territory's entry in the generated table.
struct Territory {
    /// ISO 3166-1 alpha-2, or `001` for a non-geographic calling code (+800, +882, ...).
    id: &'static str,
    /// For a calling code shared by several territories: the national numbers that are this one's.
    leading: Option<&'static str>,
    general: Desc,
    /// Fixed line, mobile, toll free, ...: a valid number is one of them.
    types: &'static [Desc],
}

/// A number type: its national-number pattern and the national lengths it can have (none: any).
struct Desc {
    pattern: &'static str,
    lengths: &'static [u8],
}

/// How a pattern must match a national number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// The whole number (libphonenumber's `matches()`): what Patchbay checks.
    Whole,
    /// From the start only (the `phonenumber` crate's `find` at 0): the equivalence test's.
    #[cfg(test)]
    Prefix,
}

struct CompiledDesc {
    whole: Option<Regex>,
    #[cfg(test)]
    prefix: Option<Regex>,
    lengths: &'static [u8],
}

impl CompiledDesc {
    fn new(desc: &Desc) -> Self {
        // The table is generated and every pattern is compiled by a test; a pattern that did not
        // compile would match nothing (a number refused), never panic.
        Self {
            whole: Regex::new(&format!("^(?:{})$", desc.pattern)).ok(),
            #[cfg(test)]
            prefix: Regex::new(&format!("^(?:{})", desc.pattern)).ok(),
            lengths: desc.lengths,
        }
    }

    fn is_match(&self, national: &str, how: Match) -> bool {
        if !self.lengths.is_empty() && !self.lengths.iter().any(|&n| usize::from(n) == national.len()) {
            return false;
        }
        let regex = match how {
            Match::Whole => &self.whole,
            #[cfg(test)]
            Match::Prefix => &self.prefix,
        };
        regex.as_ref().is_some_and(|r| r.is_match(national))
    }
}

struct CompiledTerritory {
    leading: Option<Regex>,
    general: CompiledDesc,
    types: Vec<CompiledDesc>,
}

impl CompiledTerritory {
    /// Whether the national number is one of this territory's number types.
    fn has_type(&self, national: &str, how: Match) -> bool {
        self.general.is_match(national, how) && self.types.iter().any(|t| t.is_match(national, how))
    }
}

/// A calling code of the table, its territories compiled on first use.
#[derive(Clone, Copy)]
struct CallingCode(usize);

/// One slot per calling code of the table, filled the first time a number with that code is checked.
static COMPILED: LazyLock<Vec<OnceLock<Vec<CompiledTerritory>>>> =
    LazyLock::new(|| metadata::CODES.iter().map(|_| OnceLock::new()).collect());

/// The calling code a number's digits start with (ITU codes are prefix-free, 1 to 3 digits) and the
/// national significant number after it.
fn split_calling_code(digits: &str) -> Option<(CallingCode, &str)> {
    (1..=3).filter(|&n| n < digits.len()).find_map(|n| {
        let code: u16 = digits[..n].parse().ok()?;
        let index = metadata::CODES.binary_search_by_key(&code, |(c, _)| *c).ok()?;
        Some((CallingCode(index), &digits[n..]))
    })
}

impl CallingCode {
    fn territories(self) -> &'static [CompiledTerritory] {
        COMPILED[self.0].get_or_init(|| {
            metadata::CODES[self.0]
                .1
                .iter()
                .map(|t| CompiledTerritory {
                    leading: t.leading.and_then(|l| Regex::new(&format!("^(?:{l})")).ok()),
                    general: CompiledDesc::new(&t.general),
                    types: t.types.iter().map(CompiledDesc::new).collect(),
                })
                .collect()
        })
    }

    /// libphonenumber's validity: the number's territory (the only one, else the first whose leading
    /// digits start it, or which has no leading digits and the number is one of its types) has a
    /// number type that the national number is.
    fn is_valid(self, national: &str, how: Match) -> bool {
        let territories = self.territories();
        let territory = match territories {
            [only] => Some(only),
            _ => territories.iter().find(|t| match &t.leading {
                Some(leading) => leading.is_match(national),
                None => t.has_type(national, how),
            }),
        };
        territory.is_some_and(|t| t.has_type(national, how))
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
mod tests;
