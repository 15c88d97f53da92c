//! What numbers need from outside: the store (reads, the API's writes, the worker's sync ledger), the
//! carrier, and the places a number's calls can go (`CallRoute`).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::kernel::error::StoreError;
use crate::kernel::ids::{CarrierProfileId, IdempotencyKey, ProfileId, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;
use crate::kernel::provider::{CarrierError, CarrierName, Created};
use crate::kernel::sync::{SyncError, SyncOutcome, SyncRetry};
use crate::numbers::model::{AvailableNumber, NumberSearch, PhoneNumber};

/// Phone number persistence. Ownership is a global guard item per number, written with
/// `attribute_not_exists` in the same transaction as the user's record. Reads here; the API's writes
/// and the worker's sync ledger below.
#[async_trait]
pub trait NumberReader: Send + Sync {
    async fn get_number(&self, user: &UserId, e164: &E164) -> Result<PhoneNumber, StoreError>;

    /// The user's numbers in E.164 order.
    async fn list_numbers(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<PhoneNumber>, StoreError>;

    /// Every number of the user (for a profile page: a user has few numbers).
    async fn all_numbers(&self, user: &UserId) -> Result<Vec<PhoneNumber>, StoreError>;
}

/// The API's number writes: purchases, releases, profile assignments.
#[async_trait]
pub trait NumberWriter: NumberReader + Send + Sync {
    /// Start a purchase, in one transaction: the number's global owner guard (`attribute_not_exists`),
    /// the user's pending record, and with a key the key's guard.
    /// `Conflict(NumberUnavailable)` if another user holds the number, `Conflict(NumberAlreadyOwned)`
    /// if the caller does; with a key, a repeat answers `Replayed`.
    async fn create_purchase(
        &self,
        number: &PhoneNumber,
        idempotency: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Created<PhoneNumber>, StoreError>;

    /// Start a release, in one transaction guarded by the number's version: the number's record turns
    /// `releasing` and leaves its messaging profile and SIP connection; the profile's number count goes
    /// down, and the SIP connection's count goes down and its primary slot is given back if the number
    /// held it. The record keeps its assistant and Vapi import: the worker's release removes that
    /// first (`CallRoute::before_release`). A number already `releasing` is answered as it is.
    async fn mark_releasing(&self, user: &UserId, e164: &E164, now: OffsetDateTime) -> Result<PhoneNumber, StoreError>;

    /// Remove a failed purchase's record (its guard is already free), leaving a day-long mark that
    /// the user's number is gone (`was_removed`).
    async fn forget_failed(&self, user: &UserId, e164: &E164) -> Result<(), StoreError>;

    /// Whether the user's record of this number was removed within the last day (released, or a
    /// failed purchase forgotten): a repeated DELETE finds it gone as asked, not unknown.
    async fn was_removed(&self, user: &UserId, e164: &E164) -> Result<bool, StoreError>;

    /// Put an active number on a profile, in one transaction: the number's record (on no other
    /// profile: `Conflict(NumberOnAnotherProfile)`) and the profile's number count (the profile exists
    /// and is not deleting).
    async fn assign_number(&self, user: &UserId, e164: &E164, profile: ProfileId, now: OffsetDateTime) -> Result<PhoneNumber, StoreError>;

    /// Take a number off a profile, in one transaction: the number's record (on this profile:
    /// `Conflict(NumberNotOnProfile)`) and the profile's number count.
    async fn unassign_number(&self, user: &UserId, e164: &E164, profile: ProfileId, now: OffsetDateTime)
        -> Result<PhoneNumber, StoreError>;
}

/// The worker's number writes: what the carrier did with a purchase, a release or a profile change.
#[async_trait]
pub trait NumberSyncLedger: NumberReader + Send + Sync {
    /// Worker: remember the carrier's order id (guarded by version and `pending`).
    async fn record_order(&self, user: &UserId, e164: &E164, version: u64, order_id: &str, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Worker: the carrier sold us the number.
    async fn record_active(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        carrier_number_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Worker: the purchase failed for good; the record says why and the guard is freed, in one transaction.
    async fn record_purchase_failed(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Worker: the carrier released it: record and guard go, in one transaction.
    async fn purge_released(&self, user: &UserId, e164: &E164, version: u64) -> Result<(), StoreError>;
    /// A redrive: each side of `n` (profile, SIP, assistant) whose last delivery gave up goes back to
    /// `pending`; false (and no write) when none was in that state.
    async fn reset_given_up_sides(&self, n: &PhoneNumber, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Worker: the carrier has the number on the profile the record names (at `version`).
    async fn record_number_profile_synced(&self, user: &UserId, e164: &E164, version: u64, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Worker: the carrier refused the profile change for good (`profile_sync: failed`, with why).
    async fn record_number_profile_failed(
        &self,
        user: &UserId,
        e164: &E164,
        version: u64,
        error: &SyncError,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// What the carrier account says about a number before we buy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// The account owns it and it is in service: adopt this id.
    Owned(String),
    /// The account has it, but an order for it has not completed (Telnyx `purchase-pending`): it is
    /// not owned yet, and buying it again would be refused. Wait for that order.
    Pending,
    /// The account does not have it.
    NotOwned,
}

/// What a purchase call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purchase {
    /// Bought; the carrier's id for the number.
    Done(String),
    /// An order is running (Telnyx); follow it with `order_status`.
    Ordered(String),
}

/// The carrier side of phone numbers.
#[async_trait]
pub trait NumberCarrier: Send + Sync {
    fn name(&self) -> CarrierName;
    async fn search(&self, query: &NumberSearch) -> Result<Vec<AvailableNumber>, CarrierError>;
    /// Whether this account already has `e164` (a purchase that went through before a lost answer).
    async fn find_owned(&self, e164: &E164) -> Result<Ownership, CarrierError>;
    async fn buy(&self, e164: &E164) -> Result<Purchase, CarrierError>;
    /// Follow an order: `Done(id)`, still `Ordered`, or an error (`Permanent` when the order failed).
    async fn order_status(&self, order_id: &str, e164: &E164) -> Result<Purchase, CarrierError>;
    async fn release(&self, carrier_number_id: &str) -> Result<(), CarrierError>;
    /// Put the number on a messaging profile at the carrier (`None` takes it off). Carriers without
    /// messaging profiles (Twilio) accept and do nothing.
    async fn set_messaging_profile(&self, carrier_number_id: &str, profile: Option<&CarrierProfileId>) -> Result<(), CarrierError>;
    /// Send a text from one of this account's numbers; answers the carrier's message id.
    async fn send_sms(&self, from: &E164, to: &E164, text: &str, profile: Option<&CarrierProfileId>) -> Result<String, CarrierError>;
    /// A text this account sent from `from` to `to` since `since` (a send whose answer or record was
    /// lost): its id, or `None` when the carrier has none. `Err(NotConfigured)` when the carrier
    /// cannot be asked (Telnyx has no message search).
    async fn find_sent(&self, from: &E164, to: &E164, text: &str, since: OffsetDateTime) -> Result<Option<String>, CarrierError> {
        let _ = (from, to, text, since);
        Err(CarrierError::NotConfigured(format!("{} cannot look up sent messages", self.name())))
    }
    /// Every number of the account, in service (the reconciler).
    async fn list_numbers(&self) -> Result<Vec<ListedNumber>, CarrierError> {
        Err(CarrierError::NotConfigured(format!("{} cannot list numbers", self.name())))
    }
}

/// A number as the carrier lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedNumber {
    pub e164: E164,
    pub id: String,
    /// The carrier's messaging profile id the number is on (carriers without profiles: `None`).
    pub messaging_profile_id: Option<String>,
    /// Marked as Patchbay's (bought through Patchbay: its order reference, its webhook URL).
    pub patchbay: bool,
}

/// One of the places an active number's calls can go, at a second provider: its SIP connection
/// (`dialer::sync::SipRoute`) or its voice-AI assistant (`voice_ai::sync::AssistantRoute`). The
/// number's sync pushes each side through this trait, so numbers never names the capabilities above
/// it; the worker hands the routes in (`NumberPorts`). A route writes only its own side of the
/// number's record (`voice_*` or `assistant_*`); only numbers purges the record.
#[async_trait]
pub trait CallRoute: Send + Sync {
    /// This side of the number waits for the worker (its sync state is `pending`).
    fn pending(&self, n: &PhoneNumber) -> bool;

    /// Bring this side at its provider in line with the record (as read, at `n.version`) and record
    /// the outcome on the number. A transient failure is retried unless `final_attempt`; then, like a
    /// permanent one, it is recorded as this side's `failed`.
    async fn push(&self, n: &PhoneNumber, final_attempt: bool, now: OffsetDateTime) -> Result<SyncOutcome, SyncRetry>;

    /// The number's command ran out of deliveries: this side, still `pending` at `n.version`, is
    /// recorded `failed` with `reason`. Nothing by default.
    async fn give_up(&self, _n: &PhoneNumber, _reason: &SyncError, _now: OffsetDateTime) -> Result<(), StoreError> {
        Ok(())
    }

    /// Before the carrier releases the number: let go of it at this side's provider. `Err` keeps the
    /// number `releasing` and retries the release. Nothing to do by default.
    async fn before_release(&self, _n: &PhoneNumber) -> Result<(), SyncRetry> {
        Ok(())
    }
}
