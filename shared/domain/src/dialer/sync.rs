//! The worker side of the dialer: a connection's sync (create, push a change or a new password,
//! delete it with its secret), and the number's SIP side (`SipRoute`, one of the number's call routes).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::dialer::model::{ConnectionSpec, SipConnection, SipPassword};
use crate::dialer::ops::Dialers;
use crate::dialer::ports::{ConnectionSyncLedger, SecretError, SipSecrets};
use crate::kernel::error::StoreError;
use crate::kernel::ids::{ConnectionId, UserId};
use crate::kernel::provider::CarrierError;
use crate::kernel::sync::{gave_up, settle, was_given_up, SyncError, SyncOutcome, SyncRetry, SyncState};
use crate::numbers::model::PhoneNumber;
use crate::numbers::ports::CallRoute;

/// The last delivery of a connection's sync failed: a connection still `pending` (or `deleting`)
/// records why (`retries_exhausted`; a delete stays deleting), and a redrive of the command resets it.
pub async fn give_up(
    store: &dyn ConnectionSyncLedger,
    user: &UserId,
    id: ConnectionId,
    reason: &SyncError,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    match store.get_connection(user, id).await {
        Ok(c) if matches!(c.sync_state, SyncState::Pending | SyncState::Deleting) => {
            gave_up(store.record_connection_failed(user, id, c.version, reason, now).await)
        }
        Ok(_) | Err(StoreError::NotFound) => Ok(()),
        Err(e) => Err(e),
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
    let read = || async {
        match store.get_connection(user, id).await {
            Ok(c) => Ok(Some(c)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(SyncRetry::Store(e)),
        }
    };
    let Some(mut c) = read().await? else { return Ok(SyncOutcome::Gone) };
    // A redrive of a command whose last delivery gave up: back to pending, and on with the sync.
    if was_given_up(c.sync_state, c.sync_error.as_ref())
        && store.reset_given_up_connection(user, id, now).await.map_err(SyncRetry::Store)?
    {
        let Some(again) = read().await? else { return Ok(SyncOutcome::Gone) };
        c = again;
    }
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
        if let (SyncState::Synced, Some(cid)) = (c.sync_state, &c.carrier_connection_id) {
            store.ensure_connection_route(user, id, cid).await.map_err(SyncRetry::Store)?;
        }
        return Ok(SyncOutcome::UpToDate);
    }
    let password = match secrets.get_password(id, c.password_version.as_ref()).await.map_err(secret_down)? {
        Some(p) => p,
        // The API stores every version before a record names it, so this is a secret store that has
        // not caught up (or a record from before versions were written first): wait for it.
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
    if let (Ok(_), Some(v)) = (&result, &c.password_version) {
        // The carrier holds this version now: it becomes the secret's current one.
        secrets.promote_password(id, v).await.map_err(secret_down)?;
    }
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

/// The number's SIP side, one of its call routes: the carrier routes an active number's inbound voice
/// to the SIP connection its record names (or to none). A release needs nothing here: the carrier
/// drops the number's route with the number.
#[derive(Clone, Copy)]
pub struct SipRoute<'a> {
    pub store: &'a dyn ConnectionSyncLedger,
    pub dialers: &'a Dialers,
}

#[async_trait]
impl CallRoute for SipRoute<'_> {
    fn pending(&self, n: &PhoneNumber) -> bool {
        n.voice_sync == Some(SyncState::Pending)
    }

    async fn give_up(&self, n: &PhoneNumber, reason: &SyncError, now: OffsetDateTime) -> Result<(), StoreError> {
        if !self.pending(n) {
            return Ok(());
        }
        gave_up(self.store.record_voice_failed(&n.user_id, &n.e164, n.version, reason, now).await)
    }

    async fn push(&self, n: &PhoneNumber, final_attempt: bool, now: OffsetDateTime) -> Result<SyncOutcome, SyncRetry> {
        let SipRoute { store, dialers } = *self;
        if !self.pending(n) {
            return Ok(SyncOutcome::UpToDate);
        }
        let (user, e164) = (&n.user_id, &n.e164);
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
}
