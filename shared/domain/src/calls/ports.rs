//! What calls need from outside: the ledger the webhooks write, and the reads of the calls API.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::calls::model::{Call, CallSource, CallUpdate, StatsRow};
use crate::kernel::error::StoreError;
use crate::kernel::ids::{AssistantId, ConnectionId, UserId};
use crate::kernel::page::{Cursor, Limit, Page};
use crate::kernel::phone::E164;

/// How a call event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Applied,
    /// The same event again: nothing changed.
    Duplicate,
}

/// Calls as the webhooks record them, with the dashboard's counters moved in the same transaction.
#[async_trait]
pub trait CallLedger: Send + Sync {
    /// Fold one event into the user's call (made on its first event), with the event's once-only guard
    /// (`scope`, `event_id`) and the counters' moves by what the event changed, in one transaction.
    async fn apply_call_event(
        &self,
        user: &UserId,
        call_id: &str,
        source: CallSource,
        event: (&str, &str),
        update: &CallUpdate,
        now: OffsetDateTime,
    ) -> Result<CallOutcome, StoreError>;
    /// The user and connection a Telnyx credential connection id belongs to.
    async fn connection_route(&self, carrier_connection_id: &str) -> Result<Option<(UserId, ConnectionId)>, StoreError>;
    /// The user and assistant a Vapi assistant id belongs to.
    async fn assistant_route(&self, vapi_assistant_id: &str) -> Result<Option<(UserId, AssistantId)>, StoreError>;
    /// The assistant's name as it is now (`None` once it is gone): what the dashboard shows.
    async fn assistant_name(&self, user: &UserId, id: AssistantId) -> Result<Option<String>, StoreError>;
    /// The owner of a number, and the assistant its calls go to.
    async fn number_route(&self, e164: &E164) -> Result<Option<(UserId, Option<AssistantId>)>, StoreError>;
}

/// What the calls API reads.
#[async_trait]
pub trait CallReader: Send + Sync {
    /// The user's calls, newest first.
    async fn list_calls(&self, user: &UserId, after: Option<&Cursor>, limit: Limit) -> Result<Page<Call>, StoreError>;
    /// The user's counters from `from` to `to` (UTC days), per day and per assistant and day: one Query.
    async fn stats(&self, user: &UserId, from: time::Date, to: time::Date) -> Result<Vec<StatsRow>, StoreError>;
}
