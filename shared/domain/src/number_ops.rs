//! Phone number operations: what the number handlers and the worker call.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::assistant_ops::{assistant_step, AssistantPorts};
use crate::dialer_ops::{sync_number_voice, VoicePorts};
use crate::ports::{
    CarrierError, Created, NumberCarrier, NumberSyncLedger, NumberWriter, Ownership, ProfileReader, Purchase, QueueError, WorkQueue,
};
use crate::profiles::{settle, SyncOutcome, SyncRetry};
use crate::{
    AvailableNumber, CarrierName, CommandEnvelope, Conflict, Cursor, IdempotencyKey, Limit, NumberSearch, NumberStatus, Page, PhoneNumber,
    ProfileId, StoreError, SyncState, UserId, E164,
};

/// One client per carrier this deployment has credentials for, of one kind (numbers, the dialer, …).
pub struct ByCarrier<T: ?Sized> {
    pub twilio: Option<Arc<T>>,
    pub telnyx: Option<Arc<T>>,
    pub sandbox: Option<Arc<T>>,
    /// Used when a request names none.
    pub default: Option<CarrierName>,
}

impl<T: ?Sized> Default for ByCarrier<T> {
    fn default() -> Self {
        Self::none()
    }
}

impl<T: ?Sized> Clone for ByCarrier<T> {
    fn clone(&self) -> Self {
        Self { twilio: self.twilio.clone(), telnyx: self.telnyx.clone(), sandbox: self.sandbox.clone(), default: self.default }
    }
}

impl<T: ?Sized> ByCarrier<T> {
    /// No carrier at all: for operations that never pick one (a list, a lookup), so that a handler
    /// need not build its carriers for them.
    pub const fn none() -> Self {
        Self { twilio: None, telnyx: None, sandbox: None, default: None }
    }

    pub fn get(&self, name: CarrierName) -> Option<&Arc<T>> {
        match name {
            CarrierName::Twilio => self.twilio.as_ref(),
            CarrierName::Telnyx => self.telnyx.as_ref(),
            CarrierName::Sandbox => self.sandbox.as_ref(),
        }
    }

    /// The requested carrier, or the deployment's default (the sandbox when none is set); `Err`
    /// names the carrier this deployment has no client for.
    pub fn pick(&self, requested: Option<CarrierName>) -> Result<(CarrierName, &Arc<T>), CarrierName> {
        let name = requested.or(self.default).unwrap_or(CarrierName::Sandbox);
        self.get(name).map(|c| (name, c)).ok_or(name)
    }
}

/// The number carriers.
pub type Carriers = ByCarrier<dyn NumberCarrier>;

#[derive(Debug, thiserror::Error)]
pub enum NumberError {
    #[error("phone number not found")]
    NotFound,
    #[error("{0}")]
    Conflict(Conflict),
    #[error("carrier {0} is not configured")]
    CarrierNotConfigured(CarrierName),
    #[error("{0}: {1}")]
    Carrier(CarrierName, CarrierError),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<StoreError> for NumberError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => NumberError::NotFound,
            StoreError::Conflict(c) => NumberError::Conflict(c),
            other => NumberError::Store(other),
        }
    }
}

/// What a DELETE did.
#[derive(Debug)]
pub enum Release {
    /// The carrier release is queued.
    Releasing(Box<PhoneNumber>),
    /// A failed purchase: its record is gone; there was nothing to release.
    Forgotten,
}

pub struct Numbers<'a> {
    pub store: &'a dyn NumberWriter,
    pub queue: &'a dyn WorkQueue,
    pub carriers: &'a Carriers,
}

impl Numbers<'_> {
    pub fn carrier(&self, requested: Option<CarrierName>) -> Result<(CarrierName, &Arc<dyn NumberCarrier>), NumberError> {
        self.carriers.pick(requested).map_err(NumberError::CarrierNotConfigured)
    }

    pub async fn search(&self, carrier: Option<CarrierName>, query: &NumberSearch) -> Result<Vec<AvailableNumber>, NumberError> {
        let (name, c) = self.carrier(carrier)?;
        c.search(query).await.map_err(|e| NumberError::Carrier(name, e))
    }

    /// Claim the number (guard + pending record in one transaction) and queue the purchase. A replay
    /// with the same key answers the first record and queues its sync again while it is pending (the
    /// FIFO queue drops the copy).
    pub async fn buy(
        &self,
        user: &UserId,
        e164: E164,
        carrier: Option<CarrierName>,
        key: Option<&IdempotencyKey>,
        now: OffsetDateTime,
    ) -> Result<Created<PhoneNumber>, NumberError> {
        let (name, _) = self.carrier(carrier)?;
        let fingerprint = PhoneNumber::purchase_fingerprint(&e164, name);
        let number = PhoneNumber::new_purchase(user.clone(), e164, name, now);
        let created = self.store.create_purchase(&number, key.map(|k| (k, fingerprint.as_str()))).await?;
        let stored = match &created {
            Created::New(n) | Created::Replayed(n) => n,
        };
        if stored.status == NumberStatus::Pending {
            self.enqueue(stored).await?;
        }
        Ok(created)
    }

    pub async fn get(&self, user: &UserId, e164: &E164) -> Result<PhoneNumber, NumberError> {
        Ok(self.store.get_number(user, e164).await?)
    }

    pub async fn list(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<PhoneNumber>, NumberError> {
        Ok(self.store.list_numbers(user, after, limit).await?)
    }

    pub async fn release(&self, user: &UserId, e164: &E164, now: OffsetDateTime) -> Result<Release, NumberError> {
        let current = self.store.get_number(user, e164).await?;
        if current.status == NumberStatus::Failed {
            self.store.forget_failed(user, e164).await?;
            return Ok(Release::Forgotten);
        }
        let releasing = self.store.mark_releasing(user, e164, now).await?;
        self.enqueue(&releasing).await?;
        Ok(Release::Releasing(Box::new(releasing)))
    }

    async fn enqueue(&self, n: &PhoneNumber) -> Result<(), QueueError> {
        enqueue_sync(self.queue, n).await
    }
}

async fn enqueue_sync(queue: &dyn WorkQueue, n: &PhoneNumber) -> Result<(), QueueError> {
    queue.enqueue(&CommandEnvelope::sync_number(n.user_id.clone(), n.e164.clone(), n.version)).await
}

/// Put an owned, active number on one of the user's profiles, and queue the carrier's copy of it.
pub async fn assign(
    store: &dyn NumberWriter,
    queue: &dyn WorkQueue,
    user: &UserId,
    e164: &E164,
    profile: ProfileId,
    now: OffsetDateTime,
) -> Result<PhoneNumber, NumberError> {
    let n = store.assign_number(user, e164, profile, now).await?;
    enqueue_sync(queue, &n).await?;
    Ok(n)
}

/// Take a number off the profile it is on, and queue the carrier's copy of it.
pub async fn unassign(
    store: &dyn NumberWriter,
    queue: &dyn WorkQueue,
    user: &UserId,
    e164: &E164,
    profile: ProfileId,
    now: OffsetDateTime,
) -> Result<PhoneNumber, NumberError> {
    let n = store.unassign_number(user, e164, profile, now).await?;
    enqueue_sync(queue, &n).await?;
    Ok(n)
}

/// The worker side: bring the carrier in line with one number's record.
/// What the number sync touches: the number's record, its profile, carriers, and the two places its
/// calls can go (a SIP connection, a voice-AI assistant).
#[derive(Clone, Copy)]
pub struct NumberPorts<'a> {
    pub store: &'a dyn NumberSyncLedger,
    pub profiles: &'a dyn ProfileReader,
    pub carriers: &'a Carriers,
    pub voice: VoicePorts<'a>,
    pub assistants: AssistantPorts<'a>,
}

pub async fn sync_number(
    ports: NumberPorts<'_>,
    user: &UserId,
    e164: &E164,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let NumberPorts { store, profiles, carriers, voice, assistants } = ports;
    let n = match store.get_number(user, e164).await {
        Ok(n) => n,
        Err(StoreError::NotFound) => return Ok(SyncOutcome::Gone),
        Err(e) => return Err(SyncRetry::Store(e)),
    };
    let carrier = match carriers.get(n.carrier) {
        Some(c) => c.as_ref(),
        None => {
            let err = CarrierError::NotConfigured(format!("no credentials for {}", n.carrier));
            return if n.status == NumberStatus::Pending {
                purchase_failed(store, &n, err, final_attempt, now).await
            } else {
                Err(SyncRetry::Carrier(err))
            };
        }
    };

    match n.status {
        // A lost number has nothing at the carrier to bring in line; its release needs no carrier call.
        NumberStatus::Failed | NumberStatus::Lost => Ok(SyncOutcome::UpToDate),
        NumberStatus::Pending => {
            let attempt = match &n.carrier_order_id {
                Some(order) => carrier.order_status(order, e164).await,
                // Look first: a purchase that went through before a lost answer is adopted, not repeated.
                None => match carrier.find_owned(e164).await {
                    Ok(Ownership::Owned(id)) => Ok(Purchase::Done(id)),
                    // An order from before a lost answer is still running: not ours yet, and a
                    // second order would be refused. Wait for it (it becomes `Owned` or goes away).
                    Ok(Ownership::Pending) => {
                        Err(CarrierError::Transient("an earlier order for this number is still pending at the carrier".into()))
                    }
                    Ok(Ownership::NotOwned) => carrier.buy(e164).await,
                    Err(e) => Err(e),
                },
            };
            match attempt {
                Ok(Purchase::Done(id)) => settle(store.record_active(user, e164, n.version, &id, now).await, SyncOutcome::Created),
                Ok(Purchase::Ordered(order)) => {
                    if n.carrier_order_id.as_deref() != Some(order.as_str()) {
                        if let Err(e) = store.record_order(user, e164, n.version, &order, now).await {
                            return settle(Err(e), SyncOutcome::Superseded);
                        }
                    }
                    let err = CarrierError::Transient(format!("number order {order} is still pending"));
                    purchase_failed(store, &n, err, final_attempt, now).await
                }
                Err(e) => purchase_failed(store, &n, e, final_attempt, now).await,
            }
        }
        NumberStatus::Active => {
            // Each side of an active number in turn, each on the record as the one before left it.
            let mut outcome = SyncOutcome::UpToDate;
            let mut n = n;
            for side in 0..3 {
                if side > 0 && outcome != SyncOutcome::UpToDate {
                    n = match store.get_number(user, e164).await {
                        Ok(n) => n,
                        Err(StoreError::NotFound) => return Ok(SyncOutcome::Gone),
                        Err(e) => return Err(SyncRetry::Store(e)),
                    };
                }
                let step = match side {
                    0 if n.profile_sync == SyncState::Pending => profile_step(store, profiles, carrier, &n, now).await?,
                    1 if n.voice_sync == Some(SyncState::Pending) => sync_number_voice(voice, &n, final_attempt, now).await?,
                    2 if n.assistant_sync == Some(SyncState::Pending) => assistant_step(assistants, &n, final_attempt, now).await?,
                    _ => continue,
                };
                if step == SyncOutcome::Superseded {
                    return Ok(step);
                }
                outcome = step;
            }
            Ok(outcome)
        }
        NumberStatus::Releasing => {
            // Out of Vapi first: an imported number would keep routing calls to an assistant.
            if let Some(vapi_id) = n.vapi_phone_number_id.as_deref() {
                match assistants.voice_ai.remove_number(vapi_id).await {
                    Ok(()) | Err(CarrierError::NotFound) => {}
                    Err(e @ CarrierError::Transient(_)) => return Err(SyncRetry::Carrier(e)),
                    Err(e) => tracing::warn!(number = %e164, error = %e, "vapi refused to remove the number; releasing it anyway"),
                }
            }
            if let Some(id) = n.carrier_number_id.as_deref() {
                match carrier.release(id).await {
                    Ok(()) | Err(CarrierError::NotFound) => {}
                    Err(e @ CarrierError::Transient(_)) => return Err(SyncRetry::Carrier(e)),
                    Err(e) => {
                        tracing::error!(number = %e164, error = %e, "the carrier refused the release; the number stays releasing");
                        return Err(SyncRetry::Carrier(e));
                    }
                }
            }
            settle(store.purge_released(user, e164, n.version).await, SyncOutcome::Deleted)
        }
    }
}

/// Put an active number on the messaging profile its record names (or none) at the carrier.
async fn profile_step(
    store: &dyn NumberSyncLedger,
    profiles: &dyn ProfileReader,
    carrier: &dyn NumberCarrier,
    n: &PhoneNumber,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let (user, e164) = (&n.user_id, &n.e164);
    let Some(id) = n.carrier_number_id.as_deref() else { return Ok(SyncOutcome::UpToDate) };
    let target = match n.messaging_profile_id {
        None => None,
        Some(pid) => match profiles.get_profile(user, pid).await {
            Ok(p) => match p.carrier_profile_id {
                Some(cid) => Some(cid),
                None if n.carrier == CarrierName::Telnyx => {
                    return Err(SyncRetry::Carrier(CarrierError::Transient("the messaging profile is not at the carrier yet".into())))
                }
                None => None,
            },
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(SyncRetry::Store(e)),
        },
    };
    match carrier.set_messaging_profile(id, target.as_ref()).await {
        Ok(()) => settle(store.record_number_profile_synced(user, e164, n.version, now).await, SyncOutcome::Updated),
        Err(e @ CarrierError::Transient(_)) => Err(SyncRetry::Carrier(e)),
        Err(e) => {
            let reason = e.failure_reason();
            settle(store.record_number_profile_failed(user, e164, n.version, &reason, now).await, SyncOutcome::Failed(reason))
        }
    }
}

/// A purchase that cannot go on: permanent errors, and transient ones on the last delivery, mark the
/// number failed and free it; a transient one before that is retried.
async fn purchase_failed(
    store: &dyn NumberSyncLedger,
    n: &PhoneNumber,
    error: CarrierError,
    final_attempt: bool,
    now: OffsetDateTime,
) -> Result<SyncOutcome, SyncRetry> {
    let transient = matches!(error, CarrierError::Transient(_));
    if transient && !final_attempt {
        return Err(SyncRetry::Carrier(error));
    }
    let reason = error.failure_reason();
    let recorded = store.record_purchase_failed(&n.user_id, &n.e164, n.version, &reason, now).await;
    if transient {
        return Err(SyncRetry::Carrier(error));
    }
    match recorded {
        Ok(()) => Ok(SyncOutcome::Failed(reason)),
        Err(StoreError::Conflict(_)) | Err(StoreError::NotFound) => Ok(SyncOutcome::Superseded),
        Err(e) => Err(SyncRetry::Store(e)),
    }
}
