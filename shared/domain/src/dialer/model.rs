//! The dialer: SIP credential connections per user, the user's numbers on them by role, and
//! short-lived WebRTC tokens. A connection's SIP password lives only in the secret store: the record,
//! the queue and every answer but the two that create it carry none.

use std::fmt;

use time::OffsetDateTime;

use crate::kernel::error::ValidationError;
use crate::kernel::ids::{ConnectionId, UserId};
use crate::kernel::phone::E164;
use crate::kernel::provider::CarrierName;
use crate::kernel::sync::{SyncError, SyncState};
use crate::numbers::model::{NumberRole, PhoneNumber, VoiceAssignment};

impl ConnectionId {
    /// The SIP user name Patchbay gives this connection: `pb` and the id's 30 last hex digits
    /// (Telnyx: 4 to 32 alphanumeric characters, unique in the account).
    pub fn sip_username(&self) -> String {
        let hex = self.as_uuid().simple().to_string();
        format!("pb{}", &hex[2..])
    }
}

/// A connection's display name: 1 to 64 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionName(String);

impl ConnectionName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        crate::kernel::text::display_name(raw, Self::MAX_CHARS).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A generated SIP password: shown to its owner once, kept only in the secret store. Its `Debug`
/// never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct SipPassword(String);

impl SipPassword {
    pub const LEN: usize = 32;

    /// `LEN` characters from `[A-Za-z0-9]`, drawn from the operating system's CSPRNG (about 190 bits).
    pub fn generate() -> Self {
        use rand::distr::{Alphanumeric, SampleString};
        use rand::TryRngCore;
        Self(Alphanumeric.sample_string(&mut rand::rngs::OsRng.unwrap_err(), Self::LEN))
    }
    /// A stored password, read back from the secret store.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SipPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SipPassword([redacted])")
    }
}

/// A user's SIP credential connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConnection {
    pub user_id: UserId,
    pub id: ConnectionId,
    pub name: ConnectionName,
    /// Telnyx, or the sandbox.
    pub carrier: CarrierName,
    pub active: bool,
    pub sync_state: SyncState,
    pub sync_error: Option<SyncError>,
    /// The carrier's credential connection id, once created.
    pub carrier_connection_id: Option<String>,
    pub sip_username: String,
    /// The carrier's telephony credential for WebRTC tokens, created on first use.
    pub telephony_credential_id: Option<String>,
    /// How many of the user's numbers are on it (a delete waits for zero).
    pub number_count: u32,
    /// Which stored password is the connection's: the secret's version a rotation staged and this
    /// record names (`None`: the one stored when the connection was created). The worker pushes
    /// only this one, so a rotation that never reached the record changes nothing.
    pub password_version: Option<PasswordVersion>,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl SipConnection {
    pub fn new(user_id: UserId, name: ConnectionName, carrier: CarrierName, now: OffsetDateTime) -> Self {
        let id = ConnectionId::new_v7();
        Self {
            user_id,
            sip_username: id.sip_username(),
            id,
            name,
            carrier,
            active: true,
            sync_state: SyncState::Pending,
            sync_error: None,
            carrier_connection_id: None,
            telephony_credential_id: None,
            number_count: 0,
            password_version: None,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// The request fingerprint for `Idempotency-Key` replays.
    pub fn fingerprint(name: &ConnectionName, carrier: CarrierName) -> String {
        format!("sip-connection\n{}\n{carrier}", name.as_str())
    }
}

impl SipConnection {
    /// As a change leaves it: the patch applied, its sync pending at the next version.
    pub fn patched(mut self, patch: &ConnectionPatch, now: OffsetDateTime) -> Self {
        if let Some(name) = &patch.name {
            self.name = name.clone();
        }
        if let Some(active) = patch.active {
            self.active = active;
        }
        self.sync_state = SyncState::Pending;
        self.sync_error = None;
        self.version += 1;
        self.updated_at = now;
        self
    }
}

/// The id of one stored version of a connection's password (a UUID, the secret store's version id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordVersion(String);

impl PasswordVersion {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The numbers of one connection, in caller-ID order (primary, secondary, backup; then by number).
pub fn connection_numbers(id: ConnectionId, numbers: &[PhoneNumber]) -> Vec<(E164, VoiceAssignment)> {
    let mut on: Vec<(E164, VoiceAssignment)> =
        numbers.iter().filter_map(|n| n.voice.as_ref().filter(|v| v.connection_id == id).map(|v| (n.e164.clone(), v.clone()))).collect();
    on.sort_by(|a, b| (a.1.role, a.0.as_str()).cmp(&(b.1.role, b.0.as_str())));
    on
}

/// The caller id a dialer selects first: the first active number in that order.
pub fn default_caller_id(on: &[(E164, VoiceAssignment)]) -> Option<&E164> {
    on.iter().find(|(_, v)| v.active).map(|(e, _)| e)
}

/// A change to a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionPatch {
    pub name: Option<ConnectionName>,
    pub active: Option<bool>,
}

/// A change to a number's assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentPatch {
    pub role: Option<NumberRole>,
    pub active: Option<bool>,
}

/// What the carrier is asked to hold for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSpec {
    pub local_id: ConnectionId,
    pub name: String,
    pub user_name: String,
    pub password: SipPassword,
    pub active: bool,
    /// Where the carrier sends the connection's call events (`{PATCHBAY_PUBLIC_URL}/webhooks/telnyx`).
    pub webhook_event_url: Option<String>,
}

/// A credential connection as the carrier lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierConnection {
    pub id: String,
    pub name: String,
    pub user_name: Option<String>,
    pub active: bool,
}

/// A WebRTC login token from the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebrtcToken {
    pub token: String,
    pub expires_at: OffsetDateTime,
}

/// A SIP user name of the shape Patchbay generates (`pb` and 30 hex digits, `ConnectionId::sip_username`):
/// such a connection at the carrier is Patchbay's, whoever's it is.
pub fn is_patchbay_user_name(user_name: &str) -> bool {
    user_name.len() == 32 && user_name.starts_with("pb") && user_name[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The longest a WebRTC token may live.
pub const TOKEN_LIFETIME: time::Duration = time::Duration::hours(24);

/// WebRTC tokens per user per minute.
pub const TOKENS_PER_MINUTE: u32 = 30;

/// The `exp` of a JWT's payload, when it has one (no signature check: it is the carrier's own token,
/// read for display).
pub fn jwt_expiry(token: &str) -> Option<OffsetDateTime> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    OffsetDateTime::from_unix_timestamp(v.get("exp")?.as_i64()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_random_and_never_printed() {
        let a = SipPassword::generate();
        let b = SipPassword::generate();
        assert_eq!(a.expose().len(), SipPassword::LEN);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn sip_usernames_fit_telnyx() {
        let id = ConnectionId::new_v7();
        let u = id.sip_username();
        assert!((4..=32).contains(&u.len()), "{u}");
        assert!(u.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(u, ConnectionId::new_v7().sip_username());
    }

    #[test]
    fn roles_order_caller_ids() {
        assert!(NumberRole::Primary < NumberRole::Secondary && NumberRole::Secondary < NumberRole::Backup);
        assert_eq!(NumberRole::parse("boss").unwrap_err().field, "role");
        assert_eq!(ConnectionName::parse(&"x".repeat(65)).unwrap_err().code, "too_long");
        assert!(ConnectionId::parse("0190F3C4-5C2A-7B3E-8F00-000000000001").is_err());
    }

    #[test]
    fn patchbay_user_names_are_recognised() {
        assert!(is_patchbay_user_name(&ConnectionId::new_v7().sip_username()));
        assert!(!is_patchbay_user_name("alice"));
        assert!(!is_patchbay_user_name("pbzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"));
    }

    #[test]
    fn reads_a_jwt_expiry() {
        use base64::Engine;
        let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1900000000}"#);
        assert_eq!(jwt_expiry(&format!("h.{p}.s")).unwrap().unix_timestamp(), 1_900_000_000);
        assert!(jwt_expiry("not a jwt").is_none());
    }
}
