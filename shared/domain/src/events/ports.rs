//! What the event log needs from the store.

use async_trait::async_trait;

use crate::kernel::error::StoreError;
use crate::kernel::event::{Event, EventId, EventType};
use crate::kernel::ids::UserId;
use crate::kernel::page::Limit;

/// One page of the log, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub data: Vec<Event>,
    /// Where the next page starts (pass it as `after`); `None` when the log has nothing after it yet.
    /// With a type filter, a page can hold fewer events than asked for and still have a next one.
    pub next_after: Option<EventId>,
}

#[async_trait]
pub trait EventLog: Send + Sync {
    /// The user's events after `after` (all of them when `None`), of `event_type` if given, oldest
    /// first; one Query.
    async fn list_events(
        &self,
        user: &UserId,
        after: Option<&EventId>,
        event_type: Option<EventType>,
        limit: Limit,
    ) -> Result<EventPage, StoreError>;
}
