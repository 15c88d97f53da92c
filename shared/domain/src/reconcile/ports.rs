//! The store side of reconciliation (each provider's listing is a method of its capability's port).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::kernel::error::StoreError;
use crate::kernel::ids::UserId;
use crate::kernel::work::CommandEnvelope;
use crate::numbers::model::PhoneNumber;
use crate::reconcile::model::{Indexed, Kind, PassCursor, Resync, Segment};

/// The store side of reconciliation.
#[async_trait]
pub trait ReconcileLedger: Send + Sync {
    /// One page of Patchbay's records of a segment on the provider index, and where the next starts.
    async fn indexed_page(&self, segment: &Segment, after: Option<&str>) -> Result<(Vec<Indexed>, Option<String>), StoreError>;
    /// `active` → `lost` (or back, `lost` → `active`), on the version read.
    async fn set_number_lost(&self, n: &PhoneNumber, lost: bool, now: OffsetDateTime) -> Result<(), StoreError>;
    /// A pending or failed purchase the carrier completed: active with the carrier's id, the owner
    /// guard taken again in the same transaction (`Conflict(NumberUnavailable)`: someone else holds it).
    async fn adopt_number(&self, n: &PhoneNumber, carrier_number_id: &str, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Mark one side pending with a new version, its sync at that version in the same transaction;
    /// answers that version.
    async fn mark_resync(&self, what: Resync<'_>, now: OffsetDateTime) -> Result<u64, StoreError>;
    /// A record still in flight past the deadline: its command (at `version`) written again, as long
    /// as the record is still at that version. `Conflict(Stale)` when it moved on meanwhile.
    async fn requeue(&self, user: &UserId, kind: Kind, id: &str, version: u64, command: &CommandEnvelope) -> Result<(), StoreError>;
    /// Take the pass lease (`None`: another pass holds it) and answer the saved cursor.
    async fn begin_pass(&self, pass_id: &str, now: OffsetDateTime, lease_seconds: i64) -> Result<Option<PassCursor>, StoreError>;
    /// Remember a reported unknown resource; `true` the first time it is seen (only then is it drift:
    /// the alarm fires once per look-alike, the report keeps listing it).
    async fn note_unknown(&self, kind: Kind, provider: &str, id: &str, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Save the cursor and give the lease back.
    async fn end_pass(&self, pass_id: &str, cursor: &PassCursor) -> Result<(), StoreError>;
}
