//! The dialer's operations: what the sip-connections function calls.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::dialer::model::{
    connection_numbers, default_caller_id, is_patchbay_user_name, AssignmentPatch, CarrierConnection, ConnectionName, ConnectionPatch,
    PasswordVersion, SipConnection, SipPassword, WebrtcToken, TOKENS_PER_MINUTE, TOKEN_LIFETIME,
};
use crate::dialer::ports::{ConnectionWriter, DialerCarrier, SecretError, SipSecrets};
use crate::kernel::error::{Conflict, StoreError};
use crate::kernel::ids::{ConnectionId, IdempotencyKey, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;
use crate::kernel::provider::{ByCarrier, CarrierError, CarrierName, Created};
use crate::kernel::sync::{SyncError, SyncState};
use crate::numbers::model::{NumberRole, PhoneNumber, VoiceAssignment};

/// The dialer carriers (Telnyx, the sandbox; Twilio has none).
pub type Dialers = ByCarrier<dyn DialerCarrier>;

/// Why a dialer request did not do what was asked. Each variant decides one status.
#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    #[error("SIP connection not found")]
    NotFound,
    #[error("phone number not found")]
    NumberNotFound,
    #[error("conflict: {0}")]
    Conflict(Conflict),
    #[error("no credentials for {0}")]
    CarrierNotConfigured(CarrierName),
    #[error("{0}: {1}")]
    Carrier(CarrierName, CarrierError),
    #[error("too many WebRTC tokens; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
}

impl From<StoreError> for DialerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => DialerError::NotFound,
            StoreError::Conflict(c) => DialerError::Conflict(c),
            other => DialerError::Store(other),
        }
    }
}

/// A connection with its numbers in caller-ID order.
#[derive(Debug, Clone)]
pub struct ConnectionPage {
    pub connection: SipConnection,
    pub numbers: Vec<(E164, VoiceAssignment)>,
    /// The number's voice sync, per number in `numbers`.
    pub sync: Vec<(SyncState, Option<SyncError>)>,
}

impl ConnectionPage {
    pub fn default_caller_id(&self) -> Option<&E164> {
        default_caller_id(&self.numbers)
    }
}

/// A carrier connection, and whether it is one of the caller's.
#[derive(Debug, Clone)]
pub struct CarrierListing {
    pub connection: CarrierConnection,
    pub known: Option<ConnectionId>,
}

/// A token for the browser: no password, the connection's caller ids.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: WebrtcToken,
    pub connection_id: ConnectionId,
    pub caller_ids: Vec<E164>,
}

pub struct Dialer<'a> {
    pub store: &'a dyn ConnectionWriter,
    pub secrets: &'a dyn SipSecrets,
    pub dialers: &'a Dialers,
}

impl Dialer<'_> {
    pub fn carrier(&self, requested: Option<CarrierName>) -> Result<(CarrierName, &Arc<dyn DialerCarrier>), DialerError> {
        self.dialers.pick(requested).map_err(DialerError::CarrierNotConfigured)
    }

    /// Create a connection: its password in the secret store first (under the new connection's id),
    /// then the record with the key's guard and its sync in one transaction. A break before the
    /// record leaves only an unused secret, never a record without a password. The password is
    /// answered only by the call that made it: a replay answers the connection without it (rotate to
    /// get a new one) and never stores another.
    pub async fn create(
        &self,
        user: &UserId,
        name: ConnectionName,
        carrier: Option<CarrierName>,
        key: Option<&IdempotencyKey>,
        now: OffsetDateTime,
    ) -> Result<(Created<SipConnection>, Option<SipPassword>), DialerError> {
        let (carrier, _) = self.carrier(carrier)?;
        let fingerprint = SipConnection::fingerprint(&name, carrier);
        let connection = SipConnection::new(user.clone(), name, carrier, now);
        let password = SipPassword::generate();
        self.secrets.create_password(connection.id, &password).await?;
        let created = match self.store.create_connection(&connection, key.map(|k| (k, fingerprint.as_str()))).await {
            Ok(c) => c,
            Err(e) => {
                self.forget_password(connection.id).await;
                return Err(e.into());
            }
        };
        match created {
            Created::New(c) => Ok((Created::New(c), Some(password))),
            // A replay answers the connection without its password (shown once; rotate for a new
            // one), and writes none: the password stored with the first request stays the one in use.
            Created::Replayed(c) => {
                self.forget_password(connection.id).await;
                Ok((Created::Replayed(c), None))
            }
        }
    }

    /// The secret of a connection that was never recorded (a replay answered another, or the record
    /// was refused): deleted, best effort (what is left is an unused secret under the prefix).
    async fn forget_password(&self, id: ConnectionId) {
        if let Err(e) = self.secrets.delete_password(id).await {
            tracing::warn!(connection_id = %id, error = %e, "an unused SIP password secret was left behind");
        }
    }

    pub async fn get(&self, user: &UserId, id: ConnectionId) -> Result<ConnectionPage, DialerError> {
        let connection = self.store.get_connection(user, id).await?;
        let numbers = self.store.all_numbers(user).await?;
        Ok(page(connection, &numbers))
    }

    /// The user's connections, each with its numbers; inactive ones only when asked for.
    pub async fn list(
        &self,
        user: &UserId,
        cursor: Option<&Cursor>,
        limit: Limit,
        include_inactive: bool,
    ) -> Result<Page<ConnectionPage>, DialerError> {
        let p = self.store.list_connections(user, cursor, limit).await?;
        let numbers = if p.data.is_empty() { Vec::new() } else { self.store.all_numbers(user).await? };
        Ok(Page {
            data: p.data.into_iter().filter(|c| include_inactive || c.active).map(|c| page(c, &numbers)).collect(),
            next_cursor: p.next_cursor,
        })
    }

    /// The carrier account's connections: the caller's own marked with their Patchbay id, other users'
    /// Patchbay connections left out, anything else marked unknown (drift to look at).
    pub async fn list_at_carrier(&self, user: &UserId, carrier: Option<CarrierName>) -> Result<Vec<CarrierListing>, DialerError> {
        let (name, dialer) = self.carrier(carrier)?;
        let mut mine = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let p = self.store.list_connections(user, cursor.as_ref(), Limit::max()).await?;
            mine.extend(p.data.into_iter().map(|c| (c.sip_username, c.id)));
            match p.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let listed = dialer.list_credential_connections().await.map_err(|e| DialerError::Carrier(name, e))?;
        Ok(listed
            .into_iter()
            .filter_map(|c| {
                let known = c.user_name.as_deref().and_then(|u| mine.iter().find(|(m, _)| m == u)).map(|(_, id)| *id);
                let patchbays = c.user_name.as_deref().is_some_and(is_patchbay_user_name);
                (known.is_some() || !patchbays).then_some(CarrierListing { connection: c, known })
            })
            .collect())
    }

    /// Rename or (de)activate; the carrier's copy follows (its sync is in the same transaction).
    pub async fn update(
        &self,
        user: &UserId,
        id: ConnectionId,
        patch: &ConnectionPatch,
        now: OffsetDateTime,
    ) -> Result<SipConnection, DialerError> {
        Ok(self.store.update_connection(user, id, patch, now).await?)
    }

    /// Start a delete (its sync in the same transaction; a repeated DELETE writes it again).
    pub async fn delete(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<SipConnection, DialerError> {
        Ok(self.store.mark_connection_deleting(user, id, now).await?)
    }

    /// A new password: staged as a new version of the connection's secret, then named by the record
    /// (version bumped, the sync that pushes it in the same transaction). The password in use at the
    /// carrier changes only once the record names the new one: a rotation that fails before that
    /// leaves an unused version, and one that meets a deleted connection re-creates nothing.
    pub async fn rotate_password(
        &self,
        user: &UserId,
        id: ConnectionId,
        now: OffsetDateTime,
    ) -> Result<(SipConnection, SipPassword), DialerError> {
        let current = self.store.get_connection(user, id).await?;
        if current.sync_state == SyncState::Deleting {
            return Err(DialerError::Conflict(Conflict::ConnectionDeleting));
        }
        let (version, password) = (PasswordVersion::generate(), SipPassword::generate());
        if !self.secrets.stage_password(id, &version, &password).await? {
            // The secret went with the connection: it was deleted meanwhile.
            return Err(self
                .store
                .get_connection(user, id)
                .await
                .err()
                .map_or(DialerError::Conflict(Conflict::ConnectionDeleting), Into::into));
        }
        let c = self.store.password_rotated(user, id, &version, now).await?;
        Ok((c, password))
    }

    pub async fn assign(
        &self,
        user: &UserId,
        id: ConnectionId,
        e164: &E164,
        role: NumberRole,
        now: OffsetDateTime,
    ) -> Result<ConnectionPage, DialerError> {
        self.store.get_connection(user, id).await?;
        self.store.assign_voice(user, e164, id, role, now).await.map_err(number_error)?;
        self.get(user, id).await
    }

    pub async fn update_assignment(
        &self,
        user: &UserId,
        id: ConnectionId,
        e164: &E164,
        patch: &AssignmentPatch,
        now: OffsetDateTime,
    ) -> Result<ConnectionPage, DialerError> {
        self.store.get_connection(user, id).await?;
        self.store.update_voice(user, e164, id, patch, now).await.map_err(number_error)?;
        self.get(user, id).await
    }

    pub async fn unassign(&self, user: &UserId, id: ConnectionId, e164: &E164, now: OffsetDateTime) -> Result<ConnectionPage, DialerError> {
        self.store.get_connection(user, id).await?;
        self.store.unassign_voice(user, e164, id, now).await.map_err(number_error)?;
        self.get(user, id).await
    }

    /// A WebRTC token for an active, synced connection: one of the user's tokens for this minute, the
    /// connection's telephony credential (created on first use and remembered), then the carrier's token.
    pub async fn token(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<IssuedToken, DialerError> {
        let page = self.get(user, id).await?;
        let c = &page.connection;
        if c.sync_state == SyncState::Deleting {
            return Err(DialerError::Conflict(Conflict::ConnectionDeleting));
        }
        if !c.active {
            return Err(DialerError::Conflict(Conflict::ConnectionInactive));
        }
        let Some(carrier_id) = c.carrier_connection_id.as_deref().filter(|_| c.sync_state == SyncState::Synced) else {
            return Err(DialerError::Conflict(Conflict::ConnectionNotReady));
        };
        if !self.store.take_token(user, now, TOKENS_PER_MINUTE).await? {
            return Err(DialerError::RateLimited { retry_after: 60 - (now.unix_timestamp().rem_euclid(60)) as u64 });
        }
        let (name, dialer) = self.carrier(Some(c.carrier))?;
        let carrier = |e| DialerError::Carrier(name, e);
        let credential = match &c.telephony_credential_id {
            Some(id) => id.clone(),
            None => {
                let made = dialer.create_telephony_credential(carrier_id, &format!("patchbay-{}", c.id)).await.map_err(carrier)?;
                let kept = match self.store.remember_telephony_credential(user, id, &made).await {
                    Ok(kept) => kept,
                    Err(e) => {
                        // Not remembered: nothing would ever delete it (crash-audit F14). Deleted
                        // now, best effort; the retry makes (and remembers) another.
                        if let Err(d) = dialer.delete_telephony_credential(&made).await {
                            tracing::warn!(connection_id = %id, error = %d, "an unremembered telephony credential was left at the carrier");
                        }
                        return Err(e.into());
                    }
                };
                if kept != made {
                    // Another request created one first: ours is not needed.
                    let _ = dialer.delete_telephony_credential(&made).await;
                }
                kept
            }
        };
        let mut token = dialer.webrtc_token(&credential, now).await.map_err(carrier)?;
        token.expires_at = token.expires_at.min(now + TOKEN_LIFETIME);
        let caller_ids = page.numbers.iter().filter(|(_, v)| v.active).map(|(e, _)| e.clone()).collect();
        Ok(IssuedToken { token, connection_id: id, caller_ids })
    }
}

fn page(connection: SipConnection, numbers: &[PhoneNumber]) -> ConnectionPage {
    let on = connection_numbers(connection.id, numbers);
    let sync = on
        .iter()
        .map(|(e, _)| {
            let n = numbers.iter().find(|n| &n.e164 == e);
            (n.and_then(|n| n.voice_sync).unwrap_or(SyncState::Pending), n.and_then(|n| n.voice_sync_error.clone()))
        })
        .collect();
    ConnectionPage { connection, numbers: on, sync }
}

/// On a number route, a missing record is the number's (the connection's absence is `Conflict`-free
/// `NotFound` too, told apart by the store answering `Conflict(NumberNotOnConnection)` or not).
fn number_error(e: StoreError) -> DialerError {
    match e {
        StoreError::NotFound => DialerError::NumberNotFound,
        other => other.into(),
    }
}
