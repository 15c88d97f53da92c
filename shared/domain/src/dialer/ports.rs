//! What the dialer needs from outside: the store, the secret store (SIP passwords) and the carrier.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::dialer::model::{
    AssignmentPatch, CarrierConnection, ConnectionPatch, ConnectionSpec, PasswordVersion, SipConnection, SipPassword, WebrtcToken,
};
use crate::kernel::error::StoreError;
use crate::kernel::ids::{ConnectionId, IdempotencyKey, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;
use crate::kernel::provider::{CarrierError, CarrierName, Created};
use crate::kernel::sync::SyncError;
use crate::numbers::model::{NumberRole, PhoneNumber};
use crate::numbers::ports::NumberReader;

/// SIP connection reads.
#[async_trait]
pub trait ConnectionReader: Send + Sync {
    /// The user's connection (one being deleted included); `NotFound` for absent or foreign ids.
    async fn get_connection(&self, user: &UserId, id: ConnectionId) -> Result<SipConnection, StoreError>;
    /// The user's connections in creation order.
    async fn list_connections(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<SipConnection>, StoreError>;
}

/// The dialer API's writes. Every rule is a condition in the same write.
#[async_trait]
pub trait ConnectionWriter: ConnectionReader + NumberReader {
    /// Put a new connection (`attribute_not_exists`), with the key's guard and its sync (an outbox
    /// item) in the same transaction.
    async fn create_connection(
        &self,
        connection: &SipConnection,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<SipConnection>, StoreError>;
    /// Rename or (de)activate; bumps the version, `pending`, its sync in the same transaction.
    /// `Conflict(ConnectionDeleting)` once deleting.
    async fn update_connection(
        &self,
        user: &UserId,
        id: ConnectionId,
        patch: &ConnectionPatch,
        now: OffsetDateTime,
    ) -> Result<SipConnection, StoreError>;
    /// A new password is staged in the secret store as `password`: the record names it, its version
    /// bumped and `pending`, the sync that pushes it in the same transaction.
    /// `Conflict(ConnectionDeleting)` once deleting.
    async fn password_rotated(
        &self,
        user: &UserId,
        id: ConnectionId,
        password: &PasswordVersion,
        now: OffsetDateTime,
    ) -> Result<SipConnection, StoreError>;
    /// Start a delete (`deleting`, its sync in the same transaction), only while no number is on the
    /// connection (`Conflict(ConnectionHasNumbers)`). A connection already deleting is answered, its
    /// sync written again.
    async fn mark_connection_deleting(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<SipConnection, StoreError>;
    /// Put one of the user's active numbers on a connection with a role, in one transaction of two
    /// items: the number's record (its SIP side, guarded by its version: on no other connection, and
    /// no voice-AI assistant, since a number's calls go to one place: `Conflict(NumberVoiceInUse)`) and
    /// the connection (not deleting; its number count; a `primary` takes its one primary slot:
    /// `Conflict(PrimaryTaken)`). Putting a number already there changes its role. Every change writes
    /// the number's sync at its new version in the same transaction.
    async fn assign_voice(
        &self,
        user: &UserId,
        e164: &E164,
        id: ConnectionId,
        role: NumberRole,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError>;
    /// Change a number's role or whether it is offered as a caller id: the number's record and, when
    /// the primary changes hands, the connection's primary slot, in one transaction.
    async fn update_voice(
        &self,
        user: &UserId,
        e164: &E164,
        id: ConnectionId,
        patch: &AssignmentPatch,
        now: OffsetDateTime,
    ) -> Result<PhoneNumber, StoreError>;
    /// Take a number off a connection, in one transaction: the number's record and the connection (its
    /// count, and its primary slot if the number held it). A retry that finds the number off every
    /// connection, its carrier side still pending, answers it and writes its sync again.
    async fn unassign_voice(&self, user: &UserId, e164: &E164, id: ConnectionId, now: OffsetDateTime) -> Result<PhoneNumber, StoreError>;
    /// Remember the connection's telephony credential; the first one stored wins and is answered.
    async fn remember_telephony_credential(&self, user: &UserId, id: ConnectionId, credential_id: &str) -> Result<String, StoreError>;
    /// Take one of the user's `per_minute` WebRTC tokens for this minute: false when they are all taken.
    async fn take_token(&self, user: &UserId, now: OffsetDateTime, per_minute: u32) -> Result<bool, StoreError>;
}

/// The worker's connection writes: what the carrier now holds.
#[async_trait]
pub trait ConnectionSyncLedger: ConnectionReader + NumberReader {
    /// The carrier has `version` under `carrier_id`: first the route the connection's call events find
    /// their user by (idempotent), then the record `synced` with the id. `Conflict(Stale)` if the
    /// version moved (the route stays: it names this user's connection).
    async fn record_connection_synced(
        &self,
        user: &UserId,
        id: ConnectionId,
        version: u64,
        carrier_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Keep the carrier id of a connection created while the record moved on.
    async fn record_connection_carrier_id(&self, user: &UserId, id: ConnectionId, carrier_id: &str) -> Result<(), StoreError>;

    /// The connection's call-event route put again (idempotent): a redelivered sync of a synced
    /// connection repairs a route lost before routes were written with their state.
    async fn ensure_connection_route(&self, user: &UserId, id: ConnectionId, carrier_id: &str) -> Result<(), StoreError>;
    /// The carrier refused `version` for good: `failed` with why (a deleting connection stays deleting).
    async fn record_connection_failed(
        &self,
        user: &UserId,
        id: ConnectionId,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Remove a `deleting` connection once the carrier's copy and the secret are gone.
    async fn purge_connection(&self, user: &UserId, id: ConnectionId, version: u64) -> Result<(), StoreError>;
    /// A redrive: a connection whose last delivery gave up goes back to `pending`; false when it
    /// was not in that state.
    async fn reset_given_up_connection(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// The carrier has the number on the connection its record names (or on none).
    async fn record_voice_synced(&self, user: &UserId, e164: &E164, version: u64, now: OffsetDateTime) -> Result<(), StoreError>;
    async fn record_voice_failed(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// Why the secret store did not answer.
#[derive(Debug, thiserror::Error)]
#[error("secret store unavailable: {0}")]
pub struct SecretError(#[source] pub Box<dyn std::error::Error + Send + Sync + 'static>);

/// Where SIP passwords live (Secrets Manager, one secret per connection), and nowhere else. A
/// connection's password has versions: the one made with the connection, then one per rotation,
/// each staged before the record names it (so a rotation that fails changes nothing in use).
#[async_trait]
pub trait SipSecrets: Send + Sync {
    /// Store the password of a new connection (its first version).
    async fn create_password(&self, id: ConnectionId, password: &SipPassword) -> Result<(), SecretError>;
    /// Stage a new version for a rotation; `false` when the connection has no secret (it was deleted).
    async fn stage_password(&self, id: ConnectionId, version: &PasswordVersion, password: &SipPassword) -> Result<bool, SecretError>;
    /// Make the version the record names the secret's current one, once the carrier holds it
    /// (idempotent), so that the version in use is the one the secret store keeps.
    async fn promote_password(&self, id: ConnectionId, version: &PasswordVersion) -> Result<(), SecretError>;
    /// The version the record names (`None`: the first).
    async fn get_password(&self, id: ConnectionId, version: Option<&PasswordVersion>) -> Result<Option<SipPassword>, SecretError>;
    /// Delete it for good (no recovery window); absent is done.
    async fn delete_password(&self, id: ConnectionId) -> Result<(), SecretError>;
}

/// The carrier side of the dialer (Telnyx credential connections and telephony credentials, or the sandbox).
#[async_trait]
pub trait DialerCarrier: Send + Sync {
    fn name(&self) -> CarrierName;
    async fn create_credential_connection(&self, spec: &ConnectionSpec) -> Result<String, CarrierError>;
    /// The account's connection with this SIP user name (one created before a lost answer).
    async fn find_credential_connection(&self, user_name: &str) -> Result<Option<String>, CarrierError>;
    async fn update_credential_connection(&self, id: &str, spec: &ConnectionSpec) -> Result<(), CarrierError>;
    async fn delete_credential_connection(&self, id: &str) -> Result<(), CarrierError>;
    async fn list_credential_connections(&self) -> Result<Vec<CarrierConnection>, CarrierError>;
    async fn create_telephony_credential(&self, connection_id: &str, name: &str) -> Result<String, CarrierError>;
    async fn delete_telephony_credential(&self, id: &str) -> Result<(), CarrierError>;
    async fn webrtc_token(&self, credential_id: &str, now: OffsetDateTime) -> Result<WebrtcToken, CarrierError>;
    /// Route a number's inbound voice to a connection (`None`: to none).
    async fn set_number_connection(&self, carrier_number_id: &str, connection_id: Option<&str>) -> Result<(), CarrierError>;
}
