//! Phone number operations: what the phone-numbers and assign-number functions call.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::kernel::error::{Conflict, StoreError};
use crate::kernel::ids::{IdempotencyKey, ProfileId, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;
use crate::kernel::provider::{ByCarrier, CarrierError, CarrierName, Created};
use crate::kernel::work::{CommandEnvelope, QueueError, WorkQueue};
use crate::numbers::model::{AvailableNumber, NumberSearch, NumberStatus, PhoneNumber};
use crate::numbers::ports::{NumberCarrier, NumberWriter};

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
