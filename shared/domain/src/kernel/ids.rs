//! Identifiers. Each one is parsed once at the edge; past that point it is known to be well formed.
//! Every capability's ids live here, so a record can name another capability's resource without
//! depending on that capability.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::kernel::error::ValidationError;
use crate::kernel::phone::E164;

/// The user, as named by the authorizer's `sub` claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() || raw.len() > 128 {
            return Err(ValidationError::new("sub", "invalid_user", "the token's subject must be 1 to 128 bytes"));
        }
        // Keys are built from this value with `#` separators; refuse anything that could forge one.
        if raw.chars().any(|c| c == '#' || c.is_control() || c.is_whitespace()) {
            return Err(ValidationError::new("sub", "invalid_user", "the token's subject has a character that is not allowed"));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<UserId> for String {
    fn from(u: UserId) -> String {
        u.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An id Patchbay makes: a UUIDv7 (ids sort by creation time, so lists come out in that order),
/// parsed from its canonical hyphenated lowercase form only, so one resource has exactly one spelling.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(::uuid::Uuid);

        impl $name {
            pub fn new_v7() -> Self {
                Self(::uuid::Uuid::now_v7())
            }
            pub fn parse(raw: &str) -> Result<Self, $crate::kernel::error::ValidationError> {
                let bad = || $crate::kernel::error::ValidationError::new("id", "invalid_id", concat!("must be ", $what, " as returned by the API (a lowercase UUID)"));
                let id = ::uuid::Uuid::try_parse(raw).map_err(|_| bad())?;
                if id.hyphenated().to_string() != raw {
                    return Err(bad());
                }
                Ok(Self(id))
            }
            pub fn as_uuid(&self) -> ::uuid::Uuid {
                self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = $crate::kernel::error::ValidationError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(p: $name) -> String {
                p.0.hyphenated().to_string()
            }
        }
        impl $crate::kernel::ids::PathId for $name {
            fn parse_path(raw: &str) -> Result<Self, $crate::kernel::error::ValidationError> {
                Self::parse(raw)
            }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}", self.0.hyphenated())
            }
        }
    };
}

/// An id that a path segment holds (parsed the one way the API spells it).
pub trait PathId: Sized {
    fn parse_path(raw: &str) -> Result<Self, ValidationError>;
}

uuid_id!(
    /// A messaging profile's id.
    ProfileId,
    "a profile id"
);

uuid_id!(
    /// A SIP connection's id.
    ConnectionId,
    "a SIP connection id"
);

uuid_id!(
    /// An assistant's id.
    AssistantId,
    "an assistant id"
);

uuid_id!(
    /// A webhook endpoint's id.
    EndpointId,
    "a webhook endpoint id"
);

/// `c{our digits}-{contact digits}`: derived from the pair, so finding or creating the conversation
/// is one conditional write, never a lookup first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConversationId(String);

impl ConversationId {
    pub fn of(ours: &E164, contact: &E164) -> Self {
        Self(format!("c{}-{}", &ours.as_str()[1..], &contact.as_str()[1..]))
    }
    /// The two numbers it is between: the user's, then the contact's (always both: only `of` and
    /// `parse` make one, each from two valid numbers).
    pub fn numbers(&self) -> Option<(E164, E164)> {
        let (a, b) = self.0.strip_prefix('c')?.split_once('-')?;
        Some((E164::parse(&format!("+{a}")).ok()?, E164::parse(&format!("+{b}")).ok()?))
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad = || ValidationError::new("id", "invalid_id", "must be a conversation id as returned by the API");
        let rest = raw.strip_prefix('c').ok_or_else(bad)?;
        let (a, b) = rest.split_once('-').ok_or_else(bad)?;
        let ours = E164::parse(&format!("+{a}")).map_err(|_| bad())?;
        let contact = E164::parse(&format!("+{b}")).map_err(|_| bad())?;
        Ok(Self::of(&ours, &contact))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConversationId {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ConversationId> for String {
    fn from(c: ConversationId) -> String {
        c.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The carrier's id for a mirrored messaging profile (Telnyx: a UUID; the sandbox: its own).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CarrierProfileId(String);

impl CarrierProfileId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() || raw.len() > 128 || raw.chars().any(|c| c.is_control() || c == '/') {
            return Err(ValidationError::new("id", "invalid_carrier_id", "the carrier returned an unusable id"));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CarrierProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ValidationError::new("Idempotency-Key", "invalid_idempotency_key", "must be 1 to 255 visible ASCII characters"));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_id_round_trips_and_refuses_other_spellings() {
        let id = ProfileId::new_v7();
        assert_eq!(ProfileId::parse(&id.to_string()).unwrap(), id);
        assert!(ProfileId::parse(&id.to_string().to_uppercase()).is_err());
        assert!(ProfileId::parse(&id.as_uuid().simple().to_string()).is_err());
        assert!(ProfileId::parse("").is_err());
        assert!(ProfileId::parse("../../etc").is_err());
    }

    #[test]
    fn user_id_refuses_key_separators() {
        assert!(UserId::parse("alice").is_ok());
        assert!(UserId::parse("a#b").is_err());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"x".repeat(129)).is_err());
        assert!(UserId::parse("a b").is_err());
    }

    #[test]
    fn idempotency_key_bounds() {
        assert!(IdempotencyKey::parse("k-1").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("").is_err());
    }
}
