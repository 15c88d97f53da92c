//! The dialer's operations: what the sip-connections function and the worker call.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::dialer::{
    connection_numbers, AssignmentPatch, CarrierConnection, ConnectionId, ConnectionName, ConnectionPatch, ConnectionSpec, NumberRole,
    SipConnection, SipPassword, VoiceAssignment, WebrtcToken, TOKENS_PER_MINUTE, TOKEN_LIFETIME,
};
use crate::number_ops::ByCarrier;
use crate::ports::{
    CarrierError, ConnectionSyncLedger, ConnectionWriter, Created, DialerCarrier, QueueError, SecretError, SipSecrets, WorkQueue,
};
use crate::profiles::{settle, SyncOutcome, SyncRetry};
use crate::{CarrierName, CommandEnvelope, Conflict, Cursor, IdempotencyKey, Limit, Page, StoreError, SyncError, SyncState, UserId, E164};

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
    Queue(#[from] QueueError),
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
        crate::dialer::default_caller_id(&self.numbers)
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
    pub queue: &'a dyn WorkQueue,
    pub dialers: &'a Dialers,
}

fn sync_command(c: &SipConnection) -> CommandEnvelope {
    CommandEnvelope::sync_connection(c.user_id.clone(), c.id, c.version)
}

impl Dialer<'_> {
    pub fn carrier(&self, requested: Option<CarrierName>) -> Result<(CarrierName, &Arc<dyn DialerCarrier>), DialerError> {
        self.dialers.pick(requested).map_err(DialerError::CarrierNotConfigured)
    }

    /// Create a connection: the record (with the key's guard), then its password in the secret store,
    /// then the worker's command. The password is answered only when this call stored it: a replay
    /// answers the record without it (rotate to get a new one), unless the first attempt never got as
    /// far as storing one.
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
        let created = self.store.create_connection(&connection, key.map(|k| (k, fingerprint.as_str()))).await?;
        let c = match &created {
            Created::New(c) | Created::Replayed(c) => c,
        };
        let shown = match &created {
            Created::New(_) => Some(SipPassword::generate()),
            Created::Replayed(c) if c.sync_state == SyncState::Pending && self.secrets.get_password(c.id).await?.is_none() => {
                Some(SipPassword::generate())
            }
            Created::Replayed(_) => None,
        };
        if let Some(p) = &shown {
            self.secrets.put_password(c.id, p).await?;
        }
        if c.sync_state == SyncState::Pending {
            self.queue.enqueue(&sync_command(c)).await?;
        }
        Ok((created, shown))
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
                let patchbays = c.user_name.as_deref().is_some_and(looks_like_patchbay);
                (known.is_some() || !patchbays).then_some(CarrierListing { connection: c, known })
            })
            .collect())
    }

    pub async fn update(
        &self,
        user: &UserId,
        id: ConnectionId,
        patch: &ConnectionPatch,
        now: OffsetDateTime,
    ) -> Result<SipConnection, DialerError> {
        let c = self.store.update_connection(user, id, patch, now).await?;
        self.queue.enqueue(&sync_command(&c)).await?;
        Ok(c)
    }

    pub async fn delete(&self, user: &UserId, id: ConnectionId, now: OffsetDateTime) -> Result<SipConnection, DialerError> {
        let c = self.store.mark_connection_deleting(user, id, now).await?;
        self.queue.enqueue(&sync_command(&c)).await?;
        Ok(c)
    }

    /// A new password: stored, then the record's version bumped so the worker pushes it to the carrier.
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
        let password = SipPassword::generate();
        self.secrets.put_password(id, &password).await?;
        let c = self.store.password_rotated(user, id, now).await?;
        self.queue.enqueue(&sync_command(&c)).await?;
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
        let n = self.store.assign_voice(user, e164, id, role, now).await.map_err(number_error)?;
        self.queue.enqueue(&CommandEnvelope::sync_number(user.clone(), n.e164.clone(), n.version)).await?;
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
        let n = self.store.unassign_voice(user, e164, id, now).await.map_err(number_error)?;
        self.queue.enqueue(&CommandEnvelope::sync_number(user.clone(), n.e164.clone(), n.version)).await?;
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
                let kept = self.store.remember_telephony_credential(user, id, &made).await?;
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

/// A user name Patchbay generated (`pb` and 30 hex digits).
fn looks_like_patchbay(user_name: &str) -> bool {
    user_name.len() == 32 && user_name.starts_with("pb") && user_name[2..].chars().all(|c| c.is_ascii_hexdigit())
}

fn page(connection: SipConnection, numbers: &[crate::PhoneNumber]) -> ConnectionPage {
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

/// The worker side: bring the carrier's credential connection in line with the record (create it,
/// push a rename, (de)activation or new password, or delete it with its secret).
#[allow(clippy::too_many_arguments)] // the ports, then what to sync
pub async fn sync_connection(
    store: &dyn ConnectionSyncLedger,
    secrets: &dyn SipSecrets,
    dialers: &Dialers,
    public_url: Option<&str>,
    user: &UserId,
    id: ConnectionId,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let c = match store.get_connection(user, id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(SyncOutcome::Gone),
        Err(e) => return Err(SyncRetry::Store(e)),
    };
    let secret_down = |e: SecretError| SyncRetry::Carrier(CarrierError::Transient(e.to_string()));
    let Some(dialer) = dialers.get(c.carrier) else {
        let err = CarrierError::NotConfigured(format!("no credentials for {}", c.carrier));
        return fail(store, &c, err, final_attempt, now, None).await;
    };
    if c.sync_state == SyncState::Deleting {
        if let Some(credential) = &c.telephony_credential_id {
            match dialer.delete_telephony_credential(credential).await {
                Ok(()) | Err(CarrierError::NotFound) => {}
                Err(e) => return fail(store, &c, e, final_attempt, now, None).await,
            }
        }
        if let Some(cid) = &c.carrier_connection_id {
            match dialer.delete_credential_connection(cid).await {
                Ok(()) | Err(CarrierError::NotFound) => {}
                Err(e) => return fail(store, &c, e, final_attempt, now, None).await,
            }
        }
        secrets.delete_password(id).await.map_err(secret_down)?;
        return settle(store.purge_connection(user, id, c.version).await, SyncOutcome::Deleted);
    }
    if c.sync_state != SyncState::Pending {
        return Ok(SyncOutcome::UpToDate);
    }
    let password = match secrets.get_password(id).await.map_err(secret_down)? {
        Some(p) => p,
        // The API stores the password before it enqueues; a create whose secret write failed is
        // retried by its client. Wait for it.
        None => return Err(SyncRetry::Carrier(CarrierError::Transient("the connection's password is not stored yet".into()))),
    };
    let spec = ConnectionSpec {
        local_id: c.id,
        name: c.name.as_str().to_owned(),
        user_name: c.sip_username.clone(),
        password: password.clone(),
        active: c.active,
        webhook_event_url: public_url.map(|u| format!("{}/webhooks/telnyx", u.trim_end_matches('/'))),
    };
    let existing = match &c.carrier_connection_id {
        Some(cid) => Some(cid.clone()),
        // A create whose answer was lost left a connection with our user name: adopt it.
        None => match dialer.find_credential_connection(&c.sip_username).await {
            Ok(found) => found,
            Err(e) => return fail(store, &c, e, final_attempt, now, Some(&password)).await,
        },
    };
    let result = match &existing {
        Some(cid) => dialer.update_credential_connection(cid, &spec).await.map(|()| cid.clone()),
        None => dialer.create_credential_connection(&spec).await,
    };
    match result {
        Ok(cid) => match store.record_connection_synced(user, id, c.version, &cid, now).await {
            Err(StoreError::Conflict(_)) if c.carrier_connection_id.is_none() => {
                // The record moved on while we created it: keep the id so the next sync updates it.
                settle(store.record_connection_carrier_id(user, id, &cid).await, SyncOutcome::Superseded)
            }
            r => settle(r, if existing.is_some() { SyncOutcome::Updated } else { SyncOutcome::Created }),
        },
        Err(e) => fail(store, &c, e, final_attempt, now, Some(&password)).await,
    }
}

/// A connection sync that cannot go on: permanent errors (and transient ones on the last delivery)
/// are recorded with the carrier's reason, the password scrubbed from it.
async fn fail(
    store: &dyn ConnectionSyncLedger,
    c: &SipConnection,
    error: CarrierError,
    final_attempt: bool,
    now: OffsetDateTime,
    password: Option<&SipPassword>,
) -> Result<SyncOutcome, SyncRetry> {
    let transient = matches!(error, CarrierError::Transient(_));
    if transient && !final_attempt {
        return Err(SyncRetry::Carrier(scrub_error(error, password)));
    }
    let mut reason = error.failure_reason();
    if let Some(p) = password {
        reason.message = reason.message.replace(p.expose(), "[redacted]");
    }
    let recorded = store.record_connection_failed(&c.user_id, c.id, c.version, &reason, now).await;
    if transient {
        return Err(SyncRetry::Carrier(scrub_error(error, password)));
    }
    match recorded {
        Ok(()) => Ok(SyncOutcome::Failed(reason)),
        Err(StoreError::Conflict(_)) | Err(StoreError::NotFound) => Ok(SyncOutcome::Superseded),
        Err(e) => Err(SyncRetry::Store(e)),
    }
}

fn scrub_error(e: CarrierError, password: Option<&SipPassword>) -> CarrierError {
    let Some(p) = password else { return e };
    let s = |m: String| m.replace(p.expose(), "[redacted]");
    match e {
        CarrierError::Permanent { status, code, message } => CarrierError::Permanent { status, code, message: s(message) },
        CarrierError::Transient(m) => CarrierError::Transient(s(m)),
        CarrierError::NotConfigured(m) => CarrierError::NotConfigured(s(m)),
        CarrierError::NotFound => CarrierError::NotFound,
    }
}

/// What the number sync needs for voice routing.
#[derive(Clone, Copy)]
pub struct VoicePorts<'a> {
    pub store: &'a dyn ConnectionSyncLedger,
    pub dialers: &'a Dialers,
}

/// The worker side (a step of the number's sync): route an active number's inbound voice at the
/// carrier to the connection its record names (or to none).
pub async fn sync_number_voice(
    ports: VoicePorts<'_>,
    n: &crate::PhoneNumber,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let VoicePorts { store, dialers } = ports;
    let (user, e164) = (&n.user_id, &n.e164);
    if n.voice_sync != Some(SyncState::Pending) {
        return Ok(SyncOutcome::UpToDate);
    }
    let (Some(number_id), Some(dialer)) = (n.carrier_number_id.as_deref(), dialers.get(n.carrier)) else {
        // Nothing at a carrier to route (the sandbox without ids, or a carrier with no dialer).
        return settle(store.record_voice_synced(user, e164, n.version, now).await, SyncOutcome::UpToDate);
    };
    let target = match &n.voice {
        None => None,
        Some(v) => match store.get_connection(user, v.connection_id).await {
            Ok(c) => match c.carrier_connection_id {
                Some(cid) => Some(cid),
                None => return Err(SyncRetry::Carrier(CarrierError::Transient("the SIP connection is not at the carrier yet".into()))),
            },
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(SyncRetry::Store(e)),
        },
    };
    match dialer.set_number_connection(number_id, target.as_deref()).await {
        Ok(()) => settle(store.record_voice_synced(user, e164, n.version, now).await, SyncOutcome::Updated),
        Err(e @ CarrierError::Transient(_)) if !final_attempt => Err(SyncRetry::Carrier(e)),
        Err(e) => {
            let reason = e.failure_reason();
            settle(store.record_voice_failed(user, e164, n.version, &reason, now).await, SyncOutcome::Failed(reason))
        }
    }
}
