//! Phone number operations: what the phone-numbers and assign-number functions call.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::kernel::error::{Conflict, StoreError};
use crate::kernel::ids::{IdempotencyKey, ProfileId, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;
use crate::kernel::provider::{ByCarrier, CarrierError, CarrierName, Created};
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
    /// Nothing (left) to release: a failed purchase's record forgotten, or a number released or
    /// forgotten by an earlier DELETE.
    Forgotten,
}

pub struct Numbers<'a> {
    pub store: &'a dyn NumberWriter,
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

    /// Claim the number: its guard, its pending record and its purchase (the sync command, an outbox
    /// item) in one transaction. A replay with the same key answers the first record and writes
    /// nothing; so does a keyless retry that finds the caller's own pending purchase of the number.
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
        Ok(self.store.create_purchase(&number, key.map(|k| (k, fingerprint.as_str()))).await?)
    }

    pub async fn get(&self, user: &UserId, e164: &E164) -> Result<PhoneNumber, NumberError> {
        Ok(self.store.get_number(user, e164).await?)
    }

    pub async fn list(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<PhoneNumber>, NumberError> {
        Ok(self.store.list_numbers(user, after, limit).await?)
    }

    pub async fn release(&self, user: &UserId, e164: &E164, now: OffsetDateTime) -> Result<Release, NumberError> {
        let current = match self.store.get_number(user, e164).await {
            // Gone already: a repeated DELETE (its first answer lost) finds what it asked for.
            Err(StoreError::NotFound) if self.store.was_removed(user, e164).await? => return Ok(Release::Forgotten),
            other => other?,
        };
        if current.status == NumberStatus::Failed {
            self.store.forget_failed(user, e164).await?;
            return Ok(Release::Forgotten);
        }
        // Marked releasing with its sync in the same transaction (a repeated DELETE writes it again).
        let releasing = self.store.mark_releasing(user, e164, now).await?;
        Ok(Release::Releasing(Box::new(releasing)))
    }
}

/// Put an owned, active number on one of the user's profiles; the carrier's copy follows (its sync is
/// in the same transaction).
pub async fn assign(
    store: &dyn NumberWriter,
    user: &UserId,
    e164: &E164,
    profile: ProfileId,
    now: OffsetDateTime,
) -> Result<PhoneNumber, NumberError> {
    Ok(store.assign_number(user, e164, profile, now).await?)
}

/// Take a number off the profile it is on; the carrier's copy follows (its sync is in the same
/// transaction). A retry that finds it off every profile, its sync still to come, answers it.
pub async fn unassign(
    store: &dyn NumberWriter,
    user: &UserId,
    e164: &E164,
    profile: ProfileId,
    now: OffsetDateTime,
) -> Result<PhoneNumber, NumberError> {
    Ok(store.unassign_number(user, e164, profile, now).await?)
}
