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
mod tests {
    use super::*;

    #[test]
    fn stored_numbers_are_checked_for_shape_only() {
        assert_eq!(E164::stored("+12125550123").unwrap(), E164::parse("+12125550123").unwrap());
        for bad in ["", "+", "12125550123", "+1212555012a", "+0212555012", "+1234567890123456", " +12125550123"] {
            assert!(E164::stored(bad).is_err(), "{bad:?}");
        }
        let cmd: crate::kernel::work::Command =
            serde_json::from_str(r#"{"type": "sync_phone_number", "user_id": "u1", "phone_number": "+12125550123"}"#).unwrap();
        assert!(
            matches!(cmd, crate::kernel::work::Command::SyncPhoneNumber { phone_number, .. } if phone_number.as_str() == "+12125550123")
        );
        assert!(serde_json::from_str::<crate::kernel::work::Command>(
            r#"{"type": "sync_phone_number", "user_id": "u1", "phone_number": "12"}"#
        )
        .is_err());
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

    /// What `E164::parse` was when it used the `phonenumber` crate: parsed, valid, canonical.
    fn crate_accepts(raw: &str) -> bool {
        phonenumber::parse(None, raw).is_ok_and(|n| n.is_valid() && n.format().mode(phonenumber::Mode::E164).to_string() == raw)
    }

    /// The table's validity with the given matching, for a `+digits` string.
    fn table_accepts(raw: &str, how: Match) -> bool {
        split_calling_code(&raw[1..]).is_some_and(|(code, national)| code.is_valid(national, how))
    }

    /// Every example number of every territory, each with its last digit changed, a digit more, a
    /// digit fewer and its first digit changed, and 300 random national numbers of 4 to 14 digits
    /// per calling code (a fixed seed: the corpus is the same on every run).
    fn corpus() -> Vec<String> {
        let mut out = Vec::new();
        for meta in phonenumber::metadata::DATABASE.iter() {
            let d = meta.descriptors();
            let kinds = [d.fixed_line(), d.mobile(), d.toll_free(), d.premium_rate(), d.shared_cost(), d.personal_number()];
            let more = [d.voip(), d.pager(), d.uan(), d.voicemail(), Some(d.general())];
            for example in kinds.iter().chain(more.iter()).flatten().filter_map(|desc| desc.example()) {
                let base = format!("+{}{}", meta.country_code(), example);
                for digit in '0'..='9' {
                    out.push(format!("{}{}", &base[..base.len() - 1], digit));
                    let cc = meta.country_code().to_string().len() + 1;
                    out.push(format!("{}{}{}", &base[..cc], digit, &base[cc + 1..]));
                }
                out.push(format!("{base}5"));
                out.push(base[..base.len() - 1].to_owned());
                out.push(base);
            }
        }
        let mut seed: u64 = 0x5eed_1234_abcd_ef01;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for (code, _) in metadata::CODES {
            for _ in 0..300 {
                let len = 4 + next() % 11;
                let national: String = (0..len).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
                out.push(format!("+{code}{national}"));
            }
        }
        out.retain(|n| n.len() <= 16);
        out
    }

    #[test]
    fn every_pattern_in_the_table_compiles() {
        for (index, (code, territories)) in metadata::CODES.iter().enumerate() {
            for (t, compiled) in territories.iter().zip(CallingCode(index).territories()) {
                assert_eq!(t.leading.is_some(), compiled.leading.is_some(), "+{code} {} leading digits", t.id);
                for desc in std::iter::once(&compiled.general).chain(&compiled.types) {
                    assert!(desc.whole.is_some() && desc.prefix.is_some(), "+{code} {}: a pattern did not compile", t.id);
                }
            }
        }
    }

    #[test]
    fn every_example_number_of_libphonenumber_is_valid() {
        let mut checked = 0;
        for meta in phonenumber::metadata::DATABASE.iter() {
            let d = meta.descriptors();
            for desc in [
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            {
                if let Some(example) = desc.example() {
                    let raw = format!("+{}{}", meta.country_code(), example);
                    assert!(E164::parse(&raw).is_ok(), "{} example {raw} refused", meta.id());
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "only {checked} examples");
    }

    /// The generated table and this validator give the `phonenumber` crate's answers: with the crate's
    /// own (prefix) matching, exactly the same on every number of the corpus; with whole-number
    /// matching (what Patchbay uses, libphonenumber's reference behaviour), never a number the crate
    /// refuses.
    #[test]
    fn matches_the_phonenumber_crate() {
        let corpus = corpus();
        assert!(corpus.len() > 60_000, "corpus of {}", corpus.len());
        let (mut valid, mut stricter) = (0, Vec::new());
        let mut prefix_stripped = 0;
        for raw in &corpus {
            let reference = crate_accepts(raw);
            if table_accepts(raw, Match::Prefix) != reference {
                // The one known difference: the crate strips a national prefix from a number given
                // in international form (+7 8…: its "8"), so it judges another number; libphonenumber
                // does not when the rest is not a possible number. See `fixes_the_crates_prefix_stripping`.
                let (_, national) = split_calling_code(&raw[1..]).unwrap();
                let parsed = phonenumber::parse(None, raw).unwrap();
                assert!(!reference && parsed.national().to_string() != national, "{raw}: the crate says {reference}");
                prefix_stripped += 1;
                continue;
            }
            let whole = E164::parse(raw).is_ok();
            assert_eq!(whole, table_accepts(raw, Match::Whole), "{raw}");
            assert!(!whole || reference, "{raw} accepted, the crate refuses it");
            valid += usize::from(reference);
            if reference && !whole {
                stricter.push(raw.clone());
            }
        }
        assert!(valid > 10_000, "only {valid} valid numbers in the corpus");
        assert!(prefix_stripped * 100 < corpus.len(), "{prefix_stripped} numbers judged after a stripped prefix");
        // Whole-number matching refuses what only a pattern's prefix matched (778 of 19,745 of this
        // corpus, which is mostly one digit away from real examples), e.g. a Czech number of 12 digits.
        assert!(stricter.contains(&"+420931234567895".to_owned()));
        assert!(
            stricter.len() * 20 < valid,
            "{} of {valid} refused by whole matching: {:?}",
            stricter.len(),
            &stricter[..stricter.len().min(20)]
        );
    }

    /// The `phonenumber` crate refused every Russian number starting with 8 (St Petersburg's 812,
    /// toll free 800): it stripped the national prefix "8" from the international form and judged the
    /// rest. libphonenumber keeps them; so does Patchbay now.
    #[test]
    fn fixes_the_crates_prefix_stripping() {
        for raw in ["+78123456789", "+78005553535"] {
            assert!(!crate_accepts(raw), "{raw}: the crate now accepts it; the comment above is stale");
            assert!(E164::parse(raw).is_ok(), "{raw}");
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
