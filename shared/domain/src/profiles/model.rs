//! Messaging profiles: what a user creates, renames, activates and deletes, and how its mirror at
//! the carrier is tracked.

use time::OffsetDateTime;

use crate::kernel::error::ValidationError;
use crate::kernel::ids::{CarrierProfileId, ProfileId, UserId};
use crate::kernel::phone::Destination;
use crate::kernel::sync::{SyncError, SyncState};
use crate::kernel::text::display_name;

/// A profile's display name: 1 to 100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileName(String);

impl ProfileName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        display_name(raw, Self::MAX_CHARS).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a profile may send: `*` alone, or 1 to 250 distinct countries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhitelistedDestinations(Vec<Destination>);

impl WhitelistedDestinations {
    pub const MAX: usize = 250;
    const FIELD: &'static str = "whitelisted_destinations";

    pub fn all() -> Self {
        Self(vec![Destination::All])
    }

    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::new(Self::FIELD, "empty", "must name at least one destination ('*' for all)"));
        }
        if raw.len() > Self::MAX {
            return Err(ValidationError::new(Self::FIELD, "too_many", format!("must have at most {} entries", Self::MAX)));
        }
        let mut out: Vec<Destination> = Vec::with_capacity(raw.len());
        for (i, r) in raw.iter().enumerate() {
            let d = Destination::parse(r.as_ref()).map_err(|e| e.at(format!("{}[{i}]", Self::FIELD)))?;
            if out.contains(&d) {
                return Err(ValidationError::new(format!("{}[{i}]", Self::FIELD), "duplicate", "is listed twice"));
            }
            out.push(d);
        }
        if out.len() > 1 && out.contains(&Destination::All) {
            return Err(ValidationError::new(Self::FIELD, "ambiguous", "'*' must stand alone"));
        }
        Ok(Self(out))
    }

    pub fn as_strings(&self) -> Vec<String> {
        self.0.iter().map(|d| d.as_str().to_owned()).collect()
    }
}

/// A messaging profile as stored and as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingProfile {
    pub id: ProfileId,
    pub user_id: UserId,
    pub name: ProfileName,
    pub whitelisted_destinations: WhitelistedDestinations,
    /// Mirrors the per-user active pointer; both are written in one transaction.
    pub active: bool,
    pub sync_state: SyncState,
    pub sync_error: Option<SyncError>,
    pub carrier_profile_id: Option<CarrierProfileId>,
    /// Bumped by every user write; the worker's writes are conditioned on it.
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl MessagingProfile {
    pub fn new(user_id: UserId, input: NewProfile, now: OffsetDateTime) -> Self {
        Self {
            id: ProfileId::new_v7(),
            user_id,
            name: input.name,
            whitelisted_destinations: input.whitelisted_destinations,
            active: false,
            sync_state: SyncState::Pending,
            sync_error: None,
            carrier_profile_id: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn is_deleting(&self) -> bool {
        self.sync_state == SyncState::Deleting
    }
}

/// A validated create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProfile {
    pub name: ProfileName,
    pub whitelisted_destinations: WhitelistedDestinations,
}

impl NewProfile {
    /// A stable fingerprint of the request, stored with an idempotency key so a reuse of the key
    /// with a different body is recognised.
    pub fn fingerprint(&self) -> String {
        format!("{}\u{1f}{}", self.name.as_str(), self.whitelisted_destinations.as_strings().join(","))
    }
}

/// A validated rename/settings change; at least one field is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePatch {
    pub name: Option<ProfileName>,
    pub whitelisted_destinations: Option<WhitelistedDestinations>,
}

impl ProfilePatch {
    pub fn new(name: Option<ProfileName>, whitelisted_destinations: Option<WhitelistedDestinations>) -> Result<Self, ValidationError> {
        if name.is_none() && whitelisted_destinations.is_none() {
            return Err(ValidationError::new("body", "empty_patch", "name at least one of: name, whitelisted_destinations"));
        }
        Ok(Self { name, whitelisted_destinations })
    }
}

/// The outcome of an activation: the profile now active and the one it replaced, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub profile: MessagingProfile,
    pub deactivated: Option<ProfileId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ProfileName::parse("  Support  ").unwrap().as_str(), "Support");
        assert_eq!(ProfileName::parse("   ").unwrap_err().code, "empty");
        assert!(ProfileName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(ProfileName::parse(&"é".repeat(101)).unwrap_err().code, "too_long");
        assert_eq!(ProfileName::parse("a\u{0}b").unwrap_err().code, "invalid_character");
    }

    #[test]
    fn destinations_name_the_offending_element() {
        assert_eq!(WhitelistedDestinations::parse(&["US", "CA"]).unwrap().as_strings(), vec!["US", "CA"]);
        let e = WhitelistedDestinations::parse(&["US", "zz"]).unwrap_err();
        assert_eq!(e.field, "whitelisted_destinations[1]");
        let e = WhitelistedDestinations::parse(&["US", "US"]).unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("whitelisted_destinations[1]", "duplicate"));
        assert_eq!(WhitelistedDestinations::parse(&["*", "US"]).unwrap_err().code, "ambiguous");
        assert_eq!(WhitelistedDestinations::parse::<&str>(&[]).unwrap_err().code, "empty");
    }

    #[test]
    fn a_patch_must_change_something() {
        assert_eq!(ProfilePatch::new(None, None).unwrap_err().code, "empty_patch");
        assert!(ProfilePatch::new(Some(ProfileName::parse("x").unwrap()), None).is_ok());
    }
}
